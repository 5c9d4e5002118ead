//! The nouns of DESIGN §1 as plain data. Enumerations found in the database
//! that keyfall does not know (a role or status added by the Django app) are
//! kept as `Other` and treated as the least-privileged choice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    Trial,
    Suspended,
    Cancelled,
    #[serde(other)]
    Other,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Trial => "trial",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Cancelled => "cancelled",
            AccountStatus::Other => "unknown",
        }
    }

    /// Whether users of an account in this status keep tenant access.
    pub fn grants_access(self) -> bool {
        matches!(self, AccountStatus::Active | AccountStatus::Trial)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub status: AccountStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Developer,
    Owner,
    Admin,
    Editor,
    Viewer,
    SystemBot,
    #[serde(other)]
    Other,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::SystemBot => "system_bot",
            Role::Other => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub is_superuser: bool,
    pub is_active: bool,
    pub account_id: Option<i64>,
}

/// One row of `integration_settings`. `config` is whatever JSON the database
/// holds — object or not; judging it is the resolver's job.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub id: i64,
    pub account_id: i64,
    pub integration_type: String,
    pub config: Value,
    pub is_active: bool,
    /// The optimistic-lock token: the app's version column (a count), or
    /// where it has none the row's xmin (`version_token`).
    pub version: i64,
    /// When the row last changed: the app's `updated_at`, else its last
    /// audited change; `None` when neither is known.
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
    /// `version` is a row token (xmin) that changes on every write, not a
    /// count: show it as such, never its "next" value.
    #[serde(default)]
    pub version_token: bool,
    /// Set when the session's operator may not view this account's
    /// settings (the database decides, DESIGN §4): `config` is then `Null`
    /// and only what every resolve needs is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Withheld>,
}

/// What the database tells about a row it does not show: whether it
/// answers (its verdict, by name) and, for a consumer, the provider its
/// second hop walks (masked as every value is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withheld {
    pub verdict: String,
    pub provider: Option<Value>,
}

impl Setting {
    /// The version as what it is: `v7` for the app's version column, `row
    /// token 2445` for xmin.
    pub fn version_label(&self) -> String {
        if self.version_token { format!("row token {}", self.version) } else { format!("v{}", self.version) }
    }
}

/// Masks secrets, so a stray `{:?}` cannot leak a key.
impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("integration_type", &self.integration_type)
            .field("config", &super::secret::mask_config(&self.config))
            .field("is_active", &self.is_active)
            .field("version", &self.version)
            .field("updated_at", &self.updated_at)
            .field("updated_by", &self.updated_by)
            .field("version_token", &self.version_token)
            .field("withheld", &self.withheld)
            .finish()
    }
}

/// One position of the system fallback chain. `account` is `None` when the
/// chain names a slug with no account (lint L005).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainEntry {
    pub position: i32,
    pub slug: String,
    pub account: Option<Account>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiFunction {
    pub name: String,
    pub integration_type: String,
}

/// The seed's three options for who may see and change settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// A: only system accounts, developers and superusers, for everything.
    SystemOnly,
    /// B: owners and admins may also view and modify their own account.
    PerAccount,
    /// C: any active tenant user may view system settings, masked, read-only.
    HybridReadonly,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::SystemOnly, Policy::PerAccount, Policy::HybridReadonly];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::SystemOnly => "system_only",
            Policy::PerAccount => "per_account",
            Policy::HybridReadonly => "hybrid_readonly",
        }
    }

    pub fn letter(self) -> char {
        match self {
            Policy::SystemOnly => 'A',
            Policy::PerAccount => 'B',
            Policy::HybridReadonly => 'C',
        }
    }

    /// By name (`system_only`) or by the seed's letter (`A`, `b`).
    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.as_str() == s || p.letter().to_string().eq_ignore_ascii_case(s))
    }
}

/// The system chain: position of `account_id` in it, if any (1-based).
pub fn chain_position(chain: &[ChainEntry], account_id: i64) -> Option<i32> {
    chain.iter().find(|e| e.account.as_ref().is_some_and(|a| a.id == account_id)).map(|e| e.position)
}
