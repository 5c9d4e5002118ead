//! The console goes back in time (issue 23 point 4). `@` opens the "as
//! of" picker: a moment typed as the CLI's `--at` takes it
//! (`domain::history::parse_moment`: an ISO time, `3 days ago`, `yesterday
//! 14:00`, `#812`), or one of the last changes of the audit log, with where
//! history begins; a moment before history or inside a gap is refused with
//! `Window::vouch`'s words. The whole screen then shows the world of that
//! moment (`Store::world_at`: every account and setting, the chain, the
//! policy, the functions; the resolve-as user through `Store::past`), under
//! a header of its own colour, read-only: every write key says why it is
//! refused, Esc returns to now. Live changes are counted, not applied.
//! From the audit view `@` shows the world just before the selected entry;
//! `b` opens the blast radius of the key the setting pane shows
//! (`Store::key_history`, by fingerprint).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::keymap::{Action, Screen};
use super::model::{Cmd, Model, Overlay};
pub use super::state::time_travel::*;
use super::widgets::{Theme, dialog, overlay_box, wrap_lines};
use super::widgets::{moved, movement, typed_char};
use crate::domain::audit::AuditEntry;
use crate::domain::blast::{self, KeyHistory, LineKind};
use crate::domain::history::World;
use crate::domain::history::{Cut, Moment, Window, parse_moment};
use crate::domain::text::{identity_short, visible, visible_short};

/// How many of the last changes the picker offers.
const RECENT: usize = 8;

impl AsOf {
    /// What every refused key says.
    pub fn refusal(&self, model: &Model) -> String {
        let esc = model.keymap.first_key(Screen::Main, Action::Cancel).unwrap_or("esc");
        format!("as of {}: read-only; {} returns to now", self.label(), key_word(esc))
    }
}

fn key_word(key: &str) -> String {
    match key {
        "esc" => "Esc".into(),
        other => other.to_string(),
    }
}

/// The as-of header mark, from the most to the least verbose; from
/// terseness 6 on it takes the place of the name "keyfall", so which
/// database and who you are still read at 80 columns.
pub(super) fn header_span(model: &Model, t: Theme, terseness: u8) -> Option<Span<'static>> {
    let as_of = model.time.as_of.as_ref()?;
    let since = match as_of.changes_since {
        0 => String::new(),
        1 => " · 1 change since".into(),
        n => format!(" · {n} changes since"),
    };
    let plus = match as_of.changes_since {
        0 => String::new(),
        n => format!(" +{n}"),
    };
    let text = match terseness {
        0..=2 => format!(" as of {} · read-only{since} ", as_of.label()),
        3..=5 => format!(" as of {}{since} ", as_of.label()),
        // "+2": two changes since (the notice said so in words).
        6 => format!(" as of {}{plus} ", as_of.label()),
        _ => {
            let entry = as_of.cut.entry.map(|n| format!(" (#{n})")).unwrap_or_default();
            format!(" as of {}{entry}{plus} ", as_of.cut.at.format("%Y-%m-%d %H:%M:%S"))
        }
    };
    Some(Span::styled(text, style(t)))
}

/// Its own style: not a context's colour (those are the basic ones).
fn style(t: Theme) -> Style {
    if t.color {
        Style::new().bg(Color::LightMagenta).fg(Color::Black).add_modifier(Modifier::BOLD)
    } else {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::ITALIC)
    }
}

/// `@` on the main screen: the picker.
pub(super) fn open_picker(model: &mut Model) -> Vec<Cmd> {
    let request = model.request();
    model.overlay = Some(Overlay::AsOf(Box::new(AsOfPicker { request, ..AsOfPicker::default() })));
    vec![Cmd::LoadHistory { request }]
}

/// Where history begins and the last changes, for the open picker.
pub(super) fn history_loaded(model: &mut Model, request: u64, window: Window, recent: Vec<AuditEntry>) -> Vec<Cmd> {
    if let Some(Overlay::AsOf(p)) = &mut model.overlay
        && p.request == request
    {
        p.window = Some(window);
        p.recent = recent
            .into_iter()
            .filter(|e| matches!(e.action.as_str(), "insert" | "update" | "delete"))
            .take(RECENT)
            .collect();
    }
    Vec::new()
}

pub(super) fn picker_key(model: &mut Model, key: &str, action: Option<Action>) -> Vec<Cmd> {
    let Some(Overlay::AsOf(p)) = &mut model.overlay else { return Vec::new() };
    match action {
        Some(Action::Accept) => return go(model),
        Some(Action::Cancel) => {
            model.overlay = None;
            model.time.pending = None;
        }
        Some(a) => {
            if let Some(delta) = movement(a, RECENT)
                && !p.recent.is_empty()
            {
                let i = match p.selected {
                    None if delta > 0 => 0,
                    None => p.recent.len() - 1,
                    Some(i) => moved(i, delta, p.recent.len()),
                };
                p.selected = Some(i);
                p.input = format!("#{}", p.recent[i].id);
                p.error = None;
            }
        }
        None if key == "backspace" => {
            p.input.pop();
            p.selected = None;
            p.error = None;
        }
        None => {
            if let Some(c) = typed_char(key) {
                p.input.push(c);
                p.selected = None;
                p.error = None;
            }
        }
    }
    Vec::new()
}

/// Text pasted into the picker.
pub(super) fn paste(p: &mut AsOfPicker, text: &str) {
    p.input.push_str(text);
    p.selected = None;
    p.error = None;
}

/// Enter in the picker: the moment read, checked against the history
/// known, then asked for.
fn go(model: &mut Model) -> Vec<Cmd> {
    let now = model.now;
    let Some(Overlay::AsOf(p)) = &mut model.overlay else { return Vec::new() };
    // Enter alone: just before the last change listed.
    let text = match (p.input.trim(), p.recent.first()) {
        ("", Some(last)) => format!("#{}", last.id),
        (typed, _) => typed.to_string(),
    };
    if text.is_empty() {
        p.error = Some("type a moment (or pick a change with ↑↓)".into());
        return Vec::new();
    }
    let moment = match parse_moment(&text, now) {
        Ok(m) => m,
        Err(why) => {
            p.error = Some(why);
            return Vec::new();
        }
    };
    if text.eq_ignore_ascii_case("now") {
        model.overlay = None;
        return if model.time.as_of.is_some() { return_to_now(model) } else { Vec::new() };
    }
    // Refused here when the history read says so; else the store decides.
    let cut = match moment {
        Moment::At(at) => Some(Cut { at, entry: None }),
        Moment::BeforeEntry(n) => p.recent.iter().find(|e| e.id == n).map(|e| Cut { at: e.at, entry: Some(n) }),
    };
    if let (Some(window), Some(cut)) = (&p.window, cut)
        && let Err(why) = window.vouch(&cut)
    {
        p.error = Some(why);
        return Vec::new();
    }
    p.error = None;
    travel(model, moment)
}

/// Ask for the world at `moment`.
pub(super) fn travel(model: &mut Model, moment: Moment) -> Vec<Cmd> {
    let request = model.request();
    model.time.pending = Some(request);
    vec![Cmd::Travel { request, moment }]
}

/// The world of the moment asked for arrived: the screen shows it.
pub(super) fn travelled(model: &mut Model, request: u64, world: World) -> Vec<Cmd> {
    if model.time.pending != Some(request) {
        return Vec::new();
    }
    model.time.pending = None;
    // Nothing asked of the present may land in the past view.
    model.requests.refresh();
    model.pending = Default::default();
    model.boot_retry = None;
    model.cache.clear();
    if matches!(model.overlay, Some(Overlay::AsOf(_) | Overlay::Audit(_))) {
        model.overlay = None;
    }
    let World { cut, window, policy, functions, snapshot } = world;
    let accounts: Vec<crate::domain::Account> = snapshot.accounts.values().cloned().collect();
    model.accounts.set_accounts(accounts, &snapshot.chain);
    model.accounts.partial = false;
    model.policy = policy;
    let mut functions: Vec<(String, String)> = functions.into_iter().collect();
    functions.sort();
    if !model.resolve.function.as_ref().is_some_and(|f| functions.iter().any(|(n, _)| n == f)) {
        model.resolve.function = functions.first().map(|(f, _)| f.clone());
    }
    model.functions = functions;
    model.world = snapshot;
    model.resolve.resolution = None;
    model.resolve.subject = None;
    let as_of = AsOf { cut, window, changes_since: 0 };
    let esc = model.keymap.first_key(Screen::Main, Action::Cancel).unwrap_or("esc");
    model.notice = Some(format!(
        "as of {}: the world as it was, judged under today's rules; read-only; {} returns to now",
        as_of.label(),
        key_word(esc)
    ));
    model.time.as_of = Some(as_of);
    super::model::resolve_cmd(model)
}

/// Back to now: everything read again.
pub(super) fn return_to_now(model: &mut Model) -> Vec<Cmd> {
    model.time.as_of = None;
    model.time.pending = None;
    model.requests.refresh();
    // The first page of now replaces the past's index at once.
    model.accounts.partial = true;
    model.resolve.resolution = None;
    model.resolve.subject = None;
    model.notice = Some("back to now".into());
    model.start()
}

/// A change heard while the past is shown (a statement that changed
/// `rows` rows): counted, not applied.
pub(super) fn heard(model: &mut Model, rows: usize) {
    let esc = key_word(model.keymap.first_key(Screen::Main, Action::Cancel).unwrap_or("esc"));
    if let Some(as_of) = &mut model.time.as_of {
        as_of.changes_since += rows;
        let n = as_of.changes_since;
        let changes = if n == 1 { "1 change".to_string() } else { format!("{n} changes") };
        model.notice =
            Some(format!("{changes} made since; this view stays as of {}; {esc} returns to now", as_of.label()));
    }
}

/// Keys the past view takes over: a write is refused with the reason,
/// Esc (nothing else to close) returns to now, reload reads the same
/// moment again. `None`: the key is the screen's.
pub(super) fn intercept(model: &mut Model, screen: Screen, action: Option<Action>) -> Option<Vec<Cmd>> {
    let as_of = model.time.as_of.as_ref()?;
    let action = action?;
    let write = match screen {
        Screen::Main => matches!(
            action,
            Action::Edit
                | Action::Delete
                | Action::Reveal
                | Action::ChainPolicy
                | Action::TestConnection
                | Action::Lint
        ),
        // Anything but reading (revert, restore…) changes the present.
        Screen::Audit => !matches!(
            action,
            Action::AsOf
                | Action::Help
                | Action::Close
                | Action::Up
                | Action::Down
                | Action::PageUp
                | Action::PageDown
                | Action::Top
                | Action::Bottom
        ),
        _ => false,
    };
    if write {
        model.notice = Some(as_of.refusal(model));
        return Some(Vec::new());
    }
    if screen != Screen::Main {
        return None;
    }
    match action {
        Action::Cancel if model.accounts.filter.is_empty() && !model.resolve.show_permissions => {
            Some(return_to_now(model))
        }
        Action::Refresh => {
            let moment = match as_of.cut.entry {
                Some(n) => Moment::BeforeEntry(n),
                None => Moment::At(as_of.cut.at),
            };
            model.notice = Some(format!("reading the world as of {} again…", as_of.label()));
            Some(travel(model, moment))
        }
        _ => None,
    }
}

/// Whether a main-screen action does something in the past view (the
/// footer offers only those).
pub(super) fn available(model: &Model, action: Action) -> Option<bool> {
    model.time.as_of.as_ref()?;
    Some(match action {
        Action::Edit
        | Action::Delete
        | Action::Reveal
        | Action::ChainPolicy
        | Action::TestConnection
        | Action::Lint => false,
        Action::Cancel => true,
        _ => return None,
    })
}

/// A request of this module failed: the picker, the trip or the blast
/// radius says so. False when it was none of theirs.
pub(super) fn failed(model: &mut Model, request: u64, error: &str) -> bool {
    let error = visible_short(error, 300);
    if model.time.pending == Some(request) {
        model.time.pending = None;
        match &mut model.overlay {
            Some(Overlay::AsOf(p)) => p.error = Some(error),
            _ => model.notice = Some(error),
        }
        return true;
    }
    match &mut model.overlay {
        Some(Overlay::AsOf(p)) if p.request == request => {
            p.window = Some(Window::default());
            p.error = Some(format!("the history could not be read: {error}"));
            true
        }
        Some(Overlay::KeyHistory(v)) if v.request == request => {
            v.error = Some(error);
            true
        }
        _ => false,
    }
}

/// `b`: the blast radius of the key the setting pane shows (the selected
/// account's own, or the one it inherits), by its fingerprint.
pub(super) fn open_key_history(model: &mut Model) -> Vec<Cmd> {
    let Some(account) = model.selected_account().cloned() else { return Vec::new() };
    let ty = model.current_type();
    let hop = crate::domain::resolve::resolve_type(&model.world, Some(&account), &ty);
    let shown = hop.answered_by.clone().unwrap_or_else(|| account.slug.clone());
    if [account.slug.as_str(), shown.as_str()].iter().any(|slug| super::access::may_view(model, slug).is_err()) {
        model.notice = Some("not yours to view under this policy".into());
        return Vec::new();
    }
    let owner = match model.world.settings.get(&(account.id, ty.clone())) {
        Some(_) => Some((account.id, account.slug.clone())),
        None => hop.answered_by.as_ref().and_then(|slug| {
            let id = model.world.chain.iter().find(|e| &e.slug == slug).and_then(|e| e.account.as_ref())?.id;
            Some((id, slug.clone()))
        }),
    };
    let key = owner.as_ref().and_then(|(id, slug)| {
        let config = &model.world.settings.get(&(*id, ty.clone()))?.config;
        let value = config.get("apiKey").and_then(serde_json::Value::as_str).filter(|k| !k.trim().is_empty())?;
        Some((key_fingerprint(value), slug.clone()))
    });
    let Some((fingerprint, slug)) = key else {
        model.notice = Some("no key here to trace".into());
        return Vec::new();
    };
    let request = model.request();
    let from = format!("{} {}", visible_short(&slug, 40), visible(&ty));
    model.overlay = Some(Overlay::KeyHistory(Box::new(KeyHistoryView {
        fingerprint: fingerprint.clone(),
        from,
        history: None,
        error: None,
        request,
        scroll: 0,
    })));
    vec![Cmd::KeyHistory { request, fingerprint }]
}

/// The fingerprint of a key as a config shows it: a key (now), a masked
/// fingerprint (the past) or a bare fingerprint.
pub fn key_fingerprint(value: &str) -> String {
    if crate::domain::secret::is_fingerprint(value.trim()) {
        return value.trim().to_string();
    }
    crate::domain::Secret::new(value.to_string()).fingerprint()
}

pub(super) fn key_history_loaded(model: &mut Model, request: u64, history: KeyHistory) -> Vec<Cmd> {
    if let Some(Overlay::KeyHistory(v)) = &mut model.overlay
        && v.request == request
    {
        v.history = Some(history);
        v.error = None;
    }
    Vec::new()
}

pub(super) fn key_history_key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let page = (model.size.1 as usize).saturating_sub(6);
    let Some(Overlay::KeyHistory(v)) = &mut model.overlay else { return Vec::new() };
    match action {
        Some(Action::Close) => model.overlay = None,
        Some(a) => {
            if let Some(delta) = movement(a, page) {
                let len = v.history.as_ref().map_or(1, |h| key_history_lines(h).len());
                v.scroll = moved(v.scroll, delta, len);
            }
        }
        None => {}
    }
    Vec::new()
}

/// The blast radius as `keyfall key-history` words it (one wording:
/// `domain::blast::timeline_lines`); (text, kind): 0 plain, 1 dim, 2 warn.
pub fn key_history_lines(h: &KeyHistory) -> Vec<(String, u8)> {
    blast::timeline_lines(&h.fingerprint, &h.history.since(), &h.stretches)
        .into_iter()
        .map(|(line, kind)| {
            let kind = match kind {
                LineKind::Plain => 0,
                LineKind::Interval => 1,
                LineKind::Warn => 2,
            };
            (line, kind)
        })
        .collect()
}

pub fn draw_key_history(v: &KeyHistoryView, frame: &mut Frame, area: Rect, t: Theme) {
    let title = format!(" Blast radius · key {} · {} ", v.fingerprint, v.from);
    let lines: Vec<Line<'static>> = match (&v.history, &v.error) {
        (_, Some(e)) => vec![Line::from(Span::styled(format!("the blast radius could not be read: {e}"), t.bad()))],
        (None, None) => vec![Line::from(Span::styled("reading the log…", t.dim()))],
        (Some(h), None) => key_history_lines(h)
            .into_iter()
            .map(|(text, kind)| {
                let style = match kind {
                    1 => t.dim(),
                    2 => t.warn(),
                    _ => Style::new(),
                };
                Line::from(Span::styled(text, style))
            })
            .collect(),
    };
    // As high as its lines (wrapped to the box's width), at most the screen.
    let width = overlay_box(area, 3).width.saturating_sub(2);
    let lines = wrap_lines(lines, width);
    let height = (lines.len() as u16).saturating_add(2).min(area.height.saturating_sub(2));
    let inner = dialog(frame, overlay_box(area, height), title, t);
    let scroll = v.scroll.min(lines.len().saturating_sub(inner.height as usize)) as u16;
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}

pub fn draw_picker(model: &Model, p: &AsOfPicker, frame: &mut Frame, area: Rect, t: Theme) {
    let height = (10 + p.recent.len() as u16).min(area.height.saturating_sub(2));
    let inner = dialog(frame, overlay_box(area, height), " As of… (the world at a moment, read-only) ".into(), t);
    let mut lines = vec![Line::from(vec![
        Span::styled("when ", t.dim()),
        Span::raw(visible(&p.input).into_owned()),
        Span::raw("▏"),
    ])];
    lines.push(Line::from(Span::styled(
        "an ISO time (2026-12-08 09:14, UTC), 3 days ago, 2h ago, yesterday 14:00, #812 (just before entry 812), now",
        t.dim(),
    )));
    lines.push(match &p.window {
        None => Line::from(Span::styled("reading where history begins…", t.dim())),
        Some(w) => Line::from(Span::styled(w.since(), t.accent())),
    });
    if let Some(e) = &p.error {
        lines.push(Line::from(Span::styled(format!("✗ {}", visible(e)), t.bad())));
    } else if model.time.pending.is_some() {
        lines.push(Line::from(Span::styled("reading the world of that moment…", t.dim())));
    } else {
        lines.push(Line::raw(""));
    }
    if !p.recent.is_empty() {
        lines.push(Line::from(Span::styled(
            "the last changes (↑↓ then enter; enter alone: just before the newest)",
            t.dim(),
        )));
        for (i, e) in p.recent.iter().enumerate() {
            let what = match (&e.account, &e.integration_type) {
                (Some(a), Some(ty)) => format!("{} {}", visible_short(a, 30), visible_short(ty, 20)),
                _ => e.table_name.replace('_', " "),
            };
            let mut line = Line::from(vec![
                Span::raw(format!("#{:<6} {} ", e.id, e.at.format("%Y-%m-%d %H:%M:%S"))),
                Span::styled(format!("{} ", identity_short(&e.actor, 24)), t.accent()),
                Span::raw(format!("{} {what}", visible_short(&e.action, 8))),
            ]);
            if p.selected == Some(i) {
                line = line.style(t.selected(true));
            }
            lines.push(line);
        }
    }
    frame.render_widget(Paragraph::new(wrap_lines(lines, inner.width)), inner);
}
