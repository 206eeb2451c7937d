;; State flood: stores 1KiB under a new key, again and again, in the
;; request's state (on_request_headers) and in the WebSocket connection's
;; state (on_message), as if it kept every message it ever saw; a request
;; whose path ends in "w" (the WebSocket upgrade) passes. Documented
;; outcome: state_set traps as ABI misuse naming state_max_keys or
;; state_max_bytes, and on_error = "deny" answers 503 or closes the
;; WebSocket with 1011.
(module
  (import "sluice" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (import "sluice" "get_path" (func $get_path (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $flood (local $i i32)
    (loop $next
      (i32.store (i32.const 0) (local.get $i))
      (call $state_set (i32.const 0) (i32.const 4) (i32.const 1024) (i32.const 1024))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (local $n i32)
    (local.set $n (call $get_path (i32.const 512) (i32.const 256)))
    (if (i32.ne (i32.load8_u (i32.add (i32.const 511) (local.get $n))) (i32.const 0x77))
      (then (call $flood)))
    (i32.const 0))
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32) (call $flood) (i32.const 0)))
