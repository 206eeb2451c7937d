;; A reactor: _initialize must run before any hook, _start never.
(module
  (global $ready (mut i32) (i32.const 0))
  (memory (export "memory") 1)
  (func (export "_initialize") (global.set $ready (i32.const 1)))
  (func (export "_start") unreachable)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (if (i32.eqz (global.get $ready)) (then unreachable))
    (i32.const 0)))
