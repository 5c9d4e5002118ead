//! The picker screen: a small fuzzy picker for the resolve-as panel —
//! users (searched in the database, 1,000,000 of them, a page at a time,
//! one search in flight) and AI functions (local). Its state, its keys and
//! its view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::keymap::Action;
use super::model::{Cmd, Model, Overlay, USER_PAGE, resolve_cmd};
use super::request::Kind;
pub use super::state::picker::*;
use super::widgets::{Theme, centered, dialog};
use super::widgets::{movement, typed_char};
use crate::domain::directory::UserHit;
use crate::domain::text::{visible, visible_short};

/// `u`: pick the user to resolve as.
pub fn open_users(model: &mut Model) -> Vec<Cmd> {
    let mut picker = Picker::new(PickerKind::User, Vec::new());
    picker.searching = true;
    model.overlay = Some(Overlay::Picker(picker));
    model.user_search = UserSearch::default();
    model.requests.forget(Kind::UserSearch);
    search_users(model, String::new())
}

pub(super) fn set_query(model: &mut Model, query: String) -> Vec<Cmd> {
    let Some(Overlay::Picker(p)) = &mut model.overlay else { return Vec::new() };
    p.set_query(query.clone());
    if p.kind != PickerKind::User {
        return Vec::new();
    }
    search_users(model, query)
}

/// Find users for the picker's `query`: from what it holds when that is
/// every match of a query this one narrows; else from the database, one
/// search at a time (a query typed meanwhile waits, replacing any other).
pub(super) fn search_users(model: &mut Model, query: String) -> Vec<Cmd> {
    let Some(Overlay::Picker(p)) = &mut model.overlay else { return Vec::new() };
    if p.answers_locally(&query) {
        p.narrow_to(&query);
        model.user_search.queued = None;
        return Vec::new();
    }
    p.searching = true;
    if model.user_search.inflight.is_some() {
        model.user_search.queued = Some(query);
        return Vec::new();
    }
    let request = model.requests.start(Kind::UserSearch);
    model.user_search.inflight = Some(query.clone());
    vec![Cmd::FindUsers { request, query }]
}

pub(super) fn key(model: &mut Model, key: &str, action: Option<Action>) -> Vec<Cmd> {
    let Some(Overlay::Picker(p)) = &mut model.overlay else { return Vec::new() };
    match action {
        Some(Action::Cancel) => {
            model.overlay = None;
            Vec::new()
        }
        Some(Action::Accept) => {
            let Some(choice) = p.current().map(|i| i.value.clone()) else { return Vec::new() };
            let kind = p.kind;
            model.overlay = None;
            match kind {
                PickerKind::User => model.resolve.email = Some(choice),
                PickerKind::Function => model.resolve.function = Some(choice),
            }
            model.resolve.scroll = 0;
            // A test result belongs to the trace it was made for.
            if model.last_test.as_ref().is_some_and(|x| x.from_resolve) {
                model.last_test = None;
            }
            resolve_cmd(model)
        }
        Some(a) => {
            if let Some(delta) = movement(a, 10) {
                p.move_by(delta);
            }
            Vec::new()
        }
        None if key == "backspace" => {
            let mut q = p.query.clone();
            q.pop();
            set_query(model, q)
        }
        None => match typed_char(key) {
            Some(c) => {
                let q = format!("{}{c}", p.query);
                set_query(model, q)
            }
            None => Vec::new(),
        },
    }
}

/// A click in the list: the row under it is selected; a click on the row
/// already selected (the second of a double-click) picks it, as enter does.
pub(super) fn click(model: &mut Model, column: u16, row: u16) -> Vec<Cmd> {
    let Some(Overlay::Picker(p)) = &mut model.overlay else { return Vec::new() };
    let Some((list, offset)) = p.list_at.get() else { return Vec::new() };
    if column < list.x || column >= list.right() || row < list.y || row >= list.bottom() {
        return Vec::new();
    }
    let index = offset + (row - list.y) as usize;
    if index >= p.len() {
        return Vec::new();
    }
    if index != p.selected {
        p.selected = index;
        return Vec::new();
    }
    key(model, "", Some(Action::Accept))
}

/// `f`: pick the AI function to resolve.
pub fn open_functions(model: &mut Model) -> Vec<Cmd> {
    let items = model.functions.iter().map(|(f, t)| Item { value: f.clone(), detail: format!("→ {t}") }).collect();
    model.overlay = Some(Overlay::Picker(Picker::new(PickerKind::Function, items)));
    Vec::new()
}

/// Users found for the newest search; a query typed meanwhile goes next.
pub(super) fn found(model: &mut Model, request: u64, hits: Vec<UserHit>) -> Vec<Cmd> {
    if !model.requests.is_latest(Kind::UserSearch, request) {
        return Vec::new();
    }
    model.requests.forget(Kind::UserSearch);
    let asked = model.user_search.inflight.take();
    if let Some(Overlay::Picker(p)) = &mut model.overlay
        && p.kind == PickerKind::User
    {
        let complete = (hits.len() as i64) < USER_PAGE;
        p.set_items(hits.into_iter().map(user_item).collect());
        p.complete_for = asked.filter(|_| complete);
    }
    match model.user_search.queued.take() {
        Some(query) => search_users(model, query),
        None => Vec::new(),
    }
}

/// The search failed: nothing is in flight; the query typed meanwhile, if
/// any, is still wanted.
pub(super) fn search_failed(model: &mut Model) -> Option<String> {
    model.user_search.inflight = None;
    if let Some(Overlay::Picker(p)) = &mut model.overlay {
        p.searching = false;
    }
    model.user_search.queued.take()
}

fn user_item(hit: UserHit) -> Item {
    let account = hit.account.as_deref().unwrap_or("no account");
    let inactive = if hit.is_active { "" } else { ", inactive" };
    // A look-alike (a Cyrillic letter, a zero-width space) is flagged and
    // spelled out, so it is never picked for the real one.
    let lookalike = if crate::domain::text::is_lookalike(&hit.email) {
        format!("⚠ look-alike: {} · ", crate::domain::text::identity_short(&hit.email, 60))
    } else {
        String::new()
    };
    Item { detail: format!("{lookalike}{} · {account}{inactive}", hit.role), value: hit.email }
}

pub fn draw(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let Some(Overlay::Picker(p)) = &model.overlay else { return };
    let title = match p.kind {
        PickerKind::User => " Resolve as user (type to search) ",
        PickerKind::Function => " AI function ",
    };
    // 64 columns at 80, growing with the terminal (longer emails whole).
    let width = area.width.saturating_sub(16).clamp(64.min(area.width), 110);
    let inner = dialog(frame, centered(area, width, area.height.saturating_sub(4).min(40)), title.into(), t);
    let value_width = (inner.width as usize).saturating_sub(28).clamp(36, 60);
    let searching = if p.searching { "  searching…" } else { "" };
    let mut lines = vec![Line::from(vec![
        Span::styled("> ", t.accent()),
        Span::raw(visible(&p.query).into_owned()),
        Span::raw("▏"),
        Span::styled(searching, t.dim()),
    ])];
    let rows = inner.height.saturating_sub(1) as usize;
    let offset = p.selected.saturating_sub(rows.saturating_sub(1));
    p.list_at.set(Some((Rect { y: inner.y + 1, height: rows as u16, ..inner }, offset)));
    for (i, item) in p.shown().enumerate().skip(offset).take(rows) {
        let mut line = Line::from(vec![
            Span::raw(format!("{:<value_width$} ", visible_short(&item.value, value_width))),
            Span::styled(visible_short(&item.detail, 40), t.dim()),
        ]);
        if i == p.selected {
            line = line.style(t.selected(true));
        }
        lines.push(line);
    }
    if p.is_empty() && !p.searching {
        lines.push(Line::from(Span::styled("no match", t.dim())));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
