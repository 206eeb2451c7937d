;; Traps in on_request_headers when the request has an X-Trap header, and
;; continues otherwise: the circuit breaker's tests steer it per call.
(module
  (import "sluice" "get_header" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "X-Trap")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (if (i32.gt_s (call $get_header (i32.const 0) (i32.const 0) (i32.const 6) (i32.const 0) (i32.const 0)) (i32.const 0))
      (then unreachable))
    (i32.const 0)))
