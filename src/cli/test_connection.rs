//! `keyfall test-connection`: does the key really work? Tests the setting of
//! ACCOUNT TYPE, or — with `--user/--function` — the key that would actually
//! answer for that user (following the second hop). Exit 0 on success, 1 on
//! a failed test, 2 when the endpoint needs `--allow-insecure-endpoint`
//! (plain http, credentials in the URL, a loopback, link-local or private
//! address): then nothing is sent, and — when the stored `base_url` already
//! says so — the key is not even read.

use std::time::Duration;

use serde_json::Value;

use crate::config::Config;
use crate::connection::{self, Insecure, Refusal};
use crate::domain::registry::{self, Kind};
use crate::domain::resolve;
use crate::domain::text::{visible, visible_short};
use crate::store::Store;

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account whose setting to test (with TYPE).
    #[arg(requires = "integration_type", conflicts_with_all = ["user", "function"])]
    pub account: Option<String>,
    /// The integration type whose key to test (openai, runware, or a consumer type).
    #[arg(value_name = "TYPE")]
    pub integration_type: Option<String>,
    /// Test the key that answers for this user…
    #[arg(long, requires = "function")]
    pub user: Option<String>,
    /// …and this AI function.
    #[arg(long, requires = "user")]
    pub function: Option<String>,
    /// Seconds before giving up.
    #[arg(long, default_value = "10")]
    pub timeout: f64,
    /// Send the key even to plain http, a URL with credentials, or a
    /// loopback, link-local or private address (a local mock, a proxy).
    #[arg(long)]
    pub allow_insecure_endpoint: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(store: &Store, config: &Config, args: Args) -> CliResult {
    let (account, provider, stored_config) = match (&args.account, &args.integration_type, &args.user, &args.function) {
        (Some(slug), Some(ty), _, _) => {
            super::set::check_type(ty)?;
            let spec = registry::spec(ty).expect("checked above");
            let found = store.setting(slug, ty).await?;
            let setting = found.setting.ok_or_else(|| {
                CliError::Usage(format!(
                    "{} has no own {ty} setting (test the resolved one with --user/--function)",
                    visible(slug)
                ))
            })?;
            match spec.kind {
                Kind::Provider => (slug.clone(), ty.clone(), setting.config),
                Kind::Consumer => {
                    // A consumer has no key: test the provider it names, as
                    // it resolves from this account.
                    let p = setting.config.get("provider").and_then(Value::as_str).unwrap_or_default().to_string();
                    let data = store.subject(None, None).await?;
                    let mut snapshot = data.snapshot;
                    snapshot.accounts.insert(found.account.id, found.account.clone());
                    for s in store.settings_of(&[found.account.id]).await? {
                        snapshot.settings.insert((s.account_id, s.integration_type.clone()), s);
                    }
                    let hop = resolve::resolve_type(&snapshot, Some(&found.account), &p);
                    let by = hop
                        .answered_by
                        .ok_or_else(|| CliError::Negative(format!("{p} resolves to nothing for {}", visible(slug))))?;
                    let raw = raw_config(&snapshot, &by, &p)
                        .ok_or_else(|| CliError::Negative(format!("{p}: no key found")))?;
                    (by, p, raw)
                }
            }
        }
        (_, _, Some(email), Some(function)) => {
            let data = store.subject(Some(email), Some(function)).await?;
            let user = super::require_user(&data, email)?;
            let f = data
                .function
                .clone()
                .ok_or_else(|| CliError::Usage(format!("unknown function {:?}", visible_short(function, 60))))?;
            let r = resolve::resolve(&data.snapshot, &user, &f);
            let hop = r.hop.hop.as_deref().unwrap_or(&r.hop);
            let by = hop.answered_by.clone().ok_or_else(|| {
                CliError::Negative(format!("{} · {}: unresolved, no key to test", visible(email), visible(function)))
            })?;
            let raw = raw_config(&data.snapshot, &by, &hop.integration_type)
                .ok_or_else(|| CliError::Negative("no key found".into()))?;
            (by, hop.integration_type.clone(), raw)
        }
        _ => return Err(CliError::Usage("give ACCOUNT TYPE, or --user EMAIL --function NAME".into())),
    };
    let Some(operator) = &config.operator else {
        return Err(CliError::Usage("test-connection needs an operator: --as EMAIL".into()));
    };
    super::set::authorize_action(store, operator, &account, crate::domain::permissions::Action::TestConnection).await?;
    if !args.timeout.is_finite() {
        return Err(CliError::Usage("--timeout must be a number of seconds".into()));
    }
    let timeout = Duration::from_secs_f64(args.timeout.clamp(0.1, 120.0));
    let insecure = if args.allow_insecure_endpoint { Insecure::Allow } else { Insecure::Refuse };
    // An endpoint the stored base_url already shows to be refused: the key
    // is not even read (the test below checks the config it reads again).
    if insecure == Insecure::Refuse
        && let Some(refusal) = connection::would_refuse(&provider, &stored_config, timeout).await
    {
        return Err(refused(&refusal));
    }
    // The key itself comes from the database, which checks the right again
    // and records the read; what was resolved above only chose whose key.
    let Some(provider_config) = store.config_for_test(operator, &account, &provider).await? else {
        return Err(CliError::Negative(format!("{} {provider}: no setting to test", visible(&account))));
    };
    let outcome = connection::test(&provider, &provider_config, timeout, &insecure).await;
    if let Some(refusal) = &outcome.refused {
        return Err(refused(refusal));
    }
    if args.json {
        super::print_json(&outcome)?;
    } else {
        let mark = if outcome.ok { "✓" } else { "✗" };
        let allowed = match &outcome.insecure {
            Some(why) => format!("; insecure endpoint allowed: {why}"),
            None => String::new(),
        };
        outln!(
            "{mark} {} {provider} via {}: {} ({} ms{allowed})",
            visible(&account),
            visible_short(&outcome.host, 60),
            outcome.message,
            outcome.elapsed_ms
        );
    }
    Ok(if outcome.ok { Exit::Ok } else { Exit::Negative })
}

/// Exit 2, one line: where, why, and how to send it anyway.
fn refused(refusal: &Refusal) -> CliError {
    CliError::Usage(format!("not sent: {} (--allow-insecure-endpoint sends it anyway)", refusal.message()))
}

/// The unmasked config of `slug`'s setting of `ty` in the snapshot.
fn raw_config(snapshot: &resolve::Snapshot, slug: &str, ty: &str) -> Option<Value> {
    let account = snapshot.accounts.values().find(|a| a.slug == slug)?;
    snapshot.settings.get(&(account.id, ty.to_string())).map(|s| s.config.clone())
}
