//! The message log (the way k9s and lazygit keep theirs): every notice of
//! the session, whole and with its time, one key away (`m`, or `f2` from
//! any screen). The footer shows the newest notice for a few seconds and
//! then gives the key hints back; a notice too long for the footer is cut
//! there and read whole here.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use super::keymap::Action;
use super::model::{Cmd, Model};
use super::scroll;
pub use super::state::messages::*;
use super::widgets::{Theme, dialog, overlay_box, wrap_line};

/// Open the log at its newest entry.
pub fn open(model: &mut Model) -> Vec<Cmd> {
    model.messages.open = true;
    model.messages.scroll.reset();
    model.messages.scroll.offset = usize::MAX / 4;
    Vec::new()
}

pub fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let Some(action) = action else { return Vec::new() };
    if matches!(action, Action::Close | Action::Messages) {
        model.messages.open = false;
        return Vec::new();
    }
    model.messages.scroll.key(action);
    Vec::new()
}

pub fn draw(model: &Model, frame: &mut Frame, t: Theme) {
    let area = frame.area();
    let log = &model.messages;
    let title = format!(" Messages · {} this session · esc closes ", log.entries.len());
    let inner = dialog(frame, overlay_box(area, area.height.saturating_sub(2)), title, t);
    let mut lines: Vec<Line<'static>> = Vec::new();
    if log.entries.is_empty() {
        lines.push(Line::from(Span::styled("no notices yet", t.dim())));
    }
    for (at, text) in &log.entries {
        let time = at.with_timezone(&chrono::Local).format("%H:%M:%S").to_string();
        let line = Line::from(vec![
            Span::styled(format!("{time}  "), t.dim()),
            Span::raw(crate::domain::text::visible(text).into_owned()),
        ]);
        lines.extend(wrap_line(line, inner.width as usize, 10));
    }
    scroll::render(frame, inner, lines, &log.scroll, t);
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn a_notice_is_logged_once_and_expires_from_the_footer() {
        let now = Utc::now();
        let mut log = Log::default();
        let n = "read-only here: read-only session".to_string();
        log.record(Some(&n), now);
        log.record(Some(&n), now + chrono::Duration::seconds(1));
        assert_eq!(log.entries.len(), 1);
        assert!(!log.expired(now + chrono::Duration::seconds(3)));
        assert!(log.expired(now + chrono::Duration::seconds(NOTICE_SECONDS)));
        log.record(None, now);
        log.record(Some(&n), now);
        assert_eq!(log.entries.len(), 2, "the same notice again, after another, is a new entry");
    }
}
