;; Lets every WebSocket upgrade through and never returns from on_message:
;; each message is stopped at the deadline and its session closed with 1011.
(module
  (memory (export "memory") 1)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_message") (param i32 i32 i32) (result i32)
    (loop $l (br $l))
    (i32.const 0)))
