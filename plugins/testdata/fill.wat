;; Fills its 16MiB memory eight times, one instruction each (no loop, no
;; call: nowhere the guest checks whether its module was closed), then
;; traps. When the deadline fires during the fills, the guest traps before
;; it notices that its module was closed, and wazero, which left releasing
;; the memory to that notice, never releases it.
(module
  (memory (export "memory") 256)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.const 0x1000000))
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.const 0x1000000))
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.const 0x1000000))
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.const 0x1000000))
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.const 0x1000000))
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.const 0x1000000))
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.const 0x1000000))
    (memory.fill (i32.const 0) (i32.const 0xff) (i32.const 0x1000000))
    unreachable))
