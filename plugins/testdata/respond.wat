;; Answers 401 locally, with WWW-Authenticate set through header kind
;; "response" before send_response, and Content-Type from send_response.
;; on_response_headers replaces the upstream's response with 502.
(module
  (import "sluice" "set_header" (func $set (param i32 i32 i32 i32 i32)))
  (import "sluice" "send_response" (func $send (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "WWW-Authenticate")
  (data (i32.const 32) "Bearer")
  (data (i32.const 64) "Content-Type\00text/plain\00")
  (data (i32.const 128) "denied\n")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (call $set (i32.const 1) (i32.const 0) (i32.const 16) (i32.const 32) (i32.const 6))
    (call $send (i32.const 401) (i32.const 64) (i32.const 24) (i32.const 128) (i32.const 7))
    (i32.const 1))
  (func (export "sluice_on_response_headers") (result i32)
    (call $send (i32.const 502) (i32.const 0) (i32.const 0) (i32.const 128) (i32.const 7))
    (i32.const 1)))
