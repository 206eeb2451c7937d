package plugins

import (
	"reflect"
	"testing"
)

func TestSplitStack(t *testing.T) {
	for _, c := range []struct {
		in, msg string
		frames  []string
	}{
		{"trap: wasm error: unreachable\nwasm stack trace:\n\t.boom()\n\t.$7(i32,i32,i32) i32", "trap: wasm error: unreachable", []string{"boom()", "$7(i32,i32,i32) i32"}},
		{"timeout: exceeded the hook deadline of 10ms", "timeout: exceeded the hook deadline of 10ms", nil},
		{"trap: x\nwasm stack trace:\n", "trap: x", nil},
	} {
		msg, frames := splitStack(c.in)
		if msg != c.msg || !reflect.DeepEqual(frames, c.frames) {
			t.Errorf("splitStack(%q) = %q, %q; want %q, %q", c.in, msg, frames, c.msg, c.frames)
		}
	}
}
