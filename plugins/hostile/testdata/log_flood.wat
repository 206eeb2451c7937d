;; Log flood: every request writes 500 lines of 1KiB through the log host
;; function and 500 through WASI stdout, then lets the request through.
;; Documented outcome: the request is served; the proxy logs at most
;; log_rate lines a second of the plugin's (with a burst of as many) and
;; says how many it dropped.
(module
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 16: base 1024, length 1024; the line ends with a newline.
  (data (i32.const 16) "\00\04\00\00\00\04\00\00")
  (data (i32.const 2047) "\n")
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_on_request_headers") (result i32) (local $i i32)
    (memory.fill (i32.const 1024) (i32.const 0x41) (i32.const 1023))
    (loop $next
      (call $log (i32.const 2) (i32.const 1024) (i32.const 1023))
      (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 500))))
    (i32.const 0)))
