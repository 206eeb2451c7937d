package plugins

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// SharedStore is the key/value that filters share across requests and
// connections (the shared_* host functions). Every key lives in a namespace,
// the plugin's name, so two plugins never see each other's keys.
//
// The embedded MemoryStore serves one proxy; an implementation backed by an
// external store (Redis, for instance) lets several proxies enforce one rate
// limit. Methods are called from hook calls, with the hook's context: an
// implementation that does I/O should honour its deadline. An error traps the
// calling guest, so the plugin's failure policy decides what happens.
type SharedStore interface {
	// Get returns the value of key and whether it exists (and has not
	// expired). The caller does not modify the returned slice.
	Get(ctx context.Context, namespace, key string) (value []byte, ok bool, err error)
	// Set stores a copy of value under key; ttl 0 means no expiry.
	Set(ctx context.Context, namespace, key string, value []byte, ttl time.Duration) error
	// Delete removes key.
	Delete(ctx context.Context, namespace, key string) error
	// Add atomically adds delta to the counter under key and returns the new
	// value. A missing or expired key counts as 0 and gets ttl (0: no
	// expiry); an existing key keeps its expiry. A value that is not a
	// decimal integer counts as 0. Counters read back with Get as decimal
	// text.
	Add(ctx context.Context, namespace, key string, delta int64, ttl time.Duration) (int64, error)
}

// MemoryStore is the in-process SharedStore. Expired keys are invisible as
// soon as they expire (checked on every read) and their memory is reclaimed
// by a periodic sweep, so keys that are written once and never read again do
// not accumulate. Close stops the sweep.
type MemoryStore struct {
	mu     sync.Mutex
	spaces map[string]map[string]*memEntry
	now    func() int64 // monotonic nanoseconds
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type memEntry struct {
	value   []byte
	expires int64 // monotonic ns; 0 = never
}

var _ SharedStore = (*MemoryStore)(nil)

// epoch anchors monotonic readings: time.Since on it never goes backwards.
var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

// NewMemoryStore returns an empty MemoryStore that sweeps expired keys every
// sweep interval (a minute when sweep <= 0).
func NewMemoryStore(sweep time.Duration) *MemoryStore {
	if sweep <= 0 {
		sweep = time.Minute
	}
	s := &MemoryStore{
		spaces: make(map[string]map[string]*memEntry),
		now:    monoNow,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.sweepLoop(sweep)
	return s
}

func (s *MemoryStore) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep removes every expired key now. The background sweep calls it; it is
// exported for tests and for callers that want memory back at a known time.
func (s *MemoryStore) Sweep() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for ns, m := range s.spaces {
		for k, e := range m {
			if e.expires != 0 && e.expires <= now {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			delete(s.spaces, ns)
		}
	}
}

// Close stops the background sweep. The store stays readable.
func (s *MemoryStore) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// live returns the unexpired entry of key, removing it when it has expired.
// The caller holds s.mu.
func (s *MemoryStore) live(namespace, key string, now int64) *memEntry {
	m := s.spaces[namespace]
	e := m[key]
	if e != nil && e.expires != 0 && e.expires <= now {
		delete(m, key)
		return nil
	}
	return e
}

func (s *MemoryStore) put(namespace, key string, e *memEntry) {
	m := s.spaces[namespace]
	if m == nil {
		m = make(map[string]*memEntry)
		s.spaces[namespace] = m
	}
	m[key] = e
}

func expiry(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now + int64(ttl)
}

// Get implements SharedStore.
func (s *MemoryStore) Get(_ context.Context, namespace, key string) ([]byte, bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.live(namespace, key, now); e != nil {
		return e.value, true, nil
	}
	return nil, false, nil
}

// Set implements SharedStore.
func (s *MemoryStore) Set(_ context.Context, namespace, key string, value []byte, ttl time.Duration) error {
	now := s.now()
	v := append([]byte{}, value...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(namespace, key, &memEntry{value: v, expires: expiry(now, ttl)})
	return nil
}

// Delete implements SharedStore.
func (s *MemoryStore) Delete(_ context.Context, namespace, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.spaces[namespace]; m != nil {
		delete(m, key)
	}
	return nil
}

// Add implements SharedStore.
func (s *MemoryStore) Add(_ context.Context, namespace, key string, delta int64, ttl time.Duration) (int64, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live(namespace, key, now)
	if e == nil {
		e = &memEntry{expires: expiry(now, ttl)}
		s.put(namespace, key, e)
	}
	n, err := strconv.ParseInt(string(e.value), 10, 64)
	if err != nil {
		n = 0
	}
	n += delta
	// A fresh slice: a value returned by Get may still be read outside the lock.
	e.value = strconv.AppendInt(make([]byte, 0, 20), n, 10)
	return n, nil
}
