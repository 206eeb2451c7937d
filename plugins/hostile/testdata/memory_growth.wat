;; Memory growth: grows its memory 1MiB at a time until the host refuses
;; (memory.grow returns -1 at memory_limit), writes to every page so the
;; memory is really resident, then traps. Documented outcome: the growth
;; stops at memory_limit, the trap discards the instance, and on_error =
;; "deny" answers 503.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (block $full
      (loop $grow
        (br_if $full (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $grow)))
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.mul (memory.size) (i32.const 65536)))
    unreachable))
