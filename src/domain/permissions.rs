//! The seed's DRF permission classes as data (DESIGN §4): every check is
//! evaluated — never short-circuited — so "why can't X change settings?" is
//! answered check by check, under any policy.

use serde::Serialize;

use super::model::{Account, Policy, Role, User};
use super::text::visible_short;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ViewSettings,
    ModifySettings,
    TestConnection,
    TaskProgress,
}

impl Action {
    pub const ALL: [Action; 4] =
        [Action::ViewSettings, Action::ModifySettings, Action::TestConnection, Action::TaskProgress];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewSettings => "view_settings",
            Action::ModifySettings => "modify_settings",
            Action::TestConnection => "test_connection",
            Action::TaskProgress => "task_progress",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Check {
    IsAuthenticatedAndActive,
    HasTenantAccess,
    IsSystemAccountOrDeveloper,
    /// Policy B only: owner or admin of the target account itself.
    IsAccountOwnerOrAdmin,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::IsAuthenticatedAndActive => "IsAuthenticatedAndActive",
            Check::HasTenantAccess => "HasTenantAccess",
            Check::IsSystemAccountOrDeveloper => "IsSystemAccountOrDeveloper",
            Check::IsAccountOwnerOrAdmin => "IsAccountOwnerOrAdmin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// One check's name, or two joined by " or " when either suffices.
    pub name: String,
    pub passed: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub checks: Vec<CheckResult>,
    /// What the decision means beyond yes/no, e.g. a masked read-only view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Decision {
    /// The checks that failed, for one-line explanations.
    pub fn failing(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// Who is asking: the user with their account, and whether that account
/// stands in the system chain (position, 1-based).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user: &'a User,
    pub account: Option<&'a Account>,
    pub account_chain_position: Option<i32>,
}

/// Whose settings: a system account's (or the chain head when there is no
/// particular account), or a tenant's.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    System { slug: &'a str },
    Tenant { account: &'a Account },
}

impl Target<'_> {
    pub fn slug(&self) -> &str {
        match self {
            Target::System { slug } => slug,
            Target::Tenant { account } => &account.slug,
        }
    }
}

fn run(check: Check, s: &Subject, target: &Target) -> CheckResult {
    let email = visible_short(&s.user.email, 80);
    let (passed, reason) = match check {
        Check::IsAuthenticatedAndActive => {
            if s.user.is_active {
                (true, format!("{email} is active"))
            } else {
                (false, format!("{email} is inactive"))
            }
        }
        Check::HasTenantAccess => match s.account {
            None => (false, format!("{email} has no account")),
            Some(a) if a.status.grants_access() => {
                (true, format!("account {} is {}", visible_short(&a.slug, 60), a.status.as_str()))
            }
            Some(a) => (false, format!("account {} is {}", visible_short(&a.slug, 60), a.status.as_str())),
        },
        Check::IsSystemAccountOrDeveloper => {
            let mut because = Vec::new();
            if s.user.is_superuser {
                because.push("superuser".to_string());
            }
            if matches!(s.user.role, Role::Developer | Role::SystemBot) {
                because.push(format!("role {}", s.user.role.as_str()));
            }
            if let (Some(a), Some(pos)) = (s.account, s.account_chain_position) {
                because.push(format!("account {} is a system account (chain {pos})", visible_short(&a.slug, 60)));
            }
            if because.is_empty() {
                let account = match s.account {
                    Some(a) => format!("account {} is not a system account", visible_short(&a.slug, 60)),
                    None => "no account".to_string(),
                };
                (
                    false,
                    format!("not a superuser; role {} is not developer or system_bot; {account}", s.user.role.as_str()),
                )
            } else {
                (true, because.join(", "))
            }
        }
        Check::IsAccountOwnerOrAdmin => {
            let own = s.account.is_some_and(|a| a.id == target_account_id(target));
            let role_ok = matches!(s.user.role, Role::Owner | Role::Admin);
            let role = s.user.role.as_str();
            match (own, role_ok) {
                (true, true) => (true, format!("{role} of {}", visible_short(target.slug(), 60))),
                (true, false) => (false, format!("role {role} is not owner or admin")),
                (false, _) => (false, format!("not a member of {}", visible_short(target.slug(), 60))),
            }
        }
    };
    CheckResult { name: check.name().to_string(), passed, reason }
}

fn target_account_id(target: &Target) -> i64 {
    match target {
        Target::Tenant { account } => account.id,
        Target::System { .. } => i64::MIN,
    }
}

/// Either of two checks suffices: one combined result.
fn either(a: CheckResult, b: CheckResult) -> CheckResult {
    let passed = a.passed || b.passed;
    let reason = match (a.passed, b.passed) {
        (true, _) => a.reason,
        (false, true) => b.reason,
        (false, false) => format!("{}; {}", a.reason, b.reason),
    };
    CheckResult { name: format!("{} or {}", a.name, b.name), passed, reason }
}

/// Decide one action under one policy for one target.
pub fn evaluate(subject: &Subject, policy: Policy, action: Action, target: &Target) -> Decision {
    use Check::*;
    let check = |c| run(c, subject, target);
    let mut note = None;
    let checks = match (action, policy, target) {
        (Action::TaskProgress, _, _) => vec![check(IsAuthenticatedAndActive)],
        (Action::ViewSettings | Action::ModifySettings, Policy::PerAccount, Target::Tenant { .. }) => vec![
            check(IsAuthenticatedAndActive),
            check(HasTenantAccess),
            either(check(IsSystemAccountOrDeveloper), check(IsAccountOwnerOrAdmin)),
        ],
        (Action::ViewSettings, Policy::HybridReadonly, Target::System { .. }) => {
            note = Some("read-only, secrets masked (policy hybrid_readonly)".to_string());
            vec![check(IsAuthenticatedAndActive), check(HasTenantAccess)]
        }
        _ => vec![check(IsAuthenticatedAndActive), check(HasTenantAccess), check(IsSystemAccountOrDeveloper)],
    };
    let allowed = checks.iter().all(|c| c.passed);
    Decision { allowed, checks, note: if allowed { note } else { None } }
}

#[derive(Debug, Clone, Serialize)]
pub struct Permissions {
    pub user: String,
    pub policy: Policy,
    pub target: String,
    pub actions: std::collections::BTreeMap<&'static str, Decision>,
}

/// Every action under one policy, for the `can` view.
pub fn evaluate_all(subject: &Subject, policy: Policy, target: &Target) -> Permissions {
    Permissions {
        user: subject.user.email.clone(),
        policy,
        target: target.slug().to_string(),
        actions: Action::ALL.into_iter().map(|a| (a.as_str(), evaluate(subject, policy, a, target))).collect(),
    }
}

/// What the permission checks read about a user, without the user: how a
/// policy change is previewed for a million users, a group at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserKind {
    pub role: Role,
    pub is_superuser: bool,
    pub is_active: bool,
    /// The account's status; None for a user without an account.
    pub account_status: Option<super::model::AccountStatus>,
    /// The account stands in the system chain.
    pub system_account: bool,
}

/// Users who gain or lose one action on one kind of settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyMove {
    pub action: Action,
    /// "system settings" or "their own account".
    pub scope: &'static str,
    pub gains: bool,
    pub users: i64,
    /// The first few of them (by email): the preview names them.
    pub names: Vec<String>,
}

/// How many users a move names at most.
pub const NAMED: usize = 3;

impl PolicyMove {
    /// The preview's line: "3 users gain view_settings on their own
    /// account: a@x, b@x, c@x", "2,000 users … : a@x, b@x, c@x and 1,997
    /// more" — the first few named, as identities are shown.
    pub fn line(&self) -> String {
        let verb = self.verb();
        format!(
            "{} {verb} {} on {}{}",
            super::text::count(self.users, "user"),
            self.action.as_str(),
            self.scope,
            self.named()
        )
    }

    /// ": a@x, b@x and 1 more", or nothing when no name is known.
    /// "gain", "gains", "lose" or "loses", by direction and count.
    pub fn verb(&self) -> &'static str {
        match (self.gains, self.users == 1) {
            (true, false) => "gain",
            (true, true) => "gains",
            (false, false) => "lose",
            (false, true) => "loses",
        }
    }

    pub fn named(&self) -> String {
        if self.names.is_empty() {
            return String::new();
        }
        let named: Vec<String> = self.names.iter().map(|n| super::text::identity_short(n, 60)).collect();
        let more = self.users - named.len() as i64;
        if more > 0 {
            format!(": {} and {} more", named.join(", "), super::text::grouped(more))
        } else {
            format!(": {}", named.join(", "))
        }
    }
}

/// Who gains or loses which action when the policy goes from `from` to `to`.
/// Each group comes with the first few of its users' emails.
pub fn policy_moves(groups: &[(UserKind, i64, Vec<String>)], from: Policy, to: Policy) -> Vec<PolicyMove> {
    let mut moves: Vec<PolicyMove> = Vec::new();
    for (kind, users, names) in groups {
        let account =
            kind.account_status.map(|status| Account { id: 1, slug: "own".into(), name: String::new(), status });
        let user = User {
            id: 0,
            email: String::new(),
            role: kind.role,
            is_superuser: kind.is_superuser,
            is_active: kind.is_active,
            account_id: account.as_ref().map(|a| a.id),
        };
        let subject = Subject {
            user: &user,
            account: account.as_ref(),
            account_chain_position: kind.system_account.then_some(1),
        };
        let mut targets = vec![("system settings", Target::System { slug: "chain" })];
        if let (Some(a), false) = (&account, kind.system_account) {
            targets.push(("their own account", Target::Tenant { account: a }));
        }
        for (scope, target) in &targets {
            for action in Action::ALL {
                let before = evaluate(&subject, from, action, target).allowed;
                let after = evaluate(&subject, to, action, target).allowed;
                if before == after {
                    continue;
                }
                match moves.iter_mut().find(|m| m.action == action && m.scope == *scope && m.gains == after) {
                    Some(m) => {
                        m.users += users;
                        m.names.extend(names.iter().cloned());
                        m.names.sort_by_key(|n| n.to_lowercase());
                        m.names.dedup();
                        m.names.truncate(NAMED);
                    }
                    None => {
                        let names = names.iter().take(NAMED).cloned().collect();
                        moves.push(PolicyMove { action, scope, gains: after, users: *users, names })
                    }
                }
            }
        }
    }
    moves.sort_by(|a, b| (a.scope, a.action, a.gains).cmp(&(b.scope, b.action, b.gains)));
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The preview names the first few who move, then how many more.
    #[test]
    fn a_policy_move_names_the_first_few_then_counts_the_rest() {
        let m = |users: i64, names: &[&str]| PolicyMove {
            action: Action::ModifySettings,
            scope: "their own account",
            gains: true,
            users,
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        assert_eq!(m(2, &[]).line(), "2 users gain modify_settings on their own account");
        assert_eq!(m(1, &["a@x"]).line(), "1 user gains modify_settings on their own account: a@x");
        assert_eq!(
            m(2_000, &["a@x", "b@x", "c@x"]).line(),
            "2,000 users gain modify_settings on their own account: a@x, b@x, c@x and 1,997 more"
        );
    }
}
