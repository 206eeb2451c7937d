//go:build unix

package plugins

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapAllocator backs each instance's linear memory with its own mapping:
// the whole maximum (memory_limit) is reserved without access when the
// instance is created, grows by making more of it accessible, and is
// unmapped when the instance is closed. Two things follow. A discarded
// instance gives its memory back to the system at once, rather than
// leaving up to memory_limit of garbage for the collector, so the proxy's
// resident memory follows its live instances; and growing never copies.
// A memory whose reservation fails falls back to a Go slice.
type mmapAllocator struct{}

var _ experimental.MemoryAllocator = mmapAllocator{}

// Allocate implements experimental.MemoryAllocator.
func (mmapAllocator) Allocate(_, max uint64) experimental.LinearMemory {
	if max == 0 || max > 1<<32 {
		return &sliceMemory{max: max}
	}
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return &sliceMemory{max: max}
	}
	return &mmapMemory{reserved: b}
}

// sliceMemory is a linear memory in a Go slice, for when a mapping cannot
// be had: it grows by copying and is left to the collector.
type sliceMemory struct {
	b   []byte
	max uint64
}

// Reallocate implements experimental.LinearMemory.
func (m *sliceMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > uint64(cap(m.b)) {
		nb := make([]byte, size)
		copy(nb, m.b)
		m.b = nb
	}
	m.b = m.b[:size]
	return m.b
}

// Free implements experimental.LinearMemory.
func (m *sliceMemory) Free() { m.b = nil }

// mmapMemory is one instance's linear memory: reserved[:size] is
// accessible, the rest is not.
type mmapMemory struct {
	reserved []byte
	size     int
}

// Reallocate implements experimental.LinearMemory: it makes the memory size
// bytes long, or returns nil (memory.grow then returns -1).
func (m *mmapMemory) Reallocate(size uint64) []byte {
	if m.reserved == nil || size > uint64(len(m.reserved)) {
		return nil
	}
	if int(size) > m.size {
		if err := syscall.Mprotect(m.reserved[m.size:size], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil
		}
		m.size = int(size)
	}
	return m.reserved[:size:size]
}

// Free implements experimental.LinearMemory. wazero calls it once the
// instance is closed and no guest code runs in it any more.
func (m *mmapMemory) Free() {
	if m.reserved != nil {
		_ = syscall.Munmap(m.reserved)
		m.reserved = nil
	}
}

// memoryAllocator is the allocator instances are created with.
func memoryAllocator() experimental.MemoryAllocator { return mmapAllocator{} }
