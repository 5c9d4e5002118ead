//! The widget library of the console, at the bottom of `app/`: styles
//! (`Theme`), boxes (`dialog`, `overlay_box`, `centered`, `question_box`),
//! the panes' layout, text wrapping that keeps its column, and the small
//! helpers of lists and text inputs (`movement`, `moved`, `typed_char`).
//! It imports no screen and not the model: every screen may use it.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear};

use super::keymap::Action;

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

/// A question's box and its lines: `min` columns on an 80-column terminal,
/// growing with a bigger one (three fifths of it, at most `max`), as tall
/// as its lines wrapped to it — with a blank line between them when the
/// terminal has the room — and centred.
pub(crate) fn question_box(area: Rect, min: u16, max: u16, lines: Vec<Line<'static>>) -> (Rect, Vec<Line<'static>>) {
    let width = (area.width.saturating_mul(3) / 5).clamp(min, max).min(area.width.saturating_sub(2));
    let mut lines = wrap_lines(lines, width.saturating_sub(2));
    if area.height >= 40 {
        let mut spaced = Vec::with_capacity(lines.len() * 2);
        for (i, line) in lines.into_iter().enumerate() {
            if i > 0 {
                spaced.push(Line::raw(""));
            }
            spaced.push(line);
        }
        lines = spaced;
    }
    let height = lines.len() as u16 + 2;
    (centered(area, width, height), lines)
}

/// How far a movement goes on a list `page` rows high.
pub(crate) fn movement(action: Action, page: usize) -> Option<isize> {
    let page = page.max(1) as isize;
    Some(match action {
        Action::Up => -1,
        Action::Down => 1,
        Action::PageUp => -page,
        Action::PageDown => page,
        Action::Top => isize::MIN / 2,
        Action::Bottom => isize::MAX / 2,
        _ => return None,
    })
}

/// `index` moved by `delta` within `0..len`.
pub(crate) fn moved(index: usize, delta: isize, len: usize) -> usize {
    (index as isize).saturating_add(delta).clamp(0, len.saturating_sub(1) as isize) as usize
}

/// Typing in a text input: the character a key stands for, if any.
pub(crate) fn typed_char(key: &str) -> Option<char> {
    match key {
        "space" => Some(' '),
        k if k.chars().count() == 1 => k.chars().next(),
        _ => None,
    }
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
