package plugins

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(time.Hour)
	defer s.Close()
	var clock int64
	s.now = func() int64 { return clock }

	s.Set(ctx, "a", "k", []byte("v"), 0)
	if v, ok, _ := s.Get(ctx, "a", "k"); !ok || string(v) != "v" {
		t.Fatalf("Get = %q %v", v, ok)
	}
	if _, ok, _ := s.Get(ctx, "b", "k"); ok {
		t.Fatal("namespace b sees namespace a's key")
	}
	// A non-counter value counts as 0; a counter reads back as decimal.
	if n, _ := s.Add(ctx, "a", "k", 5, 0); n != 5 {
		t.Fatalf("Add on a non-counter = %d, want 5", n)
	}
	if v, _, _ := s.Get(ctx, "a", "k"); string(v) != "5" {
		t.Fatalf("counter reads %q", v)
	}
	// A missing key starts at 0 with the TTL; an existing key keeps its own.
	s.Add(ctx, "a", "c", 1, 10*time.Millisecond)
	clock = int64(5 * time.Millisecond)
	if n, _ := s.Add(ctx, "a", "c", 1, time.Hour); n != 2 {
		t.Fatalf("second Add = %d", n)
	}
	clock = int64(10 * time.Millisecond)
	if _, ok, _ := s.Get(ctx, "a", "c"); ok {
		t.Fatal("the counter outlived the TTL of its first Add")
	}
	if n, _ := s.Add(ctx, "a", "c", 1, 0); n != 1 {
		t.Fatalf("Add after expiry = %d, want 1", n)
	}
	s.Delete(ctx, "a", "c")
	if _, ok, _ := s.Get(ctx, "a", "c"); ok {
		t.Fatal("Delete left the key")
	}
	// Sweep reclaims expired keys nobody reads.
	s.Set(ctx, "x", "gone", []byte("1"), time.Millisecond)
	clock += int64(time.Second)
	s.Sweep()
	if b, k := s.Usage("x"); b != 0 || k != 0 {
		t.Fatalf("after Sweep namespace x holds %d bytes in %d keys, want nothing", b, k)
	}
}

func TestMemoryStoreConcurrentAdd(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(time.Millisecond) // the sweep runs during the adds
	defer s.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				s.Add(ctx, "p", "n", 1, 0)
				s.Get(ctx, "p", "n")
			}
		}()
	}
	wg.Wait()
	if v, _, _ := s.Get(ctx, "p", "n"); string(v) != "4000" {
		t.Fatalf("n = %q, want 4000", v)
	}
}

func TestMemoryStoreQuotas(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(time.Hour)
	defer s.Close()
	// Two keys of a 2-byte name and a 10-byte value: 76 bytes each with the
	// per-key overhead.
	s.Limit("p", 200, 2)
	ten := []byte("0123456789")
	for _, k := range []string{"k1", "k2"} {
		if err := s.Set(ctx, "p", k, ten, 0); err != nil {
			t.Fatalf("Set %s: %v", k, err)
		}
	}
	var qe *QuotaError
	if err := s.Set(ctx, "p", "k3", nil, 0); !errors.As(err, &qe) || qe.Quota != "shared_max_keys" {
		t.Fatalf("third key: %v, want a shared_max_keys QuotaError", err)
	}
	if _, err := s.Add(ctx, "p", "k3", 1, 0); !errors.As(err, &qe) || qe.Quota != "shared_max_keys" {
		t.Fatalf("Add of a third key: %v, want a shared_max_keys QuotaError", err)
	}
	// Growing a value counts only the difference; past the bytes quota it is
	// refused and the old value stays.
	if err := s.Set(ctx, "p", "k1", make([]byte, 100), 0); !errors.As(err, &qe) || qe.Quota != "shared_max_bytes" {
		t.Fatalf("growing k1: %v, want a shared_max_bytes QuotaError", err)
	}
	if v, _, _ := s.Get(ctx, "p", "k1"); string(v) != string(ten) {
		t.Fatalf("a refused Set changed k1 to %q", v)
	}
	if err := s.Set(ctx, "p", "k1", make([]byte, 40), 0); err != nil {
		t.Fatalf("growing k1 within the quota: %v", err)
	}
	if b, k := s.Usage("p"); b != 2*(2+64)+40+10 || k != 2 {
		t.Fatalf("usage %d bytes, %d keys", b, k)
	}
	// Deleting and expiring give usage back.
	s.Delete(ctx, "p", "k1")
	if err := s.Set(ctx, "p", "k3", ten, time.Millisecond); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	s.Sweep()
	if b, k := s.Usage("p"); b != 76 || k != 1 {
		t.Fatalf("after delete and sweep: %d bytes, %d keys; want 76, 1", b, k)
	}
	// Another namespace has its own quota (none here).
	for i := range 10 {
		if err := s.Set(ctx, "q", strconv.Itoa(i), ten, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// No work in one namespace holds a lock another namespace needs: with every
// lock of namespace "big" held (as a sweep or a flood of its own would hold
// one of them), calls into "small" still complete.
func TestMemoryStoreNamespacesDoNotShareLocks(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(time.Hour)
	defer s.Close()
	s.Set(ctx, "big", "k", []byte("v"), 0)
	s.Set(ctx, "small", "k", []byte("v"), 0)
	big := s.space("big")
	for i := range big.shards {
		big.shards[i].mu.Lock()
	}
	defer func() {
		for i := range big.shards {
			big.shards[i].mu.Unlock()
		}
	}()
	done := make(chan error, 1)
	go func() {
		if _, ok, _ := s.Get(ctx, "small", "k"); !ok {
			done <- errors.New("small lost its key")
			return
		}
		if _, err := s.Add(ctx, "small", "n", 1, time.Minute); err != nil {
			done <- err
			return
		}
		done <- s.Set(ctx, "fresh", "k", []byte("v"), 0)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call into another namespace waited for namespace big's locks")
	}
}
