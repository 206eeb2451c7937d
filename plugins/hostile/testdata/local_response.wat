;; Oversized and malformed local responses. The last character of the path
;; picks the attack:
;;   "b" send_response(200) with an 8MiB body, over max_local_response;
;;   "h" send_response(200) with 100KiB of header pairs, over
;;       server.max_header_bytes;
;;   "n" send_response(204) with a body;
;;   "s" on the response: set_status(101);
;;   "t" on the response: set_status(204) while the upstream's body follows.
;; Documented outcome for each: ABI misuse, and on_error = "deny" answers 503.
(module
  (import "sluice" "send_response" (func $send (param i32 i32 i32 i32 i32)))
  (import "sluice" "set_status" (func $set_status (param i32)))
  (import "sluice" "get_path" (func $get_path (param i32 i32) (result i32)))
  (memory (export "memory") 160)
  (func $variant (result i32) (local $n i32)
    (local.set $n (call $get_path (i32.const 512) (i32.const 256)))
    (i32.load8_u (i32.add (i32.const 511) (local.get $n))))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (local $v i32) (local $p i32)
    (local.set $v (call $variant))
    (if (i32.eq (local.get $v) (i32.const 0x62)) ;; b
      (then (call $send (i32.const 200) (i32.const 0) (i32.const 0) (i32.const 65536) (i32.const 0x800000))))
    (if (i32.eq (local.get $v) (i32.const 0x68)) ;; h: "X-H\0" + 1KiB value + "\0", 100 times
      (then
        (local.set $p (i32.const 65536))
        (loop $pair
          (i32.store (local.get $p) (i32.const 0x00482d58)) ;; "X-H\0"
          (memory.fill (i32.add (local.get $p) (i32.const 4)) (i32.const 0x61) (i32.const 1024))
          (i32.store8 (i32.add (local.get $p) (i32.const 1028)) (i32.const 0))
          (local.set $p (i32.add (local.get $p) (i32.const 1029)))
          (br_if $pair (i32.lt_u (local.get $p) (i32.add (i32.const 65536) (i32.mul (i32.const 1029) (i32.const 100))))))
        (call $send (i32.const 200) (i32.const 65536) (i32.sub (local.get $p) (i32.const 65536)) (i32.const 0) (i32.const 0))))
    (if (i32.eq (local.get $v) (i32.const 0x6e)) ;; n
      (then (call $send (i32.const 204) (i32.const 0) (i32.const 0) (i32.const 65536) (i32.const 5))))
    (i32.eq (i32.or (i32.eq (local.get $v) (i32.const 0x73)) (i32.eq (local.get $v) (i32.const 0x74))) (i32.const 0)))
  (func (export "sluice_on_response_headers") (result i32) (local $v i32)
    (local.set $v (call $variant))
    (if (i32.eq (local.get $v) (i32.const 0x73)) (then (call $set_status (i32.const 101))))
    (if (i32.eq (local.get $v) (i32.const 0x74)) (then (call $set_status (i32.const 204))))
    (i32.const 0)))
