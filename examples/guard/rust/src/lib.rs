//! `guard` protects a WebSocket upstream from abusive clients: it drops
//! messages larger than `max_size` or starting with a denied prefix, limits
//! each connection to `rate` messages per second, and closes the connection
//! with 1008 (policy violation) after `max_violations` dropped messages.
//! Config and behaviour are those of the Go version beside it:
//!
//! ```toml
//! [plugin.config]
//! max_size = 4096                 # bytes; 0: no limit
//! deny_prefixes = ["DROP "]
//! rate = 20                       # messages per second per connection; 0: no limit
//! max_violations = 5              # 0: never close
//! direction = "client_to_upstream" # the default; or "upstream_to_client", "both"
//! ```
//!
//! Unknown config keys refuse the module, so a typo (`max_sise`) is not
//! silently ignored.
//!
//! The counters live in the host's per-connection state, not in the module:
//! the proxy may run any message of a connection in any pooled instance. The
//! record's layout is the Go version's, byte for byte.

use sluice::json::Config;
use sluice::{clock, log, state, Direction, Error, Filter, Hooks, Message, MessageAction};

/// The filter: the checked config.
pub struct Guard {
    max_size: i64,
    deny_prefixes: Vec<Vec<u8>>,
    /// Messages per second; 0: no limit.
    rate: i64,
    /// 0: never close.
    max_violations: i64,
    client_to_upstream: bool,
    upstream_to_client: bool,
}

fn config_error(msg: &str) -> Error {
    Error::new(format!("guard: config: {}", msg))
}

impl Filter for Guard {
    const HOOKS: Hooks = Hooks::MESSAGE;

    fn configure(raw: &[u8]) -> Result<Self, Error> {
        let mut c = Config::parse(raw, "guard: config")?;
        let max_size = c.int("max_size", 0);
        let rate = c.int("rate", 0);
        let max_violations = c.int("max_violations", 0);
        let prefixes = c.strings("deny_prefixes");
        let direction = c.string("direction", "client_to_upstream");
        c.done()?;
        if max_size < 0 || rate < 0 || max_violations < 0 {
            return Err(config_error("max_size, rate and max_violations must not be negative"));
        }
        if max_size > i32::MAX as i64 {
            return Err(config_error("max_size is larger than any message"));
        }
        if rate > 1_000_000 {
            return Err(config_error("rate above 1000000 per second is no limit; leave it out"));
        }
        if prefixes.iter().any(String::is_empty) {
            return Err(config_error("deny_prefixes: an empty prefix would deny everything"));
        }
        let (client_to_upstream, upstream_to_client) = match direction.as_str() {
            "client_to_upstream" => (true, false),
            "upstream_to_client" => (false, true),
            "both" => (true, true),
            _ => {
                return Err(config_error(
                    "direction must be \"client_to_upstream\", \"upstream_to_client\" or \"both\"",
                ))
            }
        };
        Ok(Guard {
            max_size,
            deny_prefixes: prefixes.into_iter().map(String::into_bytes).collect(),
            rate,
            max_violations,
            client_to_upstream,
            upstream_to_client,
        })
    }

    fn on_message(&self, msg: &mut Message) -> MessageAction {
        let guarded = match msg.direction() {
            Direction::ClientToUpstream => self.client_to_upstream,
            Direction::UpstreamToClient => self.upstream_to_client,
        };
        if !guarded {
            return MessageAction::Pass;
        }
        let mut violation = self.max_size > 0 && msg.len() as i64 > self.max_size;
        if !violation && !self.deny_prefixes.is_empty() {
            let p = msg.payload();
            violation = self.deny_prefixes.iter().any(|pre| p.starts_with(pre));
        }
        if !violation && self.rate == 0 {
            return MessageAction::Pass; // nothing to count: skip the state round trip
        }

        let (mut st, found) = match ConnState::load() {
            Some(st) => (st, true),
            None => (ConnState::default(), false),
        };
        if self.rate > 0 && !violation {
            let now = clock::monotonic_nanos();
            if !found {
                // A full bucket.
                st.tokens = self.rate * SECOND;
                st.refilled_at = now;
            }
            // Refill: rate messages per second, up to one second's worth (the
            // burst a connection may send at once).
            let elapsed = (now - st.refilled_at).min(SECOND);
            if elapsed > 0 {
                st.tokens = (st.tokens + elapsed * self.rate).min(self.rate * SECOND);
            }
            st.refilled_at = now;
            if st.tokens >= SECOND {
                st.tokens -= SECOND;
            } else {
                violation = true;
            }
        }
        if violation {
            st.violations += 1;
        }
        st.store();
        if !violation {
            return MessageAction::Pass;
        }
        if self.max_violations > 0 && st.violations >= self.max_violations {
            log::info("guard: closing a connection after too many policy violations");
            return MessageAction::close(1008, "too many policy violations");
        }
        MessageAction::Drop
    }
}

sluice::register!(Guard);

const SECOND: i64 = 1_000_000_000;
const STATE_KEY: &str = "guard";

/// The per-connection record, stored as 24 little-endian bytes: the token
/// bucket (in billionths of a message, so refills need no floats), when it
/// was last refilled (host monotonic clock, ns), and the violation count.
#[derive(Default, Debug, PartialEq)]
struct ConnState {
    tokens: i64,
    refilled_at: i64,
    violations: i64,
}

impl ConnState {
    fn load() -> Option<ConnState> {
        let b = state::get(STATE_KEY)?;
        if b.len() != 24 {
            return None;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            i64::from_le_bytes(w)
        };
        Some(ConnState {
            tokens: word(0),
            refilled_at: word(8),
            violations: word(16),
        })
    }

    fn store(&self) {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&self.tokens.to_le_bytes());
        b[8..16].copy_from_slice(&self.refilled_at.to_le_bytes());
        b[16..24].copy_from_slice(&self.violations.to_le_bytes());
        state::set(STATE_KEY, &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::{abi, testing, MessageKind};
    use std::time::Duration;

    fn guard(config: &str) -> Guard {
        testing::configure(config).unwrap_or_else(|e| panic!("{}", e))
    }

    fn send(f: &Guard, d: Direction, kind: MessageKind, payload: &[u8]) -> i32 {
        testing::with(|h| h.close = None);
        testing::on_message(f, d, kind, payload)
    }

    fn text(f: &Guard, payload: &str) -> i32 {
        send(f, Direction::ClientToUpstream, MessageKind::Text, payload.as_bytes())
    }

    #[test]
    fn size_and_prefix() {
        let f = guard(r#"{"max_size": 10, "deny_prefixes": ["DROP ", "\u0000\u0001"]}"#);
        for (kind, input, want) in [
            (MessageKind::Text, &b"short"[..], abi::ACTION_PASS),
            (MessageKind::Text, b"exactly 10", abi::ACTION_PASS),
            (MessageKind::Text, b"eleven long", abi::ACTION_DROP),
            (MessageKind::Text, b"DROP it", abi::ACTION_DROP),
            (MessageKind::Text, b"DROPPED", abi::ACTION_PASS),
            (MessageKind::Binary, b"\x00\x01\x02", abi::ACTION_DROP),
            (MessageKind::Binary, b"\x00\x02", abi::ACTION_PASS),
        ] {
            assert_eq!(send(&f, Direction::ClientToUpstream, kind, input), want, "{:?}", input);
        }
        // The upstream's messages are not guarded by default.
        let long = vec![b'x'; 100];
        assert_eq!(send(&f, Direction::UpstreamToClient, MessageKind::Text, &long), abi::ACTION_PASS);
    }

    #[test]
    fn rate_limit() {
        let f = guard(r#"{"rate": 5}"#);
        for i in 0..5 {
            assert_eq!(text(&f, "m"), abi::ACTION_PASS, "message {} of the first burst", i);
        }
        assert_eq!(text(&f, "m"), abi::ACTION_DROP, "6th message in the same instant");
        testing::with(|h| h.advance(Duration::from_millis(200))); // one message's worth
        assert_eq!(text(&f, "m"), abi::ACTION_PASS, "after 200ms");
        assert_eq!(text(&f, "m"), abi::ACTION_DROP, "second after 200ms");
        testing::with(|h| h.advance(Duration::from_secs(3600))); // refills to one second's worth, no more
        for _ in 0..5 {
            text(&f, "m");
        }
        assert_eq!(text(&f, "m"), abi::ACTION_DROP, "burst after a long pause exceeded rate");
    }

    #[test]
    fn rate_is_per_connection() {
        let f = guard(r#"{"rate": 1}"#);
        assert_eq!(text(&f, "1"), abi::ACTION_PASS);
        assert_eq!(text(&f, "2"), abi::ACTION_DROP);
        // Another connection: its own state.
        testing::with(|h| h.state.clear());
        assert_eq!(text(&f, "1"), abi::ACTION_PASS, "connection b limited by a's messages");
    }

    #[test]
    fn close_after_violations() {
        let f = guard(r#"{"max_size": 3, "rate": 100, "max_violations": 3, "direction": "both"}"#);
        for (i, d) in [Direction::ClientToUpstream, Direction::UpstreamToClient].into_iter().enumerate() {
            assert_eq!(send(&f, d, MessageKind::Text, b"long message"), abi::ACTION_DROP, "violation {}", i + 1);
            assert_eq!(send(&f, d, MessageKind::Text, b"ok"), abi::ACTION_PASS, "good message after violation {}", i + 1);
        }
        assert_eq!(text(&f, "long message"), abi::ACTION_CLOSE);
        testing::with(|h| {
            assert_eq!(h.close, Some((1008, "too many policy violations".to_string())));
            assert_eq!(h.logs.last().map(|l| l.level), Some(abi::LOG_INFO));
        });
    }

    #[test]
    fn no_limits_no_state() {
        let f = guard(r#"{"deny_prefixes": ["x"]}"#);
        text(&f, "fine");
        testing::with(|h| assert!(h.state.is_empty(), "a passing message without rate limit touched state"));
    }

    #[test]
    fn state_layout_is_the_go_one() {
        let f = guard(r#"{"rate": 2}"#);
        text(&f, "m");
        let now = testing::with(|h| h.monotonic_nanos);
        let mut want = Vec::new();
        want.extend_from_slice(&SECOND.to_le_bytes()); // 2 s worth minus one message
        want.extend_from_slice(&now.to_le_bytes());
        want.extend_from_slice(&0i64.to_le_bytes());
        testing::with(|h| assert_eq!(h.state.get("guard"), Some(&want)));
    }

    #[test]
    fn config_errors() {
        for (name, cfg) in [
            ("negative", r#"{"rate": -1}"#),
            ("empty prefix", r#"{"deny_prefixes": [""]}"#),
            ("direction", r#"{"direction": "up"}"#),
            ("string size", r#"{"max_size": "4KiB"}"#),
            ("fractional rate", r#"{"rate": 1.5}"#),
            ("rate too high", r#"{"rate": 1000001}"#),
            ("fraction", r#"{"rate": 2.5}"#),
            ("unknown key", r#"{"max_sise": 10}"#),
            ("null is not absent", r#"{"rate": null}"#),
            ("empty direction", r#"{"direction": ""}"#),
            ("max_size over 2^31-1", r#"{"max_size": 2147483648}"#),
            ("config not an object", "[]"),
        ] {
            assert!(testing::configure::<Guard>(cfg).is_err(), "{}: accepted", name);
        }
        assert!(testing::configure::<Guard>("{}").is_ok());
        assert!(testing::configure::<Guard>(r#"{"max_size": 2147483647, "rate": 1e3}"#).is_ok());
    }
}
