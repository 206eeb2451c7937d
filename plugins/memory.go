package plugins

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// memoryOwner allocates the linear memory of one instance (through
// wazero's experimental MemoryAllocator) and frees it when the instance is
// closed.
//
// wazero frees a memory when its module is closed; but when the module was
// closed because its context was done (a hook that ran out of time, a pool
// closed under a running call), wazero defers that to the call running in
// it, once it notices. The owner makes the release certain when the
// instance is closed, whichever path ran first; freeing twice does nothing.
type memoryOwner struct {
	mu   sync.Mutex
	mems []experimental.LinearMemory
}

var _ experimental.MemoryAllocator = (*memoryOwner)(nil)

// Allocate implements experimental.MemoryAllocator.
func (o *memoryOwner) Allocate(_, max uint64) experimental.LinearMemory {
	m := newLinearMemory(max)
	o.mu.Lock()
	o.mems = append(o.mems, m)
	o.mu.Unlock()
	return m
}

// free releases every memory of the instance; the instance is closed and no
// guest code runs in it any more. Freeing twice is harmless.
func (o *memoryOwner) free() {
	o.mu.Lock()
	mems := o.mems
	o.mems = nil
	o.mu.Unlock()
	for _, m := range mems {
		m.Free()
	}
}

// sliceMemory is a linear memory in a Go slice, where a mapping cannot be
// had: it grows by copying and is left to the collector.
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
