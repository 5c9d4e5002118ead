//! `keyfall lint`: what is wrong, rule by rule (DESIGN §8); exit 1 when any
//! error-level finding exists. `--fix` shows every fix's diff and the impact
//! preview, asks (unless `--yes`), then applies all fixes in one audited,
//! version-checked transaction. A fix that needs a choice (which provider?)
//! asks on a terminal and is skipped with `--yes`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use futures_util::TryStreamExt;
use serde_json::Value;

use crate::config::Config;
use crate::domain::change::Proposal;
use crate::domain::lint::{self, Finding, Severity};
use crate::domain::model::{Account, Setting};
use crate::domain::resolve::Snapshot;
use crate::domain::text::visible;
use crate::store::Store;

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the findings about this account (its settings, its superusers
    /// and developers, a chain entry naming it): reads that account alone.
    #[arg(long, value_name = "SLUG")]
    pub account: Option<String>,
    /// Apply the fixes (previewed first).
    #[arg(long)]
    pub fix: bool,
    /// With --fix: apply without asking; fixes that need a choice are skipped.
    #[arg(long)]
    pub yes: bool,
    /// Machine-readable output: one object per finding.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(store: &Store, config: &Config, args: Args) -> CliResult {
    if args.fix {
        let mut fixable = Vec::new();
        let mut errors = false;
        scan(store, args.account.as_deref(), &mut |f, at| {
            errors |= f.severity == Severity::Error;
            if let (Some(_), Some((account, setting))) = (&f.fix, at) {
                fixable.push((f, account.clone(), setting.clone()));
            }
        })
        .await?;
        // The order lint reports in: the first fix of a setting wins.
        fixable.sort_by(|a, b| lint::order_key(&a.0).cmp(&lint::order_key(&b.0)));
        return fix(store, config, fixable, errors, args.yes).await;
    }
    let mut report = Report::new(args.json);
    scan(store, args.account.as_deref(), &mut |f, _| report.add(f)).await?;
    // `keyfall lint | head`: the reader had enough; the answer (any
    // error-level finding?) is known all the same. Any other write error is
    // reported by `out` when the command ends.
    if let Err(e) = report.write(&mut std::io::BufWriter::new(std::io::stdout().lock())) {
        super::out::note(&e);
    }
    Ok(if report.errors > 0 { Exit::Negative } else { Exit::Ok })
}

/// Lint the whole database, or one account, handing each finding to `each`
/// as it is made — with the setting it was computed from, for a setting's
/// finding. Whole-database: the settings stream in (account, type) order
/// and are judged an account at a time, so memory holds one account's rows,
/// not every row. One account: its rows and its privileged users by index,
/// and of the chain's findings those that name it.
async fn scan(
    store: &Store,
    account: Option<&str>,
    each: &mut impl FnMut(Finding, Option<(&Account, &Setting)>),
) -> Result<(), CliError> {
    let base = store.subject(None, None).await?;
    let snapshot = &base.snapshot;
    let mut chain: Vec<Finding> = lint::chain_findings(snapshot);
    chain.retain(|f| account.is_none_or(|want| f.account.as_deref() == Some(want)));
    let named_by_chain = account.is_some_and(|want| snapshot.chain.iter().any(|e| e.slug == want));
    let mut progress = super::progress::Progress::new("lint", "settings", false);
    // Settings the database does not show this login's operator (policy):
    // not linted, and said so.
    let mut hidden = 0_usize;
    // Settings whose key this login reads masked: L008 cannot look at them.
    let mut masked = 0usize;
    let account_id = match account {
        Some(slug) => {
            let Some((found, rows)) = store.account_with_settings(slug).await? else {
                if !named_by_chain {
                    return Err(super::unknown_account(slug));
                }
                // A chain entry naming no account: its L005 is all there is.
                for f in chain {
                    each(f, None);
                }
                return Ok(());
            };
            if rows.iter().any(|s| s.withheld.is_some()) {
                return Err(super::not_shown(store, &found).await?);
            }
            for f in chain.drain(..) {
                each(f, None);
            }
            judge(snapshot, &found, &rows, &mut masked, each);
            Some(found.id)
        }
        None => {
            for f in chain.drain(..) {
                each(f, None);
            }
            let mut rows = store.settings_stream();
            let mut group: Option<(Account, Vec<Setting>)> = None;
            while let Some((account, setting)) = rows.try_next().await? {
                progress.tick();
                hidden += usize::from(setting.withheld.is_some());
                match &mut group {
                    Some((current, settings)) if current.id == account.id => settings.push(setting),
                    _ => {
                        if let Some((done, settings)) = group.replace((account, vec![setting])) {
                            judge(snapshot, &done, &settings, &mut masked, each);
                        }
                    }
                }
            }
            if let Some((done, settings)) = group {
                judge(snapshot, &done, &settings, &mut masked, each);
            }
            None
        }
    };
    if masked > 0 {
        each(lint::l008_not_checked(masked), None);
    }
    let mut users = store.privileged_users(account_id);
    while let Some((user, account)) = users.try_next().await? {
        if let Some(f) = lint::privileged_finding(snapshot, base.policy, &user, account.as_ref()) {
            each(f, None);
        }
    }
    progress.done();
    if hidden > 0 {
        eprintln!(
            "keyfall: {hidden} settings not checked: the database does not show them to this login's operator \
             (policy); `keyfall can --action view_settings` says why"
        );
    }
    Ok(())
}

/// One account's settings judged, each finding handed on with its setting.
fn judge(
    snapshot: &Snapshot,
    account: &Account,
    rows: &[Setting],
    masked: &mut usize,
    each: &mut impl FnMut(Finding, Option<(&Account, &Setting)>),
) {
    for (s, findings) in rows.iter().zip(lint::account_findings(snapshot, account, rows)) {
        if lint::key_is_masked(s) {
            *masked += 1;
        }
        for f in findings {
            each(f, Some((account, s)));
        }
    }
}

/// The findings as `lint` prints them, gathered without keeping the
/// findings themselves: each is rendered when it is made into the bucket of
/// its (severity, rule). lint's order is a stable sort on that key, so the
/// buckets in key order, each in arrival order, are that order.
struct Report {
    json: bool,
    buckets: BTreeMap<(Severity, &'static str), Vec<String>>,
    count: usize,
    errors: usize,
}

impl Report {
    fn new(json: bool) -> Report {
        Report { json, buckets: BTreeMap::new(), count: 0, errors: 0 }
    }

    fn add(&mut self, f: Finding) {
        self.count += 1;
        if f.severity == Severity::Error {
            self.errors += 1;
        }
        let text = if self.json {
            // The element as `to_string_pretty` of the whole array writes
            // it: one level in (no JSON text holds a raw line break).
            let pretty = serde_json::to_string_pretty(&super::Versioned(&f)).unwrap_or_default();
            pretty.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
        } else {
            render_one(&f)
        };
        self.buckets.entry(lint::order_key(&f)).or_default().push(text);
    }

    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let items = self.buckets.values().flatten();
        if self.json {
            if self.count == 0 {
                out.write_all(b"[]\n")?;
            } else {
                out.write_all(b"[\n")?;
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.write_all(b",\n")?;
                    }
                    out.write_all(item.as_bytes())?;
                }
                out.write_all(b"\n]\n")?;
            }
        } else {
            for item in items {
                out.write_all(item.as_bytes())?;
            }
            writeln!(out, "{} findings, {} errors", self.count, self.errors)?;
        }
        out.flush()
    }
}

/// One finding as a line of `lint`'s text.
fn render_one(f: &Finding) -> String {
    let severity = match f.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    };
    let fix = f.fix.as_ref().map(|x| format!("  [fix: {}]", x.description)).unwrap_or_default();
    super::out::paint(&format!("{} {severity:<7} {}{fix}\n", f.id, visible(&f.message))).into_owned()
}

fn ask_choice(question: &str, choices: &[String]) -> Result<Option<String>, CliError> {
    eprint!("{question} [{}, or enter to skip] ", choices.join("/"));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Usage(e.to_string()))?;
    let answer = line.trim();
    Ok(choices.iter().find(|c| c.as_str() == answer).cloned())
}

/// Apply the fixes of `fixable` — findings in lint's order, each with the
/// account and the setting it was computed from.
async fn fix(
    store: &Store,
    config: &Config,
    fixable: Vec<(Finding, Account, Setting)>,
    errors: bool,
    yes: bool,
) -> CliResult {
    let operator =
        config.operator.clone().ok_or_else(|| CliError::Usage("lint --fix needs an operator: --as EMAIL".into()))?;
    let terminal = std::io::stdin().is_terminal();
    let mut changes: Vec<(String, String, i64, Value)> = Vec::new();
    let mut skipped = Vec::new();
    for (f, _, _) in &fixable {
        let (Some(fix), Some(slug), Some(ty)) = (&f.fix, &f.account, &f.integration_type) else { continue };
        let Some(mut new) = fix.config.clone() else { continue };
        if let Some(field) = &fix.field {
            let choice = if yes || !terminal {
                None
            } else {
                ask_choice(&format!("{} {slug} {ty}: {field}?", f.id), &fix.choices)?
            };
            match choice {
                Some(c) => new[field.as_str()] = Value::String(c),
                None => {
                    skipped.push(format!("{} {slug} {ty}: needs a choice of {field}", f.id));
                    continue;
                }
            }
        }
        // Each fix was computed from the stored config alone: a second fix
        // on the same setting waits for the next run rather than undo the
        // first.
        if changes.iter().any(|c| &c.0 == slug && &c.1 == ty) {
            skipped
                .push(format!("{} {slug} {ty}: another fix on this setting comes first; run lint --fix again", f.id));
            continue;
        }
        changes.push((slug.clone(), ty.clone(), fix.version, new));
    }
    for s in &skipped {
        outln!("skipped: {}", visible(s));
    }
    if changes.is_empty() {
        outln!("nothing to fix automatically");
        return Ok(if errors { Exit::Negative } else { Exit::Ok });
    }
    let mut proposals = Vec::new();
    for (slug, ty, _, new) in &changes {
        let Some((_, account, old)) = fixable.iter().find(|(_, a, s)| &a.slug == slug && &s.integration_type == ty)
        else {
            continue;
        };
        super::set::authorize(store, &operator, slug).await?;
        outln!("{} {}:", visible(slug), visible(ty));
        let before = serde_json::json!({"config": crate::domain::secret::mask_config(&old.config)});
        let after = serde_json::json!({"config": crate::domain::secret::mask_config(new)});
        out!("{}", super::changes_text(Some(&before), Some(&after)));
        proposals.push(Proposal::Setting {
            account_id: account.id,
            integration_type: ty.clone(),
            config: new.clone(),
            is_active: old.is_active,
        });
    }
    out!("{}", super::admin::render_impact(&store.impact(&Proposal::Many(proposals)).await?));
    if !super::admin::confirm("apply these fixes?", yes)? {
        outln!("not applied");
        return Ok(Exit::Ok);
    }
    store.apply_configs(&operator, &changes).await?;
    outln!("fixed {} settings in one transaction (as {})", changes.len(), visible(&operator));
    Ok(Exit::Ok)
}
