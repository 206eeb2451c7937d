//! Durations written as Go writes them ("300ms", "1.5h", "2h45m"): the
//! form of every duration in a Sluice config, so a filter reads its own
//! settings the way the proxy reads its.

use crate::Error;

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),   // U+00B5 micro sign
    ("\u{3bc}s", 1_000),  // U+03BC Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

fn invalid(s: &str) -> Error {
    Error::new(format!("time: invalid duration \"{}\"", s))
}

/// Parses a duration exactly as Go's `time.ParseDuration` does: a sign, then
/// one or more decimal numbers each with a unit (`ns`, `us`/`µs`, `ms`, `s`,
/// `m`, `h`), such as `"-1.5h"` or `"2h45m"`. `"0"` needs no unit.
///
/// Returns nanoseconds, which may be negative.
///
/// # Errors
///
/// When `s` is not a duration or does not fit an `i64` of nanoseconds; the
/// messages are Go's.
pub fn parse(s: &str) -> Result<i64, Error> {
    let orig = s;
    let mut s = s.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid(orig));
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid(orig));
        }
        // The integer part.
        let before = s.len();
        let mut v: u64 = 0;
        while let Some(&c) = s.first() {
            if !c.is_ascii_digit() {
                break;
            }
            if v > LIMIT / 10 {
                return Err(invalid(orig));
            }
            v = v * 10 + (c - b'0') as u64;
            if v > LIMIT {
                return Err(invalid(orig));
            }
            s = &s[1..];
        }
        let pre = before != s.len();
        // The fraction: digits past what fits are read and ignored.
        let mut f: u64 = 0;
        let mut scale = 1.0f64;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let mut overflow = false;
            while let Some(&c) = s.first() {
                if !c.is_ascii_digit() {
                    break;
                }
                s = &s[1..];
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + (c - b'0') as u64;
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid(orig));
        }
        // The unit.
        let i = s.iter().position(|&c| c == b'.' || c.is_ascii_digit()).unwrap_or(s.len());
        if i == 0 {
            return Err(Error::new(format!("time: missing unit in duration \"{}\"", orig)));
        }
        let (u, rest) = s.split_at(i);
        s = rest;
        let unit = match UNITS.iter().find(|(name, _)| name.as_bytes() == u) {
            Some((_, unit)) => *unit,
            None => {
                return Err(Error::new(format!(
                    "time: unknown unit \"{}\" in duration \"{}\"",
                    String::from_utf8_lossy(u),
                    orig
                )))
            }
        };
        if v > LIMIT / unit {
            return Err(invalid(orig));
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid(orig));
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid(orig));
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid(orig));
    }
    Ok(d as i64)
}

#[cfg(test)]
mod tests {
    use super::parse;

    // Cases from Go's time package tests (parseDurationTests).
    #[test]
    fn parses_like_go() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("-5s", -5_000_000_000),
            ("+5s", 5_000_000_000),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5_000_000_000),
            ("5.6s", 5_600_000_000),
            ("5.s", 5_000_000_000),
            (".5s", 500_000_000),
            ("1.0s", 1_000_000_000),
            ("1.00s", 1_000_000_000),
            ("1.004s", 1_004_000_000),
            ("1.0040s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{b5}s", 12_000),
            ("12\u{3bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14_000_000_000),
            ("15m", 900_000_000_000),
            ("16h", 57_600_000_000_000),
            ("3h30m", 12_600_000_000_000),
            ("10.5s4m", 250_500_000_000),
            ("-2m3.4s", -123_400_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("39h9m14.425s", 140_954_425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-9223372036854775808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 360_000_000_000),
            ("0.830103483285477580700h", 2_988_372_539_827),
        ];
        for (s, want) in ok {
            assert_eq!(parse(s).map_err(|e| e.to_string()), Ok(*want), "{}", s);
        }
        let bad = [
            "", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "\u{ffff}", "hello \u{ffff} world",
            "9223372036854775808ns", "9223372036854775.808us", "9223372036854ms775us808ns",
            "-9223372036854775809ns",
        ];
        for s in bad {
            assert!(parse(s).is_err(), "accepted {:?}", s);
        }
        assert_eq!(parse("1d").unwrap_err().to_string(), "time: unknown unit \"d\" in duration \"1d\"");
        assert_eq!(parse("soon").unwrap_err().to_string(), "time: invalid duration \"soon\"");
    }
}
