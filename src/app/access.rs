//! What the operator may do in the console: the session's access (decided
//! at start and again on every reload, so rights follow live changes), and
//! per account whether they may view or modify its settings under the
//! policy in force — the same checks as the permission matrix, so the
//! console shows what the policy allows and no more. The database checks
//! again at each write; these are for the message.

use super::model::Model;
pub use super::state::access::*;
use crate::domain::permissions::{self, Subject, Target};
use crate::domain::{Account, User};

/// The operator's access from fresh data (`data.user` is the operator):
/// read-only unless they may modify the system settings or their own
/// account's under the policy in force. `forced` keeps a session read-only.
pub fn decide_access(data: &crate::domain::directory::SubjectData, forced: Option<String>) -> Access {
    use crate::domain::model::chain_position;
    use crate::domain::permissions::{self, Action, Subject, Target as PermTarget};
    let Some(user) = data.user.clone() else {
        return Access {
            operator: None,
            read_only: Some(forced.unwrap_or_else(|| "no operator".into())),
            forced: true,
        };
    };
    if let Some(why) = forced {
        return Access { operator: Some(user), read_only: Some(why), forced: true };
    }
    let chain = &data.snapshot.chain;
    let account = data.user_account();
    let subject =
        Subject { user: &user, account, account_chain_position: account.and_then(|a| chain_position(chain, a.id)) };
    let head = chain.first().map(|e| e.slug.clone()).unwrap_or_default();
    let system =
        permissions::evaluate(&subject, data.policy, Action::ModifySettings, &PermTarget::System { slug: &head });
    let own = account.filter(|a| chain_position(chain, a.id).is_none()).map(|a| {
        permissions::evaluate(&subject, data.policy, Action::ModifySettings, &PermTarget::Tenant { account: a })
    });
    let may_write = system.allowed || own.as_ref().is_some_and(|d| d.allowed);
    let read_only = if may_write {
        None
    } else {
        let failing: Vec<String> = system.failing().map(|c| c.name.clone()).collect();
        Some(format!("{} fails for {}", failing.join(", "), crate::domain::text::visible_short(&user.email, 60)))
    };
    Access { operator: Some(user), read_only, forced: false }
}

/// The operator as the permission checks see them: their account and its
/// place in the chain, from what the console holds.
fn operator_subject<'a>(model: &'a Model, op: &'a User) -> Subject<'a> {
    let account = op.account_id.and_then(|id| model.accounts.entry_by_id(id)).map(|e| &e.account);
    Subject {
        user: op,
        account,
        account_chain_position: account.and_then(|a| crate::domain::model::chain_position(&model.world.chain, a.id)),
    }
}

/// Whether the operator may modify `account`'s settings; if not, the
/// failing checks (DESIGN §4: shown read-only, the check named).
pub fn may_modify(model: &Model, account: &Account) -> Result<String, String> {
    if let Some(why) = &model.session.access.read_only {
        return Err(format!("read-only session: {why}"));
    }
    let Some(op) = &model.session.access.operator else { return Err("no operator".into()) };
    let subject = operator_subject(model, op);
    let target = target_of(model, account);
    let d = permissions::evaluate(&subject, model.policy, permissions::Action::ModifySettings, &target);
    if d.allowed {
        Ok(op.email.clone())
    } else {
        Err(d.failing().map(|c| format!("{} failed ({})", c.name, c.reason)).collect::<Vec<_>>().join("; "))
    }
}

/// Whether the operator may view the settings of the account `slug`
/// (chain accounts are system settings); if not, the failing checks. With
/// no operator the database role decides what the session reads.
pub fn may_view(model: &Model, slug: &str) -> Result<(), String> {
    if model.session.access.operator.is_none() {
        return Ok(());
    }
    let system = model.world.chain.iter().any(|e| e.slug == slug);
    // The account in hand is usually the selected one or the resolve-as
    // user's: no scan of the index for those.
    let user_account = model.resolve.subject.as_ref().and_then(|s| s.user_account());
    let tenant = match (model.selected_account(), user_account) {
        (Some(a), _) if a.slug == slug => Some(a.clone()),
        (_, Some(a)) if a.slug == slug => Some(a.clone()),
        _ if system => None,
        _ => model.accounts.entry_by_slug(slug).map(|e| e.account.clone()),
    };
    let target = match (&tenant, system) {
        (Some(a), false) => Target::Tenant { account: a },
        _ => Target::System { slug },
    };
    may_view_target(model, &target)
}

/// `may_view` for an account in hand (no lookup by slug: cheap enough for
/// every row on screen).
pub fn may_view_account(model: &Model, account: &Account) -> Result<(), String> {
    let target = target_of(model, account);
    may_view_target(model, &target)
}

/// Whether the operator may test the key of `account`'s setting (the
/// database's own check, `test_connection`, as the policy has it); if
/// not, the failing checks.
pub fn may_test(model: &Model, account: &Account) -> Result<(), String> {
    let Some(op) = &model.session.access.operator else { return Err("no operator".into()) };
    let subject = operator_subject(model, op);
    let target = target_of(model, account);
    let d = permissions::evaluate(&subject, model.policy, permissions::Action::TestConnection, &target);
    if d.allowed { Ok(()) } else { Err(d.failing().map(|c| c.name.clone()).collect::<Vec<_>>().join(", ")) }
}

/// The checks' target for an account in hand: a system account (on the
/// chain) is the system's, any other the tenant's.
fn target_of<'a>(model: &Model, account: &'a Account) -> Target<'a> {
    if model.world.is_system(account.id) { Target::System { slug: &account.slug } } else { Target::Tenant { account } }
}

fn may_view_target(model: &Model, target: &Target) -> Result<(), String> {
    let Some(op) = &model.session.access.operator else { return Ok(()) };
    let subject = operator_subject(model, op);
    let d = permissions::evaluate(&subject, model.policy, permissions::Action::ViewSettings, target);
    if d.allowed { Ok(()) } else { Err(d.failing().map(|c| c.name.clone()).collect::<Vec<_>>().join(", ")) }
}
