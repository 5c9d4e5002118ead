//! The router's other half: it follows what a screen's key leaves to it
//! (`Outcome`): it opens the screen a main-screen action asks for, runs a
//! main-screen action for the palette, travels in time for the audit view,
//! quits. So no screen calls another.

use super::keymap::Action;
use super::model::{Cmd, Model, Outcome, Overlay};
use super::state::editor::Stage;
use super::{
    admin, audit, connection_test, delete, editor, lint_view, main_screen, palette, picker, reveal, time_travel,
};

/// Do what `outcome` asks; the work to run.
pub(super) fn follow(model: &mut Model, outcome: Outcome) -> Vec<Cmd> {
    match outcome {
        Outcome::Done(cmds) => cmds,
        Outcome::Open(action) => open(model, action),
        Outcome::Main(action) => {
            let next = main_screen::key(model, Some(action));
            follow(model, next)
        }
        Outcome::Quit => quit(model),
        Outcome::Travel(moment) => time_travel::travel(model, moment),
    }
}

/// Open the screen of a main-screen action.
fn open(model: &mut Model, action: Action) -> Vec<Cmd> {
    match action {
        Action::Edit => editor::keys::open_editor(model),
        Action::Reveal => reveal::open(model),
        Action::Audit => audit::open(model),
        Action::ChainPolicy => admin::open(model),
        Action::Lint => lint_view::open(model),
        Action::TestConnection => connection_test::test_connection(model),
        Action::Delete => delete::open(model),
        Action::Palette => palette::open(model),
        Action::AsOf => time_travel::open_picker(model),
        Action::KeyHistory => time_travel::open_key_history(model),
        Action::PickUser => picker::open_users(model),
        Action::PickFunction => picker::open_functions(model),
        _ => Vec::new(),
    }
}

/// Quit, unless that would throw away edits: then ask first.
pub(super) fn quit(model: &mut Model) -> Vec<Cmd> {
    if let Some(Overlay::Edit(ed)) = &mut model.overlay
        && ed.is_dirty()
        && !matches!(ed.stage, Stage::Discard { .. })
    {
        model.help = None;
        ed.ask_discard(true);
        return Vec::new();
    }
    if admin::ask_before_quitting(model) {
        model.help = None;
        return Vec::new();
    }
    model.quit = true;
    Vec::new()
}
