//! `redact` masks sensitive data in WebSocket text messages: in JSON
//! messages, the values of the configured fields at any depth (and the
//! configured words inside string values); in any other text, the configured
//! words. Binary messages pass untouched. Config and output are those of the
//! Go version beside it:
//!
//! ```toml
//! [plugin.config]
//! fields = ["password", "ssn"]   # masked whole, at any depth, any value type
//! words = ["secret"]             # masked as whole words, ignoring ASCII case
//! mask = "***"                   # the default
//! direction = "both"             # or "client_to_upstream", "upstream_to_client"
//! ```
//!
//! Unknown config keys refuse the module.
//!
//! The scanner works on the bytes as they came: it keeps the sender's key
//! order and formatting, and copies only around what it replaces.

use sluice::json::Config;
use sluice::{Direction, Error, Filter, Hooks, Message, MessageAction, MessageKind};

/// Deeper nesting is not treated as JSON (the message is then scanned as
/// text).
const MAX_DEPTH: usize = 128;

/// The filter: what to mask and where.
pub struct Redact {
    /// Lower-case field names.
    fields: Vec<Vec<u8>>,
    /// Lower-case words.
    words: Vec<Vec<u8>>,
    /// Whether some word holds a separator ("top secret"): see
    /// `mask_phrases`.
    phrases: bool,
    /// The length of the longest word.
    longest: usize,
    /// The mask as a JSON string, quotes included.
    mask_value: Vec<u8>,
    /// The mask escaped for the inside of a JSON string.
    mask_in_string: Vec<u8>,
    /// The mask as it is, for plain text.
    mask_text: Vec<u8>,
    /// Whether messages from the client, and to the client, are redacted.
    client_to_upstream: bool,
    upstream_to_client: bool,
}

fn config_error(msg: &str) -> Error {
    Error::new(format!("redact: config: {}", msg))
}

impl Filter for Redact {
    const HOOKS: Hooks = Hooks::MESSAGE;

    fn configure(raw: &[u8]) -> Result<Self, Error> {
        let mut c = Config::parse(raw, "redact: config")?;
        let fields = c.strings("fields");
        let words = c.strings("words");
        let mask = c.string("mask", "***");
        let direction = c.string("direction", "both");
        c.done()?;
        if fields.is_empty() && words.is_empty() {
            return Err(config_error("set fields, words or both"));
        }
        let escaped = escape_json(&mask);
        let mut mask_value = vec![b'"'];
        mask_value.extend_from_slice(&escaped);
        mask_value.push(b'"');
        let mut r = Redact {
            fields: Vec::new(),
            words: Vec::new(),
            phrases: false,
            longest: 0,
            mask_value,
            mask_in_string: escaped,
            mask_text: mask.into_bytes(),
            client_to_upstream: true,
            upstream_to_client: true,
        };
        for f in fields {
            if f.is_empty() {
                return Err(config_error("fields: empty name"));
            }
            r.fields.push(f.to_lowercase().into_bytes());
        }
        for w in words {
            if w.is_empty() {
                return Err(config_error("words: empty word"));
            }
            let w = w.to_lowercase().into_bytes();
            r.longest = r.longest.max(w.len());
            r.phrases |= w.iter().any(|&c| !is_word_byte(c));
            r.words.push(w);
        }
        match direction.as_str() {
            "both" => {}
            "client_to_upstream" => r.upstream_to_client = false,
            "upstream_to_client" => r.client_to_upstream = false,
            _ => {
                return Err(config_error(
                    "direction must be \"both\", \"client_to_upstream\" or \"upstream_to_client\"",
                ))
            }
        }
        Ok(r)
    }

    fn on_message(&self, msg: &mut Message) -> MessageAction {
        let wanted = match msg.direction() {
            Direction::ClientToUpstream => self.client_to_upstream,
            Direction::UpstreamToClient => self.upstream_to_client,
        };
        if msg.kind() != MessageKind::Text || !wanted {
            return MessageAction::Pass;
        }
        let p = msg.payload();
        if let Some(out) = self.redact(&p) {
            msg.set_payload(&out);
        }
        MessageAction::Pass
    }
}

sluice::register!(Redact);

impl Redact {
    /// The redacted message, or `None` when nothing was masked.
    pub fn redact(&self, input: &[u8]) -> Option<Vec<u8>> {
        let mut s = Scan::new(self, input);
        if !s.redact_json() {
            s = Scan::new(self, input);
            s.mask_words(0, input.len(), &self.mask_text);
        }
        s.result()
    }
}

/// One pass over one message.
struct Scan<'a> {
    r: &'a Redact,
    input: &'a [u8],
    pos: usize,
    /// The result so far, when something was replaced.
    out: Option<Vec<u8>>,
    /// `input[..last]` is already in `out`.
    last: usize,
}

impl<'a> Scan<'a> {
    fn new(r: &'a Redact, input: &'a [u8]) -> Scan<'a> {
        Scan {
            r,
            input,
            pos: 0,
            out: None,
            last: 0,
        }
    }

    /// Makes `out` hold `input[last..a]` followed by `with`, and skips
    /// `input[a..b]`.
    fn replace(&mut self, a: usize, b: usize, with: &[u8]) {
        let out = self.out.get_or_insert_with(|| Vec::with_capacity(self.input.len()));
        out.extend_from_slice(&self.input[self.last..a]);
        out.extend_from_slice(with);
        self.last = b;
    }

    fn result(self) -> Option<Vec<u8>> {
        let mut out = self.out?;
        out.extend_from_slice(&self.input[self.last..]);
        Some(out)
    }

    /// Masks fields (and words in string values) of a JSON document; false
    /// when the input is not JSON.
    fn redact_json(&mut self) -> bool {
        self.ws();
        if !self.value(0, false) {
            return false;
        }
        self.ws();
        self.pos == self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Scans one value; with `skip` (the value is masked whole) nothing
    /// inside is replaced.
    fn value(&mut self, depth: usize, skip: bool) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.object(depth, skip),
            Some(b'[') => self.array(depth, skip),
            Some(b'"') => {
                let start = self.pos + 1;
                if !self.string() {
                    return false;
                }
                if !skip && !self.r.words.is_empty() {
                    let mask = &self.r.mask_in_string;
                    self.mask_words(start, self.pos - 1, mask);
                }
                true
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize, skip: bool) -> bool {
        self.pos += 1; // {
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return true;
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return false;
            }
            let key_start = self.pos + 1;
            if !self.string() {
                return false;
            }
            let key = &self.input[key_start..self.pos - 1];
            self.ws();
            if self.peek() != Some(b':') {
                return false;
            }
            self.pos += 1;
            self.ws();
            let mask = !skip && self.is_field(key);
            let start = self.pos;
            if !self.value(depth + 1, skip || mask) {
                return false;
            }
            if mask {
                let with = &self.r.mask_value;
                self.replace(start, self.pos, with);
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return true;
                }
                _ => return false,
            }
        }
    }

    fn array(&mut self, depth: usize, skip: bool) -> bool {
        self.pos += 1; // [
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return true;
        }
        loop {
            self.ws();
            if !self.value(depth + 1, skip) {
                return false;
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return true;
                }
                _ => return false,
            }
        }
    }

    /// Scans a string from its opening quote; leaves `pos` after the closing
    /// one.
    fn string(&mut self) -> bool {
        self.pos += 1;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.pos += 1;
                    return true;
                }
                b'\\' => self.pos += 2,
                0..=0x1f => return false,
                _ => self.pos += 1,
            }
        }
        false
    }

    fn literal(&mut self, lit: &[u8]) -> bool {
        if self.input[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// Scans a number loosely: the characters a number may hold. The scanner
    /// only needs to find where the value ends.
    fn number(&mut self) -> bool {
        let start = self.pos;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Whether a raw (still escaped) key is a field to mask, ignoring ASCII
    /// case.
    fn is_field(&self, key: &[u8]) -> bool {
        self.r.fields.iter().any(|f| equal_fold(key, f))
    }

    /// Replaces whole words of `input[a..b]`, ignoring ASCII case, with
    /// `mask`. A word is delimited by anything that is not a letter, digit,
    /// '_' or a non-ASCII byte, so "secret" matches in "my secret!" but not
    /// in "secretary".
    fn mask_words(&mut self, a: usize, b: usize, mask: &[u8]) {
        if self.r.phrases {
            return self.mask_phrases(a, b, mask);
        }
        // Every word is one token: cut the text into tokens and compare each
        // with the words of its length. One table lookup per byte.
        let input = self.input;
        let mut i = a;
        while i < b {
            while i < b && !WORD_BYTE[input[i] as usize] {
                i += 1;
            }
            let start = i;
            while i < b && WORD_BYTE[input[i] as usize] {
                i += 1;
            }
            let n = i - start;
            if n > 0 && n <= self.r.longest {
                let token = &input[start..i];
                if self.r.words.iter().any(|w| w.len() == n && equal_fold(token, w)) {
                    self.replace(start, i, mask);
                }
            }
        }
    }

    /// `mask_words` for words that hold separators ("top secret"): tries
    /// every word at every word start.
    fn mask_phrases(&mut self, a: usize, b: usize, mask: &[u8]) {
        let input = self.input;
        let mut i = a;
        while i < b {
            if i > a && is_word_byte(input[i - 1]) {
                i += 1;
                continue;
            }
            let mut matched = 0;
            for w in &self.r.words {
                let end = i + w.len();
                if end <= b
                    && lower(input[i]) == w[0]
                    && equal_fold(&input[i..end], w)
                    && (end == b || !is_word_byte(input[end]))
                {
                    matched = w.len();
                    break;
                }
            }
            if matched == 0 {
                i += 1;
                continue;
            }
            self.replace(i, i + matched, mask);
            i += matched;
        }
    }
}

fn is_word_byte(c: u8) -> bool {
    WORD_BYTE[c as usize]
}

/// The bytes words are made of: ASCII letters and digits, '_', and every
/// byte of a multi-byte UTF-8 character (so "café" is one word).
static WORD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        c += 1;
    }
    t
};

fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

/// Compares `s` with lower-case `t`, ignoring ASCII case in `s`.
fn equal_fold(s: &[u8], t: &[u8]) -> bool {
    s.len() == t.len() && s.iter().zip(t).all(|(a, b)| lower(*a) == *b)
}

/// Escapes `s` for the inside of a JSON string.
fn escape_json(s: &str) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = Vec::with_capacity(s.len());
    for &c in s.as_bytes() {
        match c {
            b'"' | b'\\' => b.extend_from_slice(&[b'\\', c]),
            0..=0x1f => b.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]),
            _ => b.push(c),
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::{abi, json, testing};

    const CONFIG: &str = r#"{"fields": ["password", "ssn"], "words": ["secret", "hunter2"]}"#;

    fn text(f: &Redact, d: Direction, input: &str) -> String {
        assert_eq!(testing::on_message(f, d, MessageKind::Text, input.as_bytes()), abi::ACTION_PASS);
        testing::with(|h| String::from_utf8(h.message.clone().unwrap()).unwrap())
    }

    #[test]
    fn redact() {
        for (name, input, want) in [
            ("flat", r#"{"user":"ann","password":"pw1"}"#, r#"{"user":"ann","password":"***"}"#),
            ("any value type", r#"{"password": 1234, "ssn": {"a": [1, 2]}, "ok": true}"#, r#"{"password": "***", "ssn": "***", "ok": true}"#),
            ("nested", r#"{"a":{"b":[{"ssn":"123-45-6789"},{"c":{"password":null}}]}}"#, r#"{"a":{"b":[{"ssn":"***"},{"c":{"password":"***"}}]}}"#),
            ("case-insensitive keys", r#"{"Password":"x","SSN":"y"}"#, r#"{"Password":"***","SSN":"***"}"#),
            ("formatting kept", "{\n  \"password\" : \"pw\" ,\n  \"n\": -1.5e3\n}", "{\n  \"password\" : \"***\" ,\n  \"n\": -1.5e3\n}"),
            ("top-level array", r#"[{"password":"a"},{"password":"b"}]"#, r#"[{"password":"***"},{"password":"***"}]"#),
            ("words in JSON strings", r#"{"text":"my secret is hunter2","secret":"key stays"}"#, r#"{"text":"my *** is ***","secret":"key stays"}"#),
            ("escaped strings", r#"{"q":"say \"hi\"\\","password":"a\"b"}"#, r#"{"q":"say \"hi\"\\","password":"***"}"#),
            ("nothing to mask", r#"{"user":"ann"}"#, r#"{"user":"ann"}"#),
            ("plain text", "the secret is Hunter2, ok", "the *** is ***, ok"),
            ("whole words only", "secretary hunter22 _secret secret_ secret.", "secretary hunter22 _secret secret_ ***."),
            ("not quite JSON", r#"{"password":"pw""#, r#"{"password":"pw""#),
            ("not JSON with a word", r#"{"password": secret}"#, r#"{"password": ***}"#),
            ("empty", "", ""),
            ("unicode", r#"{"name":"Zoë","password":"ünï"} Zoë"#, r#"{"name":"Zoë","password":"ünï"} Zoë"#),
        ] {
            let f: Redact = testing::configure(CONFIG).unwrap();
            let got = text(&f, Direction::ClientToUpstream, input);
            assert_eq!(got, want, "{}", name);
            if json::parse(input.as_bytes()).is_ok() {
                assert!(json::parse(got.as_bytes()).is_ok(), "{}: valid JSON in, invalid JSON out", name);
            }
        }
    }

    #[test]
    fn phrases() {
        let f: Redact = testing::configure(r#"{"words": ["top secret", "x-ray", "code"]}"#).unwrap();
        for (input, want) in [
            ("a TOP SECRET plan", "a *** plan"),
            ("top secrets, x-ray, code", "top secrets, ***, ***"),
            (r#"{"m":"Top Secret!"}"#, r#"{"m":"***!"}"#),
            ("topsecret codes", "topsecret codes"),
        ] {
            assert_eq!(text(&f, Direction::ClientToUpstream, input), want, "{}", input);
        }
    }

    #[test]
    fn binary_passes_untouched() {
        let f: Redact = testing::configure(CONFIG).unwrap();
        let input = br#"{"password":"pw"} secret"#;
        assert_eq!(testing::on_message(&f, Direction::UpstreamToClient, MessageKind::Binary, input), abi::ACTION_PASS);
        testing::with(|h| assert_eq!(h.message.as_deref(), Some(&input[..])));
    }

    #[test]
    fn mask_and_direction() {
        let f: Redact = testing::configure(
            r#"{"fields": ["token"], "words": ["x"], "mask": "<\"hidden\">", "direction": "upstream_to_client"}"#,
        )
        .unwrap();
        assert_eq!(text(&f, Direction::ClientToUpstream, r#"{"token":"t"}"#), r#"{"token":"t"}"#);
        let got = text(&f, Direction::UpstreamToClient, r#"{"token":"t","m":"x y"}"#);
        assert_eq!(got, r#"{"token":"<\"hidden\">","m":"<\"hidden\"> y"}"#);
        assert!(json::parse(got.as_bytes()).is_ok());
        assert_eq!(text(&f, Direction::UpstreamToClient, "x marks"), r#"<"hidden"> marks"#);
    }

    #[test]
    fn deep_nesting() {
        let f: Redact = testing::configure(CONFIG).unwrap();
        let input = r#"{"a":"#.repeat(100) + r#"{"password":"pw"}"# + &"}".repeat(100);
        let want = r#"{"a":"#.repeat(100) + r#"{"password":"***"}"# + &"}".repeat(100);
        assert_eq!(text(&f, Direction::ClientToUpstream, &input), want);
        // Past the depth limit the message is text: only words are masked.
        let input = "[".repeat(200) + r#""secret""# + &"]".repeat(200);
        let want = "[".repeat(200) + r#""***""# + &"]".repeat(200);
        assert_eq!(text(&f, Direction::ClientToUpstream, &input), want);
    }

    #[test]
    fn config_errors() {
        for (name, cfg) in [
            ("nothing", "{}"),
            ("empty name", r#"{"fields": [""]}"#),
            ("empty word", r#"{"words": [""]}"#),
            ("direction", r#"{"words": ["a"], "direction": "sideways"}"#),
            ("not json", r#"{"words": "#),
            ("words not a list", r#"{"words": "a"}"#),
            ("unknown key", r#"{"word": ["a"]}"#),
            ("null mask", r#"{"words": ["a"], "mask": null}"#),
            ("empty direction", r#"{"words": ["a"], "direction": ""}"#),
        ] {
            assert!(testing::configure::<Redact>(cfg).is_err(), "{}: accepted", name);
        }
        let f: Redact = testing::configure(r#"{"words": ["a"]}"#).unwrap();
        assert_eq!(f.mask_text, b"***");
        assert_eq!(testing::hooks(&f), Hooks::MESSAGE);
    }

    #[test]
    fn unchanged_messages_are_not_rewritten() {
        let f: Redact = testing::configure(CONFIG).unwrap();
        assert_eq!(f.redact(br#"{"user":"ann","list":[1,2,{"a":"b"}]}"#), None);
        assert_eq!(f.redact(b"plain text"), None);
    }
}
