//! Lint (DESIGN §8): what is wrong with the integration settings, each
//! finding with an id, a severity, where, a message and — where it is safe
//! to decide without a person — a fix. Pure: the store gathers, this judges.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{Account, ChainEntry, Policy, Setting, User, chain_position};
use super::permissions::{self, Action, Subject, Target};
use super::registry::{self, Kind, Next, Problem, RowJudgement, Verdict};
use super::resolve::{Snapshot, resolve_type};
use super::text::visible_short;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// The user the finding is about (L007), as stored: the message shows
    /// the address made visible and shortened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
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
    let accounts: HashMap<i64, &Account> = input.accounts.iter().map(|a| (a.id, a)).collect();
    let mut own: HashMap<i64, Vec<&Setting>> = HashMap::new();
    for s in input.settings {
        own.entry(s.account_id).or_default().push(s);
    }
    let mut out = chain_findings(input.snapshot);
    for s in input.settings {
        let Some(account) = accounts.get(&s.account_id) else { continue };
        let rows = own.get(&s.account_id).map(Vec::as_slice).unwrap_or_default();
        setting_findings(input.snapshot, account, rows, s, &mut out);
    }
    for user in input.privileged {
        let account = user.account_id.and_then(|id| accounts.get(&id).copied());
        out.extend(privileged_finding(input.snapshot, input.policy, user, account));
    }
    order(&mut out);
    out
}

/// The order `lint` reports in: by severity, then rule id; within one rule
/// the order the findings were made (chain, then settings by account and
/// type, then users by email). A stable sort on this key, or findings kept
/// in buckets by it, give the same list.
pub fn order_key(f: &Finding) -> (Severity, &'static str) {
    (f.severity, f.id)
}

/// Sort findings into `lint`'s order (stable).
pub fn order(findings: &mut [Finding]) {
    findings.sort_by_key(order_key);
}

/// Where a finding is, for grouping (the console's lint view): about no
/// account at all (the whole system: L006, a user without an account),
/// about an account of the fallback chain, or about a tenant. In that
/// order: a system-wide error comes before thousands about tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    SystemWide,
    SystemAccount,
    Tenant,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Scope::SystemWide => "system-wide",
            Scope::SystemAccount => "system accounts",
            Scope::Tenant => "tenants",
        }
    }
}

/// A group of findings: level, then scope, then rule.
pub type GroupKey = (Severity, Scope, &'static str);

/// The group of `f`; `system` tells whether a slug is in the fallback chain.
pub fn group_key(f: &Finding, system: impl Fn(&str) -> bool) -> GroupKey {
    let scope = match f.account.as_deref() {
        None => Scope::SystemWide,
        Some(slug) if system(slug) => Scope::SystemAccount,
        Some(_) => Scope::Tenant,
    };
    (f.severity, scope, f.id)
}

/// What each rule finds, in a few words (DESIGN §8), for a group's heading.
pub fn rule_title(id: &str) -> &'static str {
    match id {
        "L001" => "a consumer carries an apiKey",
        "L002" => "a consumer's provider does not resolve",
        "L003" => "an active provider without a key",
        "L004" => "an unknown model",
        "L005" => "the chain names a missing account",
        "L006" => "a type no system account answers",
        "L007" => "a superuser or developer who cannot change settings",
        "L008" => "a key with whitespace or quotes",
        "L009" => "a config the app cannot use as it is",
        _ => "",
    }
}

/// The findings about the fallback chain itself: L005 (an entry naming no
/// account) and L006 (a type no system account answers). Needs only the
/// chain's accounts and their settings.
pub fn chain_findings(snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for entry in &snapshot.chain {
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
        let answered = resolve_type(snapshot, None, spec.name);
        let message = match (&answered.error, &answered.answered_by) {
            (Some(error), _) => Some(format!(
                "the system chain raises for {}: tenants without their own setting fail; {error}",
                spec.name
            )),
            (None, None) => Some(format!(
                "no system account answers {}: tenants without their own setting resolve to nothing",
                spec.name
            )),
            (None, Some(_)) => None,
        };
        if let Some(message) = message {
            out.push(finding("L006", Severity::Error, None, Some(spec.name), message));
        }
    }
    out
}

/// The findings of one account's settings (L001–L004, L008, L009), in the
/// order of `rows`: everything they need is the chain snapshot and the
/// account's own rows (a consumer's second hop starts at the account).
pub fn account_findings(snapshot: &Snapshot, account: &Account, rows: &[Setting]) -> Vec<Vec<Finding>> {
    let refs: Vec<&Setting> = rows.iter().collect();
    rows.iter()
        .map(|s| {
            let mut out = Vec::new();
            setting_findings(snapshot, account, &refs, s, &mut out);
            out
        })
        .collect()
}

fn finding(id: &'static str, severity: Severity, account: Option<&str>, ty: Option<&str>, message: String) -> Finding {
    Finding {
        id,
        severity,
        account: account.map(str::to_string),
        integration_type: ty.map(str::to_string),
        user: None,
        message,
        fix: None,
    }
}

/// Findings of one row. `rows` are all of the account's own settings: the
/// second hop of a consumer resolves from the account itself first.
fn setting_findings(snapshot: &Snapshot, account: &Account, rows: &[&Setting], s: &Setting, out: &mut Vec<Finding>) {
    let slug = account.slug.as_str();
    let ty = s.integration_type.as_str();
    let Some(spec) = registry::spec(ty) else { return };
    // A row the session may not view is not linted here: `lint` says how
    // many it could not check.
    if s.withheld.is_some() {
        return;
    }
    let judged = registry::judge(ty, &s.config, s.is_active);
    // L009: a config that is not an object is skipped by the app (error); a
    // key that is not a string makes the app raise (error while active);
    // any other wrong-typed or out-of-range field the app sends as it is
    // (warning), whether or not the row answers. A consumer's provider is
    // L002's business.
    for issue in &judged.issues {
        match (issue.verdict, issue.problem) {
            (Verdict::InvalidConfig, _) => {
                out.push(finding(
                    "L009",
                    Severity::Error,
                    Some(slug),
                    Some(ty),
                    format!("{slug} {ty}: {}", issue.message),
                ));
            }
            (Verdict::Unreadable, _) => {
                out.push(finding(
                    "L009",
                    Severity::Error,
                    Some(slug),
                    Some(ty),
                    format!("{slug} {ty}: {} (active or not: it raises loading the row)", issue.message),
                ));
            }
            (Verdict::KeyNotString, _) => {
                let (severity, when) = if s.is_active {
                    (Severity::Error, "raises")
                } else {
                    (Severity::Warning, "would raise once active")
                };
                out.push(finding(
                    "L009",
                    severity,
                    Some(slug),
                    Some(ty),
                    format!("{slug} {ty}: {}: the app's get_model_config {when} (AttributeError)", issue.message),
                ));
            }
            _ => {}
        }
    }
    let field_issues: Vec<&str> = judged
        .issues
        .iter()
        .filter(|i| {
            i.verdict == Verdict::BadFields
                && matches!(i.problem, Problem::WrongType | Problem::OutOfRange)
                && i.field != Some("provider")
        })
        .map(|i| i.message.as_str())
        .collect();
    if !field_issues.is_empty() {
        let as_is = if field_issues.len() == 1 { "it as it is" } else { "them as they are" };
        out.push(finding(
            "L009",
            Severity::Warning,
            Some(slug),
            Some(ty),
            format!("{slug} {ty}: {} (the app sends {as_is})", field_issues.join("; ")),
        ));
    }
    let Some(map) = s.config.as_object() else { return };
    if spec.kind == Kind::Consumer {
        consumer_findings(snapshot, account, rows, s, &judged, map, out);
    }
    if spec.kind == Kind::Provider && s.is_active && judged.has(Verdict::NoApiKey) {
        let why = judged.issues.iter().find(|i| i.verdict == Verdict::NoApiKey).map(|i| i.message.as_str());
        out.push(finding(
            "L003",
            Severity::Warning,
            Some(slug),
            Some(ty),
            format!("{slug} {ty} is active but has no key ({}): it is skipped", why.unwrap_or("missing")),
        ));
    }
    if let Some(Value::String(model)) = map.get("model")
        && !registry::is_known_model(spec, model)
    {
        out.push(finding(
            "L004",
            Severity::Info,
            Some(slug),
            Some(ty),
            format!(
                "{slug} {ty}: model {:?} is not one keyfall knows",
                visible_short(&super::secret::shape_masked(model), 60)
            ),
        ));
    }
    if let Some(Value::String(key)) = map.get("apiKey") {
        out.extend(l008(slug, ty, map, key, s.version));
    }
}

/// How a consumer's own `apiKey` field looks to lint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsumerKey {
    Absent,
    /// Present but null, falsy or blank: nothing the app could send.
    Leftover,
    /// A real value.
    Carried,
}

/// L001 and L002 for a consumer row.
///
/// The app never reads a consumer's `apiKey`. A real key there (any
/// truthy value but a blank string) is an error (L001): it is a secret in
/// the wrong place, and says someone meant this row to stand for a
/// provider. A `null`, `""` or blank `apiKey` is a harmless leftover —
/// nothing leaks and nothing is used — so on its own it is a warning (L001,
/// fix: drop it), never "carries its own apiKey". What makes the seed's
/// wrong config (`{"apiKey": "", "model": "dall-e-3"}`) an error is the
/// missing provider: the app passes the row over. That is reported once,
/// under L001 when an `apiKey` field is there (its fix drops the field and
/// sets the provider, DESIGN §8) or L002 when there is none.
fn consumer_findings(
    snapshot: &Snapshot,
    account: &Account,
    rows: &[&Setting],
    s: &Setting,
    judged: &RowJudgement,
    map: &Map<String, Value>,
    out: &mut Vec<Finding>,
) {
    let slug = account.slug.as_str();
    let ty = s.integration_type.as_str();
    let key = match map.get("apiKey") {
        None => ConsumerKey::Absent,
        Some(Value::String(k)) if registry::is_blank(k) => ConsumerKey::Leftover,
        Some(v) if registry::is_truthy(v) => ConsumerKey::Carried,
        Some(_) => ConsumerKey::Leftover,
    };
    let no_provider = judged.has(Verdict::NoProvider);
    match (key, no_provider && s.is_active) {
        (ConsumerKey::Carried, _) => out.push(l001(
            Severity::Error,
            slug,
            ty,
            format!("{slug} {ty} carries its own apiKey; a consumer should name a provider instead"),
            map,
            s.version,
        )),
        (ConsumerKey::Leftover, true) => out.push(l001(
            Severity::Error,
            slug,
            ty,
            format!("{slug} {ty} names no provider, only an empty apiKey: the app skips it; a consumer should name a provider"),
            map,
            s.version,
        )),
        (ConsumerKey::Leftover, false) => out.push(l001(
            Severity::Warning,
            slug,
            ty,
            format!("{slug} {ty} holds an empty apiKey field, a harmless leftover (the app never reads it)"),
            map,
            s.version,
        )),
        (ConsumerKey::Absent, true) => {
            let mut f = finding(
                "L002",
                Severity::Error,
                Some(slug),
                Some(ty),
                format!("{slug} {ty} names no provider: the app skips it"),
            );
            f.fix = Some(provider_fix(map.clone(), "set", map, s.version));
            out.push(f);
        }
        (ConsumerKey::Absent, false) => {}
    }
    match judged.next.as_ref() {
        Some(Next::Nowhere { reason, .. }) => {
            out.push(finding("L002", Severity::Error, Some(slug), Some(ty), format!("{slug} {ty}: {reason}")));
        }
        Some(Next::Walk(p)) if registry::spec(p).is_none_or(|t| t.kind != Kind::Provider) => {
            let mut f = finding(
                "L002",
                Severity::Error,
                Some(slug),
                Some(ty),
                format!(
                    "{slug} {ty}: provider {:?} is not a provider type",
                    visible_short(&super::secret::shape_masked(p), 40)
                ),
            );
            // " openai" or "Runware": the intended provider is plain.
            let folded = p.trim_matches(registry::is_python_space).to_lowercase();
            if let Some(intended) = registry::provider_names().find(|n| *n == folded) {
                let mut fixed = map.clone();
                fixed.insert("provider".into(), Value::String(intended.into()));
                f.fix = Some(Fix {
                    description: format!("set provider = {intended}"),
                    config: Some(Value::Object(fixed)),
                    field: None,
                    choices: Vec::new(),
                    version: s.version,
                });
            }
            out.push(f);
        }
        Some(Next::Walk(p)) if s.is_active => {
            let hop = if !snapshot.is_system(account.id) && !rows.iter().any(|r| r.integration_type == *p) {
                // A tenant without a row of the provider's type only adds a
                // `no_row` step before the chain's: the chain's answer is
                // its answer (no copy of the snapshot per row).
                resolve_type(snapshot, None, p)
            } else {
                // The chain's rows plus this account's own: what resolution sees.
                let mut local = snapshot.clone();
                local.accounts.insert(account.id, account.clone());
                for r in rows {
                    local.settings.insert((r.account_id, r.integration_type.clone()), (*r).clone());
                }
                resolve_type(&local, Some(account), p)
            };
            let p = visible_short(&super::secret::shape_masked(p), 40);
            let why = match (&hop.error, &hop.answered_by) {
                (Some(error), _) => Some(format!("resolving provider {p} for {slug}, {error}")),
                (None, None) => Some(format!("provider {p} resolves to nothing for {slug}")),
                (None, Some(_)) => None,
            };
            if let Some(why) = why {
                out.push(finding("L002", Severity::Error, Some(slug), Some(ty), format!("{slug} {ty}: {why}")));
            }
        }
        _ => {}
    }
}

/// L008: a key with whitespace, line breaks or quotes from a bad paste. The
/// trim fix never empties a key: a key that is nothing but whitespace is
/// `no_api_key` (L003), and one that trims to nothing gets no fix. A key the
/// database masked (a login without the right to raw keys reads
/// `••••••••abcd #1234abcd`) is not the key: it is not checked, and
/// [`key_is_masked`] / [`l008_not_checked`] say so.
fn l008(slug: &str, ty: &str, map: &Map<String, Value>, key: &str, version: i64) -> Option<Finding> {
    let odd = |c: char| registry::is_python_space(c) || c == '"' || c == '\'';
    if registry::is_blank(key) || key_is_masked_text(key) || !key.chars().any(odd) {
        return None;
    }
    let (clean, trimmed) = super::secret::clean_pasted_secret(key);
    let mut f = finding(
        "L008",
        Severity::Warning,
        Some(slug),
        Some(ty),
        format!("{slug} {ty}: the key holds whitespace, line breaks or quotes (a bad paste?)"),
    );
    if !clean.chars().any(odd) && !registry::is_blank(&clean) && !trimmed.is_empty() {
        let mut fixed = map.clone();
        fixed.insert("apiKey".into(), Value::String(clean));
        f.fix = Some(Fix {
            description: format!("trim {} from the key", trimmed.join(" and ")),
            config: Some(Value::Object(fixed)),
            field: None,
            choices: Vec::new(),
            version,
        });
    }
    Some(f)
}

fn key_is_masked_text(key: &str) -> bool {
    super::secret::masked_fingerprint(key).is_some()
}

/// Whether this setting's `apiKey` is a mask the database put there (the
/// login reads keys masked): L008 could not look at the key.
pub fn key_is_masked(s: &Setting) -> bool {
    matches!(s.config.get("apiKey"), Some(Value::String(key)) if key_is_masked_text(key))
}

/// Said once when keys were masked for this login: L008 (whitespace or
/// quotes in a key) was not run on them. Info, so it never fails `lint`.
pub fn l008_not_checked(masked: usize) -> Finding {
    finding(
        "L008",
        Severity::Info,
        None,
        None,
        format!(
            "L008 not checked: keys are masked for this login ({masked} settings); whitespace or quotes in a key \
             are found by a login that reads raw keys (the schema's owner)"
        ),
    )
}

/// L001: a consumer with an `apiKey` field. The fix drops the field and,
/// when the provider is not a provider type, sets it from the model — or
/// asks.
fn l001(severity: Severity, slug: &str, ty: &str, message: String, map: &Map<String, Value>, version: i64) -> Finding {
    let mut f = finding("L001", severity, Some(slug), Some(ty), message);
    let mut fixed = map.clone();
    fixed.remove("apiKey");
    let has_provider =
        matches!(map.get("provider"), Some(Value::String(p)) if registry::provider_names().any(|n| n == p));
    // A leftover next to a provider, even a wrong one (L002's to fix), only
    // goes.
    let leftover_only = severity == Severity::Warning && map.get("provider").is_some_and(registry::is_truthy);
    f.fix = Some(if has_provider || leftover_only {
        Fix {
            description: "drop apiKey".into(),
            config: Some(Value::Object(fixed)),
            field: None,
            choices: Vec::new(),
            version,
        }
    } else {
        provider_fix(fixed, "drop apiKey, set", map, version)
    });
    f
}

/// A fix that sets `provider` in `fixed`: from the model when its name
/// tells, else a choice for the operator.
fn provider_fix(mut fixed: Map<String, Value>, verb: &str, map: &Map<String, Value>, version: i64) -> Fix {
    match map.get("model").and_then(Value::as_str).and_then(registry::provider_for_model) {
        Some(p) => {
            fixed.insert("provider".into(), Value::String(p.into()));
            Fix {
                description: format!("{verb} provider = {p} (from the model)"),
                config: Some(Value::Object(fixed)),
                field: None,
                choices: Vec::new(),
                version,
            }
        }
        None => Fix {
            description: format!("{verb} a provider (the model does not tell)"),
            config: Some(Value::Object(fixed)),
            field: Some("provider".into()),
            choices: registry::provider_names().map(str::to_string).collect(),
            version,
        },
    }
}

/// L007: a superuser or developer whose checks fail — the seed's "super
/// user is unable to change settings". `account` is the user's account,
/// when it exists.
pub fn privileged_finding(
    snapshot: &Snapshot,
    policy: Policy,
    user: &User,
    account: Option<&Account>,
) -> Option<Finding> {
    let chain: &[ChainEntry] = &snapshot.chain;
    let head = chain.first().map(|e| e.slug.as_str()).unwrap_or("(no system account)");
    let subject = Subject { user, account, account_chain_position: account.and_then(|a| chain_position(chain, a.id)) };
    let d = permissions::evaluate(&subject, policy, Action::ModifySettings, &Target::System { slug: head });
    if d.allowed {
        return None;
    }
    let why: Vec<String> = d.failing().map(|c| format!("{} ({})", c.name, c.reason)).collect();
    let mut f = finding(
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
    );
    f.user = Some(user.email.clone());
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups sort by level, then scope (system-wide, system accounts,
    /// tenants), then rule: a system-wide L006 leads thousands of tenant
    /// L002 errors, and a system account's error comes before theirs.
    #[test]
    fn system_wide_errors_group_first() {
        let system = |slug: &str| slug == "aws-admin";
        let mut keys: Vec<GroupKey> = vec![
            group_key(&finding("L002", Severity::Error, Some("t1"), Some("image_generation"), String::new()), system),
            group_key(&finding("L004", Severity::Info, None, None, String::new()), system),
            group_key(&finding("L001", Severity::Error, Some("aws-admin"), None, String::new()), system),
            group_key(&finding("L006", Severity::Error, None, Some("image_generation"), String::new()), system),
            group_key(&finding("L003", Severity::Warning, None, None, String::new()), system),
        ];
        keys.sort();
        let ids: Vec<(&str, Scope)> = keys.iter().map(|k| (k.2, k.1)).collect();
        assert_eq!(
            ids,
            vec![
                ("L006", Scope::SystemWide),
                ("L001", Scope::SystemAccount),
                ("L002", Scope::Tenant),
                ("L003", Scope::SystemWide),
                ("L004", Scope::SystemWide),
            ]
        );
        assert!((1..=9).all(|n| !rule_title(&format!("L00{n}")).is_empty()));
    }
}
