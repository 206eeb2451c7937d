;; Never returns from a hook: the deadline must stop it.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
