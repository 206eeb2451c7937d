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

// The shared_* host functions: the plugin's namespace in the shared store,
// in memory or in Redis (see redisstore/RATIONALE.md for how a remote call
// counts against the hook's deadline).

// sharedFailed traps the guest when the shared store fails: the hook cannot
// go on without the answer, and the plugin's failure policy decides what
// the request or message gets. A write over a quota is ABI misuse that names
// the quota; any other error (Redis down, slow, or the hook's wait budget
// spent) is a store failure, counted and logged as such.
func (in *instance) sharedFailed(fn string, err error) {
	var qe *QuotaError
	if errors.As(err, &qe) {
		in.overQuota(fn, qe.Quota, qe.Limit, qe.Want)
	}
	err = fmt.Errorf("%s: %w", fn, err)
	in.st.sharedErr = err
	panic(err)
}

// noWait ends a call to a store that is not remote.
func noWait(err error) error { return err }

// storeCall prepares one call to the shared store and returns its context
// and the function that ends it (and annotates its error). A MemoryStore
// runs on the hook's own context and clock. A RemoteStore gets a context
// with the call's deadline (its call timeout, or what is left of the hook's
// wait budget if less), and the hook deadline's clock stops while it waits:
// the hook's timeout measures the guest, the budget measures the network
// (RATIONALE.md, "The hook deadline and the network").
func (in *instance) storeCall(fn string) (context.Context, func(error) error) {
	r, ok := in.p.shared.(RemoteStore)
	if !ok {
		return in.ctx, noWait
	}
	call, budget := r.Deadlines()
	left := budget - in.st.storeWait
	if left <= 0 {
		in.sharedFailed(fn, fmt.Errorf("the hook has spent its wait budget of %s (shared.hook_budget)", budget))
	}
	if !in.ctx.pause() {
		panic(fmt.Errorf("%s: %w", fn, context.DeadlineExceeded)) // the hook's deadline fired first
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), min(call, left))
	return ctx, func(err error) error {
		cancel()
		in.st.storeWait += time.Since(start)
		in.ctx.resume()
		if err != nil && left < call {
			err = fmt.Errorf("%w (within the rest of the hook's wait budget of %s, shared.hook_budget)", err, budget)
		}
		return err
	}
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
	sctx, end := in.storeCall(fn)
	v, ok, err := in.p.shared.Get(sctx, in.p.name, string(key))
	err = end(err)
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
	sctx, end := in.storeCall(fn)
	err := end(in.p.shared.Set(sctx, in.p.name, string(key), v, ttl))
	if err != nil {
		in.sharedFailed(fn, err)
	}
}

func hSharedDelete(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedDelete
	key := in.read(fn, stack[0], stack[1])
	sctx, end := in.storeCall(fn)
	err := end(in.p.shared.Delete(sctx, in.p.name, string(key)))
	if err != nil {
		in.sharedFailed(fn, err)
	}
}

func hSharedAdd(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceOf(ctx)
	const fn = abi.FuncSharedAdd
	key := in.read(fn, stack[0], stack[1])
	delta := int64(stack[2])
	ttl := ttlOf(in, fn, int64(stack[3]))
	sctx, end := in.storeCall(fn)
	n, err := in.p.shared.Add(sctx, in.p.name, string(key), delta, ttl)
	err = end(err)
	if err != nil {
		in.sharedFailed(fn, err)
	}
	stack[0] = api.EncodeI64(n)
}
