//! Drawing the model: pure functions from `&Model` to a ratatui frame. Every
//! string that came from the database passes through `text::visible` before
//! it becomes a span. Only the visible rows of the accounts pane are built.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::keymap::{Action, Screen, tab_keys};
use super::model::{Connection, Model, Overlay};
use super::widgets::Theme;
pub use super::widgets::panes;
use crate::domain::text::visible_short;

fn theme(model: &Model) -> Theme {
    Theme { color: !model.session.no_color }
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
    super::main_screen::draw_accounts(model, frame, a, t);
    if s.height > 0 {
        super::setting_pane::draw(model, frame, s, t);
    }
    super::resolve_panel::draw(model, frame, r, t);
    footer(model, frame, Rect::new(0, area.height - 1, area.width, 1), t);
    match &model.overlay {
        Some(Overlay::Picker(_)) => super::picker::draw(model, frame, area, t),
        Some(Overlay::Palette(p)) => super::palette::draw(model, p, frame, area, t),
        Some(Overlay::Edit(ed)) => super::editor::view::draw(ed, model.now, &model.preview_scroll, frame, area, t),
        Some(Overlay::ConfirmReveal(dialog)) => super::reveal::draw(dialog, frame, area, t),
        Some(Overlay::ConfirmEndpoint(dialog)) => super::endpoint::draw(model, dialog, frame, area, t),
        Some(Overlay::Audit(view)) => super::audit::draw(view, frame, area, t),
        Some(Overlay::Admin(view)) => super::admin::draw(model, view, frame, area, t),
        Some(Overlay::Lint(view)) => super::lint_view::draw(model, view, frame, area, t),
        Some(Overlay::ConfirmDelete(dialog)) => super::delete::draw(dialog, &model.preview_scroll, frame, area, t),
        Some(Overlay::AsOf(p)) => super::time_travel::draw_picker(model, p, frame, area, t),
        Some(Overlay::KeyHistory(v)) => super::time_travel::draw_key_history(v, frame, area, t),
        None => {}
    }
    if model.messages.open {
        super::messages::draw(model, frame, t);
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
    for terseness in 0..=8 {
        last = header_spans(model, t, terseness);
        if fits(&last) {
            return last;
        }
    }
    last
}

/// The header at `terseness` 0 (everything) to 6 (database and operator
/// cut short, no role, "read-only" without its reason), then 7 and 8
/// (the label, database and operator shorter still): "read-only" stays.
fn header_spans(model: &Model, t: Theme, terseness: u8) -> Vec<Span<'static>> {
    let s = &model.session;
    // As of a moment, terse, the mark takes the name's place.
    let as_of = super::time_travel::header_span(model, t, terseness);
    let mut spans = match &as_of {
        Some(_) if terseness >= 6 => Vec::new(),
        _ => vec![Span::styled(" keyfall ", t.accent())],
    };
    if let Some(label) = &s.label {
        let color = s.color.as_deref().and_then(parse_color).unwrap_or(Color::Red);
        let style = if t.color {
            Style::new().bg(color).fg(Color::White).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        };
        // Marked in text too, so it reads without colour (NO_COLOR): colour
        // changes the style only, never the text.
        let room = match terseness {
            0..=6 => 20,
            7 => 14,
            _ => 10,
        };
        spans.push(Span::styled(format!("[{}]", visible_short(label, room)), style));
        spans.push(Span::raw(" "));
    }
    // As of a moment: said first, in its own colour.
    if let Some(as_of) = as_of {
        spans.push(as_of);
        spans.push(Span::raw(" "));
    }
    let (db_width, op_width) = match terseness {
        0..=5 => (40, 40),
        6 => (24, 24),
        7 => (18, 18),
        _ => (12, 12),
    };
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
            (Screen::Main, Action::Tab(0)) => {
                let tabs = model.tabs().len().clamp(1, tab_keys());
                let last = Action::Tab(tabs as u8 - 1);
                match keymap.first_key(screen, last) {
                    Some(l) => (format!("{key}-{l}"), word.to_string()),
                    None => (key.to_string(), word.to_string()),
                }
            }
            (Screen::Main, Action::Permissions) if model.resolve.show_permissions => (key.to_string(), "trace".into()),
            (Screen::Main, Action::Cancel)
                if model.time.as_of.is_some()
                    && model.accounts.filter.is_empty()
                    && !model.resolve.show_permissions =>
            {
                (key.to_string(), "now".into())
            }
            (Screen::Main, Action::Cancel) if model.accounts.filter.is_empty() => (key.to_string(), "close".into()),
            (Screen::Main, Action::Cancel) => (key.to_string(), "clear filter".into()),
            _ => (key.to_string(), word.to_string()),
        };
        all.push((action, key, word));
    }
    // As of a moment, the way back and to another moment come first.
    if screen == Screen::Main && model.time.as_of.is_some() {
        let rank = |a: Action| match a {
            Action::Help => 0,
            Action::Cancel => 1,
            Action::AsOf => 2,
            Action::KeyHistory => 3,
            _ => 4,
        };
        all.sort_by_key(|(a, _, _)| rank(*a));
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
    // Each screen says.
    match (screen, &model.overlay) {
        (Screen::Main, _) => super::main_screen::available(model, action),
        (Screen::Editor, Some(Overlay::Edit(ed))) => super::editor::keys::available(ed, action),
        (Screen::Lint, Some(Overlay::Lint(view))) => super::lint_view::available(view, action),
        (Screen::Audit, Some(Overlay::Audit(view))) => super::audit::available(view, action),
        _ => true,
    }
}

fn footer(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let width = area.width as usize;
    let line = match &model.notice {
        Some(n) => {
            // The notice, and still the way to help and out; when it is
            // cut here, the key to the message log, which has it whole.
            let mut tail: Vec<(String, String)> =
                hints(model, width).into_iter().filter(|(_, w)| w == "help" || w == "quit").collect();
            // A notice quotes no secret, whatever it carries (an error's text).
            let n = crate::domain::secret::mask_shapes_in_text(n);
            let tail_width = |tail: &[(String, String)]| -> usize {
                tail.iter().map(|(k, w)| k.chars().count() + w.chars().count() + 3).sum()
            };
            let whole = crate::domain::text::visible(&n).chars().count();
            if whole > width.saturating_sub(tail_width(&tail) + 2)
                && let Some(key) = model.keymap.first_key(model.screen(), Action::Messages)
            {
                tail.insert(0, (key.to_string(), "log".to_string()));
            }
            let room = width.saturating_sub(tail_width(&tail) + 2).max(10);
            let mut spans = vec![Span::styled(format!(" {:<room$}", visible_short(&n, room)), t.warn())];
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
