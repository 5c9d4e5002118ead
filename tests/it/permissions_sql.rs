//! The database's copy of the permission rules (`keyfall_failing_checks`,
//! what it checks at every write) and `domain::permissions::evaluate` must
//! agree — on every combination of role, superuser, active, account status,
//! system or tenant account, policy, action and target.

use keyfall::domain::model::chain_position;
use keyfall::domain::permissions::{Action, Subject, Target, evaluate};
use keyfall::domain::{Account, Policy};
use sqlx::Row;

use crate::support::TestDb;

const ROLES: &[&str] = &["developer", "owner", "admin", "editor", "viewer", "system_bot"];
/// (slug, status): a system account, tenants in every status, and none.
const ACCOUNTS: &[(&str, &str)] = &[
    ("aws-admin", "active"),
    ("perm-active", "active"),
    ("perm-trial", "trial"),
    ("perm-suspended", "suspended"),
    ("perm-cancelled", "cancelled"),
];

#[tokio::test]
async fn sql_permission_rules_equal_the_pure_evaluator_exhaustively() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        "INSERT INTO accounts (slug, name, status) VALUES
           ('perm-active', 'P', 'active'), ('perm-trial', 'P', 'trial'),
           ('perm-suspended', 'P', 'suspended'), ('perm-cancelled', 'P', 'cancelled')",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    // One user per combination.
    let mut n = 0;
    for role in ROLES {
        for superuser in [false, true] {
            for active in [false, true] {
                for account in ACCOUNTS.iter().map(|a| Some(a.0)).chain([None]) {
                    n += 1;
                    sqlx::query(
                        "INSERT INTO users (email, role, is_superuser, is_active, account_id)
                         VALUES ($1, $2, $3, $4, (SELECT id FROM accounts WHERE slug = $5))",
                    )
                    .bind(format!("perm{n}@test.example"))
                    .bind(role)
                    .bind(superuser)
                    .bind(active)
                    .bind(account)
                    .execute(&mut psql)
                    .await
                    .unwrap();
                }
            }
        }
    }
    let mut compared = 0;
    for policy in Policy::ALL {
        sqlx::query("UPDATE keyfall.policy SET mode = $1").bind(policy.as_str()).execute(&mut psql).await.unwrap();
        let data = db.store.subject(None, None).await.unwrap();
        let chain = &data.snapshot.chain;
        let accounts: Vec<Account> = {
            let mut v = Vec::new();
            for (slug, _) in ACCOUNTS {
                v.push(db.store.account(slug).await.unwrap().unwrap());
            }
            v
        };
        // Targets: the system settings (no account), the system account, each tenant.
        let targets: Vec<Option<&Account>> = std::iter::once(None).chain(accounts.iter().map(Some)).collect();
        let rows = sqlx::query(
            "SELECT u.email, act, t.id,
                    keyfall.keyfall_failing_checks(u.email, act, t.id) AS failing
               FROM users u
              CROSS JOIN unnest(ARRAY['view_settings', 'modify_settings', 'test_connection', 'task_progress']) act
              CROSS JOIN (SELECT NULL::bigint AS id UNION ALL SELECT id FROM accounts WHERE slug = ANY($1)) t
              WHERE u.email LIKE 'perm%@test.example'",
        )
        .bind(ACCOUNTS.iter().map(|a| a.0).collect::<Vec<_>>())
        .fetch_all(&mut psql)
        .await
        .unwrap();
        for row in rows {
            let email: String = row.get("email");
            let action = Action::parse(row.get::<&str, _>("act")).unwrap();
            let target_id: Option<i64> = row.get("id");
            let sql: Vec<String> = row.get("failing");
            let user_data = db.store.subject(Some(&email), None).await.unwrap();
            let user = user_data.user.clone().unwrap();
            let account = user.account_id.and_then(|id| accounts.iter().find(|a| a.id == id));
            let subject = Subject {
                user: &user,
                account,
                account_chain_position: account.and_then(|a| chain_position(chain, a.id)),
            };
            let target_account = targets.iter().flatten().find(|a| Some(a.id) == target_id).copied();
            let head = chain.first().map(|e| e.slug.clone()).unwrap_or_default();
            let target = match target_account {
                None => Target::System { slug: &head },
                Some(a) if chain_position(chain, a.id).is_some() => Target::System { slug: &a.slug },
                Some(a) => Target::Tenant { account: a },
            };
            let pure: Vec<String> =
                evaluate(&subject, policy, action, &target).failing().map(|c| c.name.clone()).collect();
            assert_eq!(
                sql,
                pure,
                "{email} ({:?}) {} on {:?} under {}",
                user,
                action.as_str(),
                target_account.map(|a| &a.slug),
                policy.as_str()
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 3 * n * 4 * (ACCOUNTS.len() + 1));
}
