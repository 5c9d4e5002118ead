//! `keyfall key-history`: the blast radius of a key (issue 23). The key
//! comes on stdin or at a hidden prompt (never argv), or its fingerprint
//! with `--fingerprint`. Out: every settings row that held it, from when
//! to when, and for each such stretch who resolved to it when it began —
//! which accounts, how many users, for which functions — walked by the one
//! resolver over the world of that moment. Text, `--json`, `--csv`.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::Serialize;

use crate::domain::Secret;
use crate::domain::history::{Held, stamp};
use crate::domain::resolve::resolve_type;
use crate::domain::text::{visible, visible_short};
use crate::store::Store;
use crate::store::blast::{KeyRow, cut_after};

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The key's fingerprint as the audit log writes it (`#1a2b3c4d`);
    /// without it the key is read from stdin or a hidden prompt.
    #[arg(long, value_name = "FP")]
    pub fingerprint: Option<String>,
    /// Machine-readable output.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// One CSV line per stretch, for the incident report.
    #[arg(long)]
    pub csv: bool,
}

/// One stretch of one row, and who resolved to it when it began.
#[derive(Debug, Serialize)]
struct Stretch<'a> {
    account: &'a str,
    integration_type: &'a str,
    setting_id: i64,
    #[serde(flatten)]
    held: &'a Held,
    /// Who resolved to the row when the stretch began; `None` with `unknown`
    /// where history cannot say.
    accounts: Option<Vec<String>>,
    users: Option<i64>,
    functions: Option<Vec<String>>,
    unknown: Option<String>,
    /// A gap of the log inside the stretch: who resolved to it may have
    /// changed unseen.
    gaps: Vec<String>,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    let fp = match args.fingerprint {
        Some(fp) if crate::domain::secret::is_fingerprint(fp.trim()) => fp.trim().to_string(),
        Some(fp) => {
            return Err(CliError::Usage(format!(
                "{:?} is not a fingerprint (# and 8 hex digits, as `keyfall audit` shows them)",
                visible_short(&fp, 40)
            )));
        }
        None => {
            let key = super::audit::read_key()?;
            let key = crate::domain::secret::clean_pasted_secret(&key).0;
            if key.is_empty() {
                return Err(CliError::Usage("no key on stdin (or give --fingerprint)".into()));
            }
            Secret::new(key).fingerprint()
        }
    };
    let window = store.history_window().await?;
    let rows = store.key_rows(&fp).await?;
    let mut stretches = Vec::new();
    for row in &rows {
        for held in &row.held {
            stretches.push(stretch(store, &window, row, held).await?);
        }
    }
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            fingerprint: &'a str,
            history: &'a crate::domain::history::Window,
            rows: &'a [KeyRow],
            stretches: &'a [Stretch<'a>],
        }
        super::print_json(&Out { fingerprint: &fp, history: &window, rows: &rows, stretches: &stretches })?;
    } else if args.csv {
        out!("{}", csv(&stretches));
    } else {
        out!("{}", render(&fp, &window.since(), &stretches));
    }
    Ok(if rows.is_empty() { Exit::Negative } else { Exit::Ok })
}

async fn stretch<'a>(
    store: &Store,
    window: &crate::domain::history::Window,
    row: &'a KeyRow,
    held: &'a Held,
) -> Result<Stretch<'a>, CliError> {
    let mut s = Stretch {
        account: &row.account,
        integration_type: &row.integration_type,
        setting_id: row.setting_id,
        held,
        accounts: None,
        users: None,
        functions: None,
        unknown: None,
        gaps: window
            .gaps
            .iter()
            .filter(|g| {
                let after_start = held.from.is_none_or(|f| g.to.is_none_or(|t| t >= f));
                let before_end = held.to.is_none_or(|t| g.from <= t);
                after_start && before_end
            })
            .map(|g| g.describe())
            .collect(),
    };
    let Some(start) = &window.start else {
        s.unknown = Some("no history recorded yet".into());
        return Ok(s);
    };
    let cut = cut_after(held.from_entry, held.from, start);
    let world = match store.world_at(cut).await {
        Ok(w) => w,
        Err(crate::store::StoreError::NotFound(why)) => {
            s.unknown = Some(why);
            return Ok(s);
        }
        Err(e) => return Err(e.into()),
    };
    let counts = store.user_counts_at(&cut).await?;
    let snapshot = &world.snapshot;
    let Some(owner) = snapshot.accounts.get(&row.account_id) else {
        s.unknown = Some("the account did not exist then".into());
        return Ok(s);
    };
    let lands = |hop: &crate::domain::Hop| -> bool {
        hop.raises().is_none()
            && ((hop.integration_type == row.integration_type && hop.answered_by.as_deref() == Some(&owner.slug))
                || hop.hop.as_ref().is_some_and(|h| {
                    h.integration_type == row.integration_type && h.answered_by.as_deref() == Some(&owner.slug)
                }))
    };
    let mut accounts = BTreeSet::new();
    let mut functions = BTreeSet::new();
    let mut users = 0i64;
    let mut types: Vec<(&String, &String)> = world.functions.iter().collect();
    types.sort();
    let mut ids: Vec<&i64> = snapshot.accounts.keys().collect();
    ids.sort();
    for id in ids.into_iter().map(Some).chain([None]) {
        let account = id.and_then(|id| snapshot.accounts.get(id));
        let mut any = false;
        for (name, ty) in &types {
            if lands(&resolve_type(snapshot, account, ty)) {
                any = true;
                functions.insert((*name).clone());
            }
        }
        if any {
            users += counts.get(&id.copied()).copied().unwrap_or(0);
            accounts.insert(account.map(|a| a.slug.clone()).unwrap_or_else(|| "(users without an account)".into()));
        }
    }
    s.accounts = Some(accounts.into_iter().collect());
    s.users = Some(users);
    s.functions = Some(functions.into_iter().collect());
    Ok(s)
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>, entry: Option<i64>, none: &str) -> String {
    match (t, entry) {
        (Some(t), Some(e)) => format!("{} (#{e})", stamp(t)),
        _ => none.to_string(),
    }
}

fn render(fp: &str, since: &str, stretches: &[Stretch]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "key {fp} · {since}");
    if stretches.is_empty() {
        let _ = writeln!(out, "no settings row held it since history began");
        return out;
    }
    for s in stretches {
        let _ = writeln!(
            out,
            "{} {} {}: {} → {}",
            visible_short(s.account, 40),
            visible(s.integration_type),
            visible(&s.held.field),
            when(s.held.from, s.held.from_entry, "before history began"),
            when(s.held.to, s.held.to_entry, "now")
        );
        match (&s.accounts, &s.unknown) {
            (Some(accounts), _) => {
                let shown: Vec<String> = accounts.iter().take(10).map(|a| visible_short(a, 40)).collect();
                let more = accounts.len().saturating_sub(10);
                let _ = writeln!(
                    out,
                    "  when it began, {} account(s) and {} user(s) resolved to it{}: {}{}",
                    accounts.len(),
                    s.users.unwrap_or(0),
                    match &s.functions {
                        Some(f) if !f.is_empty() => format!(" for {}", f.join(", ")),
                        _ => String::new(),
                    },
                    shown.join(", "),
                    if more > 0 { format!(" and {more} more") } else { String::new() }
                );
            }
            (None, Some(why)) => {
                let _ = writeln!(out, "  who resolved to it: unknown — {why}");
            }
            (None, None) => {}
        }
        for g in &s.gaps {
            let _ = writeln!(out, "  ⚠ not vouched for: {g}");
        }
    }
    out
}

fn csv(stretches: &[Stretch]) -> String {
    let field = |s: &str| {
        let s = visible(s).into_owned();
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
    };
    let mut out = String::from(
        "account,integration_type,field,from,from_entry,to,to_entry,accounts,users,functions,unknown,gaps\n",
    );
    for s in stretches {
        let t = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
        let n = |e: Option<i64>| e.map(|e| e.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            field(s.account),
            field(s.integration_type),
            field(&s.held.field),
            t(s.held.from),
            n(s.held.from_entry),
            t(s.held.to),
            n(s.held.to_entry),
            field(&s.accounts.as_ref().map(|a| a.join(" ")).unwrap_or_default()),
            s.users.map(|u| u.to_string()).unwrap_or_default(),
            field(&s.functions.as_ref().map(|f| f.join(" ")).unwrap_or_default()),
            field(s.unknown.as_deref().unwrap_or("")),
            field(&s.gaps.join("; ")),
        );
    }
    out
}
