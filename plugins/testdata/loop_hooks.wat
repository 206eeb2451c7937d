;; Never returns from any hook.
(module
  (memory (export "memory") 1)
  (func $forever (loop $l (br $l)))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (call $forever) (i32.const 0))
  (func (export "sluice_on_response_headers") (result i32) (call $forever) (i32.const 0))
  (func (export "sluice_on_upgrade") (result i32) (call $forever) (i32.const 0))
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32) (call $forever) (i32.const 0))
  (func (export "sluice_on_close") (call $forever)))
