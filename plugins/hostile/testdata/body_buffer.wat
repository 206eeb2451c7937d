;; Body-buffering abuse: the module asks for both bodies to be buffered
;; (sluice_features 3), as if it could make the proxy hold any download in
;; memory, and replaces the response body with 2MiB of its own when it can.
;; Documented outcome: without max_body_buffer the proxy buffers nothing
;; for it (get_body reads -1) and streams the response as the upstream
;; sent it; with max_body_buffer set, a response over it gets 502, and
;; set_body over it traps as ABI misuse naming max_body_buffer (503).
(module
  (import "sluice" "get_body" (func $get_body (param i32 i32 i32) (result i32)))
  (import "sluice" "set_body" (func $set_body (param i32 i32 i32) (result i32)))
  (memory (export "memory") 40)
  (func (export "sluice_abi_version") (result i32) (i32.const 1))
  (func (export "sluice_features") (result i32) (i32.const 3))
  (func (export "sluice_on_response_headers") (result i32)
    (if (i32.ge_s (call $get_body (i32.const 1) (i32.const 0) (i32.const 0)) (i32.const 0))
      (then (drop (call $set_body (i32.const 1) (i32.const 65536) (i32.const 0x200000)))))
    (i32.const 0)))
