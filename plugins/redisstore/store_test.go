package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/plugins"
	"github.com/sluiceproxy/sluice/plugins/redisstore"
	"github.com/sluiceproxy/sluice/plugins/redisstore/redistest"
)

// sharedConfig is a [shared] table for Redis with the config's defaults
// and the given addresses (one: single node; more: Cluster).
func sharedConfig(t testing.TB, addrs ...string) config.Shared {
	t.Helper()
	toml := "[shared]\nbackend = \"redis\"\n"
	if len(addrs) == 1 {
		toml += fmt.Sprintf("address = %q\n", addrs[0])
	} else {
		toml += "addresses = ["
		for i, a := range addrs {
			if i > 0 {
				toml += ", "
			}
			toml += strconv.Quote(a)
		}
		toml += "]\n"
	}
	cfg, err := config.Parse([]byte(toml), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Shared
}

func open(t testing.TB, c config.Shared) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backends are the stores every semantic test runs against: the memory
// store, a single Redis node and a three-node Redis Cluster.
func backends(t *testing.T) map[string]func(t *testing.T) plugins.SharedStore {
	return map[string]func(t *testing.T) plugins.SharedStore{
		"memory": func(t *testing.T) plugins.SharedStore {
			s := plugins.NewMemoryStore(time.Second)
			t.Cleanup(func() { s.Close() })
			return s
		},
		"redis": func(t *testing.T) plugins.SharedStore {
			return open(t, sharedConfig(t, redistest.Start(t).Addr()))
		},
		"cluster": func(t *testing.T) plugins.SharedStore {
			return open(t, sharedConfig(t, redistest.StartCluster(t, 3).Addrs()...))
		},
	}
}

// TestSemantics runs the shared store's contract against every backend:
// what a filter sees must not depend on where the state lives.
func TestSemantics(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			ctx := context.Background()
			get := func(ns, k string) (string, bool) {
				t.Helper()
				v, ok, err := s.Get(ctx, ns, k)
				if err != nil {
					t.Fatal(err)
				}
				return string(v), ok
			}
			add := func(ns, k string, d int64, ttl time.Duration) int64 {
				t.Helper()
				n, err := s.Add(ctx, ns, k, d, ttl)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			t.Run("namespaces", func(t *testing.T) {
				s.Set(ctx, "a", "k", []byte("v"), 0)
				if v, ok := get("a", "k"); !ok || v != "v" {
					t.Fatalf("Get = %q %v", v, ok)
				}
				if _, ok := get("b", "k"); ok {
					t.Fatal("namespace b sees namespace a's key")
				}
				// Namespaces and keys that could run together stay apart.
				s.Set(ctx, "a:b", "c", []byte("1"), 0)
				if _, ok := get("a", "b:c"); ok {
					t.Fatal(`"a:b"/"c" and "a"/"b:c" are one key`)
				}
			})
			t.Run("binary", func(t *testing.T) {
				val := []byte{0, 1, 2, 0xff, '\r', '\n'}
				s.Set(ctx, "a", "\x00{k}\xff", val, 0)
				if v, ok := get("a", "\x00{k}\xff"); !ok || v != string(val) {
					t.Fatalf("Get = %q %v", v, ok)
				}
			})
			t.Run("set ttl", func(t *testing.T) {
				s.Set(ctx, "a", "t", []byte("x"), 50*time.Millisecond)
				if _, ok := get("a", "t"); !ok {
					t.Fatal("gone before its TTL")
				}
				time.Sleep(120 * time.Millisecond)
				if _, ok := get("a", "t"); ok {
					t.Fatal("outlived its TTL")
				}
				// Set with ttl 0 drops an earlier TTL.
				s.Set(ctx, "a", "t", []byte("x"), 50*time.Millisecond)
				s.Set(ctx, "a", "t", []byte("y"), 0)
				time.Sleep(120 * time.Millisecond)
				if v, ok := get("a", "t"); !ok || v != "y" {
					t.Fatalf("a ttl-0 Set still expired: %q %v", v, ok)
				}
			})
			t.Run("add ttl on creation only", func(t *testing.T) {
				if n := add("a", "c", 1, 100*time.Millisecond); n != 1 {
					t.Fatalf("first Add = %d", n)
				}
				time.Sleep(50 * time.Millisecond)
				if n := add("a", "c", 1, time.Hour); n != 2 {
					t.Fatalf("second Add = %d", n)
				}
				time.Sleep(100 * time.Millisecond)
				if _, ok := get("a", "c"); ok {
					t.Fatal("the counter outlived the TTL of its first Add")
				}
				if n := add("a", "c", 5, 0); n != 5 {
					t.Fatalf("Add after expiry = %d, want 5", n)
				}
				// An existing key without expiry keeps none.
				add("a", "c", 1, 30*time.Millisecond)
				time.Sleep(80 * time.Millisecond)
				if v, ok := get("a", "c"); !ok || v != "6" {
					t.Fatalf("a TTL was put on a key that had none: %q %v", v, ok)
				}
			})
			t.Run("counters", func(t *testing.T) {
				for _, c := range []struct {
					old   string
					delta int64
					want  int64
				}{
					{"41", 1, 42},
					{"-5", 2, -3},
					{"not a number", 3, 3},
					{"", 3, 3},
					{"007", 1, 1},
					{"+5", 1, 1},
					{"-0", 1, 1},
					{" 5", 1, 1},
					{"5.0", 1, 1},
					{"1e3", 1, 1},
					{"99999999999999999999", 1, 1},
					{strconv.FormatInt(math.MaxInt64, 10), 1, 1},
					{strconv.FormatInt(math.MinInt64, 10), -1, -1},
					{strconv.FormatInt(1<<53+1, 10), 2, 1<<53 + 3},
				} {
					t.Run(strconv.Quote(c.old), func(t *testing.T) {
						s.Set(ctx, "n", "k", []byte(c.old), 0)
						if n := add("n", "k", c.delta, 0); n != c.want {
							t.Fatalf("Add(%q, %d) = %d, want %d", c.old, c.delta, n, c.want)
						}
						if v, _ := get("n", "k"); v != strconv.FormatInt(c.want, 10) {
							t.Fatalf("reads back %q", v)
						}
					})
				}
			})
			t.Run("delete", func(t *testing.T) {
				s.Set(ctx, "a", "d", []byte("v"), 0)
				s.Delete(ctx, "a", "d")
				if _, ok := get("a", "d"); ok {
					t.Fatal("Delete left the key")
				}
				if err := s.Delete(ctx, "a", "never"); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("value quota", func(t *testing.T) {
				s.(plugins.Limiter).Limit("q", 1024, 100)
				err := s.Set(ctx, "q", "big", make([]byte, 2048), 0)
				var qe *plugins.QuotaError
				if !errors.As(err, &qe) || qe.Quota != "shared_max_bytes" {
					t.Fatalf("a 2KiB value under a 1KiB quota: %v", err)
				}
				if err := s.Set(ctx, "q", "small", make([]byte, 100), 0); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("concurrent adds", func(t *testing.T) {
				var wg sync.WaitGroup
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 100 {
							if _, err := s.Add(ctx, "p", "n", 1, time.Minute); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				if v, _ := get("p", "n"); v != "800" {
					t.Fatalf("n = %q, want 800", v)
				}
			})
		})
	}
}

// TestAddAcrossClients is what several proxies on one Redis rely on: adds
// from separate clients (separate pools, separate connections) are one
// atomic counter, and exactly one of them creates the key.
func TestAddAcrossClients(t *testing.T) {
	srv := redistest.Start(t)
	c := sharedConfig(t, srv.Addr())
	stores := []*redisstore.Store{open(t, c), open(t, c), open(t, c)}
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]bool{}
	for _, s := range stores {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					n, err := s.Add(ctx, "rl", "client", 1, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[n] {
						t.Errorf("two adds returned %d", n)
					}
					seen[n] = true
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(seen) != 600 || !seen[1] || !seen[600] {
		t.Fatalf("%d distinct results; want 1..600", len(seen))
	}
}

// TestFailure checks each failure a Redis can have: every call returns an
// error within its deadline (never hangs), and the store recovers by
// itself when Redis is back.
func TestFailure(t *testing.T) {
	ctx := context.Background()
	within := func(t *testing.T, s *redisstore.Store, limit time.Duration) error {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond) // what the host gives a call
		defer cancel()
		start := time.Now()
		_, err := s.Add(cctx, "f", "k", 1, time.Minute)
		if d := time.Since(start); d > limit {
			t.Fatalf("the call took %s, more than %s", d, limit)
		}
		return err
	}
	t.Run("killed and restarted", func(t *testing.T) {
		srv := redistest.Start(t)
		s := open(t, sharedConfig(t, srv.Addr()))
		if err := within(t, s, time.Second); err != nil {
			t.Fatal(err)
		}
		srv.Kill()
		for range 3 {
			if err := within(t, s, 200*time.Millisecond); err == nil {
				t.Fatal("Add succeeded with Redis down")
			}
		}
		srv.Restart()
		var err error
		for range 20 { // a connection that died with the old process may fail once
			if err = within(t, s, time.Second); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("no recovery after restart: %v", err)
		}
	})
	t.Run("stalled socket", func(t *testing.T) {
		s := open(t, sharedConfig(t, redistest.Stall(t)))
		if err := within(t, s, 200*time.Millisecond); err == nil {
			t.Fatal("Add succeeded against a socket that never answers")
		}
	})
	t.Run("debug sleep", func(t *testing.T) {
		srv := redistest.Start(t)
		s := open(t, sharedConfig(t, srv.Addr()))
		if err := within(t, s, time.Second); err != nil {
			t.Fatal(err)
		}
		srv.Sleep(time.Second)
		if err := within(t, s, 200*time.Millisecond); err == nil {
			t.Fatal("Add succeeded while Redis slept")
		}
	})
}
