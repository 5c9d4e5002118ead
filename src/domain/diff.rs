//! Field-level differences between two versions of a setting, as the audit
//! log stores them (`{"config": {...}, "is_active": .., "version": ..}`),
//! for the audit view, the save preview and revert. Secrets are compared
//! and shown by fingerprint or mask only.

use serde::Serialize;
use serde_json::{Map, Value};

use super::secret::{is_secret_field, mask_within};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// `config.model`, `is_active`.
    pub field: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Every field that differs between `before` and `after` (either may be
/// absent: a creation or a deletion). Nested objects are compared by path;
/// `version` is left out (it always moves).
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out.retain(|c| c.field != "version");
    out
}

fn walk(prefix: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    let empty = Map::new();
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                walk(&path, b.get(k), a.get(k), out);
            }
        }
        // A creation or deletion: list the object's fields one by one.
        (Some(Value::Object(b)), None) => {
            walk(prefix, Some(&Value::Object(b.clone())), Some(&Value::Object(empty)), out)
        }
        (None, Some(Value::Object(a))) => {
            walk(prefix, Some(&Value::Object(empty)), Some(&Value::Object(a.clone())), out)
        }
        (b, a) if b != a => out.push(FieldChange { field: prefix.to_string(), before: b.cloned(), after: a.cloned() }),
        _ => {}
    }
}

/// A value for display in a diff: secrets (by their field name, at any
/// depth, or by their shape) masked — audit values are already
/// fingerprints, live values are masked here.
pub fn shown(field: &str, value: Option<&Value>) -> String {
    // Secret if any segment of the path is secret-named (a value nested
    // under `clientSecret` is as secret as the field itself).
    let secret = field.split('.').any(is_secret_field);
    match value.map(|v| mask_within(v, secret)) {
        None => "—".to_string(),
        Some(Value::String(s)) if s.is_empty() => "\"\"".to_string(),
        Some(Value::String(s)) => super::text::visible_short(&s, 80),
        Some(other) => super::text::visible_short(&other.to_string(), 80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_by_path_and_ignores_version() {
        let b = json!({"config": {"apiKey": "#aaaa0000", "model": "gpt-4o"}, "is_active": true, "version": 1});
        let a = json!({"config": {"apiKey": "#bbbb1111", "model": "gpt-4o"}, "is_active": false, "version": 2});
        let c = changes(Some(&b), Some(&a));
        let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["config.apiKey", "is_active"]);
        let created = changes(None, Some(&a));
        assert!(created.iter().any(|c| c.field == "config.model" && c.before.is_none()));
    }

    #[test]
    fn live_secrets_are_masked_in_diffs() {
        assert!(shown("config.apiKey", Some(&json!("sk-live-secret-value-1234"))).starts_with("••••••••1234 #"));
        assert_eq!(shown("config.apiKey", Some(&json!("#1a2b3c4d"))), "#1a2b3c4d");
    }
}
