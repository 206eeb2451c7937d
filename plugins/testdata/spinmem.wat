;; Writes to its memory for ever from a hook, with a deadline it never
;; reaches: a guest still running when its Loader is closed.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (loop $forever
      (i32.store (i32.const 1024) (i32.add (i32.load (i32.const 1024)) (i32.const 1)))
      (br $forever))
    (i32.const 0)))
