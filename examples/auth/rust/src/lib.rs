//! `auth` lets a request through only with a valid bearer token: one of a
//! static list, or an HS256 JWT signed with a shared secret. It guards plain
//! HTTP requests and WebSocket upgrades alike; config and behaviour are those
//! of the Go version beside it (see its README for the config keys).
//!
//! Browsers cannot set headers on a WebSocket handshake, so on upgrades the
//! token may also come in a query parameter (`?access_token=...`) or as an
//! entry of `Sec-WebSocket-Protocol` (`bearer.<token>`). Whichever way it
//! came, the filter strips the credential before the request goes upstream
//! and forwards the user's name in `X-User` instead.

use std::cell::RefCell;
use std::collections::HashMap;

use sluice::json::{self, Config, Value};
use sluice::{base64, clock, crypto, duration, Action, Error, Filter, Headers, Hooks, LocalResponse, Request};

/// The filter: its config, checked and with defaults applied.
pub struct Auth {
    tokens: Vec<Vec<u8>>,
    static_user: String,
    secret: Vec<u8>,
    /// Clock skew tolerated on `exp` and `nbf`, in nanoseconds.
    leeway: i64,
    /// The upgrade-only token carriers; "" turns one off.
    query_param: String,
    subprotocol: String,
    user_header: String,
    challenge: String,
    /// The JWTs this instance verified, so a client that sends the same
    /// token on every request costs a lookup instead of base64, JSON and an
    /// HMAC (times are still checked on every request). Per instance and
    /// bounded: when full it starts over. Inside the proxy every loop
    /// iteration of a guest also pays for a cancellation check, which makes
    /// the byte-at-a-time work of verifying a token costly.
    verified: RefCell<HashMap<Vec<u8>, Verified>>,
}

/// How many verified JWTs an instance remembers.
const JWT_CACHE_SIZE: usize = 512;

fn config_error(msg: &str) -> Error {
    Error::new(format!("auth: config: {}", msg))
}

impl Filter for Auth {
    // on_request_headers runs for every request, WebSocket upgrades included
    // (before on_upgrade), so one hook guards both.
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS;

    fn configure(raw: &[u8]) -> Result<Self, Error> {
        let mut c = Config::parse(raw, "auth: config")?;
        let static_user = c.string("static_user", "static");
        let secret = c.string("jwt_secret", "");
        let query_param = c.string("query_param", "access_token");
        let subprotocol = c.string("subprotocol_prefix", "bearer.");
        let user_header = c.string("user_header", "X-User");
        let tokens = c.strings("tokens");
        let realm = c.string("realm", "sluice");
        let leeway = c.value("leeway");
        c.done()?;

        if tokens.iter().any(|t| t.is_empty()) {
            return Err(config_error("tokens: empty token"));
        }
        if tokens.is_empty() && secret.is_empty() {
            return Err(config_error("set tokens, jwt_secret or both"));
        }
        if realm.contains(|c| matches!(c, '"' | '\\' | '\r' | '\n')) {
            return Err(config_error("realm must not contain quotes, backslashes or newlines"));
        }
        if !valid_subject(&user_header) || user_header.contains(|c| c == ' ' || c == ':') || user_header.is_empty() {
            return Err(config_error("user_header is not a header name"));
        }
        let leeway = match leeway {
            None => 0,
            Some(Value::Number(secs)) => (secs * 1e9) as i64,
            Some(Value::String(s)) => duration::parse(&s).map_err(|e| config_error(&format!("leeway: {}", e)))?,
            Some(_) => return Err(config_error("leeway must be seconds or a duration like \"30s\"")),
        };
        if leeway < 0 {
            return Err(config_error("leeway must not be negative"));
        }
        Ok(Auth {
            tokens: tokens.into_iter().map(String::into_bytes).collect(),
            static_user,
            secret: secret.into_bytes(),
            leeway,
            query_param,
            subprotocol,
            user_header,
            challenge: format!("Bearer realm=\"{}\", error=\"invalid_token\"", realm),
            verified: RefCell::new(HashMap::new()),
        })
    }

    fn on_request_headers(&self, req: &mut Request) -> Action {
        self.authenticate(req)
    }
}

sluice::register!(Auth);

/// Where a token came from.
#[derive(Clone, Copy, PartialEq)]
enum Carrier {
    Header,
    Query,
    Subprotocol,
}

impl Auth {
    fn authenticate(&self, req: &mut Request) -> Action {
        let mut h = req.headers();
        let upgrade = is_upgrade(&h);
        let mut token = bearer(&h.get("Authorization").unwrap_or_default());
        let mut from = Carrier::Header;
        let mut query = String::new();
        if token.is_none() && upgrade && !self.query_param.is_empty() {
            query = req.query();
            token = query_token(&query, &self.query_param);
            from = Carrier::Query;
        }
        let mut protocols = Vec::new();
        if token.is_none() && upgrade && !self.subprotocol.is_empty() {
            protocols = subprotocols(&h);
            for p in &protocols {
                if let Some(t) = p.strip_prefix(self.subprotocol.as_str()) {
                    if !t.is_empty() {
                        token = Some(t.as_bytes().to_vec());
                        from = Carrier::Subprotocol;
                        break;
                    }
                }
            }
        }
        let token = match token {
            Some(t) => t,
            None => return self.deny("missing bearer token"),
        };
        let user = match self.validate(&token, clock::now_nanos()) {
            Ok(u) => u,
            Err(why) => return self.deny(why),
        };
        // Strip the credential: the upstream learns who, not how.
        h.remove("Authorization");
        match from {
            Carrier::Header => {}
            Carrier::Query => req.set_query(&remove_param(&query, &self.query_param)),
            Carrier::Subprotocol => {
                let rest: Vec<&str> = protocols
                    .iter()
                    .map(String::as_str)
                    .filter(|p| !p.starts_with(self.subprotocol.as_str()))
                    .collect();
                if rest.is_empty() {
                    h.remove("Sec-WebSocket-Protocol");
                } else {
                    h.set("Sec-WebSocket-Protocol", &rest.join(", "));
                }
            }
        }
        h.set(&self.user_header, &user);
        Action::Continue
    }

    /// Answers 401 the way RFC 6750 describes, with a JSON body for API
    /// clients. Descriptions are fixed strings: no escaping needed.
    fn deny(&self, description: &str) -> Action {
        let body = format!(
            "{{\"error\":\"invalid_token\",\"error_description\":\"{}\"}}",
            description
        );
        Action::Respond(
            LocalResponse::new(401)
                .header("Content-Type", "application/json")
                .header("WWW-Authenticate", &self.challenge)
                .header("Cache-Control", "no-store")
                .body(body),
        )
    }

    /// The user a token stands for, or why it is refused.
    fn validate(&self, token: &[u8], now: i64) -> Result<String, &'static str> {
        for t in &self.tokens {
            if crypto::constant_time_eq(t, token) {
                return Ok(self.static_user.clone());
            }
        }
        if self.secret.is_empty() {
            return Err(INVALID);
        }
        self.validate_jwt(token, now)
    }

    /// Checks an HS256 JWT's signature, `exp` and `nbf` (with leeway) and
    /// returns its subject.
    fn validate_jwt(&self, token: &[u8], now: i64) -> Result<String, &'static str> {
        let cached = self.verified.borrow().get(token).cloned();
        let v = match cached {
            Some(v) => v,
            None => {
                if token.iter().filter(|&&c| c == b'.').count() != 2 {
                    return Err(INVALID);
                }
                let v = self.verify_jwt(token)?;
                let mut cache = self.verified.borrow_mut();
                if cache.len() >= JWT_CACHE_SIZE {
                    cache.clear();
                }
                cache.insert(token.to_vec(), v.clone());
                v
            }
        };
        // i128: a claim far in the past or future must not wrap around.
        let (now, leeway) = (now as i128, self.leeway as i128);
        if matches!(v.exp, Some(exp) if now - leeway > exp as i128) {
            return Err("token expired");
        }
        if matches!(v.nbf, Some(nbf) if now + leeway < nbf as i128) {
            return Err("token not valid yet");
        }
        Ok(v.sub)
    }

    /// What a JWT with a good signature says, or why it is refused; the
    /// times are checked by the caller.
    fn verify_jwt(&self, token: &[u8]) -> Result<Verified, &'static str> {
        let dot = token.iter().rposition(|&c| c == b'.').ok_or(INVALID)?;
        let (signed, sig64) = (&token[..dot], &token[dot + 1..]);
        let first = signed.iter().position(|&c| c == b'.').ok_or(INVALID)?;
        let (head64, claims64) = (&signed[..first], &signed[first + 1..]);

        let head = decode_part(head64)?;
        // Only HS256: never "none", never an algorithm the token picks for us.
        if head.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err("unsupported JWT algorithm");
        }
        let sig = std::str::from_utf8(sig64)
            .ok()
            .and_then(base64::decode_url)
            .ok_or(INVALID)?;
        if !crypto::constant_time_eq(&sig, &crypto::hmac_sha256(&self.secret, signed)) {
            return Err("bad JWT signature");
        }
        let claims = decode_part(claims64)?;
        let exp = time_claim(&claims, "exp")?;
        let nbf = time_claim(&claims, "nbf")?;
        let sub = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("token has no subject"),
        };
        if !valid_subject(&sub) {
            return Err("token subject is not a valid header value");
        }
        Ok(Verified { sub, exp, nbf })
    }
}

/// What a JWT with a good signature says.
#[derive(Clone)]
struct Verified {
    sub: String,
    /// `exp` and `nbf` as Unix nanoseconds.
    exp: Option<i64>,
    nbf: Option<i64>,
}

const INVALID: &str = "invalid token";

/// A JWT part: base64url JSON that must be an object (nested at most 64
/// deep, as the Go version's parser allows).
fn decode_part(part: &[u8]) -> Result<Value, &'static str> {
    let raw = std::str::from_utf8(part).ok().and_then(base64::decode_url).ok_or(INVALID)?;
    match json::parse_with_max_depth(&raw, 64) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(INVALID),
    }
}

/// A time claim (seconds since the Unix epoch) as Unix nanoseconds; absent
/// is `None`, anything but a number is an invalid token.
fn time_claim(v: &Value, name: &str) -> Result<Option<i64>, &'static str> {
    match v.get(name) {
        None => Ok(None),
        // Saturating, as float-to-integer conversion is in WebAssembly.
        Some(Value::Number(secs)) => Ok(Some((secs * 1e9) as i64)),
        Some(_) => Err(INVALID),
    }
}

fn is_upgrade(h: &Headers) -> bool {
    h.values("Upgrade")
        .iter()
        .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is
/// case-insensitive.
fn bearer(v: &str) -> Option<Vec<u8>> {
    const SCHEME: &[u8] = b"bearer ";
    let b = v.as_bytes();
    if b.len() <= SCHEME.len() || !b[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    // The scheme is ASCII, so its end is a character boundary.
    let t = v[SCHEME.len()..].trim();
    if t.is_empty() {
        None
    } else {
        Some(t.as_bytes().to_vec())
    }
}

/// Finds `param` in a raw query and returns its unescaped value; only the
/// first occurrence counts, and an empty or malformed one is no token.
fn query_token(query: &str, param: &str) -> Option<Vec<u8>> {
    for kv in query.split('&') {
        let k = kv.split('=').next().unwrap_or("");
        if k != param {
            continue;
        }
        let v = kv.find('=').map(|i| &kv[i + 1..]).unwrap_or("");
        return match query_unescape(v) {
            Some(t) if !t.is_empty() => Some(t),
            _ => None,
        };
    }
    None
}

/// Removes every occurrence of `param` from a raw query and keeps the rest
/// byte for byte.
fn remove_param(query: &str, param: &str) -> String {
    // Walk the pairs as Go's strings.Cut loop does: a trailing '&' ends the
    // walk, empty pairs in the middle are kept.
    let mut pairs: Vec<&str> = query.split('&').collect();
    if pairs.last() == Some(&"") {
        pairs.pop();
    }
    let mut out = String::new();
    for kv in pairs {
        if kv.split('=').next() == Some(param) {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(kv);
    }
    out
}

/// Decodes a query component (`%XX`, `+` for space); `None` when an escape
/// is malformed.
fn query_unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let s = std::str::from_utf8(hex).ok()?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(s, 16).ok()?);
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
    Some(out)
}

/// The entries of every `Sec-WebSocket-Protocol` header.
fn subprotocols(h: &Headers) -> Vec<String> {
    let mut out = Vec::new();
    for v in h.values("Sec-WebSocket-Protocol") {
        for p in v.split(',') {
            let p = p.trim();
            if !p.is_empty() {
                out.push(p.to_string());
            }
        }
    }
    out
}

/// Whether `sub` can go in a header value as it is.
fn valid_subject(sub: &str) -> bool {
    sub.bytes().all(|c| c >= b' ' && c != 0x7f)
}

#[cfg(test)]
mod tests;
