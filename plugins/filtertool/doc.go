// Package filtertool is what `sluice filter` does for a filter author: it
// inspects a built module (inspect), runs it against a sample request,
// response or WebSocket messages (run), checks it against a file of cases
// (test), and writes a new filter project (new).
//
// Every module runs in the plugins package's own sandbox: the loader that
// compiles and checks it, the instance pool, the host functions and the
// filter chain the proxy uses, with the plugin's memory_limit and timeout.
// Nothing here imitates the proxy; a module that passes here behaves the
// same behind it.
package filtertool
