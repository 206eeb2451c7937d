;; Refuses every config.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_configure") (param i32) (result i32) (i32.const 7)))
