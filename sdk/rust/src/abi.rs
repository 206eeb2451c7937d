//! The numbers of Sluice filter ABI v1, mirrored from the host's `abi`
//! package (`abi/abi.go`, explained in `abi/ABI.md`).
//!
//! Filters rarely need these: the typed API ([`crate::Action`],
//! [`crate::Hooks`], [`crate::Direction`], ...) encodes them. They are public
//! for tests that assert on raw hook results and for readers who compare the
//! SDK with the specification.

/// The ABI version this SDK implements, returned by `sluice_abi_version`.
pub const VERSION: i32 = 1;

/// A header hook lets the request or response go on.
pub const ACTION_CONTINUE: i32 = 0;
/// A header hook stops the chain and sends the local response.
pub const ACTION_RESPOND: i32 = 1;
/// A message hook forwards the message.
pub const ACTION_PASS: i32 = 0;
/// A message hook discards the message.
pub const ACTION_DROP: i32 = 1;
/// A message hook closes both sides of the WebSocket.
pub const ACTION_CLOSE: i32 = 2;

/// Header kind: the request's headers.
pub const HEADER_REQUEST: i32 = 0;
/// Header kind: the response's headers (in the request phase: the pending
/// local response's).
pub const HEADER_RESPONSE: i32 = 1;

/// Body kind: the request body.
pub const BODY_REQUEST: i32 = 0;
/// Body kind: the response body.
pub const BODY_RESPONSE: i32 = 1;

/// Message direction: from the client to the upstream.
pub const DIRECTION_CLIENT_TO_UPSTREAM: i32 = 0;
/// Message direction: from the upstream to the client.
pub const DIRECTION_UPSTREAM_TO_CLIENT: i32 = 1;

/// Message kind: text.
pub const MESSAGE_TEXT: i32 = 0;
/// Message kind: binary.
pub const MESSAGE_BINARY: i32 = 1;

/// Log level: debug.
pub const LOG_DEBUG: i32 = -1;
/// Log level: info.
pub const LOG_INFO: i32 = 0;
/// Log level: warn.
pub const LOG_WARN: i32 = 1;
/// Log level: error.
pub const LOG_ERROR: i32 = 2;

/// Clock: wall time, nanoseconds since the Unix epoch.
pub const CLOCK_WALL: i32 = 0;
/// Clock: monotonic nanoseconds since an arbitrary fixed point.
pub const CLOCK_MONOTONIC: i32 = 1;
