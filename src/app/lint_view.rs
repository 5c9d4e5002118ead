//! The lint view (DESIGN §8 in the console): counts by level and rule,
//! every finding, the selected one's whole message; `enter` goes to the
//! setting (or, for a finding about a user, to their permissions), `f`
//! opens its fix in the editor — so it goes through the same diff, impact
//! preview and version-checked save as any edit. Its state, keys and view.

use serde_json::Value;

use crate::domain::lint::Finding;
use crate::domain::registry;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::editor::Editor;
use super::keymap::Action;
use super::view::{Theme, centered, dialog, wrap_line, wrap_lines};
use super::{Cmd, Model, Overlay, may_modify};
use crate::domain::text::{visible, visible_short};

#[derive(Debug)]
pub struct LintView {
    pub findings: Vec<Finding>,
    pub selected: usize,
    pub request: u64,
    pub loading: bool,
}

/// Lint reads every setting: for those who may view the system settings.
pub fn open(model: &mut Model) -> Vec<Cmd> {
    let head = model.world.chain.first().map(|e| e.slug.clone()).unwrap_or_default();
    if let Err(why) = super::may_view(model, &head) {
        model.notice = Some(format!("lint reads every setting: not yours to view under this policy ({why} fails)"));
        return Vec::new();
    }
    let request = model.request();
    model.overlay = Some(Overlay::Lint(LintView { findings: Vec::new(), selected: 0, request, loading: true }));
    vec![Cmd::Lint { request }]
}

pub fn loaded(model: &mut Model, request: u64, findings: Vec<Finding>) -> Vec<Cmd> {
    if let Some(Overlay::Lint(view)) = &mut model.overlay
        && view.request == request
    {
        view.findings = findings;
        view.loading = false;
        view.selected = 0;
    }
    Vec::new()
}

/// The lint run failed or timed out: the view closes and says why.
pub(super) fn failed(model: &mut Model, request: u64, error: &str) -> bool {
    match &model.overlay {
        Some(Overlay::Lint(view)) if view.request == request && view.loading => {
            model.overlay = None;
            model.notice = Some(format!("lint did not finish: {}", visible_short(error, 120)));
            true
        }
        _ => false,
    }
}

pub fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let page = (model.size.1 as usize).saturating_sub(6);
    let Some(Overlay::Lint(view)) = &mut model.overlay else { return Vec::new() };
    match action {
        Some(Action::Close) => model.overlay = None,
        Some(Action::Jump) => return jump(model),
        Some(Action::Fix) => return fix(model),
        Some(a) => {
            if let Some(delta) = super::movement(a, page) {
                view.selected = super::moved(view.selected, delta, view.findings.len());
            }
        }
        None => {}
    }
    Vec::new()
}

/// The user a finding is about (L007), if any.
pub fn user_of(f: &Finding) -> Option<&str> {
    f.user.as_deref()
}

/// Select the finding's account and type in the main view; a finding
/// about a user opens their permissions against the system settings.
fn jump(model: &mut Model) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &model.overlay else { return Vec::new() };
    let Some(f) = view.findings.get(view.selected).cloned() else { return Vec::new() };
    model.overlay = None;
    if let Some(email) = user_of(&f) {
        let head = model.world.chain.first().and_then(|e| e.account.as_ref()).map(|a| a.id);
        model.accounts.set_filter(String::new());
        if let Some(id) = head {
            model.accounts.select_account(id);
        }
        model.resolve.email = Some(email.to_string());
        model.resolve.show_permissions = true;
        model.resolve.scroll = 0;
        model.resolve.subject = None;
        model.resolve.resolution = None;
        let mut cmds = super::load_visible(model);
        cmds.extend(super::resolve_cmd(model));
        return cmds;
    }
    select(model, &f);
    super::load_visible(model)
}

fn select(model: &mut Model, f: &Finding) {
    if let Some(slug) = &f.account {
        model.accounts.set_filter(String::new());
        let id = model.accounts.entry_by_slug(slug).map(|e| e.account.id);
        if let Some(id) = id {
            model.accounts.select_account(id);
        }
    }
    if let Some(ty) = &f.integration_type
        && let Some(i) = model.tabs().iter().position(|t| t == ty)
    {
        model.main.tab = i;
    }
}

/// Open the finding's fix in the editor (the base is the setting as it is
/// now, so a stale fix conflicts like any edit).
fn fix(model: &mut Model) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &model.overlay else { return Vec::new() };
    let Some(f) = view.findings.get(view.selected).cloned() else { return Vec::new() };
    let Some(fix) = f.fix.clone() else {
        model.notice = Some(format!("{} has no automatic fix: enter jumps to the setting", f.id));
        return Vec::new();
    };
    let (Some(slug), Some(ty)) = (f.account.clone(), f.integration_type.clone()) else { return Vec::new() };
    model.overlay = None;
    select(model, &f);
    let cmds = super::load_visible(model);
    let Some(account) = model.selected_account().cloned().filter(|a| a.slug == slug) else { return cmds };
    if let Err(why) = may_modify(model, &account) {
        model.notice = Some(format!("read-only here: {why}"));
        return cmds;
    }
    let (Some(spec), Some(Value::Object(prefill))) = (registry::spec(&ty), fix.config.clone()) else { return cmds };
    let base = model.world.settings.get(&(account.id, ty.clone())).cloned();
    if base.as_ref().map(|b| b.version) != Some(fix.version) {
        model.notice = Some("the setting changed since lint ran: press L again".into());
        return cmds;
    }
    match Editor::open_with(spec, account, base, None, Some(prefill)) {
        Ok(mut ed) => {
            ed.message = Some(match &fix.field {
                Some(field) => format!(
                    "{}: {}: fill in {field} ({}), then ctrl-s",
                    f.id,
                    fix.description,
                    fix.choices.join(" or ")
                ),
                None => format!("{}: {} — review, then ctrl-s", f.id, fix.description),
            });
            if let Some(i) = fix.field.as_ref().and_then(|field| ed.fields.iter().position(|x| &x.name == field)) {
                ed.focus = i;
            }
            model.overlay = Some(Overlay::Edit(Box::new(ed)));
        }
        Err(why) => model.notice = Some(why),
    }
    cmds
}

/// "2 errors, 1 warning · L001 1 · L006 1 · L007 1".
pub fn counts(findings: &[Finding]) -> String {
    use crate::domain::lint::Severity;
    let mut levels = Vec::new();
    for (severity, one, many) in [
        (Severity::Error, "error", "errors"),
        (Severity::Warning, "warning", "warnings"),
        (Severity::Info, "info", "info"),
    ] {
        let n = findings.iter().filter(|f| f.severity == severity).count();
        if n > 0 {
            levels.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    let mut rules: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in findings {
        *rules.entry(f.id).or_default() += 1;
    }
    let rules: Vec<String> = rules.into_iter().map(|(id, n)| format!("{id} {n}")).collect();
    format!("{} · {}", levels.join(", "), rules.join(" · "))
}

pub fn draw(view: &LintView, frame: &mut Frame, area: Rect, t: Theme) {
    use crate::domain::lint::Severity;
    let inner = dialog(
        frame,
        centered(area, area.width.saturating_sub(4).min(120), area.height.saturating_sub(2)),
        " Lint ".into(),
        t,
    );
    let mut head = Vec::new();
    if view.loading {
        head.push(Line::from(Span::styled("checking every setting…", t.dim())));
    } else if view.findings.is_empty() {
        head.push(Line::from(Span::styled("✓ no findings", t.ok())));
    } else {
        head.push(Line::from(Span::styled(counts(&view.findings), t.heading())));
    }
    let head = Paragraph::new(head).wrap(Wrap { trim: false });
    let head_height = (head.line_count(inner.width) as u16).min(inner.height);
    frame.render_widget(head, Rect { height: head_height, ..inner });
    // The selected finding in full, under the list.
    let detail = view.findings.get(view.selected).map(|f| {
        let go = match (user_of(f), &f.account) {
            (Some(_), _) => "enter: this user's permissions",
            (None, Some(_)) => "enter: go to the setting",
            (None, None) => "",
        };
        let fix = f.fix.as_ref().map(|x| format!(" · f: {}", x.description)).unwrap_or_default();
        // The message wraps under itself, past the rule's id.
        let id = format!("{} ", f.id);
        let hang = Span::raw(id.as_str()).width();
        let message = Line::from(vec![Span::styled(id, t.accent()), Span::raw(visible(&f.message).into_owned())]);
        let mut lines = vec![Line::from(Span::styled("─".repeat(inner.width as usize), t.dim()))];
        lines.extend(wrap_line(message, inner.width as usize, hang));
        lines.push(Line::from(Span::styled(format!("{go}{fix}"), t.dim())));
        Paragraph::new(wrap_lines(lines, inner.width)).wrap(Wrap { trim: false })
    });
    let detail_height = detail
        .as_ref()
        .map(|d| (d.line_count(inner.width) as u16).min(inner.height.saturating_sub(head_height + 3)))
        .unwrap_or(0);
    let list =
        Rect { y: inner.y + head_height, height: inner.height.saturating_sub(head_height + detail_height), ..inner };
    let rows = list.height as usize;
    let scroll = view.selected.saturating_sub(rows.saturating_sub(1) / 2).min(view.findings.len().saturating_sub(rows));
    // Only the rows on screen are built: there can be thousands of L009.
    let mut lines = Vec::with_capacity(rows);
    for (i, f) in view.findings.iter().enumerate().skip(scroll).take(rows) {
        let (word, style) = match f.severity {
            Severity::Error => ("error  ", t.bad()),
            Severity::Warning => ("warning", t.warn()),
            Severity::Info => ("info   ", t.dim()),
        };
        let fix = if f.fix.is_some() { " [f fix]" } else { "        " };
        let mut line = Line::from(vec![
            Span::raw(format!("{} ", f.id)),
            Span::styled(word, style),
            Span::styled(fix, t.accent()),
            Span::raw(format!(" {}", visible_short(&f.message, 200))),
        ]);
        if i == view.selected {
            line = line.style(t.selected(true));
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), list);
    if let Some(d) = detail {
        frame.render_widget(d, Rect { y: list.y + list.height, height: detail_height, ..inner });
    }
}

/// Whether a lint-view action can do something now (for the footer).
pub(super) fn available(view: &LintView, action: Action) -> bool {
    match action {
        Action::Fix => view.findings.get(view.selected).is_some_and(|f| f.fix.is_some()),
        _ => true,
    }
}
