//! The editor screen's keys and replies: opening the form, its save
//! stages (preview, confirm, save, conflict, discard) — each step a `Cmd`
//! and its reply, the edits kept whatever happens.

use crate::app::access::may_modify;
use crate::app::keymap::Action;
use crate::app::model::{Cmd, Model, Overlay, load_settings, resolve_cmd};
use crate::app::state::editor::{Editor, Stage, Underneath};
use crate::domain::Setting;
use crate::domain::change::{Conflict, ImpactRow, Proposal};
use crate::domain::merge::Side;
use crate::domain::registry;
use crate::domain::text::visible_short;

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
    // A new override is prefilled from the setting it replaces — only one
    // this operator may view under the policy, and never with a system
    // account's endpoint (the tenant's key would go there).
    let mut left_out = Vec::new();
    let mut hidden = None;
    let inherited = match &base {
        Some(_) => None,
        None => {
            let hop = crate::domain::resolve::resolve_type(&model.world, Some(&account), &ty);
            let viewable = |slug: &String| match crate::app::access::may_view(model, slug) {
                Ok(_) => true,
                Err(why) => {
                    hidden = Some(format!(
                        "nothing prefilled: under this policy you may not view {}'s settings ({why} fails)",
                        visible_short(slug, 30)
                    ));
                    false
                }
            };
            hop.answered_by.filter(viewable).and_then(|slug| {
                let a = model.world.chain.iter().find(|e| e.slug == slug)?.account.as_ref()?;
                let mut s = model.world.settings.get(&(a.id, ty.clone()))?.clone();
                if let Some(config) = s.config.as_object_mut() {
                    left_out = config.keys().filter(|k| is_endpoint_field(k)).cloned().collect();
                    config.retain(|k, _| !is_endpoint_field(k));
                }
                Some((slug, s))
            })
        }
    };
    let denied = (!account.status.grants_access()).then(|| account.status.as_str());
    let new = base.is_none();
    match Editor::open(spec, account, base, inherited) {
        Ok(mut e) => {
            e.message = hidden;
            if let (false, Some(from)) = (left_out.is_empty(), &e.inherited_from) {
                e.message = Some(format!(
                    "{} not copied from {}: a system account's endpoint stays its own (type one to set yours)",
                    left_out.join(", "),
                    visible_short(from, 30)
                ));
            }
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

/// A field naming where requests go (`base_url`, `endpoint`, `host`…):
/// never copied from a system account into a tenant's override.
fn is_endpoint_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["url", "endpoint", "host"].iter().any(|w| name.contains(w))
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
            Some(Action::Save) => match ed.restore_check().and_then(|()| ed.build()) {
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
                    let actor = match (ed.revert_of, &ed.restore_of) {
                        (_, Some(r)) => format!("{actor} ({})", crate::domain::restore::note_before_entry(r.entry)),
                        (Some(id), None) => format!("{actor} (revert of #{id})"),
                        (None, None) => actor,
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
        Stage::Conflict { asking: asking @ false, theirs, conflict } => match action {
            // Reload drops the edits: it asks first.
            Some(Action::Reload) => ed.ask_reload(),
            // Overwrite asks first: it replaces what someone else just saved.
            Some(Action::Overwrite) => *asking = true,
            Some(Action::Merge) => {
                let (theirs, conflict) = (theirs.clone(), conflict.clone());
                return merge(ed, theirs, conflict, request);
            }
            // Your edits, rebased on their version: a save conflicts again
            // only if the row changes again.
            Some(Action::KeepEditing) => {
                let theirs = theirs.clone();
                keep_editing(ed, theirs);
            }
            _ => {}
        },
        Stage::Merging { choices, focus, .. } => match action {
            Some(Action::Switch) => {
                if let Some(c) = choices.get_mut(*focus) {
                    *c = if *c == Side::Theirs { Side::Yours } else { Side::Theirs };
                }
            }
            Some(Action::Down) => *focus = (*focus + 1).min(choices.len().saturating_sub(1)),
            Some(Action::Up) => *focus = focus.saturating_sub(1),
            Some(Action::Accept) => {
                let Stage::Merging { theirs, merge, active, choices, .. } =
                    std::mem::replace(&mut ed.stage, Stage::Editing)
                else {
                    return cmds;
                };
                let config = merge.settle(|field| {
                    let i = merge.clashes.iter().position(|c| c.field == field).unwrap_or(0);
                    choices.get(i).copied().unwrap_or(Side::Theirs)
                });
                return merged(ed, &theirs, config, active, request);
            }
            Some(Action::Cancel) => {
                if let Stage::Merging { conflict, theirs, .. } = std::mem::replace(&mut ed.stage, Stage::Editing) {
                    ed.stage = Stage::Conflict { conflict, theirs: Some(*theirs), asking: false };
                }
            }
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
        Stage::Discard { quit, reload, .. } => match action {
            // Reload: drop the edits, show what is stored now.
            Some(Action::Confirm) if *reload => {
                let id = ed.account.id;
                model.overlay = None;
                model.notice = Some("reloaded; your edits were discarded".into());
                return vec![load_settings(model, vec![id])];
            }
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

/// `m` on a conflict: your changed fields on top of their row. Nothing
/// both changed: straight to the save preview (checked against their
/// version). Otherwise each such field is chosen first.
fn merge(ed: &mut Editor, theirs: Option<crate::domain::Setting>, conflict: Box<Conflict>, request: u64) -> Vec<Cmd> {
    let Some(theirs) = theirs else {
        ed.message = Some("they deleted it: nothing to merge into (o saves yours anew, r reloads)".into());
        return Vec::new();
    };
    if theirs.version == ed.expected_version() {
        ed.message = Some("their version is still loading; press m again".into());
        return Vec::new();
    }
    let Some((merge, active)) = ed.merge_with(&theirs) else {
        ed.message = Some("a config that is not an object cannot be merged field by field".into());
        return Vec::new();
    };
    if merge.clashes.is_empty() {
        return merged(ed, &theirs, merge.merged, active, request);
    }
    let choices = vec![Side::Yours; merge.clashes.len()];
    ed.stage = Stage::Merging { conflict, theirs: Box::new(theirs), merge, active, choices, focus: 0 };
    Vec::new()
}

/// The merged config: the form is put on their version and the result
/// goes through the normal preview, then the version-checked save.
fn merged(
    ed: &mut Editor,
    theirs: &crate::domain::Setting,
    config: serde_json::Map<String, serde_json::Value>,
    active: bool,
    request: u64,
) -> Vec<Cmd> {
    if let Err(why) = ed.rebase(theirs, config.clone(), active) {
        ed.message = Some(why);
        return Vec::new();
    }
    let config = serde_json::Value::Object(config);
    let proposal = Proposal::Setting {
        account_id: ed.account.id,
        integration_type: ed.integration_type.clone(),
        config: config.clone(),
        is_active: active,
    };
    ed.message = Some(format!("merged onto their {}: your changed fields on top of theirs", theirs.version_label()));
    ed.pending = Some((config, active));
    ed.stage = Stage::Previewing { request };
    vec![Cmd::Preview { request, proposal }]
}

/// `k` on a conflict: back to the form with your edits rebased on their
/// version (a field both changed keeps yours).
fn keep_editing(ed: &mut Editor, theirs: Option<crate::domain::Setting>) {
    let rebased = theirs.as_ref().and_then(|t| Some((t, ed.merge_with(t)?)));
    match rebased {
        Some((theirs, (merge, active))) if theirs.version != ed.expected_version() => {
            let config = merge.settle(|_| Side::Yours);
            match ed.rebase(theirs, config, active) {
                Ok(()) => {
                    ed.message =
                        Some(format!("your edits, now on their {}: a save checks against it", theirs.version_label()))
                }
                Err(why) => {
                    ed.stage = Stage::Editing;
                    ed.message = Some(why);
                }
            }
        }
        _ => ed.stage = Stage::Editing,
    }
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
    row_moved(model);
}

/// The open form's row as loaded now: when it moved past the version the
/// form opened (another client saved), the form says so at once.
pub(in crate::app) fn row_moved(model: &mut Model) {
    let Some(Overlay::Edit(ed)) = &mut model.overlay else { return };
    let now = model.world.settings.get(&(ed.account.id, ed.integration_type.clone()));
    // Only rows in memory speak: an account not loaded says nothing.
    if !model.cache.loaded.contains(&ed.account.id) && !model.world.is_system(ed.account.id) {
        return;
    }
    let version = now.map(|s| s.version).unwrap_or(0);
    if version == ed.expected_version() {
        ed.underneath = None;
        return;
    }
    if ed.underneath.as_ref().is_some_and(|u| u.version == version) {
        return;
    }
    let by = now.and_then(|s| s.updated_by.clone());
    ed.underneath = Some(Underneath { version, actor: by, at: now.and_then(|s| s.updated_at) });
}

/// The audit entry behind a live change: the open form's row names who.
pub(in crate::app) fn heard(model: &mut Model, entry: &crate::domain::audit::AuditEntry) {
    if let Some(Overlay::Edit(ed)) = &mut model.overlay
        && let Some(u) = &mut ed.underneath
        && entry.account.as_deref() == Some(ed.account.slug.as_str())
        && entry.integration_type.as_deref() == Some(ed.integration_type.as_str())
    {
        u.actor = Some(entry.actor.clone());
        u.at = Some(entry.at);
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
