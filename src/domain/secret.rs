//! Secrets are redacted by construction: `Secret` prints as a fixed-width mask
//! plus fingerprint, and only `expose()` — an explicit, greppable call — hands
//! out the value. The fingerprint (`#` + 8 hex of SHA-256) is also computed in
//! SQL by the audit trigger (`keyfall_fingerprint`), so the two must agree.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Fixed-width mask: never reveals the length of the key.
pub const MASK: &str = "••••••••";

/// Keys shorter than this show no last four characters.
const MIN_LEN_FOR_LAST_FOUR: usize = 12;

pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The plain value. Every call site is a place a secret leaves the mask.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    pub fn is_blank(&self) -> bool {
        super::registry::is_blank(self.expose())
    }

    /// `#` followed by the first 8 hex digits of SHA-256 of the UTF-8 bytes.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.expose())
    }

    /// The last four characters, only for keys long enough that they give
    /// nothing away; control characters are made visible.
    pub fn last_four(&self) -> Option<String> {
        let chars: Vec<char> = self.expose().chars().collect();
        if chars.len() < MIN_LEN_FOR_LAST_FOUR {
            return None;
        }
        let tail: String = chars[chars.len() - 4..].iter().collect();
        Some(super::text::visible(&tail).into_owned())
    }

    /// `••••••••3fA9 #1a2b3c4d`, or `(empty)` for an empty value.
    pub fn masked(&self) -> String {
        if self.is_empty() {
            return "(empty)".to_string();
        }
        match self.last_four() {
            Some(last) => format!("{MASK}{last} {}", self.fingerprint()),
            None => format!("{MASK} {}", self.fingerprint()),
        }
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret::new(self.expose().to_string())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(9);
    out.push('#');
    for byte in &digest[..4] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Whether a config field holds a secret. The registry's `apiKey` and anything
/// named like a credential (`api_key`, `clientSecret`, `password`, `token`),
/// at any depth. Mirrored by `keyfall_is_secret_key` in SQL.
pub fn is_secret_field(name: &str) -> bool {
    // ASCII-only folding, as SQL's keyfall_is_secret_key does: a Unicode
    // look-alike (KELVIN SIGN for K) must not be a secret on one side only.
    let normalized: String = name.chars().filter(|c| *c != '_' && *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    ["apikey", "secret", "password", "token", "secretkey"].iter().any(|suffix| normalized.ends_with(suffix))
}

/// A copy of `config` with every secret field replaced by its mask, at any
/// depth. Non-string secrets are masked from their JSON text.
pub fn mask_config(config: &Value) -> Value {
    match config {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let masked = if is_secret_field(k) { mask_value(v) } else { mask_config(v) };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_config).collect()),
        other => other.clone(),
    }
}

/// A copy of `config` with every secret value replaced by its fingerprint,
/// at any depth — what the audit trigger's `keyfall_redact` stores. Empty
/// strings and nulls stay; non-string secrets are fingerprinted from their
/// JSON text.
pub fn fingerprint_config(config: &Value) -> Value {
    match config {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if !is_secret_field(k) {
                        fingerprint_config(v)
                    } else {
                        match v {
                            Value::Null => Value::Null,
                            Value::String(s) if s.is_empty() => Value::String(String::new()),
                            Value::String(s) => Value::String(fingerprint(s)),
                            other => Value::String(fingerprint(&other.to_string())),
                        }
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(fingerprint_config).collect()),
        other => other.clone(),
    }
}

/// Whether `value` holds a secret-named field anywhere inside it.
pub fn contains_secret(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| is_secret_field(k) || contains_secret(v)),
        Value::Array(items) => items.iter().any(contains_secret),
        _ => false,
    }
}

fn mask_value(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        // An empty value hides nothing; showing it as "" is what tells the
        // operator the key is missing (the seed's wrong config).
        Value::String(s) if s.is_empty() => Value::String(String::new()),
        Value::String(s) => Value::String(Secret::new(s.clone()).masked()),
        other => Value::String(Secret::new(other.to_string()).masked()),
    }
}

/// Strip what a bad paste adds around a key — whitespace, line breaks and a
/// pair of quotes — and say what went.
pub fn clean_pasted_secret(raw: &str) -> (String, Vec<&'static str>) {
    let mut trimmed = Vec::new();
    let mut s = raw;
    let without_ws = s.trim();
    if without_ws.len() != s.len() {
        if s.contains(['\n', '\r']) && !without_ws.contains(['\n', '\r']) {
            trimmed.push("a line break");
        }
        if s.trim_matches(['\n', '\r']).len() != without_ws.len() {
            trimmed.push("surrounding whitespace");
        }
        s = without_ws;
    }
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            s = s[1..s.len() - 1].trim();
            trimmed.push("quotes");
            break;
        }
    }
    (s.to_string(), trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_prefix() {
        // sha256("abc") = ba7816bf...
        assert_eq!(fingerprint("abc"), "#ba7816bf");
    }

    #[test]
    fn mask_is_fixed_width_and_hides_short_keys() {
        let long = Secret::new("sk-demo-aaaaaaaaaaaaaaaaaaaa3fA9");
        assert!(long.masked().starts_with("••••••••3fA9 #"));
        let short = Secret::new("short");
        assert!(short.masked().starts_with("•••••••• #"));
        assert!(!short.masked().contains("hort"));
        assert_eq!(Secret::new("").masked(), "(empty)");
    }

    #[test]
    fn debug_and_display_never_print_the_value() {
        let s = Secret::new("sk-canary-0123456789abcdef");
        assert!(!format!("{s:?}").contains("canary"));
        assert!(!format!("{s}").contains("canary"));
    }

    #[test]
    fn secret_field_names() {
        for name in ["apiKey", "api_key", "API-KEY", "clientSecret", "password", "token"] {
            assert!(is_secret_field(name), "{name}");
        }
        for name in ["model", "max_tokens", "provider", "base_url"] {
            assert!(!is_secret_field(name), "{name}");
        }
    }
}
