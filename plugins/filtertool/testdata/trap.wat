;; Traps in every hook.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) unreachable)
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32) unreachable))
