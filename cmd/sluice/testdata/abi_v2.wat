;; A filter built for ABI v2: the host (v1) must refuse it at load.
;; Built by the tests with: wat2wasm testdata/abi_v2.wat -o abi_v2.wasm
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 2))
  (func (export "sluice_configure") (param i32) (result i32) (i32.const 0)))
