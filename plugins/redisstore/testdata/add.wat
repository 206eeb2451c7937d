;; Adds 1 to the shared counter "hits" (TTL 60s) once per request.
;; Build: wat2wasm add.wat -o add.wasm (the tests do it).
(module
  (import "sluice" "shared_add" (func $add (param i32 i32 i64 i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hits")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (drop (call $add (i32.const 0) (i32.const 4) (i64.const 1) (i64.const 60000)))
    (i32.const 0)))
