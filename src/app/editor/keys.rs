//! The editor screen's keys and replies: opening the form, its save
//! stages (preview, confirm, save, conflict, discard) — each step a `Cmd`
//! and its reply, the edits kept whatever happens.

use super::{Editor, Stage};
use crate::app::keymap::Action;
use crate::app::{Cmd, Model, Overlay, load_settings, may_modify, resolve_cmd};
use crate::domain::Setting;
use crate::domain::registry;
use crate::store::{Conflict, ImpactRow, Proposal};

pub(in crate::app) fn open_editor(model: &mut Model) -> Vec<Cmd> {
    let Some(account) = model.selected_account().cloned() else { return Vec::new() };
    let ty = model.current_type();
    let Some(spec) = registry::spec(&ty) else {
        model.notice = Some("unknown types are shown, not edited".into());
        return Vec::new();
    };
    if let Err(why) = may_modify(model, &account) {
        model.notice = Some(format!("read-only here: {why}"));
        return Vec::new();
    }
    if !model.is_loaded(account.id) {
        model.notice = Some("still loading this account".into());
        return Vec::new();
    }
    let base = model.world.settings.get(&(account.id, ty.clone())).cloned();
    let inherited = match &base {
        Some(_) => None,
        None => {
            let hop = crate::domain::resolve::resolve_type(&model.world, Some(&account), &ty);
            hop.answered_by.and_then(|slug| {
                let a = model.world.chain.iter().find(|e| e.slug == slug)?.account.as_ref()?;
                Some((slug, model.world.settings.get(&(a.id, ty.clone()))?.clone()))
            })
        }
    };
    let denied = (!account.status.grants_access()).then(|| account.status.as_str());
    let new = base.is_none();
    match Editor::open(spec, account, base, inherited) {
        Ok(mut e) => {
            if let (Some(status), true) = (denied, new) {
                e.message = Some(format!(
                    "⚠ this account is {status}: its users are denied (HasTenantAccess), so an override here serves nobody until it is active again"
                ));
            }
            model.overlay = Some(Overlay::Edit(Box::new(e)));
        }
        Err(why) => model.notice = Some(why),
    }
    Vec::new()
}

/// A dialog waiting for its reply: cancel stops waiting (the late reply is
/// dropped by its request id; a save that did commit shows up live).
pub(in crate::app) fn waiting_key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    if action != Some(Action::Cancel) {
        return Vec::new();
    }
    match &mut model.overlay {
        Some(Overlay::Edit(ed)) => {
            ed.stage = Stage::Editing;
            ed.message = Some("stopped waiting; if the save went through, the change will show".into());
        }
        Some(Overlay::Admin(view)) => {
            view.stage = crate::app::admin::AdminStage::Editing;
            view.message = Some("stopped waiting; if it went through, the change will show".into());
        }
        _ => model.overlay = None,
    }
    Vec::new()
}

pub(in crate::app) fn editor_key(model: &mut Model, key: &str, action: Option<Action>) -> Vec<Cmd> {
    let actor = model.session.access.operator.as_ref().map(|o| o.email.clone()).unwrap_or_default();
    let request = model.requests.issue();
    let Some(Overlay::Edit(ed)) = &mut model.overlay else { return Vec::new() };
    let mut cmds = Vec::new();
    match &mut ed.stage {
        Stage::Editing => match action {
            Some(Action::Cancel) => {
                if ed.is_dirty() {
                    ed.ask_discard(false);
                } else {
                    model.overlay = None;
                }
            }
            Some(Action::Save) => match ed.build() {
                Ok((config, is_active)) => {
                    let proposal = Proposal::Setting {
                        account_id: ed.account.id,
                        integration_type: ed.integration_type.clone(),
                        config: config.clone(),
                        is_active,
                    };
                    ed.pending = Some((config, is_active));
                    ed.stage = Stage::Previewing { request };
                    cmds.push(Cmd::Preview { request, proposal });
                }
                Err(why) => ed.message = Some(why),
            },
            Some(Action::ToggleActive) => ed.is_active = !ed.is_active,
            Some(Action::NextField) => ed.move_focus(1),
            Some(Action::PrevField) => ed.move_focus(-1),
            Some(Action::RemoveField) => ed.remove_focused(),
            _ => ed.type_key(key),
        },
        Stage::Confirm { .. } => match action {
            Some(Action::Confirm) => {
                if let Some((config, is_active)) = ed.pending.clone() {
                    ed.stage = Stage::Saving { request };
                    // A revert is recorded as one, as an overwrite is.
                    let actor = match ed.revert_of {
                        Some(id) => format!("{actor} (revert of #{id})"),
                        None => actor,
                    };
                    cmds.push(Cmd::Save {
                        request,
                        actor,
                        account: ed.account.slug.clone(),
                        integration_type: ed.integration_type.clone(),
                        expected_version: ed.expected_version(),
                        config,
                        is_active,
                    });
                }
            }
            Some(Action::Back) => ed.stage = Stage::Editing,
            _ => {}
        },
        Stage::Conflict { asking: asking @ false, .. } => match action {
            // Reload: drop the edits, show what is stored now.
            Some(Action::Reload) => {
                let id = ed.account.id;
                model.overlay = None;
                model.notice = Some("reloaded; your edits were discarded".into());
                return vec![load_settings(model, vec![id])];
            }
            // Overwrite asks first: it replaces what someone else just saved.
            Some(Action::Overwrite) => *asking = true,
            Some(Action::KeepEditing) => ed.stage = Stage::Editing,
            _ => {}
        },
        Stage::Conflict { asking, theirs, .. } => match action {
            // Overwrite: save over theirs, recorded as an overwrite.
            Some(Action::Confirm) => {
                let theirs = theirs.clone();
                if let Some((config, is_active)) = ed.rebased(theirs.as_ref()) {
                    let expected = theirs.as_ref().map(|s| s.version).unwrap_or(0);
                    ed.stage = Stage::Saving { request };
                    cmds.push(Cmd::Save {
                        request,
                        actor: format!("{actor} (overwrite)"),
                        account: ed.account.slug.clone(),
                        integration_type: ed.integration_type.clone(),
                        expected_version: expected,
                        config,
                        is_active,
                    });
                }
            }
            Some(Action::Cancel) => *asking = false,
            _ => {}
        },
        Stage::Discard { quit, .. } => match action {
            Some(Action::Confirm) => {
                if *quit {
                    model.quit = true;
                } else {
                    model.overlay = None;
                    model.notice = Some("edits discarded".into());
                }
            }
            Some(Action::Cancel) => ed.back_from_discard(),
            _ => {}
        },
        Stage::Previewing { .. } | Stage::Saving { .. } => return waiting_key(model, action),
    }
    cmds
}

pub(in crate::app) fn on_previewed(model: &mut Model, request: u64, impact: Vec<ImpactRow>) -> Vec<Cmd> {
    if let Some(Overlay::Edit(ed)) = &mut model.overlay
        && matches!(ed.stage, Stage::Previewing { request: r } if r == request)
        && let Some((config, is_active)) = ed.pending.clone()
    {
        let changes = ed.changes(&config, is_active);
        ed.stage = Stage::Confirm { changes, impact };
    }
    Vec::new()
}

pub(in crate::app) fn on_saved(
    model: &mut Model,
    request: u64,
    result: Result<Option<Setting>, Box<Conflict>>,
) -> Vec<Cmd> {
    use crate::domain::text::visible_short;
    match &mut model.overlay {
        Some(Overlay::Edit(ed)) if matches!(ed.stage, Stage::Saving { request: r } if r == request) => match result {
            Ok(saved) => {
                let id = ed.account.id;
                model.notice = Some(format!(
                    "saved {} {} v{}",
                    visible_short(&ed.account.slug, 40),
                    ed.integration_type,
                    saved.as_ref().map(|s| s.version).unwrap_or_default()
                ));
                model.overlay = None;
                let mut cmds = vec![load_settings(model, vec![id])];
                cmds.extend(resolve_cmd(model));
                cmds
            }
            Err(conflict) => {
                let id = ed.account.id;
                let theirs = model.world.settings.get(&(id, ed.integration_type.clone())).cloned();
                ed.stage = Stage::Conflict { conflict, theirs, asking: false };
                // Fetch what they saved, to show it against ours.
                vec![load_settings(model, vec![id])]
            }
        },
        _ => Vec::new(),
    }
}

/// Settings arrived: a conflict shows, and overwrites, the newest stored
/// version.
pub(in crate::app) fn settings_loaded(model: &mut Model, account_ids: &[i64]) {
    if let Some(Overlay::Edit(ed)) = &mut model.overlay
        && let Stage::Conflict { theirs, .. } = &mut ed.stage
        && account_ids.contains(&ed.account.id)
    {
        *theirs = model.world.settings.get(&(ed.account.id, ed.integration_type.clone())).cloned();
    }
}

/// A preview or save failed: back to the form, edits intact, to save again
/// later. True when the request was the editor's.
pub(in crate::app) fn failed(model: &mut Model, request: u64, error: &str) -> bool {
    match &mut model.overlay {
        Some(Overlay::Edit(ed)) if matches!(ed.stage, Stage::Previewing { request: r } | Stage::Saving { request: r } if r == request) =>
        {
            ed.stage = Stage::Editing;
            ed.message = Some(format!("not saved: {}", crate::domain::text::visible_short(error, 120)));
            true
        }
        _ => false,
    }
}

/// Whether an editor action can do something now (for the footer).
pub(in crate::app) fn available(ed: &Editor, action: Action) -> bool {
    match action {
        Action::RemoveField => ed.fields.get(ed.focus).is_some_and(|f| f.stored() || !f.text().is_empty()),
        _ => true,
    }
}
