//! `resolve(user, function)` — DESIGN §2. The store gathers every row one
//! resolution can touch (one round trip); this module walks the chain purely
//! and returns the answer together with every step that led to it.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::model::{Account, AiFunction, ChainEntry, Setting, User};
use super::registry::{self, Judgement, Kind};
use super::secret::{Secret, mask_config};
use super::text::visible_short;

/// Why the walk stopped at, or passed over, one account.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// This account's setting is used; the walk stops.
    Answered,
    /// The account has no setting of this type (or does not exist).
    NoRow,
    /// The setting exists but `is_active` is false.
    Inactive,
    /// A provider setting whose `apiKey` is missing, empty or blank.
    NoApiKey,
    /// The config is not an object or has a field of the wrong type.
    InvalidConfig,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Answered => "answered",
            Verdict::NoRow => "no_row",
            Verdict::Inactive => "inactive",
            Verdict::NoApiKey => "no_api_key",
            Verdict::InvalidConfig => "invalid_config",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub account: String,
    /// 0 for the user's own account, else the chain position.
    pub position: i32,
    pub verdict: Verdict,
    pub detail: String,
}

/// One walk along the chain for one integration type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    pub integration_type: String,
    pub answered_by: Option<String>,
    pub steps: Vec<Step>,
    /// The answering config with secrets masked.
    pub config: Option<Value>,
    /// For a consumer type: the second hop, to the provider it names.
    pub hop: Option<Box<Hop>>,
}

impl Hop {
    /// Answered, and so is the second hop if there is one.
    pub fn is_resolved(&self) -> bool {
        self.answered_by.is_some() && self.hop.as_ref().is_none_or(|h| h.is_resolved())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    pub user: String,
    pub function: String,
    #[serde(flatten)]
    pub hop: Hop,
    pub warnings: Vec<Warning>,
}

impl Resolution {
    pub fn is_resolved(&self) -> bool {
        self.hop.is_resolved()
    }
}

/// Everything one resolution reads. Built by the store, or by tests.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub chain: Vec<ChainEntry>,
    /// Accounts by id: at least the user's own and the chain's.
    pub accounts: HashMap<i64, Account>,
    /// Settings by (account id, integration type).
    pub settings: HashMap<(i64, String), Setting>,
}

impl Snapshot {
    pub fn new(chain: Vec<ChainEntry>, accounts: Vec<Account>, settings: Vec<Setting>) -> Self {
        Snapshot {
            chain,
            accounts: accounts.into_iter().map(|a| (a.id, a)).collect(),
            settings: settings.into_iter().map(|s| ((s.account_id, s.integration_type.clone()), s)).collect(),
        }
    }

    pub fn is_system(&self, account_id: i64) -> bool {
        super::model::chain_position(&self.chain, account_id).is_some()
    }

    fn setting(&self, account_id: i64, integration_type: &str) -> Option<&Setting> {
        self.settings.get(&(account_id, integration_type.to_string()))
    }

    /// The accounts a walk visits, in order: the start account (if any and
    /// not a system account) at position 0, then the chain.
    fn walk_order<'a>(&'a self, start: Option<&'a Account>) -> Vec<(i32, &'a str, Option<&'a Account>)> {
        let mut order = Vec::with_capacity(self.chain.len() + 1);
        if let Some(account) = start.filter(|a| !self.is_system(a.id)) {
            order.push((0, account.slug.as_str(), Some(account)));
        }
        for entry in &self.chain {
            order.push((entry.position, entry.slug.as_str(), entry.account.as_ref()));
        }
        order
    }
}

/// Resolve `function` for `user`, with both hops and the warnings.
pub fn resolve(snapshot: &Snapshot, user: &User, function: &AiFunction) -> Resolution {
    let account = user.account_id.and_then(|id| snapshot.accounts.get(&id));
    let mut warnings = Vec::new();
    if !user.is_active {
        warnings.push(Warning {
            code: "user_inactive",
            message: format!("{} is inactive", visible_short(&user.email, 80)),
        });
    }
    match account {
        None => warnings.push(Warning {
            code: "no_account",
            message: "user has no account; only the system chain is walked".to_string(),
        }),
        Some(a) if !a.status.grants_access() => warnings.push(Warning {
            code: "account_suspended",
            message: format!("account {} is {}", visible_short(&a.slug, 80), a.status.as_str()),
        }),
        Some(_) => {}
    }
    Resolution {
        user: user.email.clone(),
        function: function.name.clone(),
        hop: resolve_type(snapshot, account, &function.integration_type),
        warnings,
    }
}

/// Walk the chain for one integration type starting at `start`, following a
/// consumer's provider reference into a second hop.
pub fn resolve_type(snapshot: &Snapshot, start: Option<&Account>, integration_type: &str) -> Hop {
    walk(snapshot, start, integration_type, true)
}

fn walk(snapshot: &Snapshot, start: Option<&Account>, integration_type: &str, follow: bool) -> Hop {
    let mut steps = Vec::new();
    for (position, slug, account) in snapshot.walk_order(start) {
        let step = |verdict, detail| Step { account: slug.to_string(), position, verdict, detail };
        let Some(account) = account else {
            steps.push(step(Verdict::NoRow, "no such account (the chain names a missing account)".into()));
            continue;
        };
        let Some(setting) = snapshot.setting(account.id, integration_type) else {
            steps.push(step(Verdict::NoRow, format!("no {} setting", visible_short(integration_type, 40))));
            continue;
        };
        if !setting.is_active {
            steps.push(step(Verdict::Inactive, "setting is inactive".into()));
            continue;
        }
        match registry::judge(integration_type, &setting.config) {
            Judgement::NoApiKey => {
                steps.push(step(Verdict::NoApiKey, "apiKey is missing, empty or blank".into()));
            }
            Judgement::Invalid { reason, .. } => steps.push(step(Verdict::InvalidConfig, reason)),
            Judgement::Usable { provider } => {
                steps.push(step(Verdict::Answered, summary(integration_type, &setting.config)));
                let second = match (provider, follow) {
                    (Some(provider), true) => Some(Box::new(walk(snapshot, start, &provider, false))),
                    _ => None,
                };
                return Hop {
                    integration_type: integration_type.to_string(),
                    answered_by: Some(slug.to_string()),
                    steps,
                    config: Some(mask_config(&setting.config)),
                    hop: second,
                };
            }
        }
    }
    Hop { integration_type: integration_type.to_string(), answered_by: None, steps, config: None, hop: None }
}

/// One line describing an answering config: the key (masked) for providers,
/// the provider for consumers, and the model.
fn summary(integration_type: &str, config: &Value) -> String {
    let mut parts = Vec::new();
    let kind = registry::spec(integration_type).map(|s| s.kind);
    let text = |name: &str| config.get(name).and_then(Value::as_str);
    match kind {
        Some(Kind::Provider) => {
            if let Some(key) = text("apiKey") {
                parts.push(format!("apiKey {}", Secret::new(key).masked()));
            }
        }
        Some(Kind::Consumer) => {
            if let Some(p) = text("provider") {
                parts.push(format!("provider={}", visible_short(p, 40)));
            }
        }
        None => parts.push("unknown type, used as is".to_string()),
    }
    if let Some(model) = text("model") {
        parts.push(format!("model={}", visible_short(model, 60)));
    }
    parts.join(" ")
}
