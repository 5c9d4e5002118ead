//! The permissions view, in the resolve-as panel's place (`p`): for the
//! picked user against the selected account, each denied action's failing
//! checks first (the answer to "why can't they?"), the three policies side
//! by side, then every check with its reason (DESIGN §4).

use ratatui::text::{Line, Span};

use super::model::Model;
use super::widgets::Theme;
use crate::domain::Policy;
use crate::domain::permissions::Action as Perm;
use crate::domain::text::visible;

pub(super) fn lines(model: &Model, t: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(current) = model.permissions(model.policy) else {
        if model.resolve.email.is_some() {
            out.push(Line::from(Span::styled("loading…", t.dim())));
        }
        return out;
    };
    out.push(Line::from(vec![
        Span::styled("settings ", t.dim()),
        Span::raw(visible(&current.target).into_owned()),
        Span::styled(format!(" · policy {} ({})", model.policy.letter(), model.policy.as_str()), t.dim()),
    ]));
    out.push(Line::raw(""));
    // The answer to "why can't they?" first: each denied action's failing
    // checks under the policy in force.
    // The same failing check usually denies several actions: say it once.
    let mut failing: Vec<(String, String, Vec<&str>)> = Vec::new();
    for action in Perm::ALL {
        let Some(d) = current.actions.get(action.as_str()) else { continue };
        for c in d.failing() {
            match failing.iter_mut().find(|(n, r, _)| *n == c.name && *r == c.reason) {
                Some(entry) => entry.2.push(action.as_str()),
                None => failing.push((c.name.clone(), c.reason.clone(), vec![action.as_str()])),
            }
        }
    }
    for (name, reason, actions) in &failing {
        out.push(Line::from(vec![
            Span::styled(format!("✗ {} ", actions.join(", ")), t.bad()),
            Span::styled("denied by ", t.dim()),
            Span::raw(name.clone()),
            Span::styled(format!(": {reason}"), t.dim()),
        ]));
    }
    if failing.is_empty() {
        out.push(Line::from(Span::styled("✓ every action is allowed", t.ok())));
    }
    out.push(Line::raw(""));
    // The three policies side by side, the one in force marked.
    let all: Vec<_> = Policy::ALL.iter().filter_map(|p| model.permissions(*p)).collect();
    let mut head = vec![Span::raw(format!("{:<16}", ""))];
    for p in Policy::ALL {
        let mark = if p == model.policy { "*" } else { " " };
        head.push(Span::styled(format!("{}{mark} ", p.letter()), t.dim()));
    }
    out.push(Line::from(head));
    for action in Perm::ALL {
        let mut row = vec![Span::raw(format!("{:<16}", action.as_str()))];
        for perms in &all {
            let allowed = perms.actions.get(action.as_str()).is_some_and(|d| d.allowed);
            row.push(if allowed { Span::styled("✓  ", t.ok()) } else { Span::styled("✗  ", t.bad()) });
        }
        out.push(Line::from(row));
    }
    out.push(Line::raw(""));
    out.push(Line::from(Span::styled("check by check:", t.dim())));
    for action in Perm::ALL {
        let Some(d) = current.actions.get(action.as_str()) else { continue };
        let verdict = if d.allowed { Span::styled("ALLOWED", t.ok()) } else { Span::styled("DENIED", t.bad()) };
        out.push(Line::from(vec![Span::raw(format!("{} ", action.as_str())), verdict]));
        for c in &d.checks {
            let (mark, style) = if c.passed { ("✓", t.ok()) } else { ("✗", t.bad()) };
            out.push(Line::from(vec![
                Span::styled(format!(" {mark} "), style),
                Span::raw(c.name.clone()),
                Span::styled(format!(" — {}", c.reason), t.dim()),
            ]));
        }
        if let Some(note) = &d.note {
            out.push(Line::from(Span::styled(format!("   {note}"), t.dim())));
        }
    }
    out
}
