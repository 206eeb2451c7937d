;; Does one of each thing the report shows. on_request_headers logs, sets
;; the request header X-Tour, stores state k=v, adds 1 to the shared counter
;; "hits" (ttl 60s), and answers 403 when the path is /deny.
;; on_response_headers sets the status to 299. on_message replaces a
;; client's message with "masked" and injects "ack" towards the client; it
;; drops an upstream's message. on_close logs "bye" on stdout.
(module
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (import "sluice" "set_header" (func $set_header (param i32 i32 i32 i32 i32)))
  (import "sluice" "get_path" (func $get_path (param i32 i32) (result i32)))
  (import "sluice" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (import "sluice" "shared_add" (func $shared_add (param i32 i32 i64 i64) (result i64)))
  (import "sluice" "send_response" (func $send (param i32 i32 i32 i32 i32)))
  (import "sluice" "set_status" (func $set_status (param i32)))
  (import "sluice" "set_message" (func $set_message (param i32 i32)))
  (import "sluice" "inject_message" (func $inject (param i32 i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello from tour")
  (data (i32.const 32) "X-Tour")
  (data (i32.const 48) "yes")
  (data (i32.const 64) "k")
  (data (i32.const 72) "v")
  (data (i32.const 80) "hits")
  (data (i32.const 96) "/deny")
  (data (i32.const 112) "masked")
  (data (i32.const 128) "ack")
  (data (i32.const 144) "denied\0a")
  (data (i32.const 160) "bye\0a")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32)
    (drop (call $shared_add (i32.const 80) (i32.const 4) (i64.const 1) (i64.const 60000)))
    (if (i32.and
          (i32.eq (call $get_path (i32.const 1024) (i32.const 64)) (i32.const 5))
          (i32.eq (i32.load8_u (i32.const 1025)) (i32.const 100))) ;; "/d..."
      (then
        (call $send (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 144) (i32.const 7))
        (return (i32.const 1))))
    (call $log (i32.const 0) (i32.const 0) (i32.const 15))
    (call $set_header (i32.const 0) (i32.const 32) (i32.const 6) (i32.const 48) (i32.const 3))
    (call $state_set (i32.const 64) (i32.const 1) (i32.const 72) (i32.const 1))
    (i32.const 0))
  (func (export "sluice_on_response_headers") (result i32)
    (call $set_status (i32.const 299))
    (i32.const 0))
  (func (export "sluice_on_message") (param $dir i32) (param $kind i32) (param $len i32) (result i32)
    (if (i32.eq (local.get $dir) (i32.const 1)) (then (return (i32.const 1))))
    (call $set_message (i32.const 112) (i32.const 6))
    (call $inject (i32.const 1) (i32.const 0) (i32.const 128) (i32.const 3))
    (i32.const 0))
  (func (export "sluice_on_close")
    ;; iovec {160, 4} at 200, written count at 208
    (i32.store (i32.const 200) (i32.const 160))
    (i32.store (i32.const 204) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 208)))))
