//! keyfall never harms the app it is attached to (issue 19): the Django app
//! of the tests, as its own non-superuser role owning its tables, runs its
//! next migration with keyfall attached — one test per kind of operation —
//! and its ORM writes right after work and are audited. keyfall then says
//! what it needs: nothing where the mapping still fits (a renamed table or
//! column is followed), `keyfall attach` where it does not.

use keyfall::store::{Source, Target};
use serde_json::Value;

use crate::cli::keyfall;
use crate::django::kf;
use crate::support::TestDb;

const APP: &str = "keyfall_django_app";

/// A Django database whose tables the app's own role made (and owns), with
/// messy seeded data and keyfall attached by a superuser.
async fn django_as_its_own_role() -> (TestDb, Target) {
    let db = TestDb::bare().await;
    let mut admin = db.raw().await;
    // Roles are cluster-wide and tests run in parallel: make it once.
    for _ in 0..3 {
        let made = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP}') THEN CREATE ROLE {APP} LOGIN; END IF; END $$"
        )))
        .execute(&mut admin)
        .await;
        if made.is_ok() {
            break;
        }
    }
    let owner = format!("ALTER DATABASE {} OWNER TO {APP}", keyfall::store::quote_ident(db.target.database()));
    sqlx::raw_sql(sqlx::AssertSqlSafe(owner)).execute(&mut admin).await.unwrap();
    let app =
        Target { options: db.target.options.clone().username(APP), source: Source::Configured, connect_timeout: None };
    kf(&app, &["migrate"]);
    kf(&app, &["seed", "--seed", "3", "--tenants", "6", "--users", "30"]);
    let run = keyfall(&db, &["attach", "--yes", "--no-config"], None);
    assert_eq!(run.code, 0, "attach: {}\n{}", run.stdout, run.stderr);
    (db, app)
}

/// The audit rows the app's role wrote after `after` (an audit id).
async fn audited_since(db: &TestDb, after: i64) -> Vec<(String, String)> {
    let mut conn = db.raw().await;
    sqlx::query_as("SELECT action, table_name FROM keyfall.audit_log WHERE id > $1 AND db_login = $2 ORDER BY id")
        .bind(after)
        .bind(APP)
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

async fn last_audit_id(db: &TestDb) -> i64 {
    let mut conn = db.raw().await;
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM keyfall.audit_log").fetch_one(&mut conn).await.unwrap()
}

/// One migration, as the app's role; its ORM writes audited; what keyfall
/// says afterwards.
async fn migrate_with_keyfall_attached(op: &str, still_fits: bool) {
    let (db, app) = django_as_its_own_role().await;
    let before = last_audit_id(&db).await;
    let out: Value = kf(&app, &["evolve", op, "--account", "aws-admin"]);
    assert_eq!(out["writes"], 4, "{op}: {out}");
    let audited = audited_since(&db, before).await;
    let writes: Vec<&str> = audited
        .iter()
        .filter(|(_, table)| table == "integration_settings")
        .map(|(action, _)| action.as_str())
        .collect();
    assert_eq!(writes, ["insert", "update", "update", "delete"], "{op}: every ORM write audited: {audited:?}");
    assert!(!audited.iter().any(|(a, _)| a == "capture_failed"), "{op}: {audited:?}");
    // The key the app wrote is in no audit row in clear.
    let mut conn = db.raw().await;
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM keyfall.audit_log WHERE coalesce(before::text, '') || coalesce(after::text, '') LIKE '%sk-evolved%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "{op}");
    // What keyfall says now.
    let run = keyfall(&db, &["report", "--json"], None);
    if still_fits {
        assert_eq!(run.code, 0, "{op}: keyfall still works: {}", run.stderr);
    } else {
        assert_eq!(run.code, 2, "{op}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("no longer fit") && run.stderr.contains("keyfall attach"),
            "{op}: says what changed and how to follow: {}",
            run.stderr
        );
        let changed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM keyfall.audit_log WHERE action = 'app_changed' AND id > $1")
                .bind(before)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(changed >= 1, "{op}: the change is in the log");
        let audit = keyfall(&db, &["audit", "--limit", "20"], None);
        assert!(
            audit.stdout.contains("the app's tables changed") && audit.stdout.contains("no longer fit"),
            "{op}: audit says what changed: {}",
            audit.stdout
        );
    }
}

macro_rules! migration_tests {
    ($($name:ident: $op:literal, $fits:literal;)*) => {$(
        #[tokio::test]
        async fn $name() {
            migrate_with_keyfall_attached($op, $fits).await;
        }
    )*};
}

migration_tests! {
    add_field: "add_field", true;
    alter_field_length_and_index_of_a_mapped_column: "alter_field_length_index", true;
    alter_field_type_of_the_accounts_slug: "alter_field_type", true;
    alter_field_null_of_the_config: "alter_field_null", true;
    rename_field_of_a_mapped_column_is_followed: "rename_field", true;
    remove_field_of_a_mapped_column: "remove_field", false;
    alter_model_table_is_followed: "alter_model_table", true;
    rename_model_of_the_accounts_is_followed: "rename_model", true;
    add_index: "add_index", true;
    add_constraint: "add_constraint", true;
}

#[tokio::test]
async fn migrate_zero_and_back_is_attached_again() {
    let (db, app) = django_as_its_own_role().await;
    let before = last_audit_id(&db).await;
    let out = kf(&app, &["zero-and-back", "--account", "fresh-tenant"]);
    assert_eq!(out["writes"], 4, "{out}");
    let audited = audited_since(&db, before).await;
    let writes: Vec<&str> = audited
        .iter()
        .filter(|(_, table)| table == "integration_settings")
        .map(|(action, _)| action.as_str())
        .collect();
    assert!(
        writes.ends_with(&["insert", "update", "update", "delete"]),
        "writes after the tables came back: {audited:?}"
    );
    let run = keyfall(&db, &["report", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Apps with integer ids (Django's AutoField, the default before 3.2): attach,
/// resolve, a write through keyfall and one by the app, both audited.
#[tokio::test]
async fn an_app_with_integer_ids_is_attached_read_and_written() {
    let db = TestDb::bare().await;
    let mut conn = db.raw().await;
    sqlx::raw_sql(
        r#"
        CREATE TABLE shop_account (id serial PRIMARY KEY, slug varchar(50) UNIQUE NOT NULL, name varchar(255) NOT NULL,
                                   status varchar(20) NOT NULL DEFAULT 'active');
        CREATE TABLE shop_user (id serial PRIMARY KEY, email varchar(254) UNIQUE NOT NULL, role varchar(20) NOT NULL,
                                is_superuser boolean NOT NULL DEFAULT false, is_active boolean NOT NULL DEFAULT true,
                                account_id integer REFERENCES shop_account(id));
        CREATE TABLE shop_integrationsettings (id serial PRIMARY KEY, account_id integer NOT NULL REFERENCES shop_account(id),
                                integration_type varchar(50) NOT NULL, config jsonb NOT NULL, is_active boolean NOT NULL,
                                UNIQUE (account_id, integration_type));
        INSERT INTO shop_account (slug, name) VALUES ('aws-admin', 'AWS admin'), ('default-account', 'Default'),
                                                 ('default', 'Default'), ('tenant', 'Tenant');
        INSERT INTO shop_user (email, role, is_superuser, account_id) VALUES ('dev@shop.example', 'developer', true, 1),
                                                                          ('owner@tenant.example', 'owner', false, 4);
        INSERT INTO shop_integrationsettings (account_id, integration_type, config, is_active)
        VALUES (1, 'openai', '{"apiKey": "sk-shop-0123456789abcdef", "model": "gpt-4o"}', true);
        "#,
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let run = keyfall(&db, &["attach", "--yes", "--no-config"], None);
    assert_eq!(run.code, 0, "attach: {}\n{}", run.stdout, run.stderr);
    let run =
        keyfall(&db, &["resolve", "--user", "owner@tenant.example", "--function", "auto_cluster", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["answered_by"], "aws-admin");
    let run = keyfall(
        &db,
        &["--as", "dev@shop.example", "set", "tenant", "openai", "apiKey"],
        Some("sk-tenant-0123456789abcdef"),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    sqlx::raw_sql("UPDATE shop_integrationsettings SET is_active = false WHERE account_id = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    let actions: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, account_slug FROM keyfall.audit_log WHERE table_name = 'integration_settings' ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [("insert".to_string(), Some("tenant".to_string())), ("update".to_string(), Some("aws-admin".to_string()))]
    );
}
