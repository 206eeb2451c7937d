//go:build !unix

package plugins

import "github.com/tetratelabs/wazero/experimental"

// newLinearMemory is a Go slice where there is no mmap.
func newLinearMemory(max uint64) experimental.LinearMemory { return &sliceMemory{max: max} }
