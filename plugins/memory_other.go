//go:build !unix

package plugins

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator is nil where there is no mmap: wazero's own allocator
// backs linear memories with Go slices.
func memoryAllocator() experimental.MemoryAllocator { return nil }
