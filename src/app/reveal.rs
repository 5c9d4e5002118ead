//! The reveal screen: "Show this key in clear?" — yes asks the database,
//! which checks the right and records the reveal before handing the key
//! over; the key then shows in the setting pane until the next key or ten
//! seconds. Its state, its keys, its reply and its view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::access::may_modify;
use super::keymap::Action;
use super::model::{Cmd, Model, Overlay};
pub use super::state::reveal::*;
use super::widgets::{Theme, dialog, question_box};
use crate::domain::Secret;
use crate::domain::text::visible_short;

pub(super) fn open(model: &mut Model) -> Vec<Cmd> {
    let Some(account) = model.selected_account().cloned() else { return Vec::new() };
    let ty = model.current_type();
    let has_key = model
        .world
        .settings
        .get(&(account.id, ty.clone()))
        .and_then(|s| s.config.get("apiKey"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|k| !k.is_empty());
    if !has_key {
        model.notice = Some("this account has no own key of this type to reveal".into());
        return Vec::new();
    }
    // Seeing a key in clear is for those who may change it (and needs an
    // operator to record the reveal under).
    if let Err(why) = may_modify(model, &account) {
        model.notice = Some(format!("revealing needs the right to modify this setting: {why}"));
        return Vec::new();
    }
    model.overlay = Some(Overlay::ConfirmReveal(RevealDialog {
        account: account.slug,
        account_id: account.id,
        integration_type: ty,
        request: None,
    }));
    Vec::new()
}

/// "Reveal this key?": yes reveals (audited by the database); any other
/// key cancels, as the dialog says.
pub(super) fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let actor = model.session.access.operator.as_ref().map(|o| o.email.clone());
    let next = model.requests.issue();
    let Some(Overlay::ConfirmReveal(dialog)) = &mut model.overlay else {
        return Vec::new();
    };
    match action {
        Some(Action::Confirm) => {
            let Some(actor) = actor else { return Vec::new() };
            let cmd = Cmd::Reveal {
                request: next,
                actor,
                account: dialog.account.clone(),
                integration_type: dialog.integration_type.clone(),
            };
            dialog.request = Some(next);
            vec![cmd]
        }
        _ => {
            model.overlay = None;
            Vec::new()
        }
    }
}

/// The key arrived (already recorded): shown for ten seconds.
pub(super) fn revealed(model: &mut Model, request: u64, secret: Option<Secret>) -> Vec<Cmd> {
    if let Some(Overlay::ConfirmReveal(dialog)) = &model.overlay
        && dialog.request == Some(request)
    {
        let (account_id, integration_type) = (dialog.account_id, dialog.integration_type.clone());
        model.overlay = None;
        match secret {
            Some(secret) => {
                model.revealed = Some(Revealed {
                    account_id,
                    integration_type,
                    secret,
                    until: model.now + chrono::Duration::seconds(10),
                })
            }
            None => model.notice = Some("no key to reveal".into()),
        }
    }
    Vec::new()
}

/// The reveal was refused or failed: the dialog closes and says why.
pub(super) fn failed(model: &mut Model, request: u64, error: &str) -> bool {
    match &model.overlay {
        Some(Overlay::ConfirmReveal(dialog)) if dialog.request == Some(request) => {
            model.overlay = None;
            model.notice = Some(format!("not revealed: {}", visible_short(error, 120)));
            true
        }
        _ => false,
    }
}

pub fn draw(view: &RevealDialog, frame: &mut Frame, area: Rect, t: Theme) {
    let lines = vec![
        Line::from(format!(
            "Show {}'s {} key in clear?",
            visible_short(&view.account, 60),
            visible_short(&view.integration_type, 40)
        )),
        Line::from(Span::styled("The reveal is recorded in the audit log under your name.", t.warn())),
        Line::from(Span::styled("It hides again on the next key or after 10 seconds.", t.dim())),
        Line::from(Span::styled("Any key but yes cancels.", t.dim())),
    ];
    let (box_area, lines) = question_box(area, 64, 110, lines);
    let inner = dialog(frame, box_area, " Reveal key ".into(), t);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
