//! JSON as PostgreSQL prints it, and JSON text read without failing.
//!
//! `pg_text` is `jsonb::text` computed in Rust, so a fingerprint of a
//! non-string value (or of a subtree too deep to walk) is the same on both
//! sides. `parse_lenient` reads what another client may have stored and
//! serde cannot hold — a number beyond f64, nesting beyond serde's limit —
//! into a value instead of an error.

use std::fmt::Write as _;

use serde_json::Value;

/// The text PostgreSQL's `jsonb` output gives for `value`: `", "` and `": "`
/// separators, object keys ordered by byte length then bytes (jsonb's own
/// order), strings escaped as `escape_json` does (`\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, other control characters as `\u00xx`, everything else
/// as is), numbers in plain decimal notation, never an exponent.
///
/// Numbers agree with PostgreSQL exactly for integers and for decimals in
/// their shortest form — which is what keyfall reads back from `jsonb::text`;
/// a number another client wrote with trailing zeros (`1.50`) keeps them in
/// PostgreSQL but is `1.5` once it is an f64 here.
pub fn pg_text(value: &Value) -> String {
    let mut out = String::new();
    write_pg(value, &mut out);
    out
}

fn write_pg(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&pg_number(&n.to_string())),
        Value::String(s) => write_pg_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_pg(v, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_pg_string(k, out);
                out.push_str(": ");
                write_pg(v, out);
            }
            out.push('}');
        }
    }
}

fn write_pg_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// serde's number text (`1e20`, `1.5e-7`, `-0.0`) as PostgreSQL's numeric
/// prints it (`100000000000000000000`, `0.00000015`, `0.0`).
fn pg_number(text: &str) -> String {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let plain = match body.split_once(['e', 'E']) {
        None => body.to_string(),
        Some((mantissa, exp)) => {
            let Ok(exp) = exp.parse::<i64>() else { return text.to_string() };
            let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            let digits = format!("{int}{frac}");
            let point = int.len() as i64 + exp;
            let s = if point <= 0 {
                format!("0.{}{digits}", "0".repeat((-point) as usize))
            } else if point as usize >= digits.len() {
                format!("{digits}{}", "0".repeat(point as usize - digits.len()))
            } else {
                format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
            };
            // Scale: as many decimals as the exponent form implied, so
            // trailing zeros that serde left out stay out.
            let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
            let s = s.trim_start_matches('0');
            if s.is_empty() || s.starts_with('.') { format!("0{s}") } else { s.to_string() }
        }
    };
    let zero = plain.bytes().all(|b| b == b'0' || b == b'.');
    if negative && !zero { format!("-{plain}") } else { plain }
}

/// JSON text (as PostgreSQL prints `jsonb`) read into a value without
/// failing: a number beyond f64 (`1e400` prints as 401 digits) becomes a
/// string of its digits; an object or array nested `max_depth` deep (the
/// top level is depth 0) becomes the fingerprint of its text — which is
/// what redaction makes of it (`secret::MAX_DEPTH`), so nothing deeper is
/// ever parsed. Text that is still not JSON becomes a string saying why
/// (serde's message: a position, never the text).
pub fn parse_lenient(text: &str, max_depth: usize) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    let repaired = repair(text, max_depth);
    serde_json::from_str(&repaired).unwrap_or_else(|e| Value::String(format!("unreadable JSON: {e}")))
}

/// One pass over the text: out-of-range numbers quoted, containers at
/// `max_depth` replaced by their fingerprint. Iterative: no recursion.
fn repair(text: &str, max_depth: usize) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' => {
                let end = string_end(b, i);
                out.push_str(&text[i..end]);
                i = end;
            }
            b'{' | b'[' if depth >= max_depth => {
                let end = container_end(b, i);
                out.push('"');
                out.push_str(&super::secret::fingerprint(&text[i..end]));
                out.push('"');
                i = end;
            }
            b'{' | b'[' => {
                depth += 1;
                out.push(c as char);
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                out.push(c as char);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let token = &text[start..i];
                if token.parse::<f64>().is_ok_and(f64::is_finite) {
                    out.push_str(token);
                } else {
                    out.push('"');
                    out.push_str(token);
                    out.push('"');
                }
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// The index just past the string starting at `start` (a `"`).
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The index just past the object or array starting at `start`.
fn container_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pg_text_is_jsonb_text() {
        assert_eq!(
            pg_text(&json!({"bb": [1, "x\n"], "a": null, "c": true})),
            r#"{"a": null, "c": true, "bb": [1, "x\n"]}"#
        );
        assert_eq!(pg_text(&json!(1e20)), "100000000000000000000");
        assert_eq!(pg_text(&json!(1.5e-7)), "0.00000015");
        assert_eq!(pg_text(&json!(100.0)), "100.0");
        assert_eq!(pg_text(&json!(-0.0)), "0.0");
        assert_eq!(pg_text(&json!("\u{1}é\u{7f}")), "\"\\u0001é\u{7f}\"");
    }

    #[test]
    fn lenient_reads_what_serde_cannot() {
        let big = format!("{{\"t\": 1{}}}", "0".repeat(400));
        assert_eq!(parse_lenient(&big, 64)["t"], Value::String(format!("1{}", "0".repeat(400))));
        let deep = format!("{{\"a\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
        let v = parse_lenient(&deep, 64);
        assert!(v["a"].is_array());
        let nested = format!("{}1{}", "[".repeat(5000 - 63), "]".repeat(5000 - 63));
        let mut inner = &v["a"];
        for _ in 0..63 {
            inner = &inner[0];
        }
        assert_eq!(inner, &Value::String(super::super::secret::fingerprint(&nested)));
        assert!(parse_lenient("{\"a\": tru", 64).as_str().unwrap().starts_with("unreadable JSON"));
    }
}
