//! `headers` adds, sets and removes request and response headers, as its
//! config says (the same config and behaviour as the Go version beside it):
//!
//! ```toml
//! [plugin.config.request]
//! remove = ["X-Internal"]
//! set = { "X-Env" = "prod" }
//! add = { "Via" = "sluice", "X-Tag" = ["a", "b"] }
//! [plugin.config.response]
//! set = { "X-Powered-By" = "sluice" }
//! ```
//!
//! Each side applies remove, then set, then add, each in the order of the
//! config. A `set` with a list replaces with the first value and adds the
//! rest. A side with no rules is not hooked, so the proxy never calls the
//! filter for it. Unknown config keys refuse the module.

use sluice::json::{Config, Value};
use sluice::{Action, Error, Filter, Headers, Hooks, Request, Response};

/// One header change, compiled from the config so a hook only walks a list.
#[derive(Debug, PartialEq)]
enum Op {
    Remove(String),
    Set(String, String),
    Add(String, String),
}

/// The filter: the compiled rules of each side.
pub struct HeadersFilter {
    request: Vec<Op>,
    response: Vec<Op>,
}

/// The rules of one side, as read from the config.
#[derive(Default)]
struct Rules {
    remove: Vec<String>,
    /// Header = value members, in config order: a value is a string or a
    /// list of strings.
    set: Vec<(String, Value)>,
    add: Vec<(String, Value)>,
}

fn read_rules(c: &mut Config) -> Rules {
    let mut r = Rules {
        remove: c.strings("remove"),
        ..Rules::default()
    };
    for key in ["set", "add"] {
        let members = match c.value(key) {
            None => continue,
            Some(Value::Object(m)) => m,
            Some(_) => {
                c.fail(key, "want a table of header = value");
                continue;
            }
        };
        if key == "set" {
            r.set = members;
        } else {
            r.add = members;
        }
    }
    r
}

/// A header's values from config: a string or a list of strings.
fn values(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn compile(side: &str, r: Rules) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    for name in r.remove {
        if !valid_name(&name) {
            return Err(format!("{}.remove: invalid header name \"{}\"", side, name));
        }
        ops.push(Op::Remove(name));
    }
    for (key, members) in [("set", r.set), ("add", r.add)] {
        for (name, v) in members {
            if !valid_name(&name) {
                return Err(format!("{}.{}: invalid header name \"{}\"", side, key, name));
            }
            let vals = values(&v)
                .ok_or_else(|| format!("{}.{}: {}: want a string or a list of strings", side, key, name))?;
            for (i, value) in vals.into_iter().enumerate() {
                if !valid_value(&value) {
                    return Err(format!("{}.{}: invalid value for {}", side, key, name));
                }
                // set with a list: the first replaces, the rest add.
                ops.push(if key == "add" || i > 0 {
                    Op::Add(name.clone(), value)
                } else {
                    Op::Set(name.clone(), value)
                });
            }
        }
    }
    Ok(ops)
}

fn apply(mut h: Headers, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Remove(n) => h.remove(n),
            Op::Set(n, v) => h.set(n, v),
            Op::Add(n, v) => h.add(n, v),
        }
    }
}

impl Filter for HeadersFilter {
    const HOOKS: Hooks = Hooks::REQUEST_HEADERS.union(Hooks::RESPONSE_HEADERS);

    fn configure(config: &[u8]) -> Result<Self, Error> {
        let mut c = Config::parse(config, "headers: config")?;
        let request = read_rules(c.table("request"));
        let response = read_rules(c.table("response"));
        c.done()?;
        let wrap = |e: String| Error::new(format!("headers: config: {}", e));
        Ok(HeadersFilter {
            request: compile("request", request).map_err(wrap)?,
            response: compile("response", response).map_err(wrap)?,
        })
    }

    fn hooks(&self) -> Hooks {
        let mut h = Hooks::NONE;
        if !self.request.is_empty() {
            h = h.union(Hooks::REQUEST_HEADERS);
        }
        if !self.response.is_empty() {
            h = h.union(Hooks::RESPONSE_HEADERS);
        }
        h
    }

    fn on_request_headers(&self, req: &mut Request) -> Action {
        apply(req.headers(), &self.request);
        Action::Continue
    }

    fn on_response_headers(&self, resp: &mut Response) -> Action {
        apply(resp.headers(), &self.response);
        Action::Continue
    }
}

sluice::register!(HeadersFilter);

/// Whether `n` is an HTTP field name (an RFC 9110 token).
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Whether `v` can be a header value: no control characters other than tab
/// (a CR or LF would split the header).
fn valid_value(v: &str) -> bool {
    v.bytes().all(|c| !(c < b' ' && c != b'\t' || c == 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::{abi, testing};

    #[test]
    fn request_and_response_rules() {
        let f: HeadersFilter = testing::configure(
            r#"{
            "request": {"remove": ["X-Internal", "x-debug"], "set": {"X-Env": "prod", "X-Internal": "kept"}, "add": {"Via": "sluice", "X-Tag": ["a", "b"]}},
            "response": {"set": {"X-Powered-By": "sluice", "Cache-Control": ["no-store", "private"]}, "remove": ["Server"]}
        }"#,
        )
        .unwrap();
        testing::with(|h| {
            h.request_headers.set("X-Internal", "secret");
            h.request_headers.set("X-Debug", "1");
            h.request_headers.set("X-Env", "dev");
            h.request_headers.set("Via", "1.1 edge");
        });
        assert_eq!(testing::on_request_headers(&f), abi::ACTION_CONTINUE);
        testing::with(|h| {
            for (n, want) in [
                ("X-Internal", "kept"), // removed, then set
                ("X-Debug", ""),
                ("X-Env", "prod"),
                ("Via", "1.1 edge,sluice"),
                ("X-Tag", "a,b"),
            ] {
                assert_eq!(h.request_headers.values(n).join(","), want, "request {}", n);
            }
            h.response_headers.set("Server", "backend/1.0");
            h.response_headers.set("Cache-Control", "max-age=60");
        });
        assert_eq!(testing::on_response_headers(&f), abi::ACTION_CONTINUE);
        testing::with(|h| {
            assert_eq!(h.response_headers.get("Server"), None);
            assert_eq!(h.response_headers.get("X-Powered-By"), Some("sluice"));
            assert_eq!(h.response_headers.values("Cache-Control").join(","), "no-store,private");
        });
    }

    #[test]
    fn side_without_rules_is_not_hooked() {
        let f: HeadersFilter = testing::configure(r#"{"response": {"set": {"X-Powered-By": "sluice"}}}"#).unwrap();
        assert_eq!(testing::hooks(&f), Hooks::RESPONSE_HEADERS);
        let f: HeadersFilter = testing::configure("{}").unwrap();
        assert_eq!(testing::hooks(&f), Hooks::NONE);
    }

    #[test]
    fn ops_are_in_config_order() {
        let f: HeadersFilter = testing::configure(
            r#"{"request": {"add": {"B": "1", "A": "2", "B": "3"}, "set": {"Z": ["x", "y"]}, "remove": ["Q", "P"]}}"#,
        )
        .unwrap();
        assert_eq!(
            f.request,
            vec![
                Op::Remove("Q".into()),
                Op::Remove("P".into()),
                Op::Set("Z".into(), "x".into()),
                Op::Add("Z".into(), "y".into()),
                Op::Add("B".into(), "1".into()),
                Op::Add("A".into(), "2".into()),
                Op::Add("B".into(), "3".into()),
            ]
        );
    }

    #[test]
    fn bad_config() {
        for (name, cfg) in [
            ("not json", "{"),
            ("bad name", r#"{"request": {"set": {"Bad Name": "x"}}}"#),
            ("newline value", r#"{"response": {"add": {"X-A": "a\r\nInjected: 1"}}}"#),
            ("number value", r#"{"request": {"set": {"X-A": 1}}}"#),
            ("empty remove", r#"{"request": {"remove": [""]}}"#),
            ("remove not a list", r#"{"request": {"remove": "X-A"}}"#),
            ("side not an object", r#"{"request": []}"#),
            ("config not an object", "[]"),
            ("unknown key", r#"{"request": {"sett": {"X-A": "1"}}}"#),
            ("set not table", r#"{"response": {"set": ["X-A"]}}"#),
            ("null value", r#"{"request": {"set": {"X-A": null}}}"#),
            ("null side", r#"{"request": null}"#),
            ("null in a list", r#"{"request": {"add": {"X-B": ["b", null]}}}"#),
            ("keys are exact", r#"{"Request": {"set": {"X-A": "1"}}}"#),
        ] {
            assert!(testing::configure::<HeadersFilter>(cfg).is_err(), "{}: config accepted", name);
        }
    }
}
