;; A filter whose configure traps: the load must fail and name the trap.
;; Built by the tests with: wat2wasm testdata/configure_trap.wat -o configure_trap.wasm
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_configure") (param i32) (result i32) unreachable))
