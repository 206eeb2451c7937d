;; Counts requests in the shared store with a 50ms TTL and reports the count
;; (i64 LE) as the request state "n".
(module
  (import "sluice" "shared_add" (func $add (param i32 i32 i64 i64) (result i64)))
  (import "sluice" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hits")
  (data (i32.const 8) "n")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (i64.store (i32.const 512) (call $add (i32.const 0) (i32.const 4) (i64.const 1) (i64.const 50)))
    (call $state_set (i32.const 8) (i32.const 1) (i32.const 512) (i32.const 8))
    (i32.const 0)))
