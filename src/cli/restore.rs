//! `keyfall restore --at WHEN`: bring one account's setting (`--account A
//! --type T`), the chain (`--chain`) or the policy (`--policy`) back to how
//! it was at a moment (issue 23, point 5). The past comes from the audit log
//! (`Store::past`, refused before history or across a gap); the write is an
//! ordinary one — the same preview lines as `set`, `chain set` and `policy
//! set`, the version of today's row checked, the database deciding the
//! right — recorded as `dev@… (restored to as of #812)`. Keys: the log
//! keeps fingerprints only, so a key of the past is kept when it is
//! today's, taken again from stdin or the hidden prompt (checked against
//! the past fingerprint), or left as today's with `--keep-key`.

use serde_json::json;

use crate::config::Config;
use crate::domain::change::Proposal;
use crate::domain::history::{self, Cut};
use crate::domain::restore::{self, KeySource, Rebuilt};
use crate::domain::secret::{Secret, fingerprint_config};
use crate::domain::text::visible;
use crate::store::{Store, WriteOutcome};

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account whose own setting to restore, by slug (with --type).
    #[arg(long, value_name = "SLUG", required_unless_present_any = ["chain", "policy"], requires = "integration_type")]
    pub account: Option<String>,
    /// The integration type of the setting to restore.
    #[arg(long = "type", value_name = "TYPE", value_parser = super::type_parser(), requires = "account")]
    pub integration_type: Option<String>,
    /// Restore the fallback chain instead (superuser or developer).
    #[arg(long, conflicts_with_all = ["account", "policy"])]
    pub chain: bool,
    /// Restore the permission policy instead (superuser or developer).
    #[arg(long, conflicts_with_all = ["account", "chain"])]
    pub policy: bool,
    /// The moment: an ISO time (UTC unless it says), `3 days ago`,
    /// `yesterday 14:00`, or an audit entry `#812` (just before it).
    #[arg(long, value_name = "WHEN")]
    pub at: String,
    /// Where the key of that moment is not today's: restore everything but
    /// the key, which stays as today (else the key is read from stdin or
    /// the hidden prompt and checked against its past fingerprint).
    #[arg(long)]
    pub keep_key: bool,
    /// Fail with a conflict unless today's row is at this version (0: absent).
    #[arg(long, value_name = "N")]
    pub expect_version: Option<i64>,
    /// Show the preview (field changes, keys, impact) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking.
    #[arg(long)]
    pub yes: bool,
}

pub async fn run(store: &Store, config: &Config, args: Args) -> CliResult {
    let moment = history::parse_moment(&args.at, chrono::Utc::now()).map_err(CliError::Usage)?;
    if args.chain || args.policy {
        let actor = super::admin::require_admin(store, config).await?;
        let cut = store.cut(moment).await?;
        return if args.chain {
            chain(store, &actor, cut, &args).await
        } else {
            policy(store, &actor, cut, &args).await
        };
    }
    let (Some(slug), Some(integration_type)) = (args.account.clone(), args.integration_type.clone()) else {
        return Err(CliError::Usage("restore needs --account and --type, or --chain, or --policy".into()));
    };
    super::set::check_type(&integration_type)?;
    let operator = config.operator.as_deref().ok_or_else(|| {
        CliError::Usage("restore needs an operator: --as EMAIL (or `operator` in the config file)".into())
    })?;
    super::set::authorize(store, operator, &slug).await?;
    let cut = store.cut(moment).await?;
    setting(store, operator, cut, &slug, &integration_type, &args).await
}

/// The first line of every restore's preview.
fn heading(what: &str, cut: &Cut) -> String {
    format!("restore {what} to as of {}:", cut.label())
}

async fn setting(store: &Store, operator: &str, cut: Cut, slug: &str, ty: &str, args: &Args) -> CliResult {
    let today = store.setting(slug, ty).await?;
    let account = today.account.clone();
    let past = store.past(cut, None, None, std::slice::from_ref(&account.slug)).await?;
    let when = cut.label();
    // The account by that slug then must be this one: a setting of the
    // past is found by the account's id.
    if past.extra.get(&account.slug).map(|a| a.id) != Some(account.id) {
        return Err(CliError::Usage(format!(
            "{} was not the slug of this account at {when}: keyfall cannot tell its settings then",
            visible(&account.slug)
        )));
    }
    let then = past.data.snapshot.settings.get(&(account.id, ty.to_string())).cloned();
    let now = today.setting.clone();
    if let Some(expected) = args.expect_version {
        let actual = now.as_ref().map_or(0, |s| s.version);
        if actual != expected {
            return Err(CliError::Negative(format!(
                "conflict: {} {ty} is at v{actual}, not v{expected} (nothing written)",
                visible(&account.slug)
            )));
        }
    }
    let expected = now.as_ref().map_or(0, |s| s.version);
    let shown = |s: &crate::domain::Setting| json!({"config": fingerprint_config(&s.config), "is_active": s.is_active});
    let what = format!("{} {ty}", visible(&account.slug));
    let version = now.as_ref().map_or(" (none today)".to_string(), |s| format!(" v{}", s.version));
    let Some(then) = then else {
        // It did not exist then: the restore is a deletion.
        let Some(now) = now else {
            outln!("nothing to restore: {what} did not exist at {when}, and does not now");
            return Ok(Exit::Ok);
        };
        outln!("{}", heading(&format!("{what}{version}"), &cut));
        outln!("  it did not exist then: the restore deletes it");
        out!("{}", super::changes_text(Some(&shown(&now)), None));
        let proposal = Proposal::Delete { account_id: account.id, integration_type: ty.to_string() };
        out!("{}", super::admin::render_impact(&store.impact(&proposal).await?));
        if args.dry_run || !super::admin::confirm("delete it?", args.yes)? {
            outln!("not applied{}", if args.dry_run { " (dry run)" } else { "" });
            return Ok(Exit::Ok);
        }
        store.delete_setting(&restore::actor(operator, &cut), &account.slug, ty, expected).await?;
        outln!("deleted {what} (restored to as of {when}, as {})", visible(operator));
        return Ok(Exit::Ok);
    };
    let today_config = now.as_ref().map(|s| &s.config);
    let plan = restore::rebuild(&then.config, today_config, KeySource::Missing).map_err(CliError::Usage)?;
    let plan = match (plan.ready(), args.keep_key, args.dry_run) {
        (true, _, _) => plan,
        (false, true, _) => {
            restore::rebuild(&then.config, today_config, KeySource::KeepToday).map_err(CliError::Usage)?
        }
        // The preview shows the past key's fingerprint and says where the
        // key is to come from.
        (false, false, true) => plan,
        (false, false, false) => {
            let key = read_key(&plan)?;
            let given =
                restore::rebuild(&then.config, today_config, KeySource::Given(&key)).map_err(CliError::Usage)?;
            if !given.ready() {
                return Err(CliError::Usage(missing(&given, &when)));
            }
            given
        }
    };
    let target = json!({"config": fingerprint_config(&plan.config), "is_active": then.is_active});
    if now.as_ref().is_some_and(|s| s.config == plan.config && s.is_active == then.is_active) {
        outln!("nothing to restore: {what} is as it was at {when}");
        return Ok(Exit::Ok);
    }
    outln!("{}", heading(&format!("{what}{version}"), &cut));
    if now.is_none() {
        outln!("  it does not exist today: the restore creates it");
    }
    let changes = super::changes_text(now.as_ref().map(shown).as_ref(), Some(&target));
    if changes.is_empty() {
        outln!("{}", crate::preview::no_change().text());
    }
    out!("{changes}");
    for key in &plan.keys {
        outln!("  key {}", key.describe(&when));
    }
    let proposal = Proposal::Setting {
        account_id: account.id,
        integration_type: ty.to_string(),
        config: plan.config.clone(),
        is_active: then.is_active,
    };
    out!("{}", super::admin::render_impact(&store.impact(&proposal).await?));
    if args.dry_run {
        outln!("not applied (dry run)");
        return Ok(Exit::Ok);
    }
    if !super::admin::confirm("restore?", args.yes)? {
        outln!("not applied");
        return Ok(Exit::Ok);
    }
    let (config, active) = (plan.config.clone(), then.is_active);
    let outcome = store
        .write_setting(&restore::actor(operator, &cut), &account.slug, ty, Some(expected), move |_| (config, active))
        .await?;
    let (word, saved) = match &outcome {
        WriteOutcome::Created(s) => ("created", s),
        WriteOutcome::Updated(s) => ("restored", s),
        WriteOutcome::Unchanged(s) => ("unchanged", s),
    };
    outln!("{word} {what} as of {when} (v{}, as {})", saved.version, visible(operator));
    Ok(Exit::Ok)
}

/// Why the restore cannot be written: the keys still missing.
fn missing(plan: &Rebuilt, when: &str) -> String {
    let lines: Vec<String> =
        plan.keys.iter().filter(|k| k.fate == restore::KeyFate::Missing).map(|k| k.describe(when)).collect();
    format!("{}; nothing written", lines.join("; "))
}

/// The key of the past, from the hidden prompt or stdin — never argv, never
/// echoed. Empty input is "not given".
fn read_key(plan: &Rebuilt) -> Result<Secret, CliError> {
    let wanted = plan
        .keys
        .iter()
        .find(|k| k.fate == restore::KeyFate::Missing)
        .map(|k| (k.path.clone(), k.fingerprint.clone()))
        .unwrap_or_default();
    let prompt = format!("{} of that moment ({}; input hidden): ", visible(&wanted.0), wanted.1);
    let raw = super::input::secret(&prompt, "the key")?;
    let (key, _) = crate::domain::secret::clean_pasted_secret(&raw);
    if key.is_empty() {
        return Err(CliError::Usage(missing(plan, "that moment")));
    }
    Ok(Secret::new(key))
}

async fn chain(store: &Store, actor: &str, cut: Cut, args: &Args) -> CliResult {
    let past = store.past(cut, None, None, &[]).await?;
    let now = store.subject(None, None).await?;
    let before: Vec<String> = now.snapshot.chain.iter().map(|e| e.slug.clone()).collect();
    let after: Vec<String> = past.data.snapshot.chain.iter().map(|e| e.slug.clone()).collect();
    let when = cut.label();
    if before == after {
        outln!("nothing to restore: the chain is as it was at {when}");
        return Ok(Exit::Ok);
    }
    outln!("{}", heading("the chain", &cut));
    outln!("{}", crate::preview::chain(&before, &after).text());
    for slug in &after {
        if store.account(slug).await?.is_none() {
            outln!("  {}: no such account today (lint L005)", visible(slug));
        }
    }
    out!("{}", super::admin::render_impact(&store.impact(&Proposal::Chain(after.clone())).await?));
    if args.dry_run || !super::admin::confirm("restore?", args.yes)? {
        outln!("not applied{}", if args.dry_run { " (dry run)" } else { "" });
        return Ok(Exit::Ok);
    }
    store.set_chain_and_policy(&restore::actor(actor, &cut), Some(&after), None, &before, now.policy).await?;
    outln!("chain restored to as of {when} (as {})", visible(actor));
    Ok(Exit::Ok)
}

async fn policy(store: &Store, actor: &str, cut: Cut, args: &Args) -> CliResult {
    let past = store.past(cut, None, None, &[]).await?;
    let now = store.subject(None, None).await?;
    let (current, then) = (now.policy, past.data.policy);
    let when = cut.label();
    if current == then {
        outln!("nothing to restore: the policy is as it was at {when} ({})", current.as_str());
        return Ok(Exit::Ok);
    }
    outln!("{}", heading("the policy", &cut));
    outln!("{}", crate::preview::policy(current, then).text());
    out!("{}", super::admin::render_policy_preview(&store.user_groups().await?, current, then));
    if args.dry_run || !super::admin::confirm("restore?", args.yes)? {
        outln!("not applied{}", if args.dry_run { " (dry run)" } else { "" });
        return Ok(Exit::Ok);
    }
    let chain: Vec<String> = now.snapshot.chain.iter().map(|e| e.slug.clone()).collect();
    store.set_chain_and_policy(&restore::actor(actor, &cut), None, Some(then), &chain, current).await?;
    outln!("policy restored to {} as of {when} (as {})", then.as_str(), visible(actor));
    Ok(Exit::Ok)
}
