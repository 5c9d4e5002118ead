//! The command executor: runs one `Cmd` against the store and answers with
//! the `Msg` carrying the same request id. Runs in background tasks, never
//! on the input or render path. Tests call it directly.
//!
//! Every command gets an answer: its reply, or — past its bound (`bound`)
//! — a failure saying "timed out after N s", so no screen waits forever.

use std::time::Duration;

use crate::app::{Boot, Cmd, Msg, USER_PAGE};
use crate::connection::{self, Insecure, Outcome};
use crate::store::{Store, StoreError, WriteOutcome};

/// How many tenants the console's first frame is drawn from (more than any
/// screen's rows and a page around them).
pub const ACCOUNT_PAGE: i64 = 300;

/// How long a connection test's HTTP call may take (the CLI's default).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The statement timeout keyfall's sessions run with by default.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The statement timeout configured for this console, when keyfall set it.
static STATEMENT_TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// The console's sessions run with this statement timeout (the config's,
/// or the environment's): the bounds below grow by as much as it exceeds
/// the default 30 s, so a console never gives up on a statement the
/// operator allowed to run longer. Set once, at start.
pub fn set_statement_timeout(timeout: Duration) {
    let _ = STATEMENT_TIMEOUT.set(timeout);
}

/// How long the console waits for a command before saying it timed out.
/// Each is the work's own bounds plus a margin: a statement's 30 s (and
/// a connect's 10 s) for a read, a write's 5 s lock wait and 30 s
/// statement, the impact preview's 60 s, a test's key read and 10 s call;
/// plus what a configured statement timeout adds over 30 s.
pub fn bound(cmd: &Cmd) -> Duration {
    let secs = match cmd {
        Cmd::Copy { .. } => 5,
        Cmd::LoadSettings { .. }
        | Cmd::Resolve { .. }
        | Cmd::FindUsers { .. }
        | Cmd::LoadAudit { .. }
        | Cmd::LoadAuditList { .. }
        | Cmd::LoadHistory { .. }
        | Cmd::ResolveAt { .. } => 45,
        Cmd::Save { .. } | Cmd::Delete { .. } | Cmd::Reveal { .. } | Cmd::ApplyAdmin { .. } => 45,
        Cmd::TestConnection { .. } => 60,
        Cmd::Boot { .. } => 60,
        Cmd::Preview { .. } | Cmd::PreviewAdmin { .. } => 90,
        // The whole index and every setting: long at a million accounts.
        Cmd::LoadIndex { .. } | Cmd::Lint { .. } => 120,
        // The whole world of a moment; a key's every stretch.
        Cmd::Travel { .. } | Cmd::KeyHistory { .. } => 120,
    };
    let longer = STATEMENT_TIMEOUT.get().map(|t| t.saturating_sub(DEFAULT_STATEMENT_TIMEOUT)).unwrap_or_default();
    let extra = if matches!(cmd, Cmd::Copy { .. }) { Duration::ZERO } else { longer };
    Duration::from_secs(secs) + extra
}

/// Run `cmd` within its bound (`bound`).
pub async fn run(store: &Store, cmd: Cmd) -> Msg {
    let within = bound(&cmd);
    run_within(store, cmd, within).await
}

/// Run `cmd`, answering a failure once `within` has passed. A write cut
/// short may still have gone through: the failure says so, and a change
/// that was made shows live.
pub async fn run_within(store: &Store, cmd: Cmd, within: Duration) -> Msg {
    let request = cmd.request();
    let writes = matches!(cmd, Cmd::Save { .. } | Cmd::Delete { .. } | Cmd::ApplyAdmin { .. });
    match tokio::time::timeout(within, execute(store, cmd)).await {
        Ok(msg) => msg,
        Err(_) => {
            let error = format!(
                "timed out after {}{}",
                connection::seconds(within),
                if writes { " (it may still go through: a change made shows live)" } else { "" }
            );
            Msg::Failed { request, error, unavailable: false }
        }
    }
}

/// How many accounts' settings one page of the console's lint judges.
pub const LINT_PAGE: i64 = 2_000;

/// One page of the console's lint: the rules `keyfall lint` runs (the same
/// `domain::lint` functions, an account at a time) over the next
/// `LINT_PAGE` accounts after `after`. The first page adds the chain's
/// findings and how many settings there are; the last, the superusers' and
/// developers' (L007).
async fn lint_page(
    store: &Store,
    after: Option<i64>,
) -> Result<(Vec<crate::domain::lint::Finding>, crate::app::lint_view::LintPage), StoreError> {
    use crate::domain::lint;
    use futures_util::TryStreamExt;
    let base = store.subject(None, None).await?;
    let snapshot = &base.snapshot;
    let mut page = crate::app::lint_view::LintPage::default();
    let mut findings = Vec::new();
    if after.is_none() {
        findings.extend(lint::chain_findings(snapshot));
        page.total = store.settings_count().await?.max(0) as u64;
    }
    let accounts = store.settings_page(after.unwrap_or(i64::MIN), LINT_PAGE).await?;
    for (account, settings) in &accounts {
        page.checked += settings.len() as u64;
        page.hidden += settings.iter().filter(|s| s.withheld.is_some()).count();
        page.masked += settings.iter().filter(|s| lint::key_is_masked(s)).count();
        let before = findings.len();
        findings.extend(lint::account_findings(snapshot, account, settings).into_iter().flatten());
        if findings.len() > before {
            page.names.push((account.slug.clone(), account.name.clone()));
        }
    }
    if accounts.len() as i64 >= LINT_PAGE {
        page.next = accounts.last().map(|(a, _)| a.id);
        return Ok((findings, page));
    }
    let mut users = store.privileged_users(None);
    while let Some((user, account)) = users.try_next().await? {
        if let Some(f) = lint::privileged_finding(snapshot, base.policy, &user, account.as_ref()) {
            if let Some(a) = account {
                page.names.push((a.slug, a.name));
            }
            findings.push(f);
        }
    }
    Ok((findings, page))
}

async fn execute(store: &Store, cmd: Cmd) -> Msg {
    match cmd {
        Cmd::Boot { request, operator } => {
            // The first page, not the whole index: a first frame at a
            // million accounts waits for a few hundred rows; the rest
            // follows (Cmd::LoadIndex).
            let (accounts, base, functions) = tokio::join!(
                store.account_page(ACCOUNT_PAGE),
                store.subject(operator.as_deref(), None),
                store.functions()
            );
            match (accounts, base, functions) {
                (Ok((accounts, complete)), Ok(base), Ok(functions)) => {
                    Msg::Booted { request, boot: Box::new(Boot { accounts, complete, base, functions }) }
                }
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => failed(request, e),
            }
        }
        Cmd::LoadIndex { request } => match store.account_index().await {
            Ok(accounts) => Msg::IndexLoaded { request, accounts },
            Err(e) => failed(request, e),
        },
        Cmd::LoadSettings { request, account_ids } => match store.settings_of(&account_ids).await {
            Ok(settings) => Msg::Settings { request, account_ids, settings },
            Err(e) => failed(request, e),
        },
        Cmd::Resolve { request, email, function } => match store.subject(Some(&email), Some(&function)).await {
            Ok(subject) => Msg::Resolved { request, subject: Box::new(subject) },
            Err(e) => failed(request, e),
        },
        Cmd::FindUsers { request, query } => match store.find_users(&query, USER_PAGE).await {
            Ok(hits) => Msg::UsersFound { request, hits },
            Err(e) => failed(request, e),
        },
        Cmd::Preview { request, proposal } => match store.impact(&proposal).await {
            Ok(impact) => Msg::Previewed { request, impact },
            Err(e) => failed(request, e),
        },
        Cmd::Save { request, actor, account, integration_type, expected_version, config, is_active } => {
            let result = store
                .write_setting(&actor, &account, &integration_type, Some(expected_version), |_| (config, is_active))
                .await;
            match result {
                Ok(WriteOutcome::Created(s) | WriteOutcome::Updated(s) | WriteOutcome::Unchanged(s)) => {
                    Msg::Saved { request, result: Ok(Some(s)) }
                }
                Err(StoreError::Conflict(c)) => Msg::Saved { request, result: Err(c) },
                Err(e) => failed(request, e),
            }
        }
        Cmd::Delete { request, actor, account, integration_type, expected_version } => {
            match store.delete_setting(&actor, &account, &integration_type, expected_version).await {
                Ok(()) => Msg::Saved { request, result: Ok(None) },
                Err(StoreError::Conflict(c)) => Msg::Saved { request, result: Err(c) },
                Err(e) => failed(request, e),
            }
        }
        Cmd::Reveal { request, actor, account, integration_type } => {
            match store.reveal(&actor, &account, &integration_type).await {
                Ok(secret) => Msg::Revealed { request, secret },
                Err(e) => failed(request, e),
            }
        }
        Cmd::LoadAuditList { request, account, integration_type } => {
            match store.audit(Some(&account), Some(&integration_type), None, 200).await {
                Ok(entries) => Msg::AuditList { request, entries },
                Err(e) => failed(request, e),
            }
        }
        Cmd::PreviewAdmin { request, chain, policy } => {
            let impact = match &chain {
                Some(slugs) => store.impact(&crate::domain::change::Proposal::Chain(slugs.clone())).await,
                None => Ok(Vec::new()),
            };
            let moves = match policy {
                Some((from, to)) => {
                    store.user_groups().await.map(|g| crate::domain::permissions::policy_moves(&g, from, to))
                }
                None => Ok(Vec::new()),
            };
            match (impact, moves) {
                (Ok(impact), Ok(moves)) => Msg::AdminPreviewed { request, impact, moves },
                (Err(e), _) | (_, Err(e)) => failed(request, e),
            }
        }
        Cmd::ApplyAdmin { request, actor, chain, policy, expected_chain, expected_policy } => {
            match store.set_chain_and_policy(&actor, chain.as_deref(), policy, &expected_chain, expected_policy).await {
                Ok(()) => Msg::AdminApplied { request },
                Err(e) => failed(request, e),
            }
        }
        Cmd::Lint { request, after } => match lint_page(store, after).await {
            Ok((findings, page)) => Msg::Linted { request, findings, page },
            Err(e) => failed(request, e),
        },
        Cmd::TestConnection { request, actor, account, provider, insecure } => {
            // An endpoint the stored base_url already shows to be refused:
            // the key is not even read (the test checks what it reads again).
            if insecure == Insecure::Refuse
                && let Ok(crate::store::SettingRef { setting: Some(stored), .. }) =
                    store.setting(&account, &provider).await
                && let Some(refusal) = connection::would_refuse(&provider, &stored.config, TEST_TIMEOUT).await
            {
                return Msg::Tested { request, outcome: Outcome::refused(refusal) };
            }
            match store.config_for_test(&actor, &account, &provider).await {
                Ok(Some(config)) => {
                    let outcome = connection::test(&provider, &config, TEST_TIMEOUT, &insecure).await;
                    Msg::Tested { request, outcome }
                }
                Ok(None) => Msg::Failed { request, error: "no such setting any more".into(), unavailable: false },
                Err(e) => failed(request, e),
            }
        }
        // The runtime wrote it to the terminal already (`tui::run`).
        Cmd::Copy { request, .. } => Msg::Copied { request },
        Cmd::LoadAudit { request, id } => match store.audit_entry(id).await {
            Ok(entry) => Msg::AuditLoaded { request, entry },
            Err(e) => failed(request, e),
        },
        Cmd::LoadHistory { request } => {
            let (window, recent) = tokio::join!(store.history_window(), store.audit(None, None, None, 40));
            match (window, recent) {
                (Ok(window), Ok(recent)) => Msg::HistoryLoaded { request, window, recent },
                (Err(e), _) | (_, Err(e)) => failed(request, e),
            }
        }
        Cmd::Travel { request, moment } => {
            let world = match store.cut(moment).await {
                Ok(cut) => store.world_at(cut).await,
                Err(e) => Err(e),
            };
            match world {
                Ok(world) => Msg::Travelled { request, world: Box::new(world) },
                Err(e) => failed(request, e),
            }
        }
        Cmd::ResolveAt { request, cut, email, function } => {
            match store.past(cut, Some(&email), Some(&function), &[]).await {
                Ok(past) => Msg::Resolved { request, subject: Box::new(past.data) },
                Err(e) => failed(request, e),
            }
        }
        Cmd::KeyHistory { request, fingerprint } => match store.key_history(&fingerprint).await {
            Ok(history) => Msg::KeyHistoryLoaded { request, history: Box::new(history) },
            Err(e) => failed(request, e),
        },
    }
}

fn failed(request: u64, e: StoreError) -> Msg {
    let unavailable = matches!(e, StoreError::Unavailable(_));
    Msg::Failed { request, error: e.to_string(), unavailable }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test in this process that sets the statement timeout.
    #[test]
    fn a_longer_statement_timeout_lengthens_every_bound_but_copy() {
        let lint = Cmd::Lint { request: 1, after: None };
        let copy = Cmd::Copy { request: 2, what: "slug".into(), text: crate::domain::Secret::new("x") };
        assert_eq!(bound(&lint), Duration::from_secs(120));
        set_statement_timeout(Duration::from_secs(150));
        assert_eq!(bound(&lint), Duration::from_secs(240), "120 s and the 2 min over the default 30 s");
        assert_eq!(bound(&copy), Duration::from_secs(5));
    }
}
