package plugins

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sluiceproxy/sluice/abi"
	"github.com/tetratelabs/wazero/api"
)

// The host functions of per-request state and the shared store.

func hStateGet(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	key := in.read(abi.FuncStateGet, stack[0], stack[1])
	v, ok := in.state(abi.FuncStateGet).Get(string(key))
	if !ok {
		in.read(abi.FuncStateGet, stack[2], stack[3])
		stack[0] = absent
		return
	}
	stack[0] = in.put(abi.FuncStateGet, stack[2], stack[3], v)
}

func hStateSet(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	key := in.read(abi.FuncStateSet, stack[0], stack[1])
	v := in.read(abi.FuncStateSet, stack[2], stack[3])
	st := in.state(abi.FuncStateSet)
	k := string(key)
	keys, bytes := st.After(k, v)
	if q := &in.p.quotas; keys > q.stateKeys {
		in.overQuota(abi.FuncStateSet, "state_max_keys", int64(q.stateKeys), int64(keys))
	} else if bytes > q.stateBytes {
		in.overQuota(abi.FuncStateSet, "state_max_bytes", int64(q.stateBytes), int64(bytes))
	}
	st.Set(k, v)
}

func hStateDelete(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	key := in.read(abi.FuncStateDelete, stack[0], stack[1])
	in.state(abi.FuncStateDelete).Delete(string(key))
}

// sharedFailed traps the guest when the shared store fails: the hook cannot
// go on with a value it did not get, and the failure policy decides.
//
// A write over one of the plugin's quotas is misuse instead, naming the
// quota.
func (in *instance) sharedFailed(fn string, err error) {
	var qe *QuotaError
	if errors.As(err, &qe) {
		in.overQuota(fn, qe.Quota, qe.Limit, qe.Want)
	}
	panic(fmt.Errorf("%s: shared store: %w", fn, err))
}

func ttlOf(in *instance, fn string, ms int64) time.Duration {
	if ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		in.misuse("%s: ttl_ms %d is out of range", fn, ms)
	}
	return time.Duration(ms) * time.Millisecond
}

func hSharedGet(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedGet
	key := in.read(fn, stack[0], stack[1])
	in.read(fn, stack[2], stack[3])
	v, ok, err := in.p.shared.Get(ctx, in.p.name, string(key))
	if err != nil {
		in.sharedFailed(fn, err)
	}
	if !ok {
		stack[0] = absent
		return
	}
	stack[0] = in.put(fn, stack[2], stack[3], v)
}

func hSharedSet(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedSet
	key := in.read(fn, stack[0], stack[1])
	v := in.read(fn, stack[2], stack[3])
	ttl := ttlOf(in, fn, int64(stack[4])) // i64: the whole slot
	if err := in.p.shared.Set(ctx, in.p.name, string(key), v, ttl); err != nil {
		in.sharedFailed(fn, err)
	}
}

func hSharedDelete(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedDelete
	key := in.read(fn, stack[0], stack[1])
	if err := in.p.shared.Delete(ctx, in.p.name, string(key)); err != nil {
		in.sharedFailed(fn, err)
	}
}

func hSharedAdd(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedAdd
	key := in.read(fn, stack[0], stack[1])
	delta := int64(stack[2])
	ttl := ttlOf(in, fn, int64(stack[3]))
	n, err := in.p.shared.Add(ctx, in.p.name, string(key), delta, ttl)
	if err != nil {
		in.sharedFailed(fn, err)
	}
	stack[0] = api.EncodeI64(n)
}
