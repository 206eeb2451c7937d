;; Logs 50 lines through the log host function on every request.
(module
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "chatty line")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (local $i i32)
    (loop $next
      (call $log (i32.const 0) (i32.const 0) (i32.const 11))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 50))))
    (i32.const 0)))
