//! The lint view (DESIGN §8 in the console): findings in a tree of level
//! → rule → account, each heading with its count, opening and closing with
//! `enter` (or a second click). In a level, the rules about the whole
//! system or a system account come first, so a system-wide error leads
//! thousands about tenants; in a rule, no account first, then the chain's
//! accounts, then tenants; an account with one finding shows it on the
//! rule's level. `/` filters by rule id, account slug or name, and text. Lint runs a page of
//! accounts at a time (`Cmd::Lint`), the view filling in with its progress
//! shown. `enter` on a finding goes to its setting (a user's finding, L007:
//! the system settings they cannot change; `p` opens their permissions),
//! `f` opens its fix in the editor — so it goes through the same diff,
//! impact preview and version-checked save as any edit.

use serde_json::Value;

use crate::domain::lint::{self, Finding, Scope, Severity};
use crate::domain::registry;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::access::may_modify;
use super::keymap::{Action, Screen};
use super::model::{Cmd, Model, Overlay};
use super::state::editor::Editor;
pub use super::state::lint::*;
use super::widgets::{Theme, centered, dialog, wrap_line, wrap_lines};
use crate::domain::text::{visible, visible_short};

/// Lint reads every setting: for those who may view the system settings.
pub fn open(model: &mut Model) -> Vec<Cmd> {
    let head = model.world.chain.first().map(|e| e.slug.clone()).unwrap_or_default();
    if let Err(why) = super::access::may_view(model, &head) {
        model.notice = Some(format!("lint reads every setting: not yours to view under this policy ({why} fails)"));
        return Vec::new();
    }
    let request = model.request();
    let system = model.world.chain.iter().map(|e| (e.slug.clone(), e.position.max(0) as u32)).collect();
    model.overlay = Some(Overlay::Lint(Box::new(LintView::new(request, system))));
    vec![Cmd::Lint { request, after: None }]
}

/// A page came: its findings join the view, and the next page is asked for.
pub fn loaded(model: &mut Model, request: u64, findings: Vec<Finding>, page: LintPage) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &mut model.overlay else { return Vec::new() };
    if view.request != request || !view.loading {
        return Vec::new();
    }
    view.add(findings, &page);
    match page.next {
        Some(after) => vec![Cmd::Lint { request, after: Some(after) }],
        None => {
            view.loading = false;
            if view.masked > 0 {
                let masked = lint::l008_not_checked(view.masked);
                view.add(vec![masked], &LintPage::default());
            }
            Vec::new()
        }
    }
}

/// The lint run failed or timed out: with nothing found yet the view closes
/// and says why; else it keeps what it has and says where it stopped.
pub(super) fn failed(model: &mut Model, request: u64, error: &str) -> bool {
    match &mut model.overlay {
        Some(Overlay::Lint(view)) if view.request == request && view.loading => {
            if view.findings.is_empty() {
                model.overlay = None;
                model.notice = Some(format!("lint did not finish: {}", visible_short(error, 120)));
            } else {
                view.loading = false;
                view.stopped = Some(visible_short(error, 120));
            }
            true
        }
        _ => false,
    }
}

pub fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let page = (model.size.1 as usize).saturating_sub(6);
    let Some(Overlay::Lint(view)) = &mut model.overlay else { return Vec::new() };
    match action {
        // A filter goes first, then the view.
        Some(Action::Close) if !view.filter.is_empty() => view.set_filter(String::new()),
        Some(Action::Close) => model.overlay = None,
        Some(Action::Filter) => view.filtering = true,
        Some(Action::Jump) if view.current().is_none() => view.toggle(),
        Some(Action::Jump) => return jump(model),
        Some(Action::Permissions) => return permissions(model),
        Some(Action::Refresh) => return open(model),
        Some(Action::Fix) => return fix(model),
        Some(a) => {
            if let Some(delta) = super::widgets::movement(a, page) {
                view.selected = super::widgets::moved(view.selected, delta, view.len());
            }
        }
        None => {}
    }
    Vec::new()
}

/// Typing the filter: enter keeps it, esc clears it.
pub(super) fn filter_key(model: &mut Model, key: &str, action: Option<Action>) -> Vec<Cmd> {
    let page = (model.size.1 as usize).saturating_sub(6);
    let Some(Overlay::Lint(view)) = &mut model.overlay else { return Vec::new() };
    match action {
        Some(Action::Accept) => view.filtering = false,
        Some(Action::Cancel) => {
            view.filtering = false;
            view.set_filter(String::new());
        }
        Some(a) => {
            if let Some(delta) = super::widgets::movement(a, page) {
                view.selected = super::widgets::moved(view.selected, delta, view.len());
            }
        }
        None if key == "backspace" => {
            let mut f = view.filter.clone();
            f.pop();
            view.set_filter(f);
        }
        None => {
            if let Some(c) = super::widgets::typed_char(key) {
                let f = format!("{}{c}", view.filter);
                view.set_filter(f);
            }
        }
    }
    Vec::new()
}

/// The user a finding is about (L007), if any.
pub fn user_of(f: &Finding) -> Option<&str> {
    f.user.as_deref()
}

/// Go to the finding's setting in the main view: its account and type.
/// A finding about no account (L006) or about a user (L007: the system
/// settings they cannot change) goes to the chain's first account.
fn jump(model: &mut Model) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &model.overlay else { return Vec::new() };
    let Some(f) = view.current().cloned() else { return Vec::new() };
    model.overlay = None;
    select(model, &f);
    super::model::load_visible(model)
}

/// `p` on a finding about a user (L007): their permissions against the
/// system settings.
fn permissions(model: &mut Model) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &model.overlay else { return Vec::new() };
    let Some(email) = view.current().and_then(user_of).map(str::to_string) else { return Vec::new() };
    model.overlay = None;
    let head = model.world.chain.first().and_then(|e| e.account.as_ref()).map(|a| a.id);
    model.accounts.set_filter(String::new());
    if let Some(id) = head {
        model.accounts.select_account(id);
    }
    model.resolve.email = Some(email);
    model.resolve.show_permissions = true;
    model.resolve.scroll = 0;
    model.resolve.subject = None;
    model.resolve.resolution = None;
    let mut cmds = super::model::load_visible(model);
    cmds.extend(super::model::resolve_cmd(model));
    cmds
}

/// The account a finding's setting belongs to: its own, or for a finding
/// about a user or about no account, the chain's first.
fn setting_account(model: &Model, f: &Finding) -> Option<i64> {
    let slug = match (user_of(f), &f.account) {
        (None, Some(slug)) => slug.clone(),
        _ => model.world.chain.first()?.slug.clone(),
    };
    model.accounts.entry_by_slug(&slug).map(|e| e.account.id)
}

fn select(model: &mut Model, f: &Finding) {
    if let Some(id) = setting_account(model, f) {
        model.accounts.set_filter(String::new());
        model.accounts.select_account(id);
    }
    if let Some(ty) = &f.integration_type
        && let Some(i) = model.tabs().iter().position(|t| t == ty)
    {
        model.main.tab = i;
    }
    model.resolve.show_permissions = false;
}

/// Open the finding's fix in the editor (the base is the setting as it is
/// now, so a stale fix conflicts like any edit).
fn fix(model: &mut Model) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &model.overlay else { return Vec::new() };
    let Some(f) = view.current().cloned() else { return Vec::new() };
    let Some(fix) = f.fix.clone() else {
        let go = if user_of(&f).is_some() {
            "enter goes to the system settings, p to this user's permissions"
        } else {
            "enter goes to the setting"
        };
        model.notice = Some(format!("{} has no automatic fix: {go}", f.id));
        return Vec::new();
    };
    let (Some(slug), Some(ty)) = (f.account.clone(), f.integration_type.clone()) else { return Vec::new() };
    model.overlay = None;
    select(model, &f);
    let cmds = super::model::load_visible(model);
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
    let mut levels = Vec::new();
    for (severity, one, many) in [
        (Severity::Error, "error", "errors"),
        (Severity::Warning, "warning", "warnings"),
        (Severity::Info, "info", "info"),
    ] {
        let n = findings.iter().filter(|f| f.severity == severity).count();
        if n > 0 {
            levels.push(format!("{} {}", thousands(n as u64), if n == 1 { one } else { many }));
        }
    }
    let mut rules: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in findings {
        *rules.entry(f.id).or_default() += 1;
    }
    let rules: Vec<String> = rules.into_iter().map(|(id, n)| format!("{id} {}", thousands(n as u64))).collect();
    format!("{} · {}", levels.join(", "), rules.join(" · "))
}

/// "1 system-wide", "1 system account + 2,999 tenants".
fn places_text(at: Places) -> String {
    let mut parts = Vec::new();
    if at.system_wide {
        parts.push("system-wide".to_string());
    }
    if at.system > 0 {
        parts.push(format!("{} system account{}", thousands(at.system as u64), if at.system == 1 { "" } else { "s" }));
    }
    if at.tenants > 0 {
        parts.push(format!("{} tenant{}", thousands(at.tenants as u64), if at.tenants == 1 { "" } else { "s" }));
    }
    parts.join(" + ")
}

/// "12" or "3 of 3,000" (matching the filter, of all).
fn count_text(shown: usize, all: usize) -> String {
    if shown == all {
        thousands(all as u64)
    } else {
        format!("{} of {}", thousands(shown as u64), thousands(all as u64))
    }
}

pub fn draw(model: &Model, view: &LintView, frame: &mut Frame, area: Rect, t: Theme) {
    let inner = dialog(
        frame,
        centered(area, area.width.saturating_sub(4).min(160), area.height.saturating_sub(2)),
        " Lint ".into(),
        t,
    );
    let mut head = Vec::new();
    if view.loading {
        let total = if view.total > 0 { format!(" of {}", thousands(view.total)) } else { String::new() };
        head.push(Line::from(Span::styled(
            format!(
                "checking settings… {}{total} · {} findings so far",
                thousands(view.checked),
                thousands(view.findings.len() as u64)
            ),
            t.dim(),
        )));
    } else if view.findings.is_empty() {
        head.push(Line::from(Span::styled("✓ no findings", t.ok())));
    }
    if !view.findings.is_empty() {
        head.push(Line::from(Span::styled(counts(&view.findings), t.heading())));
    }
    if view.stale {
        // The key that reads them again, from the keymap in force.
        let again = match model.keymap.first_key(Screen::Lint, Action::Refresh) {
            Some(key) => format!("{key} reads them again"),
            None => "close and open lint to read them again".to_string(),
        };
        head.push(Line::from(Span::styled(
            format!("⚠ settings changed since these findings were read: {again}"),
            t.warn(),
        )));
    }
    if let Some(why) = &view.stopped {
        head.push(Line::from(Span::styled(
            format!("lint stopped after {} settings: {why}", thousands(view.checked)),
            t.bad(),
        )));
    }
    if view.hidden > 0 {
        head.push(Line::from(Span::styled(
            format!("{} settings not checked: the database does not show them to you (policy)", view.hidden),
            t.warn(),
        )));
    }
    if view.filtering || !view.filter.is_empty() {
        let shown: usize = view.rules_in.keys().filter_map(|s| view.counts.get(&Row::Level(*s))).map(|c| c.0).sum();
        let mut spans = vec![Span::styled("/", t.accent()), Span::raw(visible(&view.filter).into_owned())];
        if view.filtering {
            spans.push(Span::raw("▏"));
        }
        spans.push(Span::styled(format!("  {shown} matching"), t.dim()));
        head.push(Line::from(spans));
    }
    let head = Paragraph::new(wrap_lines(head, inner.width)).wrap(Wrap { trim: false });
    let head_height = (head.line_count(inner.width) as u16).min(inner.height);
    frame.render_widget(head, Rect { height: head_height, ..inner });
    // The selected finding in full (or the heading's summary), under the list.
    let mut lines = vec![Line::from(Span::styled("─".repeat(inner.width as usize), t.dim()))];
    let selected = view.rows.get(view.selected).copied();
    let open_word = |row: &Row| {
        let (shown, _) = view.counts.get(row).copied().unwrap_or_default();
        if view.open(row, shown) { "close" } else { "open" }
    };
    match (selected, view.current()) {
        (_, Some(f)) => {
            let go = match (user_of(f), &f.account, &f.integration_type) {
                (Some(_), _, _) => "enter: the system settings · p: this user's permissions",
                (None, Some(_), _) | (None, None, Some(_)) => "enter: go to the setting",
                (None, None, None) => "",
            };
            let fix = f.fix.as_ref().map(|x| format!(" · f: {}", x.description)).unwrap_or_default();
            // The message wraps under itself, past the rule's id.
            let id = format!("{} ", f.id);
            let hang = Span::raw(id.as_str()).width();
            let message = Line::from(vec![Span::styled(id, t.accent()), Span::raw(visible(&f.message).into_owned())]);
            lines.extend(wrap_line(message, inner.width as usize, hang));
            lines.push(Line::from(Span::styled(format!("{go}{fix}"), t.dim())));
        }
        (Some(row @ Row::Level(severity)), None) => {
            let (shown, all) = view.counts.get(&row).copied().unwrap_or_default();
            let rules = view.rules_in.get(&severity).copied().unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(format!("{} ", word(severity)), t.accent()),
                Span::raw(format!(
                    "{} {} in {rules} rule{} · enter: {} · /: filter",
                    count_text(shown, all),
                    plural(severity, all),
                    if rules == 1 { "" } else { "s" },
                    open_word(&row)
                )),
            ]));
        }
        (Some(row @ Row::Rule(severity, id)), None) => {
            let (shown, all) = view.counts.get(&row).copied().unwrap_or_default();
            let at = view.places.get(&row).copied().unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(format!("{id} "), t.accent()),
                Span::raw(format!(
                    "{}: {} {} about {} · enter: {} · /: filter",
                    lint::rule_title(id),
                    count_text(shown, all),
                    plural(severity, all),
                    places_text(at),
                    open_word(&row)
                )),
            ]));
        }
        (Some(row @ Row::Account(severity, id, key)), None) => {
            let (shown, all) = view.counts.get(&row).copied().unwrap_or_default();
            let slug = view.slug(key);
            let name = view.names.get(slug).map(|n| format!(" ({})", visible_short(n, 40))).unwrap_or_default();
            let system = if key.0 == Scope::SystemAccount { ", a system account" } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{} ", visible_short(slug, 40)), t.accent()),
                Span::raw(format!(
                    "{name}{system}: {} {} of {id} · enter: {}",
                    count_text(shown, all),
                    plural(severity, all),
                    open_word(&row)
                )),
            ]));
        }
        _ => {}
    }
    let detail = (lines.len() > 1).then(|| Paragraph::new(wrap_lines(lines, inner.width)).wrap(Wrap { trim: false }));
    let detail_height = detail
        .as_ref()
        .map(|d| (d.line_count(inner.width) as u16).min(inner.height.saturating_sub(head_height + 3)))
        .unwrap_or(0);
    let list =
        Rect { y: inner.y + head_height, height: inner.height.saturating_sub(head_height + detail_height), ..inner };
    let rows = list.height as usize;
    let scroll = view.selected.saturating_sub(rows.saturating_sub(1) / 2).min(view.rows.len().saturating_sub(rows));
    view.list_at.set(Some((list, scroll)));
    let width = inner.width as usize;
    // Only the rows on screen are built: there can be thousands of L009.
    let mut out = Vec::with_capacity(rows);
    for (i, row) in view.rows.iter().enumerate().skip(scroll).take(rows) {
        let (shown, all) = view.counts.get(row).copied().unwrap_or_default();
        let mark = view.mark(row, shown);
        let heading = |text: String, style: ratatui::style::Style, rest: String| {
            let room = width.saturating_sub(Span::raw(text.as_str()).width());
            Line::from(vec![
                Span::styled(text, style.add_modifier(Modifier::BOLD)),
                Span::styled(visible_short(&rest, room), t.dim()),
            ])
        };
        let severity_style = |s: Severity| match s {
            Severity::Error => t.bad(),
            Severity::Warning => t.warn(),
            Severity::Info => t.dim(),
        };
        let mut line = match *row {
            Row::Level(severity) => {
                let rules = view.rules_in.get(&severity).copied().unwrap_or_default();
                heading(
                    format!("{mark} {:<8} {:>6}  ", word(severity), count_text(shown, all)),
                    severity_style(severity),
                    format!("in {rules} rule{}", if rules == 1 { "" } else { "s" }),
                )
            }
            Row::Rule(severity, id) => {
                let at = view.places.get(row).copied().unwrap_or_default();
                heading(
                    format!("  {mark} {id} {:>6}  ", count_text(shown, all)),
                    severity_style(severity),
                    format!("{} · {}", places_text(at), lint::rule_title(id)),
                )
            }
            Row::Account(_, _, key) => {
                let slug = view.slug(key);
                let name = view.names.get(slug).map(|n| format!("  {}", visible(n))).unwrap_or_default();
                let system = if key.0 == Scope::SystemAccount { "  system account" } else { "" };
                heading(
                    format!("    {mark} {} {:>5}", visible_short(slug, 30), count_text(shown, all)),
                    ratatui::style::Style::new(),
                    format!("{system}{name}"),
                )
            }
            Row::Finding(at, nested) => {
                let f = &view.findings[at as usize];
                let fix = if f.fix.is_some() { "[f] " } else { "    " };
                let indent = if nested { "      " } else { "    " };
                let room = width.saturating_sub(indent.len() + 4).max(8);
                Line::from(vec![
                    Span::raw(indent),
                    Span::styled(fix, t.accent()),
                    Span::raw(visible_short(&f.message, room)),
                ])
            }
        };
        if i == view.selected {
            line = line.style(t.selected(true));
        }
        out.push(line);
    }
    frame.render_widget(Paragraph::new(out), list);
    if let Some(d) = detail {
        frame.render_widget(d, Rect { y: list.y + list.height, height: detail_height, ..inner });
    }
}

/// A click in the list: the row under it is selected; a click on the row
/// already selected (the second of a double-click) opens it, as enter does.
pub(super) fn click(model: &mut Model, column: u16, row: u16) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &mut model.overlay else { return Vec::new() };
    let Some((list, scroll)) = view.list_at.get() else { return Vec::new() };
    if column < list.x || column >= list.right() || row < list.y || row >= list.bottom() {
        return Vec::new();
    }
    let index = scroll + (row - list.y) as usize;
    if index >= view.rows.len() {
        return Vec::new();
    }
    if index != view.selected {
        view.selected = index;
        return Vec::new();
    }
    key(model, Some(Action::Jump))
}

/// "error"/"errors", "warning"/"warnings", "info".
fn plural(severity: Severity, n: usize) -> &'static str {
    match (severity, n) {
        (Severity::Error, 1) => "error",
        (Severity::Error, _) => "errors",
        (Severity::Warning, 1) => "warning",
        (Severity::Warning, _) => "warnings",
        (Severity::Info, _) => "info",
    }
}

/// 16503 → "16,503".
fn thousands(n: u64) -> String {
    crate::domain::text::grouped(n as i64)
}

/// Whether a lint-view action can do something now (for the footer).
pub(super) fn available(view: &LintView, action: Action) -> bool {
    match action {
        Action::Fix => view.current().is_some_and(|f| f.fix.is_some()),
        Action::Permissions => view.current().is_some_and(|f| f.user.is_some()),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn finding(id: &'static str, severity: Severity, account: Option<&str>, message: &str) -> Finding {
        Finding {
            id,
            severity,
            account: account.map(str::to_string),
            integration_type: Some("image_generation".into()),
            user: None,
            message: message.into(),
            fix: None,
        }
    }

    fn view(findings: Vec<Finding>) -> LintView {
        let system = HashMap::from([("aws-admin".to_string(), 1), ("default".to_string(), 2)]);
        let mut view = LintView::new(1, system);
        let names = vec![("t-two".to_string(), "Two Corp".to_string())];
        view.add(findings, &LintPage { names, ..LintPage::default() });
        view
    }

    /// Level → rule → account: the rule about no account first, then the
    /// one about a system account; in a rule, the chain's account before a
    /// tenant's; an account with two findings gets a heading of its own,
    /// one with a single finding shows it on the rule's level.
    #[test]
    fn findings_form_a_tree_with_the_system_first() {
        let mut v = view(vec![
            finding("L002", Severity::Error, Some("t-one"), "t-one a"),
            finding("L002", Severity::Error, Some("t-two"), "t-two a"),
            finding("L002", Severity::Error, Some("t-two"), "t-two b"),
            finding("L002", Severity::Error, Some("default"), "default a"),
            finding("L001", Severity::Error, Some("aws-admin"), "aws-admin a"),
            finding("L006", Severity::Error, None, "nobody answers"),
            finding("L004", Severity::Info, Some("t-one"), "odd model"),
        ]);
        assert_eq!(
            v.row_texts(),
            [
                "▾ error 6/6",
                "  ▾ L006 1/1",
                "nobody answers",
                "  ▾ L001 1/1",
                "aws-admin a",
                "  ▾ L002 4/4",
                "default a",
                "t-one a",
                "    ▾ t-two 2/2",
                "t-two a",
                "t-two b",
                "▾ info 1/1",
                "  ▾ L004 1/1",
                "odd model",
            ]
        );
        assert_eq!(v.current().map(|f| f.message.as_str()), Some("nobody answers"), "the first finding");
        let at = |v: &LintView| v.places.get(&Row::Rule(Severity::Error, "L002")).copied().unwrap_or_default();
        assert_eq!(places_text(at(&v)), "1 system account + 2 tenants");
        // An account's heading closes; a level's too.
        v.selected = 8;
        v.toggle();
        assert_eq!(v.row_texts()[8..10], ["    ▸ t-two 2/2".to_string(), "▾ info 1/1".to_string()]);
        v.selected = 0;
        v.toggle();
        assert_eq!(v.row_texts()[..2], ["▸ error 6/6".to_string(), "▾ info 1/1".to_string()]);
        v.toggle();
        // The filter, by an account's name: counts say of how many (the
        // account's heading stays as it was closed by hand).
        v.set_filter("two corp".into());
        assert_eq!(v.row_texts(), ["▾ error 2/6", "  ▾ L002 2/4", "    ▸ t-two 2/2"]);
    }
}
