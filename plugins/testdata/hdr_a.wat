;; First filter of a chain: changes the request for the next one.
;; Sets X-A, appends to X-Multi, removes X-Remove (named in lower case),
;; rewrites the path and query, and sets a header on a local response it
;; then does not send.
(module
  (import "sluice" "set_header" (func $set (param i32 i32 i32 i32 i32)))
  (import "sluice" "add_header" (func $add (param i32 i32 i32 i32 i32)))
  (import "sluice" "remove_header" (func $remove (param i32 i32 i32)))
  (import "sluice" "set_path" (func $set_path (param i32 i32)))
  (import "sluice" "set_query" (func $set_query (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "X-A")
  (data (i32.const 8) "1")
  (data (i32.const 16) "X-Multi")
  (data (i32.const 32) "b")
  (data (i32.const 40) "x-remove")
  (data (i32.const 64) "/rewritten")
  (data (i32.const 80) "q=1")
  (data (i32.const 96) "X-Pending")
  (data (i32.const 112) "lost")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (call $set (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 8) (i32.const 1))
    (call $add (i32.const 0) (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 1))
    (call $remove (i32.const 0) (i32.const 40) (i32.const 8))
    (call $set_path (i32.const 64) (i32.const 10))
    (call $set_query (i32.const 80) (i32.const 3))
    (call $set (i32.const 1) (i32.const 96) (i32.const 9) (i32.const 112) (i32.const 4))
    (i32.const 0)))
