//! Per-request and per-connection state.
//!
//! In the HTTP hooks the state belongs to the request; in the WebSocket hooks
//! it belongs to the connection, and what [`Filter::on_upgrade`](crate::Filter::on_upgrade)
//! stored carries over to it. The host keeps it, so any pooled instance of the
//! filter sees the same values: this is where a filter remembers things
//! between two hook calls.

use crate::host::{self, raw};

/// The value of `key`, or `None` when it is absent.
pub fn get(key: &str) -> Option<Vec<u8>> {
    let (k, kl) = raw(key.as_bytes());
    host::read(0, |buf, cap| unsafe { host::state_get(k, kl, buf, cap) })
}

/// The value of `key` as text, or `None` when it is absent or not UTF-8.
pub fn get_string(key: &str) -> Option<String> {
    get(key).and_then(|v| String::from_utf8(v).ok())
}

/// Stores `value` under `key`.
pub fn set(key: &str, value: &[u8]) {
    let (k, kl) = raw(key.as_bytes());
    let (v, vl) = raw(value);
    unsafe { host::state_set(k, kl, v, vl) }
}

/// Removes `key`.
pub fn delete(key: &str) {
    let (k, kl) = raw(key.as_bytes());
    unsafe { host::state_delete(k, kl) }
}
