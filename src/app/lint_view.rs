//! The lint view (DESIGN §8 in the console): findings grouped by level,
//! then scope (system-wide, system accounts, tenants), then rule — so a
//! system-wide error leads thousands about tenants — each group a heading
//! that opens and closes (`enter`), its findings by account under it; `/`
//! filters by rule id, account slug or name, and text. Lint runs a page of
//! accounts at a time (`Cmd::Lint`), the view filling in with its progress
//! shown. `enter` on a finding goes to its setting (a user's finding, L007:
//! the system settings they cannot change; `p` opens their permissions),
//! `f` opens its fix in the editor — so it goes through the same diff,
//! impact preview and version-checked save as any edit.

use serde_json::Value;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::domain::lint::{self, Finding, GroupKey, Severity};
use crate::domain::registry;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::editor::Editor;
use super::keymap::Action;
use super::view::{Theme, centered, dialog, wrap_line, wrap_lines};
use super::{Cmd, Model, Overlay, may_modify};
use crate::domain::text::{visible, visible_short};

/// How far a lint run has got: what one page adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LintPage {
    /// The account id to start the next page after; None: this was the last.
    pub next: Option<i64>,
    /// Settings judged in this page.
    pub checked: u64,
    /// Settings in all (given by the first page).
    pub total: u64,
    /// Settings the database withholds from this login's operator: not linted.
    pub hidden: usize,
    /// Settings whose key this login reads masked (L008 cannot look).
    pub masked: usize,
    /// (slug, name) of the accounts the page's findings are about.
    pub names: Vec<(String, String)>,
}

/// A row of the view: a group's heading, or a finding (its index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Group(GroupKey),
    Finding(u32),
}

#[derive(Debug)]
pub struct LintView {
    /// Every finding, in the order they came.
    pub findings: Vec<Finding>,
    /// Index into the rows shown.
    pub selected: usize,
    pub request: u64,
    pub loading: bool,
    /// The filter (`/`): every word must be in the rule id, the account's
    /// slug or name, or the message.
    pub filter: String,
    /// Typing goes to the filter.
    pub filtering: bool,
    /// The fallback chain's slugs (a finding about one is a system account's).
    system: HashSet<String>,
    /// Account names by slug, for the filter.
    names: HashMap<String, String>,
    /// Each group's findings, in arrival order (by account), groups in order.
    groups: BTreeMap<GroupKey, Vec<u32>>,
    /// Groups opened or closed by hand (against their default).
    toggled: HashSet<GroupKey>,
    rows: Vec<Row>,
    /// Per group shown: (matching the filter, in all).
    counts: HashMap<GroupKey, (usize, usize)>,
    checked: u64,
    total: u64,
    hidden: usize,
    masked: usize,
    /// Why the run stopped before the end, if it did.
    stopped: Option<String>,
    /// A change arrived after the findings were read (live notices): the
    /// list says so until it is read again.
    pub stale: bool,
}

/// A group this small is open unless closed by hand.
const OPEN_UP_TO: usize = 25;

impl LintView {
    fn new(request: u64, system: HashSet<String>) -> LintView {
        LintView {
            findings: Vec::new(),
            selected: 0,
            request,
            loading: true,
            filter: String::new(),
            filtering: false,
            system,
            names: HashMap::new(),
            groups: BTreeMap::new(),
            toggled: HashSet::new(),
            rows: Vec::new(),
            counts: HashMap::new(),
            checked: 0,
            total: 0,
            hidden: 0,
            masked: 0,
            stopped: None,
            stale: false,
        }
    }

    /// Add a page's findings, keeping the selection on the same row.
    pub fn add(&mut self, findings: Vec<Finding>, page: &LintPage) {
        for f in findings {
            let key = lint::group_key(&f, |slug| self.system.contains(slug));
            self.groups.entry(key).or_default().push(self.findings.len() as u32);
            self.findings.push(f);
        }
        self.names.extend(page.names.iter().cloned());
        self.checked += page.checked;
        self.total = self.total.max(page.total);
        self.hidden += page.hidden;
        self.masked += page.masked;
        let first = self.rows.is_empty();
        self.rebuild();
        // On the first page, the first finding rather than its heading.
        if first && matches!(self.rows.get(1), Some(Row::Finding(_))) {
            self.selected = 1;
        }
    }

    /// The finding selected, if a finding (not a heading) is.
    pub fn current(&self) -> Option<&Finding> {
        match self.rows.get(self.selected) {
            Some(Row::Finding(i)) => self.findings.get(*i as usize),
            _ => None,
        }
    }

    /// How many rows are shown (headings and open groups' findings).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows as text, for tests: "▾ error L006 system-wide 1" headings,
    /// findings as their message.
    pub fn row_texts(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| match r {
                Row::Group(key) => {
                    let (shown, all) = self.counts.get(key).copied().unwrap_or_default();
                    format!("{} {} {} {} {shown}/{all}", self.mark(key, shown), word(key.0), key.2, key.1.label())
                }
                Row::Finding(i) => self.findings[*i as usize].message.clone(),
            })
            .collect()
    }

    pub fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        self.rebuild();
        self.selected = self.rows.iter().position(|r| matches!(r, Row::Finding(_))).unwrap_or(0);
    }

    fn open(&self, key: &GroupKey, shown: usize) -> bool {
        let default = shown <= OPEN_UP_TO || (!self.filter.trim().is_empty() && shown <= 10 * OPEN_UP_TO);
        default != self.toggled.contains(key)
    }

    fn mark(&self, key: &GroupKey, shown: usize) -> &'static str {
        if self.open(key, shown) { "▾" } else { "▸" }
    }

    fn matches(&self, f: &Finding, words: &[String]) -> bool {
        words.iter().all(|w| {
            let has = |text: &str| text.to_lowercase().contains(w.as_str());
            has(f.id)
                || f.account
                    .as_deref()
                    .is_some_and(|slug| has(slug) || self.names.get(slug).is_some_and(|name| has(name)))
                || f.integration_type.as_deref().is_some_and(has)
                || f.user.as_deref().is_some_and(has)
                || has(&f.message)
        })
    }

    /// The rows again (after new findings, a filter or a group opened),
    /// the selection kept on the same row when it is still there.
    fn rebuild(&mut self) {
        let keep = self.rows.get(self.selected).copied();
        let words: Vec<String> = self.filter.split_whitespace().map(str::to_lowercase).collect();
        let mut rows = Vec::new();
        let mut counts = HashMap::new();
        for (key, members) in &self.groups {
            let shown: Vec<u32> = if words.is_empty() {
                members.clone()
            } else {
                members.iter().copied().filter(|&i| self.matches(&self.findings[i as usize], &words)).collect()
            };
            if shown.is_empty() {
                continue;
            }
            counts.insert(*key, (shown.len(), members.len()));
            rows.push(Row::Group(*key));
            if self.open(key, shown.len()) {
                rows.extend(shown.into_iter().map(Row::Finding));
            }
        }
        self.rows = rows;
        self.counts = counts;
        self.selected = keep
            .and_then(|k| self.rows.iter().position(|r| *r == k))
            .unwrap_or(self.selected.min(self.rows.len().saturating_sub(1)));
    }

    /// Open or close the selected group (its heading keeps the selection).
    fn toggle(&mut self) {
        let Some(Row::Group(key)) = self.rows.get(self.selected).copied() else { return };
        if !self.toggled.remove(&key) {
            self.toggled.insert(key);
        }
        self.rebuild();
    }
}

fn word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// Lint reads every setting: for those who may view the system settings.
pub fn open(model: &mut Model) -> Vec<Cmd> {
    let head = model.world.chain.first().map(|e| e.slug.clone()).unwrap_or_default();
    if let Err(why) = super::may_view(model, &head) {
        model.notice = Some(format!("lint reads every setting: not yours to view under this policy ({why} fails)"));
        return Vec::new();
    }
    let request = model.request();
    let system = model.world.chain.iter().map(|e| e.slug.clone()).collect();
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
            if let Some(delta) = super::movement(a, page) {
                view.selected = super::moved(view.selected, delta, view.len());
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
            if let Some(delta) = super::movement(a, page) {
                view.selected = super::moved(view.selected, delta, view.len());
            }
        }
        None if key == "backspace" => {
            let mut f = view.filter.clone();
            f.pop();
            view.set_filter(f);
        }
        None => {
            if let Some(c) = super::typed_char(key) {
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
    super::load_visible(model)
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
    let mut cmds = super::load_visible(model);
    cmds.extend(super::resolve_cmd(model));
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

pub fn draw(view: &LintView, frame: &mut Frame, area: Rect, t: Theme) {
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
        head.push(Line::from(Span::styled(
            "⚠ settings changed since these findings were read: ctrl-r reads them again",
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
        let shown: usize = view.counts.values().map(|c| c.0).sum();
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
    // The selected finding in full (or the group's summary), under the list.
    let mut lines = vec![Line::from(Span::styled("─".repeat(inner.width as usize), t.dim()))];
    match (view.rows.get(view.selected), view.current()) {
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
        (Some(Row::Group(key)), None) => {
            let (shown, all) = view.counts.get(key).copied().unwrap_or_default();
            let open = if view.open(key, shown) { "close" } else { "open" };
            lines.push(Line::from(vec![
                Span::styled(format!("{} ", key.2), t.accent()),
                Span::raw(format!(
                    "{}: {} {} about {} · enter: {open} · /: filter",
                    lint::rule_title(key.2),
                    thousands(all as u64),
                    plural(key.0, all),
                    key.1.label()
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
    let width = inner.width as usize;
    // Only the rows on screen are built: there can be thousands of L009.
    let mut out = Vec::with_capacity(rows);
    for (i, row) in view.rows.iter().enumerate().skip(scroll).take(rows) {
        let mut line = match row {
            Row::Group(key) => {
                let (shown, all) = view.counts.get(key).copied().unwrap_or_default();
                let style = match key.0 {
                    Severity::Error => t.bad(),
                    Severity::Warning => t.warn(),
                    Severity::Info => t.dim(),
                };
                let count =
                    if shown == all { thousands(all as u64) } else { format!("{shown} of {}", thousands(all as u64)) };
                let head = format!(
                    "{} {:<7} {} {:<15} {count:>6}  ",
                    view.mark(key, shown),
                    word(key.0),
                    key.2,
                    key.1.label()
                );
                let room = width.saturating_sub(head.chars().count());
                Line::from(vec![
                    Span::styled(head, style.add_modifier(Modifier::BOLD)),
                    Span::styled(visible_short(lint::rule_title(key.2), room), t.dim()),
                ])
            }
            Row::Finding(at) => {
                let f = &view.findings[*at as usize];
                let fix = if f.fix.is_some() { "[f] " } else { "    " };
                Line::from(vec![
                    Span::raw("  "),
                    Span::styled(fix, t.accent()),
                    Span::raw(visible_short(&f.message, width.saturating_sub(6).max(8))),
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
