//! Lint (DESIGN §8): what is wrong with the integration settings, each
//! finding with an id, a severity, where, a message and — where it is safe
//! to decide without a person — a fix. Pure: the store gathers, this judges.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{Account, ChainEntry, Policy, Setting, User, chain_position};
use super::permissions::{self, Action, Subject, Target};
use super::registry::{self, Judgement, Kind, Problem};
use super::resolve::{Snapshot, resolve_type};
use super::text::visible_short;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// A change that resolves a finding: the setting's new config. Its `Debug`
/// and its JSON mask keys.
#[derive(Clone, PartialEq, Serialize)]
pub struct Fix {
    pub description: String,
    /// The config after the fix; None when a person must choose (`choices`).
    /// Serialized with keys masked: `lint --json` prints no key.
    #[serde(serialize_with = "masked_config")]
    pub config: Option<Value>,
    /// For a fix that needs a choice: the candidate values of `field`.
    pub field: Option<String>,
    pub choices: Vec<String>,
    /// The version the fix was computed from (a stale fix conflicts).
    pub version: i64,
}

impl std::fmt::Debug for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fix")
            .field("description", &self.description)
            .field("config", &self.config.as_ref().map(super::secret::mask_config))
            .field("field", &self.field)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn masked_config<S: serde::Serializer>(config: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    config.as_ref().map(super::secret::mask_config).serialize(s)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub account: Option<String>,
    pub integration_type: Option<String>,
    pub message: String,
    pub fix: Option<Fix>,
}

/// Everything lint reads.
pub struct LintInput<'a> {
    pub snapshot: &'a Snapshot,
    /// Every account, by id (the snapshot's map may hold only some).
    pub accounts: &'a [Account],
    pub settings: &'a [Setting],
    /// Superusers and developers (L007).
    pub privileged: &'a [User],
    pub policy: Policy,
}

pub fn lint(input: &LintInput) -> Vec<Finding> {
    let mut out = Vec::new();
    let accounts: HashMap<i64, &Account> = input.accounts.iter().map(|a| (a.id, a)).collect();
    let mut own: HashMap<i64, Vec<&Setting>> = HashMap::new();
    for s in input.settings {
        own.entry(s.account_id).or_default().push(s);
    }
    for entry in &input.snapshot.chain {
        if entry.account.is_none() {
            out.push(finding(
                "L005",
                Severity::Error,
                Some(&entry.slug),
                None,
                format!(
                    "the fallback chain (position {}) names {:?}, which is not an account",
                    entry.position,
                    visible_short(&entry.slug, 60)
                ),
            ));
        }
    }
    for spec in &registry::TYPES {
        let answered = resolve_type(input.snapshot, None, spec.name);
        if answered.answered_by.is_none() {
            out.push(finding(
                "L006",
                Severity::Error,
                None,
                Some(spec.name),
                format!(
                    "no system account answers {}: tenants without their own setting resolve to nothing",
                    spec.name
                ),
            ));
        }
    }
    for s in input.settings {
        let Some(account) = accounts.get(&s.account_id) else { continue };
        let rows = own.get(&s.account_id).map(Vec::as_slice).unwrap_or_default();
        setting_findings(input.snapshot, account, rows, s, &mut out);
    }
    privileged_findings(input, &accounts, &mut out);
    out.sort_by(|a, b| (a.severity, a.id).cmp(&(b.severity, b.id)));
    out
}

fn finding(id: &'static str, severity: Severity, account: Option<&str>, ty: Option<&str>, message: String) -> Finding {
    Finding {
        id,
        severity,
        account: account.map(str::to_string),
        integration_type: ty.map(str::to_string),
        message,
        fix: None,
    }
}

/// The provider an image model belongs to, when its name says so.
pub fn provider_for_model(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    if m.starts_with("dall-e") || m.starts_with("gpt-image") {
        Some("openai")
    } else if m.starts_with("runware:") || m.starts_with("civitai:") {
        Some("runware")
    } else {
        None
    }
}

/// Findings of one row. `rows` are all of the account's own settings: the
/// second hop of a consumer resolves from the account itself first.
fn setting_findings(snapshot: &Snapshot, account: &Account, rows: &[&Setting], s: &Setting, out: &mut Vec<Finding>) {
    let slug = account.slug.as_str();
    let ty = s.integration_type.as_str();
    let Some(spec) = registry::spec(ty) else { return };
    let judgement = registry::judge(ty, &s.config);
    if let Judgement::Invalid { problem: Problem::NotObject | Problem::WrongType | Problem::OutOfRange, reason } =
        &judgement
    {
        out.push(finding("L009", Severity::Error, Some(slug), Some(ty), format!("{slug} {ty}: {reason}")));
    }
    let Some(map) = s.config.as_object() else { return };
    if spec.kind == Kind::Consumer && map.contains_key("apiKey") {
        out.push(l001(slug, ty, map, s.version));
    }
    if spec.kind == Kind::Consumer
        && let Some(Value::String(p)) = map.get("provider")
    {
        if registry::spec(p).is_none_or(|t| t.kind != Kind::Provider) {
            out.push(finding(
                "L002",
                Severity::Error,
                Some(slug),
                Some(ty),
                format!("{slug} {ty}: provider {:?} is not a provider type", visible_short(p, 40)),
            ));
        } else if s.is_active && {
            // The chain's rows plus this account's own: what resolution sees.
            let mut local = snapshot.clone();
            local.accounts.insert(account.id, account.clone());
            for r in rows {
                local.settings.insert((r.account_id, r.integration_type.clone()), (*r).clone());
            }
            resolve_type(&local, Some(account), p).answered_by.is_none()
        } {
            out.push(finding(
                "L002",
                Severity::Error,
                Some(slug),
                Some(ty),
                format!("{slug} {ty}: provider {p} resolves to nothing for {slug}"),
            ));
        }
    }
    if spec.kind == Kind::Provider && s.is_active && judgement == Judgement::NoApiKey {
        out.push(finding(
            "L003",
            Severity::Warning,
            Some(slug),
            Some(ty),
            format!("{slug} {ty} is active but has no key: it is skipped"),
        ));
    }
    if let Some(Value::String(model)) = map.get("model")
        && !spec.known_models.contains(&model.as_str())
    {
        out.push(finding(
            "L004",
            Severity::Info,
            Some(slug),
            Some(ty),
            format!("{slug} {ty}: model {:?} is not one keyfall knows", visible_short(model, 60)),
        ));
    }
    if let Some(Value::String(key)) = map.get("apiKey")
        && !key.is_empty()
        && key.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        let (clean, trimmed) = super::secret::clean_pasted_secret(key);
        let inner = clean.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'');
        let mut f = finding(
            "L008",
            Severity::Warning,
            Some(slug),
            Some(ty),
            format!("{slug} {ty}: the key holds whitespace, line breaks or quotes (a bad paste?)"),
        );
        if !inner && !trimmed.is_empty() {
            let mut fixed = map.clone();
            fixed.insert("apiKey".into(), Value::String(clean));
            f.fix = Some(Fix {
                description: format!("trim {} from the key", trimmed.join(" and ")),
                config: Some(Value::Object(fixed)),
                field: None,
                choices: Vec::new(),
                version: s.version,
            });
        }
        out.push(f);
    }
}

/// L001: a consumer with its own key. The fix drops the key and, when the
/// provider is missing, infers it from the model — or asks.
fn l001(slug: &str, ty: &str, map: &Map<String, Value>, version: i64) -> Finding {
    let mut f = finding(
        "L001",
        Severity::Error,
        Some(slug),
        Some(ty),
        format!("{slug} {ty} carries its own apiKey; a consumer should name a provider instead"),
    );
    let mut fixed = map.clone();
    fixed.remove("apiKey");
    let has_provider =
        matches!(map.get("provider"), Some(Value::String(p)) if registry::provider_names().any(|n| n == p));
    let inferred = map.get("model").and_then(Value::as_str).and_then(provider_for_model);
    f.fix = Some(match (has_provider, inferred) {
        (true, _) => Fix {
            description: "drop apiKey".into(),
            config: Some(Value::Object(fixed)),
            field: None,
            choices: Vec::new(),
            version,
        },
        (false, Some(p)) => {
            fixed.insert("provider".into(), Value::String(p.into()));
            Fix {
                description: format!("drop apiKey, set provider = {p} (from the model)"),
                config: Some(Value::Object(fixed)),
                field: None,
                choices: Vec::new(),
                version,
            }
        }
        (false, None) => Fix {
            description: "drop apiKey and choose a provider (the model does not tell)".into(),
            config: Some(Value::Object(fixed)),
            field: Some("provider".into()),
            choices: registry::provider_names().map(str::to_string).collect(),
            version,
        },
    });
    f
}

/// L007: superusers and developers whose checks fail — the seed's "super
/// user is unable to change settings".
fn privileged_findings(input: &LintInput, accounts: &HashMap<i64, &Account>, out: &mut Vec<Finding>) {
    let chain: &[ChainEntry] = &input.snapshot.chain;
    let head = chain.first().map(|e| e.slug.as_str()).unwrap_or("(no system account)");
    for user in input.privileged {
        let account = user.account_id.and_then(|id| accounts.get(&id).copied());
        let subject =
            Subject { user, account, account_chain_position: account.and_then(|a| chain_position(chain, a.id)) };
        let d = permissions::evaluate(&subject, input.policy, Action::ModifySettings, &Target::System { slug: head });
        if !d.allowed {
            let why: Vec<String> = d.failing().map(|c| format!("{} ({})", c.name, c.reason)).collect();
            out.push(finding(
                "L007",
                Severity::Warning,
                account.map(|a| a.slug.as_str()),
                None,
                format!(
                    "{} is a {} but cannot change settings: {}",
                    visible_short(&user.email, 60),
                    if user.is_superuser { "superuser" } else { "developer" },
                    why.join("; ")
                ),
            ));
        }
    }
}
