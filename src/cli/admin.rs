//! `keyfall chain` and `keyfall policy`: the two settings that move every
//! tenant at once. Superuser or developer only, previewed first, audited by
//! the database, applied after a confirmation (or `--yes`).

use std::io::{BufRead, IsTerminal, Write};

use crate::config::Config;
use crate::domain::Policy;
use crate::domain::change::{ImpactRow, Proposal};
use crate::domain::model::Role;
use crate::domain::permissions::{self, UserKind};
use crate::domain::text::{visible, visible_short};
use crate::store::Store;

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// Show the chain.
    Show {
        /// Machine-readable output: [{"position","account","exists"}].
        #[arg(long)]
        json: bool,
    },
    /// Replace the chain with these account slugs, in order.
    Set {
        /// The system accounts, first asked first.
        #[arg(required = true, value_name = "SLUG")]
        slugs: Vec<String>,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
        /// Preview only.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Show the policy in force.
    Show {
        /// Machine-readable output: {"policy","letter"}.
        #[arg(long)]
        json: bool,
    },
    /// Switch to system_only (A), per_account (B) or hybrid_readonly (C).
    Set {
        /// system_only, per_account, hybrid_readonly — or A, B, C.
        #[arg(ignore_case = true, value_parser = super::policy_parser())]
        mode: Policy,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
        /// Preview who gains or loses which action; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The operator, who must be a superuser or a developer.
pub(super) async fn require_admin(store: &Store, config: &Config) -> Result<String, CliError> {
    let email = config
        .operator
        .clone()
        .ok_or_else(|| CliError::Usage("this needs an operator: --as EMAIL (superuser or developer)".into()))?;
    let data = store.subject(Some(&email), None).await?;
    let user = data.user.ok_or_else(|| {
        CliError::Usage(format!("unknown operator {:?} (--as must name a keyfall user)", visible_short(&email, 80)))
    })?;
    if !(user.is_superuser || user.role == Role::Developer) || !user.is_active {
        // A denial is exit 4 on every path, whoever checks it.
        return Err(CliError::Store(crate::store::StoreError::Refused(format!(
            "denied: {} is not an active superuser or developer",
            visible_short(&email, 80)
        ))));
    }
    Ok(user.email)
}

/// Ask on a terminal; without one, only `--yes` applies.
pub fn confirm(question: &str, yes: bool) -> Result<bool, CliError> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage("not applied: no terminal to confirm on (add --yes)".into()));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// The impact as the CLI prints it: the lines the console shows too.
pub fn render_impact(rows: &[ImpactRow]) -> String {
    crate::preview::text(&crate::preview::impact(rows))
}

pub async fn chain(store: &Store, config: &Config, command: ChainCommand) -> CliResult {
    let data = store.subject(None, None).await?;
    match command {
        ChainCommand::Show { json: true } => {
            let rows: Vec<_> = data
                .snapshot
                .chain
                .iter()
                .map(|e| serde_json::json!({"position": e.position, "account": e.slug, "exists": e.account.is_some()}))
                .collect();
            super::print_json_list(&rows)?;
            Ok(Exit::Ok)
        }
        ChainCommand::Show { json: false } => {
            for e in &data.snapshot.chain {
                let missing = if e.account.is_none() { "   (no such account: lint L005)" } else { "" };
                outln!("{} {}{missing}", e.position, visible(&e.slug));
            }
            Ok(Exit::Ok)
        }
        ChainCommand::Set { slugs, yes, dry_run } => {
            let actor = require_admin(store, config).await?;
            let mut seen = std::collections::HashSet::new();
            for s in &slugs {
                if !seen.insert(s) {
                    return Err(CliError::Usage(format!("{:?} appears twice", visible_short(s, 60))));
                }
                if store.account(s).await?.is_none() {
                    return Err(super::unknown_account(s));
                }
            }
            let before: Vec<&str> = data.snapshot.chain.iter().map(|e| e.slug.as_str()).collect();
            let before_owned: Vec<String> = before.iter().map(|s| s.to_string()).collect();
            outln!("{}", crate::preview::chain(&before_owned, &slugs).text());
            out!("{}", render_impact(&store.impact(&Proposal::Chain(slugs.clone())).await?));
            if dry_run || !confirm("apply?", yes)? {
                outln!("not applied");
                return Ok(Exit::Ok);
            }
            let before: Vec<String> = before.iter().map(|s| s.to_string()).collect();
            store.set_chain_and_policy(&actor, Some(&slugs), None, &before, data.policy).await?;
            outln!("chain set (as {})", visible(&actor));
            Ok(Exit::Ok)
        }
    }
}

pub async fn policy(store: &Store, config: &Config, command: PolicyCommand) -> CliResult {
    let current = store.subject(None, None).await?.policy;
    match command {
        PolicyCommand::Show { json } => {
            if json {
                super::print_json(
                    &serde_json::json!({"policy": current.as_str(), "letter": current.letter().to_string()}),
                )?;
            } else {
                outln!("{} ({})", current.as_str(), current.letter());
            }
            Ok(Exit::Ok)
        }
        PolicyCommand::Set { mode, yes, dry_run } => {
            let actor = require_admin(store, config).await?;
            outln!("{}", crate::preview::policy(current, mode).text());
            out!("{}", render_policy_preview(&store.user_groups().await?, current, mode));
            if dry_run || !confirm("apply?", yes)? {
                outln!("not applied");
                return Ok(Exit::Ok);
            }
            let chain: Vec<String> =
                store.subject(None, None).await?.snapshot.chain.iter().map(|e| e.slug.clone()).collect();
            store.set_chain_and_policy(&actor, None, Some(mode), &chain, current).await?;
            outln!("policy set to {} (as {})", mode.as_str(), visible(&actor));
            Ok(Exit::Ok)
        }
    }
}

/// Which users gain or lose which action, on the system settings and on
/// their own account's, counted per group of look-alike users.
pub fn render_policy_preview(groups: &[(UserKind, i64, Vec<String>)], from: Policy, to: Policy) -> String {
    crate::preview::text(&crate::preview::policy_moves(&permissions::policy_moves(groups, from, to)))
}
