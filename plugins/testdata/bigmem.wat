;; Asks for 300 pages (18.75MiB) up front, over the default 16MiB cap.
(module
  (memory (export "memory") 300)
  (func (export "sluice_abi_version") (result i32) (i32.const 1)))
