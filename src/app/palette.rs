//! The `:` palette: one fuzzy list over accounts (slug and name), users
//! (email, searched in the database as the user picker does), screens and
//! contexts; Enter jumps — selects the account or the user to resolve as,
//! opens the screen, or switches the context. `ctx NAME` narrows to the
//! contexts. Its state, its keys and its view.

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::keymap::Action;
use super::model::{Cmd, Model, Outcome, Overlay, load_visible, resolve_cmd};
use super::request::Kind;
use super::state::main::Pane;
pub use super::state::palette::*;
use super::widgets::{Theme, centered, dialog};
use super::widgets::{movement, typed_char};
use crate::domain::directory::UserHit;
use crate::domain::text::{visible, visible_short};

/// At most this many rows are ranked into the list.
const SHOWN: usize = 200;

/// The screens the palette names: (word, what it opens).
fn screens(model: &Model) -> Vec<Entry> {
    let mut out: Vec<Entry> = [
        ("audit", "the audit log of this setting", Jump::Screen(Action::Audit)),
        ("lint", "lint findings, with fixes", Jump::Screen(Action::Lint)),
        ("permissions", "why this user may or may not", Jump::Screen(Action::Permissions)),
        ("chain", "the fallback chain and the policy", Jump::Screen(Action::ChainPolicy)),
        ("policy", "the fallback chain and the policy", Jump::Screen(Action::ChainPolicy)),
        ("user", "resolve as… pick a user", Jump::Screen(Action::PickUser)),
        ("function", "resolve as… pick an AI function", Jump::Screen(Action::PickFunction)),
        ("test", "test the key that answers here", Jump::Screen(Action::TestConnection)),
        ("filter", "filter the accounts", Jump::Screen(Action::Filter)),
        ("reload", "reload everything from the database", Jump::Screen(Action::Refresh)),
        ("help", "the keys of every screen", Jump::Help),
        ("quit", "quit keyfall", Jump::Screen(Action::Quit)),
    ]
    .into_iter()
    .map(|(text, detail, jump)| Entry { kind: "screen", text: text.into(), detail: detail.into(), jump })
    .collect();
    for (i, ty) in model.tabs().into_iter().enumerate() {
        let label = crate::domain::registry::spec(&ty).map(|s| s.label.to_string()).unwrap_or_else(|| ty.clone());
        out.push(Entry { kind: "screen", text: ty, detail: format!("the {label} tab"), jump: Jump::Tab(i) });
    }
    out
}

fn contexts(model: &Model) -> Vec<Entry> {
    model
        .contexts
        .iter()
        .map(|(name, label)| {
            let here = if model.context.as_deref() == Some(name.as_str()) { " (here)" } else { "" };
            Entry {
                kind: "context",
                text: format!("ctx {name}"),
                detail: format!("{label}{here}"),
                jump: Jump::Context(name.clone()),
            }
        })
        .collect()
}

/// Rank every candidate against `query`: the best score first, then
/// contexts, screens, accounts and users in that order.
fn rank(model: &Model, palette: &mut Palette) {
    palette.selected = 0;
    let query = palette.query.trim();
    let mut candidates: Vec<Entry> = contexts(model);
    let only_contexts = query == "ctx" || query.starts_with("ctx ");
    if !only_contexts {
        candidates.extend(screens(model));
    }
    if query.is_empty() {
        palette.shown = candidates;
        return;
    }
    let pattern = Pattern::parse(query, CaseMatching::Ignore, Normalization::Smart);
    let mut matcher = Matcher::new(Config::DEFAULT);
    let mut buf = Vec::new();
    let mut scored: Vec<(u32, usize, Entry)> = Vec::new();
    let mut score = |text: &str| pattern.score(Utf32Str::new(text, &mut buf), &mut matcher);
    for (order, e) in candidates.into_iter().enumerate() {
        if let Some(s) = score(&e.text) {
            scored.push((s, order, e));
        }
    }
    if !only_contexts {
        let base = scored.len() + 1_000;
        // Each word of a plain ASCII query (no ^ $ ! ' syntax) must appear
        // in an ASCII text letter by letter, in order, any case, for nucleo
        // to match it: checked first, bytewise, so a keystroke over 100,000
        // accounts scores only the few that can match.
        let plain = query.bytes().all(|b| b.is_ascii_alphanumeric() || b" -_.@".contains(&b));
        let words: Vec<Vec<u8>> = if plain {
            query.split_whitespace().map(|w| w.bytes().map(|b| b.to_ascii_lowercase()).collect()).collect()
        } else {
            Vec::new()
        };
        let may_match = |text: &str| !text.is_ascii() || words.iter().all(|w| in_order(w, text.as_bytes()));
        for (i, entry) in model.accounts.entries().iter().enumerate() {
            let a = &entry.account;
            if !may_match(&a.slug) && !may_match(&a.name) {
                continue;
            }
            // The slug, else the name: whichever matches better.
            let s = match (score(&a.slug), score(&a.name)) {
                (None, None) => continue,
                (x, y) => x.max(y).unwrap_or(0),
            };
            scored.push((
                s,
                base + i,
                Entry { kind: "account", text: a.slug.clone(), detail: a.name.clone(), jump: Jump::Account(a.id) },
            ));
        }
        let base = base + model.accounts.entries().len();
        for (i, hit) in palette.users.iter().enumerate() {
            if let Some(s) = score(&hit.email) {
                let account = hit.account.as_deref().unwrap_or("no account");
                scored.push((
                    s,
                    base + i,
                    Entry {
                        kind: "user",
                        text: hit.email.clone(),
                        detail: format!("{} · {account}", hit.role),
                        jump: Jump::User(hit.email.clone()),
                    },
                ));
            }
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    palette.shown = scored.into_iter().take(SHOWN).map(|(_, _, e)| e).collect();
}

/// Whether the bytes of `needle` (lowercase) appear in `text` in order,
/// any case.
fn in_order(needle: &[u8], text: &[u8]) -> bool {
    let mut found = 0;
    for &b in text {
        if found == needle.len() {
            return true;
        }
        if b.to_ascii_lowercase() == needle[found] {
            found += 1;
        }
    }
    found == needle.len()
}

/// `:`: open the palette.
pub fn open(model: &mut Model) -> Vec<Cmd> {
    let mut palette = Palette::default();
    rank(model, &mut palette);
    model.overlay = Some(Overlay::Palette(palette));
    model.requests.forget(Kind::UserSearch);
    Vec::new()
}

pub(super) fn set_query(model: &mut Model, query: String) -> Vec<Cmd> {
    let Some(Overlay::Palette(mut p)) = model.overlay.take() else { return Vec::new() };
    p.query = query.clone();
    rank(model, &mut p);
    model.overlay = Some(Overlay::Palette(p));
    search_users(model, query)
}

/// Users for a query of two characters or more that is not `ctx …`: one
/// search in flight, the newest query typed meanwhile next.
fn search_users(model: &mut Model, query: String) -> Vec<Cmd> {
    let Some(Overlay::Palette(p)) = &mut model.overlay else { return Vec::new() };
    let q = query.trim().to_string();
    if q.chars().count() < 2 || q == "ctx" || q.starts_with("ctx ") {
        p.queued = None;
        return Vec::new();
    }
    if p.searching.is_some() {
        p.queued = Some(q);
        return Vec::new();
    }
    p.searching = Some(q.clone());
    let request = model.requests.start(Kind::UserSearch);
    vec![Cmd::FindUsers { request, query: q }]
}

/// Users found for the palette's newest search.
pub(super) fn found(model: &mut Model, request: u64, hits: Vec<UserHit>) -> Vec<Cmd> {
    if !model.requests.is_latest(Kind::UserSearch, request) {
        return Vec::new();
    }
    model.requests.forget(Kind::UserSearch);
    let Some(Overlay::Palette(mut p)) = model.overlay.take() else { return Vec::new() };
    p.searching = None;
    p.users = hits;
    let keep = p.current().cloned();
    rank(model, &mut p);
    // The row under the cursor stays under it when users arrive.
    if let Some(keep) = keep
        && let Some(at) = p.shown.iter().position(|e| *e == keep)
    {
        p.selected = at;
    }
    let queued = p.queued.take();
    model.overlay = Some(Overlay::Palette(p));
    match queued {
        Some(q) => search_users(model, q),
        None => Vec::new(),
    }
}

/// The search failed (said in the footer): nothing is in flight.
pub(super) fn search_failed(model: &mut Model) {
    if let Some(Overlay::Palette(p)) = &mut model.overlay {
        p.searching = None;
        p.queued = None;
    }
}

pub(super) fn key(model: &mut Model, key: &str, action: Option<Action>) -> Outcome {
    let Some(Overlay::Palette(p)) = &mut model.overlay else { return Outcome::Done(Vec::new()) };
    let cmds = match action {
        Some(Action::Cancel) => {
            model.overlay = None;
            Vec::new()
        }
        Some(Action::Accept) => return accept(model),
        Some(a) => {
            if let Some(delta) = movement(a, 10) {
                p.selected = super::widgets::moved(p.selected, delta, p.shown.len());
            }
            Vec::new()
        }
        None if key == "backspace" => {
            if p.query.is_empty() {
                model.overlay = None;
                return Outcome::Done(Vec::new());
            }
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
    };
    cmds.into()
}

/// Enter: jump to the entry under the cursor. `ctx NAME` typed whole
/// switches to that context even if another ranks first.
pub(super) fn accept(model: &mut Model) -> Outcome {
    let Some(Overlay::Palette(p)) = model.overlay.take() else { return Outcome::Done(Vec::new()) };
    let typed = p.query.trim().strip_prefix("ctx ").map(str::trim).map(str::to_string);
    let jump = match typed.filter(|n| model.contexts.iter().any(|(c, _)| c == n)) {
        Some(name) => Some(Jump::Context(name)),
        None => p.current().map(|e| e.jump.clone()),
    };
    let Some(jump) = jump else {
        model.notice = Some(format!("nothing matches {:?}", visible_short(&p.query, 40)));
        return Outcome::Done(Vec::new());
    };
    go(model, jump)
}

fn go(model: &mut Model, jump: Jump) -> Outcome {
    let cmds = match jump {
        Jump::Account(id) => {
            if !model.accounts.select_account(id) {
                // Filtered out: the filter goes, the account is shown.
                model.accounts.filtering = false;
                model.accounts.set_filter(String::new());
                model.accounts.select_account(id);
            }
            model.main.focus = Pane::Accounts;
            model.main.setting_scroll = 0;
            load_visible(model)
        }
        Jump::User(email) => {
            model.resolve.email = Some(email);
            model.resolve.scroll = 0;
            model.main.focus = Pane::Resolve;
            if model.last_test.as_ref().is_some_and(|x| x.from_resolve) {
                model.last_test = None;
            }
            resolve_cmd(model)
        }
        Jump::Help => {
            model.help = Some(super::state::help::HelpView::default());
            Vec::new()
        }
        Jump::Tab(i) => {
            if i < model.tabs().len() {
                model.main.tab = i;
                model.main.setting_scroll = 0;
                model.main.focus = Pane::Setting;
            }
            Vec::new()
        }
        Jump::Screen(Action::Quit) => return Outcome::Quit,
        Jump::Screen(Action::Permissions) if model.resolve.show_permissions => Vec::new(),
        Jump::Screen(action) => return Outcome::Main(action),
        Jump::Context(name) => {
            if model.context.as_deref() == Some(name.as_str()) {
                model.notice = Some(format!("already in context {}", visible_short(&name, 40)));
                return Outcome::Done(Vec::new());
            }
            model.switch_to = Some(name);
            Vec::new()
        }
    };
    cmds.into()
}

/// The palette's box: up to 100 columns wide and, on a tall terminal, two
/// thirds of its height (at least 22 rows where they fit).
fn frame_of(area: Rect) -> Rect {
    let height = area.height.saturating_sub(4).min((area.height * 2 / 3).max(22));
    centered(area, (area.width.saturating_sub(8)).clamp(40, 100), height)
}

/// The palette's list rows: where they start on screen, and how many fit.
pub fn list_area(area: Rect) -> Rect {
    let outer = frame_of(area);
    // Inside the border, below the query line.
    Rect::new(outer.x + 1, outer.y + 2, outer.width.saturating_sub(2), outer.height.saturating_sub(3))
}

/// The first entry shown, for the list's height.
pub fn offset(p: &Palette, rows: usize) -> usize {
    p.selected.saturating_sub(rows.saturating_sub(1))
}

/// A click on a row selects it; a click on the row already selected (the
/// second of a double-click) jumps there, as enter does.
pub(super) fn click(model: &mut Model, column: u16, row: u16) -> Outcome {
    let area = Rect::new(0, 0, model.size.0, model.size.1);
    let list = list_area(area);
    let Some(Overlay::Palette(p)) = &mut model.overlay else { return Outcome::Done(Vec::new()) };
    let inside = column >= list.x && column < list.right() && row >= list.y && row < list.bottom();
    if !inside {
        return Outcome::Done(Vec::new());
    }
    let index = offset(p, list.height as usize) + (row - list.y) as usize;
    if index >= p.shown.len() {
        return Outcome::Done(Vec::new());
    }
    if index != p.selected {
        p.selected = index;
        return Outcome::Done(Vec::new());
    }
    accept(model)
}

pub fn draw(model: &Model, p: &Palette, frame: &mut Frame, area: Rect, t: Theme) {
    let outer = frame_of(area);
    let title = " Jump to: account, user, screen, ctx NAME ";
    let inner = dialog(frame, outer, title.into(), t);
    let searching = if p.searching.is_some() { "  searching users…" } else { "" };
    let mut lines = vec![Line::from(vec![
        Span::styled(":", t.accent()),
        Span::raw(visible(&p.query).into_owned()),
        Span::raw("▏"),
        Span::styled(searching, t.dim()),
    ])];
    let rows = inner.height.saturating_sub(1) as usize;
    let width = inner.width as usize;
    let text_width = (width / 2).clamp(12, 40);
    let detail_width = width.saturating_sub(text_width + 10);
    for (i, e) in p.shown.iter().enumerate().skip(offset(p, rows)).take(rows) {
        let mut line = Line::from(vec![
            Span::styled(format!("{:<8} ", e.kind), t.dim()),
            Span::raw(format!("{:<text_width$} ", visible_short(&e.text, text_width))),
            Span::styled(visible_short(&e.detail, detail_width), t.dim()),
        ]);
        if i == p.selected {
            line = line.style(t.selected(true));
        }
        lines.push(line);
    }
    let query = p.query.trim();
    if model.contexts.is_empty() && (query == "ctx" || query.starts_with("ctx ")) {
        // Nothing to switch to: say how to get something.
        lines.push(Line::from(Span::styled("no contexts: add [contexts.NAME] to the config file", t.dim())));
    } else if p.shown.is_empty() && p.searching.is_none() {
        lines.push(Line::from(Span::styled("no match", t.dim())));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    #[test]
    fn letters_in_order_any_case() {
        assert!(super::in_order(b"paid", b"Paid-2"));
        assert!(super::in_order(b"pd2", b"paid-2"));
        assert!(super::in_order(b"", b"x"));
        assert!(!super::in_order(b"dp", b"paid"));
        assert!(!super::in_order(b"paidx", b"paid"));
    }
}
