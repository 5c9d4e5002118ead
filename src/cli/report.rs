//! `keyfall report`: who answers each integration type for every account,
//! from one set-based query; `--json` streams it.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::io::Write as _;

use crate::domain::text::visible_short;
use crate::store::{ReportRow, Store, StoreError};

use super::{CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine-readable output: one object per account × type.
    #[arg(long)]
    pub json: bool,
    /// The report as it was at WHEN (ISO time, `3 days ago`, `yesterday
    /// 14:00`, or `#812`), rebuilt from keyfall's history and walked by the
    /// resolver under today's rules.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    if let Some(at) = args.at.as_deref() {
        return report_at(store, at, args.json).await;
    }
    if args.json {
        return json(store).await;
    }
    // The text report aligns its columns, so it reads every row first: a
    // progress line meanwhile, on a terminal.
    let mut progress = super::progress::Progress::new("report", "rows", false);
    let mut rows = Vec::new();
    store
        .report_each(|row: ReportRow| {
            progress.tick();
            rows.push(row);
            Ok::<(), StoreError>(())
        })
        .await?;
    progress.done();
    out!("{}", super::out::paint(&render(&rows)));
    Ok(Exit::Ok)
}

/// Why the streamed report stopped early.
enum Stop {
    Store(StoreError),
    Write(std::io::Error),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

/// The JSON report written row by row as the database sends it, byte for
/// byte what pretty-printing the whole array writes: memory stays bounded,
/// and the first rows are out before the last are computed.
async fn json(store: &Store) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut rows = 0usize;
    let mut progress = super::progress::Progress::new("report", "rows", true);
    let written = store
        .report_each(|row: ReportRow| {
            progress.tick();
            out.write_all(if rows == 0 { b"[\n" } else { b",\n" }).map_err(Stop::Write)?;
            rows += 1;
            write_row(&mut out, &row).map_err(Stop::Write)
        })
        .await;
    let finished = written.and_then(|()| {
        out.write_all(if rows == 0 { b"[]\n" } else { b"\n]\n" }).map_err(Stop::Write)?;
        out.flush().map_err(Stop::Write)
    });
    match finished {
        Ok(()) => Ok(Exit::Ok),
        // `keyfall report --json | head`: the reader had enough (any other
        // write error is reported by `out` when the command ends).
        Err(Stop::Write(e)) => {
            super::out::note(&e);
            Ok(Exit::Ok)
        }
        Err(Stop::Store(e)) => Err(e.into()),
    }
}

/// One row as the app's call sees it (`ReportRow::app_answer`: where it
/// raises, nothing answers) as `serde_json::to_string_pretty` writes it one
/// level into an array — written field by field (strings escaped by
/// serde_json), without building and re-indenting a string per row.
/// `json_rows_are_pretty_json` holds the two equal.
fn write_row(out: &mut impl std::io::Write, row: &ReportRow) -> std::io::Result<()> {
    // Where the app raises, the first hop's answer is not the call's.
    let raised = row.raises.is_some();
    fn answer(raised: bool, v: &Option<String>) -> Option<&str> {
        if raised { None } else { v.as_deref() }
    }
    fn text(out: &mut impl std::io::Write, v: Option<&str>) -> std::io::Result<()> {
        match v {
            Some(s) => serde_json::to_writer(&mut *out, s).map_err(std::io::Error::from),
            None => out.write_all(b"null"),
        }
    }
    write!(out, "  {{\n    \"format_version\": {},\n    \"account\": ", super::FORMAT_VERSION)?;
    text(out, Some(&row.account))?;
    out.write_all(b",\n    \"chain_position\": ")?;
    match row.chain_position {
        Some(p) => write!(out, "{p}")?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b",\n    \"integration_type\": ")?;
    text(out, Some(&row.integration_type))?;
    out.write_all(b",\n    \"answered_by\": ")?;
    text(out, answer(raised, &row.answered_by))?;
    out.write_all(b",\n    \"provider\": ")?;
    text(out, answer(raised, &row.provider))?;
    out.write_all(b",\n    \"provider_answered_by\": ")?;
    text(out, answer(raised, &row.provider_answered_by))?;
    out.write_all(b",\n    \"answer_verdict\": ")?;
    text(out, answer(raised, &row.answer_verdict))?;
    out.write_all(b",\n    \"raises\": ")?;
    text(out, row.raises.as_deref())?;
    out.write_all(b"\n  }")
}

/// One line per account, one column per type: `own`, the answering
/// account, `—` for nothing, or `✗ raises` where the app's call raises
/// (the reasons follow the table); consumers add their provider's answer.
pub fn render(rows: &[ReportRow]) -> String {
    let types: Vec<&str> =
        rows.iter().map(|r| r.integration_type.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let cell = |r: &ReportRow| -> String {
        if r.raises.is_some() {
            return RAISES.to_string();
        }
        let who = |slug: &Option<String>| match slug {
            None => "—".to_string(),
            Some(s) if *s == r.account && r.chain_position.is_none() => "own".to_string(),
            Some(s) => visible_short(s, 20),
        };
        // ⚠: the answering row has problems keyfall sees and the app does
        // not act on (a wrong-typed field, an unknown provider).
        let mark = match r.answer_verdict.as_deref() {
            Some(v) if v != "answered" => " ⚠",
            _ => "",
        };
        match (&r.answered_by, &r.provider) {
            (Some(_), Some(p)) => {
                format!("{}{mark} → {}@{}", who(&r.answered_by), visible_short(p, 12), who(&r.provider_answered_by))
            }
            _ => format!("{}{mark}", who(&r.answered_by)),
        }
    };
    let mut lines: Vec<(String, String, Vec<String>)> = Vec::new();
    for r in rows {
        if lines.last().is_none_or(|(a, _, _)| *a != r.account) {
            let chain = r.chain_position.map(|p| p.to_string()).unwrap_or_default();
            lines.push((r.account.clone(), chain, vec!["".to_string(); types.len()]));
        }
        if let (Some(line), Some(i)) = (lines.last_mut(), types.iter().position(|t| *t == r.integration_type)) {
            line.2[i] = cell(r);
        }
    }
    let account_width = lines.iter().map(|l| visible_short(&l.0, 40).chars().count()).max().unwrap_or(7).max(7);
    let widths: Vec<usize> = (0..types.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l.2[i].chars().count())
                .chain([visible_short(types[i], 40).chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:<account_width$}  CHAIN", "ACCOUNT");
    for (t, w) in types.iter().zip(&widths) {
        let _ = write!(out, "  {:<w$}", visible_short(&t.to_uppercase(), 40));
    }
    out.push('\n');
    let (mut answered, mut unresolved, mut raising) = (0, 0, Vec::new());
    for r in rows {
        if r.is_resolved() {
            answered += 1;
        } else if let Some(why) = &r.raises {
            raising.push((r, why));
        } else {
            unresolved += 1;
        }
    }
    for (account, chain, cells) in &lines {
        let _ = write!(out, "{:<account_width$}  {chain:<5}", visible_short(account, 40));
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {c:<w$}");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    let flagged = rows
        .iter()
        .filter(|r| r.raises.is_none() && r.answer_verdict.as_deref().is_some_and(|v| v != "answered"))
        .count();
    let _ =
        write!(out, "{} accounts × {} types: {answered} resolved, {unresolved} unresolved", lines.len(), types.len());
    if raising.is_empty() {
        out.push('\n');
    } else {
        let _ = writeln!(out, ", {} where the app raises", raising.len());
        // Each reason once (every tenant falling back to a raising chain
        // row raises for the same reason), with how many it stops.
        let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for (r, why) in &raising {
            match reasons.iter_mut().find(|(w, _)| w == why) {
                Some((_, accounts)) => accounts.push(&r.account),
                None => reasons.push((why, vec![&r.account])),
            }
        }
        for (why, accounts) in reasons {
            let first = visible_short(accounts[0], 40);
            let whom = match accounts.len() {
                1 => first,
                n => format!("{first} and {} more", n - 1),
            };
            let _ = writeln!(out, "{RAISES} {whom}: {}", visible_short(why, 400));
        }
    }
    if flagged > 0 {
        let _ = writeln!(
            out,
            "⚠ {flagged} answer with problems the app does not act on (see `keyfall resolve` or `keyfall lint`)"
        );
    }
    out
}

/// The text report's mark for a call that raises (distinct from `—`,
/// nothing answers).
const RAISES: &str = "✗ raises";

/// `report --at`: every account × type as it was, walked by the resolver
/// (system accounts in chain order, then tenants by slug, as the report).
async fn report_at(store: &Store, at: &str, json: bool) -> super::CliResult {
    let moment = crate::domain::history::parse_moment(at, chrono::Utc::now()).map_err(super::CliError::Usage)?;
    let cut = store.cut(moment).await?;
    let world = store.world_at(cut).await?;
    let snapshot = &world.snapshot;
    let mut types: Vec<String> = crate::domain::registry::TYPES.iter().map(|t| t.name.to_string()).collect();
    for s in snapshot.settings.values() {
        if !types.contains(&s.integration_type) {
            types.push(s.integration_type.clone());
        }
    }
    let mut accounts: Vec<&crate::domain::Account> = snapshot.accounts.values().collect();
    let position = |a: &crate::domain::Account| crate::domain::model::chain_position(&snapshot.chain, a.id);
    accounts.sort_by(|a, b| match (position(a), position(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.slug.as_bytes().cmp(b.slug.as_bytes()),
    });
    let rows: Vec<crate::store::ReportRow> =
        accounts.iter().flat_map(|a| types.iter().map(|t| super::history::report_row(snapshot, Some(a), t))).collect();
    let past_header = format!(
        "as of {} · {} · judged under today's rules ({})\n",
        world.cut.label(),
        world.window.since(),
        crate::domain::text::visible(snapshot.rules.name())
    );
    if json {
        let shown: Vec<crate::store::ReportRow> = rows.iter().map(|r| r.app_answer()).collect();
        #[derive(serde::Serialize)]
        struct Rows<'a> {
            rows: &'a [crate::store::ReportRow],
        }
        super::print_json(&super::history::AsOf {
            as_of: &world.cut,
            history: &world.window,
            rules: super::history::TODAYS_RULES,
            answer: Rows { rows: &shown },
        })?;
    } else {
        out!("{past_header}{}", render(&rows));
    }
    Ok(super::Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_are_pretty_json() {
        let rows = [
            ReportRow {
                account: "aws-admin".into(),
                account_id: Some(1),
                chain_position: Some(1),
                integration_type: "openai".into(),
                answered_by: Some("aws-admin".into()),
                provider: None,
                provider_answered_by: None,
                answer_verdict: Some("answered".into()),
                raises: None,
            },
            ReportRow {
                account: "t\u{1b}[31m\"\\\u{202e}é".into(),
                account_id: None,
                chain_position: None,
                integration_type: "image_generation".into(),
                answered_by: None,
                provider: Some("(no provider)".into()),
                provider_answered_by: Some("x\ny".into()),
                answer_verdict: None,
                raises: None,
            },
            ReportRow {
                account: "t-2".into(),
                account_id: Some(3),
                chain_position: None,
                integration_type: "image_generation".into(),
                answered_by: Some("aws-admin".into()),
                provider: Some("runware".into()),
                provider_answered_by: None,
                answer_verdict: Some("answered".into()),
                raises: Some("the app's get_model_config raises here: t-2's runware setting is key_not_string".into()),
            },
        ];
        let mut streamed = b"[\n".to_vec();
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                streamed.extend_from_slice(b",\n");
            }
            write_row(&mut streamed, row).unwrap();
        }
        streamed.extend_from_slice(b"\n]");
        let answers: Vec<ReportRow> = rows.iter().map(ReportRow::app_answer).collect();
        let versioned: Vec<_> = answers.iter().map(super::super::Versioned).collect();
        assert_eq!(String::from_utf8(streamed).unwrap(), serde_json::to_string_pretty(&versioned).unwrap());
        assert!(answers[2].answered_by.is_none() && answers[2].raises.is_some(), "a raise answers nothing");
    }

    #[test]
    fn the_text_report_marks_a_raise_apart_from_nothing() {
        let row = |account: &str, answered_by: Option<&str>, raises: Option<&str>| ReportRow {
            account: account.into(),
            account_id: Some(1),
            chain_position: None,
            integration_type: "openai".into(),
            answered_by: answered_by.map(str::to_string),
            provider: None,
            provider_answered_by: None,
            answer_verdict: answered_by.map(|_| "answered".to_string()),
            raises: raises.map(str::to_string),
        };
        let why = "the app's get_model_config raises here: aws-admin's openai setting is key_not_string";
        let text = render(&[
            row("t-1", None, None),
            row("t-2", None, Some(why)),
            row("t-3", None, Some(why)),
            row("t-4", Some("aws-admin"), None),
        ]);
        let cells: Vec<&str> = text.lines().skip(1).take(4).map(|l| l.split("  ").last().unwrap().trim()).collect();
        assert_eq!(cells, ["—", "✗ raises", "✗ raises", "aws-admin"], "{text}");
        assert!(text.contains("4 accounts × 1 types: 1 resolved, 1 unresolved, 2 where the app raises"), "{text}");
        assert!(text.contains(&format!("✗ raises t-2 and 1 more: {why}")), "{text}");
    }
}
