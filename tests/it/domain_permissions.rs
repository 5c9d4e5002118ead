//! The permission evaluator as a table: three checks × four actions × three
//! policies, the seed's two users, and the seed's "super user is unable to
//! change settings" cases.

use keyfall::domain::permissions::{Action, Subject, Target, evaluate};
use keyfall::domain::{Account, AccountStatus, Policy, Role, User};
use rstest::rstest;

fn acct(id: i64, slug: &str, status: AccountStatus) -> Account {
    Account { id, slug: slug.into(), name: slug.into(), status }
}

fn aws() -> Account {
    acct(1, "aws-admin", AccountStatus::Active)
}

fn paid2() -> Account {
    acct(4, "paid-2", AccountStatus::Active)
}

struct Who {
    user: User,
    account: Option<Account>,
    position: Option<i32>,
}

fn who(role: Role, superuser: bool, active: bool, account: Option<Account>) -> Who {
    let position = account.as_ref().filter(|a| a.slug == "aws-admin").map(|_| 1);
    Who {
        user: User {
            id: 1,
            email: "someone@x.com".into(),
            role,
            is_superuser: superuser,
            is_active: active,
            account_id: account.as_ref().map(|a| a.id),
        },
        account,
        position,
    }
}

fn dev() -> Who {
    who(Role::Developer, true, true, Some(aws()))
}

fn owner() -> Who {
    who(Role::Owner, false, true, Some(paid2()))
}

fn decide(w: &Who, policy: Policy, action: Action, target: &Target) -> (bool, Vec<(String, bool)>) {
    let s = Subject { user: &w.user, account: w.account.as_ref(), account_chain_position: w.position };
    let d = evaluate(&s, policy, action, target);
    (d.allowed, d.checks.into_iter().map(|c| (c.name, c.passed)).collect())
}

const SYS: Target<'static> = Target::System { slug: "aws-admin" };

#[rstest]
fn developer_may_do_everything_under_every_policy(
    #[values(Policy::SystemOnly, Policy::PerAccount, Policy::HybridReadonly)] policy: Policy,
    #[values(Action::ViewSettings, Action::ModifySettings, Action::TestConnection, Action::TaskProgress)]
    action: Action,
) {
    assert!(decide(&dev(), policy, action, &SYS).0);
}

#[rstest]
#[case(Policy::SystemOnly, Action::ViewSettings, false)]
#[case(Policy::SystemOnly, Action::ModifySettings, false)]
#[case(Policy::SystemOnly, Action::TestConnection, false)]
#[case(Policy::SystemOnly, Action::TaskProgress, true)]
#[case(Policy::PerAccount, Action::ViewSettings, false)]
#[case(Policy::PerAccount, Action::ModifySettings, false)]
#[case(Policy::HybridReadonly, Action::ViewSettings, true)]
#[case(Policy::HybridReadonly, Action::ModifySettings, false)]
#[case(Policy::HybridReadonly, Action::TestConnection, false)]
fn seed_owner_on_system_settings(#[case] policy: Policy, #[case] action: Action, #[case] allowed: bool) {
    let (got, checks) = decide(&owner(), policy, action, &SYS);
    assert_eq!(got, allowed, "{checks:?}");
    if !allowed {
        assert_eq!(checks.iter().find(|c| !c.1).map(|c| c.0.as_str()), Some("IsSystemAccountOrDeveloper"));
    }
}

#[rstest]
#[case(Policy::SystemOnly, false)]
#[case(Policy::PerAccount, true)]
#[case(Policy::HybridReadonly, false)]
fn owner_on_own_account(#[case] policy: Policy, #[case] allowed: bool) {
    let own = paid2();
    let target = Target::Tenant { account: &own };
    assert_eq!(decide(&owner(), policy, Action::ModifySettings, &target).0, allowed);
    assert_eq!(decide(&owner(), policy, Action::ViewSettings, &target).0, allowed);
}

#[test]
fn per_account_does_not_reach_other_tenants_or_lesser_roles() {
    let other = acct(5, "acme", AccountStatus::Active);
    let target = Target::Tenant { account: &other };
    assert!(!decide(&owner(), Policy::PerAccount, Action::ModifySettings, &target).0);
    let own = paid2();
    let editor = who(Role::Editor, false, true, Some(paid2()));
    let (allowed, checks) =
        decide(&editor, Policy::PerAccount, Action::ModifySettings, &Target::Tenant { account: &own });
    assert!(!allowed);
    assert_eq!(checks[2].0, "IsSystemAccountOrDeveloper or IsAccountOwnerOrAdmin");
}

/// The seed's Issue 1: a superuser who cannot change settings. Each of
/// these fails a different check; the evaluator must name it.
#[rstest]
#[case::inactive(who(Role::Developer, true, false, Some(aws())), "IsAuthenticatedAndActive")]
#[case::no_account(who(Role::Developer, true, true, None), "HasTenantAccess")]
#[case::suspended(who(Role::Developer, true, true, Some(acct(9, "old", AccountStatus::Suspended))), "HasTenantAccess")]
#[case::cancelled(who(Role::Owner, false, true, Some(acct(9, "old", AccountStatus::Cancelled))), "HasTenantAccess")]
fn superuser_who_cannot_change_settings(#[case] w: Who, #[case] failing: &str) {
    let (allowed, checks) = decide(&w, Policy::SystemOnly, Action::ModifySettings, &SYS);
    assert!(!allowed);
    let failed: Vec<&str> = checks.iter().filter(|c| !c.1).map(|c| c.0.as_str()).collect();
    assert!(failed.contains(&failing), "{failed:?}");
    assert_eq!(checks.len(), 3, "every check is evaluated, none short-circuited");
}

#[rstest]
#[case::system_bot(who(Role::SystemBot, false, true, Some(paid2())), true)]
#[case::system_account_member(who(Role::Viewer, false, true, Some(aws())), true)]
#[case::trial_developer(who(Role::Developer, false, true, Some(acct(7, "trial", AccountStatus::Trial))), true)]
#[case::admin_tenant(who(Role::Admin, false, true, Some(paid2())), false)]
fn is_system_account_or_developer(#[case] w: Who, #[case] allowed: bool) {
    assert_eq!(decide(&w, Policy::SystemOnly, Action::ModifySettings, &SYS).0, allowed);
}

#[test]
fn task_progress_needs_only_an_active_user() {
    let lone = who(Role::Viewer, false, true, None);
    let (allowed, checks) = decide(&lone, Policy::SystemOnly, Action::TaskProgress, &SYS);
    assert!(allowed);
    assert_eq!(checks.len(), 1);
    let inactive = who(Role::Viewer, false, false, None);
    assert!(!decide(&inactive, Policy::SystemOnly, Action::TaskProgress, &SYS).0);
}
