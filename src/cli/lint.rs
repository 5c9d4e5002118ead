//! `keyfall lint`: what is wrong, rule by rule (DESIGN §8); exit 1 when any
//! error-level finding exists. `--fix` shows every fix's diff and the impact
//! preview, asks (unless `--yes`), then applies all fixes in one audited,
//! version-checked transaction. A fix that needs a choice (which provider?)
//! asks on a terminal and is skipped with `--yes`.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};

use serde_json::Value;

use crate::config::Config;
use crate::domain::lint::{self, Finding, LintInput, Severity};
use crate::domain::text::visible;
use crate::store::{Proposal, Store};

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply the fixes (previewed first).
    #[arg(long)]
    pub fix: bool,
    /// With --fix: apply without asking; fixes that need a choice are skipped.
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(store: &Store, config: &Config, args: Args) -> CliResult {
    let data = store.lint_data().await?;
    let input = LintInput {
        snapshot: &data.snapshot,
        accounts: &data.accounts,
        settings: &data.settings,
        privileged: &data.privileged,
        policy: data.policy,
    };
    let findings = lint::lint(&input);
    if !args.fix {
        if args.json {
            super::print_json(&findings)?;
        } else {
            print!("{}", render(&findings));
        }
        let errors = findings.iter().any(|f| f.severity == Severity::Error);
        return Ok(if errors { Exit::Negative } else { Exit::Ok });
    }
    fix(store, config, &data, findings, args.yes).await
}

pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let severity = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        let fix = f.fix.as_ref().map(|x| format!("  [fix: {}]", x.description)).unwrap_or_default();
        let _ = writeln!(out, "{} {severity:<7} {}{fix}", f.id, visible(&f.message));
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let _ = writeln!(out, "{} findings, {errors} errors", findings.len());
    out
}

fn ask_choice(question: &str, choices: &[String]) -> Result<Option<String>, CliError> {
    eprint!("{question} [{}, or enter to skip] ", choices.join("/"));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Usage(e.to_string()))?;
    let answer = line.trim();
    Ok(choices.iter().find(|c| c.as_str() == answer).cloned())
}

async fn fix(
    store: &Store,
    config: &Config,
    data: &crate::store::LintData,
    findings: Vec<Finding>,
    yes: bool,
) -> CliResult {
    let operator =
        config.operator.clone().ok_or_else(|| CliError::Usage("lint --fix needs an operator: --as EMAIL".into()))?;
    let terminal = std::io::stdin().is_terminal();
    let mut changes: Vec<(String, String, i64, Value)> = Vec::new();
    let mut skipped = Vec::new();
    for f in &findings {
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
        println!("skipped: {}", visible(s));
    }
    if changes.is_empty() {
        println!("nothing to fix automatically");
        return Ok(if findings.iter().any(|f| f.severity == Severity::Error) { Exit::Negative } else { Exit::Ok });
    }
    let mut proposals = Vec::new();
    for (slug, ty, _, new) in &changes {
        let Some(account) = data.accounts.iter().find(|a| &a.slug == slug) else { continue };
        let Some(old) = data.settings.iter().find(|s| s.account_id == account.id && &s.integration_type == ty) else {
            continue;
        };
        super::set::authorize(store, &operator, slug).await?;
        println!("{} {}:", visible(slug), visible(ty));
        let before = serde_json::json!({"config": crate::domain::secret::mask_config(&old.config)});
        let after = serde_json::json!({"config": crate::domain::secret::mask_config(new)});
        print!("{}", super::changes_text(Some(&before), Some(&after)));
        proposals.push(Proposal::Setting {
            account_id: account.id,
            integration_type: ty.clone(),
            config: new.clone(),
            is_active: old.is_active,
        });
    }
    print!("{}", super::admin::render_impact(&store.impact(&Proposal::Many(proposals)).await?));
    if !super::admin::confirm("apply these fixes?", yes)? {
        println!("not applied");
        return Ok(Exit::Ok);
    }
    store.apply_configs(&operator, &changes).await?;
    println!("fixed {} settings in one transaction (as {})", changes.len(), visible(&operator));
    Ok(Exit::Ok)
}
