;; Built for an ABI this host does not speak.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 2)))
