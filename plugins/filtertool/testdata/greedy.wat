;; Asks for 64MiB more memory, over any default memory_limit, and traps when
;; the sandbox refuses (memory.grow returns -1), as a guest allocator does.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (if (i32.eq (memory.grow (i32.const 1024)) (i32.const -1)) (then unreachable))
    (i32.const 0)))
