use crate::host::{self, raw, split_list};

/// One header map of the current exchange: the request's, or the response's
/// (in the request phase, the pending local response's).
///
/// Names are case-insensitive; the host reports them in canonical form
/// (`Content-Type`). Values that are not UTF-8 read with U+FFFD in place of
/// the bad bytes.
///
/// # Traps
///
/// The proxy traps the filter (and applies its failure policy) for a name
/// that is not an HTTP token or a value with CR, LF or NUL, and for changes
/// where they cannot happen: the request's headers change only in the
/// request hooks.
#[derive(Debug)]
pub struct Headers {
    kind: i32,
}

impl Headers {
    pub(crate) fn new(kind: i32) -> Headers {
        Headers { kind }
    }

    /// The first value of `name`, or `None` when the header is absent.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values(name).into_iter().next()
    }

    /// Every value of `name`, in order; empty when the header is absent.
    pub fn values(&self, name: &str) -> Vec<String> {
        let (n, nl) = raw(name.as_bytes());
        let list = host::read_or_empty(|buf, cap| unsafe { host::get_header(self.kind, n, nl, buf, cap) });
        split_list(&list)
    }

    /// Whether `name` has at least one value.
    pub fn contains(&self, name: &str) -> bool {
        !self.values(name).is_empty()
    }

    /// Every header name, in canonical form.
    pub fn names(&self) -> Vec<String> {
        let list = host::read_or_empty(|buf, cap| unsafe { host::get_header_names(self.kind, buf, cap) });
        split_list(&list)
    }

    /// Replaces every value of `name` with `value`.
    pub fn set(&mut self, name: &str, value: &str) {
        let (n, nl) = raw(name.as_bytes());
        let (v, vl) = raw(value.as_bytes());
        unsafe { host::set_header(self.kind, n, nl, v, vl) }
    }

    /// Appends a value to `name`.
    pub fn add(&mut self, name: &str, value: &str) {
        let (n, nl) = raw(name.as_bytes());
        let (v, vl) = raw(value.as_bytes());
        unsafe { host::add_header(self.kind, n, nl, v, vl) }
    }

    /// Removes `name` and all its values.
    pub fn remove(&mut self, name: &str) {
        let (n, nl) = raw(name.as_bytes());
        unsafe { host::remove_header(self.kind, n, nl) }
    }
}
