use std::fmt;

use crate::{Message, Request, Response};

/// A Sluice filter: the hooks the proxy calls, each with a default that does
/// nothing, so a filter overrides only the ones it needs.
///
/// Rust cannot tell which default methods a type overrides, so a filter names
/// its hooks in [`HOOKS`](Filter::HOOKS). The host calls only those (and, when
/// no filter of a route has [`Hooks::MESSAGE`], relays that route's WebSockets
/// without parsing frames). A hook overridden but not declared would never be
/// called, and a hook declared but not overridden would cost a call for
/// nothing: [`testing::configure`](crate::testing::configure), which every
/// `cargo test` of a filter starts with, checks that `HOOKS` names exactly
/// the hooks the filter implements and fails the test otherwise.
///
/// Hooks take `&self`: the filter's fields are its configuration. Anything a
/// filter learns during a request or connection goes in [`crate::state`].
pub trait Filter: Sized + 'static {
    /// The hooks this filter handles.
    const HOOKS: Hooks;

    /// The features this filter needs, such as buffered bodies. None by
    /// default.
    const FEATURES: Features = Features::NONE;

    /// Builds the filter from the plugin's config (its `[plugin.config]`
    /// table as JSON, `{}` when it has none; parse it with
    /// [`crate::json::parse`]). Runs once per instance, before any hook.
    ///
    /// # Errors
    ///
    /// An error refuses the module at load time: the proxy does not start (or
    /// a reload keeps the previous generation), and the error's message is
    /// logged.
    fn configure(config: &[u8]) -> Result<Self, Error>;

    /// The hooks the host calls, asked once after [`configure`](Filter::configure):
    /// [`HOOKS`](Filter::HOOKS) unless the filter narrows it by its config
    /// (say, a header filter whose config has no response rules drops
    /// [`Hooks::RESPONSE_HEADERS`], so the proxy never calls it for
    /// responses). Hooks outside [`HOOKS`](Filter::HOOKS) are not added.
    fn hooks(&self) -> Hooks {
        Self::HOOKS
    }

    /// Runs before a request is sent upstream. It may change the request's
    /// method, path, query, headers and (with [`Features::REQUEST_BODY`])
    /// body, or answer locally with [`Action::Respond`].
    fn on_request_headers(&self, _req: &mut Request) -> Action {
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::default_hook_ran(Hooks::REQUEST_HEADERS);
        Action::Continue
    }

    /// Runs for a WebSocket upgrade request, after
    /// [`on_request_headers`](Filter::on_request_headers) and before the
    /// upstream is dialled. [`Action::Respond`] refuses the upgrade. State set
    /// here carries over to the connection's message hooks.
    fn on_upgrade(&self, _req: &mut Request) -> Action {
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::default_hook_ran(Hooks::UPGRADE);
        Action::Continue
    }

    /// Runs when the upstream's response headers arrive. It may change the
    /// status, headers and (with [`Features::RESPONSE_BODY`]) body, or
    /// replace the response with [`Action::Respond`].
    fn on_response_headers(&self, _resp: &mut Response) -> Action {
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::default_hook_ran(Hooks::RESPONSE_HEADERS);
        Action::Continue
    }

    /// Runs for each whole WebSocket message (fragments reassembled), in
    /// either direction.
    fn on_message(&self, _msg: &mut Message) -> MessageAction {
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::default_hook_ran(Hooks::MESSAGE);
        MessageAction::Pass
    }

    /// Runs once when a WebSocket session ends, whichever side ended it.
    fn on_close(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::default_hook_ran(Hooks::CLOSE);
    }
}

/// A set of hooks, declared in [`Filter::HOOKS`].
///
/// Combine them in a constant with [`union`](Hooks::union):
/// `Hooks::REQUEST_HEADERS.union(Hooks::UPGRADE)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Hooks(u32);

impl Hooks {
    /// No hooks.
    pub const NONE: Hooks = Hooks(0);
    /// [`Filter::on_request_headers`].
    pub const REQUEST_HEADERS: Hooks = Hooks(1 << 0);
    /// [`Filter::on_response_headers`].
    pub const RESPONSE_HEADERS: Hooks = Hooks(1 << 1);
    /// [`Filter::on_upgrade`].
    pub const UPGRADE: Hooks = Hooks(1 << 2);
    /// [`Filter::on_message`].
    pub const MESSAGE: Hooks = Hooks(1 << 3);
    /// [`Filter::on_close`].
    pub const CLOSE: Hooks = Hooks(1 << 4);

    /// The hooks of both sets.
    pub const fn union(self, other: Hooks) -> Hooks {
        Hooks(self.0 | other.0)
    }

    /// Whether every hook of `other` is in `self`.
    pub const fn contains(self, other: Hooks) -> bool {
        self.0 & other.0 == other.0
    }

    /// The hooks of `self` that are in `other` too.
    pub const fn intersect(self, other: Hooks) -> Hooks {
        Hooks(self.0 & other.0)
    }

    /// The hooks of `self` without those of `other`.
    pub const fn without(self, other: Hooks) -> Hooks {
        Hooks(self.0 & !other.0)
    }

    /// The bits that `sluice_hooks` returns.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl std::ops::BitOr for Hooks {
    type Output = Hooks;
    fn bitor(self, other: Hooks) -> Hooks {
        self.union(other)
    }
}

/// A set of features a filter needs from the host, declared in
/// [`Filter::FEATURES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Features(u32);

impl Features {
    /// No features.
    pub const NONE: Features = Features(0);
    /// The host buffers the request body before
    /// [`Filter::on_request_headers`], so [`Request::body`] and
    /// [`Request::set_body`] work.
    pub const REQUEST_BODY: Features = Features(1 << 0);
    /// The host buffers the response body before
    /// [`Filter::on_response_headers`], so [`Response::body`] and
    /// [`Response::set_body`] work.
    pub const RESPONSE_BODY: Features = Features(1 << 1);

    /// The features of both sets.
    pub const fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }

    /// Whether every feature of `other` is in `self`.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits that `sluice_features` returns.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl std::ops::BitOr for Features {
    type Output = Features;
    fn bitor(self, other: Features) -> Features {
        self.union(other)
    }
}

/// What a header hook decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Let the request or response go on to the next filter.
    Continue,
    /// Stop the chain and send this response to the client instead (in the
    /// response phase: instead of the upstream's).
    Respond(LocalResponse),
}

/// A response the filter produces itself, such as a 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Header name/value pairs, in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl LocalResponse {
    /// A response with `status` (200 to 599; the proxy traps a filter that
    /// answers with another), no headers and an empty body.
    pub fn new(status: u16) -> LocalResponse {
        LocalResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> LocalResponse {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> LocalResponse {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json(self, value: &crate::json::Value) -> LocalResponse {
        self.header("Content-Type", "application/json")
            .body(value.to_string())
    }
}

/// What a message hook decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageAction {
    /// Forward the message, with its payload as
    /// [`Message::set_payload`] left it.
    Pass,
    /// Discard the message; later filters do not see it.
    Drop,
    /// Close both sides of the WebSocket with a close code and a reason.
    ///
    /// The code must be one a filter may send (1000-1003, 1007-1014 or
    /// 3000-4999; 1008 is "policy violation") and the reason at most 123
    /// bytes, or the proxy traps the filter.
    Close {
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

impl MessageAction {
    /// [`MessageAction::Close`] with `code` and `reason`.
    pub fn close(code: u16, reason: &str) -> MessageAction {
        MessageAction::Close {
            code,
            reason: reason.to_string(),
        }
    }
}

/// An error of the SDK or of a filter, carrying a message for the proxy's
/// log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    msg: String,
}

impl Error {
    /// An error with a message, such as `"auth: jwt_secret must be a string"`.
    pub fn new(msg: impl Into<String>) -> Error {
        Error { msg: msg.into() }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.msg
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

impl From<crate::json::ParseError> for Error {
    fn from(e: crate::json::ParseError) -> Error {
        Error::new(e.to_string())
    }
}
