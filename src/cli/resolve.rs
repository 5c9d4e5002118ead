//! `keyfall resolve`: the trace of DESIGN §2 for one user and function.

use std::fmt::Write;

use crate::domain::resolve::{self, Hop, Resolution, Verdict};
use crate::domain::text::{visible, visible_short};
use crate::store::Store;

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user's email (any case).
    #[arg(long)]
    pub user: String,
    /// The AI function, e.g. auto_cluster or generate_images.
    #[arg(long)]
    pub function: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
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
        print!("{}", render(&resolution));
    }
    Ok(if resolution.is_resolved() { Exit::Ok } else { Exit::Negative })
}

/// The human trace, as in DESIGN §2.
pub fn render(r: &Resolution) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} · {} → {}", visible(&r.user), visible(&r.function), visible(&r.hop.integration_type));
    render_hop(&mut out, &r.hop, 1);
    for w in &r.warnings {
        let _ = writeln!(out, "  ⚠ {}", w.message);
    }
    if !r.is_resolved() {
        let _ = writeln!(out, "  unresolved: {}", unresolved_reason(&r.hop));
    }
    out
}

fn render_hop(out: &mut String, hop: &Hop, depth: usize) {
    let indent = "  ".repeat(depth);
    // Nested hops indent by two: narrow the account column to keep the
    // verdicts aligned with the first hop's.
    let width = 20usize.saturating_sub(2 * depth).max(8);
    for (i, step) in hop.steps.iter().enumerate() {
        let (word, verdict) = match step.verdict {
            Verdict::Answered => ("ANSWER ", String::new()),
            ref v => ("skipped", format!("{:<15}", v.as_str())),
        };
        let _ = writeln!(
            out,
            "{indent}{} {:<width$} {word}  {verdict}{}",
            i + 1,
            visible_short(&step.account, 40),
            step.detail
        );
    }
    if let Some(next) = &hop.hop {
        let _ = writeln!(out, "{indent}└ {}", visible(&next.integration_type));
        render_hop(out, next, depth + 1);
    }
}

fn unresolved_reason(hop: &Hop) -> String {
    match (&hop.answered_by, &hop.hop) {
        (None, _) => {
            let skipped: Vec<String> = hop
                .steps
                .iter()
                .filter(|s| !matches!(s.verdict, Verdict::NoRow))
                .map(|s| format!("{} {} ({})", visible_short(&s.account, 40), s.verdict.as_str(), s.detail))
                .collect();
            if skipped.is_empty() {
                format!("no account in the chain has a {} setting", visible(&hop.integration_type))
            } else {
                format!("no account answers {}; {}", visible(&hop.integration_type), skipped.join("; "))
            }
        }
        (Some(_), Some(next)) => format!("second hop: {}", unresolved_reason(next)),
        (Some(_), None) => "resolved".to_string(),
    }
}
