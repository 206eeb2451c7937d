;; Recursion: on_request_headers calls a function that calls itself for
;; ever; on_message recurses as deep as the message is long, then returns.
;; The stack guard must stop the first with a stack overflow and let the
;; second, a few hundred frames deep, run. on_upgrade calls a leaf function
;; (one that calls nothing) 1,000 times, for the guard's benchmark.
(module
  (memory (export "memory") 1)
  (func $forever (param $n i64) (result i64)
    (i64.add (call $forever (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
  (func $depth (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $depth (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func $leaf (param $a i32) (result i32) (i32.add (local.get $a) (i32.const 3)))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_upgrade") (result i32) (local $i i32) (local $acc i32)
    (loop $next
      (local.set $acc (call $leaf (local.get $acc)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 1000))))
    (i32.ne (local.get $acc) (i32.const 3000)))
  (func (export "sluice_on_request_headers") (result i32)
    (drop (call $forever (i64.const 0)))
    (i32.const 0))
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32)
    (i32.ne (call $depth (local.get 2)) (local.get 2))))
