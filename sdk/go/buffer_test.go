package sluice

import (
	"bytes"
	"strings"
	"testing"
)

func TestIndexNUL(t *testing.T) {
	for n := 0; n < 40; n++ {
		b := bytes.Repeat([]byte{0xff}, n)
		if got := indexNUL(b); got != -1 {
			t.Fatalf("no NUL in %d bytes: %d", n, got)
		}
		for i := 0; i < n; i++ {
			c := bytes.Clone(b)
			c[i] = 0
			if i+1 < n {
				c[n-1] = 0 // a later NUL must not win
			}
			if got := indexNUL(c); got != i {
				t.Fatalf("NUL at %d of %d: got %d", i, n, got)
			}
		}
	}
	// Bytes 0x01 and 0x80 next to each other are the classic false
	// positives of the bit trick; the byte loop must settle them.
	if got := indexNUL([]byte{1, 0x80, 1, 0x80, 1, 0x80, 1, 0x80, 'a', 0}); got != 9 {
		t.Fatalf("got %d", got)
	}
}

func TestSplitList(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "",
		"a\x00":                      "a",
		"a\x00\x00bb\x00":            "a,,bb",
		"a long value here\x00x\x00": "a long value here,x",
		"unterminated":               "",
	} {
		if got := strings.Join(splitList([]byte(in)), ","); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
