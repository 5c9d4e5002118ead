//! Who is acting, and who decides (DESIGN §4, issue 9): each test tries the
//! attack and fails if it works. The operator is the database login mapped
//! to an app user; the database checks every write and every raw-key read
//! against the policy in force at that moment; the audit log records the
//! login, set by the database.

use keyfall::store::{Source, Store, StoreError, Target};
use serde_json::json;

use crate::cli::keyfall;
use crate::support::TestDb;

/// The demo database with the least-privilege role applied, and that role
/// mapped to `email` (if any).
async fn with_operator_role(email: Option<&str>) -> TestDb {
    let db = TestDb::demo().await;
    let mut owner = db.raw().await;
    sqlx::raw_sql(include_str!("../../assets/least_privilege_role.sql")).execute(&mut owner).await.unwrap();
    if let Some(email) = email {
        db.store.operator_add("keyfall_operator", email).await.unwrap();
    }
    db
}

/// The same database reached as the `keyfall_operator` login. Not dropped:
/// the database belongs to `db`.
fn as_operator_login(db: &TestDb) -> std::mem::ManuallyDrop<TestDb> {
    let target = Target {
        options: db.target.options.clone().username("keyfall_operator"),
        source: Source::Configured,
        connect_timeout: None,
    };
    std::mem::ManuallyDrop::new(TestDb { store: db.store.clone(), target })
}

async fn aws_admin_openai_key(db: &TestDb) -> String {
    let mut conn = db.raw().await;
    sqlx::query_scalar(
        "SELECT s.config ->> 'apiKey' FROM integration_settings s JOIN accounts a ON a.id = s.account_id
          WHERE a.slug = 'aws-admin' AND s.integration_type = 'openai'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_tenant_or_an_invented_user_cannot_reveal_a_system_key() {
    let db = TestDb::demo().await;
    let key = aws_admin_openai_key(&db).await;
    for who in ["paid2@paid.com", "ghost@nowhere.invalid"] {
        let run = keyfall(&db, &["--as", who, "export", "--account", "aws-admin", "--reveal", "--yes"], None);
        assert_ne!(run.code, 0, "{who}: {}", run.stdout);
        assert!(!run.stdout.contains(&key) && !run.stderr.contains(&key), "{who} got the key");
        assert!(run.stderr.contains("denied by the database"), "{who}: {}", run.stderr);
    }
    let mut conn = db.raw().await;
    let reveals: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'reveal'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(reveals, 0, "a refused reveal writes no reveal row under an invented name");
    // The developer may, and it is recorded with the login.
    let run = keyfall(&db, &["--as", "dev@igny8.com", "export", "--account", "aws-admin", "--reveal", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&key));
    let (actor, login): (String, String) =
        sqlx::query_as("SELECT actor, db_login FROM audit_log WHERE action = 'reveal' ORDER BY id LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let me: String = sqlx::query_scalar("SELECT session_user::text").fetch_one(&mut conn).await.unwrap();
    assert_eq!((actor.as_str(), login.as_str()), ("dev@igny8.com", me.as_str()));
}

#[tokio::test]
async fn a_login_acts_only_as_the_users_it_is_mapped_to() {
    let db = with_operator_role(Some("paid2@paid.com")).await;
    let op = as_operator_login(&db);
    // Claiming someone else is refused before anything runs.
    let run = keyfall(
        &op,
        &["--as", "dev@igny8.com", "resolve", "--user", "paid2@paid.com", "--function", "auto_cluster"],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("may not act as dev@igny8.com"), "{}", run.stderr);
    // Mapped to one user, that is who it is; a tenant owner may not change
    // the system settings (policy A), and the database says why.
    let before = aws_admin_openai_key(&db).await;
    let run = keyfall(&op, &["set", "aws-admin", "openai", "model"], Some("gpt-4o"));
    assert_eq!(run.code, 4, "denied: {}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("denied") && run.stderr.contains("paid2@paid.com"), "{}", run.stderr);
    assert_eq!(aws_admin_openai_key(&db).await, before);
    let run = keyfall(&op, &["operator", "list"], None);
    assert_ne!(run.code, 0, "the operator map is not the operator's to read or change: {}", run.stdout);
    let run = keyfall(&op, &["operator", "add", "keyfall_operator", "dev@igny8.com"], None);
    assert_ne!(run.code, 0, "a login cannot map itself to a developer");
}

#[tokio::test]
async fn psql_as_a_tenants_role_cannot_touch_system_settings_or_forge_the_audit_log() {
    let db = with_operator_role(Some("paid2@paid.com")).await;
    let op = as_operator_login(&db);
    let mut conn = op.raw().await;
    let attacks = [
        // Through keyfall's view, as the user it is mapped to: the rules say no.
        ("BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com';
          UPDATE keyfall.integration_settings SET config = '{}' WHERE account_id = (SELECT id FROM keyfall.accounts WHERE slug = 'aws-admin');
          COMMIT;", "denied by the database"),
        // Claiming a developer it is not mapped to.
        ("BEGIN; SET LOCAL keyfall.actor = 'dev@igny8.com';
          UPDATE keyfall.integration_settings SET config = '{}' WHERE account_id = (SELECT id FROM keyfall.accounts WHERE slug = 'aws-admin');
          COMMIT;", "may not act as"),
        // Claiming nobody.
        ("UPDATE keyfall.integration_settings SET config = '{}'", "no operator"),
        // Around keyfall, straight at the app's table.
        ("UPDATE public.integration_settings SET config = '{}'", "permission denied"),
        // A forged audit row.
        ("INSERT INTO keyfall.audit_log (actor, action, table_name) VALUES ('dev@igny8.com', 'update', 'integration_settings')", "permission denied"),
        // The chain, as a tenant.
        ("BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com'; DELETE FROM keyfall.fallback_chain; COMMIT;", "denied by the database"),
        // A raw key through the checked function.
        ("BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com'; SELECT keyfall.keyfall_reveal('aws-admin', 'openai'); COMMIT;", "denied by the database"),
        // keyfall's owner-rights trigger functions on objects of its own: a
        // temporary view with a made-up OLD, a temporary table forging audit rows.
        ("CREATE TEMP VIEW fake AS SELECT s.id, s.account_id, s.integration_type, s.config, s.is_active, s.version
            FROM keyfall.integration_settings s;
          CREATE TRIGGER t INSTEAD OF UPDATE ON fake FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_settings_write();",
         "permission denied for function"),
        ("CREATE TEMP TABLE forged (x int);
          CREATE TRIGGER t AFTER INSERT ON forged FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();",
         "permission denied for function"),
    ];
    for (sql, expected) in attacks {
        let err = sqlx::raw_sql(sql).execute(&mut conn).await.unwrap_err().to_string();
        assert!(err.contains(expected), "{sql}\n→ {err}");
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
    }
    // Its own account, under policy B, it may change — and the audit row
    // names the login next to the operator.
    let mut owner = db.raw().await;
    sqlx::raw_sql("UPDATE keyfall.policy SET mode = 'per_account'").execute(&mut owner).await.unwrap();
    sqlx::raw_sql(
        "BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com';
         INSERT INTO keyfall.integration_settings (account_id, integration_type, config, is_active)
         VALUES ((SELECT id FROM keyfall.accounts WHERE slug = 'paid-2'), 'openai', '{\"apiKey\": \"sk-paid2-own-key-000000000\"}', true);
         COMMIT;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let (actor, login): (String, String) =
        sqlx::query_as("SELECT actor, db_login FROM audit_log WHERE account_slug = 'paid-2' ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!((actor.as_str(), login.as_str()), ("paid2@paid.com", "keyfall_operator"));
    // Its own key, revealed and rolled back: the record must survive. A
    // reveal without a committed request gives nothing…
    let err = sqlx::raw_sql(
        "BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com';
         SELECT keyfall.keyfall_request_key('paid-2', 'openai', 'reveal');
         SELECT keyfall.keyfall_reveal('paid-2', 'openai');",
    )
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no recorded request"), "{err}");
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
    // …and with one, the reveal row was committed before the key left.
    sqlx::raw_sql("BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com'; SELECT keyfall.keyfall_request_key('paid-2', 'openai', 'reveal'); COMMIT;")
        .execute(&mut conn)
        .await
        .unwrap();
    let key: String = {
        sqlx::raw_sql("BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com'").execute(&mut conn).await.unwrap();
        let k =
            sqlx::query_scalar("SELECT keyfall.keyfall_reveal('paid-2', 'openai')").fetch_one(&mut conn).await.unwrap();
        sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
        k
    };
    assert_eq!(key, "sk-paid2-own-key-000000000");
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'reveal' AND account_slug = 'paid-2'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(recorded, 1, "the reveal is on record although its transaction rolled back");
}

#[tokio::test]
async fn a_demoted_operator_with_an_open_session_is_refused_at_the_next_write() {
    let db = TestDb::demo().await;
    let store: Store = db.store.clone().with_operator(Some("dev@igny8.com".into()));
    let write = |model: &'static str| {
        let store = store.clone();
        async move {
            store
                .write_setting("dev@igny8.com", "aws-admin", "openai", None, move |cur| {
                    let mut c = cur.unwrap().config.clone();
                    c["model"] = json!(model);
                    (c, true)
                })
                .await
        }
    };
    write("gpt-4o").await.expect("allowed while a developer");
    // Demoted by another client while the session stays open.
    let mut psql = db.raw().await;
    sqlx::raw_sql("UPDATE users SET is_active = false WHERE email = 'dev@igny8.com'").execute(&mut psql).await.unwrap();
    let err = write("gpt-4.1").await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");
    assert!(err.to_string().contains("IsAuthenticatedAndActive"), "{err}");
    // The policy changes the answer too, at the moment of the write.
    sqlx::raw_sql(
        "UPDATE users SET is_active = true, is_superuser = false, role = 'owner' WHERE email = 'dev@igny8.com'",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    // Still a member of aws-admin, a system account: allowed by the rules.
    write("gpt-4.1").await.expect("a system account's member passes IsSystemAccountOrDeveloper");
    sqlx::raw_sql(
        "UPDATE users SET account_id = (SELECT id FROM accounts WHERE slug = 'paid-2') WHERE email = 'dev@igny8.com'",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    let err = write("gpt-4o-mini").await.unwrap_err();
    assert!(err.to_string().contains("IsSystemAccountOrDeveloper"), "{err}");
}

#[tokio::test]
async fn a_connection_test_gets_the_key_only_through_the_checked_recorded_call() {
    let db = TestDb::demo().await;
    // paid2's console (read-only for it) pressing `t` on aws-admin: the
    // runtime asks the database for the key, which refuses.
    let err = db.store.config_for_test("paid2@paid.com", "aws-admin", "openai").await.unwrap_err();
    assert!(err.to_string().contains("denied by the database"), "{err}");
    // The developer gets it, and the read is in the audit log as the raw
    // key read it is.
    let config = db.store.config_for_test("dev@igny8.com", "aws-admin", "openai").await.unwrap().unwrap();
    assert!(config["apiKey"].as_str().unwrap().starts_with("sk-demo"));
    let mut conn = db.raw().await;
    let (actor, key): (String, String) = sqlx::query_as(
        "SELECT actor, after ->> 'apiKey' FROM audit_log
          WHERE action = 'reveal' AND after ->> 'purpose' = 'test_connection' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(actor, "dev@igny8.com");
    assert!(key.starts_with('#') && key.len() == 9, "a fingerprint, never the key: {key}");
}

#[tokio::test]
async fn look_alike_identities_never_read_as_the_real_one() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    // A Cyrillic "е", and a zero-width space: both display as dev@igny8.com.
    let cyrillic = "d\u{435}v@igny8.com";
    let zero_width = "dev@igny8.com\u{200b}";
    for (email, model) in [(cyrillic, "gpt-4o"), (zero_width, "gpt-4.1")] {
        sqlx::query(
            "INSERT INTO users (email, role, is_superuser, is_active, account_id)
             SELECT $1, 'developer', true, true, id FROM accounts WHERE slug = 'aws-admin'",
        )
        .bind(email)
        .execute(&mut psql)
        .await
        .unwrap();
        let run = keyfall(&db, &["--as", email, "set", "paid-2", "openai", "model"], Some(model));
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let run = keyfall(&db, &["audit", "--account", "paid-2"], None);
    assert!(run.stdout.contains("d\\u{435}v@igny8.com"), "{}", run.stdout);
    assert!(run.stdout.contains("dev@igny8.com\\u{200b}"), "{}", run.stdout);
    assert!(!run.stdout.contains(cyrillic) && !run.stdout.contains(zero_width), "{}", run.stdout);
    let run = keyfall(&db, &["can", "--user", cyrillic], None);
    assert!(run.stdout.starts_with("d\\u{435}v@igny8.com"), "{}", run.stdout);
    // The console's user picker flags them.
    let hits = db.store.find_users("igny8", 20).await.unwrap();
    let lookalikes = hits.iter().filter(|h| keyfall::domain::text::is_lookalike(&h.email)).count();
    assert_eq!(lookalikes, 2);
}

#[tokio::test]
async fn an_operator_role_reads_keys_masked_and_gets_one_only_through_the_checked_call() {
    let db = with_operator_role(Some("dev@igny8.com")).await;
    let key = aws_admin_openai_key(&db).await;
    let op = as_operator_login(&db);
    // psql as the operator role: masked, fingerprint and last four.
    let mut conn = op.raw().await;
    let seen: String = sqlx::query_scalar(
        "SELECT config ->> 'apiKey' FROM keyfall.integration_settings
          WHERE account_id = (SELECT id FROM keyfall.accounts WHERE slug = 'aws-admin') AND integration_type = 'openai'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let fp = keyfall::domain::secret::fingerprint(&key);
    assert_eq!(seen, format!("••••••••{} {fp}", &key[key.len() - 4..]));
    // Every command shows the same, and answers as for the owner.
    for args in [
        vec!["get", "aws-admin", "openai", "--json"],
        vec!["export", "--account", "aws-admin"],
        vec!["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster", "--json"],
    ] {
        let run = keyfall(&op, &args, None);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(!run.stdout.contains(&key), "{args:?} printed the raw key");
        assert!(run.stdout.contains(&fp), "{args:?}: {}", run.stdout);
    }
    // Editing another field keeps the stored key (the masked value written
    // back means "keep it").
    let run = keyfall(&op, &["set", "aws-admin", "openai", "model"], Some("gpt-4.1"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(aws_admin_openai_key(&db).await, key, "the key survived an edit by a masked session");
    // A mask that is not the stored key's is refused, never stored.
    let err = sqlx::raw_sql(
        "BEGIN; SET LOCAL keyfall.actor = 'dev@igny8.com';
         UPDATE keyfall.integration_settings SET config = jsonb_set(config, '{apiKey}', '\"•••••••• #00000000\"')
          WHERE account_id = (SELECT id FROM keyfall.accounts WHERE slug = 'aws-admin') AND integration_type = 'openai';
         COMMIT;",
    )
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("masked key"), "{err}");
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
    assert_eq!(aws_admin_openai_key(&db).await, key);
    // The raw key: only through the checked, audited reveal.
    let run = keyfall(&op, &["export", "--account", "aws-admin", "--reveal", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&key));
}

#[tokio::test]
async fn returning_from_a_write_shows_an_operator_role_no_raw_key() {
    let db = with_operator_role(Some("dev@igny8.com")).await;
    let key = aws_admin_openai_key(&db).await;
    let op = as_operator_login(&db);
    let mut conn = op.raw().await;
    let returned: String = sqlx::query_scalar(
        "WITH w AS (SELECT set_config('keyfall.actor', 'dev@igny8.com', true))
         UPDATE keyfall.integration_settings SET is_active = is_active
          WHERE account_id = (SELECT id FROM keyfall.accounts WHERE slug = 'aws-admin') AND integration_type = 'openai'
            AND EXISTS (SELECT 1 FROM w)
         RETURNING config::text",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!returned.contains(&key), "RETURNING leaked the key: {returned}");
    assert_eq!(aws_admin_openai_key(&db).await, key, "and the key is intact");
}

#[tokio::test]
async fn a_name_that_differs_only_in_case_is_nobody_to_the_database() {
    let db = with_operator_role(Some("paid2@paid.com")).await;
    let mut owner = db.raw().await;
    // A case-sensitive app (Django's EmailField) may hold both.
    sqlx::raw_sql(
        "DROP INDEX users_email_ci;
         INSERT INTO users (email, role, is_superuser, is_active, account_id)
         SELECT 'PAID2@paid.com', 'developer', true, true, id FROM accounts WHERE slug = 'aws-admin';",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    let op = as_operator_login(&db);
    let mut conn = op.raw().await;
    let err = sqlx::raw_sql(
        "BEGIN; SET LOCAL keyfall.actor = 'PAID2@paid.com';
         UPDATE keyfall.integration_settings SET config = '{}' WHERE account_id = (SELECT id FROM keyfall.accounts WHERE slug = 'aws-admin');
         COMMIT;",
    )
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("denied by the database"), "{err}");
}
