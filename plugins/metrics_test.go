package plugins

import (
	"errors"
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

// A call over a quota is ABI misuse for the failure policy and the Stats,
// but its metrics and log cause is "quota"; its message names the key.
func TestFailCause(t *testing.T) {
	over := &quotaExceeded{fn: "state_set", QuotaError: QuotaError{Quota: "state_max_bytes", Limit: 65536, Want: 66560}}
	for _, c := range []struct {
		name string
		ce   *callError
		want string
	}{
		{"trap", &callError{kind: failTrap, err: errors.New("unreachable")}, "trap"},
		{"timeout", &callError{kind: failTimeout, err: errors.New("deadline")}, "timeout"},
		{"misuse", misuse("returned unknown action %d", 7), "abi_misuse"},
		{"quota", &callError{kind: failMisuse, err: over}, "quota"},
		{"no instance", &callError{kind: failNoInstance, err: errPoolTimeout}, "no_instance"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := failCause(c.ce).String(); got != c.want {
				t.Errorf("cause %q, want %q", got, c.want)
			}
		})
	}
	want := "state_set: over the plugin's state_max_bytes quota of 65536 (the call needs 66560)"
	if got := over.Error(); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	var qe *QuotaError
	if !errors.As(error(over), &qe) || qe.Quota != "state_max_bytes" {
		t.Errorf("errors.As to *QuotaError: %v", qe)
	}
}
