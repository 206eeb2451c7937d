;; Refuses every config, first logging why, as the SDKs do for a config
;; with an unknown key.
(module
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "config: unknown key \22tokenz\22")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_configure") (param i32) (result i32)
    (call $log (i32.const 2) (i32.const 16) (i32.const 28))
    (i32.const 1)))
