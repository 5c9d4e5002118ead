//! Testing the key that answers from the console (DESIGN §9): for the
//! selected setting, or for the resolve-as panel's user and function.

use super::{Cmd, LastTest, Model, Pane};

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
