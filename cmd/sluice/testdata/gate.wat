;; A filter whose every decision is steered by the request, for the metrics
;; and failure-log tests. On requests, by the fourth byte of the path
;; ("/g/X..."):
;;   t  trap (in the named function $boom, so the stack shows its name)
;;   l  loop until the deadline stops it
;;   d  answer 403 locally
;;   m  return the unknown action 7 (ABI misuse)
;;   q  answer 403 with a 64-byte body, over the max_local_response of 8
;;      the tests' config sets (a quota)
;;   anything else: continue
;; On messages, by the first byte of the payload:
;;   d  drop;  c  close with 4001;  t  trap;  anything else: pass
;; Built by the tests with: wat2wasm --debug-names testdata/gate.wat -o gate.wasm
(module
  (import "sluice" "get_path" (func $get_path (param i32 i32) (result i32)))
  (import "sluice" "get_message" (func $get_message (param i32 i32) (result i32)))
  (import "sluice" "send_response" (func $send (param i32 i32 i32 i32 i32)))
  (import "sluice" "close_websocket" (func $close (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "denied\n")
  (data (i32.const 16) "bye")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func $boom unreachable)
  (func (export "sluice_on_request_headers") (result i32)
    (local $c i32)
    (drop (call $get_path (i32.const 1024) (i32.const 256)))
    (local.set $c (i32.load8_u (i32.const 1027)))
    (if (i32.eq (local.get $c) (i32.const 0x74)) (then (call $boom)))
    (if (i32.eq (local.get $c) (i32.const 0x6c)) (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $c) (i32.const 0x64))
      (then
        (call $send (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 7))
        (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x6d)) (then (return (i32.const 7))))
    (if (i32.eq (local.get $c) (i32.const 0x71))
      (then
        (call $send (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 64))
        (return (i32.const 1))))
    (i32.const 0))
  (func (export "sluice_on_message") (param $dir i32) (param $kind i32) (param $len i32) (result i32)
    (local $c i32)
    (drop (call $get_message (i32.const 4096) (i32.const 60000)))
    (local.set $c (i32.load8_u (i32.const 4096)))
    (if (i32.eq (local.get $c) (i32.const 0x64)) (then (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x63))
      (then (call $close (i32.const 4001) (i32.const 16) (i32.const 3)) (return (i32.const 2))))
    (if (i32.eq (local.get $c) (i32.const 0x74)) (then (call $boom)))
    (i32.const 0)))
