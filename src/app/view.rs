//! Drawing the model: pure functions from `&Model` to a ratatui frame. Every
//! string that came from the database passes through `text::visible` before
//! it becomes a span. Only the visible rows of the accounts pane are built.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use serde_json::Value;

use super::keymap::{Action, Screen};
use super::{Connection, Model, Overlay, Pane};
use crate::domain::permissions::Action as Perm;
use crate::domain::registry::{self, FieldKind, Issue, Kind};
use crate::domain::resolve::{Hop, Outcome, Rules, Verdict, resolve_type};
use crate::domain::secret::{Secret, is_secret_field};
use crate::domain::text::{accounts_named, count, visible, visible_short};
use crate::domain::{Account, Policy, Setting};

/// Styles, with or without colour (`NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub(crate) fn heading(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    fn fg(self, c: Color) -> Style {
        if self.color { Style::new().fg(c) } else { Style::new() }
    }
    pub(crate) fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    pub(crate) fn bad(self) -> Style {
        if self.color { Style::new().fg(Color::Red) } else { Style::new().add_modifier(Modifier::BOLD) }
    }
    pub(crate) fn warn(self) -> Style {
        if self.color { Style::new().fg(Color::Yellow) } else { Style::new().add_modifier(Modifier::BOLD) }
    }
    pub(crate) fn dim(self) -> Style {
        if self.color { Style::new().fg(Color::DarkGray) } else { Style::new().add_modifier(Modifier::DIM) }
    }
    pub(crate) fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub(crate) fn selected(self, focused: bool) -> Style {
        if focused {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        }
    }
    fn border(self, focused: bool) -> Style {
        if focused { self.fg(Color::Cyan) } else { self.dim() }
    }
}

fn theme(model: &Model) -> Theme {
    Theme { color: !model.session.no_color }
}

/// The body below the header and above the footer.
fn body(size: (u16, u16)) -> Rect {
    Rect::new(0, 1, size.0, size.1.saturating_sub(2))
}

/// (accounts, setting, resolve) areas for a terminal size. Narrow
/// terminals stack the setting over the resolve panel; the permissions view,
/// which is longer, then takes the whole right column.
fn panes(size: (u16, u16), permissions: bool) -> (Rect, Rect, Rect) {
    let area = body(size);
    if size.0 >= 120 {
        let [a, s, r] =
            Layout::horizontal([Constraint::Length(32), Constraint::Min(40), Constraint::Length(46)]).areas(area);
        (a, s, r)
    } else {
        let [a, right] = Layout::horizontal([Constraint::Length(28), Constraint::Min(20)]).areas(area);
        if permissions {
            return (a, Rect { height: 0, ..right }, right);
        }
        let [s, r] = Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
        (a, s, r)
    }
}

/// How many account rows fit: the pane minus borders and the filter line.
pub fn accounts_height(size: (u16, u16)) -> usize {
    panes(size, false).0.height.saturating_sub(3) as usize
}

pub fn draw(model: &Model, frame: &mut Frame) {
    let area = frame.area();
    let t = theme(model);
    if area.width < 40 || area.height < 10 {
        frame.render_widget(Paragraph::new("keyfall needs at least 40×10; enlarge the terminal"), area);
        return;
    }
    let size = (area.width, area.height);
    header(model, frame, Rect::new(0, 0, area.width, 1), t);
    let (a, s, r) = panes(size, model.resolve.show_permissions);
    accounts(model, frame, a, t);
    if s.height > 0 {
        setting(model, frame, s, t);
    }
    resolve_panel(model, frame, r, t);
    footer(model, frame, Rect::new(0, area.height - 1, area.width, 1), t);
    match &model.overlay {
        Some(Overlay::Picker(_)) => super::picker::draw(model, frame, area, t),
        Some(Overlay::Edit(ed)) => super::editor::view::draw(ed, frame, area, t),
        Some(Overlay::ConfirmReveal(dialog)) => super::reveal::draw(dialog, frame, area, t),
        Some(Overlay::Audit(view)) => super::audit::draw(view, frame, area, t),
        Some(Overlay::Admin(view)) => super::admin::draw(model, view, frame, area, t),
        Some(Overlay::Lint(view)) => super::lint_view::draw(view, frame, area, t),
        Some(Overlay::ConfirmDelete(dialog)) => super::delete::draw(dialog, frame, area, t),
        None => {}
    }
    if let Some(view) = &model.help {
        super::help::draw(model, view, frame, t);
    }
}

fn header(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    frame.render_widget(Paragraph::new(Line::from(header_line(model, t, area.width as usize))), area);
}

/// The header, from the most to the least verbose: the first that fits.
/// Which database and who you are survive every width down to 80 (and the
/// profile's label, and that the session is read-only); words, the role,
/// the read-only reason (one key away: `p`) go first.
pub fn header_line(model: &Model, t: Theme, width: usize) -> Vec<Span<'static>> {
    let fits = |spans: &Vec<Span>| spans.iter().map(|s| s.width()).sum::<usize>() <= width;
    let mut last = Vec::new();
    for terseness in 0..=6 {
        last = header_spans(model, t, terseness);
        if fits(&last) {
            return last;
        }
    }
    last
}

/// The header at `terseness` 0 (everything) to 6 (database and operator
/// cut short, no role, "read-only" without its reason).
fn header_spans(model: &Model, t: Theme, terseness: u8) -> Vec<Span<'static>> {
    let s = &model.session;
    let mut spans = vec![Span::styled(" keyfall ", t.accent())];
    if let Some(label) = &s.label {
        let color = s.color.as_deref().and_then(parse_color).unwrap_or(Color::Red);
        let style = if t.color {
            Style::new().bg(color).fg(Color::White).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        };
        spans.push(Span::styled(format!(" {} ", visible_short(label, 20)), style));
        spans.push(Span::raw(" "));
    }
    let (db_width, op_width) = if terseness >= 6 { (24, 24) } else { (40, 40) };
    spans.push(Span::styled(visible_short(&s.database, db_width), Style::new().add_modifier(Modifier::BOLD)));
    spans.push(Span::raw(" · "));
    match &s.access.operator {
        Some(op) => {
            let su = match (op.is_superuser, terseness) {
                (false, _) => "",
                (true, 0 | 1) => ", superuser",
                (true, _) => ", su",
            };
            let who = if terseness <= 1 { "as " } else { "" };
            let role = if terseness >= 5 { String::new() } else { format!(" ({}{su})", op.role.as_str()) };
            spans
                .push(Span::raw(format!("{who}{}{role} · ", crate::domain::text::identity_short(&op.email, op_width))));
        }
        None => spans.push(Span::styled("no operator · ", t.warn())),
    }
    let policy = if terseness <= 1 {
        format!("policy {} · ", model.policy.letter())
    } else {
        format!("{} · ", model.policy.letter())
    };
    spans.push(Span::raw(policy));
    let (dot, word, style) = match model.connection {
        Connection::Up => ("●", " connected", t.ok()),
        Connection::Connecting => ("○", " connecting", t.dim()),
        Connection::Lost => ("✗", " connection lost", t.bad()),
    };
    let state =
        if terseness == 0 || model.connection == Connection::Lost { format!("{dot}{word}") } else { dot.into() };
    spans.push(Span::styled(state, style));
    if let Some(why) = &s.access.read_only {
        // The operator is named already: "… fails for them" need not say who.
        let short = s
            .access
            .operator
            .as_ref()
            .and_then(|op| why.strip_suffix(&format!(" for {}", crate::domain::text::visible_short(&op.email, 60))))
            .unwrap_or(why);
        let text = match terseness {
            0..=2 => format!("read-only: {}", visible_short(why, 120)),
            3 => format!("read-only: {}", visible_short(short, 120)),
            _ => "read-only".to_string(),
        };
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(text, t.warn()));
    }
    spans
}

/// The keys that work on the screen shown, the most useful first, as many
/// as fit: (key, word). On the main screen `help` leads and `quit` ends,
/// whatever the width.
pub fn hints(model: &Model, width: usize) -> Vec<(String, String)> {
    let screen = model.screen();
    let keymap = &model.keymap;
    let mut all: Vec<(Action, String, String)> = Vec::new();
    for &action in screen.actions() {
        let (word, _) = action.text(screen);
        if word.is_empty() && !(screen == Screen::Main && action == Action::Cancel) || action.is_navigation() {
            continue;
        }
        if !available(model, screen, action) {
            continue;
        }
        let Some(key) = keymap.first_key(screen, action) else { continue };
        let (key, word) = match (screen, action) {
            (Screen::Main, Action::Tab1) => {
                let last = if model.tabs().len() > 3 { Action::Tab4 } else { Action::Tab3 };
                match keymap.first_key(screen, last) {
                    Some(l) => (format!("{key}-{l}"), word.to_string()),
                    None => (key.to_string(), word.to_string()),
                }
            }
            (Screen::Main, Action::Permissions) if model.resolve.show_permissions => (key.to_string(), "trace".into()),
            (Screen::Main, Action::Cancel) => (key.to_string(), "clear filter".into()),
            _ => (key.to_string(), word.to_string()),
        };
        all.push((action, key, word));
    }
    // Quit and help stay whatever the width; the rest in order while they fit.
    let kept = |a: Action| matches!(a, Action::Quit | Action::Help);
    let cost = |k: &str, w: &str| k.chars().count() + w.chars().count() + 3;
    let mut room = width.saturating_sub(1);
    for (a, k, w) in &all {
        if kept(*a) {
            room = room.saturating_sub(cost(k, w));
        }
    }
    let mut out = Vec::new();
    for (a, k, w) in all {
        if !kept(a) {
            let c = cost(&k, &w);
            if c > room {
                room = 0;
                continue;
            }
            room -= c;
        }
        out.push((k, w));
    }
    out
}

/// Whether an action can do something here and now (the footer offers
/// only those; help lists every key).
fn available(model: &Model, screen: Screen, action: Action) -> bool {
    if screen != Screen::Main {
        return match (screen, action) {
            (Screen::Editor, Action::RemoveField) => match &model.overlay {
                Some(Overlay::Edit(ed)) => ed.fields.get(ed.focus).is_some_and(|f| f.stored() || !f.text().is_empty()),
                _ => false,
            },
            (Screen::Lint, Action::Fix) => match &model.overlay {
                Some(Overlay::Lint(v)) => v.findings.get(v.selected).is_some_and(|f| f.fix.is_some()),
                _ => false,
            },
            (Screen::Audit, Action::Revert) => match &model.overlay {
                Some(Overlay::Audit(v)) => v.entries.get(v.selected).is_some_and(|e| e.action != "reveal"),
                _ => false,
            },
            _ => true,
        };
    }
    let account = model.selected_account();
    let ty = model.current_type();
    let own = account.and_then(|a| model.world.settings.get(&(a.id, ty.clone())));
    let writable = || account.is_some_and(|a| super::may_modify(model, a).is_ok()) && registry::spec(&ty).is_some();
    match action {
        Action::Edit => writable(),
        Action::Delete => own.is_some() && writable(),
        Action::Reveal => {
            own.and_then(|s| s.config.get("apiKey")).and_then(Value::as_str).is_some_and(|k| !k.is_empty())
                && writable()
        }
        Action::ChainPolicy => {
            model.session.access.read_only.is_none()
                && model
                    .session
                    .access
                    .operator
                    .as_ref()
                    .is_some_and(|o| o.is_active && (o.is_superuser || o.role == crate::domain::model::Role::Developer))
        }
        Action::TestConnection => model.session.access.operator.is_some(),
        Action::Audit => account.is_some_and(|a| super::may_view(model, &a.slug).is_ok()),
        Action::Lint => model.world.chain.first().is_none_or(|e| super::may_view(model, &e.slug).is_ok()),
        Action::Cancel => !model.accounts.filter.is_empty(),
        Action::Tab4 => model.tabs().len() > 3,
        _ => true,
    }
}

fn footer(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let width = area.width as usize;
    let line = match &model.notice {
        Some(n) => {
            // The notice, and still the way to help and out.
            let tail: Vec<(String, String)> =
                hints(model, width).into_iter().filter(|(_, w)| w == "help" || w == "quit").collect();
            let tail_width: usize = tail.iter().map(|(k, w)| k.chars().count() + w.chars().count() + 3).sum();
            let room = width.saturating_sub(tail_width + 2).max(10);
            let mut spans = vec![Span::styled(format!(" {:<room$}", visible_short(n, room)), t.warn())];
            for (key, what) in tail {
                spans.push(Span::raw(" "));
                spans.push(Span::styled(key, t.accent()));
                spans.push(Span::raw(format!(" {what} ")));
            }
            Line::from(spans)
        }
        None => {
            let mut spans = vec![Span::raw(" ")];
            for (key, what) in hints(model, width) {
                spans.push(Span::styled(key, t.accent()));
                spans.push(Span::raw(format!(" {what}  ")));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

pub(crate) fn pane_block(title: String, focused: bool, t: Theme) -> Block<'static> {
    Block::bordered()
        .title(Line::from(Span::styled(title, t.border(focused).add_modifier(Modifier::BOLD))))
        .border_style(t.border(focused))
}

/// `①`…`⑳` for chain positions.
pub(crate) fn circled(position: i32) -> String {
    match position {
        1..=20 => char::from_u32(0x2460 + position as u32 - 1).map(String::from).unwrap_or_default(),
        _ => format!("#{position}"),
    }
}

/// One symbol per registry type: how an account stands for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Its own setting answers.
    Own,
    /// It has a setting, but it is skipped and something else answers.
    OwnSkipped,
    /// No own setting; inherits from the chain.
    Inherits,
    /// Nothing answers (including a second hop that finds nothing).
    Nothing,
    /// Not loaded yet.
    Unknown,
}

impl Marker {
    fn symbol(self) -> &'static str {
        match self {
            Marker::Own => "●",
            Marker::OwnSkipped => "!",
            Marker::Inherits => "○",
            Marker::Nothing => "✗",
            Marker::Unknown => "·",
        }
    }

    fn style(self, t: Theme) -> Style {
        match self {
            Marker::Own => t.ok(),
            Marker::OwnSkipped => t.warn(),
            Marker::Inherits => Style::new(),
            Marker::Nothing => t.bad(),
            Marker::Unknown => t.dim(),
        }
    }
}

pub fn marker(model: &Model, account: &Account, integration_type: &str) -> Marker {
    if !model.is_loaded(account.id) {
        return Marker::Unknown;
    }
    let hop = resolve_type(&model.world, Some(account), integration_type);
    let has_own = model.world.settings.contains_key(&(account.id, integration_type.to_string()));
    match (hop.is_resolved(), hop.answered_by.as_deref() == Some(account.slug.as_str()), has_own) {
        (false, _, _) => Marker::Nothing,
        (true, true, _) => Marker::Own,
        (true, false, true) => Marker::OwnSkipped,
        (true, false, false) => Marker::Inherits,
    }
}

fn accounts(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let focused = model.focus == Pane::Accounts;
    let pane = &model.accounts;
    let title = if pane.filter.is_empty() {
        format!(" Accounts {} ", pane.total())
    } else if pane.matching() {
        format!(" Accounts …/{} ", pane.total())
    } else {
        format!(" Accounts {}/{} ", pane.len(), pane.total())
    };
    let block = pane_block(title, focused, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let filter_line = if pane.filtering {
        Line::from(vec![Span::styled("/", t.accent()), Span::raw(visible(&pane.filter).into_owned()), Span::raw("▏")])
    } else if !pane.filter.is_empty() {
        Line::from(vec![Span::styled("/", t.accent()), Span::raw(visible(&pane.filter).into_owned())])
    } else {
        let types: Vec<&str> = registry::TYPES.iter().map(|s| &s.label[..1]).collect();
        Line::from(Span::styled(format!("{:>w$}", types.join(" "), w = inner.width as usize - 1), t.dim()))
    };
    frame.render_widget(Paragraph::new(filter_line), Rect { height: 1, ..inner });
    let rows = inner.height.saturating_sub(1) as usize;
    let offset = pane.scroll_for(rows);
    let width = inner.width as usize;
    let mut lines = Vec::with_capacity(rows);
    for (i, entry) in pane.window(offset, rows).enumerate() {
        let index = offset + i;
        let chain = entry.chain.map(circled).unwrap_or_else(|| " ".into());
        let slug_width = width.saturating_sub(2 + 6);
        // A status that denies the account's users is said, after the slug.
        let status = (!entry.account.status.grants_access()).then(|| entry.account.status.as_str());
        let status_width = status.map(|s| s.chars().count() + 1).unwrap_or(0);
        let slug = visible_short(&entry.account.slug, slug_width.saturating_sub(status_width).max(4));
        let mut style = Style::new();
        if !entry.account.status.grants_access() {
            style = t.dim();
        }
        let pad = slug_width.saturating_sub(slug.chars().count() + status_width);
        let mut spans = vec![Span::raw(format!("{chain} ")), Span::styled(slug, style)];
        if let Some(word) = status {
            spans.push(Span::styled(format!(" {word}"), t.warn()));
        }
        spans.push(Span::raw(" ".repeat(pad)));
        for spec in &registry::TYPES {
            let m = marker(model, &entry.account, spec.name);
            spans.push(Span::raw(" "));
            spans.push(Span::styled(m.symbol(), m.style(t)));
        }
        let mut line = Line::from(spans);
        if index == pane.selected_index() {
            line = line.style(t.selected(focused));
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines
            .push(Line::from(Span::styled(if pane.total() == 0 { "loading…" } else { "no account matches" }, t.dim())));
    }
    frame.render_widget(Paragraph::new(lines), Rect { y: inner.y + 1, height: inner.height - 1, ..inner });
}

pub fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s if s < 86_400 * 30 => format!("{}d ago", s / 86_400),
        _ => then.format("%Y-%m-%d").to_string(),
    }
}

fn setting(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let focused = model.focus == Pane::Setting;
    let tabs = model.tabs();
    let current = model.current_type();
    let mut title = vec![Span::raw(" ")];
    for (i, ty) in tabs.iter().enumerate() {
        let label = registry::spec(ty).map(|s| s.label.to_string()).unwrap_or_else(|| visible_short(ty, 20));
        let text = format!("{} {label}", i + 1);
        let style = if *ty == current { t.selected(true) } else { t.dim() };
        title.push(Span::styled(text, style));
        title.push(Span::raw(" │ "));
    }
    title.pop();
    title.push(Span::raw(" "));
    let block = Block::bordered().title(Line::from(title)).border_style(t.border(focused));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let text = Paragraph::new(setting_text(model, t)).wrap(Wrap { trim: false });
    let scroll = model.setting_scroll.min((text.line_count(inner.width) as u16).saturating_sub(inner.height));
    frame.render_widget(text.scroll((scroll, 0)), inner);
}

/// The setting pane's inside at the current size.
fn setting_inner(model: &Model) -> Rect {
    let (_, s, _) = panes(model.size, model.resolve.show_permissions);
    Block::bordered().inner(s)
}

/// Rows the setting pane shows.
pub fn setting_rows(model: &Model) -> u16 {
    setting_inner(model).height
}

/// Lines the setting pane has, wrapped to its width.
pub fn setting_lines_count(model: &Model) -> u16 {
    let width = setting_inner(model).width;
    Paragraph::new(setting_text(model, Theme { color: false })).wrap(Wrap { trim: false }).line_count(width) as u16
}

fn setting_text(model: &Model, t: Theme) -> Vec<Line<'static>> {
    let current = model.current_type();
    let Some(account) = model.selected_account() else {
        return vec![Line::from(Span::styled("no account selected", t.dim()))];
    };
    if model.is_loaded(account.id) {
        // Only what the policy lets the operator view: the answering
        // account's settings are theirs to see, or not at all.
        let hop = resolve_type(&model.world, Some(account), &current);
        let shown_from = hop.answered_by.clone().unwrap_or_else(|| account.slug.clone());
        for slug in [account.slug.as_str(), shown_from.as_str()] {
            if let Err(why) = super::may_view(model, slug) {
                return vec![
                    Line::from(Span::styled(
                        format!("{} · {} account", visible_short(&account.name, 40), account.status.as_str()),
                        t.dim(),
                    )),
                    Line::from(Span::styled(
                        format!(
                            "not shown: under policy {} you may not view {}'s settings ({why} fails; p shows why)",
                            model.policy.letter(),
                            visible_short(slug, 40)
                        ),
                        t.warn(),
                    )),
                ];
            }
        }
        let mut lines = setting_lines(model, account, &current, t);
        if let Some(test) = model
            .last_test
            .as_ref()
            .filter(|x| !x.from_resolve && x.account_id == account.id && x.integration_type == current)
        {
            let at = if account.status.grants_access() { 2 } else { 3 };
            lines.insert(at.min(lines.len()), test_line(model, test, t));
        }
        if registry::spec(&current).is_some() {
            lines.push(Line::raw(""));
            lines.push(match super::may_modify(model, account) {
                Ok(_) => Line::from(Span::styled(
                    format!(
                        "{} edit{} · {} delete",
                        model.keymap.first_key(Screen::Main, Action::Edit).unwrap_or("?"),
                        if model.world.settings.contains_key(&(account.id, current.clone())) {
                            ""
                        } else {
                            " (create an override)"
                        },
                        model.keymap.first_key(Screen::Main, Action::Delete).unwrap_or("?")
                    ),
                    t.dim(),
                )),
                Err(why) => {
                    Line::from(Span::styled(format!("read-only for you: {}", visible_short(&why, 200)), t.warn()))
                }
            });
        }
        lines
    } else {
        vec![Line::from(Span::styled("loading…", t.dim()))]
    }
}

fn setting_lines(model: &Model, account: &Account, ty: &str, t: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let slug = visible(&account.slug).into_owned();
    // The account itself: its name, and a status that denies its users.
    let name = format!("{} · {} account", visible_short(&account.name, 40), account.status.as_str());
    lines.push(Line::from(Span::styled(name, t.dim())));
    if !account.status.grants_access() {
        lines.push(Line::from(Span::styled(
            format!("⚠ {slug} is {}: its users are denied (HasTenantAccess)", account.status.as_str()),
            t.warn(),
        )));
    }
    let own = model.world.settings.get(&(account.id, ty.to_string()));
    let hop = resolve_type(&model.world, Some(account), ty);
    match own {
        Some(s) => {
            lines.push(setting_head(model, &slug, "own", s, t));
            if let Some(r) = &model.revealed
                && r.account_id == account.id
                && r.integration_type == ty
            {
                let left = (r.until - model.now).num_seconds().max(0);
                lines.push(Line::from(vec![
                    Span::styled("apiKey (revealed) ", t.warn()),
                    Span::raw(visible(r.secret.expose()).into_owned()),
                ]));
                lines.push(Line::from(Span::styled(
                    format!("recorded in the audit log; hidden again on any key or in {left} s"),
                    t.dim(),
                )));
            }
            lines.extend(verdict_lines(model, &hop, ty, s, t));
            let consumer = registry::spec(ty).is_some_and(|spec| spec.kind == Kind::Consumer);
            if let (true, Some(key)) = (consumer, s.config.get("apiKey")) {
                lines.push(consumer_key_line(ty, s, key, t));
            }
            lines.extend(config_lines(ty, s, t));
        }
        None => {
            let source = hop.answered_by.as_ref().and_then(|slug| {
                model.world.chain.iter().find(|e| &e.slug == slug).map(|e| (slug.clone(), e.position))
            });
            match source {
                Some((from, position)) => {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{slug} · "), Style::new().add_modifier(Modifier::BOLD)),
                        Span::styled(format!("inherited from {} (chain {position})", visible(&from)), t.accent()),
                    ]));
                    let inherited = model
                        .world
                        .chain
                        .iter()
                        .find(|e| e.slug == from)
                        .and_then(|e| e.account.as_ref())
                        .and_then(|a| model.world.settings.get(&(a.id, ty.to_string())));
                    if let Some(s) = inherited {
                        lines.push(setting_head(model, &visible(&from), "source", s, t));
                        if let Some(step) = hop.steps.iter().find(|x| x.verdict == Verdict::Answered) {
                            lines.extend(findings_lines(&step.findings, t));
                        }
                        lines.extend(config_lines(ty, s, t));
                    }
                    if let Some(second) = &hop.hop {
                        lines.push(hop_summary(second, t));
                    }
                }
                None => {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{slug} · no own setting · "), Style::new().add_modifier(Modifier::BOLD)),
                        Span::styled("resolves to nothing", t.bad()),
                    ]));
                    let last = hop.steps.len().saturating_sub(1);
                    for (i, step) in hop.steps.iter().enumerate() {
                        let (fails, style) =
                            if i == last && hop.error.is_some() { ("FAILS ", t.bad()) } else { ("", t.dim()) };
                        lines.push(Line::from(Span::styled(
                            format!(
                                "  {} {fails}{} — {}",
                                visible_short(&step.account, 24),
                                step.verdict.as_str(),
                                step.detail
                            ),
                            style,
                        )));
                    }
                    if let Some(error) = &hop.error {
                        lines.push(Line::from(Span::styled(format!("  ✗ {}", visible(error)), t.bad())));
                    }
                }
            }
        }
    }
    lines
}

fn setting_head(model: &Model, slug: &str, what: &str, s: &Setting, t: Theme) -> Line<'static> {
    let active = if s.is_active { Span::styled("active", t.ok()) } else { Span::styled("inactive", t.bad()) };
    Line::from(vec![
        Span::styled(format!("{slug} · {what} · "), Style::new().add_modifier(Modifier::BOLD)),
        active,
        Span::raw(format!(
            " · v{} · {} by {}",
            s.version,
            ago(model.now, s.updated_at),
            visible_short(s.updated_by.as_deref().unwrap_or("?"), 24)
        )),
    ])
}

/// How the account's own row stands: its verdict under the rules in force,
/// and every problem keyfall sees in it.
fn verdict_lines(model: &Model, hop: &Hop, ty: &str, s: &Setting, t: Theme) -> Vec<Line<'static>> {
    let judged = registry::judge(ty, &s.config, s.is_active);
    let mut out = Vec::new();
    match model.world.rules.outcome(judged.verdict) {
        Outcome::Answers => {
            let findings: Vec<String> =
                judged.issues.iter().map(Issue::finding).chain(judged.notes.iter().cloned()).collect();
            if findings.is_empty() {
                out.push(Line::from(Span::styled("✓ answers for this account", t.ok())));
            } else {
                out.extend(findings_lines(&findings, t));
            }
        }
        Outcome::MovesOn => {
            let then = match (&hop.answered_by, &hop.error) {
                (Some(by), _) => format!("; {} answers instead", visible(by)),
                (None, Some(_)) => {
                    let at = hop.steps.last().map(|x| visible(&x.account).into_owned()).unwrap_or_default();
                    format!("; the app raises at {at}")
                }
                (None, None) => "; nothing answers".into(),
            };
            out.push(Line::from(Span::styled(
                format!("⚠ skipped: {} — {}{then}", judged.verdict.as_str(), judged.reason()),
                t.warn(),
            )));
            // What the reason does not say already: later issues, notes.
            let said = |i: usize, issue: &Issue| {
                if judged.verdict == Verdict::BadFields { issue.verdict == Verdict::BadFields } else { i == 0 }
            };
            let more = judged.issues.iter().enumerate().filter(|(i, x)| !said(*i, x)).map(|(_, x)| x.message.clone());
            for text in more.chain(judged.notes.iter().cloned()) {
                out.push(Line::from(Span::styled(format!("  ⚠ {}", visible(&text)), t.warn())));
            }
        }
        Outcome::Fails => {
            out.push(Line::from(Span::styled(
                format!("✗ fails: {} — {}; nothing answers", judged.verdict.as_str(), judged.reason()),
                t.bad(),
            )));
            if let Some(error) = &hop.error {
                out.push(Line::from(Span::styled(format!("  ✗ {}", visible(error)), t.bad())));
            }
        }
    }
    if let Some(second) = &hop.hop {
        out.push(hop_summary(second, t));
    }
    out
}

/// An answering row's findings: a count, then one line each.
fn findings_lines(findings: &[String], t: Theme) -> Vec<Line<'static>> {
    if findings.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Line::from(Span::styled(format!("⚠ answers, with {}", problems(findings.len())), t.warn()))];
    for f in findings {
        out.push(Line::from(Span::styled(format!("  ⚠ {}", visible(f)), t.warn())));
    }
    out
}

/// A consumer's own `apiKey` field, as lint L001 sees it: a real key is an
/// error; an empty one is a leftover the app never reads, an error only
/// when the row names no provider either.
fn consumer_key_line(ty: &str, s: &Setting, key: &Value, t: Theme) -> Line<'static> {
    let real = match key {
        Value::String(k) => !registry::is_blank(k),
        other => registry::is_truthy(other),
    };
    let provider = s.config.get("provider").is_some_and(registry::is_truthy);
    if real {
        Line::from(Span::styled(
            format!("⚠ L001 {} carries its own apiKey; it should name a provider", visible(ty)),
            t.warn(),
        ))
    } else if !provider && s.is_active {
        Line::from(Span::styled("⚠ L001 no provider, only an empty apiKey: name a provider", t.warn()))
    } else {
        Line::from(Span::styled("L001 an empty apiKey field, a harmless leftover", t.dim()))
    }
}

fn hop_summary(second: &Hop, t: Theme) -> Line<'static> {
    match (&second.answered_by, &second.error) {
        (Some(by), _) => Line::from(Span::styled(
            format!("└ {} key from {}", visible(&second.integration_type), visible(by)),
            t.dim(),
        )),
        (None, Some(_)) => Line::from(Span::styled(
            format!("└ {}: the app raises on the second hop", visible(&second.integration_type)),
            t.bad(),
        )),
        (None, None) => Line::from(Span::styled(
            format!("└ {}: nothing answers the second hop", visible(&second.integration_type)),
            t.bad(),
        )),
    }
}

fn config_lines(ty: &str, s: &Setting, t: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(map) = s.config.as_object() else {
        out.push(Line::from(Span::styled(
            format!("config is {}, not an object:", registry::json_kind(&s.config)),
            t.bad(),
        )));
        out.push(Line::from(visible_short(&crate::domain::secret::mask_config(&s.config).to_string(), 400)));
        return out;
    };
    let Some(spec) = registry::spec(ty) else {
        // A type keyfall does not know: its config as raw JSON, secrets
        // masked, every line made safe.
        out.push(Line::from(Span::styled("a type keyfall does not know; raw config:", t.dim())));
        let pretty = serde_json::to_string_pretty(&crate::domain::secret::mask_config(&s.config)).unwrap_or_default();
        out.extend(pretty.lines().take(200).map(|l| Line::from(visible_short(l, 400))));
        return out;
    };
    let width = 12;
    for field in spec.fields {
        let value = map.get(field.name);
        let shown = match (value, field.kind) {
            (None | Some(Value::Null), _) if field.required && spec.kind == Kind::Consumer => {
                Span::styled("— missing (required)", t.bad())
            }
            (None | Some(Value::Null), FieldKind::Secret) => Span::styled("— missing", t.bad()),
            (None | Some(Value::Null), _) => Span::styled("—", t.dim()),
            (Some(v), FieldKind::Secret) => secret_span(v, t),
            (Some(v), _) => value_span(v),
        };
        out.push(Line::from(vec![Span::styled(format!("{:<width$} ", field.name), t.dim()), shown]));
    }
    // Fields the registry does not list are kept (the Django app may use
    // them) and shown after.
    let mut extra: Vec<&String> = map.keys().filter(|k| spec.field(k).is_none()).collect();
    extra.sort();
    for key in extra {
        let v = &map[key];
        let shown = if is_secret_field(key) { secret_span(v, t) } else { value_span(v) };
        let real_key = match v {
            Value::String(k) => !registry::is_blank(k),
            other => registry::is_truthy(other),
        };
        let note = if key == "apiKey" && spec.kind == Kind::Consumer && real_key {
            Span::styled("  ⚠ L001 a consumer has its own apiKey", t.warn())
        } else if key == "apiKey" && spec.kind == Kind::Consumer {
            Span::styled("  (a leftover the app never reads)", t.dim())
        } else {
            Span::styled("  (not in the registry)", t.dim())
        };
        out.push(Line::from(vec![
            Span::styled(format!("{:<width$} ", visible_short(key, width)), t.dim()),
            shown,
            note,
        ]));
    }
    out
}

fn secret_span(v: &Value, t: Theme) -> Span<'static> {
    match v {
        Value::String(s) if s.is_empty() => Span::styled("\"\" (empty)", t.bad()),
        Value::String(s) => Span::raw(Secret::new(s.clone()).masked()),
        other => Span::styled(Secret::new(other.to_string()).masked(), t.bad()),
    }
}

/// A non-secret field's value, masked where it is shaped like a secret;
/// nested objects and arrays are masked too, since a secret can hide at any
/// depth, by name or by shape.
fn value_span(v: &Value) -> Span<'static> {
    match crate::domain::secret::mask_config(v) {
        Value::String(s) => Span::raw(visible_short(&s, 200)),
        other => Span::raw(visible_short(&other.to_string(), 200)),
    }
}

fn resolve_panel(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let focused = model.focus == Pane::Resolve;
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
    let text = Paragraph::new(Text::from(resolve_text(model, inner.width as usize, t))).wrap(Wrap { trim: false });
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
    let text = resolve_text(model, inner.width as usize, Theme { color: false });
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
        lines.extend(permission_lines(model, t));
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
    let hidden = |slug: &str| super::may_view(model, slug).is_err();
    hop_lines(&res.hop, 0, width, t, &hidden, &mut out);
    for w in &res.warnings {
        out.push(Line::from(Span::styled(format!("⚠ {}", w.message), t.warn())));
    }
    if let Some(test) = model.last_test.as_ref().filter(|x| x.from_resolve) {
        out.push(test_line(model, test, t));
    }
    out.push(Line::raw(""));
    if res.is_resolved() {
        let mut text = format!("✓ {} answers", visible(res.hop.answered_by.as_deref().unwrap_or("?")));
        if let Some(h) = &res.hop.hop {
            text.push_str(&format!(
                ", {} from {}",
                visible(&h.integration_type),
                visible(h.answered_by.as_deref().unwrap_or("?"))
            ));
        }
        out.push(Line::from(Span::styled(text, t.ok())));
    } else if res.hop.failure().is_some() {
        // The error is drawn in full under the failing step.
        out.push(Line::from(Span::styled("✗ unresolved: the app raises (✗ above)", t.bad())));
    } else {
        let why = res.hop.unresolved_reason().unwrap_or_else(|| "nothing answers".to_string());
        out.push(Line::from(Span::styled(format!("✗ unresolved: {}", visible(&why)), t.bad())));
    }
    out
}

/// "1 problem", "2 problems".
fn problems(n: usize) -> String {
    if n == 1 { "1 problem".to_string() } else { format!("{n} problems") }
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
        out.push(Line::from(Span::styled(format!("{indent}  ✗ {}", visible(error)), t.bad())));
    }
    if let Some(next) = &hop.hop {
        out.push(Line::from(Span::styled(format!("{indent}└ {}", visible(&next.integration_type)), t.accent())));
        hop_lines(next, depth + 1, width, t, hidden, out);
    }
}

fn permission_lines(model: &Model, t: Theme) -> Vec<Line<'static>> {
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

pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2));
    let h = height.min(area.height.saturating_sub(2));
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

fn parse_color(name: &str) -> Option<Color> {
    Some(match name.to_ascii_lowercase().as_str() {
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        _ => return None,
    })
}

/// The impact preview: per function, old → new answer, then who: the
/// accounts (the first few named) and users. Functions of one type that
/// move the same accounts the same way share one "who" line.
pub(crate) fn impact_lines(
    what: &str,
    impact: &[crate::store::ImpactRow],
    width: usize,
    t: Theme,
) -> Vec<Line<'static>> {
    const INDENT: usize = 23;
    let mut lines = Vec::with_capacity(impact.len() * 2 + 1);
    if impact.is_empty() {
        lines.push(Line::from(Span::styled(format!("{what}: nobody resolves differently"), t.dim())));
    } else {
        lines.push(Line::from(Span::styled(
            format!("{what}: who resolves differently, or gets the new value"),
            Style::new().add_modifier(Modifier::BOLD),
        )));
    }
    let same_group = |a: &crate::store::ImpactRow, b: &crate::store::ImpactRow| {
        (&a.integration_type, &a.before, &a.after, a.value_changed, a.accounts, a.users, &a.examples)
            == (&b.integration_type, &b.before, &b.after, b.value_changed, b.accounts, b.users, &b.examples)
    };
    // One meaning per arrow: "→" is always "before → after".
    let mut rest = impact;
    while let Some(first) = rest.first() {
        let run = rest.iter().take_while(|r| same_group(first, r)).count();
        let (group, tail) = rest.split_at(run);
        rest = tail;
        let same = first.before.answered_by == first.after.answered_by
            && first.before.provider == first.after.provider
            && first.before.provider_answered_by == first.after.provider_answered_by;
        let keeps = first.value_changed && same;
        let mut who =
            format!("{}, {}", accounts_named(first.accounts, &first.examples, 20), count(first.users, "user"));
        if keeps {
            who.push_str(" now use it");
        }
        let mut last = Vec::new();
        for (k, r) in group.iter().enumerate() {
            last = if keeps {
                vec![
                    Span::raw(format!("{:<22} still {}, ", visible_short(&r.function, 22), answer(&r.after))),
                    Span::styled("new value", t.accent()),
                ]
            } else {
                let new = if r.after.new_value { " (new value)" } else { "" };
                vec![
                    Span::raw(format!("{:<22} {} → ", visible_short(&r.function, 22), answer(&r.before))),
                    Span::styled(format!("{}{new}", answer(&r.after)), t.accent()),
                ]
            };
            if k + 1 < group.len() {
                lines.push(Line::from(std::mem::take(&mut last)));
            }
        }
        // Who, on the answer's line where there is one answer and room,
        // else under the answers, indented, wrapped at words and keeping
        // the indent.
        let used: usize = last.iter().map(|s| s.width()).sum();
        if group.len() == 1 && used + 2 + who.chars().count() <= width {
            last.push(Span::styled(format!("  {who}"), t.dim()));
            lines.push(Line::from(last));
        } else {
            lines.push(Line::from(last));
            for part in wrap_words(&who, width.saturating_sub(INDENT).max(20)) {
                lines.push(Line::from(vec![Span::raw(" ".repeat(INDENT)), Span::styled(part, t.dim())]));
            }
        }
    }
    lines
}

/// `text` cut at spaces into lines of at most `room` characters (a word
/// longer than that gets a line of its own).
fn wrap_words(text: &str, room: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let needed =
            if line.is_empty() { word.chars().count() } else { line.chars().count() + 1 + word.chars().count() };
        if !line.is_empty() && needed > room {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// Who answers, the provider hop in words (not another arrow).
fn answer(a: &crate::store::Answer) -> String {
    // The report's "(own)": each account answers for itself.
    let name = |s: &str| if s == "(own)" { "their own".to_string() } else { visible_short(s, 40) };
    match (&a.answered_by, &a.provider) {
        (None, _) => "nothing".into(),
        (Some(by), None) => name(by),
        (Some(by), Some(p)) => format!(
            "{} ({} key: {})",
            name(by),
            visible_short(p, 20),
            a.provider_answered_by.as_deref().map(name).unwrap_or_else(|| "nobody".into())
        ),
    }
}

/// The last connection test, in one line.
fn test_line(model: &Model, test: &super::LastTest, t: Theme) -> Line<'static> {
    match &test.outcome {
        None => Line::from(Span::styled(
            format!("testing {}'s {} key…", visible_short(&test.key_of, 30), test.provider),
            t.dim(),
        )),
        Some(o) => Line::from(vec![
            Span::styled(if o.ok { "✓ " } else { "✗ " }, if o.ok { t.ok() } else { t.bad() }),
            Span::raw(format!(
                "{}'s {} key via {}: {} ({} ms, {})",
                visible_short(&test.key_of, 30),
                test.provider,
                visible_short(&o.host, 40),
                o.message,
                o.elapsed_ms,
                ago(model.now, test.at)
            )),
        ]),
    }
}

/// A dialog box over the screen: cleared, bordered, titled; its inside.
pub(crate) fn dialog(frame: &mut Frame, box_area: Rect, title: String, t: Theme) -> Rect {
    frame.render_widget(Clear, box_area);
    let block = pane_block(title, true, t);
    let inner = block.inner(box_area);
    frame.render_widget(block, box_area);
    inner
}
