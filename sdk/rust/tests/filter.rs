//! A filter that uses every part of the API, driven through the stub host the
//! way the proxy drives the exports.

use std::time::Duration;

use sluice::testing::{self, Injected};
use sluice::{
    abi, json, shared, state, Action, Direction, Error, Features, Filter, Hooks, LocalResponse, Message,
    MessageAction, MessageKind, Property, Request, Response,
};

struct Everything {
    greeting: String,
}

impl Filter for Everything {
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS
        .union(Hooks::UPGRADE)
        .union(Hooks::RESPONSE_HEADERS)
        .union(Hooks::MESSAGE)
        .union(Hooks::CLOSE);
    const FEATURES: Features = Features::RESPONSE_BODY;

    fn configure(config: &[u8]) -> Result<Self, Error> {
        let v = json::parse(config)?;
        let greeting = v
            .get("greeting")
            .and_then(json::Value::as_str)
            .ok_or_else(|| Error::new("everything: greeting must be a string"))?;
        Ok(Everything {
            greeting: greeting.to_string(),
        })
    }

    fn on_request_headers(&self, req: &mut Request) -> Action {
        if req.path() == "/deny" {
            req.response_headers().set("WWW-Authenticate", "Bearer");
            return Action::Respond(
                LocalResponse::new(401).json(&json::Value::Object(vec![("error".into(), "no".into())])),
            );
        }
        let mut h = req.headers();
        let n = h.values("x-multi").len();
        h.set("X-Greeting", &self.greeting);
        h.set("X-Multi-Count", &n.to_string());
        h.remove("Authorization");
        h.add("X-Names", &h.names().join(","));
        if let Some(who) = req.query_param("who") {
            state::set("who", who.as_bytes());
        }
        req.set_path(&(req.path() + "/v2"));
        req.set_method("POST");
        req.set_query("");
        Action::Continue
    }

    fn on_upgrade(&self, req: &mut Request) -> Action {
        state::set("client", sluice::property(Property::ClientAddr).unwrap_or_default().as_bytes());
        if req.headers().get("Sec-WebSocket-Protocol").as_deref() == Some("bad") {
            return Action::Respond(LocalResponse::new(403).body("no"));
        }
        Action::Continue
    }

    fn on_response_headers(&self, resp: &mut Response) -> Action {
        let body = resp.body().unwrap_or_default();
        let mut upper = body.to_ascii_uppercase();
        upper.extend_from_slice(b"!");
        if resp.set_body(&upper).is_err() {
            return Action::Respond(LocalResponse::new(500));
        }
        let status = resp.status();
        resp.set_status(status + 1);
        resp.headers().add("X-Who", &state::get_string("who").unwrap_or_default());
        Action::Continue
    }

    fn on_message(&self, msg: &mut Message) -> MessageAction {
        let count = shared::add("messages", 1, Duration::from_secs(60));
        match msg.text().as_deref() {
            Some("drop") => MessageAction::Drop,
            Some("bye") => MessageAction::close(4000, "bye"),
            Some("ping") => {
                msg.inject(msg.direction().reverse(), MessageKind::Text, b"pong");
                MessageAction::Pass
            }
            Some(t) => {
                let client = state::get_string("client").unwrap_or_default();
                msg.set_payload(format!("{}:{}:{}:{}", t, count, client, msg.len()).as_bytes());
                MessageAction::Pass
            }
            None => MessageAction::Pass,
        }
    }

    fn on_close(&self) {
        sluice::log::info("closed");
        shared::delete("messages");
    }
}

sluice::register!(Everything);

fn filter() -> Everything {
    testing::configure(r#"{"greeting": "hi"}"#).unwrap()
}

#[test]
fn configure_errors_are_reported() {
    assert_eq!(
        testing::configure::<Everything>("{}").err(),
        Some(Error::new("everything: greeting must be a string"))
    );
    assert_eq!(
        testing::configure::<Everything>("{").err().map(|e| e.to_string()),
        Some("json: unexpected end of input at offset 1".to_string())
    );
}

#[test]
fn configure_through_the_export_logs_and_refuses() {
    testing::reset();
    testing::with(|h| h.config = b"[]".to_vec());
    let slot: sluice::__private::Slot<Everything> = sluice::__private::Slot::new();
    assert_eq!(slot.configure(2), 1);
    testing::with(|h| {
        assert_eq!(h.logs.len(), 1);
        assert_eq!(h.logs[0].level, abi::LOG_ERROR);
    });
    testing::with(|h| h.config = br#"{"greeting":"yo"}"#.to_vec());
    assert_eq!(slot.configure(17), 0);
    assert_eq!(slot.get().greeting, "yo");
}

#[test]
fn request_headers_change_the_request() {
    let f = filter();
    testing::with(|h| {
        h.path = "/api".into();
        h.query = "who=ann%20b&x=1".into();
        h.request_headers.add("X-Multi", "1");
        h.request_headers.add("x-multi", "2");
        h.request_headers.set("Authorization", "Bearer t");
    });
    assert_eq!(testing::on_request_headers(&f), abi::ACTION_CONTINUE);
    testing::with(|h| {
        assert_eq!(h.path, "/api/v2");
        assert_eq!(h.method, "POST");
        assert_eq!(h.query, "");
        assert_eq!(h.request_headers.get("x-greeting"), Some("hi"));
        assert_eq!(h.request_headers.get("X-Multi-Count"), Some("2"));
        assert_eq!(h.request_headers.get("Authorization"), None);
        assert_eq!(h.request_headers.get("X-Names"), Some("X-Multi,X-Greeting,X-Multi-Count"));
        assert_eq!(h.state.get("who").map(|v| &v[..]), Some(&b"ann b"[..]));
        assert_eq!(h.local_response, None);
    });
}

#[test]
fn local_response_carries_status_headers_and_body() {
    let f = filter();
    testing::with(|h| h.path = "/deny".into());
    assert_eq!(testing::on_request_headers(&f), abi::ACTION_RESPOND);
    testing::with(|h| {
        let r = h.local_response.as_ref().expect("a local response");
        assert_eq!(r.status, 401);
        assert_eq!(r.headers.get("Content-Type"), Some("application/json"));
        assert_eq!(r.headers.get("WWW-Authenticate"), Some("Bearer"));
        assert_eq!(r.text(), r#"{"error":"no"}"#);
    });
}

#[test]
fn upgrade_state_reaches_the_message_hook() {
    let f = filter();
    testing::with(|h| h.request_headers.set("Sec-WebSocket-Protocol", "chat"));
    assert_eq!(testing::on_upgrade(&f), abi::ACTION_CONTINUE);
    assert_eq!(testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"hello"), abi::ACTION_PASS);
    testing::with(|h| assert_eq!(h.message.as_deref(), Some(&b"hello:1:127.0.0.1:50000:5"[..])));

    testing::with(|h| h.request_headers.set("Sec-WebSocket-Protocol", "bad"));
    assert_eq!(testing::on_upgrade(&f), abi::ACTION_RESPOND);
    testing::with(|h| assert_eq!(h.local_response.as_ref().map(|r| r.status), Some(403)));
}

#[test]
fn message_actions() {
    let f = filter();
    assert_eq!(testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"drop"), abi::ACTION_DROP);
    assert_eq!(testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"bye"), abi::ACTION_CLOSE);
    testing::with(|h| assert_eq!(h.close, Some((4000, "bye".to_string()))));
    assert_eq!(testing::on_message(&f, Direction::UpstreamToClient, MessageKind::Text, b"ping"), abi::ACTION_PASS);
    testing::with(|h| {
        assert_eq!(
            h.injected,
            vec![Injected {
                direction: Direction::ClientToUpstream,
                kind: MessageKind::Text,
                payload: b"pong".to_vec()
            }]
        );
        assert_eq!(h.message.as_deref(), Some(&b"ping"[..]));
    });
    // Binary payload that is not UTF-8 passes untouched.
    assert_eq!(testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Binary, &[0xff, 0]), abi::ACTION_PASS);
    testing::with(|h| assert_eq!(h.message.as_deref(), Some(&[0xff, 0][..])));
}

#[test]
fn shared_counters_expire() {
    let f = filter();
    for want in 1..=3 {
        testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"x");
        testing::with(|h| assert_eq!(h.message.as_deref(), Some(format!("x:{}::1", want).as_bytes())));
    }
    testing::with(|h| h.advance(Duration::from_secs(61)));
    testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"x");
    testing::with(|h| assert_eq!(h.message.as_deref(), Some(&b"x:1::1"[..])));
    testing::on_close(&f);
    testing::with(|h| {
        assert!(h.shared.is_empty());
        assert_eq!(h.logs.last().map(|l| l.message.as_str()), Some("closed"));
    });
}

#[test]
fn shared_values_get_set_delete() {
    testing::reset();
    assert_eq!(shared::get("k"), None);
    shared::set("k", b"v", Duration::from_millis(10));
    assert_eq!(shared::get("k").as_deref(), Some(&b"v"[..]));
    testing::with(|h| h.advance(Duration::from_millis(10)));
    assert_eq!(shared::get("k"), None);
    shared::set("k", b"", Duration::ZERO);
    testing::with(|h| h.advance(Duration::from_secs(1_000_000)));
    assert_eq!(shared::get("k").as_deref(), Some(&b""[..]), "empty is not absent");
    shared::delete("k");
    assert_eq!(shared::get("k"), None);
    shared::set("n", b"not a number", Duration::ZERO);
    assert_eq!(shared::add("n", 5, Duration::ZERO), 5);
}

#[test]
fn response_body_needs_the_feature() {
    let f = filter();
    testing::with(|h| {
        h.status = 200;
        h.response_body = Some(b"ok".to_vec());
    });
    assert_eq!(testing::on_response_headers(&f), abi::ACTION_CONTINUE);
    testing::with(|h| {
        assert_eq!(h.response_body.as_deref(), Some(&b"OK!"[..]));
        assert_eq!(h.status, 201);
        assert_eq!(h.response_headers.values("X-Who"), vec![""]);
    });
    // Without a buffered body, set_body fails and the filter answers 500.
    testing::with(|h| h.response_body = None);
    assert_eq!(testing::on_response_headers(&f), abi::ACTION_RESPOND);
    testing::with(|h| assert_eq!(h.local_response.as_ref().map(|r| r.status), Some(500)));
}

#[test]
fn long_values_take_the_retry_path() {
    testing::reset();
    let long = "v".repeat(10_000);
    testing::with(|h| h.request_headers.set("X-Long", &long));
    assert_eq!(sluice::testing::HeaderMap::new().get("x"), None);
    // Read through the SDK, which starts with a small buffer.
    struct Probe;
    impl Filter for Probe {
        const HOOKS: Hooks = Hooks::REQUEST_HEADERS;
        fn configure(_: &[u8]) -> Result<Self, Error> {
            Ok(Probe)
        }
        fn on_request_headers(&self, req: &mut Request) -> Action {
            let v = req.headers().get("x-long").unwrap_or_default();
            req.headers().set("X-Len", &v.len().to_string());
            Action::Continue
        }
    }
    testing::on_request_headers(&Probe);
    testing::with(|h| assert_eq!(h.request_headers.get("X-Len"), Some("10000")));
}

#[test]
fn properties_and_clocks() {
    testing::reset();
    assert_eq!(sluice::property(Property::Scheme).as_deref(), Some("http"));
    testing::with(|h| h.properties.clear());
    assert_eq!(sluice::property(Property::Scheme), None);
    assert_eq!(sluice::clock::unix_seconds(), 1_700_000_000);
    let before = sluice::clock::monotonic_nanos();
    testing::with(|h| h.advance(Duration::from_millis(5)));
    assert_eq!(sluice::clock::monotonic_nanos() - before, 5_000_000);
    assert_eq!(sluice::config(), b"{}");
}

#[test]
fn hooks_and_features_bits_match_the_abi() {
    assert_eq!(Everything::HOOKS.bits(), 1 | 2 | 4 | 8 | 16);
    assert_eq!(Everything::FEATURES.bits(), 2);
    assert_eq!((Hooks::MESSAGE | Hooks::CLOSE).bits(), 24);
    assert!(Everything::HOOKS.contains(Hooks::UPGRADE));
    assert!(!Hooks::REQUEST_HEADERS.contains(Hooks::UPGRADE));
    assert_eq!((Features::REQUEST_BODY | Features::RESPONSE_BODY).bits(), 3);
}

/// A filter that breaks the ABI in the way its config says, to check that the
/// stub host traps where the proxy would.
struct Misuse(String);

impl Filter for Misuse {
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS.union(Hooks::MESSAGE);
    fn configure(config: &[u8]) -> Result<Self, Error> {
        Ok(Misuse(String::from_utf8_lossy(config).into_owned()))
    }
    fn on_request_headers(&self, req: &mut Request) -> Action {
        match self.0.as_str() {
            "bad header name" => req.headers().set("Bad Name", "x"),
            "header value with newline" => req.headers().set("X-A", "a\r\nB: c"),
            "status 99" => return Action::Respond(LocalResponse::new(99)),
            "path without slash" => req.set_path("x"),
            "query with space" => req.set_query("a b"),
            _ => {}
        }
        Action::Continue
    }
    fn on_message(&self, msg: &mut Message) -> MessageAction {
        match self.0.as_str() {
            "close 1005" => MessageAction::close(1005, ""),
            "long reason" => MessageAction::close(1008, &"x".repeat(124)),
            "text not utf-8" => {
                msg.inject(Direction::ClientToUpstream, MessageKind::Text, &[0xff]);
                MessageAction::Pass
            }
            _ => MessageAction::Pass,
        }
    }
}

#[test]
fn the_stub_traps_where_the_proxy_would() {
    for case in [
        "bad header name",
        "header value with newline",
        "status 99",
        "path without slash",
        "query with space",
        "close 1005",
        "long reason",
        "text not utf-8",
    ] {
        let result = std::panic::catch_unwind(|| {
            let f: Misuse = testing::configure(case).unwrap();
            testing::on_request_headers(&f);
            testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"m");
        });
        assert!(result.is_err(), "{}: no trap", case);
    }
    // And a well-behaved run does not trap.
    let f: Misuse = testing::configure("fine").unwrap();
    assert_eq!(testing::on_request_headers(&f), abi::ACTION_CONTINUE);
    assert_eq!(testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"m"), abi::ACTION_PASS);
}

#[test]
#[should_panic(expected = "set_status called in Request")]
fn set_status_belongs_to_the_response() {
    testing::reset();
    testing::with(|h| h.phase = testing::Phase::Request);
    // Only reachable through a Response, which exists only in the response
    // hook; the stub still checks the phase like the proxy.
    let mut resp = sluice::__private::response_for_tests();
    resp.set_status(201);
}

/// Reads and rewrites the request body, which needs the feature.
struct Body;

impl Filter for Body {
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS;
    const FEATURES: Features = Features::REQUEST_BODY;
    fn configure(_: &[u8]) -> Result<Self, Error> {
        Ok(Body)
    }
    fn on_request_headers(&self, req: &mut Request) -> Action {
        match req.body() {
            None => Action::Respond(LocalResponse::new(500).body("body not buffered")),
            Some(b) if b.is_empty() => Action::Respond(LocalResponse::new(411)),
            Some(b) => {
                let mut b = b;
                b.reverse();
                req.set_body(&b).unwrap();
                req.headers().set("Content-Length", &b.len().to_string());
                Action::Continue
            }
        }
    }
}

#[test]
fn request_body() {
    let f: Body = testing::configure("{}").unwrap();
    testing::with(|h| h.request_body = Some(b"abc".to_vec()));
    assert_eq!(testing::on_request_headers(&f), abi::ACTION_CONTINUE);
    testing::with(|h| assert_eq!(h.request_body.as_deref(), Some(&b"cba"[..])));
    testing::with(|h| h.request_body = Some(Vec::new()));
    assert_eq!(testing::on_request_headers(&f), abi::ACTION_RESPOND);
    testing::with(|h| assert_eq!(h.local_response.as_ref().map(|r| r.status), Some(411)));
    testing::with(|h| h.request_body = None);
    assert_eq!(testing::on_request_headers(&f), abi::ACTION_RESPOND);
    testing::with(|h| assert_eq!(h.local_response.as_ref().map(|r| r.text()), Some("body not buffered".to_string())));
    // abi.FeatureRequestBody.
    assert_eq!(Body::FEATURES.bits(), 1);
}

// HOOKS must name exactly the hooks a filter implements: the proxy calls
// only the declared ones, so a forgotten declaration is a hook that never
// runs. testing::configure, where every filter test starts, catches it.

struct ForgotMessage;

impl Filter for ForgotMessage {
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS;
    fn configure(_: &[u8]) -> Result<Self, Error> {
        Ok(ForgotMessage)
    }
    fn on_request_headers(&self, _req: &mut sluice::Request) -> sluice::Action {
        sluice::Action::Continue
    }
    fn on_message(&self, _msg: &mut sluice::Message) -> sluice::MessageAction {
        sluice::MessageAction::Drop
    }
}

#[test]
#[should_panic(expected = "implements on_message but HOOKS lacks Hooks::MESSAGE: the proxy would never call it")]
fn an_implemented_hook_missing_from_hooks_fails() {
    let _: Result<ForgotMessage, _> = testing::configure("{}");
}

struct DeclaresClose;

impl Filter for DeclaresClose {
    const HOOKS: Hooks = Hooks::CLOSE;
    fn configure(_: &[u8]) -> Result<Self, Error> {
        Ok(DeclaresClose)
    }
}

#[test]
#[should_panic(expected = "declares Hooks::CLOSE in HOOKS but does not implement on_close")]
fn a_declared_hook_not_implemented_fails() {
    let _: Result<DeclaresClose, _> = testing::configure("{}");
}

/// Declares both header hooks and drops the response hook when its config
/// says so, as Filter::hooks allows.
struct Narrowing {
    responses: bool,
}

impl Filter for Narrowing {
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS.union(Hooks::RESPONSE_HEADERS);
    fn configure(config: &[u8]) -> Result<Self, Error> {
        Ok(Narrowing { responses: config != b"{}" })
    }
    fn hooks(&self) -> Hooks {
        if self.responses {
            Self::HOOKS
        } else {
            Hooks::REQUEST_HEADERS
        }
    }
    fn on_request_headers(&self, _req: &mut sluice::Request) -> sluice::Action {
        sluice::Action::Continue
    }
    fn on_response_headers(&self, _resp: &mut sluice::Response) -> sluice::Action {
        sluice::Action::Continue
    }
}

#[test]
fn the_stub_calls_the_hooks_the_proxy_calls() {
    let f: Narrowing = testing::configure(r#"{"responses":true}"#).unwrap();
    assert_eq!(testing::on_response_headers(&f), sluice::abi::ACTION_CONTINUE);
}

#[test]
#[should_panic(expected = "the proxy would not call on_response_headers on this filter")]
fn the_stub_refuses_a_hook_the_proxy_would_not_call() {
    let f: Narrowing = testing::configure("{}").unwrap();
    testing::on_response_headers(&f);
}
