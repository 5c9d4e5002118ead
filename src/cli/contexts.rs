//! `keyfall contexts`: the config file's named databases, the one in force
//! marked. Needs no database; a URL is shown with its password masked.

use serde_json::json;

use super::{CliError, CliResult, Exit, print_json_list};
use crate::config::Config;
use crate::domain::text::visible_short;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `list` (the default; `keyfall context list` reads as kubectl's).
    #[arg(value_parser = ["list"], hide = true)]
    pub what: Option<String>,
    /// One JSON object per context.
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: &Config, args: &Args) -> CliResult {
    let current = config.context.as_deref();
    if args.json {
        let list: Vec<_> = config
            .contexts
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "url": c.shown_url(),
                    "label": c.label,
                    "colour": c.color,
                    "read_only": c.read_only,
                    "current": current == Some(c.name.as_str()),
                })
            })
            .collect();
        print_json_list(&list)?;
        return Ok(Exit::Ok);
    }
    if config.contexts.is_empty() {
        let at = config.file.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default();
        return Err(CliError::Usage(format!(
            "no contexts{at}: add [contexts.NAME] with url = \"postgres://…\" (and label, colour, read_only)"
        )));
    }
    let width = config.contexts.iter().map(|c| visible_short(&c.name, 30).chars().count()).max().unwrap_or(4).max(4);
    outln!("  {:<width$}  {:<12}  {:<8}  {:<9}  URL", "NAME", "LABEL", "COLOUR", "READ-ONLY");
    for c in &config.contexts {
        let mark = if current == Some(c.name.as_str()) { "*" } else { " " };
        outln!(
            "{mark} {:<width$}  {:<12}  {:<8}  {:<9}  {}",
            visible_short(&c.name, 30),
            visible_short(c.label.as_deref().unwrap_or("-"), 12),
            c.color.as_deref().unwrap_or("-"),
            if c.read_only { "yes" } else { "no" },
            c.shown_url()
        );
    }
    Ok(Exit::Ok)
}
