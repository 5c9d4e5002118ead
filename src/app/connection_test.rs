//! Testing the key that answers from the console (DESIGN §9): for the
//! selected setting, or for the resolve-as panel's user and function.

use chrono::{DateTime, Utc};
use ratatui::text::{Line, Span};

use super::request::Kind;
use super::view::{Theme, ago};
use super::{Cmd, Model, Pane};
use crate::domain::text::visible_short;

/// Test the key that answers for the selected account and type (following
/// a consumer's second hop): the raw config is in memory, so the test goes
/// straight to the provider.
pub(super) fn test_connection(model: &mut Model) -> Vec<Cmd> {
    if model.main.focus == Pane::Resolve {
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
    let request = model.requests.start(Kind::ConnectionTest);
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
    let request = model.requests.start(Kind::ConnectionTest);
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

/// The outcome of a connection test, for the setting pane.
#[derive(Debug, Clone)]
pub struct LastTest {
    pub account_id: i64,
    pub integration_type: String,
    /// The provider tested and whose key it was.
    pub provider: String,
    pub key_of: String,
    pub at: DateTime<Utc>,
    /// None while the call is in flight.
    pub outcome: Option<crate::connection::Outcome>,
    /// Started from the resolve-as panel (shown there).
    pub from_resolve: bool,
}

/// The last connection test, in one line.
pub(super) fn line(model: &Model, test: &LastTest, t: Theme) -> Line<'static> {
    match &test.outcome {
        None => Line::from(Span::styled(
            format!("testing {}'s {} key…", visible_short(&test.key_of, 30), test.provider),
            t.dim(),
        )),
        Some(o) => Line::from(vec![
            Span::styled(if o.ok { "✓ " } else { "✗ " }, if o.ok { t.ok() } else { t.bad() }),
            Span::raw(format!(
                "{}'s {} key via {}: {} ({} ms, {})",
                visible_short(&test.key_of, 30),
                test.provider,
                visible_short(&o.host, 40),
                o.message,
                o.elapsed_ms,
                ago(model.now, test.at)
            )),
        ]),
    }
}

/// The outcome arrived: shown with the time it came.
pub(super) fn tested(model: &mut Model, request: u64, outcome: crate::connection::Outcome) -> Vec<Cmd> {
    if model.requests.is_latest(Kind::ConnectionTest, request)
        && let Some(t) = &mut model.last_test
    {
        t.outcome = Some(outcome);
        t.at = model.now;
    }
    Vec::new()
}
