package plugins

import (
	"context"
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
