package sluice

import (
	"time"

	"github.com/sluiceproxy/sluice/sdk/go/internal/wire"
)

// StateStore is the key/value store of the current request (in HTTP hooks)
// or WebSocket connection (in message and close hooks), kept by the host so
// that any pooled instance sees it. Values set during a WebSocket upgrade's
// HTTP hooks carry over to the connection. Use it through State.
type StateStore struct{}

// State is the current request's or connection's key/value store.
var State StateStore

// Get returns a copy of the value of key, and false when it is absent.
func (StateStore) Get(key string) ([]byte, bool) { return readCopy(opState, 0, key) }

// Append appends the value of key to dst and returns the result, and false
// when key is absent; with a reused dst it reads without allocating.
func (StateStore) Append(dst []byte, key string) ([]byte, bool) {
	b, ok := read(opState, 0, key)
	if !ok {
		return dst, false
	}
	return append(dst, b...), true
}

// Set stores a copy of value under key.
func (StateStore) Set(key string, value []byte) { wire.StateSet(key, value) }

// Delete removes key.
func (StateStore) Delete(key string) { wire.StateDelete(key) }

// SharedStore is the plugin's key/value store shared by every request and
// connection (and, with an external store, by several proxies). Values may
// expire. Use it through Shared.
type SharedStore struct{}

// Shared is the plugin's shared key/value store.
var Shared SharedStore

// Get returns a copy of the value of key, and false when it is absent or
// expired.
func (SharedStore) Get(key string) ([]byte, bool) { return readCopy(opShared, 0, key) }

// Append appends the value of key to dst, like StateStore.Append.
func (SharedStore) Append(dst []byte, key string) ([]byte, bool) {
	b, ok := read(opShared, 0, key)
	if !ok {
		return dst, false
	}
	return append(dst, b...), true
}

// Set stores value under key; it expires after ttl, or never when ttl is 0.
func (SharedStore) Set(key string, value []byte, ttl time.Duration) {
	wire.SharedSet(key, value, millis(ttl))
}

// Delete removes key.
func (SharedStore) Delete(key string) { wire.SharedDelete(key) }

// Add atomically adds delta to the counter under key and returns the new
// value. A missing or expired key counts as 0 and gets the ttl (0: no
// expiry); an existing counter keeps its expiry. A fixed-window rate limit
// is one call:
//
//	if sluice.Shared.Add("hits:"+ip, 1, time.Minute) > 100 { ... }
func (SharedStore) Add(key string, delta int64, ttl time.Duration) int64 {
	return wire.SharedAdd(key, delta, millis(ttl))
}

// millis rounds a positive ttl up to a whole millisecond, so a tiny ttl
// never becomes 0 (no expiry).
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
