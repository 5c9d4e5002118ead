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

/// Python's json module cannot read a document nested this deep: it raises
/// `RecursionError` past the interpreter's recursion limit (1000 frames,
/// less the caller's own: the test app's `get_model_config` reads 980
/// containers deep and raises at 990; a web request has more frames in
/// between). keyfall calls 900 containers or more *unreadable to the app*,
/// and means it for 10,000: between 900 and ~990 it depends on the app's
/// call stack (docs/decisions.md, "Odd numbers and deep JSON").
pub const APP_MAX_DEPTH: usize = 900;

/// Python (3.11 and later, by default) refuses to turn an integer of more
/// digits than this into an `int`: `json.loads` raises `ValueError`.
pub const APP_MAX_INT_DIGITS: usize = 4300;

/// serde_json stops at 128 levels; configs deeper than this (and not deep
/// enough to be unreadable) are read with what lies below this depth as the
/// fingerprint of its text, as redaction does (`secret::MAX_DEPTH`).
const CUT_DEPTH: usize = super::secret::MAX_DEPTH + 1;

/// The member a config read by [`read_config`] holds, alone, when the app
/// cannot read it at all: the reason. No config from the database can hold
/// it (jsonb refuses `\u0000`), and a write of it fails there.
pub const UNREADABLE_KEY: &str = "\u{0}unreadable";

/// The member [`read_config`] adds to an object it could not read exactly
/// (a number beyond what keyfall holds, nesting cut): why. Judged like any
/// field outside the registry (never); export refuses such a row, and a
/// write carrying it fails in PostgreSQL, so nothing approximated is ever
/// written back.
pub const INEXACT_KEY: &str = "\u{0}inexact";

/// Why the app cannot read this config, if [`read_config`] found so: words
/// that follow "the config" ("is nested 900 or more deep: …").
pub fn unreadable(config: &Value) -> Option<&str> {
    let map = config.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.get(UNREADABLE_KEY).and_then(Value::as_str)
}

/// Why this config was read only approximately, if it was (unreadable
/// configs included).
pub fn inexact(config: &Value) -> Option<&str> {
    unreadable(config).or_else(|| config.get(INEXACT_KEY).and_then(Value::as_str))
}

/// A config's `jsonb::text` read as the app's Python reads it, into a value
/// keyfall's judge gives the app's verdict for — never an error:
///
/// - nested [`APP_MAX_DEPTH`] containers deep, or holding an integer of more
///   than [`APP_MAX_INT_DIGITS`] digits: `{UNREADABLE_KEY: why}` (the app
///   raises reading the row, whatever else it holds);
/// - an integer beyond u64/i64 (`1e400` is printed as 401 digits: Python's
///   `int`) becomes `u64::MAX` or `i64::MIN`, and a number with a fraction
///   beyond f64 (Python's `float('inf')`) `±f64::MAX`: whole or not, its
///   sign and how it compares with any bound the registry has are the
///   app's; a fraction below f64's smallest (`1e-400`) is `0.0`, as
///   Python's `float` makes it (false, like the app's);
/// - nesting deeper than serde holds (but readable to the app): the part
///   below depth 65 becomes the fingerprint of its text.
///
/// Any approximation marks an object config with `INEXACT_KEY`.
pub fn read_config(text: &str) -> Value {
    let scan = scan(text);
    if let Some(why) = scan.unreadable {
        return Value::Object([(UNREADABLE_KEY.to_string(), Value::String(why))].into_iter().collect());
    }
    let inexact = scan.inexact.clone();
    let value = if scan.rewrite { serde_json::from_str(&rewrite(text)) } else { serde_json::from_str(text) };
    let mut value = value.unwrap_or_else(|e| Value::String(format!("unreadable JSON: {e}")));
    if let (Some(why), Some(map)) = (inexact, value.as_object_mut()) {
        map.insert(INEXACT_KEY.to_string(), Value::String(why));
    }
    value
}

/// What one pass over a config's text found.
#[derive(Debug, Default)]
struct Scan {
    /// Why the app cannot read it.
    unreadable: Option<String>,
    /// Why keyfall reads it only approximately.
    inexact: Option<String>,
    /// Whether serde needs [`rewrite`]'s text.
    rewrite: bool,
}

/// A number token as keyfall holds it: `None` when serde reads it exactly
/// as it is, else the text to read instead and whether that is exact.
fn number_stand_in(token: &str) -> Option<(String, bool)> {
    let integer = !token.contains(['.', 'e', 'E']);
    if integer {
        let fits = if token.starts_with('-') { token.parse::<i64>().is_ok() } else { token.parse::<u64>().is_ok() };
        if fits {
            return None;
        }
        let clamped = if token.starts_with('-') { i64::MIN.to_string() } else { u64::MAX.to_string() };
        return Some((clamped, false));
    }
    match token.parse::<f64>() {
        Ok(f) if f.is_infinite() => {
            let max = if f < 0.0 { -f64::MAX } else { f64::MAX };
            Some((format!("{max:e}"), false))
        }
        Ok(f) => (!same_decimal(token, f)).then(|| (format!("{f:e}"), false)),
        Err(_) => None,
    }
}

/// Whether the decimal text `token` is exactly the value `f`.
fn same_decimal(token: &str, f: f64) -> bool {
    normal_decimal(token) == normal_decimal(&format!("{f:e}"))
}

/// A decimal text as (negative, significant digits, exponent of the last
/// digit); zero is `(false, "", 0)` whatever its sign.
fn normal_decimal(text: &str) -> (bool, String, i64) {
    let (negative, body) = text.strip_prefix('-').map_or((false, text), |rest| (true, rest));
    let (mantissa, exp) = body.split_once(['e', 'E']).unwrap_or((body, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i64;
    let trimmed = digits.trim_end_matches('0');
    exp += (digits.len() - trimmed.len()) as i64;
    let trimmed = trimmed.trim_start_matches('0');
    if trimmed.is_empty() { (false, String::new(), 0) } else { (negative, trimmed.to_string(), exp) }
}

/// One pass: the deepest nesting, and every number token judged.
fn scan(text: &str) -> Scan {
    let b = text.as_bytes();
    let mut out = Scan::default();
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i);
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
                if depth >= APP_MAX_DEPTH {
                    out.unreadable = Some(format!(
                        "is nested {APP_MAX_DEPTH} or more deep: the app's json.loads raises RecursionError reading the row"
                    ));
                    return out;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let token = &text[start..i];
                let digits = token.bytes().filter(u8::is_ascii_digit).count();
                if !token.contains(['.', 'e', 'E']) && digits > APP_MAX_INT_DIGITS {
                    out.unreadable = Some(format!(
                        "holds an integer of {digits} digits: the app's json.loads raises ValueError (more than {APP_MAX_INT_DIGITS})"
                    ));
                    return out;
                }
                if let Some((_, exact)) = number_stand_in(token) {
                    out.rewrite = true;
                    if !exact && out.inexact.is_none() {
                        out.inexact = Some(format!(
                            "holds a number keyfall reads only approximately ({}…, {digits} digits)",
                            &token[..token.len().min(12)]
                        ));
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if deepest >= 128 {
        out.rewrite = true;
        out.inexact.get_or_insert_with(|| {
            format!("is nested {deepest} deep: keyfall reads what lies below depth {CUT_DEPTH} as its fingerprint")
        });
    }
    out
}

/// The text serde reads instead: number tokens replaced by their stand-ins,
/// containers at [`CUT_DEPTH`] by their fingerprint.
fn rewrite(text: &str) -> String {
    walk(text, CUT_DEPTH, |token, out| match number_stand_in(token) {
        Some((stand_in, _)) => out.push_str(&stand_in),
        None => out.push_str(token),
    })
}

/// One pass over JSON text, copying it: each number token handed to
/// `number` (which writes what stands for it), each container at
/// `max_depth` replaced by the fingerprint of its text, strings as they
/// are. Iterative: no recursion, whatever the nesting.
fn walk(text: &str, max_depth: usize, mut number: impl FnMut(&str, &mut String)) -> String {
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
                number(&text[start..i], &mut out);
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

/// Out-of-range numbers quoted, containers at `max_depth` replaced by their
/// fingerprint.
fn repair(text: &str, max_depth: usize) -> String {
    walk(text, max_depth, |token, out| {
        if token.parse::<f64>().is_ok_and(f64::is_finite) {
            out.push_str(token);
        } else {
            out.push('"');
            out.push_str(token);
            out.push('"');
        }
    })
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
    fn configs_are_read_as_the_apps_python_reads_them() {
        let digits = |n: usize| format!("1{}", "0".repeat(n - 1));
        // 1e400 as jsonb prints it: a whole number above any bound, marked.
        let v = read_config(&format!("{{\"t\": {}, \"n\": -{}}}", digits(401), digits(401)));
        assert_eq!(v["t"], json!(u64::MAX));
        assert_eq!(v["n"], json!(i64::MIN));
        assert!(inexact(&v).is_some_and(|w| w.contains("approximately")) && unreadable(&v).is_none());
        // A fraction beyond f64 is Python's inf; below its smallest, 0.0.
        let v = read_config(&format!("{{\"t\": {}.5, \"z\": 0.{}1}}", digits(401), "0".repeat(399)));
        assert_eq!(v["t"], json!(f64::MAX));
        assert_eq!(v["z"], json!(0.0));
        // Exactly held numbers leave the config as serde reads it.
        let plain = r#"{"a": 0.0000001, "b": 18446744073709551615, "c": -9223372036854775808, "d": 1.50, "e": 0}"#;
        assert_eq!(read_config(plain), serde_json::from_str::<Value>(plain).unwrap());
        assert!(inexact(&read_config(plain)).is_none());
        assert!(inexact(&read_config(r#"{"a": 0.10000000000000000001}"#)).is_some());
        // What Python's json.loads raises on.
        let deep = |n: usize| format!("{{\"x\": {}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(unreadable(&read_config(&deep(APP_MAX_DEPTH))).is_some_and(|w| w.contains("RecursionError")));
        assert!(unreadable(&read_config(&deep(APP_MAX_DEPTH - 1))).is_none());
        assert!(inexact(&read_config(&deep(APP_MAX_DEPTH - 1))).is_some_and(|w| w.contains("nested")));
        assert!(inexact(&read_config(&deep(127))).is_none());
        let big = read_config(&format!("{{\"x\": {}}}", digits(APP_MAX_INT_DIGITS + 1)));
        assert!(unreadable(&big).is_some_and(|w| w.contains("ValueError")));
        let fine = read_config(&format!("{{\"x\": {}}}", digits(APP_MAX_INT_DIGITS)));
        assert!(unreadable(&fine).is_none());
        // A string holding digits or brackets is only a string.
        let s = format!("{{\"x\": \"{}{}\"}}", "[".repeat(2000), digits(5000));
        assert_eq!(read_config(&s), serde_json::from_str::<Value>(&s).unwrap());
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
