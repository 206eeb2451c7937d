//go:build !linux

package testkit

import "testing"

// HangingAddr skips the test: the way it makes a connect hang (a full
// accept queue dropping SYNs) is Linux behaviour.
func HangingAddr(t testing.TB) string {
	t.Helper()
	t.Skip("testkit: skipped: HangingAddr relies on Linux dropping SYNs to a full accept queue")
	return ""
}
