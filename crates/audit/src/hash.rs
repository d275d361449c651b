//! What an entry's values become before they are written: every string in
//! request and response data is replaced by its HMAC, walked deeply, as
//! OpenBao's `HashStructure` does. Left as they are: numbers, booleans,
//! null, map keys, strings that are RFC 3339 times, and the values of the
//! mount's non-HMAC keys (`audit_non_hmac_request_keys`,
//! `audit_non_hmac_response_keys`).

use serde_json::Value;

use crate::salt::Salt;

/// Hashes every string in `value` in place, except the values of keys in
/// `keep` (at any depth) and RFC 3339 times.
pub fn hash_value(salt: &Salt, value: &mut Value, keep: &[String]) {
    match value {
        Value::String(s) => {
            if !is_rfc3339(s) {
                *s = salt.hash(s.as_bytes());
            }
        }
        Value::Array(items) => {
            for v in items {
                hash_value(salt, v, keep);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if keep.iter().any(|n| n == k) {
                    continue;
                }
                hash_value(salt, v, keep);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Hashes `s` in place unless it is empty (OpenBao leaves an absent token
/// or accessor absent).
pub fn hash_string(salt: &Salt, s: &mut String) {
    if !s.is_empty() {
        *s = salt.hash(s.as_bytes());
    }
}

/// Whether `s` parses as Go's `time.RFC3339`
/// (`2006-01-02T15:04:05Z07:00`, optional fractional seconds, `Z` or a
/// `±hh:mm` offset), the test OpenBao applies before hashing a string.
/// Written by hand: a dozen fixed-position checks do not justify a date
/// crate, and no allocation happens on this per-string path.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    if !(digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return false;
    }
    let (month, day) = (num(5..7), num(8..10));
    let (hour, min, sec) = (num(11..13), num(14..16), num(17..19));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [sign, h1, h2, b':', m1, m2]
            if (*sign == b'+' || *sign == b'-')
                && [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()) =>
        {
            let (h, m) = (
                u32::from(h1 - b'0') * 10 + u32::from(h2 - b'0'),
                u32::from(m1 - b'0') * 10 + u32::from(m2 - b'0'),
            );
            h <= 23 && m <= 59
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_times_as_go_parses_them() {
        for ok in [
            "2026-12-05T11:36:26.619459835Z",
            "2026-12-05T11:36:26Z",
            "2026-12-05T11:36:26+02:00",
            "2026-12-05t11:36:26.1-07:30",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-12-05",
            "2026-12-05 11:36:26Z",
            "2026-13-05T11:36:26Z",
            "2026-12-05T24:00:00Z",
            "2026-12-05T11:36:26.Z",
            "2026-12-05T11:36:26+0200",
            "2026-12-05T11:36:26Zjunk",
            "hunter2",
            "२०२६-12-05T11:36:26Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn strings_are_hashed_deeply_and_the_rest_kept() {
        let salt = Salt::from_bytes(b"salt");
        let mut v = json!({
            "password": "hunter2",
            "n": 5,
            "ok": true,
            "none": null,
            "created_time": "2026-12-05T11:36:26.619459835Z",
            "deletion_time": "",
            "list": ["a", 1, {"deep": "b"}],
            "keep_me": "clear",
            "nested": {"keep_me": "also clear", "other": "c"}
        });
        hash_value(&salt, &mut v, &["keep_me".to_string()]);
        let h = |s: &str| salt.hash(s.as_bytes());
        assert_eq!(
            v,
            json!({
                "password": h("hunter2"),
                "n": 5,
                "ok": true,
                "none": null,
                "created_time": "2026-12-05T11:36:26.619459835Z",
                "deletion_time": h(""),
                "list": [h("a"), 1, {"deep": h("b")}],
                "keep_me": "clear",
                "nested": {"keep_me": "also clear", "other": h("c")}
            })
        );
        let mut empty = String::new();
        hash_string(&salt, &mut empty);
        assert_eq!(empty, "");
    }
}
