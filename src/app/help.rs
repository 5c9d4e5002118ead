//! The help screen: every key of every screen, from the keymap in force,
//! the screen it was opened over first. Its state, its keys and its view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::keymap::{Action, Screen};
use super::model::{Cmd, Model};
pub use super::state::help::*;
use super::widgets::{Theme, overlay_box, pane_block};
use super::widgets::{moved, movement};

/// Help for the screen below first, then the main screen, then the rest.
pub fn lines(model: &Model) -> Vec<HelpLine> {
    let below = model.screen_below_help();
    let mut order = vec![below];
    if below != Screen::Main {
        order.push(Screen::Main);
    }
    let rest: Vec<Screen> = Screen::ALL.into_iter().filter(|s| !order.contains(s) && *s != Screen::Help).collect();
    order.extend(rest);
    let mut out = Vec::new();
    for screen in order {
        out.push(HelpLine::Heading(screen.title()));
        for (keys, what) in model.keymap.help(screen) {
            out.push(HelpLine::Key(keys, what));
        }
        if screen == Screen::Main {
            out.push(HelpLine::Text("markers: ● own answers  ○ inherits  ! own skipped  ✗ nothing  · loading"));
            out.push(HelpLine::Text("         - the policy does not let you view its settings"));
            out.push(HelpLine::Text("①②③ the account's place in the fallback chain"));
        }
        out.push(HelpLine::Blank);
    }
    out.pop();
    out
}

/// The box help is drawn in, for a terminal `size`.
fn area(size: (u16, u16), lines: usize) -> Rect {
    let full = Rect::new(0, 0, size.0, size.1);
    overlay_box(full, lines as u16 + 2)
}

/// Lines that fit inside the box.
fn rows(model: &Model, lines: usize) -> usize {
    area(model.size, lines).height.saturating_sub(2) as usize
}

pub fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let Some(action) = action else { return Vec::new() };
    if matches!(action, Action::Close | Action::Help) {
        model.help = None;
        return Vec::new();
    }
    let total = lines(model).len();
    let rows = rows(model, total);
    if let (Some(delta), Some(view)) = (movement(action, rows), model.help.as_mut()) {
        let last = total.saturating_sub(rows);
        view.scroll = moved(view.scroll, delta, last + 1);
    }
    Vec::new()
}

pub fn draw(model: &Model, view: &HelpView, frame: &mut Frame, t: Theme) {
    let all = lines(model);
    let box_area = area(model.size, all.len());
    let rows = box_area.height.saturating_sub(2) as usize;
    let hidden = all.len() > rows;
    let scroll = view.scroll.min(all.len().saturating_sub(rows));
    let title = if hidden {
        format!(
            " Keys (your keymap) · {}–{} of {} · j/k scroll ",
            scroll + 1,
            (scroll + rows).min(all.len()),
            all.len()
        )
    } else {
        " Keys (your keymap) ".to_string()
    };
    let shown: Vec<Line> = all
        .into_iter()
        .skip(scroll)
        .take(rows)
        .map(|l| match l {
            HelpLine::Heading(h) => Line::from(Span::styled(format!("── {h}"), t.heading())),
            HelpLine::Key(keys, what) => {
                Line::from(vec![Span::styled(format!("  {keys:<16} "), t.accent()), Span::raw(what)])
            }
            HelpLine::Text(text) => Line::from(Span::styled(format!("  {text}"), t.dim())),
            HelpLine::Blank => Line::raw(""),
        })
        .collect();
    frame.render_widget(Clear, box_area);
    frame.render_widget(Paragraph::new(shown).block(pane_block(title, true, t)), box_area);
}
