//! Looking closer from the console: revealing a key (asked, audited,
//! hidden again), the audit view with revert, and testing the key that
//! answers.

use super::editing::{may_modify, open_delete};
use super::editor::Editor;
use super::keymap::Action;
use super::{AuditView, Cmd, LastTest, Model, Overlay, Pane};
use crate::domain::registry;

pub(super) fn open_reveal(model: &mut Model) -> Vec<Cmd> {
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
    model.overlay = Some(Overlay::ConfirmReveal {
        account: account.slug,
        account_id: account.id,
        integration_type: ty,
        request: None,
    });
    Vec::new()
}

/// "Reveal this key?": yes reveals (audited by the database); any other
/// key cancels, as the dialog says.
pub(super) fn reveal_key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let actor = model.session.access.operator.as_ref().map(|o| o.email.clone());
    let next = model.requests.issue();
    let Some(Overlay::ConfirmReveal { account, integration_type, request, .. }) = &mut model.overlay else {
        return Vec::new();
    };
    match action {
        Some(Action::Confirm) => {
            let Some(actor) = actor else { return Vec::new() };
            let cmd = Cmd::Reveal {
                request: next,
                actor,
                account: account.clone(),
                integration_type: integration_type.clone(),
            };
            *request = Some(next);
            vec![cmd]
        }
        _ => {
            model.overlay = None;
            Vec::new()
        }
    }
}

pub(super) fn open_audit(model: &mut Model) -> Vec<Cmd> {
    let Some(account) = model.selected_account().cloned() else { return Vec::new() };
    if let Err(why) = super::may_view(model, &account.slug) {
        model.notice = Some(format!("its history is not yours to view under this policy ({why} fails)"));
        return Vec::new();
    }
    let integration_type = model.current_type();
    let request = model.request();
    let cmd = Cmd::LoadAuditList { request, account: account.slug.clone(), integration_type: integration_type.clone() };
    model.overlay = Some(Overlay::Audit(AuditView {
        account,
        integration_type,
        entries: Vec::new(),
        selected: 0,
        request,
        loading: true,
        error: None,
    }));
    vec![cmd]
}

/// The audit view's request failed: it says so instead of waiting forever.
pub(super) fn audit_failed(model: &mut Model, request: u64, error: &str) -> bool {
    match &mut model.overlay {
        Some(Overlay::Audit(view)) if view.request == request && view.loading => {
            view.loading = false;
            view.error = Some(crate::domain::text::visible_short(error, 200));
            true
        }
        _ => false,
    }
}

pub(super) fn audit_key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let page = (model.size.1 as usize).saturating_sub(6) / 2;
    let Some(Overlay::Audit(view)) = &mut model.overlay else { return Vec::new() };
    match action {
        Some(Action::Close) => model.overlay = None,
        Some(Action::Revert) => return revert(model),
        Some(a) => {
            if let Some(delta) = super::movement(a, page) {
                view.selected = super::moved(view.selected, delta, view.entries.len());
            }
        }
        None => {}
    }
    Vec::new()
}

/// Revert the selected audit entry: a new change, through the editor (so
/// with its diff, impact preview and version check), that puts back the
/// fields the entry changed. Keys are kept only as fingerprints, so an old
/// key cannot be restored: the current one stays, and the form says so.
pub(super) fn revert(model: &mut Model) -> Vec<Cmd> {
    use crate::domain::secret::{fingerprint, is_secret_field};
    let Some(Overlay::Audit(view)) = &model.overlay else { return Vec::new() };
    let Some(entry) = view.entries.get(view.selected).cloned() else { return Vec::new() };
    let account = view.account.clone();
    let ty = view.integration_type.clone();
    let Some(spec) = registry::spec(&ty) else { return Vec::new() };
    if let Err(why) = may_modify(model, &account) {
        model.notice = Some(format!("read-only here: {why}"));
        return Vec::new();
    }
    if entry.action == "reveal" {
        model.notice = Some("a reveal changed nothing; there is nothing to revert".into());
        return Vec::new();
    }
    let current = model.world.settings.get(&(account.id, ty.clone())).cloned();
    let Some(before) = entry.before.as_ref() else {
        // Reverting a creation is a deletion.
        model.overlay = None;
        return open_delete(model);
    };
    let old_config = before.get("config").and_then(|c| c.as_object()).cloned().unwrap_or_default();
    let mut target = current.as_ref().and_then(|s| s.config.as_object().cloned()).unwrap_or_default();
    let mut kept_key = false;
    for change in crate::domain::diff::changes(entry.before.as_ref(), entry.after.as_ref()) {
        let Some(path) = change.field.strip_prefix("config.") else { continue };
        let field = path.split('.').next().unwrap_or(path).to_string();
        match old_config.get(&field) {
            Some(serde_json::Value::String(old)) if is_secret_field(&field) && old.starts_with('#') => {
                let now = target.get(&field).and_then(|v| v.as_str()).map(fingerprint);
                kept_key |= now.as_deref() != Some(old.as_str());
            }
            // The log holds fingerprints (of secrets by name or by shape,
            // at any depth): restoring would write them as values. Keep
            // what is there.
            Some(old)
                if is_secret_field(&field)
                    || crate::domain::secret::contains_secret(old)
                    || crate::domain::secret::contains_fingerprint(old) =>
            {
                kept_key = true;
            }
            Some(old) => {
                target.insert(field, old.clone());
            }
            None => {
                target.remove(&field);
            }
        }
    }
    // Only what the entry changed is put back.
    let active = crate::domain::diff::changes(entry.before.as_ref(), entry.after.as_ref())
        .iter()
        .any(|c| c.field == "is_active")
        .then(|| before.get("is_active").and_then(|v| v.as_bool()))
        .flatten();
    match Editor::open_with(spec, account, current, None, Some(target)) {
        Ok(mut ed) => {
            if let Some(a) = active {
                ed.is_active = a;
            }
            ed.revert_of = Some(entry.id);
            ed.message = Some(if kept_key {
                format!(
                    "reverting entry #{}: the old key cannot be restored (the log keeps fingerprints only); the current key stays",
                    entry.id
                )
            } else {
                format!("reverting entry #{}: review, then ctrl-s", entry.id)
            });
            model.overlay = Some(Overlay::Edit(Box::new(ed)));
        }
        Err(why) => model.notice = Some(why),
    }
    Vec::new()
}

/// Test the key that answers for the selected account and type (following
/// a consumer's second hop): the raw config is in memory, so the test goes
/// straight to the provider.
pub(super) fn test_connection(model: &mut Model) -> Vec<Cmd> {
    if model.focus == Pane::Resolve {
        return test_resolved(model);
    }
    let Some(account) = model.selected_account().cloned() else { return Vec::new() };
    let ty = model.current_type();
    let hop = crate::domain::resolve::resolve_type(&model.world, Some(&account), &ty);
    let answering = hop.hop.as_deref().unwrap_or(&hop);
    let Some(by) = answering.answered_by.clone() else {
        model.notice = Some("nothing answers here: no key to test".into());
        return Vec::new();
    };
    let provider = answering.integration_type.clone();
    let owner = if by == account.slug {
        Some(account.id)
    } else {
        model.world.chain.iter().find(|e| e.slug == by).and_then(|e| e.account.as_ref()).map(|a| a.id)
    };
    if owner.and_then(|id| model.world.settings.get(&(id, provider.clone()))).is_none() {
        return Vec::new();
    }
    let Some(actor) = model.session.access.operator.as_ref().map(|u| u.email.clone()) else {
        model.notice = Some("a connection test sends the key: it needs an operator (--as)".into());
        return Vec::new();
    };
    let by_slug = by.clone();
    let request = model.requests.start(super::request::Kind::ConnectionTest);
    model.last_test = Some(LastTest {
        account_id: account.id,
        integration_type: ty,
        provider: provider.clone(),
        key_of: by,
        at: model.now,
        outcome: None,
        from_resolve: false,
    });
    vec![Cmd::TestConnection { request, actor, account: by_slug, provider }]
}

/// `t` on the resolve-as panel: test the key that answers for that user
/// and function (the second hop's, for a consumer).
pub(super) fn test_resolved(model: &mut Model) -> Vec<Cmd> {
    let (Some(subject), Some(res)) = (&model.resolve.subject, &model.resolve.resolution) else {
        model.notice = Some("pick a user and a function first".into());
        return Vec::new();
    };
    let answering = res.hop.hop.as_deref().unwrap_or(&res.hop);
    let Some(by) = answering.answered_by.clone() else {
        model.notice = Some("unresolved: no key to test".into());
        return Vec::new();
    };
    let provider = answering.integration_type.clone();
    let Some(account) = subject.snapshot.accounts.values().find(|a| a.slug == by).cloned() else { return Vec::new() };
    if !subject.snapshot.settings.contains_key(&(account.id, provider.clone())) {
        return Vec::new();
    }
    let Some(actor) = model.session.access.operator.as_ref().map(|u| u.email.clone()) else {
        model.notice = Some("a connection test sends the key: it needs an operator (--as)".into());
        return Vec::new();
    };
    let request = model.requests.start(super::request::Kind::ConnectionTest);
    model.last_test = Some(LastTest {
        account_id: account.id,
        integration_type: provider.clone(),
        provider: provider.clone(),
        key_of: by,
        at: model.now,
        outcome: None,
        from_resolve: true,
    });
    vec![Cmd::TestConnection { request, actor, account: account.slug.clone(), provider }]
}
