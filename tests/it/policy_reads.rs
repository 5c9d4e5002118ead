//! Reads follow the policy, in the database (issue 18, DESIGN §4): what a
//! login reads through keyfall — settings (even masked), the audit log,
//! export, lint — is what `can … view_settings` allows its operator, for
//! psql as much as for keyfall. A refused read says so; a resolve trace
//! still names the account that answers, without its config. Each test
//! reads as the least-privilege login and fails if it sees more.

use keyfall::domain::model::chain_position;
use keyfall::domain::permissions::{Action, Subject, Target, evaluate};
use keyfall::domain::{Account, Policy, User};
use keyfall::store::{Source, Target as DbTarget};
use sqlx::{ConnectOptions, Row};

use crate::cli::keyfall;
use crate::support::TestDb;

const OPERATOR: &str = "keyfall_operator";

/// The demo under `policy`, the least-privilege role applied and mapped to
/// `emails`.
async fn demo_under(policy: Policy, emails: &[&str]) -> TestDb {
    let db = TestDb::demo().await;
    let mut owner = db.raw().await;
    sqlx::raw_sql(include_str!("../../assets/least_privilege_role.sql")).execute(&mut owner).await.unwrap();
    sqlx::query("UPDATE keyfall.policy SET mode = $1").bind(policy.as_str()).execute(&mut owner).await.unwrap();
    for email in emails {
        db.store.operator_add(OPERATOR, email).await.unwrap();
    }
    db
}

/// The same database reached as the operator login (not dropped: it is
/// `db`'s).
fn as_operator(db: &TestDb) -> std::mem::ManuallyDrop<TestDb> {
    let target = DbTarget {
        options: db.target.options.clone().username(OPERATOR),
        source: Source::Configured,
        connect_timeout: None,
    };
    std::mem::ManuallyDrop::new(TestDb { store: db.store.clone(), target })
}

async fn acme_key(db: &TestDb) -> String {
    let mut conn = db.raw().await;
    sqlx::query_scalar(
        "SELECT s.config ->> 'apiKey' FROM public.integration_settings s JOIN public.accounts a ON a.id = s.account_id
          WHERE a.slug = 'acme-studio' AND s.integration_type = 'openai'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn under_policy_b_a_tenant_owner_reads_only_its_own_settings_and_is_told_so() {
    let db = demo_under(Policy::PerAccount, &["paid2@paid.com"]).await;
    let op = as_operator(&db);
    let key = acme_key(&db).await;
    let last_four = &key[key.len() - 4..];
    // keyfall's commands: refused, saying why, exit 4 as every denial.
    for args in [
        vec!["get", "acme-studio", "openai"],
        vec!["get", "aws-admin", "openai", "--json"],
        vec!["export", "--account", "acme-studio"],
        vec!["audit", "--account", "acme-studio"],
        vec!["lint", "--account", "acme-studio"],
    ] {
        let run = keyfall(&op, &args, None);
        assert_eq!(run.code, 4, "{args:?}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("not shown: under policy B paid2@paid.com may not view"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains(last_four), "{args:?}");
    }
    // The whole export and lint leave them out and say so.
    let run = keyfall(&op, &["export"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("settings not exported"), "{}", run.stderr);
    assert!(!run.stdout.contains(last_four) && !run.stdout.contains("acme-studio"), "{}", run.stdout);
    let run = keyfall(&op, &["lint"], None);
    assert!(run.stderr.contains("settings not checked"), "{}", run.stderr);
    // psql, as the same login: the rows are there (whether they answer is
    // every trace's business), their configs and authors are not; the
    // audit log has none of acme's entries.
    let mut conn = op.target.options.clone().connect().await.unwrap();
    let rows = sqlx::query(
        "SELECT s.*, s.config::text AS config_text FROM keyfall.integration_settings s
           JOIN keyfall.accounts a ON a.id = s.account_id WHERE a.slug <> 'paid-2'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row.get::<Option<String>, _>("config_text"), None);
        assert_eq!(row.get::<Option<String>, _>("updated_by"), None);
        assert!(!row.get::<bool, _>("shown"));
        assert!(row.get::<Option<String>, _>("withheld_verdict").is_some());
    }
    let acme_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keyfall.audit_log WHERE account_slug = 'acme-studio'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(acme_entries, 0);
    // A leaky function in the reader's own WHERE sees only what the view
    // shows: the CASE, never the stored config.
    sqlx::raw_sql(
        "CREATE FUNCTION pg_temp.peek(c jsonb) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS $$
         BEGIN RAISE NOTICE 'peek %', c; RETURN c IS NOT NULL AND c::text LIKE '%sk-%'; END $$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM keyfall.integration_settings WHERE pg_temp.peek(config)")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    // The trace still names who answers, and shows no config it may not.
    let run = keyfall(&op, &["resolve", "--user", "owner@acme.example", "--function", "auto_cluster", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["answered_by"], "acme-studio", "{v:#}");
    assert!(!run.stdout.contains(last_four));
    let run = keyfall(&op, &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("aws-admin") && run.stdout.contains("not shown"), "{}", run.stdout);
}

#[tokio::test]
async fn the_rows_a_login_reads_are_what_can_view_settings_allows_under_every_policy() {
    let emails = [
        "dev@igny8.com",
        "bot@igny8.com",
        "paid2@paid.com",
        "editor2@paid.com",
        "former@paid.com",
        "owner@acme.example",
        "viewer@acme.example",
        "owner@globex.example",
        "pm@initech.example",
        "nobody@example.com",
        "ops@igny8.com",
    ];
    for policy in Policy::ALL {
        let db = demo_under(policy, &emails).await;
        let data = db.store.subject(None, None).await.unwrap();
        let chain = data.snapshot.chain.clone();
        let mut owner = db.raw().await;
        let accounts: Vec<Account> = db
            .store
            .account_index()
            .await
            .unwrap()
            .into_iter()
            .map(|a| Account {
                id: a.id,
                slug: a.slug,
                name: a.name,
                status: serde_json::from_value(serde_json::json!(a.status)).unwrap(),
            })
            .collect();
        let users: Vec<(i64, String, String, bool, bool, Option<i64>)> =
            sqlx::query_as("SELECT id, email, role::text, is_superuser, is_active, account_id FROM keyfall.users")
                .fetch_all(&mut owner)
                .await
                .unwrap();
        let op = as_operator(&db);
        let mut conn = op.target.options.clone().connect().await.unwrap();
        for (id, email, role, is_superuser, is_active, account_id) in &users {
            if !emails.contains(&email.as_str()) {
                continue;
            }
            let user = User {
                id: *id,
                email: email.clone(),
                role: serde_json::from_value(serde_json::json!(role)).unwrap(),
                is_superuser: *is_superuser,
                is_active: *is_active,
                account_id: *account_id,
            };
            let own = account_id.and_then(|a| accounts.iter().find(|x| x.id == a));
            let subject = Subject {
                user: &user,
                account: own,
                account_chain_position: own.and_then(|a| chain_position(&chain, a.id)),
            };
            sqlx::query("SELECT set_config('keyfall.actor', $1, false)").bind(email).execute(&mut conn).await.unwrap();
            let shown: Vec<(i64, bool)> =
                sqlx::query_as("SELECT account_id, shown FROM keyfall.integration_settings ORDER BY id")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            assert!(!shown.is_empty());
            for (account_id, shown) in shown {
                let account = accounts.iter().find(|a| a.id == account_id).unwrap();
                let target = match chain_position(&chain, account.id) {
                    Some(_) => Target::System { slug: &account.slug },
                    None => Target::Tenant { account },
                };
                let allowed = evaluate(&subject, policy, Action::ViewSettings, &target).allowed;
                assert_eq!(shown, allowed, "{policy:?} {email} reading {}", account.slug);
            }
            // The audit log: an account's entries exactly where its settings show.
            let entries: Vec<Option<i64>> = sqlx::query_scalar("SELECT DISTINCT account_id FROM keyfall.audit_log")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            for account_id in entries.into_iter().flatten() {
                let Some(account) = accounts.iter().find(|a| a.id == account_id) else { continue };
                let target = match chain_position(&chain, account.id) {
                    Some(_) => Target::System { slug: &account.slug },
                    None => Target::Tenant { account },
                };
                assert!(
                    evaluate(&subject, policy, Action::ViewSettings, &target).allowed,
                    "{policy:?} {email} reads {}'s audit entries",
                    account.slug
                );
            }
        }
    }
}

#[tokio::test]
async fn an_unmapped_login_reads_no_settings_and_says_how_to_be_mapped() {
    let db = demo_under(Policy::HybridReadonly, &[]).await;
    let op = as_operator(&db);
    let key = acme_key(&db).await;
    let run = keyfall(&op, &["get", "acme-studio", "openai"], None);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("keyfall operator add"), "{}", run.stderr);
    assert!(!run.stdout.contains(&key[key.len() - 4..]));
    // Its report and resolve still answer, as the app does.
    let run = keyfall(&op, &["resolve", "--user", "owner@acme.example", "--function", "auto_cluster", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["answered_by"], "acme-studio");
}
