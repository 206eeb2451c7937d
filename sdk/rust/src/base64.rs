//! Base64 (RFC 4648), standard and URL-safe alphabets: JSON Web Tokens use
//! the URL-safe one without padding, HTTP Basic credentials the standard one.
//!
//! Decoding accepts exactly what Go's `encoding/base64` accepts (its
//! `StdEncoding` and `RawURLEncoding`), so a Rust filter and a Go filter agree
//! on every token: CR and LF are skipped, and the unused bits of the last
//! character need not be zero.

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode_with(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity((data.len() + 2) / 3 * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn value(c: u8, url: bool) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as u32),
        b'a'..=b'z' => Some((c - b'a' + 26) as u32),
        b'0'..=b'9' => Some((c - b'0' + 52) as u32),
        b'+' if !url => Some(62),
        b'/' if !url => Some(63),
        b'-' if url => Some(62),
        b'_' if url => Some(63),
        _ => None,
    }
}

fn decode_with(s: &[u8], url: bool, padded: bool) -> Option<Vec<u8>> {
    let filtered: Vec<u8>;
    let mut s = s;
    if s.iter().any(|&c| c == b'\r' || c == b'\n') {
        filtered = s.iter().copied().filter(|&c| c != b'\r' && c != b'\n').collect();
        s = &filtered;
    }
    if padded {
        if s.len() % 4 != 0 {
            return None;
        }
        let pads = s.iter().rev().take_while(|&&c| c == b'=').count();
        if pads > 2 {
            return None;
        }
        s = &s[..s.len() - pads];
    }
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c, url)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

/// Standard base64 with `=` padding.
pub fn encode(data: &[u8]) -> String {
    encode_with(data, STD, true)
}

/// Decodes standard base64 with `=` padding; `None` when malformed.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    decode_with(s.as_bytes(), false, true)
}

/// URL-safe base64 without padding, as in JSON Web Tokens.
pub fn encode_url(data: &[u8]) -> String {
    encode_with(data, URL, false)
}

/// Decodes URL-safe base64 without padding; `None` when malformed (padding
/// included).
pub fn decode_url(s: &str) -> Option<Vec<u8>> {
    decode_with(s.as_bytes(), true, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4648 section 10.
    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc).as_deref(), Some(plain.as_bytes()));
            let url = enc.trim_end_matches('=');
            assert_eq!(encode_url(plain.as_bytes()), url);
            assert_eq!(decode_url(url).as_deref(), Some(plain.as_bytes()));
        }
    }

    #[test]
    fn alphabets_differ() {
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
        assert_eq!(encode_url(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode_url("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(decode_url("+/8"), None);
        assert_eq!(decode("-_8="), None);
    }

    #[test]
    fn malformed_input_is_refused() {
        assert_eq!(decode("Zg="), None, "short padding");
        assert_eq!(decode("Zm9v\r\nYg==").as_deref(), Some(&b"foob"[..]), "CR LF skipped");
        assert_eq!(decode_url("Zg=="), None, "padding in url form");
        assert_eq!(decode_url("Z"), None, "one char");
        assert_eq!(decode_url("Zm 9"), None, "space");
    }

    #[test]
    fn trailing_bits_are_ignored_as_in_go() {
        assert_eq!(decode("Zh==").as_deref(), Some(&b"f"[..]));
        assert_eq!(decode_url("Zh").as_deref(), Some(&b"f"[..]));
    }
}
