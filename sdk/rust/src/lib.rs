//! Write [Sluice](https://github.com/sluiceproxy/sluice) proxy filters in
//! Rust.
//!
//! A filter is a type that implements [`Filter`], registered with
//! [`register!`]. The SDK turns it into the exports of ABI v1 (see
//! `abi/ABI.md`): a filter overrides the hooks it needs, declares them in
//! [`Filter::HOOKS`] and never touches a pointer.
//!
//! ```
//! use sluice::{Action, Error, Filter, Hooks, LocalResponse, Request};
//!
//! struct Hello;
//!
//! impl Filter for Hello {
//!     const HOOKS: Hooks = Hooks::REQUEST_HEADERS;
//!
//!     fn configure(_config: &[u8]) -> Result<Self, Error> {
//!         Ok(Hello)
//!     }
//!
//!     fn on_request_headers(&self, req: &mut Request) -> Action {
//!         if req.path() == "/hello" {
//!             return Action::Respond(LocalResponse::new(200).body("hello\n"));
//!         }
//!         req.headers().set("X-Seen-By", "hello");
//!         Action::Continue
//!     }
//! }
//!
//! sluice::register!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-unknown-unknown` (a
//! `cdylib` crate). On other targets the host functions are an in-memory stub
//! host (the `testing` module), so `cargo test` runs a filter's tests natively.
//!
//! # Statelessness
//!
//! The proxy pools instances of a filter and may run two messages of one
//! WebSocket in two instances, so a filter keeps nothing between calls in
//! itself: its fields come from the config (every instance is configured the
//! same way), and anything learnt during a request or a connection goes in
//! [`state`] (scoped to the request or connection) or [`shared`] (across
//! connections). That is why hooks take `&self`.

#![deny(missing_docs)]

pub mod abi;
pub mod base64;
pub mod crypto;
pub mod duration;
mod filter;
mod headers;
mod host;
pub mod json;
mod phases;
pub mod shared;
pub mod state;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use filter::{Action, Error, Features, Filter, Hooks, LocalResponse, MessageAction};
pub use headers::Headers;
pub use phases::{Direction, Message, MessageKind, Request, Response};


/// Reads the plugin's config: its `[plugin.config]` table as JSON, `{}` when
/// it has none. [`Filter::configure`] receives the same bytes.
pub fn config() -> Vec<u8> {
    host::read_or_empty(|buf, cap| unsafe { host::get_config(buf, cap) })
}

/// A read-only fact about the current request or WebSocket session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Property {
    /// The client's address, `"ip:port"`.
    ClientAddr,
    /// The Host the client asked for.
    Host,
    /// `"http"` or `"https"`.
    Scheme,
    /// The name of the route that matched.
    Route,
    /// The request ID (`X-Request-Id`).
    RequestId,
    /// The name of the plugin this filter runs as.
    Plugin,
    /// The client's protocol, e.g. `"HTTP/1.1"`.
    Protocol,
}

impl Property {
    /// The property's number in the ABI.
    pub const fn id(self) -> i32 {
        match self {
            Property::ClientAddr => 0,
            Property::Host => 1,
            Property::Scheme => 2,
            Property::Route => 3,
            Property::RequestId => 4,
            Property::Plugin => 5,
            Property::Protocol => 6,
        }
    }
}

/// Reads a [`Property`]; `None` when the host does not know it.
pub fn property(p: Property) -> Option<String> {
    host::read(0, |buf, cap| unsafe { host::get_property(p.id(), buf, cap) })
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Writing to the proxy's log, tagged with the plugin's name.
pub mod log {
    use crate::{abi, host};

    fn write(level: i32, msg: &str) {
        let (p, n) = host::raw(msg.as_bytes());
        unsafe { host::log(level, p, n) }
    }

    /// Logs at debug level.
    pub fn debug(msg: &str) {
        write(abi::LOG_DEBUG, msg)
    }
    /// Logs at info level.
    pub fn info(msg: &str) {
        write(abi::LOG_INFO, msg)
    }
    /// Logs at warn level.
    pub fn warn(msg: &str) {
        write(abi::LOG_WARN, msg)
    }
    /// Logs at error level.
    pub fn error(msg: &str) {
        write(abi::LOG_ERROR, msg)
    }
}

/// The host's clocks. A guest has no other reliable source of time.
pub mod clock {
    use crate::{abi, host};

    /// Wall time in nanoseconds since the Unix epoch.
    pub fn now_nanos() -> i64 {
        unsafe { host::clock(abi::CLOCK_WALL) }
    }

    /// Wall time in whole seconds since the Unix epoch (what JWT `exp` and
    /// `nbf` claims compare with).
    pub fn unix_seconds() -> i64 {
        now_nanos().div_euclid(1_000_000_000)
    }

    /// Monotonic nanoseconds since an arbitrary fixed point: for measuring
    /// intervals, never for dates.
    pub fn monotonic_nanos() -> i64 {
        unsafe { host::clock(abi::CLOCK_MONOTONIC) }
    }
}
