package plugins

import (
	"context"

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
