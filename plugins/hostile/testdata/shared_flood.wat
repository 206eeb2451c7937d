;; Shared-store flood: stores 1KiB under a new key without expiry, again
;; and again, keys starting from the monotonic clock so every request adds
;; keys the store has not seen. Documented outcome: shared_set traps as ABI
;; misuse naming shared_max_bytes or shared_max_keys, and on_error = "deny"
;; answers 503; the store keeps no more than the plugin's quota.
(module
  (import "sluice" "shared_set" (func $shared_set (param i32 i32 i32 i32 i64)))
  (import "sluice" "clock" (func $clock (param i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (local $k i64)
    (local.set $k (call $clock (i32.const 1)))
    (loop $next
      (i64.store (i32.const 0) (local.get $k))
      (call $shared_set (i32.const 0) (i32.const 8) (i32.const 1024) (i32.const 1024) (i64.const 0))
      (local.set $k (i64.add (local.get $k) (i64.const 1)))
      (br $next))
    (i32.const 0)))
