//! Looking closer from the console: revealing a key (asked, audited,
//! hidden again) and testing the key that answers.

use super::editing::may_modify;
use super::keymap::Action;
use super::{Cmd, LastTest, Model, Overlay, Pane};

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
