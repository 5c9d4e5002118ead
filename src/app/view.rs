//! Drawing the model: pure functions from `&Model` to a ratatui frame. Every
//! string that came from the database passes through `text::visible` before
//! it becomes a span. Only the visible rows of the accounts pane are built.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::keymap::{Action, Screen};
use super::main_screen::TAB_KEYS;
use super::{Connection, Model, Overlay};
use crate::domain::text::visible_short;

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
    pub(crate) fn border(self, focused: bool) -> Style {
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
pub fn panes(size: (u16, u16), permissions: bool) -> (Rect, Rect, Rect) {
    let area = body(size);
    if size.0 >= 120 {
        // Wide terminals give the accounts room for their names.
        let accounts = if size.0 >= 150 { 50 } else { 32 };
        let [a, s, r] =
            Layout::horizontal([Constraint::Length(accounts), Constraint::Min(40), Constraint::Length(46)]).areas(area);
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
            (Screen::Main, Action::Tab1) => {
                let tabs = model.tabs().len().clamp(1, TAB_KEYS.len());
                let last = TAB_KEYS[tabs - 1];
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

/// A big overlay's box (a preview, help, the chain, the message log):
/// nearly the whole width on a small terminal, growing with a big one (a
/// line of 140 cells at most reads well); `height` as asked, centred.
pub(crate) fn overlay_box(area: Rect, height: u16) -> Rect {
    let width = if area.width <= 96 { area.width.saturating_sub(2) } else { (area.width * 7 / 8).clamp(94, 140) };
    centered(area, width, height)
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

/// A dialog box over the screen: cleared, bordered, titled; its inside.
pub(crate) fn dialog(frame: &mut Frame, box_area: Rect, title: String, t: Theme) -> Rect {
    frame.render_widget(Clear, box_area);
    let block = pane_block(title, true, t);
    let inner = block.inner(box_area);
    frame.render_widget(block, box_area);
    inner
}

/// Lines cut at spaces to `width` cells, each continuation indented like
/// the text it continues (`hang`): wrapped text keeps its column, where
/// ratatui's own wrapping would start it again at the left edge. Styles
/// are kept; a word wider than the room is cut.
pub(crate) fn wrap_lines(lines: Vec<Line<'static>>, width: u16) -> Vec<Line<'static>> {
    let width = width as usize;
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        if width == 0 || line.width() <= width {
            out.push(line);
        } else {
            let hang = hang(&line);
            out.extend(wrap_line(line, width, hang));
        }
    }
    out
}

/// Where a line's continuations start: under its text, past its leading
/// spaces and a leading mark such as `⚠ `, `✗ ` or `└ ` (at most half the
/// width, so something still fits).
pub(crate) fn hang(line: &Line) -> usize {
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    let spaces = text.chars().take_while(|c| *c == ' ').count();
    let mut rest = text.chars().skip(spaces);
    let marked = matches!(rest.next(), Some('⚠' | '✗' | '✓' | '└' | '●' | '○' | '!' | '·' | '>' | '-'))
        && rest.next() == Some(' ');
    let hang = spaces + if marked { 2 } else { 0 };
    hang.min(line.width() / 2)
}

/// One line cut at spaces to `width`, continuations indented by `hang`.
pub(crate) fn wrap_line(line: Line<'static>, width: usize, hang: usize) -> Vec<Line<'static>> {
    if width == 0 || line.width() <= width {
        return vec![line];
    }
    let hang = hang.min(width.saturating_sub(1));
    let style = line.style;
    let alignment = line.alignment;
    // Words and the spaces between them, each with its span's style.
    let mut tokens: Vec<(String, Style, bool)> = Vec::new();
    for span in &line.spans {
        let mut word = String::new();
        let mut space = false;
        for c in span.content.chars() {
            if (c == ' ') != space && !word.is_empty() {
                tokens.push((std::mem::take(&mut word), span.style, space));
            }
            space = c == ' ';
            word.push(c);
        }
        if !word.is_empty() {
            tokens.push((word, span.style, space));
        }
    }
    let cells = |s: &str| Span::raw(s).width();
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    let mut first = true;
    let finish = |spans: &mut Vec<Span<'static>>, out: &mut Vec<Line<'static>>| {
        // Spaces at the end of a cut line are dropped.
        while spans.last().is_some_and(|s| s.content.trim().is_empty()) && spans.len() > 1 {
            spans.pop();
        }
        let mut l = Line::from(std::mem::take(spans)).style(style);
        l.alignment = alignment;
        out.push(l);
    };
    for (text, span_style, space) in tokens {
        let w = cells(&text);
        // The indent a continuation starts with, once per line.
        let start = |spans: &mut Vec<Span<'static>>, used: &mut usize, first: bool| {
            if spans.is_empty() && !first && hang > 0 {
                spans.push(Span::raw(" ".repeat(hang)));
                *used = hang;
            }
        };
        if space {
            let at_start = spans.is_empty() || (!first && used == hang);
            if at_start && !first {
                continue;
            }
            if used + w > width {
                finish(&mut spans, &mut out);
                first = false;
                used = 0;
                continue;
            }
            spans.push(Span::styled(text, span_style));
            used += w;
            continue;
        }
        // A word that fits on a line of its own goes to the next one; a
        // longer one is cut where it stands.
        if used + w > width && used > if first { 0 } else { hang } && w <= width - hang {
            finish(&mut spans, &mut out);
            first = false;
            used = 0;
        }
        start(&mut spans, &mut used, first);
        // A word wider than the room is cut.
        let mut rest = text.as_str();
        while used + cells(rest) > width {
            let room = width.saturating_sub(used).max(1);
            let cut: usize = rest
                .char_indices()
                .scan(0, |acc, (i, c)| {
                    *acc += cells(&c.to_string());
                    Some((i + c.len_utf8(), *acc))
                })
                .take_while(|(_, acc)| *acc <= room)
                .last()
                .map(|(i, _)| i)
                .unwrap_or_else(|| rest.chars().next().map(char::len_utf8).unwrap_or(rest.len()));
            spans.push(Span::styled(rest[..cut].to_string(), span_style));
            rest = &rest[cut..];
            finish(&mut spans, &mut out);
            first = false;
            used = 0;
            start(&mut spans, &mut used, first);
        }
        if !rest.is_empty() {
            used += cells(rest);
            spans.push(Span::styled(rest.to_string(), span_style));
        }
    }
    if !spans.is_empty() {
        finish(&mut spans, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect()
    }

    #[test]
    fn wrapped_lines_keep_their_indent_and_styles() {
        let warn = Style::new().add_modifier(Modifier::BOLD);
        let line = Line::from(vec![Span::raw("  ⚠ "), Span::styled("aaa bbb ccc", warn)]);
        let out = wrap_lines(vec![line], 10);
        assert_eq!(text(&out), ["  ⚠ aaa", "    bbb", "    ccc"]);
        assert!(out[1].spans.iter().any(|s| s.content == "bbb" && s.style == warn));
        // A line that fits is left alone; a plain one hangs at its spaces.
        let fits = Line::raw("  short");
        assert_eq!(text(&wrap_lines(vec![fits], 10)), ["  short"]);
        let plain = Line::raw("    one two three");
        assert_eq!(text(&wrap_lines(vec![plain], 12)), ["    one two", "    three"]);
        // A word wider than the room is cut, the rest still indented.
        let long = Line::raw("  ✗ abcdefghijklmnop");
        let out = text(&wrap_lines(vec![long], 10));
        assert_eq!(out, ["  ✗ abcdef", "    ghijkl", "    mnop"]);
        assert!(out.iter().all(|l| Span::raw(l.as_str()).width() <= 10));
    }
}
