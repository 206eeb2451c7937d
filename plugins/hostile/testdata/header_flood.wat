;; Header flood: adds 1KiB values to a request header until the host stops
;; it, so the request would go upstream with a head of megabytes. The last
;; character of the path picks a variant: "c" sets a header value with a
;; control byte (0x01) instead. Documented outcome: add_header traps as ABI
;; misuse naming server.max_header_bytes (or the control byte), and
;; on_error = "deny" answers 503; nothing reaches the upstream.
(module
  (import "sluice" "add_header" (func $add_header (param i32 i32 i32 i32 i32)))
  (import "sluice" "set_header" (func $set_header (param i32 i32 i32 i32 i32)))
  (import "sluice" "get_path" (func $get_path (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "X-Flood")
  (data (i32.const 32) "bad\01value")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (local $n i32)
    (local.set $n (call $get_path (i32.const 512) (i32.const 256)))
    (if (i32.eq (i32.load8_u (i32.add (i32.const 511) (local.get $n))) (i32.const 0x63))
      (then (call $set_header (i32.const 0) (i32.const 0) (i32.const 7) (i32.const 32) (i32.const 9))))
    (memory.fill (i32.const 1024) (i32.const 0x61) (i32.const 1024))
    (loop $next
      (call $add_header (i32.const 0) (i32.const 0) (i32.const 7) (i32.const 1024) (i32.const 1024))
      (br $next))
    (i32.const 0)))
