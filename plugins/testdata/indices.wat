;; Exercises every place a function index appears, for the deadline
;; instrumentation that shifts them: calls, call_indirect through an
;; element segment, ref.func in a global initialiser, the start function,
;; exports. on_request_headers continues only when every path reached the
;; right function; otherwise it traps.
(module
  (import "sluice" "get_header" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $started (mut i32) (i32.const 0))
  (global $ref funcref (ref.func $seven))
  (table 2 funcref)
  (elem (i32.const 0) $wrong $seven)
  (type $ret (func (result i32)))
  (func $wrong (result i32) unreachable)
  (func $seven (result i32) (i32.const 7))
  (func $start (global.set $started (i32.const 1)))
  (start $start)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (if (i32.ne (global.get $started) (i32.const 1)) (then unreachable))
    (if (i32.ne (call $seven) (i32.const 7)) (then unreachable))
    (if (i32.ne (call_indirect (type $ret) (i32.const 1)) (i32.const 7)) (then unreachable))
    (if (i32.eqz (ref.is_null (global.get $ref))) (then (i32.const 0) (return)))
    unreachable))
