;; Sets a 40,000-byte header and removes it, ten times over, then sets it
;; once more: the headers never exceed 64KiB at any moment, so the host must
;; allow it. With a query ("?twice"), it then adds a second value of the
;; same size, which takes the headers past 64KiB.
(module
  (import "sluice" "set_header" (func $set_header (param i32 i32 i32 i32 i32)))
  (import "sluice" "add_header" (func $add_header (param i32 i32 i32 i32 i32)))
  (import "sluice" "remove_header" (func $remove_header (param i32 i32 i32)))
  (import "sluice" "get_query" (func $get_query (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "X-Big")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (local $i i32)
    (memory.fill (i32.const 1024) (i32.const 0x61) (i32.const 40000))
    (loop $again
      (call $set_header (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 1024) (i32.const 40000))
      (call $remove_header (i32.const 0) (i32.const 0) (i32.const 5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 10))))
    (call $set_header (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 1024) (i32.const 40000))
    (if (i32.gt_s (call $get_query (i32.const 512) (i32.const 16)) (i32.const 0))
      (then (call $add_header (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 1024) (i32.const 40000))))
    (i32.const 0)))
