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
//! order and formatting, and copies only around what it replaces. Like the
//! Go version's, it reads eight bytes at a time and tests them with bit
//! tricks, because inside the proxy every loop iteration of a filter pays
//! for a cancellation check: see the README one level up.

use sluice::json::Config;
use sluice::{Direction, Error, Filter, Hooks, Message, MessageAction, MessageKind};

/// Deeper nesting is not treated as JSON (the message is then scanned as
/// text).
const MAX_DEPTH: usize = 128;

/// How many (first byte, second byte) filters `first_bytes` tests at once;
/// more distinct pairs fall back to testing every word start.
const SLOTS: usize = 4;

/// The filter: what to mask and where.
pub struct Redact {
    /// Lower-case field names.
    fields: Vec<Pattern>,
    /// Lower-case words.
    words: Vec<Pattern>,
    /// For each lower-case byte, the indexes in `words` of the words that
    /// start with it, in config order.
    by_first: Vec<Vec<usize>>,
    /// The filter that finds where words may start (see `first_bytes`): a
    /// position passes when, or-ed with 0x20, its byte equals `first[k]`
    /// and the next byte `second[k]` (or anything, where `any_second[k]` is
    /// set), for some slot k. Each value holds its byte eight times. Unused
    /// slots repeat slot 0.
    first: [u64; SLOTS],
    second: [u64; SLOTS],
    any_second: [u64; SLOTS],
    /// `MSB`, passing every byte, when the words need more than `SLOTS`
    /// filters: then every position after a separator is a candidate.
    every: u64,
    /// How many slots are in use (0 with `every`).
    pairs: usize,
    /// Whether no word holds a quote, a backslash or a control character:
    /// a match then never crosses the end of a JSON string or an escape,
    /// and words are masked while the string is scanned.
    in_string: bool,
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

/// A lower-case field name or word, prepared for comparing eight bytes at a
/// time regardless of ASCII case.
struct Pattern {
    text: Vec<u8>,
    /// For each eight bytes of `text`: the bytes, and 0x20 where the byte is
    /// a lower-case ASCII letter, so that an input byte or-ed with it equals
    /// the pattern's byte exactly when it is that letter in either case.
    val: Vec<u64>,
    fold: Vec<u64>,
}

impl Pattern {
    fn new(text: Vec<u8>) -> Pattern {
        let mut p = Pattern { text, val: Vec::new(), fold: Vec::new() };
        for chunk in p.text.chunks(8) {
            let (mut val, mut fold) = (0u64, 0u64);
            for (j, &c) in chunk.iter().enumerate() {
                val |= (c as u64) << (8 * j);
                if c.is_ascii_lowercase() {
                    fold |= 0x20 << (8 * j);
                }
            }
            p.val.push(val);
            p.fold.push(fold);
        }
        p
    }

    /// Whether `input[i..]` starts with the pattern, ignoring ASCII case in
    /// `input`. The caller checks that `i + text.len() <= input.len()`.
    fn at(&self, input: &[u8], i: usize) -> bool {
        let n = self.text.len();
        if (load(input, i) | self.fold[0]) & low_bytes(n.min(8)) != self.val[0] {
            return false;
        }
        let mut k = 1;
        while 8 * k < n {
            if (load(input, i + 8 * k) | self.fold[k]) & low_bytes((n - 8 * k).min(8)) != self.val[k] {
                return false;
            }
            k += 1;
        }
        true
    }
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
            by_first: vec![Vec::new(); 256],
            first: [0; SLOTS],
            second: [0; SLOTS],
            any_second: [0; SLOTS],
            every: 0,
            pairs: 0,
            in_string: true,
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
            r.fields.push(Pattern::new(f.to_lowercase().into_bytes()));
        }
        let mut lower = Vec::new();
        for w in words {
            if w.is_empty() {
                return Err(config_error("words: empty word"));
            }
            lower.push(w.to_lowercase().into_bytes());
        }
        r.set_words(lower);
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
            if !self.words.is_empty() {
                s.mask_words(0, 0, input.len(), false, &self.mask_text);
            }
        }
        s.result()
    }

    /// Installs the (lower-case) words and the filter that finds where they
    /// may start.
    fn set_words(&mut self, words: Vec<Vec<u8>>) {
        // (first, second, any second byte), each or-ed with 0x20: the
        // filter folds the case of input bytes that way.
        let mut pairs: Vec<(u8, u8, bool)> = Vec::new();
        for (i, w) in words.into_iter().enumerate() {
            self.by_first[w[0] as usize].push(i);
            if w.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20) {
                self.in_string = false;
            }
            let p = if w.len() == 1 { (w[0] | 0x20, 0, true) } else { (w[0] | 0x20, w[1] | 0x20, false) };
            if !pairs.contains(&p) {
                pairs.push(p);
            }
            self.words.push(Pattern::new(w));
        }
        if pairs.is_empty() {
            return;
        }
        if pairs.len() > SLOTS {
            self.every = MSB;
            return;
        }
        self.pairs = pairs.len();
        for k in 0..SLOTS {
            let (first, second, any) = pairs[if k < pairs.len() { k } else { 0 }];
            self.first[k] = LSB * first as u64;
            self.second[k] = LSB * second as u64;
            // The byte after the eighth is in the next eight.
            self.any_second[k] = if any { MSB } else { 0x80 << 56 };
        }
    }

    /// Marks, roughly, the bytes of `v` that may start a word: those that
    /// pass one of the (first, second) filters. Bytes that start no word may
    /// pass too (it is a filter, and `any_zero` may mark a byte above a zero
    /// one); the first byte of a match always does.
    fn first_bytes(&self, v: u64) -> u64 {
        let f = v | LSB * 0x20;
        // Written out, not looped: a loop costs a cancellation check per turn.
        let slot = |k: usize| any_zero(f ^ self.first[k]) & (any_zero(f ^ self.second[k]) >> 8 | self.any_second[k]);
        let mut m = self.every | slot(0);
        if self.pairs > 1 {
            m |= slot(1);
            if self.pairs > 2 {
                m |= slot(2) | slot(3);
            }
        }
        m & MSB
    }
}

// Eight bytes at a time. The helpers below mark bytes by setting their high
// bit (0x80) in a u64 that holds eight input bytes, lowest address lowest.
// The loops that run over long stretches (`string`, `mask_words`) read 64
// bytes per iteration, as the Go version does.

/// Each byte 0x01.
const LSB: u64 = 0x0101010101010101;
/// Each byte 0x80.
const MSB: u64 = 0x8080808080808080;
/// Each byte 0x7f.
const LOW7: u64 = 0x7f7f7f7f7f7f7f7f;

/// The first eight bytes of `b` as a little-endian number (one load).
fn le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// The eight bytes at `input[i..]`, with zeros past the end of `input`.
fn load(input: &[u8], i: usize) -> u64 {
    if i + 8 <= input.len() {
        return le(&input[i..]);
    }
    let mut a = [0u8; 8];
    let rest = &input[i..];
    a[..rest.len()].copy_from_slice(rest);
    u64::from_le_bytes(a)
}

/// A mask of the `n` (1 to 8) lowest bytes.
fn low_bytes(n: usize) -> u64 {
    u64::MAX >> (64 - 8 * n)
}

/// Sets the high bit of each byte of `x` that is zero, and only those.
fn zeros(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x) & MSB
}

/// Sets the high bit of each byte of `x` that is less than `n` (n <= 0x80).
fn below(x: u64, n: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LSB * (0x80 - n))) | x) & MSB
}

/// Sets the high bit of each byte of `x` in `[lo, hi]` (hi < 0x80).
fn between(x: u64, lo: u64, hi: u64) -> u64 {
    let x7 = x & LOW7;
    (x7.wrapping_add(LSB * (0x80 - lo))) & !(x7.wrapping_add(LSB * (0x7f - hi))) & !x & MSB
}

/// Marks the bytes that end an ordinary run in a JSON string: a quote, a
/// backslash or a control character.
fn special(v: u64) -> u64 {
    zeros(v ^ LSB * b'"' as u64) | zeros(v ^ LSB * b'\\' as u64) | below(v, 0x20)
}

/// Whether the 64 bytes of `p` hold a byte that ends an ordinary run in a
/// JSON string: the result has a high bit set if so, without saying where
/// (see `any_zero`).
fn special_run(p: &[u8]) -> u64 {
    // Written out, not looped: a loop costs a cancellation check per turn.
    let t = |k: usize| {
        let v = le(&p[8 * k..]);
        any_zero(v ^ LSB * b'"' as u64) | any_zero(v ^ LSB * b'\\' as u64) | v.wrapping_sub(LSB * 0x20) & !v
    };
    t(0) | t(1) | t(2) | t(3) | t(4) | t(5) | t(6) | t(7)
}

/// Marks the bytes of `v` that words are made of (see `WORD_BYTE`).
fn word_bytes(v: u64) -> u64 {
    v & MSB
        | between(v, b'0' as u64, b'9' as u64)
        | between(v | LSB * 0x20, b'a' as u64, b'z' as u64)
        | zeros(v ^ LSB * b'_' as u64)
}

/// `(x - LSB) & !x`: the high bit of every zero byte of `x` is set (and
/// maybe of bytes above one). Enough to tell whether there is one.
fn any_zero(x: u64) -> u64 {
    x.wrapping_sub(LSB) & !x
}

/// Whether a byte is JSON whitespace.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
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
        let input = self.input;
        let mut i = self.pos;
        if i >= input.len() || !is_space(input[i]) {
            return;
        }
        while i < input.len() {
            let v = load(input, i);
            let spaces = zeros(v ^ LSB * b' ' as u64)
                | zeros(v ^ LSB * b'\t' as u64)
                | zeros(v ^ LSB * b'\n' as u64)
                | zeros(v ^ LSB * b'\r' as u64);
            let m = !spaces & MSB & low_bytes((input.len() - i).min(8));
            if m != 0 {
                i += (m.trailing_zeros() >> 3) as usize;
                break;
            }
            i += 8;
        }
        self.pos = i.min(input.len());
    }

    /// Scans one value; with `skip` (the value is masked whole) nothing
    /// inside is replaced.
    fn value(&mut self, depth: usize, skip: bool) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let r = self.r;
        match self.peek() {
            Some(b'{') => self.object(depth, skip),
            Some(b'[') => self.array(depth, skip),
            Some(b'"') => {
                let start = self.pos + 1;
                if skip || r.words.is_empty() {
                    return self.string();
                }
                if r.in_string {
                    return match self.mask_words(start, start, self.input.len(), true, &r.mask_in_string) {
                        Some(end) => {
                            self.pos = end;
                            true
                        }
                        None => false,
                    };
                }
                if !self.string() {
                    return false;
                }
                self.mask_words(start, start, self.pos - 1, false, &r.mask_in_string);
                true
            }
            Some(b't') => self.literal(LIT_TRUE, 4),
            Some(b'f') => self.literal(LIT_FALSE, 5),
            Some(b'n') => self.literal(LIT_NULL, 4),
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
            let mask = !skip && self.is_field(key_start, self.pos - 1);
            self.ws();
            if self.peek() != Some(b':') {
                return false;
            }
            self.pos += 1;
            self.ws();
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
        let input = self.input;
        let mut i = self.pos + 1;
        loop {
            // Sixty-four ordinary bytes per iteration.
            while i + 64 <= input.len() {
                if special_run(&input[i..i + 64]) & MSB != 0 {
                    break;
                }
                i += 64;
            }
            // Then eight, exactly.
            if i >= input.len() {
                return false;
            }
            let m = special(load(input, i)) & low_bytes((input.len() - i).min(8));
            if m == 0 {
                i += 8;
                continue;
            }
            i += (m.trailing_zeros() >> 3) as usize;
            match input[i] {
                b'"' => {
                    self.pos = i + 1;
                    return true;
                }
                b'\\' => i += 2,
                _ => return false, // a control character
            }
        }
    }

    /// Scans the `n`-byte literal `lit` (a load of its bytes). Past the end
    /// of the input `load` reads zeros, which match no literal.
    fn literal(&mut self, lit: u64, n: usize) -> bool {
        if load(self.input, self.pos) & low_bytes(n) != lit {
            return false;
        }
        self.pos += n;
        true
    }

    /// Scans a number loosely: the characters a number may hold. The scanner
    /// only needs to find where the value ends. The first byte is a digit or
    /// '-'.
    fn number(&mut self) -> bool {
        let input = self.input;
        let mut i = self.pos;
        while i < input.len() {
            let v = load(input, i);
            let num = between(v, b'0' as u64, b'9' as u64)
                | zeros(v ^ LSB * b'-' as u64)
                | zeros(v ^ LSB * b'+' as u64)
                | zeros(v ^ LSB * b'.' as u64)
                | zeros((v | LSB * 0x20) ^ LSB * b'e' as u64);
            let m = !num & MSB & low_bytes((input.len() - i).min(8));
            if m != 0 {
                i += (m.trailing_zeros() >> 3) as usize;
                break;
            }
            i += 8;
        }
        self.pos = i.min(input.len());
        true
    }

    /// Whether the raw (still escaped) key `input[a..b]` is a field to mask,
    /// ignoring ASCII case.
    fn is_field(&self, a: usize, b: usize) -> bool {
        self.r.fields.iter().any(|f| f.text.len() == b - a && f.at(self.input, a))
    }

    /// Replaces whole words of `input[a..b]`, ignoring ASCII case, with
    /// `mask`, looking from `i` on. A word is delimited by anything that is
    /// not a letter, digit, '_' or a non-ASCII byte, so "secret" matches in
    /// "my secret!" but not in "secretary". A word may hold such separators
    /// ("top secret"); it then still starts and ends at a word boundary. At
    /// a position where several words match, the first in config order
    /// wins.
    ///
    /// With `json`, `input[a..]` is the inside of a JSON string (the words
    /// are `in_string`) and `b` is `input.len()`: the scan also finds the
    /// string's closing quote and returns the position after it, or `None`
    /// when the string is not valid (it does not end, or holds a control
    /// character). Without, it returns `b`.
    fn mask_words(&mut self, mut i: usize, a: usize, b: usize, json: bool, mask: &[u8]) -> Option<usize> {
        let input = self.input;
        let r = self.r;
        let (f1, f2, any) = (r.first[0], r.second[0], r.any_second[0]);
        loop {
            // Sixty-four bytes per iteration while none may start a word (by
            // the filters alone; the test of the byte before comes below)
            // and, in JSON, none ends a run of ordinary string bytes.
            // Without filters (every), a word may start only after a
            // separator: the loop skips blocks without one, unless i itself
            // may start one.
            let fast = r.every == 0 || i > a && i < b && WORD_BYTE[input[i - 1] as usize];
            while fast && i + 64 <= b {
                let p = &input[i..i + 64];
                let (v0, v1, v2, v3) = (le(p), le(&p[8..]), le(&p[16..]), le(&p[24..]));
                let (v4, v5, v6, v7) = (le(&p[32..]), le(&p[40..]), le(&p[48..]), le(&p[56..]));
                let mut hit = if r.pairs == 1 {
                    // first_bytes for one filter, spelled out.
                    let pair = |v: u64| {
                        let l = v | LSB * 0x20;
                        any_zero(l ^ f1) & (any_zero(l ^ f2) >> 8 | any)
                    };
                    pair(v0) | pair(v1) | pair(v2) | pair(v3) | pair(v4) | pair(v5) | pair(v6) | pair(v7)
                } else if r.every != 0 {
                    // A separator anywhere.
                    !(word_bytes(v0)
                        & word_bytes(v1)
                        & word_bytes(v2)
                        & word_bytes(v3)
                        & word_bytes(v4)
                        & word_bytes(v5)
                        & word_bytes(v6)
                        & word_bytes(v7))
                } else {
                    r.first_bytes(v0)
                        | r.first_bytes(v1)
                        | r.first_bytes(v2)
                        | r.first_bytes(v3)
                        | r.first_bytes(v4)
                        | r.first_bytes(v5)
                        | r.first_bytes(v6)
                        | r.first_bytes(v7)
                };
                if json {
                    hit |= special_run(p);
                }
                if hit & MSB != 0 {
                    break;
                }
                i += 64;
            }
            if i >= b {
                return if json { None } else { Some(b) };
            }
            // Then eight bytes exactly: in JSON, up to the first special byte.
            let n = (b - i).min(8);
            let v = load(input, i);
            let mut valid = low_bytes(n);
            let mut sp = 0;
            if json {
                sp = special(v) & valid;
                if sp != 0 {
                    valid &= (sp & sp.wrapping_neg()).wrapping_sub(1);
                }
            }
            let prev = if i > a && WORD_BYTE[input[i - 1] as usize] { 0x80 } else { 0 };
            let m = r.first_bytes(v) & !(word_bytes(v) << 8 | prev) & valid;
            if m != 0 {
                i += (m.trailing_zeros() >> 3) as usize;
                let n = self.word_at(i, b);
                if n > 0 {
                    self.replace(i, i + n, mask);
                    i += n;
                } else {
                    i += 1;
                }
                continue;
            }
            if sp == 0 {
                i += n;
                continue;
            }
            i += (sp.trailing_zeros() >> 3) as usize;
            match input[i] {
                b'"' => return Some(i + 1),
                b'\\' => {
                    // Skip the escaped byte when it could end the string or
                    // fail it (at the end of the input, input[i] is the
                    // backslash). An ordinary one is read as such: words are
                    // matched in the raw text, where a word may start after
                    // a backslash (`\.x` holds the word x, `\nx` does not).
                    let c = input[(i + 1).min(input.len() - 1)];
                    if c == b'"' || c == b'\\' || c < 0x20 {
                        i += 1;
                    }
                    i += 1;
                }
                _ => return None, // a control character
            }
        }
    }

    /// The length of the first word (in config order) that `input[i..]`
    /// starts with and that ends at `b` or before a separator, or 0.
    fn word_at(&self, i: usize, b: usize) -> usize {
        let input = self.input;
        for &k in &self.r.by_first[lower(input[i]) as usize] {
            let w = &self.r.words[k];
            let end = i + w.text.len();
            if end <= b && w.at(input, i) && (end == b || !WORD_BYTE[input[end] as usize]) {
                return w.text.len();
            }
        }
        0
    }
}

/// The literals as `load` reads them.
const LIT_TRUE: u64 = 0x65757274; // "true"
const LIT_FALSE: u64 = 0x65736c6166; // "false"
const LIT_NULL: u64 = 0x6c6c756e; // "null"

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

/// The scanner as it was before it read eight bytes at a time (byte loops,
/// one table lookup per byte): simple enough to trust, and kept as the
/// reference that `matches_reference` compares the fast scanner with.
#[cfg(test)]
mod reference {
    /// What the old scanner needs of the config.
    pub struct Ref {
        fields: Vec<Vec<u8>>,
        words: Vec<Vec<u8>>,
        phrases: bool,
        longest: usize,
        mask_value: Vec<u8>,
        mask_in_string: Vec<u8>,
        mask_text: Vec<u8>,
    }

    const MAX_DEPTH: usize = 128;

    pub fn new(fields: &[&str], words: &[&str], mask: &str) -> Ref {
        let escaped = super::escape_json(mask);
        let mut mask_value = vec![b'"'];
        mask_value.extend_from_slice(&escaped);
        mask_value.push(b'"');
        let words: Vec<Vec<u8>> = words.iter().map(|w| w.to_lowercase().into_bytes()).collect();
        Ref {
            fields: fields.iter().map(|f| f.to_lowercase().into_bytes()).collect(),
            phrases: words.iter().any(|w| w.iter().any(|&c| !is_word_byte(c))),
            longest: words.iter().map(|w| w.len()).max().unwrap_or(0),
            words,
            mask_value,
            mask_in_string: escaped,
            mask_text: mask.as_bytes().to_vec(),
        }
    }

    impl Ref {
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
        r: &'a Ref,
        input: &'a [u8],
        pos: usize,
        /// The result so far, when something was replaced.
        out: Option<Vec<u8>>,
        /// `input[..last]` is already in `out`.
        last: usize,
    }

    impl<'a> Scan<'a> {
        fn new(r: &'a Ref, input: &'a [u8]) -> Scan<'a> {
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

    /// A small xorshift generator: the tests need reproducible randomness
    /// and the crate has no dependencies.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A word longer than the 64 bytes a scan loop reads at a time.
    const LONG: &str = "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy";

    const PIECES: &[&[u8]] = &[
        LONG.as_bytes(),
        b"secret", b"SeCrEt", b"hunter2", b"top", b"top secret", b"x-ray", b"s", b"se", b"sex",
        b"password", b"PASSWORD", b"ssn", b"a", "\u{e9}".as_bytes(), "\u{4e2d}".as_bytes(), b"_", b"9", b" ", b"  ",
        b"\t", b"\n", b",", b":", b"[", b"]", b"{", b"}", b"\"", b"\\", b"\\\"", b"\\\\", b"\\n", b"\x01",
        b"\x7f", b"\xff", b"-", b"+", b".", b"e", b"1", b"true", b"false", b"null", b"xxxxxxxxxxxxxxxx",
        // The neighbours of the word-byte ranges.
        b"/", b"0", b":", b"@", b"A", b"Z", b"[", b"^", b"`", b"z", b"{", b"\x80",
    ];

    /// A random JSON value: mostly valid, with keys that are fields,
    /// strings made of pieces (valid or not), numbers, literals and random
    /// whitespace.
    fn gen_json(rng: &mut Rng, b: &mut Vec<u8>, depth: usize) {
        const SPACES: &[&[u8]] = &[b"", b"", b" ", b"\n  ", b"\t", b"\r\n        "];
        fn string(rng: &mut Rng, b: &mut Vec<u8>) {
            b.push(b'"');
            for _ in 0..rng.below(8) {
                b.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
            b.push(b'"');
        }
        b.extend_from_slice(SPACES[rng.below(SPACES.len())]);
        let k = rng.below(10);
        if k < 2 && depth < 4 {
            b.push(b'{');
            let n = rng.below(4);
            for j in 0..n {
                b.extend_from_slice(SPACES[rng.below(SPACES.len())]);
                if rng.below(2) == 0 {
                    let keys: &[&[u8]] = &[b"\"password\"", b"\"SSN\"", b"\"Password\"", b"\"a\"", b"\"pass\\\"word\""];
                    b.extend_from_slice(keys[rng.below(keys.len())]);
                } else {
                    string(rng, b);
                }
                b.extend_from_slice(SPACES[rng.below(SPACES.len())]);
                b.push(b':');
                gen_json(rng, b, depth + 1);
                if j + 1 < n {
                    b.push(b',');
                }
            }
            b.push(b'}');
        } else if k < 4 && depth < 4 {
            b.push(b'[');
            let n = rng.below(4);
            for j in 0..n {
                gen_json(rng, b, depth + 1);
                if j + 1 < n {
                    b.push(b',');
                }
            }
            b.push(b']');
        } else if k < 7 {
            string(rng, b);
        } else if k < 9 {
            let numbers: &[&[u8]] =
                &[b"0", b"-1", b"12345678901234567890", b"-1.5e3", b"1E+5", b"2.5e-10x", b"--", b"7"];
            b.extend_from_slice(numbers[rng.below(numbers.len())]);
        } else {
            let literals: &[&[u8]] = &[b"true", b"false", b"null", b"tru", b"nul", b"falsey"];
            b.extend_from_slice(literals[rng.below(literals.len())]);
        }
        b.extend_from_slice(SPACES[rng.below(SPACES.len())]);
    }

    /// The scanner against the reference scanner on random messages built
    /// from the pieces that matter, with configs that use each strategy
    /// (one filter, several, every word start, words that hold a quote).
    /// The Go version runs the same test (TestMatchesReference) and a fuzz
    /// test.
    #[test]
    fn matches_reference() {
        let configs: &[(&[&str], &[&str])] = &[
            (&["password", "ssn"], &["secret"]),
            (&["password", "ssn"], &["secret", "hunter2"]),
            (&["ssn"], &["top secret", "x-ray", "se", "s"]),
            (&["a", "password"], &["secret", "sex", "s", "\u{e9}", "a"]),
            (&["x"], &["alpha", "beta", "gamma", "delta", "epsilon", "secret", "top", "9"]),
            (&["x"], &["alpha", "beta", "gamma", "delta", "epsilon", LONG]),
            (&["x"], &["say \"hi", "back\\slash", "tab\t", "secret"]),
            (&["password"], &[]),
        ];
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for (fields, words) in configs {
            let quoted = |l: &[&str]| {
                let l: Vec<String> =
                    l.iter().map(|s| format!("\"{}\"", String::from_utf8(escape_json(s)).unwrap())).collect();
                l.join(",")
            };
            let config = format!(r#"{{"fields": [{}], "words": [{}]}}"#, quoted(fields), quoted(words));
            let f: Redact = testing::configure(&config).unwrap();
            let r = reference::new(fields, words, "***");
            for _ in 0..20000 {
                let mut msg = Vec::new();
                if rng.below(2) == 0 {
                    for _ in 0..rng.below(40) {
                        msg.extend_from_slice(PIECES[rng.below(PIECES.len())]);
                    }
                } else {
                    gen_json(&mut rng, &mut msg, 0);
                }
                if !msg.is_empty() && rng.below(4) == 0 {
                    let at = rng.below(msg.len());
                    msg[at] = PIECES[rng.below(PIECES.len())][0];
                }
                let input = String::from_utf8_lossy(&msg);
                assert_eq!(f.redact(&msg), r.redact(&msg), "config {}, input {:?}", config, input);
            }
        }
    }
}
