//! keyfall on a database it did not make: reading commands change nothing,
//! a missing database is never created, and keyfall's first layout (its
//! tables in `public`) moves into the `keyfall` schema losing nothing.

use sqlx::Row;

use crate::cli::keyfall;
use crate::support::TestDb;

/// Everything in the database that is not PostgreSQL's own: schemas,
/// relations, functions, triggers.
async fn objects(db: &TestDb) -> Vec<String> {
    let mut conn = db.raw().await;
    sqlx::query(
        "SELECT 'schema ' || nspname FROM pg_namespace
          WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public', 'pg_toast') AND nspname NOT LIKE 'pg\\_%'
         UNION ALL
         SELECT 'relation ' || n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
         UNION ALL
         SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
         UNION ALL
         SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect()
}

#[tokio::test]
async fn reading_commands_never_create_or_install_anything() {
    let db = TestDb::bare().await;
    let mut conn = db.raw().await;
    // An app's table named like keyfall's demo table: nothing may clash.
    sqlx::raw_sql("CREATE TABLE users (id bigserial PRIMARY KEY, email text)").execute(&mut conn).await.unwrap();
    let before = objects(&db).await;
    for args in [
        vec!["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster"],
        vec!["report"],
        vec!["get", "aws-admin", "openai"],
        vec!["can", "--user", "paid2@paid.com"],
        vec!["lint"],
        vec!["audit"],
        vec!["export"],
    ] {
        let run = keyfall(&db, &args, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{args:?}: one line: {line}");
        assert!(line.contains("keyfall attach") && line.contains("keyfall migrate"), "{args:?}: {line}");
    }
    assert_eq!(objects(&db).await, before, "a reading command changed the database");

    // A database that does not exist is an error (exit 3), never created.
    let missing = TestDb { store: db.store.clone(), target: db.target.with_database("keyfall_no_such_db_for_tests") };
    let run = keyfall(&missing, &["report"], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'keyfall_no_such_db_for_tests')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!exists, "the mistyped database was created");
    std::mem::forget(missing); // its Drop would drop a database that is not ours
}

#[tokio::test]
async fn first_layout_moves_into_the_keyfall_schema_losing_nothing() {
    let db = TestDb::bare().await;
    let mut conn = db.raw().await;
    // keyfall's first layout, as its migrations 1-6 and demo left it.
    for script in [
        include_str!("../fixtures/legacy/0001_schema.sql"),
        include_str!("../fixtures/legacy/0002_audit_triggers.sql"),
        include_str!("../fixtures/legacy/0003_resolution.sql"),
        include_str!("../fixtures/legacy/0004_verdict_column.sql"),
        include_str!("../fixtures/legacy/0005_console_indexes.sql"),
        include_str!("../fixtures/legacy/0006_hardening.sql"),
        "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
             installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL,
             checksum bytea NOT NULL, execution_time bigint NOT NULL)",
        include_str!("../fixtures/legacy/demo.sql"),
        "UPDATE integration_settings SET config = config || '{\"model\": \"gpt-4o\"}' WHERE integration_type = 'openai';
         UPDATE policy SET mode = 'hybrid_readonly';
         DELETE FROM fallback_chain WHERE account_slug = 'default';",
    ] {
        sqlx::raw_sql(script).execute(&mut conn).await.unwrap();
    }
    let audit_before: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, actor, action FROM audit_log ORDER BY id").fetch_all(&mut conn).await.unwrap();
    assert!(audit_before.len() > 5);

    let run = keyfall(&db, &["report"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("keyfall migrate") && run.stderr.contains("first layout"), "{}", run.stderr);

    let run = keyfall(&db, &["migrate"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let audit_after: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, actor, action FROM keyfall.audit_log WHERE id <= $1 ORDER BY id")
            .bind(audit_before.last().unwrap().0)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(audit_after, audit_before, "the audit log moved whole");
    let policy: String = sqlx::query_scalar("SELECT mode FROM keyfall.policy").fetch_one(&mut conn).await.unwrap();
    assert_eq!(policy, "hybrid_readonly");
    let chain: Vec<String> = sqlx::query_scalar("SELECT account_slug FROM keyfall.fallback_chain ORDER BY position")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(chain, ["aws-admin", "default-account"]);
    for gone in ["public.audit_log", "public.fallback_chain", "public.policy", "public._sqlx_migrations"] {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(gone).fetch_one(&mut conn).await.unwrap();
        assert!(!exists, "{gone} is still in public");
    }

    // It works as before, and new writes are audited and versioned.
    let run = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "paid-2", "openai", "model"], Some("gpt-4.1\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (version, by): (i64, String) = sqlx::query_as(
        "SELECT s.version, s.updated_by FROM integration_settings s JOIN accounts a ON a.id = s.account_id
          WHERE a.slug = 'paid-2' AND s.integration_type = 'openai'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((version, by.as_str()), (1, "dev@igny8.com"));
    let run = keyfall(&db, &["audit", "--account", "paid-2", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("dev@igny8.com"), "{}", run.stdout);
    // A second migrate changes nothing.
    let run = keyfall(&db, &["migrate"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
