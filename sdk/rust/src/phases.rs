use crate::host::{self, raw};
use crate::{abi, Error, Headers};

fn text(v: Vec<u8>) -> String {
    match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn get_body(kind: i32) -> Option<Vec<u8>> {
    host::read(0, |buf, cap| unsafe { host::get_body(kind, buf, cap) })
}

fn set_body(kind: i32, body: &[u8]) -> Result<(), Error> {
    let (p, n) = raw(body);
    if unsafe { host::set_body(kind, p, n) } < 0 {
        return Err(Error::new(
            "sluice: the body is not buffered (declare the body feature in Filter::FEATURES)",
        ));
    }
    Ok(())
}

/// The request during [`Filter::on_request_headers`](crate::Filter::on_request_headers)
/// and [`Filter::on_upgrade`](crate::Filter::on_upgrade): what will be sent
/// upstream, which the filter may change.
#[derive(Debug)]
pub struct Request {
    _private: (),
}

impl Request {
    pub(crate) fn new() -> Request {
        Request { _private: () }
    }

    /// The request's headers, as they will be sent upstream.
    pub fn headers(&mut self) -> Headers {
        Headers::new(abi::HEADER_REQUEST)
    }

    /// The headers of the local response this hook may send (for example a
    /// `WWW-Authenticate` set before returning [`Action::Respond`](crate::Action::Respond)).
    pub fn response_headers(&mut self) -> Headers {
        Headers::new(abi::HEADER_RESPONSE)
    }

    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> String {
        text(host::read_or_empty(|b, c| unsafe { host::get_method(b, c) }))
    }

    /// Changes the method sent upstream. It must be a token (`PATCH`), or
    /// the proxy traps the filter.
    pub fn set_method(&mut self, method: &str) {
        let (p, n) = raw(method.as_bytes());
        unsafe { host::set_method(p, n) }
    }

    /// The path, without the query.
    pub fn path(&self) -> String {
        text(host::read_or_empty(|b, c| unsafe { host::get_path(b, c) }))
    }

    /// Changes the path sent upstream. It must start with `/` and have no
    /// CR, LF or NUL, or the proxy traps the filter.
    pub fn set_path(&mut self, path: &str) {
        let (p, n) = raw(path.as_bytes());
        unsafe { host::set_path(p, n) }
    }

    /// The raw query, without `?` (empty when there is none).
    pub fn query(&self) -> String {
        text(host::read_or_empty(|b, c| unsafe { host::get_query(b, c) }))
    }

    /// Changes the raw query sent upstream (without `?`). It must be
    /// escaped already (no spaces, control bytes or `#`), or the proxy traps
    /// the filter.
    pub fn set_query(&mut self, query: &str) {
        let (p, n) = raw(query.as_bytes());
        unsafe { host::set_query(p, n) }
    }

    /// The first value of the query parameter `name`, percent-decoded, or
    /// `None` when it is absent.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(&self.query(), name)
    }

    /// The whole request body, or `None` when it is not buffered (the filter
    /// did not declare [`Features::REQUEST_BODY`](crate::Features::REQUEST_BODY)).
    pub fn body(&self) -> Option<Vec<u8>> {
        get_body(abi::BODY_REQUEST)
    }

    /// Replaces the request body sent upstream.
    ///
    /// # Errors
    ///
    /// When the body is not buffered.
    pub fn set_body(&mut self, body: &[u8]) -> Result<(), Error> {
        set_body(abi::BODY_REQUEST, body)
    }
}

/// The response during [`Filter::on_response_headers`](crate::Filter::on_response_headers).
#[derive(Debug)]
pub struct Response {
    _private: (),
}

impl Response {
    pub(crate) fn new() -> Response {
        Response { _private: () }
    }

    /// The upstream's status code.
    pub fn status(&self) -> u16 {
        unsafe { host::get_status() as u16 }
    }

    /// Changes the status code sent to the client (100 to 999; anything else
    /// traps the filter).
    pub fn set_status(&mut self, status: u16) {
        unsafe { host::set_status(status as i32) }
    }

    /// The response's headers, as they will be sent to the client.
    pub fn headers(&mut self) -> Headers {
        Headers::new(abi::HEADER_RESPONSE)
    }

    /// The headers of the request this response answers (as sent upstream),
    /// to read: the request is gone, so changing them traps the filter.
    pub fn request_headers(&self) -> Headers {
        Headers::new(abi::HEADER_REQUEST)
    }

    /// The whole response body, or `None` when it is not buffered (the
    /// filter did not declare [`Features::RESPONSE_BODY`](crate::Features::RESPONSE_BODY)).
    pub fn body(&self) -> Option<Vec<u8>> {
        get_body(abi::BODY_RESPONSE)
    }

    /// Replaces the response body sent to the client.
    ///
    /// # Errors
    ///
    /// When the body is not buffered.
    pub fn set_body(&mut self, body: &[u8]) -> Result<(), Error> {
        set_body(abi::BODY_RESPONSE, body)
    }
}

/// The way a WebSocket message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the upstream.
    ClientToUpstream,
    /// From the upstream to the client.
    UpstreamToClient,
}

impl Direction {
    pub(crate) fn from_abi(d: i32) -> Direction {
        if d == abi::DIRECTION_UPSTREAM_TO_CLIENT {
            Direction::UpstreamToClient
        } else {
            Direction::ClientToUpstream
        }
    }

    /// The direction's number in the ABI.
    pub const fn id(self) -> i32 {
        match self {
            Direction::ClientToUpstream => abi::DIRECTION_CLIENT_TO_UPSTREAM,
            Direction::UpstreamToClient => abi::DIRECTION_UPSTREAM_TO_CLIENT,
        }
    }

    /// The other direction (where a reply to a message goes).
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::ClientToUpstream => Direction::UpstreamToClient,
            Direction::UpstreamToClient => Direction::ClientToUpstream,
        }
    }
}

/// A WebSocket data message's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A text message (UTF-8).
    Text,
    /// A binary message.
    Binary,
}

impl MessageKind {
    pub(crate) fn from_abi(k: i32) -> MessageKind {
        if k == abi::MESSAGE_BINARY {
            MessageKind::Binary
        } else {
            MessageKind::Text
        }
    }

    /// The kind's number in the ABI.
    pub const fn id(self) -> i32 {
        match self {
            MessageKind::Text => abi::MESSAGE_TEXT,
            MessageKind::Binary => abi::MESSAGE_BINARY,
        }
    }
}

/// The current WebSocket message during [`Filter::on_message`](crate::Filter::on_message).
#[derive(Debug)]
pub struct Message {
    direction: Direction,
    kind: MessageKind,
    len: usize,
}

impl Message {
    pub(crate) fn new(direction: i32, kind: i32, len: i32) -> Message {
        Message {
            direction: Direction::from_abi(direction),
            kind: MessageKind::from_abi(kind),
            len: len.max(0) as usize,
        }
    }

    /// Which way the message travels.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload's length in bytes, known without reading it (so a size
    /// limit costs no copy).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The payload, as earlier filters left it.
    pub fn payload(&self) -> Vec<u8> {
        host::read(self.len, |b, c| unsafe { host::get_message(b, c) }).unwrap_or_default()
    }

    /// The payload as text, or `None` when it is not UTF-8.
    pub fn text(&self) -> Option<String> {
        String::from_utf8(self.payload()).ok()
    }

    /// Replaces the payload that [`MessageAction::Pass`](crate::MessageAction::Pass)
    /// forwards (and that later filters see).
    pub fn set_payload(&mut self, payload: &[u8]) {
        let (p, n) = raw(payload);
        unsafe { host::set_message(p, n) };
        self.len = payload.len();
    }

    /// Sends a new message in `direction`; injected messages go out before
    /// the current one is acted on.
    ///
    /// A text message must be UTF-8, and one hook call may inject at most 16
    /// messages; otherwise the proxy traps the filter.
    pub fn inject(&mut self, direction: Direction, kind: MessageKind, payload: &[u8]) {
        let (p, n) = raw(payload);
        unsafe { host::inject_message(direction.id(), kind.id(), p, n) }
    }
}

/// The first value of `name` in a raw query string, percent-decoded (`+` is a
/// space), as Go's `url.Values.Get` reads it.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    for pair in query.split('&') {
        // Go (since 1.17) refuses pairs with a semicolon; skip them too, so
        // a filter reads the query the way a Go upstream does.
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = match pair.find('=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, ""),
        };
        if percent_decode(k).as_deref() == Some(name) {
            if let Some(v) = percent_decode(v) {
                return Some(v);
            }
        }
    }
    None
}

/// Decodes `%XX` escapes and `+`; `None` on a malformed escape or a result
/// that is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_decode_like_go() {
        assert_eq!(query_param("a=1&token=x%2By+z&b", "token").as_deref(), Some("x+y z"));
        assert_eq!(query_param("b&a=1", "b").as_deref(), Some(""));
        assert_eq!(query_param("a=1", "token"), None);
        assert_eq!(query_param("t=%zz&t=2", "t").as_deref(), Some("2"));
        assert_eq!(query_param("a;token=1&token=2", "token").as_deref(), Some("2"));
        assert_eq!(query_param("%61b=3", "ab").as_deref(), Some("3"));
    }
}
