//! A small JSON parser and serialiser (RFC 8259), enough for a filter's
//! config and for rewriting JSON payloads.
//!
//! It follows Go's `encoding/json` where the two could differ, so a Rust
//! filter and a Go filter given the same input produce the same bytes:
//! numbers are `f64` and print like Go's; strings escape `<`, `>`, `&`,
//! U+2028 and U+2029 as Go does; invalid UTF-8 inside a string reads as
//! U+FFFD. Objects keep their members in input order, repeated keys included;
//! looking a key up finds its last value, as decoding into a Go map keeps.
//! [`Value::sort_keys`] gives the order Go writes a map in.
//!
//! ```
//! use sluice::json::{self, Value};
//!
//! let v = json::parse(br#"{"tokens": ["a", "b"], "max": 3}"#).unwrap();
//! assert_eq!(v.get("max").and_then(Value::as_i64), Some(3));
//! let tokens: Vec<&str> = v.get("tokens").and_then(Value::as_array).unwrap()
//!     .iter().filter_map(Value::as_str).collect();
//! assert_eq!(tokens, ["a", "b"]);
//! assert_eq!(v.to_json(), r#"{"tokens":["a","b"],"max":3}"#);
//! ```

use std::fmt;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as `f64` (like Go's `any`).
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object: its members in order (a key may repeat).
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The value of `key` (its last, if the key repeats) when this is an
    /// object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value of `name` as Go's `encoding/json` fills a struct field
    /// from this object: the key matched exactly or, failing that, ignoring
    /// ASCII case (`"Tokens"` fills `tokens`), the last match winning. Use it
    /// to read a config exactly as a Go filter would.
    pub fn field(&self, name: &str) -> Option<&Value> {
        let entries = self.as_object()?;
        // Go decodes each matching key in turn, so the last one stays.
        entries
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of `key` (its last, if the key repeats), mutable, when this
    /// is an object that has it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Object(entries) => entries.iter_mut().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` to `value` when this is an object (replacing its last
    /// value in place, or appending); does nothing otherwise.
    pub fn insert(&mut self, key: &str, value: Value) {
        if let Value::Object(entries) = self {
            match entries.iter_mut().rev().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key.to_string(), value)),
            }
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, when this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The number, when this is one with no fractional part that fits an
    /// `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) if n.fract() == 0.0 && *n >= -9.223_372_036_854_776e18 && *n < 9.223_372_036_854_776e18 => {
                Some(*n as i64)
            }
            _ => None,
        }
    }

    /// The boolean, when this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, when this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, when this is an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Sorts the keys of every object, recursively, by their bytes: the order
    /// in which Go's `encoding/json` writes a map.
    pub fn sort_keys(&mut self) {
        match self {
            Value::Object(entries) => {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                for (_, v) in entries {
                    v.sort_keys();
                }
            }
            Value::Array(items) => {
                for v in items {
                    v.sort_keys();
                }
            }
            _ => {}
        }
    }

    /// The value as compact JSON, written as Go's `json.Marshal` writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self);
        out
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(n as f64)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Value {
        Value::Array(a)
    }
}

impl From<Vec<(String, Value)>> for Value {
    fn from(o: Vec<(String, Value)>) -> Value {
        Value::Object(o)
    }
}

/// Why a document is not JSON, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: &'static str,
    /// The byte offset where it went wrong.
    pub offset: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "json: {} at offset {}", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// How deep [`parse`] lets values nest: the top-level value is at depth 0,
/// the elements of a top-level array at depth 1, and so on. Deeper input is
/// refused rather than exhausting the guest's stack.
pub const MAX_DEPTH: usize = 512;

/// Parses one JSON document (surrounding whitespace allowed).
///
/// # Errors
///
/// [`ParseError`] for anything that is not exactly one JSON value, for
/// nesting deeper than [`MAX_DEPTH`], and for numbers out of `f64` range (as
/// Go refuses them).
pub fn parse(input: &[u8]) -> Result<Value, ParseError> {
    parse_with_max_depth(input, MAX_DEPTH)
}

/// [`parse`] with another nesting limit: values may sit at depths 0 to
/// `max_depth`. Filters that must refuse exactly what another implementation
/// refuses (the Go examples' parser allows 64) set it here.
///
/// # Errors
///
/// As [`parse`].
pub fn parse_with_max_depth(input: &[u8], max_depth: usize) -> Result<Value, ParseError> {
    let mut p = Parser {
        s: input,
        i: 0,
        max_depth,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing data after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, message: &'static str) -> ParseError {
        // Whatever was expected, running out of input is the clearer story.
        let message = if self.i >= self.s.len() {
            "unexpected end of input"
        } else {
            message
        };
        ParseError {
            message,
            offset: self.i,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn lit(&mut self, word: &'static [u8], v: Value) -> Result<Value, ParseError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > self.max_depth {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'n') => self.lit(b"null", Value::Null),
            Some(b't') => self.lit(b"true", Value::Bool(true)),
            Some(b'f') => self.lit(b"false", Value::Bool(false)),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(self.err("expected ',' or ']' in array")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries: Vec<(String, Value)> = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Value::Object(entries));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected a string key in object"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected ':' after object key"));
                    }
                    self.i += 1;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    entries.push((key, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Object(entries));
                        }
                        _ => return Err(self.err("expected ',' or '}' in object")),
                    }
                }
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number: digits expected after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number: digits expected in exponent"));
            }
        }
        // The grammar above admits only ASCII, so this cannot fail.
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ => Err(ParseError {
                message: "number out of range",
                offset: start,
            }),
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut n = 0u32;
        for _ in 0..4 {
            let c = self.peek().ok_or_else(|| self.err("unexpected end of input in \\u escape"))?;
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape")),
            };
            n = n << 4 | d as u32;
            self.i += 1;
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1; // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(c) => c,
            };
            match c {
                b'"' => {
                    self.i += 1;
                    // Invalid UTF-8 reads as U+FFFD, as in Go.
                    return Ok(match String::from_utf8(out) {
                        Ok(s) => s,
                        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    });
                }
                b'\\' => {
                    self.i += 1;
                    let e = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            self.unicode(hi)
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// Completes a `\u` escape whose first unit is `hi`, reading the low
    /// surrogate that must follow a high one. An unpaired surrogate becomes
    /// U+FFFD, as in Go.
    fn unicode(&mut self, hi: u32) -> char {
        if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            if let Ok(lo) = self.hex4() {
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return char::from_u32(c).unwrap_or('\u{FFFD}');
                }
            }
            // Not a low surrogate: this one is unpaired; the next escape is
            // read on its own.
            self.i = save;
        }
        char::from_u32(hi).unwrap_or('\u{FFFD}')
    }
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, *n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Writes a number as Go's encoding/json does: shortest round-trip digits,
/// plain notation for 1e-6 <= |n| < 1e21, otherwise exponent notation with a
/// sign ("1e+21", "1e-7").
fn write_number(out: &mut String, n: f64) {
    if !n.is_finite() {
        // Not produced by the parser; Go refuses to encode these. Write null
        // so the output is still JSON.
        out.push_str("null");
        return;
    }
    // Integers that f64 holds exactly: the common case, without the float
    // formatter.
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 && !(n == 0.0 && n.is_sign_negative()) {
        write_int(out, n as i64);
        return;
    }
    let abs = n.abs();
    if abs != 0.0 && (abs < 1e-6 || abs >= 1e21) {
        let s = format!("{:e}", n);
        match s.find('e') {
            Some(i) if !s[i + 1..].starts_with('-') => {
                out.push_str(&s[..=i]);
                out.push('+');
                out.push_str(&s[i + 1..]);
            }
            _ => out.push_str(&s),
        }
    } else {
        out.push_str(&format!("{}", n));
    }
}

fn write_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// Writes a JSON string as Go's encoding/json does, HTML-safe.
fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{0}'..='\u{1f}' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let u = c as u32;
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[(u >> shift & 15) as usize] as char);
                }
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal, quotes included (escaped as Go does).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

/// A filter's config object, read key by key with typed accessors that
/// record the first problem, so `configure` reads everything and checks once:
///
/// ```
/// use sluice::json::Config;
///
/// let mut c = Config::parse(br#"{"max_size": 4096, "deny": ["x"]}"#, "guard: config").unwrap();
/// let size = c.int("max_size", 0);
/// let deny = c.strings("deny");
/// let rate = c.int("rate", 0);
/// c.done().unwrap();
/// assert_eq!((size, deny, rate), (4096, vec!["x".to_string()], 0));
///
/// let mut c = Config::parse(br#"{"max_sise": 1}"#, "guard: config").unwrap();
/// c.int("max_size", 0);
/// assert_eq!(c.done().unwrap_err().message(), "guard: config: unknown key max_sise");
/// ```
///
/// It is strict the way the proxy's own config is: keys match exactly, a
/// `null` is a value of the wrong type (not an absent key), and
/// [`done`](Config::done) refuses keys nobody read, so a typo in `proxy.toml`
/// refuses the module instead of being ignored. The messages and rules are
/// those of the Go examples' config reader, so a Rust and a Go filter accept
/// the same configs.
#[derive(Clone, Debug)]
pub struct Config {
    entries: Vec<(String, Value)>,
    prefix: String,
    used: Vec<String>,
    err: Option<crate::Error>,
    children: Vec<Config>,
}

/// How deep a config may nest, as in the Go examples' reader.
const CONFIG_MAX_DEPTH: usize = 64;

fn kind_article(v: &Value) -> &'static str {
    match v {
        Value::Null => "a null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Config {
    /// Parses `raw`, which must be a JSON object. `prefix` starts every error
    /// message (`"auth: config"`).
    ///
    /// # Errors
    ///
    /// When `raw` is not JSON or not an object.
    pub fn parse(raw: &[u8], prefix: &str) -> Result<Config, crate::Error> {
        let v = parse_with_max_depth(raw, CONFIG_MAX_DEPTH).map_err(|e| {
            crate::Error::new(format!("{}: invalid JSON at offset {}: {}", prefix, e.offset, e.message))
        })?;
        Config::from_value(Some(v), prefix)
    }

    /// A config from an already decoded value, such as a nested table; an
    /// absent value (`None`) is an empty table.
    ///
    /// # Errors
    ///
    /// When the value is not an object.
    pub fn from_value(v: Option<Value>, prefix: &str) -> Result<Config, crate::Error> {
        let entries = match v {
            None => Vec::new(),
            Some(Value::Object(entries)) => entries,
            Some(other) => {
                return Err(crate::Error::new(format!("{}: want a table, got {}", prefix, kind_article(&other))))
            }
        };
        Ok(Config {
            entries,
            prefix: prefix.to_string(),
            used: Vec::new(),
            err: None,
            children: Vec::new(),
        })
    }

    fn get(&mut self, key: &str) -> Option<Value> {
        if !self.used.iter().any(|k| k == key) {
            self.used.push(key.to_string());
        }
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// Records a problem with `key`, unless one is recorded already.
    pub fn fail(&mut self, key: &str, msg: &str) {
        if self.err.is_none() {
            self.err = Some(crate::Error::new(format!("{}: {}: {}", self.prefix, key, msg)));
        }
    }

    /// Whether `key` is present (`null` counts as present).
    pub fn has(&mut self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The raw value of `key`, `None` when absent.
    pub fn value(&mut self, key: &str) -> Option<Value> {
        self.get(key)
    }

    /// The string `key`, or `default` when absent.
    pub fn string(&mut self, key: &str, default: &str) -> String {
        match self.get(key) {
            None => default.to_string(),
            Some(Value::String(s)) => s,
            Some(other) => {
                self.fail(key, &format!("want a string, got {}", kind_article(&other)));
                default.to_string()
            }
        }
    }

    /// The whole number `key`, or `default` when absent.
    pub fn int(&mut self, key: &str, default: i64) -> i64 {
        match self.get(key) {
            None => default,
            Some(v) => match v.as_i64() {
                Some(n) => n,
                None => {
                    self.fail(key, "want a whole number");
                    default
                }
            },
        }
    }

    /// The list of strings `key`, empty when absent.
    pub fn strings(&mut self, key: &str) -> Vec<String> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => out.push(s),
                        other => {
                            self.fail(key, &format!("want a list of strings, found {}", kind_article(&other)));
                            return Vec::new();
                        }
                    }
                }
                out
            }
            Some(other) => {
                self.fail(key, &format!("want a list of strings, got {}", kind_article(&other)));
                Vec::new()
            }
        }
    }

    /// The nested table `key` (empty when absent), read like this one; its
    /// problems and unknown keys are reported by this config's
    /// [`done`](Config::done).
    pub fn table(&mut self, key: &str) -> &mut Config {
        let prefix = format!("{}: {}", self.prefix, key);
        let v = self.get(key);
        let sub = match Config::from_value(v, &prefix) {
            Ok(sub) => sub,
            Err(e) => {
                if self.err.is_none() {
                    self.err = Some(e);
                }
                Config::from_value(None, &prefix).expect("an empty table")
            }
        };
        self.children.push(sub);
        self.children.last_mut().expect("just pushed")
    }

    /// The first problem recorded, or one naming the keys nobody read.
    ///
    /// # Errors
    ///
    /// That problem.
    pub fn done(&self) -> Result<(), crate::Error> {
        if let Some(e) = &self.err {
            return Err(e.clone());
        }
        for sub in &self.children {
            sub.done()?;
        }
        let unknown: Vec<&str> = self
            .entries
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !self.used.iter().any(|u| u == k))
            .collect();
        if !unknown.is_empty() {
            return Err(crate::Error::new(format!("{}: unknown key {}", self.prefix, unknown.join(", "))));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &str) -> String {
        parse(input.as_bytes()).unwrap_or_else(|e| panic!("{}: {}", input, e)).to_json()
    }

    #[test]
    fn parses_every_kind_of_value() {
        let v = parse(br#" {"a": [1, -2.5, 3e2, true, false, null], "b": {"c": "d"}, "e": ""} "#).unwrap();
        assert_eq!(
            v,
            Value::Object(vec![
                (
                    "a".into(),
                    Value::Array(vec![
                        Value::Number(1.0),
                        Value::Number(-2.5),
                        Value::Number(300.0),
                        Value::Bool(true),
                        Value::Bool(false),
                        Value::Null,
                    ])
                ),
                ("b".into(), Value::Object(vec![("c".into(), "d".into())])),
                ("e".into(), "".into()),
            ])
        );
        assert_eq!(v.get("b").and_then(|b| b.get("c")).and_then(Value::as_str), Some("d"));
        assert_eq!(v.get("zz"), None);
    }

    #[test]
    fn string_escapes() {
        let v = parse(br#""a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00""#).unwrap();
        assert_eq!(v.as_str(), Some("a\"b\\c/d\u{8}\u{c}\n\r\tA\u{e9}\u{20ac}\u{1F600}"));
        // Unpaired surrogates become U+FFFD, as in Go.
        assert_eq!(parse(br#""\ud800x""#).unwrap().as_str(), Some("\u{FFFD}x"));
        assert_eq!(parse(br#""\udc00""#).unwrap().as_str(), Some("\u{FFFD}"));
        assert_eq!(parse(br#""\ud800\u0041""#).unwrap().as_str(), Some("\u{FFFD}A"));
        // Raw UTF-8 passes through; invalid UTF-8 becomes U+FFFD.
        assert_eq!(parse("\"h\u{e9}\"".as_bytes()).unwrap().as_str(), Some("h\u{e9}"));
        assert_eq!(parse(b"\"a\xffb\"").unwrap().as_str(), Some("a\u{FFFD}b"));
    }

    #[test]
    fn serialises_like_go() {
        // Expected strings are what Go's json.Marshal writes for the same
        // values decoded into `any`.
        let cases = [
            (r#"{"b":1,"a":[true,null]}"#, r#"{"b":1,"a":[true,null]}"#),
            (r#""<a href=\"x\">&amp;</a>""#, r#""\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e""#),
            ("\"\\u0001\\u001f\\u007f\"", "\"\\u0001\\u001f\u{7f}\""),
            (r#""\b\f\n\r\t""#, r#""\b\f\n\r\t""#),
            ("\"\u{2028}\u{2029}\"", r#""\u2028\u2029""#),
            ("1.0", "1"),
            ("-0", "-0"),
            ("0.1", "0.1"),
            ("1e2", "100"),
            ("123456789012", "123456789012"),
            ("1e20", "100000000000000000000"),
            ("1e21", "1e+21"),
            ("1.5e300", "1.5e+300"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("-1.25e-10", "-1.25e-10"),
            ("9007199254740993", "9007199254740992"),
            ("3.14159", "3.14159"),
            ("[]", "[]"),
            ("{}", "{}"),
        ];
        for (input, want) in cases {
            assert_eq!(roundtrip(input), want, "input {}", input);
        }
    }

    #[test]
    fn repeated_keys_are_kept_and_the_last_is_found() {
        let v = parse(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(v.get("a").and_then(Value::as_i64), Some(3));
        assert_eq!(v.to_json(), r#"{"a":1,"b":2,"a":3}"#);
        let mut v = v;
        v.insert("a", Value::from(4i64));
        assert_eq!(v.to_json(), r#"{"a":1,"b":2,"a":4}"#);
    }

    #[test]
    fn sort_keys_orders_like_a_go_map() {
        let mut v = parse(br#"{"b":{"z":1,"y":2},"a":[{"d":1,"c":2}],"B":0}"#).unwrap();
        v.sort_keys();
        assert_eq!(v.to_json(), r#"{"B":0,"a":[{"c":2,"d":1}],"b":{"y":2,"z":1}}"#);
    }

    #[test]
    fn refuses_what_is_not_json() {
        let bad: &[&str] = &[
            "", " ", "{", "[1,]", "[1 2]", "{\"a\"}", "{\"a\":}", "{a:1}", "01", "1.", ".5", "1e", "-", "+1",
            "\"abc", "\"\\x\"", "\"\\u12g4\"", "\"a\nb\"", "tru", "nul", "1 2", "[1]]", "1e400", "NaN",
            "{\"a\":1,}",
        ];
        for input in bad {
            assert!(parse(input.as_bytes()).is_err(), "accepted {:?}", input);
        }
    }

    #[test]
    fn limits_nesting() {
        // MAX_DEPTH + 1 arrays: the innermost sits at depth MAX_DEPTH.
        let ok = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(deep.as_bytes()).unwrap_err().message, "nesting too deep");
        // Scalars count too: 1 inside 64 arrays is at depth 64.
        let at = |n: usize| "[".repeat(n) + "1" + &"]".repeat(n);
        assert!(parse_with_max_depth(at(64).as_bytes(), 64).is_ok());
        assert!(parse_with_max_depth(at(65).as_bytes(), 64).is_err());
    }

    #[test]
    fn errors_say_where() {
        let e = parse(br#"{"a": [1, }"#).unwrap_err();
        assert_eq!(e.offset, 10);
        assert_eq!(e.to_string(), "json: unexpected character at offset 10");
    }

    #[test]
    fn accessors() {
        let v = parse(br#"{"i": 42, "f": 1.5, "big": 1e30, "s": "x", "b": true, "n": null, "o": {}}"#).unwrap();
        assert_eq!(v.get("i").and_then(Value::as_i64), Some(42));
        assert_eq!(v.get("f").and_then(Value::as_i64), None);
        assert_eq!(v.get("f").and_then(Value::as_f64), Some(1.5));
        assert_eq!(v.get("big").and_then(Value::as_i64), None);
        assert_eq!(v.get("s").and_then(Value::as_str), Some("x"));
        assert_eq!(v.get("b").and_then(Value::as_bool), Some(true));
        assert!(v.get("n").map_or(false, Value::is_null));
        assert_eq!(v.get("o").and_then(Value::as_object).map(|o| o.len()), Some(0));
        let mut m = v.clone();
        m.insert("s", "y".into());
        m.insert("new", Value::from(7i64));
        assert_eq!(m.get("s").and_then(Value::as_str), Some("y"));
        assert_eq!(m.get("new").and_then(Value::as_i64), Some(7));
        assert_eq!(quote("a\"<"), r#""a\"\u003c""#);
        let c = parse(br#"{"Tokens": [1], "tokens": [2], "TOKENS": [3], "x": 1}"#).unwrap();
        assert_eq!(c.field("tokens").map(|v| v.to_json()), Some("[3]".to_string()));
        assert_eq!(c.field("X").and_then(Value::as_i64), Some(1));
        assert_eq!(c.field("y"), None);
    }

    #[test]
    fn config_reads_strictly() {
        let mut c = Config::parse(
            br#"{"s": "x", "n": 3, "f": 2.0, "l": ["a", "b"], "t": {"k": "v"}, "z": null}"#,
            "f: config",
        )
        .unwrap();
        assert_eq!(c.string("s", "d"), "x");
        assert_eq!(c.string("absent", "d"), "d");
        assert_eq!(c.int("n", 0), 3);
        assert_eq!(c.int("f", 0), 2);
        assert_eq!(c.strings("l"), vec!["a", "b"]);
        assert_eq!(c.table("t").string("k", ""), "v");
        assert!(c.has("z"));
        assert!(c.done().is_ok());

        let cases: &[(&str, &str)] = &[
            (r#"{"s": 1}"#, "f: config: s: want a string, got a number"),
            (r#"{"s": null}"#, "f: config: s: want a string, got a null"),
            (r#"{"n": 1.5}"#, "f: config: n: want a whole number"),
            (r#"{"l": "a"}"#, "f: config: l: want a list of strings, got a string"),
            (r#"{"l": ["a", null]}"#, "f: config: l: want a list of strings, found a null"),
            (r#"{"t": []}"#, "f: config: t: want a table, got an array"),
            (r#"{"t": {"k": "v", "q": 1}}"#, "f: config: t: unknown key q"),
            (r#"{"S": "x", "extra": 1}"#, "f: config: unknown key S, extra"),
        ];
        for (raw, want) in cases {
            let mut c = Config::parse(raw.as_bytes(), "f: config").unwrap();
            c.string("s", "");
            c.int("n", 0);
            c.strings("l");
            c.table("t").string("k", "");
            assert_eq!(c.done().unwrap_err().message(), *want, "{}", raw);
        }
        assert_eq!(
            Config::parse(b"[]", "f: config").unwrap_err().message(),
            "f: config: want a table, got an array"
        );
        assert_eq!(
            Config::parse(b"{", "f: config").unwrap_err().message(),
            "f: config: invalid JSON at offset 1: unexpected end of input"
        );
    }
}
