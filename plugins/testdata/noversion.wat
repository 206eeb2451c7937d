;; Not built for Sluice: no sluice_abi_version export.
(module
  (memory (export "memory") 1)
  (func (export "sluice_on_request_headers") (result i32) (i32.const 0)))
