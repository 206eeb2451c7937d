;; The well-behaved neighbour: counts requests in the shared store, keeps a
;; small per-request value, continues every request and passes every
;; message. The suite requires its route to keep answering while another
;; route's filter attacks the proxy.
(module
  (import "sluice" "shared_add" (func $shared_add (param i32 i32 i64 i64) (result i64)))
  (import "sluice" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hits")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (drop (call $shared_add (i32.const 0) (i32.const 4) (i64.const 1) (i64.const 0)))
    (call $state_set (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4))
    (i32.const 0))
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32) (i32.const 0)))
