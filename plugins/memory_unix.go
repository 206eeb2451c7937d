//go:build unix

package plugins

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// newLinearMemory backs an instance's linear memory with its own mapping:
// the whole maximum (memory_limit) is reserved without access when the
// instance is created, grows by making more of it accessible, and is
// unmapped when the instance is closed. Two things follow. A discarded
// instance gives its memory back to the system at once, rather than
// leaving up to memory_limit of garbage for the collector, so the proxy's
// resident memory follows its live instances; and growing never copies.
// When the reservation fails the memory is a Go slice.
func newLinearMemory(max uint64) experimental.LinearMemory {
	if max == 0 || max > 1<<32 {
		return &sliceMemory{max: max}
	}
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return &sliceMemory{max: max}
	}
	return &mmapMemory{reserved: b}
}

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

// Free implements experimental.LinearMemory. It runs once no guest code runs
// in the instance any more (see memoryOwner); a second call does nothing.
func (m *mmapMemory) Free() {
	if m.reserved != nil {
		_ = syscall.Munmap(m.reserved)
		m.reserved = nil
	}
}

// freed reports whether Free ran.
func (m *mmapMemory) freed() bool { return m.reserved == nil }
