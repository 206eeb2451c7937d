;; Imports a host function that does not exist (a typo of get_header).
(module
  (import "sluice" "get_headerz" (func (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1)))
