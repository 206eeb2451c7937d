;; Tries to grow its memory by 4 pages and answers 200 when the host refused
;; (memory.grow returned -1), 201 when it grew.
(module
  (import "sluice" "send_response" (func $send (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (if (i32.eq (memory.grow (i32.const 4)) (i32.const -1))
      (then (call $send (i32.const 200) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
      (else (call $send (i32.const 201) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))))
    (i32.const 1)))
