;; Exports on_message without its three parameters.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_message") (result i32) (i32.const 0)))
