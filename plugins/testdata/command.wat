;; A WASI command: it exports _start and no _initialize, as a Go or TinyGo
;; program built without -buildmode=c-shared does. The loader refuses it.
(module
  (memory (export "memory") 1)
  (func (export "_start"))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (i32.const 0)))
