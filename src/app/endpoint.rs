//! The insecure-endpoint screen: a connection test would send the key to
//! plain http, a URL with credentials, or a loopback, link-local or private
//! address. Nothing was sent; the dialog names the endpoint and why — yes
//! tests again with that endpoint confirmed (the runtime checks it has not
//! changed meanwhile), any other key cancels. Its state, its keys, its view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::keymap::{Action, Screen};
use super::model::{Cmd, Model, Overlay};
use super::request::Kind;
pub use super::state::endpoint::*;
use super::widgets::{Theme, dialog};
use crate::connection::Insecure;
use crate::domain::text::visible_short;

/// Yes sends the test again, this endpoint confirmed; any other key cancels
/// (the test's line keeps saying why nothing was sent).
pub(super) fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let Some(Overlay::ConfirmEndpoint(dialog)) = model.overlay.take() else { return Vec::new() };
    if action != Some(Action::Confirm) {
        return Vec::new();
    }
    let request = model.requests.start(Kind::ConnectionTest);
    if let Some(t) = &mut model.last_test {
        t.problem = None;
        t.outcome = None;
        t.at = model.now;
    }
    vec![Cmd::TestConnection {
        request,
        actor: dialog.actor,
        account: dialog.account,
        provider: dialog.provider,
        insecure: Insecure::Confirmed(dialog.refusal),
    }]
}

pub fn draw(model: &Model, view: &EndpointDialog, frame: &mut Frame, area: Rect, t: Theme) {
    // A letter reads best in a sentence ("y send anyway / n cancel").
    let keys = |action| {
        let keys = model.keymap.keys(Screen::Confirm, action);
        let letter = keys.iter().find(|k| k.chars().count() == 1).or(keys.first());
        letter.map(|k| k.to_string()).unwrap_or_else(|| "?".into())
    };
    let lines = vec![
        Line::from(Span::styled(format!("{}.", view.refusal.message()), t.warn())),
        Line::from(format!(
            "Testing {}'s {} key sends it to that endpoint. Nothing has been sent yet.",
            visible_short(&view.account, 60),
            visible_short(&view.provider, 40)
        )),
        Line::from(Span::styled(
            format!("{} send anyway / {} cancel", keys(Action::Confirm), keys(Action::Cancel)),
            t.heading(),
        )),
    ];
    let (box_area, lines) = super::widgets::question_box(area, 72, 120, lines);
    let inner = dialog(frame, box_area, " Send the key there? ".into(), t);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
