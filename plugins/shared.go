package plugins

import (
	"context"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
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

// QuotaError is the error of a shared store write that would take a
// namespace over one of its quotas. The host traps the guest that made the
// call with a message that names the quota, so the operator knows which
// [[plugin]] key to raise.
type QuotaError struct {
	// Quota is the config key of the quota: "shared_max_bytes" or
	// "shared_max_keys".
	Quota string
	// Limit is the quota's value; Want what the write needed.
	Limit, Want int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("over the plugin's %s quota (%d): the write needs %d", e.Quota, e.Limit, e.Want)
}

// Limiter is implemented by a SharedStore that enforces per-namespace
// quotas. The loader sets each plugin's quotas (shared_max_bytes,
// shared_max_keys) when it builds the plugin; a store without it (an
// external store) keeps its own limits.
type Limiter interface {
	// Limit sets the quotas of namespace: the bytes of its keys and values,
	// and its number of keys. Writes beyond them fail with a *QuotaError.
	Limit(namespace string, maxBytes int64, maxKeys int)
}

// MemoryStore is the in-process SharedStore. Expired keys are invisible as
// soon as they expire (checked on every read) and their memory is reclaimed
// by a periodic sweep, so keys that are written once and never read again do
// not accumulate. Close stops the sweep.
//
// Each namespace (each plugin) has its own quotas and its own shards, each
// shard a map under its own lock. A call locks one shard of its own
// namespace, and the sweep locks one shard at a time, so one plugin's
// millions of keys never stall another plugin's calls, and sweeping a large
// namespace stalls its own calls for one shard's worth of keys at most.
type MemoryStore struct {
	mu     sync.RWMutex // guards spaces (not the spaces' contents)
	spaces map[string]*space
	seed   maphash.Seed
	now    func() int64 // monotonic nanoseconds
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// numShards is the shards per namespace: enough that two hook calls of one
// plugin on two cores rarely meet on one lock, and that a sweep holds a lock
// for 1/64th of a namespace.
const numShards = 64

// entryOverhead is what the store counts for each key beyond its bytes (map
// slot, entry, string and slice headers), so that a flood of empty keys is
// bounded by shared_max_bytes as well as by shared_max_keys.
const entryOverhead = 64

// space is one namespace: its shards and its usage against its quotas.
type space struct {
	shards   [numShards]shard
	bytes    atomic.Int64 // keys and values, plus entryOverhead per key
	keys     atomic.Int64
	maxBytes atomic.Int64 // 0: no quota
	maxKeys  atomic.Int64
}

type shard struct {
	mu sync.Mutex
	m  map[string]*memEntry
}

type memEntry struct {
	value   []byte
	expires int64 // monotonic ns; 0 = never
}

func entrySize(key string, value []byte) int64 {
	return int64(len(key)+len(value)) + entryOverhead
}

var (
	_ SharedStore = (*MemoryStore)(nil)
	_ Limiter     = (*MemoryStore)(nil)
)

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
		spaces: make(map[string]*space),
		seed:   maphash.MakeSeed(),
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

// Sweep removes every expired key now, one shard at a time. The background
// sweep calls it; it is exported for tests and for callers that want memory
// back at a known time.
func (s *MemoryStore) Sweep() {
	s.mu.RLock()
	spaces := make([]*space, 0, len(s.spaces))
	for _, sp := range s.spaces {
		spaces = append(spaces, sp)
	}
	s.mu.RUnlock()
	for _, sp := range spaces {
		for i := range sp.shards {
			sh := &sp.shards[i]
			now := s.now()
			sh.mu.Lock()
			for k, e := range sh.m {
				if e.expires != 0 && e.expires <= now {
					sp.remove(sh, k, e)
				}
			}
			sh.mu.Unlock()
		}
	}
}

// Close stops the background sweep. The store stays readable.
func (s *MemoryStore) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Limit implements Limiter.
func (s *MemoryStore) Limit(namespace string, maxBytes int64, maxKeys int) {
	sp := s.space(namespace)
	sp.maxBytes.Store(maxBytes)
	sp.maxKeys.Store(int64(maxKeys))
}

// Usage returns the bytes (with the per-key overhead) and keys namespace
// holds, expired keys not yet swept included.
func (s *MemoryStore) Usage(namespace string) (bytes int64, keys int) {
	s.mu.RLock()
	sp := s.spaces[namespace]
	s.mu.RUnlock()
	if sp == nil {
		return 0, 0
	}
	return sp.bytes.Load(), int(sp.keys.Load())
}

// space returns the namespace, creating it on first use.
func (s *MemoryStore) space(namespace string) *space {
	s.mu.RLock()
	sp := s.spaces[namespace]
	s.mu.RUnlock()
	if sp != nil {
		return sp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp = s.spaces[namespace]; sp == nil {
		sp = &space{}
		s.spaces[namespace] = sp
	}
	return sp
}

func (s *MemoryStore) shard(sp *space, key string) *shard {
	return &sp.shards[maphash.String(s.seed, key)%numShards]
}

// live returns the unexpired entry of key, removing it when it has expired.
// The caller holds sh.mu.
func (sp *space) live(sh *shard, key string, now int64) *memEntry {
	e := sh.m[key]
	if e != nil && e.expires != 0 && e.expires <= now {
		sp.remove(sh, key, e)
		return nil
	}
	return e
}

// remove deletes key and gives its usage back. The caller holds sh.mu.
func (sp *space) remove(sh *shard, key string, e *memEntry) {
	delete(sh.m, key)
	sp.bytes.Add(-entrySize(key, e.value))
	sp.keys.Add(-1)
}

// reserve takes the usage a write adds (bytes, and one more key when it
// creates one) against the quotas, or returns a *QuotaError and takes
// nothing. The caller holds the key's shard lock, so the difference it
// computed stays true; other shards may reserve at the same time, and the
// atomic add then undo keeps the total under the quota.
func (sp *space) reserve(bytes int64, newKey bool) error {
	if newKey {
		n := sp.keys.Add(1)
		if max := sp.maxKeys.Load(); max > 0 && n > max {
			sp.keys.Add(-1)
			return &QuotaError{Quota: "shared_max_keys", Limit: max, Want: n}
		}
	}
	if bytes > 0 {
		n := sp.bytes.Add(bytes)
		if max := sp.maxBytes.Load(); max > 0 && n > max {
			sp.bytes.Add(-bytes)
			if newKey {
				sp.keys.Add(-1)
			}
			return &QuotaError{Quota: "shared_max_bytes", Limit: max, Want: n}
		}
	} else {
		sp.bytes.Add(bytes)
	}
	return nil
}

// put stores value under key within the quotas, copying it when own is
// false (the caller's slice is not the store's to keep). The caller holds
// sh.mu and passes the key's live entry, nil when there is none.
func (sp *space) put(sh *shard, key string, old *memEntry, value []byte, own bool, expires int64) error {
	delta := entrySize(key, value)
	if old != nil {
		delta -= entrySize(key, old.value)
	}
	// Reserve before copying, so a refused write allocates nothing.
	if err := sp.reserve(delta, old == nil); err != nil {
		return err
	}
	if !own {
		value = append([]byte{}, value...)
	}
	if sh.m == nil {
		sh.m = make(map[string]*memEntry)
	}
	sh.m[key] = &memEntry{value: value, expires: expires}
	return nil
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
	s.mu.RLock()
	sp := s.spaces[namespace]
	s.mu.RUnlock()
	if sp == nil {
		return nil, false, nil
	}
	sh := s.shard(sp, key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sp.live(sh, key, now); e != nil {
		return e.value, true, nil
	}
	return nil, false, nil
}

// Set implements SharedStore.
func (s *MemoryStore) Set(_ context.Context, namespace, key string, value []byte, ttl time.Duration) error {
	now := s.now()
	sp := s.space(namespace)
	sh := s.shard(sp, key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sp.put(sh, key, sp.live(sh, key, now), value, false, expiry(now, ttl))
}

// Delete implements SharedStore.
func (s *MemoryStore) Delete(_ context.Context, namespace, key string) error {
	s.mu.RLock()
	sp := s.spaces[namespace]
	s.mu.RUnlock()
	if sp == nil {
		return nil
	}
	sh := s.shard(sp, key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[key]; e != nil {
		sp.remove(sh, key, e)
	}
	return nil
}

// Add implements SharedStore.
func (s *MemoryStore) Add(_ context.Context, namespace, key string, delta int64, ttl time.Duration) (int64, error) {
	now := s.now()
	sp := s.space(namespace)
	sh := s.shard(sp, key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := sp.live(sh, key, now)
	var n int64
	expires := expiry(now, ttl)
	if old != nil {
		n, _ = strconv.ParseInt(string(old.value), 10, 64) // not a number: 0
		expires = old.expires
	}
	n += delta
	// A fresh slice: a value returned by Get may still be read outside the lock.
	v := strconv.AppendInt(make([]byte, 0, 20), n, 10)
	if err := sp.put(sh, key, old, v, true, expires); err != nil {
		return 0, err
	}
	return n, nil
}
