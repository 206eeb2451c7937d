//! The raw host functions of ABI v1 and the buffer convention.
//!
//! On `wasm32` they are imports from the host module `sluice`. Elsewhere they
//! are the in-memory stub host of `crate::testing`, with the same
//! signatures, so that every line of the SDK above this module runs unchanged
//! under `cargo test`.

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "sluice")]
extern "C" {
    pub fn log(level: i32, msg: *const u8, msg_len: i32);
    pub fn get_config(buf: *mut u8, cap: i32) -> i32;
    pub fn get_property(prop: i32, buf: *mut u8, cap: i32) -> i32;
    pub fn clock(clock: i32) -> i64;

    pub fn get_header_names(kind: i32, buf: *mut u8, cap: i32) -> i32;
    pub fn get_header(kind: i32, name: *const u8, name_len: i32, buf: *mut u8, cap: i32) -> i32;
    pub fn set_header(kind: i32, name: *const u8, name_len: i32, value: *const u8, value_len: i32);
    pub fn add_header(kind: i32, name: *const u8, name_len: i32, value: *const u8, value_len: i32);
    pub fn remove_header(kind: i32, name: *const u8, name_len: i32);

    pub fn get_method(buf: *mut u8, cap: i32) -> i32;
    pub fn set_method(value: *const u8, value_len: i32);
    pub fn get_path(buf: *mut u8, cap: i32) -> i32;
    pub fn set_path(value: *const u8, value_len: i32);
    pub fn get_query(buf: *mut u8, cap: i32) -> i32;
    pub fn set_query(value: *const u8, value_len: i32);
    pub fn get_status() -> i32;
    pub fn set_status(status: i32);

    pub fn get_body(kind: i32, buf: *mut u8, cap: i32) -> i32;
    pub fn set_body(kind: i32, value: *const u8, value_len: i32) -> i32;

    pub fn send_response(
        status: i32,
        headers: *const u8,
        headers_len: i32,
        body: *const u8,
        body_len: i32,
    );

    pub fn get_message(buf: *mut u8, cap: i32) -> i32;
    pub fn set_message(value: *const u8, value_len: i32);
    pub fn inject_message(direction: i32, kind: i32, value: *const u8, value_len: i32);
    pub fn close_websocket(code: i32, reason: *const u8, reason_len: i32);

    pub fn state_get(key: *const u8, key_len: i32, buf: *mut u8, cap: i32) -> i32;
    pub fn state_set(key: *const u8, key_len: i32, value: *const u8, value_len: i32);
    pub fn state_delete(key: *const u8, key_len: i32);

    pub fn shared_get(key: *const u8, key_len: i32, buf: *mut u8, cap: i32) -> i32;
    pub fn shared_set(key: *const u8, key_len: i32, value: *const u8, value_len: i32, ttl_ms: i64);
    pub fn shared_delete(key: *const u8, key_len: i32);
    pub fn shared_add(key: *const u8, key_len: i32, delta: i64, ttl_ms: i64) -> i64;
}

#[cfg(not(target_arch = "wasm32"))]
pub use crate::testing::stub::*;

/// The first capacity tried for a value of unknown length. Most header
/// values, paths and state values fit, so most reads are one host call.
const FIRST_CAP: usize = 256;

/// Reads a value with the buffer convention: `f(buf, cap)` returns the real
/// length, and wrote the value only if it fit. Grows the buffer and retries
/// until it fits. `None` is the host's `-1` ("absent").
///
/// `hint` is the expected length when the caller knows it (a message's
/// payload length), so that the first call fits.
pub(crate) fn read(hint: usize, mut f: impl FnMut(*mut u8, i32) -> i32) -> Option<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(if hint > 0 { hint } else { FIRST_CAP });
    loop {
        let cap = buf.capacity().min(i32::MAX as usize);
        let n = f(buf.as_mut_ptr(), cap as i32);
        if n < 0 {
            return None;
        }
        let n = n as usize;
        if n <= cap {
            // SAFETY: the host wrote exactly n <= capacity bytes at buf's
            // pointer (the buffer convention), so they are initialised.
            unsafe { buf.set_len(n) };
            return Some(buf);
        }
        // Nothing was written; ask for room for the whole value. The value
        // may still change between calls (it cannot within one hook call,
        // but the loop does not rely on that).
        buf.reserve_exact(n);
    }
}

/// Like [`read`], for values the host never reports absent: `-1` reads as
/// empty.
pub(crate) fn read_or_empty(f: impl FnMut(*mut u8, i32) -> i32) -> Vec<u8> {
    read(0, f).unwrap_or_default()
}

/// Splits a NUL-terminated list ("a\0bb\0") into its strings.
pub(crate) fn split_list(list: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for item in list.split(|&b| b == 0) {
        out.push(String::from_utf8_lossy(item).into_owned());
    }
    // The list ends with a NUL, so split yields one empty tail.
    if list.last() == Some(&0) || list.is_empty() {
        out.pop();
    }
    out
}

/// A byte string as the ABI passes it: pointer and i32 length.
pub(crate) fn raw(b: &[u8]) -> (*const u8, i32) {
    (b.as_ptr(), b.len() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_retries_until_the_value_fits() {
        let value = vec![7u8; 1000];
        let mut calls = Vec::new();
        let got = read(0, |buf, cap| {
            calls.push(cap);
            if value.len() <= cap as usize {
                unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), buf, value.len()) };
            }
            value.len() as i32
        });
        assert_eq!(got.as_deref(), Some(&value[..]));
        assert_eq!(calls.len(), 2, "one short call, one that fits: {:?}", calls);
        assert!(calls[0] < 1000 && calls[1] >= 1000);
    }

    #[test]
    fn read_with_hint_is_one_call() {
        let mut calls = 0;
        let got = read(3, |buf, cap| {
            calls += 1;
            assert!(cap >= 3);
            unsafe { std::ptr::copy_nonoverlapping(b"abc".as_ptr(), buf, 3) };
            3
        });
        assert_eq!(got.as_deref(), Some(&b"abc"[..]));
        assert_eq!(calls, 1);
    }

    #[test]
    fn read_absent_and_empty_differ() {
        assert_eq!(read(0, |_, _| -1), None);
        assert_eq!(read(0, |_, _| 0), Some(Vec::new()));
    }

    #[test]
    fn split_list_handles_empty_items() {
        assert_eq!(split_list(b""), Vec::<String>::new());
        assert_eq!(split_list(b"a\0bb\0"), vec!["a", "bb"]);
        assert_eq!(split_list(b"\0x\0"), vec!["", "x"]);
    }
}
