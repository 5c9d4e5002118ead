//! The resolve-as panel (DESIGN §2 on screen): pick a user and a function,
//! and the trace — every account walked, its verdict, the second hop —
//! follows every edit and every change from elsewhere. Toggled with `p` to
//! the permission checks (`permissions_view`). Its state, its request and
//! reply, and its view; the trace hides the contents of rows the operator
//! may not view, never their verdicts.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::keymap::{Action, Screen};
use super::model::{Cmd, Connection, Model};
use super::request::Kind;
use super::setting_pane::problems;
use super::state::main::Pane;
pub use super::state::resolve::*;
use super::widgets::{Theme, pane_block, panes, wrap_lines};
use crate::domain::directory::SubjectData;
use crate::domain::resolve::{Hop, Rules, Verdict, resolve};
use crate::domain::text::{visible, visible_short};

pub fn draw(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let focused = model.main.focus == Pane::Resolve;
    let title = if model.resolve.show_permissions {
        " Permissions ".to_string()
    } else {
        // The rule set is named only when it is not the seed's own: a
        // declared `[resolution]` changes what the trace means.
        match model.resolve.resolution.as_ref().map(|r| r.rules.as_str()) {
            Some(rules) if rules != Rules::default().name() => {
                let room = (area.width as usize).saturating_sub(" Resolve as · rules:  ".chars().count() + 2);
                format!(" Resolve as · rules: {} ", visible_short(rules, room.max(8)))
            }
            _ => " Resolve as ".to_string(),
        }
    };
    let block = pane_block(title, focused, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines = wrap_lines(resolve_text(model, inner.width as usize, t), inner.width);
    let text = Paragraph::new(Text::from(lines)).wrap(Wrap { trim: false });
    let scroll = model.resolve.scroll.min((text.line_count(inner.width) as u16).saturating_sub(inner.height));
    frame.render_widget(text.scroll((scroll, 0)), inner);
}

/// The resolve-as panel as plain text (for the clipboard): what is on
/// screen, without styles, not cut to the pane's width.
pub fn resolve_plain(model: &Model) -> String {
    resolve_text(model, 200, Theme { color: false })
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The resolve pane's inside at the current size.
fn resolve_inner(model: &Model) -> Rect {
    let (_, _, r) = panes(model.size, model.resolve.show_permissions);
    Block::bordered().inner(r)
}

/// Rows the resolve pane shows.
pub fn resolve_rows(model: &Model) -> u16 {
    resolve_inner(model).height
}

/// Lines the resolve pane has, wrapped to its width.
pub fn resolve_lines(model: &Model) -> u16 {
    let inner = resolve_inner(model);
    let text = wrap_lines(resolve_text(model, inner.width as usize, Theme { color: false }), inner.width);
    Paragraph::new(text).wrap(Wrap { trim: false }).line_count(inner.width) as u16
}

fn resolve_text(model: &Model, width: usize, t: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let r = &model.resolve;
    let user = match &r.email {
        Some(e) => Span::raw(visible_short(e, 40)),
        None => Span::styled(
            format!("{}: pick a user", model.keymap.first_key(Screen::Main, Action::PickUser).unwrap_or("?")),
            t.dim(),
        ),
    };
    lines.push(Line::from(vec![Span::styled("user     ", t.dim()), user]));
    if !r.show_permissions {
        let function = match &r.function {
            Some(f) => {
                let ty = model.functions.iter().find(|(n, _)| n == f).map(|(_, t)| t.as_str()).unwrap_or("?");
                Span::raw(format!("{} → {}", visible(f), visible(ty)))
            }
            None => Span::styled(
                format!(
                    "{}: pick a function",
                    model.keymap.first_key(Screen::Main, Action::PickFunction).unwrap_or("?")
                ),
                t.dim(),
            ),
        };
        lines.push(Line::from(vec![Span::styled("function ", t.dim()), function]));
        lines.push(Line::raw(""));
        lines.extend(trace_lines(model, width, t));
    } else {
        lines.extend(super::permissions_view::lines(model, t));
    }
    lines
}

fn trace_lines(model: &Model, width: usize, t: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(res) = &model.resolve.resolution else {
        if model.resolve.email.is_some() {
            out.push(Line::from(Span::styled("resolving…", t.dim())));
        }
        return out;
    };
    let hidden = |slug: &str| super::access::may_view(model, slug).is_err();
    hop_lines(&res.hop, 0, width, t, &hidden, &mut out);
    for w in &res.warnings {
        out.push(Line::from(Span::styled(
            format!("⚠ {}", crate::domain::secret::mask_shapes_in_text(&w.message)),
            t.warn(),
        )));
    }
    if let Some(test) = model.last_test.as_ref().filter(|x| x.from_resolve) {
        out.push(super::connection_test::line(model, test, t));
    }
    out.push(Line::raw(""));
    if res.is_resolved() {
        let mut text = format!("✓ {} answers", visible(res.hop.answered_by.as_deref().unwrap_or("?")));
        if let Some(h) = &res.hop.hop {
            text.push_str(&format!(
                ", {} from {}",
                visible(&crate::domain::secret::shape_masked(&h.integration_type)),
                visible(h.answered_by.as_deref().unwrap_or("?"))
            ));
        }
        out.push(Line::from(Span::styled(text, t.ok())));
    } else if res.hop.failure().is_some() {
        // The error is drawn in full under the failing step.
        out.push(Line::from(Span::styled("✗ unresolved: the app raises (✗ above)", t.bad())));
    } else {
        let why = res.hop.unresolved_reason().unwrap_or_else(|| "nothing answers".to_string());
        let why = crate::domain::secret::mask_shapes_in_text(&why);
        out.push(Line::from(Span::styled(format!("✗ unresolved: {}", visible(&why)), t.bad())));
    }
    out
}

fn hop_lines(
    hop: &Hop,
    depth: usize,
    width: usize,
    t: Theme,
    hidden: &dyn Fn(&str) -> bool,
    out: &mut Vec<Line<'static>>,
) {
    let indent = "  ".repeat(depth);
    let slug_width = width.saturating_sub(indent.len() + 20).clamp(8, 24);
    let last = hop.steps.len().saturating_sub(1);
    for (i, step) in hop.steps.iter().enumerate() {
        let head = format!("{indent}{} {:<slug_width$} ", i + 1, visible_short(&step.account, slug_width));
        // What is left of the line for the verdict: longer forms are used
        // only where they fit, so the verdicts stay in one column.
        let room = width.saturating_sub(head.chars().count());
        let failed = i == last && hop.error.is_some();
        // The row's content is for those who may view it (the verdict is not).
        let mut detail = if step.verdict == Verdict::NoRow || !hidden(&step.account) {
            step.detail.clone()
        } else {
            "(contents hidden by the policy)".to_string()
        };
        let mut spans = vec![Span::raw(head)];
        match step.verdict {
            Verdict::Answered => {
                spans.push(Span::styled("ANSWER", t.ok().add_modifier(Modifier::BOLD)));
                if !step.findings.is_empty() {
                    let n = step.findings.len();
                    let extra = [format!(" with {}", problems(n)), format!(" {}", problems(n)), format!(" ⚠{n}")]
                        .into_iter()
                        .find(|e| 6 + e.chars().count() <= room)
                        .unwrap_or_else(|| format!(" ⚠{n}"));
                    spans.push(Span::styled(extra, t.warn()));
                }
            }
            v if failed => {
                let word = format!("FAILS {}", v.as_str());
                if word.chars().count() <= room {
                    spans.push(Span::styled(word, t.bad().add_modifier(Modifier::BOLD)));
                } else {
                    spans.push(Span::styled("FAILS", t.bad().add_modifier(Modifier::BOLD)));
                    detail = format!("{}: {detail}", v.as_str());
                }
            }
            v => spans.push(Span::styled(v.as_str().to_string(), t.dim())),
        }
        out.push(Line::from(spans));
        if step.verdict != Verdict::NoRow || depth == 0 {
            out.push(Line::from(Span::styled(format!("{indent}  {detail}"), t.dim())));
        }
        // One line per finding, cut to the pane: the setting pane has them
        // in full.
        let finding_width = width.saturating_sub(indent.len() + 4).max(8);
        for finding in step.findings.iter().filter(|_| !hidden(&step.account)) {
            out.push(Line::from(Span::styled(
                format!("{indent}  ⚠ {}", visible_short(finding, finding_width)),
                t.warn(),
            )));
        }
    }
    if let Some(error) = &hop.error {
        let error = crate::domain::secret::mask_shapes_in_text(error);
        out.push(Line::from(Span::styled(format!("{indent}  ✗ {}", visible(&error)), t.bad())));
    }
    if let Some(next) = &hop.hop {
        // The type the provider names, as the app looks it up: whatever the
        // row holds there (a key pasted into `provider`) is masked by shape.
        let label = crate::domain::secret::shape_masked(&next.integration_type);
        out.push(Line::from(Span::styled(format!("{indent}└ {}", visible(&label)), t.accent())));
        hop_lines(next, depth + 1, width, t, hidden, out);
    }
}

/// What the resolve-as request gathered: resolved here, purely.
pub(super) fn resolved(model: &mut Model, request: u64, subject: SubjectData) -> Vec<Cmd> {
    if !model.requests.is_latest(Kind::Resolve, request) {
        return Vec::new();
    }
    model.connection = Connection::Up;
    let resolution = match (&subject.user, &subject.function) {
        (Some(user), Some(function)) => Some(resolve(&subject.snapshot, user, function)),
        _ => None,
    };
    if subject.user.is_none() {
        let gone = if model.time.as_of.is_some() { "did not exist then" } else { "no longer exists" };
        model.notice = Some(format!("that user {gone}"));
    }
    model.policy = subject.policy;
    model.resolve.resolution = resolution;
    model.resolve.subject = Some(subject);
    Vec::new()
}
