;; Adds 1 to the shared counter "hits" 100000 times per request: a guest
;; that spends its hook on shared-store round trips.
;; Build: wat2wasm adds.wat -o adds.wasm (the tests do it).
(module
  (import "sluice" "shared_add" (func $add (param i32 i32 i64 i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hits")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (local $i i32)
    (loop $more
      (drop (call $add (i32.const 0) (i32.const 4) (i64.const 1) (i64.const 60000)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_s (local.get $i) (i32.const 100000))))
    (i32.const 0)))
