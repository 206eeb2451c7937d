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
//! Each side applies remove (in order), then set, then add (each by header
//! name in byte order). A `set` with a list replaces with the first value and
//! adds the rest. A side with no rules is not hooked, so the proxy never calls
//! the filter for it.

use sluice::json::{self, Value};
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

/// Reads a JSON string list as Go decodes `[]string`: `null` is empty, and a
/// `null` element is "".
fn string_list(v: Option<&Value>) -> Result<Vec<String>, ()> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                _ => Err(()),
            })
            .collect(),
        Some(_) => Err(()),
    }
}

/// One header's values: a string or a list of strings (`null` reads as one
/// empty value, as the Go version's decoder does).
fn header_values(v: &Value) -> Result<Vec<String>, ()> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Null => Ok(vec![String::new()]),
        other => string_list(Some(other)),
    }
}

fn compile(side: &str, rules: Option<&Value>) -> Result<Vec<Op>, String> {
    let rules = match rules {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(r @ Value::Object(_)) => r,
        Some(_) => return Err(format!("config: {} must be an object", side)),
    };
    let mut ops = Vec::new();
    let remove =
        string_list(rules.field("remove")).map_err(|_| format!("config: {}.remove must be a list of strings", side))?;
    for name in remove {
        if !valid_name(&name) {
            return Err(format!("{}.remove: invalid header name \"{}\"", side, name));
        }
        ops.push(Op::Remove(name));
    }
    for (key, add) in [("set", false), ("add", true)] {
        let entries: Vec<(String, Value)> = match rules.field(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(e)) => e.clone(),
            Some(_) => return Err(format!("config: {}.{} must be an object", side, key)),
        };
        let mut entries = entries;
        // Go walks its map sorted by name: the result is the same every time.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, v) in entries {
            if !valid_name(&name) {
                return Err(format!("{}: invalid header name \"{}\"", side, name));
            }
            let values = header_values(&v)
                .map_err(|_| "config: a header value must be a string or a list of strings".to_string())?;
            for (i, value) in values.into_iter().enumerate() {
                if !valid_value(&value) {
                    return Err(format!("{}: invalid value for {}", side, name));
                }
                // set with a list: the first replaces, the rest add.
                ops.push(if add || i > 0 {
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
        let wrap = |e: String| Error::new(format!("headers: {}", e));
        let c = json::parse(config).map_err(|e| wrap(format!("config: {}", e)))?;
        if !matches!(c, Value::Object(_) | Value::Null) {
            return Err(wrap("config: must be an object".to_string()));
        }
        Ok(HeadersFilter {
            request: compile("request", c.field("request")).map_err(wrap)?,
            response: compile("response", c.field("response")).map_err(wrap)?,
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
    fn ops_are_in_go_order() {
        let f: HeadersFilter =
            testing::configure(r#"{"Request": {"add": {"B": "1", "A": "2"}, "set": {"Z": ["x", "y"]}, "remove": ["Q", "P"]}}"#)
                .unwrap();
        assert_eq!(
            f.request,
            vec![
                Op::Remove("Q".into()),
                Op::Remove("P".into()),
                Op::Set("Z".into(), "x".into()),
                Op::Add("Z".into(), "y".into()),
                Op::Add("A".into(), "2".into()),
                Op::Add("B".into(), "1".into()),
            ]
        );
    }

    #[test]
    fn null_reads_as_go_reads_it() {
        let f: HeadersFilter =
            testing::configure(r#"{"request": {"set": {"X-A": null}, "add": {"X-B": ["b", null]}, "remove": null}, "response": null}"#)
                .unwrap();
        assert_eq!(
            f.request,
            vec![
                Op::Set("X-A".into(), "".into()),
                Op::Add("X-B".into(), "b".into()),
                Op::Add("X-B".into(), "".into()),
            ]
        );
        assert!(f.response.is_empty());
        assert!(testing::configure::<HeadersFilter>("null").is_ok());
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
        ] {
            assert!(testing::configure::<HeadersFilter>(cfg).is_err(), "{}: config accepted", name);
        }
    }
}
