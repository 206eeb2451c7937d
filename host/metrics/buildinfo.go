package metrics

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo says which build of Sluice runs.
type BuildInfo struct {
	// Version is the module version ("v1.2.3", or "(devel)" for a build
	// from a working tree).
	Version string
	// Commit is the VCS revision the binary was built from, with
	// "-dirty" when the tree had changes; empty when unknown.
	Commit string
	// Go is the Go version that built it, Wazero the wazero module version.
	Go     string
	Wazero string
}

// ReadBuildInfo reads the running binary's BuildInfo from the build
// information the Go toolchain embeds.
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "(devel)", Go: runtime.Version(), Wazero: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := bi.Main.Version; v != "" {
		b.Version = v
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if b.Commit != "" && dirty {
		b.Commit += "-dirty"
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/tetratelabs/wazero" {
			b.Wazero = d.Version
			if d.Replace != nil {
				b.Wazero = d.Replace.Version
			}
		}
	}
	return b
}

// buildInfoCollector exports sluice_build_info, a constant 1 whose labels
// say which build runs.
func buildInfoCollector(b BuildInfo) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "A constant 1, labelled with the running build's version, commit, Go and wazero versions.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.Go, "wazero": b.Wazero},
	}, func() float64 { return 1 })
}
