//! `keyfall resolve`: the trace of DESIGN §2 for one user and function.

use std::fmt::Write;

use crate::domain::resolve::{self, Hop, Resolution, Verdict};
use crate::domain::text::{visible, visible_short};
use crate::store::Store;

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user's email (any case).
    #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
    pub user: Option<String>,
    /// The AI function, e.g. auto_cluster or generate_images.
    #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
    pub function: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Many answers: user/function pairs from stdin (JSON lines
    /// {"user","function"} or CSV user,function), one JSON line out per pair,
    /// resolved set-based in chunks.
    #[arg(long)]
    pub batch: bool,
    /// The answer as it was at WHEN (ISO time, `3 days ago`, `yesterday
    /// 14:00`, or `#812`: just before that audit entry), rebuilt from
    /// keyfall's history and judged under today's rules.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    if args.batch {
        return super::batch::run(store, args.at.as_deref()).await;
    }
    let (Some(user_arg), Some(function_arg)) = (args.user.as_deref(), args.function.as_deref()) else {
        return Err(CliError::Usage("give --user and --function, or --batch".into()));
    };
    if let Some(at) = args.at.as_deref() {
        return run_at(store, at, user_arg, function_arg, args.json).await;
    }
    let args = Single { user: user_arg.to_string(), function: function_arg.to_string(), json: args.json };
    let data = store.subject(Some(&args.user), Some(&args.function)).await?;
    let user = super::require_user(&data, &args.user)?;
    let Some(function) = data.function.clone() else {
        let known = store.function_names().await?.join(", ");
        return Err(CliError::Usage(format!(
            "unknown function {:?} (known: {known})",
            visible_short(&args.function, 80)
        )));
    };
    let resolution = resolve::resolve(&data.snapshot, &user, &function);
    if args.json {
        super::print_json(&resolution)?;
    } else {
        out!("{}", super::out::paint(&render(&resolution)));
    }
    Ok(if resolution.is_resolved() { Exit::Ok } else { Exit::Negative })
}

/// `resolve --at`: the same walk over the world as it was.
async fn run_at(store: &Store, at: &str, user: &str, function: &str, json: bool) -> CliResult {
    let past = super::history::past(store, at, Some(user), Some(function), &[]).await?;
    let Some(who) = past.data.user.clone() else {
        return Err(CliError::Usage(format!("no user {:?} at {}", visible_short(user, 120), past.cut.label())));
    };
    let Some(f) = past.data.function.clone() else {
        return Err(CliError::Usage(format!("no function {:?} at {}", visible_short(function, 80), past.cut.label())));
    };
    let resolution = resolve::resolve(&past.data.snapshot, &who, &f);
    if json {
        super::print_json(&super::history::AsOf::new(&past, &resolution))?;
    } else {
        out!("{}{}", super::history::header(&past, &resolution.rules), super::out::paint(&render(&resolution)));
    }
    Ok(if resolution.is_resolved() { Exit::Ok } else { Exit::Negative })
}

struct Single {
    user: String,
    function: String,
    json: bool,
}

/// The human trace, as in DESIGN §2, naming the rule set it followed.
pub fn render(r: &Resolution) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · {} → {}   (rules: {})",
        crate::domain::text::identity(&r.user),
        visible(&r.function),
        visible(&r.hop.integration_type),
        visible(&r.rules)
    );
    render_hop(&mut out, &r.hop, 1);
    for w in &r.warnings {
        let _ = writeln!(out, "  ⚠ {}", w.message);
    }
    if let Some(why) = r.hop.unresolved_reason() {
        let _ = writeln!(out, "  unresolved: {why}");
    }
    out
}

fn render_hop(out: &mut String, hop: &Hop, depth: usize) {
    let indent = "  ".repeat(depth);
    // Nested hops indent by two: narrow the account column to keep the
    // verdicts aligned with the first hop's.
    let width = 20usize.saturating_sub(2 * depth).max(8);
    let last = hop.steps.len().saturating_sub(1);
    for (i, step) in hop.steps.iter().enumerate() {
        let failed = i == last && hop.error.is_some();
        let (word, verdict) = match step.verdict {
            Verdict::Answered => ("ANSWER ", String::new()),
            ref v if failed => ("FAILS  ", format!("{:<15}", v.as_str())),
            ref v => ("skipped", format!("{:<15}", v.as_str())),
        };
        let problems = match step.findings.len() {
            0 => String::new(),
            1 => "   with 1 problem".to_string(),
            n => format!("   with {n} problems"),
        };
        let _ = writeln!(
            out,
            "{indent}{} {:<width$} {word}  {verdict}{}{problems}",
            i + 1,
            visible_short(&step.account, 40),
            step.detail
        );
        for finding in &step.findings {
            let _ = writeln!(out, "{indent}    ⚠ {}", visible(finding));
        }
    }
    if let Some(error) = &hop.error {
        let _ = writeln!(out, "{indent}  ✗ {}", visible(error));
    }
    if let Some(next) = &hop.hop {
        let _ = writeln!(out, "{indent}└ {}", visible(&next.integration_type));
        render_hop(out, next, depth + 1);
    }
}
