//! Restore from the past (issue 23, point 5), purely: a setting as the
//! audit log kept it at a moment — keys as fingerprints — made into a row
//! that can be written today. The log never holds a key, so a key of the
//! past comes back only when it is today's key (same fingerprint), when the
//! operator gives it again (checked against the past fingerprint), or not
//! at all (`--keep-key`: today's key stays). The note the write is recorded
//! with says it is a restore and of which moment.

use serde_json::{Map, Value};

use super::history::{Cut, stamp};
use super::secret::{Secret, fingerprint, fingerprint_value, is_fingerprint, masked_fingerprint};

/// The note a restore's audit row carries after the operator's email
/// (`dev@… (restored to as of #812)`), as a revert's `(revert of #12)`.
pub fn note(cut: &Cut) -> String {
    match cut.entry {
        Some(n) => note_before_entry(n),
        None => format!("restored to as of {}", stamp(cut.at)),
    }
}

/// The note of a restore to just before audit entry `#n`.
pub fn note_before_entry(n: i64) -> String {
    format!("restored to as of #{n}")
}

/// The actor a restore writes as: the operator and the note.
pub fn actor(operator: &str, cut: &Cut) -> String {
    format!("{operator} ({})", note(cut))
}

/// Where a key of the past is to come from when it is not today's.
#[derive(Clone, Copy)]
pub enum KeySource<'a> {
    /// Not given (yet): the restore cannot be written, the preview says so.
    Missing,
    /// Given again by the operator (stdin, the hidden prompt, the console's
    /// form): used only where its fingerprint is the past one.
    Given(&'a Secret),
    /// `--keep-key`: today's value stays where the past key cannot come back.
    KeepToday,
}

/// What happened to one key of the past in the restored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFate {
    /// Today's key is the past one: kept.
    SameAsToday,
    /// The operator gave it again, and its fingerprint matched.
    Given,
    /// It cannot be restored from the log; today's value (its fingerprint,
    /// `None` when there is none) stays (`--keep-key`).
    KeptToday(Option<String>),
    /// It cannot be restored from the log and was not given.
    Missing,
}

/// One key (a fingerprinted value) of the past row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastKey {
    /// The dotted path (`apiKey`, `auth.token`).
    pub path: String,
    /// Its fingerprint in the log (`#1a2b3c4d`).
    pub fingerprint: String,
    pub fate: KeyFate,
}

impl PastKey {
    /// One line for the preview: what happens to this key.
    pub fn describe(&self, when: &str) -> String {
        match &self.fate {
            KeyFate::SameAsToday => {
                format!("{}: today's key is the key of {when} ({}): kept", self.path, self.fingerprint)
            }
            KeyFate::Given => {
                format!("{}: the key given is the key of {when} ({}): restored", self.path, self.fingerprint)
            }
            KeyFate::KeptToday(now) => format!(
                "{}: the key of {when} ({}) cannot be restored from the log (it keeps fingerprints only); {} (--keep-key)",
                self.path,
                self.fingerprint,
                match now {
                    Some(fp) => format!("today's key ({fp}) stays"),
                    None => "the field stays absent, as today".to_string(),
                }
            ),
            KeyFate::Missing => format!(
                "{}: the key of {when} ({}) is not today's and cannot be restored from the log (it keeps fingerprints \
                 only): give that key on stdin or at the hidden prompt (it is checked against {}), or add --keep-key to \
                 restore everything but the key",
                self.path, self.fingerprint, self.fingerprint
            ),
        }
    }
}

/// The row to write: the past config with each key of the past put back
/// where it can be, and what became of each.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The config to write. Where a key is `Missing`, its fingerprint
    /// stands in (for the preview only: `ready()` is false).
    pub config: Value,
    pub keys: Vec<PastKey>,
}

impl Rebuilt {
    /// Whether every key of the past is accounted for (the row can be written).
    pub fn ready(&self) -> bool {
        self.keys.iter().all(|k| k.fate != KeyFate::Missing)
    }
}

/// The fingerprint a past value stands for: the log's `#1a2b3c4d`, or the
/// masked form history shows (`•••••••• #1a2b3c4d`).
fn past_fingerprint(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if is_fingerprint(s) => Some(s.clone()),
        Value::String(s) => masked_fingerprint(s).map(str::to_string),
        _ => None,
    }
}

/// Rebuild `past` (a config as the log keeps it) against `today` (the
/// config stored now, raw or masked as the session reads it). A given key
/// whose fingerprint is not the one of the past is refused, never written.
pub fn rebuild(past: &Value, today: Option<&Value>, source: KeySource<'_>) -> Result<Rebuilt, String> {
    let mut keys = Vec::new();
    let config = walk(past, today, source, &mut Vec::new(), &mut keys)?;
    if let KeySource::Given(key) = source
        && !keys.iter().any(|k| k.fate == KeyFate::Given)
    {
        let wanted: Vec<&str> =
            keys.iter().filter(|k| matches!(k.fate, KeyFate::Missing)).map(|k| k.fingerprint.as_str()).collect();
        return Err(if wanted.is_empty() {
            "no key of the past is missing: nothing to give (nothing written)".to_string()
        } else {
            format!(
                "the key given ({}) is not the key of that moment ({}); nothing written",
                key.fingerprint(),
                wanted.join(", ")
            )
        });
    }
    Ok(Rebuilt { config, keys })
}

fn walk(
    past: &Value,
    today: Option<&Value>,
    source: KeySource<'_>,
    path: &mut Vec<String>,
    keys: &mut Vec<PastKey>,
) -> Result<Value, String> {
    if let Some(fp) = past_fingerprint(past) {
        let dotted = if path.is_empty() { "(config)".to_string() } else { path.join(".") };
        let now_fp = today.filter(|v| !v.is_null()).map(fingerprint_value);
        if now_fp.as_deref() == Some(fp.as_str()) {
            keys.push(PastKey { path: dotted, fingerprint: fp, fate: KeyFate::SameAsToday });
            return Ok(today.cloned().unwrap_or(Value::Null));
        }
        let (value, fate) = match source {
            KeySource::Given(key) if fingerprint(key.expose()) == fp => {
                (Value::String(key.expose().to_string()), KeyFate::Given)
            }
            KeySource::KeepToday => (today.cloned().unwrap_or(Value::Null), KeyFate::KeptToday(now_fp)),
            _ => (Value::String(fp.clone()), KeyFate::Missing),
        };
        keys.push(PastKey { path: dotted, fingerprint: fp, fate });
        return Ok(value);
    }
    Ok(match past {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                path.push(k.clone());
                let now = today.and_then(|t| t.get(k));
                let value = walk(v, now, source, path, keys);
                path.pop();
                let value = value?;
                // A key kept "as today" where today has none: the field
                // stays absent, as it is today.
                let absent = now.is_none()
                    && value.is_null()
                    && matches!(keys.last(), Some(PastKey { fate: KeyFate::KeptToday(None), .. }))
                    && past_fingerprint(v).is_some();
                if !absent {
                    out.insert(k.clone(), value);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                path.push(i.to_string());
                let value = walk(v, today.and_then(|t| t.get(i)), source, path, keys);
                path.pop();
                out.push(value?);
            }
            Value::Array(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OLD: &str = "sk-old-key-000011112222333344445555";
    const NEW: &str = "sk-new-key-666677778888999900001111";

    fn past() -> Value {
        json!({"apiKey": fingerprint(OLD), "model": "gpt-4o"})
    }

    #[test]
    fn the_note_names_the_moment() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-08T09:14:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(actor("dev@x", &Cut { at, entry: Some(812) }), "dev@x (restored to as of #812)");
        assert_eq!(note(&Cut { at, entry: None }), "restored to as of 2026-12-08 09:14:00 UTC");
    }

    #[test]
    fn todays_key_is_kept_when_it_is_the_past_one() {
        let today = json!({"apiKey": OLD, "model": "gpt-5"});
        let r = rebuild(&past(), Some(&today), KeySource::Missing).unwrap();
        assert!(r.ready());
        assert_eq!(r.config, json!({"apiKey": OLD, "model": "gpt-4o"}));
        // A masked read (an operator role) keeps it too: the mask is written back.
        let masked = json!({"apiKey": Secret::new(OLD).masked(), "model": "gpt-5"});
        let r = rebuild(&past(), Some(&masked), KeySource::Missing).unwrap();
        assert_eq!(r.keys[0].fate, KeyFate::SameAsToday);
        assert_eq!(r.config["apiKey"], masked["apiKey"]);
    }

    #[test]
    fn another_key_is_missing_given_checked_or_kept() {
        let today = json!({"apiKey": NEW, "model": "gpt-5"});
        let r = rebuild(&past(), Some(&today), KeySource::Missing).unwrap();
        assert!(!r.ready());
        assert_eq!(r.config["apiKey"], json!(fingerprint(OLD)));
        assert!(r.keys[0].describe("T").contains("--keep-key"));
        let old = Secret::new(OLD);
        let r = rebuild(&past(), Some(&today), KeySource::Given(&old)).unwrap();
        assert!(r.ready());
        assert_eq!(r.config, json!({"apiKey": OLD, "model": "gpt-4o"}));
        let wrong = Secret::new(NEW);
        let err = rebuild(&past(), Some(&today), KeySource::Given(&wrong)).unwrap_err();
        assert!(err.contains("is not the key of that moment") && !err.contains(NEW), "{err}");
        let r = rebuild(&past(), Some(&today), KeySource::KeepToday).unwrap();
        assert!(r.ready());
        assert_eq!(r.config, json!({"apiKey": NEW, "model": "gpt-4o"}));
        assert_eq!(r.keys[0].fate, KeyFate::KeptToday(Some(fingerprint(NEW))));
        // No row today: --keep-key leaves the field out.
        let r = rebuild(&past(), None, KeySource::KeepToday).unwrap();
        assert_eq!(r.config, json!({"model": "gpt-4o"}));
    }

    #[test]
    fn the_masked_form_of_history_is_a_fingerprint_too() {
        let shown = json!({"nested": {"token": format!("{} {}", super::super::secret::MASK, fingerprint(OLD))}});
        let today = json!({"nested": {"token": OLD}});
        let r = rebuild(&shown, Some(&today), KeySource::Missing).unwrap();
        assert_eq!(r.keys[0].path, "nested.token");
        assert_eq!(r.config, today);
    }
}
