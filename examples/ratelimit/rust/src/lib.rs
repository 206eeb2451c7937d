//! `ratelimit` limits requests (WebSocket upgrades included) and WebSocket
//! messages per client address, API key or authenticated user, with a
//! sliding window kept in the shared store: per proxy on the memory backend,
//! across every proxy on the Redis backend. Config, keys in the store and
//! behaviour are those of the Go version beside it (see its README.md):
//!
//! ```toml
//! [plugin.config]
//! key = "client"          # or "header:X-API-Key", "state:auth.user"
//! limit = 100             # requests per window; 0: not limited
//! window = "1m"           # whole seconds, 1s to 24h
//! messages = 0            # client messages per window; 0: not limited
//! message_action = "drop" # or "close" (1008)
//!   [plugin.config.routes.api]   # a route's own policy, inheriting the rest
//!   limit = 10
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use sluice::json::{Config, Value};
use sluice::{clock, shared, state, Action, Direction, Error, Filter, Hooks, LocalResponse, Message, MessageAction};
use sluice::{Request, Response};

/// One set of limits, the default or a route's.
#[derive(Clone, Debug)]
struct Policy {
    name: String,
    key: String,
    limit: i64,
    messages: i64,
    /// Milliseconds.
    window: i64,
    close_ws: bool,
}

/// The filter: the checked policies and the previous-window cache.
pub struct RateLimit {
    default: Policy,
    routes: Vec<Policy>,
    prev_cache: RefCell<HashMap<String, i64>>,
}

fn read_policy(c: &mut Config, base: &Policy) -> Policy {
    let mut p = base.clone();
    p.key = c.string("key", &base.key);
    p.limit = c.int("limit", base.limit);
    p.messages = c.int("messages", base.messages);
    match c.value("window") {
        None => {}
        Some(Value::String(s)) => match sluice::duration::parse(&s) {
            Ok(ns) => p.window = ns / 1_000_000,
            Err(_) => c.fail("window", &format!("want a duration such as \"1m\", got {}", sluice::json::quote(&s))),
        },
        Some(Value::Number(n)) => p.window = (n * 1000.0) as i64,
        Some(_) => c.fail("window", "want a duration such as \"1m\" or seconds"),
    }
    let action = c.string("message_action", if base.close_ws { "close" } else { "drop" });
    match action.as_str() {
        "drop" => p.close_ws = false,
        "close" => p.close_ws = true,
        _ => c.fail("message_action", &format!("want \"drop\" or \"close\", got {}", sluice::json::quote(&action))),
    }
    p
}

fn check(p: &Policy) -> Result<(), Error> {
    let prefix = format!("ratelimit: config: policy {}: ", sluice::json::quote(&p.name));
    let fail = |msg: &str| Err(Error::new(format!("{}{}", prefix, msg)));
    if p.limit < 0 || p.messages < 0 {
        return fail("limit and messages must not be negative");
    }
    if p.limit > 1_000_000_000 || p.messages > 1_000_000_000 {
        return fail("limit and messages must be at most 1000000000");
    }
    if p.window < 1000 || p.window > 86_400_000 {
        return fail("window must be from 1s to 24h");
    }
    if p.window % 1000 != 0 {
        return fail("window must be whole seconds (RateLimit-Policy counts in seconds)");
    }
    if p.name.contains('"') || p.name.contains('\\') {
        return fail("a policy name may not hold \" or \\");
    }
    let ok = p.key == "client"
        || (p.key.starts_with("header:") && p.key.len() > "header:".len())
        || (p.key.starts_with("state:") && p.key.len() > "state:".len());
    if !ok {
        return fail(&format!(
            "key must be \"client\", \"header:<name>\" or \"state:<key>\", got {}",
            sluice::json::quote(&p.key)
        ));
    }
    Ok(())
}

/// Longest identity a limit is counted under; longer ones get 400.
const MAX_KEY: usize = 256;
const STATE_ID: &str = "ratelimit.id";
const STATE_HEADER: &str = "ratelimit.header";

impl Filter for RateLimit {
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS.union(Hooks::RESPONSE_HEADERS).union(Hooks::MESSAGE);

    fn configure(raw: &[u8]) -> Result<Self, Error> {
        let mut c = Config::parse(raw, "ratelimit: config")?;
        let base = Policy {
            name: "default".to_string(),
            key: "client".to_string(),
            limit: 0,
            messages: 0,
            window: 60_000,
            close_ws: false,
        };
        let default = read_policy(&mut c, &base);
        let mut routes = Vec::new();
        match c.value("routes") {
            None => {}
            Some(Value::Object(entries)) => {
                for (name, v) in entries {
                    let mut rc = Config::from_value(Some(v), &format!("ratelimit: config: routes: {}", name))?;
                    let mut p = read_policy(&mut rc, &default);
                    rc.done()?;
                    p.name = name;
                    routes.push(p);
                }
            }
            Some(_) => c.fail("routes", "want a table"),
        }
        c.done()?;
        check(&default)?;
        for p in &routes {
            check(p)?;
        }
        Ok(RateLimit { default, routes, prev_cache: RefCell::new(HashMap::new()) })
    }

    fn on_request_headers(&self, req: &mut Request) -> Action {
        let p = self.policy();
        let id = match identity(p, req) {
            Some(id) => id,
            None => {
                return Action::Respond(
                    LocalResponse::new(400).header("Content-Type", "text/plain").body("rate limit key too long\n"),
                )
            }
        };
        let upgrade = req.headers().get("Upgrade").map_or(false, |u| u.eq_ignore_ascii_case("websocket"));
        if p.messages > 0 && upgrade {
            state::set(STATE_ID, id.as_bytes());
        }
        if p.limit == 0 {
            return Action::Continue;
        }
        let d = self.take(p, "r", &id, p.limit);
        if !d.allowed {
            let retry = d.retry.to_string();
            return Action::Respond(
                LocalResponse::new(429)
                    .header("Retry-After", &retry)
                    .header("RateLimit-Policy", &policy_header(p))
                    .header("RateLimit", &rate_limit_header(p, 0, &retry))
                    .header("Content-Type", "text/plain")
                    .body(format!("rate limited: retry in {}s\n", retry)),
            );
        }
        state::set(STATE_HEADER, rate_limit_header(p, d.remaining, &d.reset.to_string()).as_bytes());
        Action::Continue
    }

    fn on_response_headers(&self, resp: &mut Response) -> Action {
        if let Some(h) = state::get_string(STATE_HEADER) {
            let p = self.policy();
            let mut headers = resp.headers();
            headers.set("RateLimit-Policy", &policy_header(p));
            headers.set("RateLimit", &h);
        }
        Action::Continue
    }

    fn on_message(&self, msg: &mut Message) -> MessageAction {
        if msg.direction() != Direction::ClientToUpstream {
            return MessageAction::Pass;
        }
        let id = match state::get_string(STATE_ID) {
            Some(id) => id,
            None => return MessageAction::Pass, // the route limits no messages
        };
        let p = self.policy();
        if p.messages == 0 || self.take(p, "m", &id, p.messages).allowed {
            return MessageAction::Pass;
        }
        if p.close_ws {
            MessageAction::close(1008, "rate limited")
        } else {
            MessageAction::Drop
        }
    }
}

sluice::register!(RateLimit);

/// Whom a request counts for: the header or state value the policy names,
/// or the client's address when that is missing. `None` when too long.
fn identity(p: &Policy, req: &mut Request) -> Option<String> {
    let mut id = String::new();
    if let Some(name) = p.key.strip_prefix("header:") {
        if let Some(v) = req.headers().get(name) {
            if !v.is_empty() {
                id = format!("h:{}", v);
            }
        }
    } else if let Some(key) = p.key.strip_prefix("state:") {
        if let Some(v) = state::get(key) {
            if !v.is_empty() {
                id = format!("s:{}", String::from_utf8_lossy(&v));
            }
        }
    }
    if id.is_empty() {
        id = format!("c:{}", host(&sluice::property(sluice::Property::ClientAddr).unwrap_or_default()));
    }
    if id.len() > MAX_KEY {
        None
    } else {
        Some(id)
    }
}

/// Strips the port from a client address ("10.0.0.1:5000", "[::1]:5000").
fn host(addr: &str) -> String {
    let mut a = addr;
    if let Some(i) = a.rfind(':') {
        if i > 0 && !a.ends_with(']') {
            a = &a[..i];
        }
    }
    a.trim_start_matches('[').trim_end_matches(']').to_string()
}

fn policy_header(p: &Policy) -> String {
    format!("\"{}\";q={};w={}", p.name, p.limit, p.window / 1000)
}

fn rate_limit_header(p: &Policy, remaining: i64, t: &str) -> String {
    format!("\"{}\";r={};t={}", p.name, remaining, t)
}

/// The outcome of one take.
struct Decision {
    allowed: bool,
    remaining: i64,
    reset: i64,
    retry: i64,
}

const PREV_CACHE_MAX: usize = 1024;

impl RateLimit {
    fn policy(&self) -> &Policy {
        let route = sluice::property(sluice::Property::Route).unwrap_or_default();
        self.routes.iter().find(|p| p.name == route).unwrap_or(&self.default)
    }

    /// Counts one event of `id` against `limit` with a sliding window (the
    /// Go version's `take`, key for key).
    fn take(&self, p: &Policy, kind: &str, id: &str, limit: i64) -> Decision {
        let now = clock::now_nanos() / 1_000_000;
        let w = p.window;
        let (idx, elapsed) = (now / w, now % w);
        let cur = format!("{}:{}:{}:{}", kind, p.name, idx, id);
        let ttl = Duration::from_millis((2 * w) as u64);
        let n = shared::add(&cur, 1, ttl);
        let mut prev = 0;
        if n <= limit {
            prev = self.previous(format!("{}:{}:{}:{}", kind, p.name, idx - 1, id));
        }
        let weighted = prev * (w - elapsed) / w;
        if n + weighted <= limit {
            return Decision { allowed: true, remaining: limit - n - weighted, reset: ceil_sec(w - elapsed), retry: 0 };
        }
        shared::add(&cur, -1, ttl);
        Decision { allowed: false, remaining: 0, reset: 0, retry: retry_after(n - 1, prev, limit, w, elapsed) }
    }

    /// The previous window's count, read once per key and window.
    fn previous(&self, key: String) -> i64 {
        let mut cache = self.prev_cache.borrow_mut();
        if let Some(&n) = cache.get(&key) {
            return n;
        }
        let n = shared::get(&key)
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        if cache.len() >= PREV_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, n);
        n
    }
}

/// How long until one more event fits (see the Go version's retryAfter).
fn retry_after(count: i64, prev: i64, limit: i64, w: i64, elapsed: i64) -> i64 {
    let wait = if count >= limit {
        w - elapsed + (w - w * limit / count + 1).max(0)
    } else {
        w - w * (limit - count) / prev + 1 - elapsed
    };
    ceil_sec(wait).max(1)
}

fn ceil_sec(ms: i64) -> i64 {
    (ms + 999) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::{abi, testing, MessageKind};

    fn limiter(config: &str) -> RateLimit {
        let f = testing::configure(config).unwrap_or_else(|e| panic!("{}", e));
        // The start of a minute, so window arithmetic is plain.
        testing::with(|h| h.wall_nanos = 1_700_000_040 * 1_000_000_000);
        f
    }

    fn request(f: &RateLimit) -> Option<testing::LocalReply> {
        testing::with(|h| {
            h.next_call();
            h.state.clear();
        });
        testing::on_request_headers(f);
        testing::with(|h| h.local_response.clone())
    }

    #[test]
    fn requests_then_429() {
        let f = limiter(r#"{"limit": 3, "window": "1m"}"#);
        for i in 0..3 {
            assert!(request(&f).is_none(), "request {} refused", i + 1);
            let want = format!("\"default\";r={};t=60", 2 - i);
            assert_eq!(testing::with(|h| h.state.get(STATE_HEADER).cloned()), Some(want.into_bytes()));
        }
        let r = request(&f).expect("the 4th request passed");
        assert_eq!(r.status, 429);
        assert_eq!(r.headers.get("Retry-After"), Some("61"));
        assert_eq!(r.headers.get("RateLimit-Policy"), Some("\"default\";q=3;w=60"));
        assert_eq!(r.headers.get("RateLimit"), Some("\"default\";r=0;t=61"));
        testing::with(|h| h.advance(Duration::from_secs(60)));
        assert!(request(&f).is_some(), "allowed before Retry-After");
        testing::with(|h| h.advance(Duration::from_secs(1)));
        assert!(request(&f).is_none(), "refused at Retry-After");
    }

    #[test]
    fn keys_and_routes() {
        let f = limiter(r#"{"limit": 1, "key": "header:X-API-Key", "routes": {"open": {"limit": 0}}}"#);
        testing::with(|h| h.request_headers.set("X-API-Key", "a"));
        assert!(request(&f).is_none());
        assert!(request(&f).is_some());
        testing::with(|h| h.request_headers.set("X-API-Key", "b"));
        assert!(request(&f).is_none(), "key b shares key a's limit");
        testing::with(|h| h.request_headers.set("X-API-Key", &"k".repeat(300)));
        assert_eq!(request(&f).map(|r| r.status), Some(400));
        testing::with(|h| {
            h.request_headers.set("X-API-Key", "a");
            h.properties.retain(|(p, _)| *p != sluice::Property::Route);
            h.properties.push((sluice::Property::Route, "open".to_string()));
        });
        assert!(request(&f).is_none(), "route open has no limit");
    }

    #[test]
    fn messages() {
        let f = limiter(r#"{"messages": 1, "window": "1s", "message_action": "close"}"#);
        testing::with(|h| h.request_headers.set("Upgrade", "websocket"));
        assert!(request(&f).is_none());
        let send = || testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"m");
        assert_eq!(send(), abi::ACTION_PASS);
        assert_ne!(send(), abi::ACTION_PASS);
        assert_eq!(testing::with(|h| h.close.clone()), Some((1008, "rate limited".to_string())));
    }

    #[test]
    fn config_errors() {
        for cfg in [
            r#"{"limit": -1}"#,
            r#"{"window": "1500ms"}"#,
            r#"{"key": "cookie:x"}"#,
            r#"{"message_action": "ignore"}"#,
            r#"{"routes": {"api": {"limt": 1}}}"#,
            r#"{"limits": 1}"#,
        ] {
            assert!(testing::configure::<RateLimit>(cfg).is_err(), "{} accepted", cfg);
        }
    }
}
