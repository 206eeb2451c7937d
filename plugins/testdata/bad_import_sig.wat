;; Imports get_header with the wrong signature.
(module
  (import "sluice" "get_header" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1)))
