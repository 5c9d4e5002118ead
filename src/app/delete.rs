//! The delete screen: "Delete this override?", with the impact preview of
//! the deletion (who falls back to which account), asked from the store as
//! the dialog opens; Cancel is focused until moved. The delete is
//! version-checked like a save. Its state, its keys, its replies and its
//! view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::access::may_modify;
use super::keymap::Action;
use super::model::{Cmd, Model, Overlay, load_settings, resolve_cmd};
use super::scroll::{self, Scroll};
pub use super::state::delete::*;
use super::widgets::{Theme, dialog, overlay_box, wrap_lines};
use crate::domain::Setting;
use crate::domain::change::{Conflict, ImpactRow, Proposal};
use crate::domain::text::visible_short;
use crate::preview;

pub(super) fn open(model: &mut Model) -> Vec<Cmd> {
    let Some(account) = model.selected_account().cloned() else { return Vec::new() };
    let ty = model.current_type();
    let Some(own) = model.world.settings.get(&(account.id, ty.clone())) else {
        model.notice = Some("nothing to delete: this account has no own setting of this type".into());
        return Vec::new();
    };
    let version = own.version;
    if let Err(why) = may_modify(model, &account) {
        model.notice = Some(format!("read-only here: {why}"));
        return Vec::new();
    }
    // The impact preview, as for any save: who falls back to what.
    let preview = model.requests.issue();
    let proposal = Proposal::Delete { account_id: account.id, integration_type: ty.clone() };
    model.overlay = Some(Overlay::ConfirmDelete(DeleteDialog {
        account: account.slug,
        integration_type: ty,
        version,
        delete_focused: false,
        request: None,
        preview,
        impact: None,
    }));
    vec![Cmd::Preview { request: preview, proposal }]
}

pub(super) fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let actor = model.session.access.operator.as_ref().map(|o| o.email.clone());
    let request = model.requests.issue();
    let Some(Overlay::ConfirmDelete(d)) = &mut model.overlay else {
        return Vec::new();
    };
    match action {
        Some(Action::Cancel) => model.overlay = None,
        Some(Action::Switch) => d.delete_focused = !d.delete_focused,
        Some(Action::Accept) if !d.delete_focused => model.overlay = None,
        Some(Action::Accept) => {
            let Some(actor) = actor else { return Vec::new() };
            let cmd = Cmd::Delete {
                request,
                actor,
                account: d.account.clone(),
                integration_type: d.integration_type.clone(),
                expected_version: d.version,
            };
            d.request = Some(request);
            return vec![cmd];
        }
        _ => {}
    }
    Vec::new()
}

/// The impact preview arrived.
pub(super) fn previewed(model: &mut Model, request: u64, impact: Vec<ImpactRow>) -> Vec<Cmd> {
    if let Some(Overlay::ConfirmDelete(d)) = &mut model.overlay
        && d.preview == request
    {
        d.impact = Some(impact);
    }
    Vec::new()
}

/// The delete went through, or someone changed the setting first.
pub(super) fn deleted(model: &mut Model, request: u64, result: Result<Option<Setting>, Box<Conflict>>) -> Vec<Cmd> {
    let Some(Overlay::ConfirmDelete(d)) = &model.overlay else { return Vec::new() };
    if d.request != Some(request) {
        return Vec::new();
    }
    let slug = d.account.clone();
    model.notice = Some(match &result {
        Ok(_) => format!("deleted {} {}", visible_short(&slug, 40), d.integration_type),
        Err(c) => format!("not deleted: {c}"),
    });
    model.overlay = None;
    let id = model.accounts.selected().filter(|e| e.account.slug == slug).map(|e| e.account.id);
    let mut cmds: Vec<Cmd> = id.map(|id| load_settings(model, vec![id])).into_iter().collect();
    cmds.extend(resolve_cmd(model));
    cmds
}

/// A request of the dialog failed: Some(true) when it was the delete (the
/// dialog waits no more), Some(false) when it was the preview (the dialog
/// still works and says the preview is missing), None when not ours.
pub(super) fn failed(model: &mut Model, request: u64, error: &str) -> Option<bool> {
    let Some(Overlay::ConfirmDelete(d)) = &mut model.overlay else { return None };
    if d.request == Some(request) {
        d.request = None;
        model.notice = Some(format!("not deleted: {}", visible_short(error, 120)));
        return Some(true);
    }
    if d.preview == request {
        d.preview = 0;
        model.notice = Some(format!("no impact preview: {}", visible_short(error, 120)));
        return Some(false);
    }
    None
}

pub fn draw(d: &DeleteDialog, scroll: &Scroll, frame: &mut Frame, area: Rect, t: Theme) {
    let button = |label: &str, focused: bool| {
        if focused { Span::styled(format!("[ {label} ]"), t.selected(true)) } else { Span::raw(format!("[ {label} ]")) }
    };
    let box_area = overlay_box(area, area.height.saturating_sub(2));
    let width = box_area.width.saturating_sub(2);
    let head = wrap_lines(
        vec![
            Line::from(format!(
                "Delete {}'s own {} setting (v{})?",
                visible_short(&d.account, 30),
                visible_short(&d.integration_type, 20),
                d.version
            )),
            Line::from(Span::styled("Its users fall back to the chain. The audit log keeps the old values.", t.dim())),
            Line::raw(""),
        ],
        width,
    );
    let body = match &d.impact {
        Some(rows) => scroll::styled(&preview::impact(rows), width, t),
        None => vec![Line::from(Span::styled("computing the impact… (Delete works without it)", t.dim()))],
    };
    let mut foot = vec![
        Line::raw(""),
        Line::from(vec![button("Cancel", !d.delete_focused), Span::raw("   "), button("Delete", d.delete_focused)]),
    ];
    if d.request.is_some() {
        foot.push(Line::from(Span::styled("deleting…", t.dim())));
    }
    // As high as it needs, up to the terminal's height; the impact scrolls.
    let needed = (head.len() + body.len() + foot.len() + 2) as u16;
    let box_area = overlay_box(area, needed.min(area.height.saturating_sub(2)));
    let inner = dialog(frame, box_area, " Delete override ".into(), t);
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(head.len() as u16),
        Constraint::Min(1),
        Constraint::Length(foot.len() as u16),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(head), top);
    scroll::render(frame, middle, body, scroll, t);
    frame.render_widget(Paragraph::new(foot), bottom);
}
