//! Live updates: what other clients change reaches the console through
//! `NOTIFY keyfall_changes`. `update` only records a change (`Pending`);
//! the next tick reloads what the changes touched that is in memory (or
//! everything, for the chain, the policy, users, accounts or a bulk write),
//! re-resolves, and reads the audit entry that names who did it.

use std::collections::HashSet;

use super::model::{Cmd, Model, Overlay, load_settings, resolve_cmd};
use crate::domain::audit::AuditEntry;
use crate::domain::change::Change;

pub(super) fn note_change(model: &mut Model, change: Change) {
    let chain_ids: HashSet<i64> = model.world.chain.iter().filter_map(|e| e.account.as_ref().map(|a| a.id)).collect();
    match (change.table.as_str(), change.account_id, change.bulk) {
        ("integration_settings", Some(id), None) if !chain_ids.contains(&id) => {
            model.pending.accounts.insert(id);
        }
        _ => model.pending.everything = true,
    }
    if change.audit_id.is_some() {
        model.pending.audit = change.audit_id;
    }
}

/// Reload what the pending changes touched that is in memory, re-resolve,
/// and fetch the audit entry that names the actor.
pub(super) fn apply_pending(model: &mut Model) -> Vec<Cmd> {
    if model.pending.is_empty() {
        return Vec::new();
    }
    let pending = std::mem::take(&mut model.pending);
    // An open lint list is not re-run on every change (a whole-database
    // read): it says it is stale, and the operator reads it again.
    if let Some(Overlay::Lint(view)) = &mut model.overlay {
        view.stale = true;
    }
    // An open audit view follows its setting's changes.
    let mut cmds = super::audit::follow(model, |id| pending.everything || pending.accounts.contains(&id));
    if pending.everything {
        model.requests.refresh();
        cmds.extend(model.start());
    } else {
        // In memory, or on its way: a reply read before the change
        // committed would be stale too.
        let stale: Vec<i64> = pending.accounts.into_iter().filter(|id| model.cache.holds(*id)).collect();
        if !stale.is_empty() {
            cmds.push(load_settings(model, stale));
        }
        cmds.extend(resolve_cmd(model));
    }
    if let Some(id) = pending.audit {
        let request = model.request();
        cmds.push(Cmd::LoadAudit { request, id });
    }
    cmds
}

pub(super) fn change_notice(e: &AuditEntry) -> String {
    use crate::domain::text::visible_short;
    let what = match (&e.account, &e.integration_type) {
        (Some(a), Some(t)) => format!("{} {}", visible_short(a, 40), visible_short(t, 30)),
        _ => e.table_name.replace('_', " "),
    };
    let version = e.after.as_ref().and_then(|a| a.get("version")).map(|v| format!(" (v{v})")).unwrap_or_default();
    let did = match e.action.as_str() {
        "insert" => "created",
        "update" => "updated",
        "delete" => "deleted",
        other => other,
    };
    format!(
        "{} {did} {what}{version} {}",
        crate::domain::text::identity_short(&e.actor, 60),
        e.at.format("at %H:%M:%S UTC")
    )
}
