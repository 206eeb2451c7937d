//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import (
	"net"
	"syscall"
	"testing"
)

// BenchmarkQuiet measures the probe made before every reuse of a pooled
// connection: one recv(2) with MSG_PEEK|MSG_DONTWAIT on an idle loopback
// connection. It is the whole cost of airtight reuse on the request path.
func BenchmarkQuiet(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	srv, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	rc := newProber(c)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !quiet(rc) {
			b.Fatal("an idle connection is not quiet")
		}
	}
}

// The probe tells a quiet connection from one with a stray byte or a
// closed one.
func TestQuiet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name string
		peer func(net.Conn)
		want bool
	}{
		{"idle", func(net.Conn) {}, true},
		{"stray-byte", func(s net.Conn) { s.Write([]byte("H")) }, false},
		{"closed", func(s net.Conn) { s.Close() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tc.peer(s)
			rc := newProber(c)
			deadline := 100
			got := quiet(rc)
			for got != tc.want && deadline > 0 { // the byte or FIN may take a moment
				deadline--
				got = quiet(rc)
			}
			if got != tc.want {
				t.Errorf("quiet = %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkSyscall is the cheapest system call, for scale: on a loaded
// machine a syscall costs far more than on an idle one.
func BenchmarkSyscall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		syscall.Getppid()
	}
}
