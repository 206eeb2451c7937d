;; Never returns from _initialize.
(module
  (memory (export "memory") 1)
  (func (export "_initialize") (loop $forever (br $forever)))
  (func (export "sluice_abi_version") (result i32) (i32.const 1)))
