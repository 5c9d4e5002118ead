//! The words for an audit row about the log itself — capture switched off
//! or on, a change recorded without its contents, keyfall detached and
//! attached again, the app's tables changed, older rows redacted again, a
//! raw key read for a connection test — one wording for `keyfall audit` and
//! the console's audit view. Ordinary changes have none: their fields are
//! listed by `diff`.
//!
//! And the audit row itself (`AuditEntry`), as the store reads it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::text::{identity_short, visible_short};

/// What the wording of one audit row reads.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub after: Option<&'a Value>,
}

/// One audit row, secrets already fingerprinted by the trigger (and again
/// on the way out, for rows written before secrets were known by shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub table_name: String,
    pub account: Option<String>,
    pub integration_type: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl AuditEntry {
    /// What the wording of the row reads (`domain::audit::action_words`).
    pub fn row(&self) -> crate::domain::audit::Row<'_> {
        crate::domain::audit::Row {
            id: self.id,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            after: self.after.as_ref(),
        }
    }
}

/// The row's action in words, `None` for an ordinary change. `others`: the
/// rows listed with it, where the start of a gap is looked for (the
/// nearest older `capture_disabled` or `detach`).
pub fn action_words(row: &Row<'_>, others: &[Row<'_>]) -> Option<String> {
    let after = row.after;
    let text = |key: &str, max: usize| {
        after.and_then(|a| a.get(key)).and_then(Value::as_str).map(|v| visible_short(v, max)).unwrap_or_default()
    };
    let triggers = || {
        after
            .and_then(|a| a.get("triggers"))
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).map(|v| visible_short(v, 80)).collect::<Vec<_>>())
            .unwrap_or_default()
            .join(", ")
    };
    let began = |action: &str| others.iter().filter(|o| o.id < row.id && o.action == action).map(|o| o.at).max();
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let by = identity_short(row.actor, 60);
    match row.action {
        "capture_disabled" => Some(format!(
            "⚠ audit capture disabled by {by} ({}): changes to the app's settings are not recorded until it is on again",
            triggers()
        )),
        "capture_enabled" => Some(match began("capture_disabled") {
            Some(t) => format!(
                "audit capture on again ({}): nothing was recorded from {} to {}",
                triggers(),
                when(t),
                when(row.at)
            ),
            None => format!("audit capture on again ({})", triggers()),
        }),
        "detach" => Some(format!("⚠ keyfall detached by {by}: nothing recorded from here")),
        "attach" => {
            // The gap began at the detach: the nearest older row saying so,
            // else the time the attach row carries.
            let from = began("detach").or_else(|| {
                after
                    .and_then(|a| a.get("detached_at"))
                    .and_then(|t| serde_json::from_value::<DateTime<Utc>>(t.clone()).ok())
            });
            Some(match from {
                Some(t) => format!(
                    "keyfall attached again by {by}: changes between {} and {} were not recorded",
                    when(t),
                    when(row.at)
                ),
                None => format!("keyfall attached again by {by}: changes before this were not recorded"),
            })
        }
        "capture_refused" => Some(format!("⚠ a change was recorded without its contents: {}", text("why", 200))),
        "capture_failed" => {
            let op = text("op", 20);
            let a = if op.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
            Some(format!(
                "⚠ {a} {op} of the app's settings was not recorded (SQLSTATE {}); the app's statement went through",
                text("sqlstate", 5)
            ))
        }
        "app_ddl" => Some(format!(
            "the app's tables changed: {}",
            after
                .and_then(|a| a.get("commands"))
                .and_then(Value::as_array)
                .map(|c| c
                    .iter()
                    .map(|x| format!(
                        "{} {}",
                        x.get("command").and_then(Value::as_str).unwrap_or("?"),
                        x.get("object").and_then(Value::as_str).unwrap_or("?")
                    ))
                    .map(|t| visible_short(&t, 120))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        )),
        "app_followed" => {
            Some("keyfall followed the change: the mapping names the tables and columns as they are now".into())
        }
        "app_changed" => Some(format!(
            "⚠ the app's tables no longer fit keyfall's mapping ({}): changes are recorded whole until `keyfall attach` re-maps",
            after
                .and_then(|a| a.get("problems"))
                .and_then(Value::as_array)
                .map(|p| p
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|v| visible_short(v, 160))
                    .collect::<Vec<_>>()
                    .join("; "))
                .unwrap_or_default()
        )),
        "redact" => Some(match text("redacted", 120) {
            note if note.is_empty() => {
                "the log's older entries redacted again: their secrets are fingerprints now".into()
            }
            note => format!("the log's older entries redacted again ({note}): their secrets are fingerprints now"),
        }),
        "truncate" => Some("⚠ the app's settings table was emptied (TRUNCATE): every setting in it is gone".into()),
        "reveal" if after.and_then(|a| a.get("purpose")).and_then(Value::as_str) == Some("test_connection") => {
            let fp = after.and_then(|a| a.get("apiKey")).and_then(Value::as_str).unwrap_or("the key");
            Some(format!("raw key read for a connection test ({})", visible_short(fp, 20)))
        }
        _ => None,
    }
}
