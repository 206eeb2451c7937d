;; Breaks the ABI without trapping: on_request_headers returns "respond"
;; without calling send_response; on_message returns the unknown action 9.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (i32.const 1))
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32) (i32.const 9)))
