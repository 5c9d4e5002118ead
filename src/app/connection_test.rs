//! Testing the key that answers from the console (DESIGN §9): for the
//! selected setting, or for the resolve-as panel's user and function.
//! The line under the setting always ends: with the outcome, with why no
//! request was sent (no right to read the key, a read-only session, an
//! endpoint not confirmed), or with the failure or timeout of the request.

use ratatui::text::{Line, Span};

use super::model::{Cmd, Model, Overlay};
use super::request::Kind;
pub use super::state::connection_test::*;
use super::state::main::Pane;
use super::widgets::{Theme, ago};
use crate::connection::{Insecure, Outcome};
use crate::domain::Account;
use crate::domain::text::visible_short;

/// Test the key that answers for the selected account and type (following
/// a consumer's second hop): the runtime reads the key (checked and
/// recorded by the database) and calls the provider.
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
        Some(account.clone())
    } else {
        model.world.chain.iter().find(|e| e.slug == by).and_then(|e| e.account.clone())
    };
    let Some(owner) = owner.filter(|o| model.world.settings.contains_key(&(o.id, provider.clone()))) else {
        return Vec::new();
    };
    let test = LastTest {
        account_id: account.id,
        integration_type: ty,
        provider,
        key_of: by,
        at: model.now,
        outcome: None,
        problem: None,
        from_resolve: false,
        tested: None,
    };
    start(model, test, &owner)
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
    let test = LastTest {
        account_id: account.id,
        integration_type: provider.clone(),
        provider,
        key_of: by,
        at: model.now,
        outcome: None,
        problem: None,
        from_resolve: true,
        tested: None,
    };
    start(model, test, &account)
}

/// Ask for the test of `owner`'s key, or — when this session may not read
/// it — say so on the test's line at once, sending nothing.
fn start(model: &mut Model, mut test: LastTest, owner: &Account) -> Vec<Cmd> {
    test.tested = tested_row(model, &test.key_of, &test.provider);
    let actor = model.session.access.operator.as_ref().map(|u| u.email.clone());
    let refused = match (&actor, &model.session.access) {
        (None, _) => Some("a test reads the key, which needs an operator (--as)".to_string()),
        (Some(_), access) if access.forced => Some(format!(
            "this session is read-only ({}) and a test records its read of the key",
            visible_short(access.read_only.as_deref().unwrap_or("read-only"), 60)
        )),
        (Some(_), _) => super::access::may_test(model, owner).err().map(|failing| {
            format!("{failing} fails: you may not test {}'s keys under this policy", visible_short(&owner.slug, 30))
        }),
    };
    if let Some(why) = refused {
        model.requests.forget(Kind::ConnectionTest);
        // Said in the footer too: the line is not shown where the
        // settings are hidden from this operator.
        model.notice = Some(format!("{}'s {} key not tested: {why}", visible_short(&test.key_of, 30), test.provider));
        test.problem = Some(format!("not tested: {why}"));
        model.last_test = Some(test);
        return Vec::new();
    }
    let request = model.requests.start(Kind::ConnectionTest);
    let cmd = Cmd::TestConnection {
        request,
        actor: actor.unwrap_or_default(),
        account: owner.slug.clone(),
        provider: test.provider.clone(),
        insecure: Insecure::Refuse,
    };
    model.last_test = Some(test);
    vec![cmd]
}

/// What a test depends on in `slug`'s `provider` row, as loaded: its keys
/// as fingerprints and its endpoint fields. None: the row is not in memory.
fn tested_row(model: &Model, slug: &str, provider: &str) -> Option<String> {
    let id = model
        .world
        .chain
        .iter()
        .find(|e| e.slug == slug)
        .and_then(|e| e.account.as_ref())
        .or_else(|| model.world.accounts.values().find(|a| a.slug == slug))?
        .id;
    let Some(setting) = model.world.settings.get(&(id, provider.to_string())) else {
        return Some("(no row)".into());
    };
    let config = crate::domain::secret::fingerprint_config(&setting.config);
    let kept: serde_json::Map<String, serde_json::Value> = config
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            crate::domain::secret::is_secret_field(&k) || ["url", "endpoint", "host"].iter().any(|w| k.contains(w))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(serde_json::Value::Object(kept).to_string())
}

/// Whether the row tested has since changed its key or endpoint (as loaded).
pub fn is_stale(model: &Model, test: &LastTest) -> bool {
    match (&test.tested, tested_row(model, &test.key_of, &test.provider)) {
        (Some(then), Some(now)) => then != &now,
        _ => false,
    }
}

/// The last connection test, in one line.
pub(super) fn line(model: &Model, test: &LastTest, t: Theme) -> Line<'static> {
    let whose = format!("{}'s {} key", visible_short(&test.key_of, 30), test.provider);
    match (&test.outcome, &test.problem) {
        (_, Some(problem)) => Line::from(vec![
            Span::styled("✗ ", t.bad()),
            Span::raw(format!("{whose}: {problem} ({})", ago(model.now, test.at))),
        ]),
        (None, None) => Line::from(Span::styled(format!("testing {whose}…"), t.dim())),
        (Some(o), None) if is_stale(model, test) => Line::from(vec![
            Span::styled("? ", t.warn()),
            Span::styled(
                format!(
                    "stale: {whose} or base_url changed since the test ({}: {}); t tests again",
                    ago(model.now, test.at),
                    if o.ok { "it was accepted" } else { "it failed" }
                ),
                t.warn(),
            ),
        ]),
        (Some(o), None) => {
            let insecure = o.insecure.as_ref().map(|why| format!(", sent as confirmed: {why}")).unwrap_or_default();
            Line::from(vec![
                Span::styled(if o.ok { "✓ " } else { "✗ " }, if o.ok { t.ok() } else { t.bad() }),
                Span::raw(format!(
                    "{whose} via {}: {} ({} ms, {}{insecure})",
                    visible_short(&o.host, 40),
                    o.message,
                    o.elapsed_ms,
                    ago(model.now, test.at)
                )),
            ])
        }
    }
}

/// The outcome arrived: shown with the time it came. An endpoint that needs
/// confirming opens the dialog that asks (nothing was sent).
pub(super) fn tested(model: &mut Model, request: u64, outcome: Outcome) -> Vec<Cmd> {
    if !model.requests.is_latest(Kind::ConnectionTest, request) {
        return Vec::new();
    }
    let Some(t) = &mut model.last_test else { return Vec::new() };
    t.at = model.now;
    match outcome.refused {
        Some(refusal) => {
            t.problem = Some(format!("not sent: {}", refusal.message()));
            // Another dialog opened meanwhile: the line says it; t asks again.
            if model.overlay.is_none()
                && let Some(actor) = model.session.access.operator.as_ref().map(|u| u.email.clone())
            {
                model.overlay = Some(Overlay::ConfirmEndpoint(super::state::endpoint::EndpointDialog {
                    refusal,
                    actor,
                    account: t.key_of.clone(),
                    provider: t.provider.clone(),
                }));
            }
        }
        None => t.outcome = Some(outcome),
    }
    Vec::new()
}

/// The test's request failed or timed out: its line says so. True when it
/// was the test in flight.
pub(super) fn failed(model: &mut Model, request: u64, error: &str) -> bool {
    if !model.requests.is_latest(Kind::ConnectionTest, request) {
        return false;
    }
    if let Some(t) = &mut model.last_test
        && t.outcome.is_none()
    {
        t.problem = Some(format!("not tested: {}", visible_short(error, 120)));
        t.at = model.now;
    }
    true
}
