;; Passes pointers outside its memory: the host must trap it, not crash.
;; on_request_headers: a header name far past the end of memory.
;; on_message: a buffer that starts inside memory but runs past its end.
(module
  (import "sluice" "get_header" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "sluice" "get_message" (func $get_message (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (drop (call $get_header (i32.const 0) (i32.const 0xffffff00) (i32.const 16) (i32.const 0) (i32.const 0)))
    (i32.const 0))
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32)
    (drop (call $get_message (i32.const 65530) (i32.const 100)))
    (i32.const 0)))
