//! `keyfall export` and `keyfall import`: settings as a JSON document.
//! Export writes keys as fingerprints unless `--reveal` (asked on a
//! terminal, recorded in the audit log). Import validates the whole file
//! first, previews the diff and the impact, then applies everything in one
//! audited, version-checked transaction; unchanged settings are skipped (a
//! second import changes nothing), and where the file holds a fingerprint
//! the stored key is kept — if it is the same key.

use std::collections::HashMap;
use std::path::PathBuf;

use futures_util::TryStreamExt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::domain::change::Proposal;
use crate::domain::model::{Account, Setting};
use crate::domain::registry;
use crate::domain::secret::{contains_secret, fingerprint_value, is_fingerprint, is_secret_field};
use crate::domain::text::{visible, visible_short};
use crate::store::{ImportItem, Store};

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Only this account's settings.
    #[arg(long, value_name = "SLUG")]
    pub account: Option<String>,
    /// Keys in clear (asks on a terminal; recorded in the audit log).
    #[arg(long)]
    pub reveal: bool,
    /// With --reveal: do not ask.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The export file to apply (`keyfall export` writes one).
    pub file: PathBuf,
    /// Validate and preview only.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub keyfall_export: u32,
    pub settings: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub account: String,
    pub integration_type: String,
    pub is_active: bool,
    pub config: Value,
}

/// `new` (from the file) with every fingerprint put back to the stored
/// value it stands for — at any depth, in objects and arrays, wherever
/// export put one (a secret-named field, a value shaped like a secret, a
/// subtree too deep to walk). A fingerprint under a secret-named field, or
/// where a secret is stored, that matches nothing stored is a problem; any
/// other `#` and 8 hex digits is taken as written.
fn restore_fingerprints(
    new: &Value,
    stored: Option<&Value>,
    secret: bool,
    path: &str,
    problems: &mut Vec<String>,
) -> Value {
    match new {
        Value::String(s) if is_fingerprint(s) => {
            if let Some(st) = stored
                && st != new
                && fingerprint_value(st) == *s
            {
                return st.clone();
            }
            let stored_secret = stored.is_some_and(|st| st != new && (secret || contains_secret(st)));
            if secret || stored_secret {
                let what = if path.contains(['.', '[']) { "value" } else { "key" };
                problems.push(format!(
                    "{} is a fingerprint ({s}) that matches no stored {what}; put the {what} itself",
                    visible_short(path, 60)
                ));
            }
            new.clone()
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    let st = stored.and_then(|s| s.get(k));
                    (k.clone(), restore_fingerprints(v, st, secret || is_secret_field(k), &at, problems))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let st = stored.and_then(|s| s.get(i));
                    restore_fingerprints(v, st, secret, &format!("{path}[{i}]"), problems)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

pub async fn export(store: &Store, config: &Config, args: ExportArgs) -> CliResult {
    if let Some(slug) = args.account.as_deref() {
        match store.account_with_settings(slug).await? {
            None => return Err(super::unknown_account(slug)),
            // A backup that looks complete must be: an account whose
            // settings the database withholds is refused, not exported empty.
            Some((account, rows)) if rows.iter().any(|s| s.withheld.is_some()) => {
                return Err(super::not_shown(store, &account).await?);
            }
            Some(_) => {}
        }
    }
    let mut withheld = 0_usize;
    let mut revealed = HashMap::new();
    if args.reveal {
        let operator = config.operator.as_deref().ok_or_else(|| {
            CliError::Usage("export --reveal needs an operator (--as EMAIL): the reveal is recorded".into())
        })?;
        if !super::admin::confirm(
            "export keys in clear?",
            args.yes || !std::io::IsTerminal::is_terminal(&std::io::stdin()),
        )? {
            return Err(CliError::Negative("not exported".into()));
        }
        // Which settings hold a key: the account's rows, or a first pass
        // over the stream (the reveals cannot run while it reads).
        let mut with_key: Vec<(String, String)> = Vec::new();
        let mut note = |account: &Account, s: &Setting| {
            if s.config.get("apiKey").is_some() {
                with_key.push((account.slug.clone(), s.integration_type.clone()));
            }
        };
        match &args.account {
            Some(slug) => {
                if let Some((account, rows)) = store.account_with_settings(slug).await? {
                    rows.iter().for_each(|s| note(&account, s));
                }
            }
            None => {
                let mut rows = store.settings_stream();
                while let Some((account, s)) = rows.try_next().await? {
                    note(&account, &s);
                }
            }
        }
        for (slug, ty) in with_key {
            // The key comes from the checked, recorded reveal — never
            // from the read above, which may be masked for this login.
            if let Some(key) = store.reveal(operator, &slug, &ty).await? {
                revealed.insert((slug, ty), key);
            }
        }
    }
    let mut out = DocumentWriter::new(std::io::BufWriter::new(std::io::stdout().lock()));
    let written = async {
        let mut write = |account: &Account, s: &Setting| -> Result<(), Stopped> {
            if s.withheld.is_some() {
                withheld += 1;
                return Ok(());
            }
            // A config keyfall holds only approximately (a number beyond
            // f64, nesting serde cannot hold) is never written as something
            // else: the export stops here, naming the row, and the document
            // is left unfinished so nothing takes it for a whole backup.
            let deep = (nesting(&s.config) > crate::domain::secret::MAX_DEPTH).then(|| {
                format!(
                    "is nested deeper than {}: export writes what lies below as a fingerprint, which no other database can restore",
                    crate::domain::secret::MAX_DEPTH
                )
            });
            if let Some(why) = crate::domain::json::inexact(&s.config).map(str::to_string).or(deep) {
                return Err(Stopped::Inexact(format!(
                    "export stopped at {} {}: the config {why}; keyfall cannot carry it exactly — copy this row with pg_dump or psql (the document written so far is unfinished)",
                    visible_short(&account.slug, 60),
                    visible_short(&s.integration_type, 40)
                )));
            }
            let mut config = crate::domain::secret::fingerprint_config(&s.config);
            // Secrets as fingerprints; with --reveal, the apiKey that was
            // revealed (and recorded) in clear.
            if !revealed.is_empty()
                && let (Some(key), Some(map)) =
                    (revealed.get(&(account.slug.clone(), s.integration_type.clone())), config.as_object_mut())
            {
                map.insert("apiKey".into(), Value::String(key.expose().to_string()));
            }
            out.entry(&Entry {
                account: account.slug.clone(),
                integration_type: s.integration_type.clone(),
                is_active: s.is_active,
                config,
            })?;
            Ok(())
        };
        match &args.account {
            // One account: its rows by index (none when there is no such
            // account: an empty export, as always).
            Some(slug) => {
                if let Some((account, rows)) = store.account_with_settings(slug).await? {
                    for s in &rows {
                        write(&account, s)?;
                    }
                }
            }
            // Everything: written as the rows arrive.
            None => {
                let mut progress = super::progress::Progress::new("export", "settings", true);
                let mut rows = store.settings_stream();
                while let Some((account, s)) = rows.try_next().await? {
                    progress.tick();
                    write(&account, &s)?;
                }
            }
        }
        out.finish()?;
        Ok::<_, Stopped>(())
    };
    let result = written.await;
    if withheld > 0 {
        eprintln!(
            "keyfall: {withheld} settings not exported: the database does not show them to this login's operator \
             (policy); `keyfall can --action view_settings` says why"
        );
    }
    match result {
        Ok(()) if withheld > 0 => Ok(Exit::Negative),
        Ok(()) => Ok(Exit::Ok),
        // `keyfall export | head`: the reader had enough (any other write
        // error is reported by `out` when the command ends).
        Err(Stopped::Write(e)) => {
            super::out::note(&e);
            Ok(Exit::Ok)
        }
        Err(Stopped::Store(e)) => Err(e.into()),
        Err(Stopped::Inexact(why)) => Err(CliError::Other(why)),
    }
}

/// How many containers deep `value` nests (a scalar is 0). Values read
/// from the database are cut at serde's 128 levels, so this recursion is
/// bounded.
fn nesting(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

/// Why a streamed export stopped early.
enum Stopped {
    /// Writing the document failed (a closed pipe is not an error).
    Write(std::io::Error),
    /// Reading the settings failed.
    Store(crate::store::StoreError),
    /// A row keyfall cannot carry exactly: why, naming it.
    Inexact(String),
}

impl From<std::io::Error> for Stopped {
    fn from(e: std::io::Error) -> Self {
        Stopped::Write(e)
    }
}

impl From<crate::store::StoreError> for Stopped {
    fn from(e: crate::store::StoreError) -> Self {
        Stopped::Store(e)
    }
}

/// A `Document` written an entry at a time, byte for byte what
/// `to_string_pretty` of the whole document (and a line break) writes.
struct DocumentWriter<W: std::io::Write> {
    out: W,
    entries: usize,
}

impl<W: std::io::Write> DocumentWriter<W> {
    fn new(out: W) -> Self {
        DocumentWriter { out, entries: 0 }
    }

    fn entry(&mut self, entry: &Entry) -> std::io::Result<()> {
        let head: &[u8] = if self.entries == 0 { b"{\n  \"keyfall_export\": 1,\n  \"settings\": [\n" } else { b",\n" };
        self.out.write_all(head)?;
        self.entries += 1;
        let pretty = serde_json::to_string_pretty(entry)?;
        // Two levels in; no JSON text holds a raw line break.
        for (i, line) in pretty.lines().enumerate() {
            let sep: &[u8] = if i == 0 { b"    " } else { b"\n    " };
            self.out.write_all(sep)?;
            self.out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        let tail: &[u8] =
            if self.entries == 0 { b"{\n  \"keyfall_export\": 1,\n  \"settings\": []\n}\n" } else { b"\n  ]\n}\n" };
        self.out.write_all(tail)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

pub async fn import(store: &Store, config: &Config, args: ImportArgs) -> CliResult {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let doc: Document = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: not a keyfall export: {e}", args.file.display())))?;
    let operator =
        config.operator.clone().ok_or_else(|| CliError::Usage("import needs an operator: --as EMAIL".into()))?;
    // Only the accounts the file names, and their settings.
    let mut slugs: Vec<String> = doc.settings.iter().map(|e| e.account.clone()).collect();
    slugs.sort();
    slugs.dedup();
    let (accounts, settings) = store.accounts_with_settings(&slugs).await?;
    let by_slug: HashMap<&str, &Account> = accounts.iter().map(|a| (a.slug.as_str(), a)).collect();
    let stored_by: HashMap<(i64, &str), &Setting> =
        settings.iter().map(|s| ((s.account_id, s.integration_type.as_str()), s)).collect();
    // Validate everything before writing anything. A line on a terminal
    // says which of the three phases runs (none while stdout is one too:
    // the changes are printed as they are found).
    let mut progress = super::progress::Progress::new("import", "settings", true);
    progress.step(1, 3, &format!("checking {} settings", doc.settings.len()));
    let mut items = Vec::new();
    let mut proposals = Vec::new();
    let mut problems = Vec::new();
    for (i, e) in doc.settings.iter().enumerate() {
        let at = format!("settings[{i}] {} {}", visible_short(&e.account, 40), visible_short(&e.integration_type, 30));
        let Some(account) = by_slug.get(e.account.as_str()).copied() else {
            problems.push(format!("{at}: unknown account"));
            continue;
        };
        if registry::spec(&e.integration_type).is_none() {
            problems.push(format!("{at}: unknown integration type"));
            continue;
        }
        let Some(new_map) = e.config.as_object() else {
            problems.push(format!("{at}: config is not an object"));
            continue;
        };
        let stored = stored_by.get(&(account.id, e.integration_type.as_str())).copied();
        // A fingerprint stands for the stored value — if it is that value.
        let mut found = Vec::new();
        let config =
            restore_fingerprints(&Value::Object(new_map.clone()), stored.map(|st| &st.config), false, "", &mut found);
        problems.extend(found.into_iter().map(|p| format!("{at}: {p}")));
        if stored.is_some_and(|st| st.config == config && st.is_active == e.is_active) {
            continue; // unchanged: idempotent
        }
        super::set::authorize(store, &operator, &e.account).await?;
        let before =
            stored.map(|st| serde_json::json!({"config": crate::domain::secret::fingerprint_config(&st.config), "is_active": st.is_active}));
        let after =
            serde_json::json!({"config": crate::domain::secret::fingerprint_config(&config), "is_active": e.is_active});
        outln!(
            "{} {}{}",
            visible(&e.account),
            visible(&e.integration_type),
            if stored.is_none() { " (new)" } else { "" }
        );
        out!("{}", super::changes_text(before.as_ref(), Some(&after)));
        proposals.push(Proposal::Setting {
            account_id: account.id,
            integration_type: e.integration_type.clone(),
            config: config.clone(),
            is_active: e.is_active,
        });
        items.push(ImportItem {
            account: e.account.clone(),
            integration_type: e.integration_type.clone(),
            config,
            is_active: e.is_active,
            expected_version: stored.map(|s| s.version).unwrap_or(0),
        });
    }
    if !problems.is_empty() {
        return Err(CliError::Usage(format!("{} problems, nothing imported: {}", problems.len(), problems.join("; "))));
    }
    if items.is_empty() {
        outln!("nothing to import: every setting is already as the file says");
        return Ok(Exit::Ok);
    }
    progress.step(2, 3, "previewing who resolves differently");
    let impact = store.impact(&Proposal::Many(proposals)).await?;
    progress.done();
    out!("{}", super::admin::render_impact(&impact));
    if args.dry_run || !super::admin::confirm("import?", args.yes)? {
        outln!("not applied");
        return Ok(Exit::Ok);
    }
    progress.step(3, 3, &format!("writing {} settings in one transaction", items.len()));
    store.write_many(&operator, &items).await?;
    progress.done();
    outln!("imported {} settings in one transaction (as {})", items.len(), visible(&operator));
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_written_an_entry_at_a_time_is_the_pretty_document() {
        let entry = |account: &str, config: Value| Entry {
            account: account.into(),
            integration_type: "openai".into(),
            is_active: account.len().is_multiple_of(2),
            config,
        };
        let cases = vec![
            vec![],
            vec![entry("a", serde_json::json!({}))],
            vec![
                entry(
                    "aws-admin",
                    serde_json::json!({"apiKey": "#12345678", "nested": {"list": [1, [], {}], "s": "x\ny"}}),
                ),
                entry("b\u{1b}c", serde_json::json!({"empty": [], "n": null})),
                entry("c", serde_json::json!({"model": "gpt-4o", "temperature": 0.7})),
            ],
        ];
        for entries in cases {
            let mut w = DocumentWriter::new(Vec::new());
            for e in &entries {
                w.entry(e).unwrap();
            }
            let written = String::from_utf8(w.finish().unwrap()).unwrap();
            let whole = serde_json::to_string_pretty(&Document { keyfall_export: 1, settings: entries }).unwrap();
            assert_eq!(written, format!("{whole}\n"));
        }
    }
}
