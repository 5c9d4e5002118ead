//! `keyfall audit`: who changed what, when — from the trigger-written log,
//! secrets as fingerprints. `--find-key` reads a key from stdin and lists
//! the entries that hold its fingerprint (where did this key come from?).

use std::fmt::Write as _;

use serde::Serialize;

use crate::domain::audit::AuditEntry;
use crate::domain::diff::{self, FieldChange};
use crate::domain::secret::Secret;
use crate::domain::text::{visible, visible_short};
use crate::store::{AuditFilter, Store};

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this account's entries.
    #[arg(long, value_name = "SLUG")]
    pub account: Option<String>,
    /// Only this integration type's entries.
    #[arg(long = "type", value_name = "TYPE")]
    pub integration_type: Option<String>,
    /// Only what this actor did (any case): an operator's email, a database
    /// login, "keyfall demo"; their reverts and overwrites included.
    #[arg(long, value_name = "WHO")]
    pub actor: Option<String>,
    /// Read a key from stdin (or a hidden prompt) and list the entries holding its fingerprint.
    #[arg(long)]
    pub find_key: bool,
    /// At most this many entries, newest first.
    #[arg(long, default_value = "100")]
    pub limit: i64,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: i64,
    actor: &'a str,
    at: chrono::DateTime<chrono::Utc>,
    action: &'a str,
    table: &'a str,
    account: Option<&'a str>,
    integration_type: Option<&'a str>,
    changes: Vec<FieldChange>,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    let fingerprint = if args.find_key {
        let key = read_key()?;
        let key = crate::domain::secret::clean_pasted_secret(&key).0;
        if key.is_empty() {
            return Err(CliError::Usage("--find-key: no key on stdin".into()));
        }
        Some(Secret::new(key).fingerprint())
    } else {
        None
    };
    let filter = AuditFilter {
        account: args.account.as_deref(),
        integration_type: args.integration_type.as_deref(),
        fingerprint: fingerprint.as_deref(),
        actor: args.actor.as_deref().map(str::trim).filter(|a| !a.is_empty()),
    };
    // The log follows the policy on reads (row-level security): a refused
    // account says so, and a list missing some accounts' entries says that.
    let scoped = match args.account.as_deref() {
        Some(slug) => match store.account(slug).await? {
            Some(account) => {
                if !store.reads(Some(account.id)).await?.1 {
                    return Err(super::not_shown(store, &account).await?);
                }
                false
            }
            None => false,
        },
        None => !store.reads(None).await?.0,
    };
    if scoped {
        eprintln!(
            "keyfall: entries about settings this login's operator may not view are not shown (policy); \
             `keyfall can --action view_settings` says why"
        );
    }
    let entries = store.audit_where(filter, args.limit.max(1)).await?;
    // A deleted account's history is still history; a name that never had
    // any, and names no account, is a typo.
    if entries.is_empty()
        && let Some(slug) = args.account.as_deref()
        && store.account(slug).await?.is_none()
    {
        return Err(super::unknown_account(slug));
    }
    let view: Vec<Entry> = entries
        .iter()
        .map(|e| Entry {
            id: e.id,
            actor: &e.actor,
            at: e.at,
            action: &e.action,
            table: &e.table_name,
            account: e.account.as_deref(),
            integration_type: e.integration_type.as_deref(),
            changes: diff::changes(e.before.as_ref(), e.after.as_ref()),
        })
        .collect();
    if args.json {
        super::print_json_list(&view)?;
    } else {
        out!("{}", super::out::paint(&render(&entries, fingerprint.as_deref())));
    }
    Ok(if fingerprint.is_some() && entries.is_empty() { Exit::Negative } else { Exit::Ok })
}

pub(super) fn read_key() -> Result<String, CliError> {
    super::input::secret("key to find (input hidden): ", "the key")
}

pub fn render(entries: &[AuditEntry], fingerprint: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(fp) = fingerprint {
        let _ = writeln!(out, "entries holding {fp}: {}", entries.len());
    }
    let rows: Vec<crate::domain::audit::Row> = entries.iter().map(AuditEntry::row).collect();
    for e in entries {
        let what = match (&e.account, &e.integration_type) {
            (Some(a), Some(t)) => format!("{} {}", visible_short(a, 40), visible_short(t, 30)),
            _ => visible(&e.table_name).into_owned(),
        };
        let version = e.after.as_ref().or(e.before.as_ref()).and_then(|v| v.get("version")).map(|v| format!(" v{v}"));
        let _ = writeln!(
            out,
            "{}  {:<24} {:<7} {what}{}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            crate::domain::text::identity_short(&e.actor, 24),
            visible_short(&e.action, 7),
            version.unwrap_or_default()
        );
        // An entry about the log itself in words (the console's audit
        // view says the same); an ordinary change lists its fields.
        match crate::domain::audit::action_words(&e.row(), &rows) {
            Some(line) => {
                let _ = writeln!(out, "    {line}");
            }
            None => out.push_str(&super::changes_text(e.before.as_ref(), e.after.as_ref())),
        }
    }
    if entries.is_empty() && fingerprint.is_none() {
        out.push_str("no audit entries\n");
    }
    out
}
