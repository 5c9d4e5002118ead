//! The mouse, when the console takes it (`--no-mouse`, `mouse = false`
//! leave it to the terminal): a click selects an account row and focuses
//! the pane under it, a click on a tab's title opens that tab, the wheel
//! scrolls the list or pane under the pointer (three rows a notch) and the
//! lists of the palette, pickers, help, the message log, audit and lint; a
//! click on a row of the palette, a picker or lint selects it, and a click
//! on the row already selected (a double-click) opens it as enter would.
//! Hit-testing uses the view's own layout (where each list was drawn).

use super::follow::follow;
use super::keymap::Action;
use super::model::{Cmd, Model, Overlay, load_visible};
use super::state::main::Pane;
pub use super::state::mouse::*;
use super::{main_screen, palette};
use crate::domain::registry;

/// Rows one wheel notch moves.
const NOTCH: isize = 3;

pub(super) fn on_mouse(model: &mut Model, m: Mouse) -> Vec<Cmd> {
    // Like a key: a revealed key hides, a notice goes.
    if model.revealed.take().is_some() {
        return Vec::new();
    }
    model.notice = None;
    let wheel = match m.kind {
        MouseKind::Click => None,
        MouseKind::ScrollUp => Some(Action::Up),
        MouseKind::ScrollDown => Some(Action::Down),
    };
    if model.help.is_some() {
        if let Some(action) = wheel {
            for _ in 0..NOTCH {
                super::help::key(model, Some(action));
            }
        }
        return Vec::new();
    }
    if model.messages.open {
        if let Some(action) = wheel {
            for _ in 0..NOTCH {
                super::messages::key(model, Some(action));
            }
        }
        return Vec::new();
    }
    match &mut model.overlay {
        Some(Overlay::Palette(_)) => match wheel {
            Some(action) => {
                let mut cmds = Vec::new();
                for _ in 0..NOTCH {
                    let outcome = palette::key(model, "", Some(action));
                    cmds.extend(follow(model, outcome));
                }
                cmds
            }
            None => {
                let outcome = palette::click(model, m.column, m.row);
                follow(model, outcome)
            }
        },
        Some(Overlay::Picker(_)) => match wheel {
            Some(action) => {
                let mut cmds = Vec::new();
                for _ in 0..NOTCH {
                    cmds.extend(super::picker::key(model, "", Some(action)));
                }
                cmds
            }
            None => super::picker::click(model, m.column, m.row),
        },
        Some(Overlay::Audit(_)) | Some(Overlay::Lint(_)) => match wheel {
            Some(action) => {
                let mut cmds = Vec::new();
                for _ in 0..NOTCH {
                    cmds.extend(match &model.overlay {
                        Some(Overlay::Audit(_)) => {
                            let outcome = super::audit::key(model, Some(action));
                            follow(model, outcome)
                        }
                        _ => super::lint_view::key(model, Some(action)),
                    });
                }
                cmds
            }
            None if matches!(model.overlay, Some(Overlay::Lint(_))) => super::lint_view::click(model, m.column, m.row),
            None => {
                let outcome = super::audit::click(model, m.column, m.row);
                follow(model, outcome)
            }
        },
        // Forms and questions are answered with keys only.
        Some(_) => Vec::new(),
        None => main(model, m, wheel),
    }
}

/// The main screen: which pane is under the pointer, and what it does there.
fn main(model: &mut Model, m: Mouse, wheel: Option<Action>) -> Vec<Cmd> {
    let (a, s, r) = super::widgets::panes(model.size, model.resolve.show_permissions);
    let at = |area: ratatui::layout::Rect| {
        m.column >= area.x && m.column < area.right() && m.row >= area.y && m.row < area.bottom()
    };
    let pane = if at(a) {
        Pane::Accounts
    } else if s.height > 0 && at(s) {
        Pane::Setting
    } else if at(r) {
        Pane::Resolve
    } else {
        return Vec::new();
    };
    // A click or the wheel in the list ends typing a filter (it stays).
    model.accounts.filtering = false;
    model.main.focus = pane;
    if let Some(action) = wheel {
        let mut cmds = Vec::new();
        for _ in 0..NOTCH {
            let outcome = main_screen::key(model, Some(action));
            cmds.extend(follow(model, outcome));
        }
        return cmds;
    }
    match pane {
        Pane::Accounts => {
            // Inside the border, below the filter line.
            let first = a.y + 2;
            let rows = model.account_rows();
            if m.row < first || (m.row - first) as usize >= rows {
                return Vec::new();
            }
            let index = model.accounts.scroll_for(rows) + (m.row - first) as usize;
            if index >= model.accounts.len() {
                return Vec::new();
            }
            if index != model.accounts.selected_index() {
                model.accounts.move_to(index);
                model.main.setting_scroll = 0;
            }
            load_visible(model)
        }
        Pane::Setting if m.row == s.y => {
            if let Some(tab) = tab_at(model, m.column.saturating_sub(s.x)) {
                model.main.tab = tab;
                model.main.setting_scroll = 0;
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// The tab whose title is at `x` cells from the setting pane's left edge:
/// the title starts after the corner and a space, "N Label" each, " │ "
/// between (as `setting_pane::draw` writes it).
fn tab_at(model: &Model, x: u16) -> Option<usize> {
    let mut from = 2u16;
    for (i, ty) in model.tabs().iter().enumerate() {
        let label = registry::spec(ty)
            .map(|s| s.label.to_string())
            .unwrap_or_else(|| crate::domain::text::visible_short(ty, 20));
        let width = ratatui::text::Span::raw(format!("{} {label}", i + 1)).width() as u16;
        if x >= from && x < from + width {
            return Some(i);
        }
        from += width + 3;
    }
    None
}
