//! `keyfall key-history`: the blast radius of a key (issue 23). The key
//! comes on stdin or at a hidden prompt (never argv), or its fingerprint
//! with `--fingerprint`. Out: every settings row that held it, from when
//! to when, and for each such stretch, interval by interval (split at every
//! change that altered the answer), who resolved to it — which accounts,
//! how many users, for which functions. The timeline is data from
//! `Store::key_history`; this only renders it. Text, `--json`, `--csv`
//! (one line per interval).

use std::fmt::Write;

use crate::domain::Secret;
use crate::domain::blast::{self, Stretch};
use crate::domain::text::{visible, visible_short};
use crate::store::Store;

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
    /// One CSV line per interval, for the incident report.
    #[arg(long)]
    pub csv: bool,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    let fp = match args.fingerprint {
        Some(fp) => fingerprint(&fp)?,
        None => {
            let key = super::audit::read_key()?;
            let key = crate::domain::secret::clean_pasted_secret(&key).0;
            if key.is_empty() {
                return Err(CliError::Usage("no key on stdin (or give --fingerprint)".into()));
            }
            Secret::new(key).fingerprint()
        }
    };
    let history = store.key_history(&fp).await?;
    if args.json {
        super::print_json(&history)?;
    } else if args.csv {
        out!("{}", csv(&history.stretches));
    } else {
        out!("{}", render(&fp, &history.history.since(), &history.stretches));
    }
    Ok(if history.rows.is_empty() { Exit::Negative } else { Exit::Ok })
}

/// `#1a2b3c4d`, or the 8 hex digits without the `#`.
fn fingerprint(given: &str) -> Result<String, CliError> {
    let t = given.trim();
    let with = if t.starts_with('#') { t.to_ascii_lowercase() } else { format!("#{}", t.to_ascii_lowercase()) };
    if crate::domain::secret::is_fingerprint(&with) {
        return Ok(with);
    }
    Err(CliError::Usage(format!(
        "{:?} is not a fingerprint (# and 8 hex digits, as `keyfall audit` shows them)",
        visible_short(given, 40)
    )))
}

fn render(fp: &str, since: &str, stretches: &[Stretch]) -> String {
    blast::timeline_lines(fp, since, stretches).into_iter().map(|(line, _)| line + "\n").collect()
}

fn csv(stretches: &[Stretch]) -> String {
    let field = |s: &str| {
        let s = visible(s).into_owned();
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
    };
    let mut out = String::from(
        "account,integration_type,field,from,from_entry,to,to_entry,tenants,users,users_without_account,functions,joined,left,cannot_vouch\n",
    );
    let t = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let n = |e: Option<i64>| e.map(|e| e.to_string()).unwrap_or_default();
    for s in stretches {
        for i in &s.intervals {
            let vouched = i.cannot_vouch.is_none();
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                field(&s.account),
                field(&s.integration_type),
                field(&s.held.field),
                t(i.from),
                n(i.from_entry),
                t(i.to),
                n(i.to_entry),
                if vouched { i.tenants.to_string() } else { String::new() },
                if vouched { i.users.to_string() } else { String::new() },
                i.users_without_account.map(|n| n.to_string()).unwrap_or_default(),
                field(&i.functions.join(" ")),
                field(&i.joined.join(" ")),
                field(&i.left.join(" ")),
                field(i.cannot_vouch.as_deref().unwrap_or("")),
            );
        }
    }
    out
}
