;; Imports from a module that is neither "sluice" nor WASI.
(module
  (import "env" "abort" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1)))
