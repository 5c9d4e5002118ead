//! `keyfall check FILE`: expected resolutions, as a guard for CI pipelines.
//! Each `[[expect]]` names a user and a function and who should answer (and,
//! optionally, who should answer the second hop); any difference fails with
//! a readable diff and exit 1.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::resolve;
use crate::domain::text::{visible, visible_short};
use crate::store::Store;

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A TOML file of [[expect]] tables.
    pub file: PathBuf,
    /// Machine-readable output: one object per expectation.
    #[arg(long)]
    pub json: bool,
}

/// One expectation's outcome, for `--json`: what was expected (the file's
/// words, "nothing" for unresolved) and what answers (null: nothing).
#[derive(serde::Serialize)]
struct Outcome {
    user: String,
    function: String,
    ok: bool,
    answered_by: Option<String>,
    provider_answered_by: Option<String>,
    expected: Expected,
    problems: Vec<String>,
}

#[derive(serde::Serialize)]
struct Expected {
    answered_by: String,
    provider_answered_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    expect: Vec<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    user: String,
    function: String,
    /// An account slug, or "nothing" for unresolved.
    answered_by: String,
    provider_answered_by: Option<String>,
}

fn label(slug: Option<&str>) -> String {
    slug.map(|s| visible(s).into_owned()).unwrap_or_else(|| "nothing".into())
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        CliError::Usage(format!("{}: {}", args.file.display(), e.to_string().lines().next().unwrap_or_default()))
    })?;
    if file.expect.is_empty() {
        return Err(CliError::Usage(format!("{}: no [[expect]] — nothing to check", args.file.display())));
    }
    let mut out = String::new();
    let mut outcomes = Vec::new();
    let mut failed = 0;
    for e in &file.expect {
        let data = store.subject(Some(&e.user), Some(&e.function)).await?;
        let user = super::require_user(&data, &e.user)?;
        let function = data.function.clone().ok_or_else(|| {
            CliError::Usage(format!("unknown function {:?} in {}", visible_short(&e.function, 60), args.file.display()))
        })?;
        let r = resolve::resolve(&data.snapshot, &user, &function);
        let got = label(r.hop.answered_by.as_deref());
        let got_hop = r.hop.hop.as_ref().map(|h| label(h.answered_by.as_deref()));
        let mut problems = Vec::new();
        if got != e.answered_by {
            problems.push(format!("answered_by: expected {}, got {got}", visible(&e.answered_by)));
        }
        if let Some(want) = &e.provider_answered_by {
            let got_hop = got_hop.clone().unwrap_or_else(|| "no second hop".into());
            if &got_hop != want {
                problems.push(format!("provider_answered_by: expected {}, got {got_hop}", visible(want)));
            }
        }
        outcomes.push(Outcome {
            user: e.user.clone(),
            function: e.function.clone(),
            ok: problems.is_empty(),
            answered_by: r.hop.answered_by.clone(),
            provider_answered_by: r.hop.hop.as_ref().and_then(|h| h.answered_by.clone()),
            expected: Expected {
                answered_by: e.answered_by.clone(),
                provider_answered_by: e.provider_answered_by.clone(),
            },
            problems: problems.clone(),
        });
        let what = format!("{} · {}", visible(&e.user), visible(&e.function));
        if problems.is_empty() {
            let hop = got_hop.map(|h| format!(" (provider from {h})")).unwrap_or_default();
            let _ = writeln!(out, "✓ {what} answers from {got}{hop}");
        } else {
            failed += 1;
            let _ = writeln!(out, "✗ {what}");
            for p in problems {
                let _ = writeln!(out, "    {p}");
            }
            for line in super::resolve::render(&r).lines().skip(1) {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    let _ = writeln!(out, "{} expectations, {failed} failed", file.expect.len());
    if args.json {
        super::print_json_list(&outcomes)?;
    } else {
        out!("{}", super::out::paint(&out));
    }
    Ok(if failed > 0 { Exit::Negative } else { Exit::Ok })
}
