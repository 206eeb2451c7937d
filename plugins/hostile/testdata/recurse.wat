;; Stack recursion: a function that calls itself for ever, so the call
;; stack grows until the host stops it. Documented outcome: the guest traps
;; (stack overflow) at a stack size the plugin's memory budget counts, the
;; instance is discarded, and on_error = "deny" answers 503.
(module
  (memory (export "memory") 1)
  (func $down (param $n i64) (result i64)
    (i64.add (call $down (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (drop (call $down (i64.const 0)))
    (i32.const 0)))
