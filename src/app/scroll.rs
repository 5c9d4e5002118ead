//! A preview that reads whole: the lines of a save, delete, chain or
//! policy preview (`crate::preview`), styled, wrapped to the box and
//! scrolled with j/k, PgUp/PgDn (ctrl-b/ctrl-f), g/G, with a mark saying
//! how much is above and below. The box takes the terminal's size.

use std::cell::Cell;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::keymap::Action;
use super::widgets::{Theme, movement, wrap_line};
use crate::preview::{PreviewLine, Tone};

/// Where a preview is scrolled to. The offset is the first line shown;
/// the view records how far it can go (lines beyond the box) when it
/// draws, so keys stop at the end; before any draw, they go as asked and
/// the view clamps.
#[derive(Debug, Default)]
pub struct Scroll {
    pub offset: usize,
    /// (last offset that still fills the box, rows shown) at the last draw.
    seen: Cell<Option<(usize, usize)>>,
}

impl Scroll {
    /// Back to the top (a new preview).
    pub fn reset(&mut self) {
        self.offset = 0;
        self.seen.set(None);
    }

    /// A movement key: true when it was one.
    pub fn key(&mut self, action: Action) -> bool {
        let (max, rows) = self.seen.get().unwrap_or((usize::MAX / 4, 10));
        let Some(delta) = movement(action, rows.saturating_sub(1).max(1)) else { return false };
        let current = self.offset.min(max) as isize;
        self.offset = current.saturating_add(delta).clamp(0, max as isize) as usize;
        true
    }
}

/// A tone as a style.
pub(crate) fn style(tone: Tone, t: Theme) -> Style {
    match tone {
        Tone::Plain => Style::new(),
        Tone::Bold => Style::new().add_modifier(Modifier::BOLD),
        Tone::Dim => t.dim(),
        Tone::Accent => t.accent(),
        Tone::Ok => t.ok(),
        Tone::Bad => t.bad(),
    }
}

/// Preview lines styled and wrapped to `width`, each continuation under
/// its value (the line's own hang).
pub(crate) fn styled(lines: &[PreviewLine], width: u16, t: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let line =
            Line::from(l.parts.iter().map(|(s, tone)| Span::styled(s.clone(), style(*tone, t))).collect::<Vec<_>>());
        let hang = l.hang.min(width as usize / 2);
        out.extend(wrap_line(line, width as usize, hang));
    }
    out
}

/// Render `lines` (already wrapped) into `area` from the scroll's offset;
/// when they do not fit, the last row says what is above and below and
/// which keys move.
pub(crate) fn render(frame: &mut Frame, area: Rect, lines: Vec<Line<'static>>, scroll: &Scroll, t: Theme) {
    let rows = area.height as usize;
    if rows == 0 {
        return;
    }
    if lines.len() <= rows {
        scroll.seen.set(Some((0, rows)));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    // One row for the mark.
    let shown = rows.saturating_sub(1).max(1);
    let max = lines.len().saturating_sub(shown);
    scroll.seen.set(Some((max, shown)));
    let offset = scroll.offset.min(max);
    let below = lines.len() - offset - shown;
    let total = lines.len();
    let body: Vec<Line> = lines.into_iter().skip(offset).take(shown).collect();
    frame.render_widget(Paragraph::new(body), Rect { height: shown as u16, ..area });
    if rows > 1 {
        let mark = mark(offset, below, total);
        let line = Line::from(Span::styled(mark, t.accent()));
        frame.render_widget(Paragraph::new(line), Rect { y: area.y + shown as u16, height: 1, ..area });
    }
}

/// "↓ 12 more below (j/k, PgDn, G) · lines 1–9 of 21" and its kin.
fn mark(offset: usize, below: usize, total: usize) -> String {
    let shown = total - offset - below;
    let range = format!("lines {}–{} of {total}", offset + 1, offset + shown);
    match (offset, below) {
        (_, 0) => format!("↑ {offset} above (k, PgUp, g) · end · {range}"),
        (0, _) => format!("↓ {below} more below (j, PgDn, G) · {range}"),
        _ => format!("↓ {below} more below, ↑ {offset} above (j/k, PgDn/PgUp) · {range}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stop_at_the_ends_once_drawn() {
        let mut s = Scroll::default();
        assert!(s.key(Action::Bottom));
        assert!(s.offset > 1000, "before a draw, G goes as far as asked");
        s.seen.set(Some((7, 5)));
        assert!(s.key(Action::Up));
        assert_eq!(s.offset, 6);
        assert!(s.key(Action::PageDown));
        assert_eq!(s.offset, 7);
        assert!(s.key(Action::Top));
        assert_eq!(s.offset, 0);
        assert!(!s.key(Action::Confirm));
        assert_eq!(mark(0, 12, 21), "↓ 12 more below (j, PgDn, G) · lines 1–9 of 21");
        assert_eq!(mark(12, 0, 21), "↑ 12 above (k, PgUp, g) · end · lines 13–21 of 21");
    }
}
