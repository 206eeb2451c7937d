// Package plugins runs Sluice's WebAssembly filters with wazero and offers
// them to the proxy core as filter.Chain values, one per route.
//
// The contract with guests is package abi (abi/ABI.md in prose). This
// package checks a module against it when loading (imports, exports and
// their signatures, the ABI version, the memory limit, the sha256 pin),
// implements the host functions, keeps a pool of ready instances per plugin,
// enforces a deadline per hook call and applies each plugin's failure policy.
//
// # Lifecycle
//
//	l := plugins.NewLoader(plugins.LoaderOptions{Logger: log, BaseDir: dir})
//	set, err := l.Load(ctx, cfg)   // every plugin and every route's chain, or an error
//	proxy uses set.Chains()        // keyed by config.Route.Name
//	next, err := l.Load(ctx, cfg2) // reload: unchanged modules are not recompiled
//	proxy switches to next.Chains(), drains, then: set.Close()
//	...
//	next.Close(); l.Close()        // at shutdown, Sets first
//
// Nothing is released by finalizers: a Set holds its instances and its
// references to compiled modules until Close, and the Loader holds the
// compilation cache until its own Close.
//
// RATIONALE.md explains the choices: pooling, stateless instances, one
// instance per hook call, and the per-call context.
package plugins
