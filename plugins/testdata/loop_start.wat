;; Never returns from its start function, which runs at instantiation.
(module
  (memory (export "memory") 1)
  (func $start (loop $forever (br $forever)))
  (start $start)
  (func (export "sluice_abi_version") (result i32) (i32.const 1)))
