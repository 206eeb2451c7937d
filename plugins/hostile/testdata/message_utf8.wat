;; Invalid UTF-8 in text messages from a filter. The first byte of the
;; client's (text) message picks the attack:
;;   "a" set_message replaces the text payload with bytes that are not
;;       UTF-8 (0xff 0xfe);
;;   "b" inject_message of a text message with the same bytes.
;; Documented outcome for each: ABI misuse, and on_error = "deny" closes the
;; WebSocket with 1011; no invalid text frame reaches either side.
(module
  (import "sluice" "get_message" (func $get_message (param i32 i32) (result i32)))
  (import "sluice" "set_message" (func $set_message (param i32 i32)))
  (import "sluice" "inject_message" (func $inject (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "ok \ff\fe")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_message") (param $dir i32) (param $kind i32) (param $len i32) (result i32)
    (local $v i32)
    (drop (call $get_message (i32.const 0) (i32.const 1024)))
    (local.set $v (i32.load8_u (i32.const 0)))
    (if (i32.eq (local.get $v) (i32.const 0x61))
      (then (call $set_message (i32.const 1024) (i32.const 5))))
    (if (i32.eq (local.get $v) (i32.const 0x62))
      (then (call $inject (i32.const 1) (i32.const 0) (i32.const 1024) (i32.const 5))))
    (i32.const 0)))
