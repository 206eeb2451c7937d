//! `abitest` calls every host function of the Sluice ABI and reports what it
//! saw, so the conformance kit (`examples/conformance`) can check that the
//! Rust SDK reaches each function and that the proxy answers as `abi/ABI.md`
//! says. It behaves byte for byte like the Go version beside it
//! (`../main.go`); `../README.md` specifies what both do.
//!
//! It is a test fixture, not a filter to deploy.

use std::time::Duration;

use sluice::{
    clock, log, property, shared, state, Action, Direction, Error, Features, Filter, Hooks, LocalResponse, Message,
    MessageAction, MessageKind, Property, Request, Response,
};

/// The filter; it keeps nothing but what `configure` checked.
pub struct AbiTest;

const ABSENT: &str = "<absent>";

const PROPERTIES: [(&str, Property); 7] = [
    ("Client-Addr", Property::ClientAddr),
    ("Host", Property::Host),
    ("Scheme", Property::Scheme),
    ("Route", Property::Route),
    ("Request-Id", Property::RequestId),
    ("Plugin", Property::Plugin),
    ("Protocol", Property::Protocol),
];

/// An ordered list of `Key: value` lines; the response hook turns each into
/// an `X-Abi-<Key>` response header.
#[derive(Default)]
struct Report(String);

impl Report {
    fn add(&mut self, key: &str, value: &str) {
        self.0.push_str(key);
        self.0.push_str(": ");
        self.0.push_str(&clean(value));
        self.0.push('\n');
    }
}

/// Makes `v` a header value: control bytes become `?`.
fn clean(v: &str) -> String {
    v.chars().map(|c| if c < ' ' || c == '\u{7f}' { '?' } else { c }).collect()
}

fn or_absent(v: Option<Vec<u8>>) -> String {
    match v {
        Some(v) => String::from_utf8_lossy(&v).into_owned(),
        None => ABSENT.to_string(),
    }
}

fn last_segment(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

impl Filter for AbiTest {
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS
        .union(Hooks::UPGRADE)
        .union(Hooks::RESPONSE_HEADERS)
        .union(Hooks::MESSAGE)
        .union(Hooks::CLOSE);
    const FEATURES: Features = Features::REQUEST_BODY.union(Features::RESPONSE_BODY);

    fn configure(config: &[u8]) -> Result<Self, Error> {
        if String::from_utf8_lossy(config).contains(r#""refuse":true"#) {
            return Err(Error::new("abitest: config asks to be refused"));
        }
        Ok(AbiTest)
    }

    fn on_request_headers(&self, req: &mut Request) -> Action {
        log::debug("abitest: debug");
        log::info(&format!("abitest: request {} {}", req.method(), req.path()));
        log::warn("abitest: warn");
        log::error("abitest: error");

        let mut h = req.headers();
        let mut r = Report::default();
        r.add("Method", &req.method());
        r.add("Path", &req.path());
        r.add("Query", &req.query());
        r.add("Config", &String::from_utf8_lossy(&sluice::config()));
        for (name, p) in PROPERTIES {
            r.add(&format!("Prop-{}", name), property(p).as_deref().unwrap_or(ABSENT));
        }
        r.add("Clock-Wall", &clock::now_nanos().to_string());
        let (m1, m2) = (clock::monotonic_nanos(), clock::monotonic_nanos());
        r.add("Clock-Mono", if m1 > 0 && m2 >= m1 { "ok" } else { "bad" });
        r.add("Names", &h.names().join(","));
        let values = h.values("X-Abi-In");
        r.add("In", &if values.is_empty() { ABSENT.to_string() } else { values.join("|") });
        r.add("Big-Len", &h.get("X-Abi-Big").map_or(0, |v| v.len()).to_string());
        r.add("Req-Body", &or_absent(req.body()));

        // Shared state: a counter, its decimal text, the previous request's
        // path, a value with a TTL, and a deleted key.
        r.add("Shared-Hits", &shared::add("hits", 1, Duration::ZERO).to_string());
        r.add("Shared-Hits-Text", &or_absent(shared::get("hits")));
        r.add("Shared-Last", &or_absent(shared::get("last")));
        shared::set("last", req.path().as_bytes(), Duration::ZERO);
        r.add("Shared-Ttl", &or_absent(shared::get("ttl")));
        if let Some(v) = h.get("X-Abi-Ttl-Ms").filter(|v| !v.is_empty()) {
            let ttl = Duration::from_millis(v.parse().unwrap_or(0));
            shared::set("ttl", b"alive", ttl);
            r.add("Shared-Ttl-Ctr", &shared::add("ttl-ctr", 1, ttl).to_string());
        }
        shared::set("del", b"x", Duration::ZERO);
        shared::delete("del");
        r.add("Shared-Deleted", &or_absent(shared::get("del")));
        r.add("Shared-Closed", &or_absent(shared::get("closed")));

        // Per-request state.
        state::set("tmp", b"x");
        r.add("State-Tmp", &or_absent(state::get("tmp")));
        state::delete("tmp");
        r.add("State-Deleted", &or_absent(state::get("tmp")));

        // Changes the upstream sees, some on demand.
        if let Some(v) = h.get("X-Abi-Set-Method") {
            req.set_method(&v);
        }
        if let Some(v) = h.get("X-Abi-Set-Path") {
            req.set_path(&v);
        }
        if let Some(v) = h.get("X-Abi-Set-Query") {
            req.set_query(&v);
        }
        if let Some(v) = h.get("X-Abi-Set-Req-Body") {
            if req.set_body(v.as_bytes()).is_err() {
                r.add("Set-Req-Body", "failed");
            }
        }
        h.set("X-Abi-Set", "set");
        h.add("X-Abi-Add", "1");
        h.add("X-Abi-Add", "2");
        h.set("x-abi-lower", "yes");
        h.remove("X-Abi-Remove");

        if last_segment(&req.path()) == "respond" {
            // In the request phase, response headers are the pending local
            // response's; send_response adds its own to them.
            let mut local = req.response_headers();
            local.set("X-Abi-Early", "early");
            local.add("X-Abi-Both", "early");
            r.add("Local-Names", &local.names().join(","));
            return Action::Respond(
                LocalResponse::new(418)
                    .header("Content-Type", "text/plain; charset=utf-8")
                    .header("X-Abi-Both", "late")
                    .body(r.0),
            );
        }
        if last_segment(&req.path()) == "replace" {
            state::set("replace", b"1");
        }
        state::set("report", r.0.as_bytes());
        Action::Continue
    }

    fn on_upgrade(&self, req: &mut Request) -> Action {
        if last_segment(&req.path()) == "refuse" {
            return Action::Respond(
                LocalResponse::new(403)
                    .header("Content-Type", "text/plain")
                    .body("refused by abitest\n"),
            );
        }
        state::set("upgrade", format!("{}?{}", req.path(), req.query()).as_bytes());
        req.headers().set("X-Abi-Upgrade", "yes");
        Action::Continue
    }

    fn on_response_headers(&self, resp: &mut Response) -> Action {
        let req = resp.request_headers();
        let mut r = Report::default();
        r.add("Resp-Status", &resp.status().to_string());
        if let Some(v) = req.get("X-Abi-Set-Status").filter(|v| !v.is_empty()) {
            resp.set_status(v.parse().unwrap_or(0));
        }
        r.add("Resp-Names", &resp.headers().names().join(","));
        r.add(
            "Resp-Body-Len",
            &resp.body().map_or(ABSENT.to_string(), |b| b.len().to_string()),
        );
        if let Some(v) = req.get("X-Abi-Set-Resp-Body") {
            if resp.set_body(v.as_bytes()).is_err() {
                r.add("Set-Resp-Body", "failed");
            }
        }
        if state::get("replace").is_some() {
            return Action::Respond(LocalResponse::new(502).header("X-Abi-Replaced", "yes").body("replaced\n"));
        }

        let saved = state::get("report").map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default();
        let mut out = resp.headers();
        for line in format!("{}{}", saved, r.0).split('\n') {
            if let Some(i) = line.find(": ") {
                out.set(&format!("X-Abi-{}", &line[..i]), &line[i + 2..]);
            }
        }
        out.set("X-Backend-Set", "new");
        out.add("X-Backend-Add", "2");
        out.remove("X-Backend-Remove");
        Action::Continue
    }

    fn on_message(&self, m: &mut Message) -> MessageAction {
        let n = state::get_string("n").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) + 1;
        state::set("n", n.to_string().as_bytes());

        let p = m.payload();
        if m.kind() == MessageKind::Binary {
            let mut out = p;
            out.push(m.direction().id() as u8);
            m.set_payload(&out);
            return MessageAction::Pass;
        }
        let text = String::from_utf8_lossy(&p).into_owned();
        if m.direction() == Direction::ClientToUpstream {
            let (cmd, arg) = match text.find(' ') {
                Some(i) => (&text[..i], &text[i + 1..]),
                None => (&text[..], ""),
            };
            let to_client = Direction::UpstreamToClient;
            match cmd {
                "drop" => return MessageAction::Drop,
                "close" => {
                    let (code, reason) = match arg.find(' ') {
                        Some(i) => (&arg[..i], &arg[i + 1..]),
                        None => (arg, ""),
                    };
                    return MessageAction::close(code.parse().unwrap_or(0), reason);
                }
                "inject" => {
                    m.inject(to_client, MessageKind::Text, b"injected to client");
                    m.inject(Direction::ClientToUpstream, MessageKind::Text, b"injected to upstream");
                    m.inject(to_client, MessageKind::Binary, &[0xff, 0x00]);
                }
                "inject-many" => {
                    for i in 1..=arg.parse::<i64>().unwrap_or(0) {
                        m.inject(to_client, MessageKind::Text, format!("many {}", i).as_bytes());
                    }
                    return MessageAction::Drop;
                }
                "inject-invalid-utf8" => {
                    m.inject(to_client, MessageKind::Text, &[0xff]);
                    return MessageAction::Drop;
                }
                "state" => {
                    let reply = format!(
                        "upgrade={} report={} n={}",
                        or_absent(state::get("upgrade")),
                        state::get("report").is_some(),
                        n
                    );
                    m.inject(to_client, MessageKind::Text, reply.as_bytes());
                    return MessageAction::Drop;
                }
                "shared" => {
                    let c = shared::add("msgs", 1, Duration::ZERO);
                    m.inject(to_client, MessageKind::Text, format!("msgs={}", c).as_bytes());
                    return MessageAction::Drop;
                }
                "props" => {
                    let reply: Vec<String> = PROPERTIES
                        .iter()
                        .map(|(name, p)| format!("{}={}", name, property(*p).as_deref().unwrap_or(ABSENT)))
                        .collect();
                    m.inject(to_client, MessageKind::Text, reply.join(" ").as_bytes());
                    return MessageAction::Drop;
                }
                _ => {}
            }
        }
        let dir = if m.direction() == Direction::ClientToUpstream { "c2u" } else { "u2c" };
        let out = format!("{} [{} text {} #{}]", text, dir, m.len(), n);
        m.set_payload(out.as_bytes());
        MessageAction::Pass
    }

    fn on_close(&self) {
        shared::add("closed", 1, Duration::ZERO);
    }
}

sluice::register!(AbiTest);
