//! The store against a real PostgreSQL: audit triggers for any writer,
//! append-only audit, version checks, hostile and malformed data.

use keyfall::domain::resolve::{Verdict, resolve};
use keyfall::store::{StoreError, WriteOutcome};
use serde_json::{Value, json};
use sqlx::Row;

use crate::support::TestDb;

fn set_key(key: &'static str) -> impl FnOnce(Option<&keyfall::domain::Setting>) -> (Value, bool) {
    move |cur| {
        let mut config = cur.map(|s| s.config.clone()).unwrap_or_else(|| json!({}));
        config["apiKey"] = json!(key);
        (config, true)
    }
}

#[tokio::test]
async fn demo_is_idempotent_and_writes_no_second_audit() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let before = count("SELECT count(*) FROM audit_log").fetch_one(&mut conn).await.unwrap();
    db.store.load_demo().await.unwrap();
    let after = count("SELECT count(*) FROM audit_log").fetch_one(&mut conn).await.unwrap();
    assert_eq!(before, after);
    assert_eq!(count("SELECT count(*) FROM accounts").fetch_one(&mut conn).await.unwrap(), 8);
    assert_eq!(count("SELECT count(*) FROM integration_settings").fetch_one(&mut conn).await.unwrap(), 6);
    // Demo audit rows name the loader and carry no key.
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT actor FROM audit_log WHERE action <> 'history_start'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(actors, vec!["keyfall demo".to_string()]);
    let audit: String =
        sqlx::query_scalar("SELECT string_agg(after::text, ' ') FROM audit_log").fetch_one(&mut conn).await.unwrap();
    assert!(!audit.contains("sk-demo"), "{audit}");
}

#[tokio::test]
async fn one_round_trip_loads_a_resolution() {
    let db = TestDb::demo().await;
    let data = db.store.subject(Some("PAID2@Paid.com"), Some("generate_images")).await.unwrap();
    let user = data.user.clone().expect("case-insensitive email");
    let r = resolve(&data.snapshot, &user, data.function.as_ref().unwrap());
    assert!(!r.is_resolved());
    assert_eq!(r.hop.steps[1].account, "aws-admin");
    assert_eq!(r.hop.steps[1].verdict, Verdict::NoProvider);
    let unknown = db.store.subject(Some("ghost@x.com"), Some("nope")).await.unwrap();
    assert!(unknown.user.is_none() && unknown.function.is_none());
}

#[tokio::test]
async fn a_write_from_any_client_is_audited_once_with_secrets_fingerprinted() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    sqlx::query(
        "UPDATE integration_settings SET config = config || '{\"apiKey\": \"sk-canary-from-psql-0000\"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'aws-admin')",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    let row = sqlx::query(
        "SELECT actor, action, account_slug, before::text AS b, after::text AS a, after -> 'version' AS v
           FROM audit_log ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut psql)
    .await
    .unwrap();
    let actor: String = row.get("actor");
    let after: String = row.get("a");
    assert_eq!(row.get::<String, _>("action"), "update");
    assert_eq!(row.get::<String, _>("account_slug"), "aws-admin");
    assert!(!actor.is_empty() && actor != "keyfall demo", "a plain writer is its database role: {actor}");
    assert!(!after.contains("canary"), "{after}");
    assert!(
        after.contains(&keyfall::domain::secret::fingerprint("sk-canary-from-psql-0000")),
        "SQL and Rust fingerprints agree"
    );
    assert_eq!(row.get::<Value, _>("v"), json!(2), "every writer bumps the version");
}

#[tokio::test]
async fn audit_log_refuses_update_delete_and_truncate() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    for sql in ["UPDATE audit_log SET actor = 'me'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let err = sqlx::raw_sql(sql).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn writes_are_attributed_and_version_checked() {
    let db = TestDb::demo().await;
    let created = db
        .store
        .write_setting("dev@igny8.com", "paid-2", "openai", None, set_key("sk-paid2-own-0000000000"))
        .await
        .unwrap();
    let WriteOutcome::Created(s) = created else { panic!("expected a new setting") };
    assert_eq!(s.version, 1);
    assert_eq!(s.updated_by.as_deref(), Some("dev@igny8.com"));

    // A writer that read v1 saves; a second writer that also read v1 conflicts.
    let saved = db
        .store
        .write_setting("dev@igny8.com", "paid-2", "openai", Some(1), set_key("sk-paid2-second-00000000"))
        .await
        .unwrap();
    assert!(matches!(saved, WriteOutcome::Updated(ref s) if s.version == 2));
    let err = db
        .store
        .write_setting("bot@igny8.com", "paid-2", "openai", Some(1), set_key("sk-paid2-stale-000000000"))
        .await
        .unwrap_err();
    let StoreError::Conflict(c) = err else { panic!("expected a conflict, got {err:?}") };
    assert_eq!((c.expected_version, c.current_version), (1, Some(2)));
    assert_eq!(c.updated_by.as_deref(), Some("dev@igny8.com"));
    assert!(!c.to_string().contains("sk-paid2"));

    // Writing the same value again changes nothing and audits nothing.
    let mut conn = db.raw().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&mut conn).await.unwrap();
    let same = db
        .store
        .write_setting("dev@igny8.com", "paid-2", "openai", None, set_key("sk-paid2-second-00000000"))
        .await
        .unwrap();
    assert!(matches!(same, WriteOutcome::Unchanged(_)));
    let m: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&mut conn).await.unwrap();
    assert_eq!(n, m);
}

#[tokio::test]
async fn a_stale_version_from_a_foreign_writer_conflicts() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    // The Django app knows nothing of versions; the trigger bumps it anyway.
    sqlx::raw_sql("UPDATE integration_settings SET is_active = is_active WHERE integration_type = 'runware'")
        .execute(&mut psql)
        .await
        .unwrap();
    let err = db
        .store
        .write_setting("dev@igny8.com", "aws-admin", "runware", Some(1), set_key("rw-new-key-000000000000"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn writes_notify_listeners_with_ids_only() {
    let db = TestDb::demo().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(db.store.pool()).await.unwrap();
    listener.listen("keyfall_changes").await.unwrap();
    db.store
        .write_setting("dev@igny8.com", "acme-studio", "openai", None, set_key("sk-acme-rotated-0000000000"))
        .await
        .unwrap();
    let note = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await.unwrap().unwrap();
    let payload: Value = serde_json::from_str(note.payload()).unwrap();
    assert_eq!(payload["op"], "update");
    assert_eq!(payload["table"], "integration_settings");
    assert!(payload["audit_id"].is_i64());
    assert!(!note.payload().contains("sk-acme"));
}

#[tokio::test]
async fn malformed_and_hostile_rows_are_verdicts_not_errors() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        r#"
INSERT INTO accounts (slug, name) VALUES ('hostile', E'\x1b[2J\u202eevil name');
INSERT INTO integration_settings (account_id, integration_type, config) VALUES
    ((SELECT id FROM accounts WHERE slug = 'hostile'), 'openai', '"just a string"'),
    ((SELECT id FROM accounts WHERE slug = 'hostile'), 'runware', '[1, 2, 3]'),
    ((SELECT id FROM accounts WHERE slug = 'hostile'), 'image_generation', 'null'),
    ((SELECT id FROM accounts WHERE slug = 'hostile'), 'mystery_type', '{"x": 1e400}'),
    ((SELECT id FROM accounts WHERE slug = 'paid-2'), 'openai', '{"apiKey": 12, "model": {"nested": true}}');
"#,
    )
    .execute(&mut psql)
    .await
    .unwrap();
    // The report survives, and reports the unknown type too.
    let report = db.store.report().await.unwrap();
    assert!(report.iter().any(|r| r.integration_type == "mystery_type"));
    let hostile_openai = report.iter().find(|r| r.account == "hostile" && r.integration_type == "openai").unwrap();
    assert_eq!(hostile_openai.answered_by.as_deref(), Some("aws-admin"));
    // The resolver turns each into a verdict.
    let data = db.store.subject(Some("paid2@paid.com"), Some("auto_cluster")).await.unwrap();
    let r = resolve(&data.snapshot, data.user.as_ref().unwrap(), data.function.as_ref().unwrap());
    // A number for a key: the app's .strip() raises, so the walk stops there.
    assert_eq!(r.hop.steps.len(), 1);
    assert_eq!(r.hop.steps[0].verdict, Verdict::KeyNotString);
    assert_eq!(r.hop.steps[0].detail, "apiKey is a whole number, not a string");
    assert!(r.hop.error.as_deref().is_some_and(|e| e.contains("raises")), "{:?}", r.hop.error);
    assert!(!r.is_resolved());
    // A number beyond f64 spoils nothing: the row is read as the app reads
    // it (an int bigger than any bound), marked as read approximately.
    let found = db.store.setting("hostile", "mystery_type").await.unwrap().setting.unwrap();
    assert_eq!(found.config["x"], serde_json::json!(u64::MAX));
    assert!(keyfall::domain::json::inexact(&found.config).is_some_and(|why| why.contains("approximately")));
}

#[tokio::test]
async fn least_privilege_role_can_edit_settings_but_not_rewrite_history() {
    let db = TestDb::demo().await;
    let mut owner = db.raw().await;
    sqlx::raw_sql(include_str!("../../assets/least_privilege_role.sql")).execute(&mut owner).await.unwrap();
    let target = db.target.clone();
    let operator_target = keyfall::store::Target {
        options: target.options.clone().username("keyfall_operator"),
        source: keyfall::store::Source::Configured,
        connect_timeout: None,
    };
    let store =
        keyfall::store::Store::connect(&operator_target).await.expect("a current schema needs no migration rights");
    store.verify(None).await.expect("the operator role can check the installation");
    // Not yet mapped to an app user: the database refuses it acting as one.
    let refused = store
        .write_setting("dev@igny8.com", "paid-2", "openai", None, set_key("sk-least-privilege-00000000"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("may not act as dev@igny8.com"), "{refused}");
    // It cannot map itself either.
    assert!(store.operator_add("keyfall_operator", "dev@igny8.com").await.is_err());
    db.store.operator_add("keyfall_operator", "dev@igny8.com").await.unwrap();
    let saved = store
        .write_setting("dev@igny8.com", "paid-2", "openai", None, set_key("sk-least-privilege-00000000"))
        .await
        .unwrap();
    assert!(matches!(saved, WriteOutcome::Created(_)));
    let mut conn = sqlx::ConnectOptions::connect(&operator_target.options).await.unwrap();
    for sql in [
        "DELETE FROM keyfall.audit_log",
        "UPDATE keyfall.users SET is_superuser = true",
        "UPDATE public.users SET is_superuser = true",
        "DROP TABLE keyfall.audit_log",
        "ALTER TABLE public.integration_settings DISABLE TRIGGER USER",
        "SELECT keyfall.keyfall_install_mapping('{}')",
        "INSERT INTO keyfall.audit_log (actor, action, table_name) VALUES ('dev@igny8.com', 'update', 'forged')",
        "INSERT INTO keyfall.operators (login, email) VALUES ('keyfall_operator', 'ops@igny8.com')",
        "UPDATE public.integration_settings SET config = '{}'",
    ] {
        let err = sqlx::raw_sql(sql).execute(&mut conn).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("permission denied") || text.contains("must be owner") || text.contains("append-only"),
            "{sql}: {text}"
        );
    }
    store.close().await;
    drop(conn);
}

#[tokio::test]
async fn impact_preview_counts_who_moves_and_writes_nothing() {
    use keyfall::domain::change::Proposal;
    let db = TestDb::demo().await;
    let paid2 = db.store.account("paid-2").await.unwrap().unwrap();
    let aws = db.store.account("aws-admin").await.unwrap().unwrap();

    // A tenant's own key: only that tenant's users move, for every openai function.
    let own_key = Proposal::Setting {
        account_id: paid2.id,
        integration_type: "openai".into(),
        config: json!({"apiKey": "sk-paid2-preview-000000000"}),
        is_active: true,
    };
    let rows = db.store.impact(&own_key).await.unwrap();
    let functions: Vec<&str> = rows.iter().map(|r| r.function.as_str()).collect();
    assert_eq!(functions, vec!["auto_cluster", "generate_content", "generate_ideas", "generate_image_prompts"]);
    for r in &rows {
        assert_eq!((r.before.to_string().as_str(), r.after.to_string().as_str()), ("aws-admin", "paid-2"));
        assert_eq!((r.accounts, r.users), (1, 3), "paid-2 and its three users");
    }

    // Fixing the seed's wrong config moves everyone, users without an account too.
    let fix = Proposal::Setting {
        account_id: aws.id,
        integration_type: "image_generation".into(),
        config: json!({"provider": "openai", "model": "dall-e-3"}),
        is_active: true,
    };
    let rows = db.store.impact(&fix).await.unwrap();
    assert!(rows.iter().all(|r| r.function == "generate_images" && r.before.to_string() == "nothing"), "{rows:?}");
    let moves: Vec<(String, i64, i64)> = rows.iter().map(|r| (r.after.to_string(), r.accounts, r.users)).collect();
    assert_eq!(
        moves,
        vec![
            // The second hop starts again at each account: tenants with their
            // own OpenAI key use it for images too.
            ("aws-admin → openai@aws-admin".to_string(), 5, 6),
            ("aws-admin → openai@(own)".to_string(), 2, 3),
            // aws-admin answers for itself: "(own)".
            ("(own) → openai@(own)".to_string(), 1, 2),
        ]
    );

    // Removing aws-admin from the chain leaves tenants without openai but
    // those with their own key (aws-admin itself, now a tenant, included).
    let chain = Proposal::Chain(vec!["default-account".into(), "default".into()]);
    let rows = db.store.impact(&chain).await.unwrap();
    let auto: Vec<_> = rows.iter().filter(|r| r.function == "auto_cluster").collect();
    assert_eq!(auto.len(), 1);
    assert_eq!(auto[0].after.to_string(), "nothing");
    assert_eq!(auto[0].accounts, 5, "all but aws-admin, acme-studio and globex, which have their own");

    // A preview writes nothing, audits nothing.
    let mut conn = db.raw().await;
    let audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE actor <> 'keyfall demo' AND action <> 'history_start'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(audit, 0);
}

#[tokio::test]
async fn concurrent_writers_lose_nothing_and_each_change_has_one_audit_row() {
    const WRITERS: usize = 8;
    const SAVES: usize = 200;
    let db = TestDb::demo().await;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            // Every writer acts as a user who may (the database checks).
            let actor = if w % 2 == 0 { "dev@igny8.com" } else { "bot@igny8.com" };
            let (mut saved, mut conflicts) = (0, 0);
            while saved < SAVES {
                // Read-modify-write: a lost update would lose a count.
                let result = store
                    .write_setting(actor, "acme-studio", "openai", None, |cur| {
                        let mut config = cur.map(|s| s.config.clone()).unwrap_or_else(|| json!({}));
                        let n = config.get("counter").and_then(Value::as_i64).unwrap_or(0);
                        config["counter"] = json!(n + 1);
                        (config, true)
                    })
                    .await;
                match result {
                    Ok(_) => saved += 1,
                    Err(StoreError::Conflict(_)) => conflicts += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let setting = db.store.setting("acme-studio", "openai").await.unwrap().setting.unwrap();
    assert_eq!(setting.config["counter"], json!(WRITERS * SAVES), "no lost update ({conflicts} conflicts retried)");
    let mut conn = db.raw().await;
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'update' AND account_slug = 'acme-studio' AND actor IN ('dev@igny8.com', 'bot@igny8.com')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(audited, (WRITERS * SAVES) as i64, "exactly one audit row per committed change");
    assert_eq!(setting.version, 1 + (WRITERS * SAVES) as i64);
}

#[tokio::test]
async fn a_bulk_statement_is_audited_row_by_row_with_one_notice() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    // More than 100 rows in one statement: the trigger's bulk branch.
    sqlx::raw_sql(
        "INSERT INTO accounts (slug, name) SELECT 'bulk-' || i, 'Bulk ' || i FROM generate_series(1, 150) i;
         INSERT INTO integration_settings (account_id, integration_type, config)
         SELECT id, 'openai', '{\"apiKey\": \"sk-bulk-FAKE-0000000000000\"}' FROM accounts WHERE slug LIKE 'bulk-%';
         UPDATE integration_settings SET is_active = false WHERE account_id IN (SELECT id FROM accounts WHERE slug LIKE 'bulk-%');
         DELETE FROM integration_settings WHERE account_id IN (SELECT id FROM accounts WHERE slug LIKE 'bulk-%');",
    )
    .execute(&mut psql)
    .await
    .expect("bulk writes by another client go through keyfall's triggers");
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT action, count(*) FROM audit_log
          WHERE table_name = 'integration_settings' AND account_slug LIKE 'bulk-%' GROUP BY action ORDER BY action",
    )
    .fetch_all(&mut psql)
    .await
    .unwrap();
    assert_eq!(rows, vec![("delete".into(), 150), ("insert".into(), 150), ("update".into(), 150)]);
}
