//! The command executor: runs one `Cmd` against the store and answers with
//! the `Msg` carrying the same request id. Runs in background tasks, never
//! on the input or render path. Tests call it directly.

use crate::app::{Boot, Cmd, Msg, USER_PAGE};
use crate::store::{Store, StoreError, WriteOutcome};

/// How many tenants the console's first frame is drawn from (more than any
/// screen's rows and a page around them).
pub const ACCOUNT_PAGE: i64 = 300;

pub async fn run(store: &Store, cmd: Cmd) -> Msg {
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
                Some(slugs) => store.impact(&crate::store::Proposal::Chain(slugs.clone())).await,
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
        Cmd::Lint { request } => match store.lint_data().await {
            Ok(data) => {
                let input = crate::domain::lint::LintInput {
                    snapshot: &data.snapshot,
                    accounts: &data.accounts,
                    settings: &data.settings,
                    privileged: &data.privileged,
                    policy: data.policy,
                };
                Msg::Linted { request, findings: crate::domain::lint::lint(&input) }
            }
            Err(e) => failed(request, e),
        },
        Cmd::TestConnection { request, actor, account, provider } => {
            match store.config_for_test(&actor, &account, &provider).await {
                Ok(Some(config)) => {
                    let outcome = crate::connection::test(&provider, &config, std::time::Duration::from_secs(10)).await;
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
    }
}

fn failed(request: u64, e: StoreError) -> Msg {
    let unavailable = matches!(e, StoreError::Unavailable(_));
    Msg::Failed { request, error: e.to_string(), unavailable }
}
