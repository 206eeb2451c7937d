;; Never returns from any hook: request, upgrade, response, message, close.
;; Each call is stopped at the plugin's deadline (503 or close 1011); after
;; breaker_failures of them in a row the plugin trips and the policy applies
;; without running it.
(module
  (memory (export "memory") 1)
  (func $forever (loop $l (br $l)))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (call $forever) (i32.const 0))
  (func (export "sluice_on_response_headers") (result i32) (call $forever) (i32.const 0))
  (func (export "sluice_on_upgrade") (result i32) (call $forever) (i32.const 0))
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32) (call $forever) (i32.const 0))
  (func (export "sluice_on_close") (call $forever)))
