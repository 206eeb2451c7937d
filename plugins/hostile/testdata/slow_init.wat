;; Takes 300ms of CPU in _initialize (it spins on the monotonic clock) and
;; traps in every hook: re-creating its instances after each trap would keep
;; a core busy.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func $now (result i64)
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 0)))
    (i64.load (i32.const 0)))
  (func (export "_initialize")
    (local $end i64)
    (local.set $end (i64.add (call $now) (i64.const 300000000)))
    (loop $spin (br_if $spin (i64.lt_s (call $now) (local.get $end)))))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) unreachable)
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32) unreachable))
