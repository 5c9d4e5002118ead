//! The lines of every preview — a setting's field changes, the impact (who
//! resolves differently, or now uses a new value, the provider hop
//! included), a chain and a policy change — built once, here, for both
//! sides: the CLI's `--dry-run` prints their text, the console renders the
//! same lines styled, wrapped and scrolled. Pure: data in, lines out.

use crate::domain::change::ImpactRow;
use crate::domain::diff;
use crate::domain::permissions::PolicyMove;
use crate::domain::text::{accounts_named, count, visible, visible_short};

/// How a piece of a line is meant to look (the console maps it to a
/// style; the CLI prints the text only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Bold,
    Dim,
    /// The new value, the new answer.
    Accent,
    Ok,
    Bad,
}

/// One line of a preview: its pieces, and the column its continuation
/// starts at when it has to wrap (under the value, not under the name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewLine {
    pub parts: Vec<(String, Tone)>,
    pub hang: usize,
}

impl PreviewLine {
    fn new(parts: Vec<(String, Tone)>, hang: usize) -> PreviewLine {
        PreviewLine { parts, hang }
    }

    fn plain(text: impl Into<String>) -> PreviewLine {
        PreviewLine::new(vec![(text.into(), Tone::Plain)], 0)
    }

    /// The line as the CLI prints it.
    pub fn text(&self) -> String {
        self.parts.iter().map(|(s, _)| s.as_str()).collect()
    }
}

/// Lines as the CLI prints them, each ending in a line break.
pub fn text(lines: &[PreviewLine]) -> String {
    lines.iter().map(|l| format!("{}\n", l.text())).collect()
}

/// The width the function column is padded to.
const FUNCTION: usize = 24;

/// The impact of a change: one line per function and move, in the order
/// the store gives them (the second hop — `(own) → openai@aws-admin` —
/// is part of the answer, never left out).
pub fn impact(rows: &[ImpactRow]) -> Vec<PreviewLine> {
    if rows.is_empty() {
        return vec![PreviewLine::new(
            vec![("impact: nobody resolves differently, nobody uses a changed value".into(), Tone::Dim)],
            0,
        )];
    }
    let mut out = vec![PreviewLine::new(
        vec![(
            "impact (who resolves differently, or keeps the answering account and now uses the new value; \
             \"(own)\" is the account's own setting):"
                .into(),
            Tone::Bold,
        )],
        0,
    )];
    let hang = 2 + FUNCTION + 1;
    for r in rows {
        let function = format!("  {:<FUNCTION$} ", visible_short(&r.function, FUNCTION));
        let who = format!("{}, {}", accounts_named(r.accounts, &r.examples, 40), count(r.users, "user"));
        let parts = if r.value_changed {
            vec![
                (function, Tone::Plain),
                (format!("{}: answering account unchanged; ", r.before), Tone::Plain),
                (format!("{who} now use the new value"), Tone::Accent),
            ]
        } else {
            vec![
                (function, Tone::Plain),
                (format!("{} → ", r.before), Tone::Plain),
                (r.after.to_string(), Tone::Accent),
                (format!("   {who}"), Tone::Dim),
            ]
        };
        out.push(PreviewLine::new(parts, hang));
    }
    out
}

/// A setting's field changes, one line each (secrets as fingerprints or
/// masks: `before` and `after` hold them so already).
pub fn changes(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> Vec<PreviewLine> {
    field_changes(&diff::changes(before, after))
}

/// Field changes already computed, one line each.
pub fn field_changes(changes: &[diff::FieldChange]) -> Vec<PreviewLine> {
    changes
        .iter()
        .map(|c| {
            let field = format!("    {}: ", visible_short(&c.field, 40));
            let hang = field.chars().count();
            PreviewLine::new(
                vec![
                    (field, Tone::Dim),
                    (format!("{} → ", diff::shown(&c.field, c.before.as_ref())), Tone::Plain),
                    (diff::shown(&c.field, c.after.as_ref()), Tone::Accent),
                ],
                hang,
            )
        })
        .collect()
}

/// `chain: [a, b] → [b, a]`.
pub fn chain(before: &[String], after: &[String]) -> PreviewLine {
    PreviewLine::new(
        vec![
            ("chain: ".into(), Tone::Bold),
            (format!("[{}] → ", visible(&before.join(", "))), Tone::Plain),
            (format!("[{}]", visible(&after.join(", "))), Tone::Accent),
        ],
        7,
    )
}

/// `policy: system_only → per_account`.
pub fn policy(from: crate::domain::Policy, to: crate::domain::Policy) -> PreviewLine {
    PreviewLine::new(
        vec![
            ("policy: ".into(), Tone::Bold),
            (format!("{} → ", from.as_str()), Tone::Plain),
            (to.as_str().to_string(), Tone::Accent),
        ],
        8,
    )
}

/// Who gains or loses which action under a new policy.
pub fn policy_moves(moves: &[PolicyMove]) -> Vec<PreviewLine> {
    if moves.is_empty() {
        return vec![PreviewLine::new(vec![("preview: no user gains or loses any action".into(), Tone::Dim)], 0)];
    }
    moves
        .iter()
        .map(|m| {
            let verb = m.verb();
            let tone = if m.gains { Tone::Ok } else { Tone::Bad };
            PreviewLine::new(
                vec![
                    (format!("  {} ", crate::domain::text::count(m.users, "user")), Tone::Plain),
                    (verb.into(), tone),
                    (format!(" {} on {}{}", m.action.as_str(), m.scope, m.named()), Tone::Plain),
                ],
                4,
            )
        })
        .collect()
}

/// "no change", for a preview with no field change.
pub fn no_change() -> PreviewLine {
    PreviewLine::plain("    no change")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::change::Answer;

    fn answer(by: &str, provider: Option<(&str, &str)>) -> Answer {
        Answer {
            answered_by: Some(by.into()),
            provider: provider.map(|(p, _)| p.into()),
            provider_answered_by: provider.map(|(_, a)| a.into()),
            new_value: false,
        }
    }

    #[test]
    fn the_second_hop_and_who_are_on_the_line() {
        let row = ImpactRow {
            function: "generate_images".into(),
            integration_type: "image_generation".into(),
            before: answer("(own)", Some(("openai", "aws-admin"))),
            after: answer("(own)", Some(("openai", "aws-admin"))),
            accounts: 2000,
            users: 20000,
            value_changed: true,
            examples: vec!["acme".into()],
        };
        let lines = impact(&[row]);
        assert_eq!(lines.len(), 2);
        let text = lines[1].text();
        assert!(text.starts_with("  generate_images          (own) → openai@aws-admin: answering account unchanged; "));
        assert!(text.contains("2,000 accounts") && text.ends_with("20,000 users now use the new value"), "{text}");
        assert_eq!(impact(&[])[0].text(), "impact: nobody resolves differently, nobody uses a changed value");
    }
}
