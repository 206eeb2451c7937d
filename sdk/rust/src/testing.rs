//! An in-memory host for testing filters natively with `cargo test`.
//!
//! On targets other than `wasm32` every host function of the SDK talks to
//! this stub instead of the proxy. It keeps one [`Host`] per thread (so
//! parallel tests do not see each other), implements the same buffer
//! convention and records what a filter did: the local response, the close
//! code, injected messages, log lines.
//!
//! A test sets up the host, runs a hook through the same glue the exports
//! use, and checks the result:
//!
//! ```
//! use sluice::{testing, Action, Error, Filter, Hooks, Request};
//!
//! struct Tag;
//! impl Filter for Tag {
//!     const HOOKS: Hooks = Hooks::REQUEST_HEADERS;
//!     fn configure(_: &[u8]) -> Result<Self, Error> { Ok(Tag) }
//!     fn on_request_headers(&self, req: &mut Request) -> Action {
//!         req.headers().set("x-tag", "1");
//!         Action::Continue
//!     }
//! }
//!
//! let tag: Tag = testing::configure("{}").unwrap();
//! assert_eq!(testing::on_request_headers(&tag), sluice::abi::ACTION_CONTINUE);
//! testing::with(|h| assert_eq!(h.request_headers.get("X-Tag"), Some("1")));
//! ```
//!
//! The stub follows the proxy where the ABI specifies behaviour; where it
//! leaves a choice to the host (such as how a counter made by
//! [`shared::add`](crate::shared::add) reads back with
//! [`shared::get`](crate::shared::get): here, as decimal text) the stub
//! documents its choice.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::{Direction, Error, Filter, MessageKind, Property};

/// A header map as the host keeps it: canonical names, values in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, Vec<String>)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    fn find(&self, name: &str) -> Option<usize> {
        let name = canonical(name);
        self.entries.iter().position(|(n, _)| *n == name)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name)
            .and_then(|i| self.entries[i].1.first())
            .map(|s| s.as_str())
    }

    /// Every value of `name`.
    pub fn values(&self, name: &str) -> Vec<&str> {
        match self.find(name) {
            Some(i) => self.entries[i].1.iter().map(|s| s.as_str()).collect(),
            None => Vec::new(),
        }
    }

    /// Every name, canonical, in insertion order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Replaces every value of `name`.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.find(name) {
            Some(i) => self.entries[i].1 = vec![value.to_string()],
            None => self.entries.push((canonical(name), vec![value.to_string()])),
        }
    }

    /// Appends a value to `name`.
    pub fn add(&mut self, name: &str, value: &str) {
        match self.find(name) {
            Some(i) => self.entries[i].1.push(value.to_string()),
            None => self.entries.push((canonical(name), vec![value.to_string()])),
        }
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        if let Some(i) = self.find(name) {
            self.entries.remove(i);
        }
    }

    /// Whether the map has no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The canonical form of a header name as Go's net/http writes it
/// (`content-type` → `Content-Type`); names with characters outside an
/// HTTP token are left as they are, as Go does.
pub fn canonical(name: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.chars().all(token) {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// The hook the stub host is running, which decides what a filter may
/// call: like the proxy, the stub traps (panics) on a call the ABI forbids in
/// that hook, such as `set_status` during a request hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Outside any hook: a test calling SDK functions directly. Only the
    /// values are checked, not the phase.
    None,
    /// `sluice_configure`.
    Configure,
    /// `on_request_headers`.
    Request,
    /// `on_upgrade`.
    Upgrade,
    /// `on_response_headers`.
    Response,
    /// `on_message`.
    Message,
    /// `on_close`.
    Close,
}

/// A local response a filter sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl LocalReply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A message a filter injected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    /// Where it goes.
    pub direction: Direction,
    /// Text or binary.
    pub kind: MessageKind,
    /// The payload.
    pub payload: Vec<u8>,
}

/// A log line a filter wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The level (`sluice::abi::LOG_*`).
    pub level: i32,
    /// The message.
    pub message: String,
}

/// The state of the stub host for the current thread. Tests set the fields a
/// hook reads and check the ones it writes.
#[derive(Clone, Debug)]
pub struct Host {
    /// The plugin's config, JSON.
    pub config: Vec<u8>,
    /// Properties the host knows.
    pub properties: Vec<(Property, String)>,
    /// Wall clock, nanoseconds since the Unix epoch.
    pub wall_nanos: i64,
    /// Monotonic clock, nanoseconds; also the clock of shared-state TTLs.
    pub monotonic_nanos: i64,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The raw query, without `?`.
    pub query: String,
    /// The request headers.
    pub request_headers: HeaderMap,
    /// The response headers (in the request phase: the pending local
    /// response's).
    pub response_headers: HeaderMap,
    /// The response status; 0 in the request phase.
    pub status: i32,
    /// The request body, `None` when not buffered.
    pub request_body: Option<Vec<u8>>,
    /// The response body, `None` when not buffered.
    pub response_body: Option<Vec<u8>>,
    /// The local response set with `send_response`. Its headers are those
    /// the filter passed plus any it set on the response headers during the
    /// request phase.
    pub local_response: Option<LocalReply>,
    /// The current message's payload, `None` outside a message hook.
    pub message: Option<Vec<u8>>,
    /// Messages injected, in order.
    pub injected: Vec<Injected>,
    /// The code and reason given to `close_websocket`.
    pub close: Option<(u16, String)>,
    /// Per-request or per-connection state.
    pub state: BTreeMap<String, Vec<u8>>,
    /// Shared state: value and expiry on the monotonic clock (0: none).
    pub shared: BTreeMap<String, (Vec<u8>, i64)>,
    /// Log lines written.
    pub logs: Vec<LogLine>,
    /// The hook running now; the drivers ([`on_request_headers`], ...) set
    /// it.
    pub phase: Phase,
}

impl Default for Host {
    fn default() -> Host {
        Host {
            config: b"{}".to_vec(),
            properties: vec![
                (Property::ClientAddr, "127.0.0.1:50000".to_string()),
                (Property::Host, "example.test".to_string()),
                (Property::Scheme, "http".to_string()),
                (Property::Route, "test".to_string()),
                (Property::RequestId, "test-request".to_string()),
                (Property::Plugin, "test".to_string()),
                (Property::Protocol, "HTTP/1.1".to_string()),
            ],
            wall_nanos: 1_700_000_000 * 1_000_000_000,
            monotonic_nanos: 1_000_000_000,
            method: "GET".to_string(),
            path: "/".to_string(),
            query: String::new(),
            request_headers: HeaderMap::new(),
            response_headers: HeaderMap::new(),
            status: 0,
            request_body: None,
            response_body: None,
            local_response: None,
            message: None,
            injected: Vec::new(),
            close: None,
            state: BTreeMap::new(),
            shared: BTreeMap::new(),
            logs: Vec::new(),
            phase: Phase::None,
        }
    }
}

impl Host {
    /// Moves both clocks forward, which also expires shared values.
    pub fn advance(&mut self, d: std::time::Duration) {
        self.wall_nanos += d.as_nanos() as i64;
        self.monotonic_nanos += d.as_nanos() as i64;
    }

    /// Forgets what the last hook did (local response, close, injected
    /// messages, state, logs), keeping config, clocks, request and shared
    /// state: the host between two requests.
    pub fn next_call(&mut self) {
        self.local_response = None;
        self.close = None;
        self.injected.clear();
        self.logs.clear();
        self.response_headers = HeaderMap::new();
    }

    fn shared_live(&mut self, key: &str) -> Option<&mut (Vec<u8>, i64)> {
        let now = self.monotonic_nanos;
        let expired = matches!(self.shared.get(key), Some((_, exp)) if *exp != 0 && *exp <= now);
        if expired {
            self.shared.remove(key);
        }
        self.shared.get_mut(key)
    }
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

/// Runs `f` with this thread's stub host.
pub fn with<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// Replaces this thread's stub host with a fresh one.
pub fn reset() {
    with(|h| *h = Host::default());
}

/// Resets the host, sets the plugin's config and builds the filter from it,
/// as `sluice_configure` does.
///
/// # Errors
///
/// The filter's configuration error.
///
/// # Panics
///
/// When [`Filter::HOOKS`] does not name exactly the hooks the filter
/// implements: an implemented hook left out of `HOOKS` is never called by
/// the proxy, and a declared hook left at its default costs a call for
/// nothing (and, for [`Hooks::MESSAGE`](crate::Hooks::MESSAGE), makes the
/// proxy parse every WebSocket frame). The check calls each hook once on
/// an empty request or message, then resets the host.
pub fn configure<F: Filter>(config: &str) -> Result<F, Error> {
    let setup = || {
        reset();
        with(|h| h.config = config.as_bytes().to_vec());
        in_phase(Phase::Configure, || F::configure(&crate::config()))
    };
    let f = setup()?;
    check_declared_hooks(&f);
    setup()
}

thread_local! {
    static DEFAULT_RAN: std::cell::Cell<u32> = std::cell::Cell::new(0);
}

/// Called by the default body of each hook: the filter does not implement
/// it. Only native builds (tests) have it.
#[doc(hidden)]
pub fn default_hook_ran(h: crate::Hooks) {
    DEFAULT_RAN.with(|d| d.set(d.get() | h.bits()));
}

/// Panics when `F::HOOKS` differs from the hooks `f` implements.
fn check_declared_hooks<F: Filter>(f: &F) {
    use crate::Hooks;
    let hooks = [
        (Hooks::REQUEST_HEADERS, "REQUEST_HEADERS", "on_request_headers"),
        (Hooks::UPGRADE, "UPGRADE", "on_upgrade"),
        (Hooks::RESPONSE_HEADERS, "RESPONSE_HEADERS", "on_response_headers"),
        (Hooks::MESSAGE, "MESSAGE", "on_message"),
        (Hooks::CLOSE, "CLOSE", "on_close"),
    ];
    let mut problems = Vec::new();
    for (hook, name, method) in hooks.iter() {
        DEFAULT_RAN.with(|d| d.set(0));
        // Calls the method directly, not through hooks(): this is the check
        // of what the filter implements, whatever it declares.
        let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe_hook(f, *hook)));
        let implemented = probe.is_err() || DEFAULT_RAN.with(|d| d.get()) & hook.bits() == 0;
        let declared = F::HOOKS.contains(*hook);
        if implemented && !declared {
            problems.push(format!(
                "implements {} but HOOKS lacks Hooks::{}: the proxy would never call it",
                method, name
            ));
        } else if declared && !implemented {
            problems.push(format!(
                "declares Hooks::{} in HOOKS but does not implement {}",
                name, method
            ));
        }
    }
    DEFAULT_RAN.with(|d| d.set(0));
    if !problems.is_empty() {
        panic!("sluice: {}: {}", std::any::type_name::<F>(), problems.join("; "));
    }
}

/// Calls one hook method of `f` on an empty request, response or message.
fn probe_hook<F: Filter>(f: &F, hook: crate::Hooks) {
    use crate::{Hooks, Message, Request, Response};
    with(|h| h.next_call());
    if hook == Hooks::REQUEST_HEADERS {
        in_phase(Phase::Request, || drop(f.on_request_headers(&mut Request::new())));
    } else if hook == Hooks::UPGRADE {
        in_phase(Phase::Upgrade, || drop(f.on_upgrade(&mut Request::new())));
    } else if hook == Hooks::RESPONSE_HEADERS {
        with(|h| h.status = 200);
        in_phase(Phase::Response, || drop(f.on_response_headers(&mut Response::new())));
    } else if hook == Hooks::MESSAGE {
        with(|h| h.message = Some(Vec::new()));
        in_phase(Phase::Message, || drop(f.on_message(&mut Message::new(0, 0, 0))));
    } else {
        in_phase(Phase::Close, || f.on_close());
    }
}

/// Panics when the proxy would not call `hook` on `f`: it is not in what
/// `sluice_hooks` returns (see [`Filter::hooks`]).
fn expect_called<F: Filter>(f: &F, hook: crate::Hooks, method: &str) {
    if !hooks(f).contains(hook) {
        panic!(
            "sluice: the proxy would not call {} on this filter: its hooks() leave it out",
            method
        );
    }
}

/// Runs `f` with the host in `phase`, back to [`Phase::None`] afterwards.
fn in_phase<R>(phase: Phase, f: impl FnOnce() -> R) -> R {
    with(|h| h.phase = phase);
    let r = f();
    with(|h| h.phase = Phase::None);
    r
}

/// The hooks the host would call for this configured filter: the result of
/// `sluice_hooks`.
pub fn hooks<F: Filter>(f: &F) -> crate::Hooks {
    let bits = crate::__private::hooks(f) as u32;
    let all = [
        crate::Hooks::REQUEST_HEADERS,
        crate::Hooks::RESPONSE_HEADERS,
        crate::Hooks::UPGRADE,
        crate::Hooks::MESSAGE,
        crate::Hooks::CLOSE,
    ];
    all.iter()
        .filter(|h| bits & h.bits() != 0)
        .fold(crate::Hooks::NONE, |acc, h| acc.union(*h))
}

/// Runs [`Filter::on_request_headers`] through the export glue and returns
/// the raw action (`sluice::abi::ACTION_*`).
pub fn on_request_headers<F: Filter>(f: &F) -> i32 {
    expect_called(f, crate::Hooks::REQUEST_HEADERS, "on_request_headers");
    with(|h| h.status = 0);
    in_phase(Phase::Request, || crate::__private::on_request_headers(f))
}

/// Runs [`Filter::on_upgrade`] through the export glue and returns the raw
/// action.
pub fn on_upgrade<F: Filter>(f: &F) -> i32 {
    expect_called(f, crate::Hooks::UPGRADE, "on_upgrade");
    with(|h| h.status = 0);
    in_phase(Phase::Upgrade, || crate::__private::on_upgrade(f))
}

/// Runs [`Filter::on_response_headers`] through the export glue and returns
/// the raw action. Set [`Host::status`] first (200 if it is 0).
pub fn on_response_headers<F: Filter>(f: &F) -> i32 {
    expect_called(f, crate::Hooks::RESPONSE_HEADERS, "on_response_headers");
    with(|h| {
        if h.status == 0 {
            h.status = 200
        }
    });
    in_phase(Phase::Response, || crate::__private::on_response_headers(f))
}

/// Runs [`Filter::on_message`] for one message through the export glue and
/// returns the raw action. The payload as the filter left it stays in
/// [`Host::message`].
pub fn on_message<F: Filter>(f: &F, direction: Direction, kind: MessageKind, payload: &[u8]) -> i32 {
    expect_called(f, crate::Hooks::MESSAGE, "on_message");
    with(|h| h.message = Some(payload.to_vec()));
    in_phase(Phase::Message, || {
        crate::__private::on_message(f, direction.id(), kind.id(), payload.len() as i32)
    })
}

/// Runs [`Filter::on_close`] through the export glue.
pub fn on_close<F: Filter>(f: &F) {
    expect_called(f, crate::Hooks::CLOSE, "on_close");
    with(|h| h.message = None);
    in_phase(Phase::Close, || crate::__private::on_close(f))
}

/// The host functions of the stub, with the signatures of the real imports.
/// Pointers come from the SDK's own buffers, so they are valid; the stub
/// still never writes a value that does not fit, like the real host.
pub(crate) mod stub {
    #![allow(clippy::missing_safety_doc)]

    use super::{with, Host, Injected, LocalReply, LogLine, Phase};
    use crate::{abi, Direction, MessageKind};

    /// Traps the guest for breaking the ABI, as the proxy does (there the
    /// instance is discarded and the failure policy applies).
    fn misuse(msg: &str) -> ! {
        panic!("sluice: ABI misuse (the proxy would trap the filter): {}", msg)
    }

    fn phase() -> Phase {
        with(|h| h.phase)
    }

    /// Panics unless the host is in one of `allowed` (or in no hook).
    fn only_in(func: &str, allowed: &[Phase]) {
        let p = phase();
        if p != Phase::None && !allowed.contains(&p) {
            misuse(&format!("{} called in {:?}", func, p));
        }
    }

    const REQUEST_PHASES: &[Phase] = &[Phase::Request, Phase::Upgrade];
    const HTTP_PHASES: &[Phase] = &[Phase::Request, Phase::Upgrade, Phase::Response];

    /// The proxy's rule for header names (and methods).
    fn valid_name(name: &[u8]) -> bool {
        !name.is_empty()
            && name
                .iter()
                .all(|&c| c > b' ' && c < 0x7f && !b"\"(),/:;<=>?@[\\]{}".contains(&c))
    }

    /// The proxy's rule for header values: no CR, LF or NUL.
    fn valid_value(v: &[u8]) -> bool {
        !v.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0)
    }

    fn check_header_write(func: &str, kind: i32, name: &[u8], value: &[u8]) {
        only_in(func, if kind == abi::HEADER_REQUEST { REQUEST_PHASES } else { HTTP_PHASES });
        if !valid_name(name) {
            misuse(&format!("{}: {:?} is not a valid header name", func, String::from_utf8_lossy(name)));
        }
        if !valid_value(value) {
            misuse(&format!("{}: the value contains CR, LF or NUL", func));
        }
    }

    unsafe fn bytes<'a>(p: *const u8, n: i32) -> &'a [u8] {
        if n <= 0 {
            return &[];
        }
        std::slice::from_raw_parts(p, n as usize)
    }

    unsafe fn text(p: *const u8, n: i32) -> String {
        String::from_utf8_lossy(bytes(p, n)).into_owned()
    }

    unsafe fn write(buf: *mut u8, cap: i32, v: &[u8]) -> i32 {
        if v.len() <= cap.max(0) as usize {
            std::ptr::copy_nonoverlapping(v.as_ptr(), buf, v.len());
        }
        v.len() as i32
    }

    fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
        let mut out = Vec::new();
        for s in items {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        out
    }

    fn headers(h: &mut Host, kind: i32) -> &mut super::HeaderMap {
        if kind == abi::HEADER_RESPONSE {
            &mut h.response_headers
        } else {
            &mut h.request_headers
        }
    }

    pub unsafe fn log(level: i32, msg: *const u8, msg_len: i32) {
        let message = text(msg, msg_len);
        with(|h| h.logs.push(LogLine { level, message }))
    }

    pub unsafe fn get_config(buf: *mut u8, cap: i32) -> i32 {
        with(|h| write(buf, cap, &h.config))
    }

    pub unsafe fn get_property(prop: i32, buf: *mut u8, cap: i32) -> i32 {
        with(|h| match h.properties.iter().find(|(p, _)| p.id() == prop) {
            Some((_, v)) => write(buf, cap, v.as_bytes()),
            None => -1,
        })
    }

    pub unsafe fn clock(clock: i32) -> i64 {
        with(|h| {
            if clock == abi::CLOCK_MONOTONIC {
                h.monotonic_nanos
            } else {
                h.wall_nanos
            }
        })
    }

    pub unsafe fn get_header_names(kind: i32, buf: *mut u8, cap: i32) -> i32 {
        with(|h| write(buf, cap, &list(headers(h, kind).names())))
    }

    pub unsafe fn get_header(kind: i32, name: *const u8, name_len: i32, buf: *mut u8, cap: i32) -> i32 {
        let name = text(name, name_len);
        with(|h| write(buf, cap, &list(headers(h, kind).values(&name))))
    }

    pub unsafe fn set_header(kind: i32, name: *const u8, name_len: i32, value: *const u8, value_len: i32) {
        check_header_write("set_header", kind, bytes(name, name_len), bytes(value, value_len));
        let (name, value) = (text(name, name_len), text(value, value_len));
        with(|h| headers(h, kind).set(&name, &value))
    }

    pub unsafe fn add_header(kind: i32, name: *const u8, name_len: i32, value: *const u8, value_len: i32) {
        check_header_write("add_header", kind, bytes(name, name_len), bytes(value, value_len));
        let (name, value) = (text(name, name_len), text(value, value_len));
        with(|h| headers(h, kind).add(&name, &value))
    }

    pub unsafe fn remove_header(kind: i32, name: *const u8, name_len: i32) {
        only_in("remove_header", if kind == abi::HEADER_REQUEST { REQUEST_PHASES } else { HTTP_PHASES });
        let name = text(name, name_len);
        with(|h| headers(h, kind).remove(&name))
    }

    pub unsafe fn get_method(buf: *mut u8, cap: i32) -> i32 {
        with(|h| write(buf, cap, h.method.as_bytes()))
    }

    pub unsafe fn set_method(value: *const u8, value_len: i32) {
        only_in("set_method", REQUEST_PHASES);
        if !valid_name(bytes(value, value_len)) {
            misuse("set_method: not a valid method");
        }
        let v = text(value, value_len);
        with(|h| h.method = v)
    }

    pub unsafe fn get_path(buf: *mut u8, cap: i32) -> i32 {
        with(|h| write(buf, cap, h.path.as_bytes()))
    }

    pub unsafe fn set_path(value: *const u8, value_len: i32) {
        only_in("set_path", REQUEST_PHASES);
        let b = bytes(value, value_len);
        if b.first() != Some(&b'/') || !valid_value(b) {
            misuse("set_path: a path must start with / and have no CR, LF or NUL");
        }
        let v = text(value, value_len);
        with(|h| h.path = v)
    }

    pub unsafe fn get_query(buf: *mut u8, cap: i32) -> i32 {
        with(|h| write(buf, cap, h.query.as_bytes()))
    }

    pub unsafe fn set_query(value: *const u8, value_len: i32) {
        only_in("set_query", REQUEST_PHASES);
        if bytes(value, value_len).iter().any(|&c| c <= b' ' || c == 0x7f || c == b'#') {
            misuse("set_query: a raw query has no spaces, control bytes or #");
        }
        let v = text(value, value_len);
        with(|h| h.query = v)
    }

    pub unsafe fn get_status() -> i32 {
        with(|h| h.status)
    }

    pub unsafe fn set_status(status: i32) {
        only_in("set_status", &[Phase::Response]);
        if !(100..=999).contains(&status) {
            misuse("set_status: not an HTTP status");
        }
        with(|h| h.status = status)
    }

    fn body(h: &mut Host, kind: i32) -> &mut Option<Vec<u8>> {
        if kind == abi::BODY_RESPONSE {
            &mut h.response_body
        } else {
            &mut h.request_body
        }
    }

    pub unsafe fn get_body(kind: i32, buf: *mut u8, cap: i32) -> i32 {
        with(|h| match body(h, kind) {
            Some(b) => write(buf, cap, b),
            None => -1,
        })
    }

    pub unsafe fn set_body(kind: i32, value: *const u8, value_len: i32) -> i32 {
        let v = bytes(value, value_len).to_vec();
        with(|h| match body(h, kind) {
            Some(b) => {
                *b = v;
                0
            }
            None => -1,
        })
    }

    pub unsafe fn send_response(status: i32, hdrs: *const u8, hdrs_len: i32, body: *const u8, body_len: i32) {
        only_in("send_response", HTTP_PHASES);
        if !(200..=599).contains(&status) {
            misuse("send_response: a local response's status is 200-599");
        }
        let pairs = bytes(hdrs, hdrs_len);
        if !pairs.is_empty() && pairs.last() != Some(&0) {
            misuse("send_response: the header list does not end with NUL");
        }
        let body = bytes(body, body_len).to_vec();
        with(|h| {
            let mut headers = h.response_headers.clone();
            let items: Vec<String> = crate::host::split_list(pairs);
            if items.len() % 2 != 0 {
                misuse("send_response: the header list has a name without a value");
            }
            for pair in items.chunks(2) {
                if !valid_name(pair[0].as_bytes()) || !valid_value(pair[1].as_bytes()) {
                    misuse(&format!("send_response: invalid header {:?}", pair[0]));
                }
                headers.add(&pair[0], &pair[1]);
            }
            h.local_response = Some(LocalReply {
                status: status as u16,
                headers,
                body,
            });
        })
    }

    pub unsafe fn get_message(buf: *mut u8, cap: i32) -> i32 {
        with(|h| match &h.message {
            Some(m) => write(buf, cap, m),
            None => -1,
        })
    }

    pub unsafe fn set_message(value: *const u8, value_len: i32) {
        only_in("set_message", &[Phase::Message]);
        let v = bytes(value, value_len).to_vec();
        with(|h| h.message = Some(v))
    }

    pub unsafe fn inject_message(direction: i32, kind: i32, value: *const u8, value_len: i32) {
        only_in("inject_message", &[Phase::Message]);
        if kind == abi::MESSAGE_TEXT && std::str::from_utf8(bytes(value, value_len)).is_err() {
            misuse("inject_message: a text message must be UTF-8");
        }
        if with(|h| h.injected.len()) >= 16 && phase() == Phase::Message {
            misuse("inject_message: more than 16 messages injected in one call");
        }
        let payload = bytes(value, value_len).to_vec();
        with(|h| {
            h.injected.push(Injected {
                direction: Direction::from_abi(direction),
                kind: MessageKind::from_abi(kind),
                payload,
            })
        })
    }

    pub unsafe fn close_websocket(code: i32, reason: *const u8, reason_len: i32) {
        only_in("close_websocket", &[Phase::Message]);
        if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
            misuse(&format!("close_websocket: {} is not a close code a filter may send", code));
        }
        let r = bytes(reason, reason_len);
        if r.len() > 123 || std::str::from_utf8(r).is_err() {
            misuse("close_websocket: the reason must be UTF-8 of at most 123 bytes");
        }
        let reason = text(reason, reason_len);
        with(|h| h.close = Some((code as u16, reason)))
    }

    pub unsafe fn state_get(key: *const u8, key_len: i32, buf: *mut u8, cap: i32) -> i32 {
        only_in("state_get", &[Phase::Request, Phase::Upgrade, Phase::Response, Phase::Message, Phase::Close]);
        let key = text(key, key_len);
        with(|h| match h.state.get(&key) {
            Some(v) => write(buf, cap, v),
            None => -1,
        })
    }

    pub unsafe fn state_set(key: *const u8, key_len: i32, value: *const u8, value_len: i32) {
        only_in("state_set", &[Phase::Request, Phase::Upgrade, Phase::Response, Phase::Message, Phase::Close]);
        let (key, value) = (text(key, key_len), bytes(value, value_len).to_vec());
        with(|h| h.state.insert(key, value));
    }

    pub unsafe fn state_delete(key: *const u8, key_len: i32) {
        let key = text(key, key_len);
        with(|h| h.state.remove(&key));
    }

    fn expiry(h: &Host, ttl_ms: i64) -> i64 {
        if ttl_ms <= 0 {
            0
        } else {
            h.monotonic_nanos + ttl_ms * 1_000_000
        }
    }

    pub unsafe fn shared_get(key: *const u8, key_len: i32, buf: *mut u8, cap: i32) -> i32 {
        let key = text(key, key_len);
        with(|h| match h.shared_live(&key) {
            Some((v, _)) => write(buf, cap, v),
            None => -1,
        })
    }

    pub unsafe fn shared_set(key: *const u8, key_len: i32, value: *const u8, value_len: i32, ttl_ms: i64) {
        let (key, value) = (text(key, key_len), bytes(value, value_len).to_vec());
        with(|h| {
            let exp = expiry(h, ttl_ms);
            h.shared.insert(key, (value, exp));
        })
    }

    pub unsafe fn shared_delete(key: *const u8, key_len: i32) {
        let key = text(key, key_len);
        with(|h| h.shared.remove(&key));
    }

    pub unsafe fn shared_add(key: *const u8, key_len: i32, delta: i64, ttl_ms: i64) -> i64 {
        let key = text(key, key_len);
        with(|h| {
            let exp = expiry(h, ttl_ms);
            let (old, old_exp) = match h.shared_live(&key) {
                Some((v, e)) => (
                    std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0),
                    *e,
                ),
                None => (0, exp),
            };
            let new = old.wrapping_add(delta);
            h.shared.insert(key, (new.to_string().into_bytes(), old_exp));
            new
        })
    }
}
