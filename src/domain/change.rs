//! A change to the settings, from proposal to save, and the notice of one
//! heard from any client: what is proposed (`Proposal`), who would answer
//! differently (`ImpactRow`, `Answer`), the stale version found at save
//! (`Conflict`), and the trigger's notice (`Change`). The store computes
//! and reads them; the CLI and the console show them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A change to preview. Its `Debug` masks keys.
#[derive(Clone, PartialEq)]
pub enum Proposal {
    /// One account's setting of one type becomes this (created if absent).
    Setting { account_id: i64, integration_type: String, config: Value, is_active: bool },
    /// One account's setting of one type is deleted.
    Delete { account_id: i64, integration_type: String },
    /// The system chain becomes these slugs, in order.
    Chain(Vec<String>),
    /// Several settings change at once (a lint fix, an import).
    Many(Vec<Proposal>),
}

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::domain::secret::mask_config;
        match self {
            Proposal::Setting { account_id, integration_type, config, is_active } => f
                .debug_struct("Setting")
                .field("account_id", account_id)
                .field("integration_type", integration_type)
                .field("config", &mask_config(config))
                .field("is_active", is_active)
                .finish(),
            Proposal::Delete { account_id, integration_type } => f
                .debug_struct("Delete")
                .field("account_id", account_id)
                .field("integration_type", integration_type)
                .finish(),
            Proposal::Chain(slugs) => f.debug_tuple("Chain").field(slugs).finish(),
            Proposal::Many(all) => f.debug_tuple("Many").field(all).finish(),
        }
    }
}

/// Who answers, as one comparable value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Answer {
    pub answered_by: Option<String>,
    pub provider: Option<String>,
    pub provider_answered_by: Option<String>,
    /// The same answering account(s) as before, whose answering row now
    /// holds the changed content (shown as "(new value)"; only ever set on
    /// an impact row's `after`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_value: bool,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::domain::text::visible_short;
        match (&self.answered_by, &self.provider) {
            (None, _) => f.write_str("nothing")?,
            (Some(by), None) => f.write_str(&visible_short(by, 40))?,
            (Some(by), Some(p)) => write!(
                f,
                "{} → {}@{}",
                visible_short(by, 40),
                visible_short(p, 20),
                visible_short(self.provider_answered_by.as_deref().unwrap_or("nothing"), 40)
            )?,
        }
        if self.new_value {
            f.write_str(" (new value)")?;
        }
        Ok(())
    }
}

/// Accounts and users of one function that move from `before` to `after`
/// — or, with `value_changed`, whose answering account stays the same but
/// whose answering row (the first hop's or the provider hop's) changes
/// content: they now use the new value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpactRow {
    pub function: String,
    pub integration_type: String,
    pub before: Answer,
    pub after: Answer,
    pub accounts: i64,
    pub users: i64,
    /// The answer stays at the same account(s); its content changes.
    pub value_changed: bool,
    /// A few of the group's accounts by name, in slug (byte) order: the
    /// first by slug of each class of account id modulo 3 — the group's
    /// first is always among them, and none needs every slug sorted (at a
    /// million accounts that sort cost half a second a group). Who
    /// "97,412 accounts" are: "acme, beta, gamma and 97,409 more".
    pub examples: Vec<String>,
}

/// A stale version at save time: someone else saved first.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub account: String,
    pub integration_type: String,
    pub expected_version: i64,
    pub current_version: Option<i64>,
    pub updated_by: Option<String>,
    /// When it changed (`Setting::updated_at`); `None` when not known.
    pub updated_at: Option<DateTime<Utc>>,
    /// The versions are row tokens (xmin), not counts: they are not shown.
    pub version_token: bool,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = crate::domain::text::visible_short(self.updated_by.as_deref().unwrap_or("an unknown writer"), 80);
        let when = self.updated_at.map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default();
        let (account, ty) = (
            crate::domain::text::visible_short(&self.account, 80),
            crate::domain::text::visible_short(&self.integration_type, 40),
        );
        match self.current_version {
            // A row token says only that the row changed, not how often.
            Some(_) if self.version_token => write!(f, "{account} {ty} changed since you read it (by {who}{when})"),
            Some(v) => {
                write!(f, "{account} {ty} changed since version {} (now v{v}, by {who}{when})", self.expected_version)
            }
            None => write!(f, "{account} {ty} was deleted by another writer"),
        }
    }
}

/// One change notice, as the trigger sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Change {
    pub table: String,
    pub op: String,
    /// The setting's id (settings only).
    pub id: Option<i64>,
    pub account_id: Option<i64>,
    pub audit_id: Option<i64>,
    /// A statement that changed this many rows (sent instead of one each).
    pub bulk: Option<i64>,
}
