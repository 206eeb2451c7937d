;; Boundary checks. on_request_headers sets the request header X-V to the
;; request's raw query (bytes the test chooses); on_response_headers sets the
;; status to the three digits of the response header X-Status.
(module
  (import "sluice" "get_query" (func $get_query (param i32 i32) (result i32)))
  (import "sluice" "set_header" (func $set_header (param i32 i32 i32 i32 i32)))
  (import "sluice" "get_header" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "sluice" "set_status" (func $set_status (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "X-V")
  (data (i32.const 16) "X-Status")
  (func $digit (param $p i32) (result i32) (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (local $n i32)
    (local.set $n (call $get_query (i32.const 1024) (i32.const 4096)))
    (call $set_header (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 1024) (local.get $n))
    (i32.const 0))
  (func (export "sluice_on_response_headers") (result i32)
    (drop (call $get_header (i32.const 1) (i32.const 16) (i32.const 8) (i32.const 1024) (i32.const 16)))
    (call $set_status
      (i32.add (i32.add
        (i32.mul (call $digit (i32.const 1024)) (i32.const 100))
        (i32.mul (call $digit (i32.const 1025)) (i32.const 10)))
        (call $digit (i32.const 1026))))
    (i32.const 0)))
