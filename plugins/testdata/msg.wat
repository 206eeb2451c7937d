;; A message filter steered by the first byte of each payload:
;;   r  replace the payload with "replaced", pass
;;   a  append "!" to the payload (as earlier filters left it), pass
;;   d  drop
;;   c  close with 4001 "bye"
;;   i  inject "injected" towards the client, pass
;;   s  count messages of this connection in its state ("n", one digit) and
;;      replace the payload with the count, pass
;;   l  loop forever
;;   x  return the unknown action 9
;;   anything else: pass unchanged
;; on_close counts closed sessions in the shared store ("closed").
(module
  (import "sluice" "get_message" (func $get_message (param i32 i32) (result i32)))
  (import "sluice" "set_message" (func $set_message (param i32 i32)))
  (import "sluice" "inject_message" (func $inject (param i32 i32 i32 i32)))
  (import "sluice" "close_websocket" (func $close (param i32 i32 i32)))
  (import "sluice" "state_get" (func $state_get (param i32 i32 i32 i32) (result i32)))
  (import "sluice" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (import "sluice" "shared_add" (func $shared_add (param i32 i32 i64 i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "replaced")
  (data (i32.const 16) "bye")
  (data (i32.const 32) "injected")
  (data (i32.const 48) "n")
  (data (i32.const 64) "closed")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_message") (param $dir i32) (param $kind i32) (param $len i32) (result i32)
    (local $n i32) (local $c i32)
    (local.set $n (call $get_message (i32.const 4096) (i32.const 60000)))
    (if (i32.ne (local.get $n) (local.get $len)) (then unreachable))
    (local.set $c (i32.load8_u (i32.const 4096)))
    (if (i32.eq (local.get $c) (i32.const 0x72)) ;; r
      (then (call $set_message (i32.const 0) (i32.const 8)) (return (i32.const 0))))
    (if (i32.eq (local.get $c) (i32.const 0x61)) ;; a
      (then
        (i32.store8 (i32.add (i32.const 4096) (local.get $n)) (i32.const 0x21))
        (call $set_message (i32.const 4096) (i32.add (local.get $n) (i32.const 1)))
        (return (i32.const 0))))
    (if (i32.eq (local.get $c) (i32.const 0x64)) ;; d
      (then (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x63)) ;; c
      (then (call $close (i32.const 4001) (i32.const 16) (i32.const 3)) (return (i32.const 2))))
    (if (i32.eq (local.get $c) (i32.const 0x69)) ;; i
      (then (call $inject (i32.const 1) (i32.const 0) (i32.const 32) (i32.const 8)) (return (i32.const 0))))
    (if (i32.eq (local.get $c) (i32.const 0x73)) ;; s
      (then
        (if (i32.eq (call $state_get (i32.const 48) (i32.const 1) (i32.const 2000) (i32.const 1)) (i32.const -1))
          (then (i32.store8 (i32.const 2000) (i32.const 0x31)))
          (else (i32.store8 (i32.const 2000) (i32.add (i32.load8_u (i32.const 2000)) (i32.const 1)))))
        (call $state_set (i32.const 48) (i32.const 1) (i32.const 2000) (i32.const 1))
        (call $set_message (i32.const 2000) (i32.const 1))
        (return (i32.const 0))))
    (if (i32.eq (local.get $c) (i32.const 0x6c)) ;; l
      (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $c) (i32.const 0x78)) ;; x
      (then (return (i32.const 9))))
    (i32.const 0))
  (func (export "sluice_on_close")
    (drop (call $shared_add (i32.const 64) (i32.const 6) (i64.const 1) (i64.const 0)))))
