//! Secrets are redacted by construction: `Secret` prints as a fixed-width mask
//! plus fingerprint, and only `expose()` — an explicit, greppable call — hands
//! out the value. The fingerprint (`#` + 8 hex of SHA-256) is also computed in
//! SQL by the audit trigger (`keyfall_fingerprint`), so the two must agree.
//!
//! The shapes a secret is known by (name endings, key prefixes, markers)
//! are registry data (`registry::SecretShapes`), read here and loaded into
//! the database with the rest of the registry; the rules that are code (how
//! a name is cut into words, JWTs, high entropy, URLs, assignments, JSON
//! text) are here, and their SQL twin in the migrations.

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
    /// The key's fingerprint; for a key the database already masked (a
    /// session without the right to raw keys), the one it carries.
    pub fn fingerprint(&self) -> String {
        match masked_fingerprint(self.expose()) {
            Some(fp) => fp.to_string(),
            None => fingerprint(self.expose()),
        }
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
        if masked_fingerprint(self.expose()).is_some() {
            return self.expose().to_string();
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

/// A key as the database shows it to a session that may not read raw
/// keys (`keyfall_mask_string`: the mask, maybe the last four, a space and
/// the fingerprint): its fingerprint.
pub fn masked_fingerprint(value: &str) -> Option<&str> {
    let rest = value.strip_prefix(MASK)?;
    let fp = rest.get(rest.len().checked_sub(9)?..)?;
    let before = &rest[..rest.len() - 9];
    (is_fingerprint(fp) && before.ends_with(' ')).then_some(fp)
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

/// How deep redaction walks. An object or array nested this deep (the
/// config itself is depth 0, its fields' values depth 1, …) is not walked:
/// it is replaced whole by the fingerprint of its JSON text
/// (`super::json::pg_text`, PostgreSQL's `jsonb::text`), as if it were one
/// secret. So redaction never recurses more than `MAX_DEPTH` levels, in Rust
/// or in SQL (`keyfall_redact_at`, migrations/0001_baseline.sql, section 2), whatever another client
/// wrote.
pub const MAX_DEPTH: usize = 64;

/// Whether a field of this name holds a secret (at any depth; everything
/// under it is secret too). Mirrored by `keyfall_is_secret_key` in SQL,
/// written from the registry's shapes at each load
/// (migrations/0003_secret_shapes.sql), held equal by `tests/it/secrets.rs`
/// and `tests/it/registry_data.rs`.
///
/// The name is cut into words: at every character that is not an ASCII
/// letter or digit, between a lowercase and an uppercase ASCII letter
/// (`apiKey` → `api key`), and between a letter and a digit
/// (`api_key_2` → `api key 2`). Words are ASCII-lowercased. The name is
/// secret when a word ends with one of the registry's
/// [`name_endings`](super::registry::SecretShapes::name_endings) (key,
/// keys, secret, secrets, token, password, passwords, passwd, passphrase,
/// authorization, credential, credentials, private, pwd) — or when its last
/// word is one of its
/// [`name_last_words`](super::registry::SecretShapes::name_last_words)
/// (`pass`) — so
/// `apiKey`, `APIKEY`, `api_key_2`, `apiKeys`, `secret_access_key`,
/// `private_key`, `Authorization`, `accesstoken`, `clientSecret`, `pwd`,
/// `db_pass`; but not `max_tokens` (a count: the plural `tokens` is
/// deliberately not an ending), `keywords`, `model`, `base_url`,
/// `pass_through`.
///
/// ASCII-only folding, as SQL does it: a Unicode look-alike (KELVIN SIGN
/// for K) is a separator on both sides, never a secret on one side only.
pub fn is_secret_field(name: &str) -> bool {
    let shapes = super::registry::secret_shapes();
    let words = name_words(name);
    words.last().is_some_and(|w| shapes.name_last_words.contains(&w.as_str()))
        || words.iter().any(|w| shapes.name_endings.iter().any(|end| w.ends_with(end)))
}

fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            let boundary = (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                || (p.is_ascii_alphabetic() && c.is_ascii_digit())
                || (p.is_ascii_digit() && c.is_ascii_alphabetic());
            if boundary && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        }
        word.push(c.to_ascii_lowercase());
        prev = Some(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The characters trimmed from a value before its shape is judged: space,
/// tab, line feed, carriage return, form feed (SQL: `btrim(v, E' \t\n\r\f')`).
fn is_trimmed(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C')
}

/// Whether a string value is shaped like a secret, whatever its field is
/// called. Mirrored by `keyfall_is_secret_value` in SQL (migrations/0001_baseline.sql, section 2).
/// Judged on the value with space, tab, CR, LF and FF trimmed
/// from both ends; it is a secret when it
///
/// 1. is **key-shaped** ([`is_key_shaped`]: `sk-…`, `AKIA…`, `Bearer …`,
///    PEM, a JWT, high-entropy);
/// 2. holds **URL credentials**: after any `://`, the authority (up to the
///    first `/ ? #` or space, tab, CR, LF, FF) has a userinfo (before its
///    last `@`) with a non-empty password after its first `:`, or a userinfo
///    without `:` that is key-shaped (`postgres://app:PW@db/x`,
///    `https://ghp_…@github.com`);
/// 3. holds a **secret assignment**: cut at `& ; # ? ,`, quotes, space, tab,
///    CR, LF and FF, some piece is `NAME=VALUE` (at its first `=`) with a
///    non-empty VALUE and a secret NAME ([`is_secret_field`]) or a
///    key-shaped VALUE — keys in a URL's query or fragment
///    (`…/v1?api_key=…`, `…#access_token=…`), libpq and ADO connection
///    strings (`host=db password=…`, `Server=x;Pwd=…`);
/// 4. is **JSON text holding a secret**: it starts with `{` or `[`, and one
///    of its string literals (`"…"` with backslash escapes, a backslash
///    standing for the character after it) is a secret name followed by `:`,
///    or is itself a secret value by these rules — so JSON inside a string
///    inside a string is judged too, at any depth. The text need not be
///    valid JSON: a cut-off config still holds its key.
///
/// Such a value is a secret **whole**: masked and fingerprinted as one
/// string, never redacted in place.
pub fn is_secret_value(value: &str) -> bool {
    let t = value.trim_matches(is_trimmed);
    is_key_shaped(t)
        || (t.contains('@') && has_url_credentials(t))
        || (t.contains('=') && has_secret_assignment(t))
        || is_json_with_secret(t)
}

/// A string that is a key by itself (SQL: `keyfall_is_key_shaped`, written
/// from the registry's shapes at each load): it
///
/// 1. starts with one of the registry's
///    [`value_prefixes`](super::registry::SecretShapes::value_prefixes)
///    followed by at least its `min_after` characters (any characters, or
///    each from `[A-Z0-9]`): `sk-`, `sk_`, `rw-` and 8 (OpenAI,
///    Stripe-style and Runware keys), `AKIA`, `ASIA` and 12 of `[A-Z0-9]`
///    (AWS access key ids);
/// 2. is `Bearer` (any ASCII case), one or more spaces or tabs, then at
///    least 8 characters none of which is space, tab, CR, LF or FF, to the
///    end (an HTTP authorization value);
/// 3. contains one of the registry's
///    [`value_markers`](super::registry::SecretShapes::value_markers)
///    anywhere: `-----BEGIN ` (a PEM block: private keys, certificates);
/// 5. contains a **JWT**: `eyJ` at the start or after a character that is
///    not `[A-Za-z0-9_-]`, then one or more of `[A-Za-z0-9_-]`, `.`, one or
///    more of them, `.` (header, payload, signature);
/// 6. is **high-entropy**: see [`is_high_entropy`].
pub fn is_key_shaped(t: &str) -> bool {
    use super::registry::After;
    let shapes = super::registry::secret_shapes();
    let prefixed = shapes.value_prefixes.iter().any(|p| {
        t.strip_prefix(p.prefix).is_some_and(|rest| match p.after {
            After::Any => rest.chars().count() >= p.min_after,
            After::UpperOrDigit => {
                rest.chars().take(p.min_after).filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit()).count()
                    == p.min_after
            }
        })
    });
    if prefixed {
        return true;
    }
    if t.get(..6).is_some_and(|b| b.eq_ignore_ascii_case("bearer")) {
        let rest = &t[6..];
        let token = rest.trim_start_matches([' ', '\t']);
        if token.len() < rest.len() && token.chars().count() >= 8 && !token.chars().any(is_trimmed) {
            return true;
        }
    }
    shapes.value_markers.iter().any(|m| t.contains(m)) || has_jwt(t) || is_high_entropy(t)
}

fn is_base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Rule 5 of [`is_key_shaped`]. SQL:
/// `t ~ '(^|[^A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.'`.
fn has_jwt(t: &str) -> bool {
    let b = t.as_bytes();
    // A run of base64url characters from `i`, then a dot: the index after it.
    let segment = |i: usize| {
        let end = i + b[i..].iter().take_while(|c| is_base64url(**c)).count();
        (end > i && b.get(end) == Some(&b'.')).then_some(end + 1)
    };
    t.match_indices("eyJ")
        .any(|(i, _)| (i == 0 || !is_base64url(b[i - 1])) && segment(i + 3).and_then(segment).is_some())
}

/// Rule 2 of [`is_secret_value`].
fn has_url_credentials(t: &str) -> bool {
    t.match_indices("://").any(|(i, _)| {
        let rest = &t[i + 3..];
        let end = rest.find(|c| matches!(c, '/' | '?' | '#') || is_trimmed(c)).unwrap_or(rest.len());
        let authority = &rest[..end];
        let Some(at) = authority.rfind('@') else { return false };
        match authority[..at].split_once(':') {
            Some((_, password)) => !password.is_empty(),
            None => is_key_shaped(&authority[..at]),
        }
    })
}

/// Rule 3 of [`is_secret_value`].
fn has_secret_assignment(t: &str) -> bool {
    t.split(|c| matches!(c, '&' | ';' | '#' | '?' | ',' | '"' | '\'') || is_trimmed(c)).any(|piece| {
        piece
            .split_once('=')
            .is_some_and(|(name, value)| !value.is_empty() && (is_secret_field(name) || is_key_shaped(value)))
    })
}

/// Rule 4 of [`is_secret_value`]. SQL: the literals are the matches of
/// `"((?:[^"\\]|\\.)*)"([ \t\n\r]*:)?`, each unescaped by
/// `regexp_replace(…, '\\(.)', '\1', 'g')`.
fn is_json_with_secret(t: &str) -> bool {
    if !t.starts_with(['{', '[']) {
        return false;
    }
    let b = t.as_bytes();
    let mut i = 0;
    while let Some(open) = b[i..].iter().position(|c| *c == b'"').map(|p| p + i) {
        let mut j = open + 1;
        let mut literal = String::new();
        loop {
            match b.get(j) {
                // Unterminated: no literal from here on.
                None => return false,
                Some(b'"') => break,
                Some(b'\\') if j + 1 < b.len() => {
                    let c = t[j + 1..].chars().next().unwrap_or('\\');
                    literal.push(c);
                    j += 1 + c.len_utf8();
                }
                Some(b'\\') => return false,
                Some(_) => {
                    let c = t[j..].chars().next().unwrap_or('"');
                    literal.push(c);
                    j += c.len_utf8();
                }
            }
        }
        i = j + 1;
        let name = b[i..].iter().find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b':');
        if (name && is_secret_field(&literal)) || is_secret_value(&literal) {
            return true;
        }
    }
    false
}

/// The high-entropy rule, for strings that are not otherwise recognisable
/// as keys (an AWS secret access key, a GitHub token, a hex or base64
/// secret under an innocent name). A string — already trimmed as in
/// [`is_secret_value`] — is high-entropy when all of these hold:
///
/// - it is at least 32 characters long;
/// - every character is one of `A–Z a–z 0–9 + / = _ -` (so no spaces, and no
///   `.`, `:` or `@`: URLs, dotted model names, dates and e-mail addresses
///   never qualify);
/// - it has at least one ASCII letter and at least one digit;
/// - it has at least 8 *class changes*: adjacent characters that are both
///   letters or digits and of different classes among lowercase, uppercase
///   and digit (`aB`, `B7`, `7c`; a separator between them breaks the pair).
///   Random keys have many (a random base64 string changes class at about
///   60% of its characters, random hex at about 45%); names made of words
///   have few (`anthropic/claude-3-5-sonnet-20241022` has none,
///   `accounts/fireworks/models/llama-v3p1-405b-instruct` has 4);
/// - it is not a UUID (8-4-4-4-12 hex digits).
///
/// SQL counts class changes with
/// `regexp_count(t, '[a-z](?=[A-Z0-9])|[A-Z](?=[a-z0-9])|[0-9](?=[A-Za-z])')`.
pub fn is_high_entropy(t: &str) -> bool {
    if t.len() < 32 || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-')) {
        return false;
    }
    let b = t.as_bytes();
    if !b.iter().any(u8::is_ascii_alphabetic) || !b.iter().any(u8::is_ascii_digit) || is_uuid(t) {
        return false;
    }
    let class = |c: u8| match c {
        b'a'..=b'z' => Some(0),
        b'A'..=b'Z' => Some(1),
        b'0'..=b'9' => Some(2),
        _ => None,
    };
    let changes = b.windows(2).filter(|w| matches!((class(w[0]), class(w[1])), (Some(x), Some(y)) if x != y)).count();
    changes >= 8
}

fn is_uuid(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// Whether `s` is a fingerprint as keyfall writes them: `#` and 8 lowercase
/// hex digits. Redaction leaves such strings as they are (in Rust and SQL),
/// so redacting twice changes nothing.
pub fn is_fingerprint(s: &str) -> bool {
    s.len() == 9 && s.starts_with('#') && s[1..].bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether the value at `path` (field names, outermost first) is a secret:
/// a secret-named field on the path, or a string shaped like a secret.
pub fn is_secret_at<'a>(path: impl IntoIterator<Item = &'a str>, value: &Value) -> bool {
    path.into_iter().any(is_secret_field) || matches!(value, Value::String(s) if is_secret_value(s))
}

/// The fingerprint of any JSON value: of a string's text, of anything else's
/// JSON text as PostgreSQL prints it (`jsonb::text`).
pub fn fingerprint_value(value: &Value) -> String {
    match value {
        Value::String(s) => match masked_fingerprint(s) {
            Some(fp) => fp.to_string(),
            None => fingerprint(s),
        },
        other => fingerprint(&super::json::pg_text(other)),
    }
}

/// The one walk behind `mask_config` and `fingerprint_config`: every secret
/// leaf — a non-empty, non-null scalar under a secret-named field, or a
/// string shaped like a secret anywhere — goes through `leaf`; an object or
/// array at `MAX_DEPTH` through `deep`. Empty strings, nulls and strings
/// that already are fingerprints stay. Mirrored by `keyfall_redact_at`.
fn redact(
    value: &Value,
    depth: usize,
    secret: bool,
    leaf: &dyn Fn(&Value) -> Value,
    deep: &dyn Fn(&Value) -> Value,
) -> Value {
    match value {
        Value::Object(_) | Value::Array(_) if depth >= MAX_DEPTH => deep(value),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact(v, depth + 1, secret || is_secret_field(k), leaf, deep)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(v, depth + 1, secret, leaf, deep)).collect()),
        Value::Null => Value::Null,
        Value::String(s) if s.is_empty() || is_fingerprint(s) => value.clone(),
        Value::String(s) if secret || is_secret_value(s) => leaf(value),
        Value::String(_) => value.clone(),
        other if secret => leaf(other),
        other => other.clone(),
    }
}

/// A copy of `config` with every secret replaced by its mask (`Secret::masked`),
/// at any depth, by name or by shape; non-string secrets are masked from
/// their JSON text. An object or array nested `MAX_DEPTH` deep shows as the
/// mask and its fingerprint.
pub fn mask_config(config: &Value) -> Value {
    mask_within(config, false)
}

/// `mask_config` for a value found under a field: `secret` says the field
/// (or one above it) is secret-named, so every leaf inside is masked.
/// Fingerprints (what the audit log holds) stay fingerprints.
pub fn mask_within(value: &Value, secret: bool) -> Value {
    redact(
        value,
        0,
        secret,
        &|v| match v {
            Value::String(s) => Value::String(Secret::new(s.clone()).masked()),
            other => Value::String(Secret::new(super::json::pg_text(other)).masked()),
        },
        &|v| Value::String(format!("{MASK} {}", fingerprint_value(v))),
    )
}

/// A copy of `config` with every secret value replaced by its fingerprint,
/// at any depth, by name or by shape — exactly what the audit trigger's
/// `keyfall_redact` stores (`tests/it/secrets.rs` holds the two equal).
/// Empty strings, nulls and fingerprints stay; non-string secrets are
/// fingerprinted from their JSON text; an object or array nested
/// `MAX_DEPTH` deep becomes the fingerprint of its JSON text.
pub fn fingerprint_config(config: &Value) -> Value {
    redact(config, 0, false, &|v| Value::String(fingerprint_value(v)), &|v| Value::String(fingerprint_value(v)))
}

/// An audit `before`/`after` document (`{"config": …, "is_active": …}`, a
/// whole chain or policy row, a reveal's `{"apiKey": "#…"}`) redacted like
/// a config, each top-level member at depth 0 — as the trigger redacts the
/// config it puts there. Rows the trigger wrote are unchanged by it (a
/// fingerprint stays a fingerprint); rows written before secrets were known
/// by shape are redacted on the way out.
pub fn fingerprint_document(doc: &Value) -> Value {
    match doc {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let leaf = |v: &Value| Value::String(fingerprint_value(v));
                    (k.clone(), redact(v, 0, is_secret_field(k), &leaf, &leaf))
                })
                .collect(),
        ),
        other => fingerprint_config(other),
    }
}

/// Whether `value` is or holds a fingerprint (`#` and 8 lowercase hex
/// digits) anywhere: an audit value that stands for a secret, by name or by
/// shape, which cannot be put back as a value.
pub fn contains_fingerprint(value: &Value) -> bool {
    match value {
        Value::String(s) => is_fingerprint(s),
        Value::Object(map) => map.values().any(contains_fingerprint),
        Value::Array(items) => items.iter().any(contains_fingerprint),
        _ => false,
    }
}

/// A string taken from a config for a message or a summary: masked when it
/// is shaped like a secret (a key pasted into `model` is not quoted back).
pub fn shape_masked(s: &str) -> std::borrow::Cow<'_, str> {
    if is_secret_value(s) { Secret::new(s.to_string()).masked().into() } else { s.into() }
}

/// A message (a notice, an error, a warning) with every secret-shaped part
/// masked: each space-separated word that is shaped like a secret — as it
/// stands, or without the brackets, quotes and punctuation around it
/// (`(postgres://app:PW@db/x);`, `"sk-…",`) — is masked in place; and if
/// what is left is still shaped like a secret (`Bearer` and its token, two
/// words), the whole text is.
pub fn mask_shapes_in_text(text: &str) -> std::borrow::Cow<'_, str> {
    let around = |c: char| "()[]{}<>,;:.!?'\"`".contains(c);
    let secret_word = |w: &str| is_secret_value(w) || is_secret_value(w.trim_matches(around));
    let words: std::borrow::Cow<'_, str> = if text.split(' ').any(secret_word) {
        text.split(' ')
            .map(|w| if secret_word(w) { Secret::new(w.to_string()).masked() } else { w.to_string() })
            .collect::<Vec<_>>()
            .join(" ")
            .into()
    } else {
        text.into()
    };
    if is_secret_value(&words) { Secret::new(text.to_string()).masked().into() } else { words }
}

/// Whether `value` holds a secret anywhere inside it: a secret-named field
/// (whatever it holds, a fingerprint too), a string shaped like a secret, or
/// nesting as deep as `MAX_DEPTH` (redaction hides it whole).
pub fn contains_secret(value: &Value) -> bool {
    fn walk(value: &Value, depth: usize) -> bool {
        match value {
            Value::Object(_) | Value::Array(_) if depth >= MAX_DEPTH => true,
            Value::Object(map) => map.iter().any(|(k, v)| is_secret_field(k) || walk(v, depth + 1)),
            Value::Array(items) => items.iter().any(|v| walk(v, depth + 1)),
            Value::String(s) => is_secret_value(s),
            _ => false,
        }
    }
    walk(value, 0)
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
    fn messages_mask_each_secret_shaped_word() {
        let text = "connection lost (postgres://app:hunter2@db/x); retry with sk-abcdefghijkl, or not";
        let shown = mask_shapes_in_text(text);
        assert!(!shown.contains("hunter2") && !shown.contains("sk-abcdefghijkl"), "{shown}");
        assert!(shown.starts_with("connection lost ") && shown.ends_with(" or not"), "{shown}");
        assert_eq!(mask_shapes_in_text("saved acme-studio openai v3"), "saved acme-studio openai v3");
        assert!(!mask_shapes_in_text("Bearer abcdefgh1234").contains("abcdefgh"));
    }

    #[test]
    fn secret_field_names() {
        for name in ["apiKey", "api_key", "API-KEY", "clientSecret", "password", "token"] {
            assert!(is_secret_field(name), "{name}");
        }
        for name in
            ["apiKeys", "api_key_2", "secret_access_key", "private_key", "Authorization", "APIKEY", "accessToken"]
        {
            assert!(is_secret_field(name), "{name}");
        }
        for name in ["model", "max_tokens", "provider", "base_url", "keywords", "temperature", "image_size", "note"] {
            assert!(!is_secret_field(name), "{name}");
        }
    }
}
