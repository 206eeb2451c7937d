;; Oversized WebSocket messages from a filter. The first byte of the
;; client's message picks the attack:
;;   "a" set_message with 2MiB, over server.websocket.max_message_size;
;;   "b" inject_message of 2MiB, over the same;
;;   "c" inject_message of 512KiB, again and again, over max_injected_bytes;
;;   "d" inject_message of 1 byte, again and again, over
;;       max_injected_messages.
;; Documented outcome for each: ABI misuse naming the limit, and on_error =
;; "deny" closes the WebSocket with 1011.
(module
  (import "sluice" "get_message" (func $get_message (param i32 i32) (result i32)))
  (import "sluice" "set_message" (func $set_message (param i32 i32)))
  (import "sluice" "inject_message" (func $inject (param i32 i32 i32 i32)))
  (memory (export "memory") 40)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_message") (param $dir i32) (param $kind i32) (param $len i32) (result i32)
    (local $v i32)
    (drop (call $get_message (i32.const 0) (i32.const 1024)))
    (local.set $v (i32.load8_u (i32.const 0)))
    (memory.fill (i32.const 65536) (i32.const 0x61) (i32.const 0x200000))
    (if (i32.eq (local.get $v) (i32.const 0x61))
      (then (call $set_message (i32.const 65536) (i32.const 0x200000))))
    (if (i32.eq (local.get $v) (i32.const 0x62))
      (then (call $inject (i32.const 1) (i32.const 1) (i32.const 65536) (i32.const 0x200000))))
    (if (i32.eq (local.get $v) (i32.const 0x63))
      (then (loop $more
        (call $inject (i32.const 1) (i32.const 1) (i32.const 65536) (i32.const 0x80000))
        (br $more))))
    (if (i32.eq (local.get $v) (i32.const 0x64))
      (then (loop $more
        (call $inject (i32.const 1) (i32.const 1) (i32.const 65536) (i32.const 1))
        (br $more))))
    (i32.const 0)))
