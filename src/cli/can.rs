//! `keyfall can`: the permission checks of DESIGN §4 for one user, every
//! check with its reason — "why can't X change settings?" in one command.

use std::fmt::Write;

use crate::domain::Policy;
use crate::domain::directory::SubjectData;
use crate::domain::model::chain_position;
use crate::domain::permissions::{self, Action, Permissions, Subject, Target};
use crate::domain::text::visible;
use crate::store::Store;

use super::{CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user's email (any case).
    #[arg(long)]
    pub user: String,
    /// Whose settings: an account slug (default: the head of the system chain).
    #[arg(long, value_name = "SLUG")]
    pub account: Option<String>,
    /// The action whose answer sets the exit code.
    #[arg(long, default_value = "modify_settings", value_parser = super::action_parser())]
    pub action: Action,
    /// Evaluate under this policy instead of the one in force (a name, or A, B, C).
    #[arg(long, ignore_case = true, value_parser = super::policy_parser())]
    pub policy: Option<Policy>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// The checks as they were at WHEN (ISO time, `3 days ago`, `yesterday
    /// 14:00`, or `#812`): the user, accounts, chain and policy then,
    /// today's permission rules.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    let mut past = None;
    let (data, target_account) = match args.at.as_deref() {
        Some(at) => {
            let slugs: Vec<String> = args.account.iter().cloned().collect();
            let p = super::history::past(store, at, Some(&args.user), None, &slugs).await?;
            let target = match &args.account {
                Some(slug) => Some(p.extra.get(slug).cloned().ok_or_else(|| {
                    super::CliError::Usage(format!(
                        "no account {:?} at {}",
                        crate::domain::text::visible_short(slug, 120),
                        p.cut.label()
                    ))
                })?),
                None => None,
            };
            let data = p.data.clone();
            past = Some(p);
            (data, target)
        }
        None => {
            let data = store.subject(Some(&args.user), None).await?;
            let target = match &args.account {
                Some(slug) => Some(store.account(slug).await?.ok_or_else(|| super::unknown_account(slug))?),
                None => None,
            };
            (data, target)
        }
    };
    let user = super::require_user(&data, &args.user)?;
    let policy = args.policy.unwrap_or(data.policy);
    let permissions = evaluate(&data, &user, target_account.as_ref(), policy);
    match (&past, args.json) {
        (Some(p), true) => super::print_json(&super::history::AsOf::new(p, &permissions))?,
        (Some(p), false) => out!(
            "{}{}",
            super::history::header(p, "today's permission checks"),
            super::out::paint(&render(&permissions))
        ),
        (None, true) => super::print_json(&permissions)?,
        (None, false) => out!("{}", super::out::paint(&render(&permissions))),
    }
    let allowed = permissions.actions.get(args.action.as_str()).is_some_and(|d| d.allowed);
    Ok(if allowed { Exit::Ok } else { Exit::Negative })
}

/// Evaluate every action for `user` against `target` (default: the chain
/// head, i.e. the settings every tenant falls back to).
pub fn evaluate(
    data: &SubjectData,
    user: &crate::domain::User,
    target: Option<&crate::domain::Account>,
    policy: Policy,
) -> Permissions {
    let chain = &data.snapshot.chain;
    let account = data.user_account();
    let subject = Subject { user, account, account_chain_position: account.and_then(|a| chain_position(chain, a.id)) };
    let head = chain.first().map(|e| e.slug.as_str()).unwrap_or("(no system account)");
    let target = match target {
        Some(a) if chain_position(chain, a.id).is_none() => Target::Tenant { account: a },
        Some(a) => Target::System { slug: &a.slug },
        None => Target::System { slug: head },
    };
    permissions::evaluate_all(&subject, policy, &target)
}

pub fn render(p: &Permissions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · policy {} ({}) · settings of {}",
        crate::domain::text::identity(&p.user),
        p.policy.as_str(),
        p.policy.letter(),
        visible(&p.target)
    );
    for action in Action::ALL {
        let Some(decision) = p.actions.get(action.as_str()) else { continue };
        let verdict = if decision.allowed { "ALLOWED" } else { "DENIED" };
        let note = decision.note.as_deref().map(|n| format!("  ({n})")).unwrap_or_default();
        let _ = writeln!(out, "  {:<16} {verdict}{note}", action.as_str());
        for check in &decision.checks {
            let mark = if check.passed { "✓" } else { "✗" };
            let _ = writeln!(out, "    {mark} {:<28} {}", check.name, check.reason);
        }
    }
    out
}
