//! State shared by every request and connection of the plugin, across
//! instances (and, with an external store, across proxies).
//!
//! Keys are namespaced per plugin by the host. A time to live of
//! [`Duration::ZERO`] means no expiry; otherwise it is rounded down to whole
//! milliseconds (and up to one millisecond, so a short TTL never means
//! "forever").

use std::time::Duration;

use crate::host::{self, raw};

fn ttl_ms(ttl: Duration) -> i64 {
    if ttl.is_zero() {
        return 0;
    }
    // The host refuses a TTL whose nanoseconds overflow an i64 (about 292
    // years); clamp to that rather than trap.
    const MAX_MS: u128 = (i64::MAX / 1_000_000) as u128;
    ttl.as_millis().clamp(1, MAX_MS) as i64
}

/// The value of `key`, or `None` when it is absent or expired.
pub fn get(key: &str) -> Option<Vec<u8>> {
    let (k, kl) = raw(key.as_bytes());
    host::read(0, |buf, cap| unsafe { host::shared_get(k, kl, buf, cap) })
}

/// Stores `value` under `key`, expiring after `ttl` ([`Duration::ZERO`]: never).
pub fn set(key: &str, value: &[u8], ttl: Duration) {
    let (k, kl) = raw(key.as_bytes());
    let (v, vl) = raw(value);
    unsafe { host::shared_set(k, kl, v, vl, ttl_ms(ttl)) }
}

/// Removes `key`.
pub fn delete(key: &str) {
    let (k, kl) = raw(key.as_bytes());
    unsafe { host::shared_delete(k, kl) }
}

/// Atomically adds `delta` to the counter `key` and returns the new value. A
/// missing or expired key counts as 0 and gets `ttl`, so a fixed-window rate
/// limit is `add(&window_key, 1, window) > limit`. A key holding a value that
/// is not a counter counts as 0.
pub fn add(key: &str, delta: i64, ttl: Duration) -> i64 {
    let (k, kl) = raw(key.as_bytes());
    unsafe { host::shared_add(k, kl, delta, ttl_ms(ttl)) }
}
