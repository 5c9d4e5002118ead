//! `resolve(user, function)` — DESIGN §2. The store gathers every row one
//! resolution can touch (one round trip); this module walks the chain purely
//! and returns the answer together with every step that led to it. The walk
//! is the app's own `get_model_config`: each row gets a raw verdict from
//! `registry::judge`, and the [`Rules`] in force say whether that verdict
//! answers, moves the walk on, or makes the app raise.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::model::{Account, AccountStatus, AiFunction, ChainEntry, Setting, User};
use super::registry::{self, Issue, Kind, Next};
use super::secret::{Secret, mask_config};
use super::text::visible_short;

pub use super::registry::Verdict;

/// What the rules make of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The row is used; the walk stops.
    Answers,
    /// The row is passed over; the walk goes on to the next account.
    MovesOn,
    /// The app raises here; the walk stops with nothing.
    Fails,
}

/// Which raw verdicts move the walk on and which make the app raise; every
/// other verdict answers. `no_row` and `no_account` always move on;
/// `answered` always answers. The set-based SQL binds the same lists
/// ([`Rules::moves_on_names`], [`Rules::fails_names`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rules {
    name: String,
    /// The configurable verdicts that move on, in check order.
    moves_on: Vec<Verdict>,
    fails: Vec<Verdict>,
}

/// Verdicts that move on whatever the rules say.
const ALWAYS_MOVE_ON: [Verdict; 2] = [Verdict::NoRow, Verdict::NoAccount];

impl Default for Rules {
    /// The seed's `get_model_config` (`_usable`): inactive rows, configs
    /// that are not objects, providers without a usable key and consumers
    /// without a provider are passed over; a key that is not a string makes
    /// the app raise, and so does a config its `json.loads` cannot read;
    /// wrong or out-of-range fields answer all the same.
    fn default() -> Self {
        Rules {
            name: "get_model_config (seed)".to_string(),
            moves_on: vec![Verdict::Inactive, Verdict::InvalidConfig, Verdict::NoApiKey, Verdict::NoProvider],
            fails: vec![Verdict::Unreadable, Verdict::KeyNotString],
        }
    }
}

impl Rules {
    /// A declared rule set (config `[resolution]`). Verdicts by name; an
    /// unknown name, `answered` in either list, `no_row`/`no_account` among
    /// the failing, or a verdict in both lists is refused with the reason.
    pub fn new(name: impl Into<String>, moves_on: &[&str], fails: &[&str]) -> Result<Rules, String> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err("a rule set needs a name".to_string());
        }
        let parse = |list: &[&str], what: &str| -> Result<Vec<Verdict>, String> {
            let mut out = Vec::new();
            for raw in list {
                let verdict = Verdict::parse(raw.trim()).ok_or_else(|| {
                    let known: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown verdict {:?} in {what} (known: {})", visible_short(raw, 40), known.join(", "))
                })?;
                if verdict == Verdict::Answered {
                    return Err(format!("answered cannot be in {what}: a usable row always answers"));
                }
                if !out.contains(&verdict) {
                    out.push(verdict);
                }
            }
            out.sort();
            Ok(out)
        };
        let mut moves_on = parse(moves_on, "moves_on")?;
        let fails = parse(fails, "fails")?;
        if let Some(v) = fails.iter().find(|v| ALWAYS_MOVE_ON.contains(v)) {
            return Err(format!("{v} cannot be in fails: there is no row to raise on, the walk always moves on"));
        }
        if let Some(v) = fails.iter().find(|v| moves_on.contains(v)) {
            return Err(format!("{v} is in both moves_on and fails"));
        }
        moves_on.retain(|v| !ALWAYS_MOVE_ON.contains(v));
        Ok(Rules { name, moves_on, fails })
    }

    /// keyfall's old opinion: like the default, but wrong or out-of-range
    /// fields move the walk on too (the provider would reject the call).
    pub fn strict() -> Rules {
        let default = Rules::default();
        let mut moves_on = default.moves_on.clone();
        moves_on.push(Verdict::BadFields);
        Rules { name: "strict (bad fields move on)".to_string(), moves_on, ..default }
    }

    /// The name the trace shows (`Resolution::rules`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn outcome(&self, verdict: Verdict) -> Outcome {
        if ALWAYS_MOVE_ON.contains(&verdict) || self.moves_on.contains(&verdict) {
            Outcome::MovesOn
        } else if self.fails.contains(&verdict) {
            Outcome::Fails
        } else {
            Outcome::Answers
        }
    }

    /// Every verdict that moves on, `no_row` and `no_account` included, in
    /// check order.
    pub fn moves_on_names(&self) -> Vec<&'static str> {
        ALWAYS_MOVE_ON.iter().chain(&self.moves_on).map(|v| v.as_str()).collect()
    }

    /// Every verdict that makes the app raise, in check order.
    pub fn fails_names(&self) -> Vec<&'static str> {
        self.fails.iter().map(|v| v.as_str()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub account: String,
    /// 0 for the user's own account, else the chain position.
    pub position: i32,
    /// What happened here: `answered` for a row the rules make answer
    /// (whatever its raw verdict), else the raw verdict of a row passed over
    /// or one the app raises on.
    pub verdict: Verdict,
    /// The answering config in one line, or why the row was passed over.
    pub detail: String,
    /// On an answering step: every problem keyfall sees that the app lets
    /// through, in plain words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
}

/// One walk along the chain for one integration type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    pub integration_type: String,
    pub answered_by: Option<String>,
    pub steps: Vec<Step>,
    /// The answering config with secrets masked.
    pub config: Option<Value>,
    /// For a consumer type that answered: the second hop, to the provider it
    /// names.
    pub hop: Option<Box<Hop>>,
    /// Set when the walk stopped on a verdict the rules make fail: what the
    /// app raises (the last step is where).
    pub error: Option<String>,
    /// When nothing answers and nothing raised: why, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Hop {
    /// Answered without raising, and so is the second hop if there is one.
    pub fn is_resolved(&self) -> bool {
        self.answered_by.is_some() && self.error.is_none() && self.hop.as_ref().is_none_or(|h| h.is_resolved())
    }

    /// What the app raises, on this hop or the second.
    pub fn failure(&self) -> Option<&str> {
        self.error.as_deref().or_else(|| self.hop.as_ref().and_then(|h| h.failure()))
    }

    /// Where the app raises, in the words every output uses (`resolve
    /// --batch`, `report`: [`raise_reason`]): the row it raises on and, in
    /// the second hop, the answer that led there. None when nothing raises.
    pub fn raises(&self) -> Option<String> {
        if self.error.is_some() {
            let at = self.steps.last()?;
            return Some(raise_reason(&at.account, &self.integration_type, at.verdict.as_str(), None));
        }
        let (Some(by), Some(next)) = (&self.answered_by, &self.hop) else { return None };
        next.error.as_ref()?;
        let at = next.steps.last()?;
        Some(raise_reason(&at.account, &next.integration_type, at.verdict.as_str(), Some((by, &self.integration_type))))
    }

    /// Why the hop is not resolved, in plain words; None when it is.
    pub fn unresolved_reason(&self) -> Option<String> {
        if let Some(error) = &self.error {
            return Some(error.clone());
        }
        match (&self.answered_by, &self.hop) {
            (None, _) => Some(self.reason.clone().unwrap_or_else(|| "nothing answers".to_string())),
            (Some(_), Some(next)) => next.unresolved_reason().map(|why| {
                let shown = super::secret::shape_masked(&next.integration_type);
                format!("second hop ({}): {why}", visible_short(&shown, 40))
            }),
            (Some(_), None) => None,
        }
    }
}

/// What the app raises, as one line: the row (`account`'s
/// `integration_type` setting) whose `verdict` the rules make fail, and for a
/// raise in the second hop the answer that named that type (`via`: the first
/// hop's answering account and type). The app's call raises as a whole: it
/// returns nothing. The resolver, the report and `resolve --batch` all word
/// it here, so the property test can hold them equal.
pub fn raise_reason(account: &str, integration_type: &str, verdict: &str, via: Option<(&str, &str)>) -> String {
    let why = match Verdict::parse(verdict) {
        Some(Verdict::KeyNotString) => "apiKey is truthy and not a string: AttributeError on .strip()".to_string(),
        _ => format!("the rule set in force makes {} raise", visible_short(verdict, 40)),
    };
    let mut out = format!(
        "the app's get_model_config raises here: {}'s {} setting is {} ({why})",
        visible_short(account, 40),
        visible_short(&super::secret::shape_masked(integration_type), 40),
        visible_short(verdict, 40)
    );
    if let Some((by, first)) = via {
        out.push_str(&format!(
            ", in the second hop: the provider named by {}'s {} setting",
            visible_short(by, 40),
            visible_short(first, 40)
        ));
    }
    out
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
    /// The name of the rule set the walk followed.
    pub rules: String,
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
    /// What each verdict makes the walk do. `new` gives the default; the
    /// store sets the declared ones.
    pub rules: Rules,
    /// The ids of every row of a pair that has several (an app table
    /// without a unique (account, type) constraint), lowest first: the app
    /// reads the lowest (Django's `.first()` orders by the primary key), so
    /// `settings` holds that one and the trace says so.
    pub several: HashMap<(i64, String), Vec<i64>>,
}

impl Snapshot {
    pub fn new(chain: Vec<ChainEntry>, accounts: Vec<Account>, settings: Vec<Setting>) -> Self {
        let mut by_pair: HashMap<(i64, String), Setting> = HashMap::with_capacity(settings.len());
        let mut several: HashMap<(i64, String), Vec<i64>> = HashMap::new();
        for s in settings {
            let key = (s.account_id, s.integration_type.clone());
            match by_pair.get_mut(&key) {
                None => {
                    by_pair.insert(key, s);
                }
                // The same row again (a later read of it): it replaces.
                Some(kept) if kept.id == s.id => *kept = s,
                Some(kept) => {
                    let ids = several.entry(key).or_insert_with(|| vec![kept.id]);
                    ids.push(s.id);
                    ids.sort_unstable();
                    if s.id < kept.id {
                        *kept = s;
                    }
                }
            }
        }
        Snapshot {
            chain,
            accounts: accounts.into_iter().map(|a| (a.id, a)).collect(),
            settings: by_pair,
            rules: Rules::default(),
            several,
        }
    }

    /// "one of 2 rows for (paid-2, openai), ids 5, 9: the app takes the
    /// lowest id, 5" where the pair has several rows, else `None`.
    pub fn which_row(&self, account: &Account, integration_type: &str) -> Option<String> {
        let ids = self.several.get(&(account.id, integration_type.to_string()))?;
        Some(several_rows(&account.slug, integration_type, ids))
    }

    pub fn is_system(&self, account_id: i64) -> bool {
        super::model::chain_position(&self.chain, account_id).is_some()
    }

    fn setting(&self, account_id: i64, integration_type: &str) -> Option<&Setting> {
        self.settings.get(&(account_id, integration_type.to_string()))
    }

    /// The accounts a walk visits, in order, as the app's `_walk` does: the
    /// start account (the user's own, whatever it is — a system account
    /// too) at position 0, then the chain in order. The chain entry for the
    /// start account is left out: the app visits it a second time, but it
    /// can only give the same verdict.
    fn walk_order<'a>(&'a self, start: Option<&'a Account>) -> Vec<(i32, &'a str, Option<&'a Account>)> {
        let mut order = Vec::with_capacity(self.chain.len() + 1);
        if let Some(account) = start {
            order.push((0, account.slug.as_str(), Some(account)));
        }
        for entry in &self.chain {
            if start.is_some_and(|s| entry.account.as_ref().is_some_and(|a| a.id == s.id)) {
                continue;
            }
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
            code: if a.status == AccountStatus::Cancelled { "account_cancelled" } else { "account_suspended" },
            message: format!("account {} is {}", visible_short(&a.slug, 80), a.status.as_str()),
        }),
        Some(_) => {}
    }
    Resolution {
        user: user.email.clone(),
        function: function.name.clone(),
        rules: snapshot.rules.name().to_string(),
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
    let mut hop = Hop {
        integration_type: integration_type.to_string(),
        answered_by: None,
        steps: Vec::new(),
        config: None,
        hop: None,
        error: None,
        reason: None,
    };
    for (position, slug, account) in snapshot.walk_order(start) {
        let step = |verdict, detail, findings| Step { account: slug.to_string(), position, verdict, detail, findings };
        let Some(account) = account else {
            hop.steps.push(step(
                Verdict::NoAccount,
                "no such account (the chain names a missing account)".into(),
                Vec::new(),
            ));
            continue;
        };
        let Some(setting) = snapshot.setting(account.id, integration_type) else {
            let detail = format!("no {} setting", visible_short(integration_type, 40));
            hop.steps.push(step(Verdict::NoRow, detail, Vec::new()));
            continue;
        };
        // Where the pair has several rows, every step on it says which one
        // the app reads (the lowest id).
        let step = |verdict, detail: String, findings| match snapshot.which_row(account, integration_type) {
            Some(which) => step(verdict, format!("{detail} ({which})"), findings),
            None => step(verdict, detail, findings),
        };
        let judged = match &setting.withheld {
            Some(withheld) => registry::judge_withheld(integration_type, withheld),
            None => registry::judge(integration_type, &setting.config, setting.is_active),
        };
        match snapshot.rules.outcome(judged.verdict) {
            Outcome::MovesOn => hop.steps.push(step(judged.verdict, judged.reason(), Vec::new())),
            Outcome::Fails => {
                let reason = judged.reason();
                let how = if judged.verdict == Verdict::KeyNotString { " (AttributeError on .strip())" } else { "" };
                hop.error = Some(format!("the app's get_model_config raises here: {reason}{how}"));
                hop.steps.push(step(judged.verdict, reason, Vec::new()));
                return hop;
            }
            Outcome::Answers => {
                let findings = judged.issues.iter().map(Issue::finding).chain(judged.notes).collect();
                let detail = match setting.withheld {
                    Some(_) => "settings not shown to you".to_string(),
                    None => summary(integration_type, &setting.config),
                };
                hop.steps.push(step(Verdict::Answered, detail, findings));
                hop.answered_by = Some(slug.to_string());
                hop.config = setting.withheld.is_none().then(|| mask_config(&setting.config));
                let consumer = registry::spec(integration_type).is_some_and(|s| s.kind == Kind::Consumer);
                if follow && consumer {
                    hop.hop = Some(Box::new(second_hop(snapshot, start, judged.next)));
                }
                return hop;
            }
        }
    }
    hop.reason = Some(nothing_answers(integration_type, &hop.steps, !follow));
    hop
}

/// The one wording for a pair with several rows (`ids` lowest first): the
/// trace, `get` and the refusal of a write say it alike.
pub fn several_rows(slug: &str, integration_type: &str, ids: &[i64]) -> String {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!(
        "one of {} rows for ({}, {}), ids {}: the app takes the lowest id, {}",
        ids.len(),
        visible_short(slug, 60),
        visible_short(integration_type, 40),
        list.join(", "),
        ids.first().copied().unwrap_or_default()
    )
}

/// The consumer's second hop: the type its provider names, walked again
/// from the user's account — whatever the string is, as the app does.
fn second_hop(snapshot: &Snapshot, start: Option<&Account>, next: Option<Next>) -> Hop {
    let nowhere = |integration_type: String, reason: String| Hop {
        integration_type,
        answered_by: None,
        steps: Vec::new(),
        config: None,
        hop: None,
        error: None,
        reason: Some(reason),
    };
    match next {
        Some(Next::Walk(provider)) => walk(snapshot, start, &provider, false),
        Some(Next::Nowhere { text, reason }) => nowhere(text, reason),
        // Only when the rules make a row without a usable provider answer.
        None => nowhere("(no provider)".into(), "the answering setting names no provider".into()),
    }
}

/// Why a walk found nothing: the rows it passed over, and for a second hop
/// whether the type it looked for is a provider type at all.
fn nothing_answers(integration_type: &str, steps: &[Step], second: bool) -> String {
    let shown = visible_short(&super::secret::shape_masked(integration_type), 40);
    let passed: Vec<String> = steps
        .iter()
        .filter(|s| !matches!(s.verdict, Verdict::NoRow | Verdict::NoAccount))
        .map(|s| format!("{} {} ({})", visible_short(&s.account, 40), s.verdict, s.detail))
        .collect();
    let mut out = if passed.is_empty() {
        format!("no account has a '{shown}' setting")
    } else {
        format!("no account answers '{shown}': {}", passed.join("; "))
    };
    if second && registry::spec(integration_type).is_none_or(|s| s.kind != Kind::Provider) {
        out.push_str(&format!("; '{shown}' is not a provider type"));
    }
    out
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
        Some(Kind::Consumer) => match config.get("provider") {
            Some(Value::String(p)) => {
                parts.push(format!("provider={}", visible_short(&super::secret::shape_masked(p), 40)))
            }
            Some(Value::Null) | None => {}
            Some(other) => {
                parts.push(format!("provider={}", visible_short(&super::secret::mask_config(other).to_string(), 40)))
            }
        },
        None => parts.push("unknown type, used as is".to_string()),
    }
    if let Some(model) = text("model") {
        parts.push(format!("model={}", visible_short(&super::secret::shape_masked(model), 60)));
    }
    parts.join(" ")
}
