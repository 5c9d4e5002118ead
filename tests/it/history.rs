//! Issue 23: what the history captures of the app's users and accounts
//! (and what it leaves), where it begins, its gaps, and `--at` on the
//! command line.

use crate::cli::keyfall;
use crate::support::TestDb;

async fn count(conn: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM keyfall.audit_log WHERE table_name = $1")
        .bind(table)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn users_and_accounts_are_captured_only_where_an_answer_could_change() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let users = count(&mut conn, "users").await;
    // A change to nothing keyfall records (a login's timestamp, say): no row.
    sqlx::query("UPDATE users SET created_at = created_at + interval '1 second'").execute(&mut conn).await.unwrap();
    assert_eq!(count(&mut conn, "users").await, users);
    // A role change: one row, before and after, no other column.
    sqlx::query("UPDATE users SET role = 'viewer' WHERE email = 'paid2@paid.com'").execute(&mut conn).await.unwrap();
    assert_eq!(count(&mut conn, "users").await, users + 1);
    let (before, after): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "SELECT before, after FROM keyfall.audit_log WHERE table_name = 'users' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(before["role"], "owner");
    assert_eq!(after["role"], "viewer");
    let keys: Vec<&String> = after.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["account_id", "email", "is_active", "is_superuser", "role"]);
    let accounts = count(&mut conn, "accounts").await;
    sqlx::query("UPDATE accounts SET status = 'suspended' WHERE slug = 'paid-2'").execute(&mut conn).await.unwrap();
    assert_eq!(count(&mut conn, "accounts").await, accounts + 1);
}

#[tokio::test]
async fn a_key_of_whitespace_keeps_its_verdict_in_the_history() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    sqlx::query(
        "UPDATE integration_settings SET config = '{\"apiKey\": \"   \"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'aws-admin')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let after: serde_json::Value = sqlx::query_scalar(
        "SELECT after FROM keyfall.audit_log WHERE table_name = 'integration_settings' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    // Redacted to a fingerprint, which alone would look like a key.
    assert!(after["config"]["apiKey"].as_str().unwrap().starts_with('#'));
    assert_eq!(after["verdict"], "no_api_key");
    // A plain key needs no recorded verdict.
    let before: serde_json::Value = sqlx::query_scalar(
        "SELECT before FROM keyfall.audit_log WHERE table_name = 'integration_settings' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(before.get("verdict").is_none(), "{before}");
}

#[tokio::test]
async fn at_on_the_command_line_states_the_moment_and_the_history() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    // paid-2 gets its own OpenAI key; before that entry it fell back.
    sqlx::query(
        "INSERT INTO integration_settings (account_id, integration_type, config)
         SELECT id, 'openai', '{\"apiKey\": \"sk-paid2-own-key-0000aaaa1111\"}' FROM accounts WHERE slug = 'paid-2'
         ON CONFLICT (account_id, integration_type) DO UPDATE SET config = EXCLUDED.config",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let entry: i64 =
        sqlx::query_scalar("SELECT max(id) FROM keyfall.audit_log WHERE table_name = 'integration_settings'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let at = format!("#{entry}");
    let now = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster"], None);
    assert!(now.stdout.contains("ANSWER") && now.stdout.contains("1 paid-2"), "{}", now.stdout);
    let then = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster", "--at", &at], None);
    assert_eq!(then.code, 0, "{}{}", then.stdout, then.stderr);
    assert!(then.stdout.starts_with(&format!("as of just before {at} (")), "{}", then.stdout);
    assert!(then.stdout.contains("history since ") && then.stdout.contains("(attach)"), "{}", then.stdout);
    assert!(then.stdout.contains("judged under today's rules"), "{}", then.stdout);
    let first = then.stdout.lines().find(|l| l.contains("1 paid-2")).unwrap_or_default();
    assert!(first.contains("skipped  no_row"), "{}", then.stdout);
    assert!(!then.stdout.contains("sk-paid2"), "{}", then.stdout);
    let json = keyfall(
        &db,
        &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster", "--at", &at, "--json"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["as_of"]["entry"], entry);
    assert_eq!(v["answered_by"], "aws-admin");
    assert_eq!(v["history"]["start"]["why"], "attach");
    // Before history began: keyfall does not know, and says so.
    let before = keyfall(
        &db,
        &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster", "--at", "2001-01-01"],
        None,
    );
    assert_ne!(before.code, 0);
    assert!(
        before.stderr.contains("keyfall does not know") && before.stderr.contains("history begins"),
        "{}",
        before.stderr
    );
    // get, can and report --at answer too.
    let get = keyfall(&db, &["get", "paid-2", "openai", "--at", &at], None);
    assert!(get.stdout.contains("paid-2 · openai · no own setting · inherits from aws-admin"), "{}", get.stdout);
    let can = keyfall(&db, &["can", "--user", "paid2@paid.com", "--at", &at], None);
    assert!(can.stdout.starts_with("as of just before") && can.stdout.contains("view_settings"), "{}", can.stdout);
    let report = keyfall(&db, &["report", "--at", &at], None);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(report.stdout.starts_with("as of just before"), "{}", report.stdout);
}

#[tokio::test]
async fn a_detach_is_a_gap_the_past_cannot_cross() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let before_gap: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut conn).await.unwrap();
    db.store.detach().await.unwrap();
    sqlx::query("UPDATE users SET role = 'viewer' WHERE email = 'paid2@paid.com'").execute(&mut conn).await.unwrap();
    db.store.install_mapping(&keyfall::store::Mapping::demo()).await.unwrap();
    let cut = keyfall::domain::history::Cut { at: before_gap, entry: None };
    let err = db.store.past(cut, Some("paid2@paid.com"), Some("auto_cluster"), &[]).await.unwrap_err();
    assert!(err.to_string().contains("gap after it") && err.to_string().contains("detached"), "{err}");
    let now: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut conn).await.unwrap();
    let past = db
        .store
        .past(keyfall::domain::history::Cut { at: now, entry: None }, Some("paid2@paid.com"), None, &[])
        .await
        .unwrap();
    assert_eq!(past.data.user.unwrap().role, keyfall::domain::Role::Viewer);
}

#[tokio::test]
async fn the_blast_radius_of_a_key_is_a_timeline() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let key = "sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9";
    // The key is replaced: its stretch ends at that entry.
    sqlx::query(
        "UPDATE integration_settings SET config = '{\"apiKey\": \"sk-rotated-0000aaaa1111bbbb\"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'aws-admin')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let rotated: i64 =
        sqlx::query_scalar("SELECT max(id) FROM keyfall.audit_log WHERE table_name = 'integration_settings'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let run = keyfall(&db, &["key-history"], Some(key));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains(key) && !run.stderr.contains(key));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("key #") && lines[0].contains("history since"), "{}", run.stdout);
    assert!(
        lines[1].starts_with("aws-admin openai config.apiKey: ") && lines[1].ends_with(&format!("(#{rotated})")),
        "{}",
        run.stdout
    );
    let who = lines.iter().find(|l| l.contains("resolved to it for auto_cluster")).copied().unwrap_or_default();
    assert!(who.contains("paid-2") && who.starts_with("  "), "{}", run.stdout);
    let json = keyfall(&db, &["key-history", "--json"], Some(key));
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let s = &v["stretches"][0];
    assert_eq!(s["to_entry"], rotated);
    assert!(s["users"].as_i64().unwrap() > 0);
    let intervals = s["intervals"].as_array().unwrap();
    assert_eq!(intervals.last().unwrap()["to_entry"], rotated, "{s:#}");
    let fp = v["fingerprint"].as_str().unwrap().to_string();
    // The fingerprint without its # is read too.
    let csv = keyfall(&db, &["key-history", "--csv", "--fingerprint", fp.trim_start_matches('#')], None);
    assert!(csv.stdout.starts_with("account,integration_type,field,from,from_entry,to,to_entry,"), "{}", csv.stdout);
    assert_eq!(csv.stdout.lines().count(), 1 + intervals.len(), "{}", csv.stdout);
    // A key no row held: exit 1.
    let none = keyfall(&db, &["key-history", "--fingerprint", "#00000000"], None);
    assert_eq!(none.code, 1, "{}", none.stdout);
}

#[tokio::test]
async fn a_role_value_map_is_applied_by_the_capture_as_the_views_apply_it() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    // 'admin' is in two lists: the first key in order ('owner') takes it.
    sqlx::query(
        "SELECT keyfall.keyfall_install_mapping(jsonb_set((SELECT spec FROM keyfall.mapping), '{users,role_values}', \
         '{\"owner\": [\"owner\", \"admin\"], \"viewer\": [\"viewer\", \"editor\", \"admin\"]}'))",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let users = count(&mut conn, "users").await;
    // owner → admin: both are keyfall's 'owner': nothing recorded.
    sqlx::query("UPDATE users SET role = 'admin' WHERE email = 'paid2@paid.com'").execute(&mut conn).await.unwrap();
    assert_eq!(count(&mut conn, "users").await, users);
    // admin → editor: 'owner' → 'viewer', one row, in keyfall's values.
    sqlx::query("UPDATE users SET role = 'editor' WHERE email = 'paid2@paid.com'").execute(&mut conn).await.unwrap();
    assert_eq!(count(&mut conn, "users").await, users + 1);
    let (before, after): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "SELECT before, after FROM keyfall.audit_log WHERE table_name = 'users' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((before["role"].as_str(), after["role"].as_str()), (Some("owner"), Some("viewer")));
    // The same as the view shows it now.
    let shown: String = sqlx::query_scalar("SELECT role FROM keyfall.users WHERE email = 'paid2@paid.com'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(shown, "viewer");
}

/// The vouched intervals of the first stretch of `v` (key-history --json).
fn vouched(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["stretches"][0]["intervals"].as_array().unwrap().iter().filter(|i| i["cannot_vouch"].is_null()).cloned().collect()
}

#[tokio::test]
async fn the_blast_radius_splits_at_every_change_that_alters_it_and_only_there() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let fp = keyfall::domain::secret::fingerprint("sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9");
    let history = |db: &TestDb| {
        let run = keyfall(db, &["key-history", "--fingerprint", &fp, "--json"], None);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
    };
    // The demo's own writes since history began have split it already.
    let first = vouched(&history(&db));
    let n = first.len();
    let users = first[n - 1]["users"].as_i64().unwrap();
    let mut accounts: Vec<&str> = Vec::new();
    for i in &first {
        accounts.retain(|a| !i["left"].as_array().unwrap().iter().any(|l| l == a));
        accounts.extend(i["joined"].as_array().unwrap().iter().map(|j| j.as_str().unwrap()));
    }
    assert!(accounts.contains(&"paid-2"), "{first:#?}");
    assert_eq!(accounts.len() as i64, first[n - 1]["accounts"].as_i64().unwrap(), "{first:#?}");

    // paid-2 gets a key of its own: it stops resolving to aws-admin's.
    sqlx::query(
        "INSERT INTO integration_settings (account_id, integration_type, config)
         SELECT id, 'openai', '{\"apiKey\": \"sk-paid2-own-key-0000aaaa1111\"}' FROM accounts WHERE slug = 'paid-2'
         ON CONFLICT (account_id, integration_type) DO UPDATE SET config = EXCLUDED.config",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // A change that alters nothing for this key: merged, no new interval.
    sqlx::query(
        "UPDATE integration_settings SET config = config || '{\"model\": \"gpt-4o\"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'paid-2')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // paid-2's user leaves its account: users without one walk the chain.
    sqlx::query("UPDATE users SET account_id = NULL WHERE email = 'paid2@paid.com'").execute(&mut conn).await.unwrap();
    let paid2_users: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE account_id = (SELECT id FROM accounts WHERE slug = 'paid-2')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let now = vouched(&history(&db));
    assert_eq!(now.len(), n + 2, "{now:#?}");
    assert_eq!(now[n]["left"], serde_json::json!(["paid-2"]), "{now:#?}");
    assert_eq!(now[n]["joined"], serde_json::json!([]), "{now:#?}");
    assert_eq!(now[n]["users"].as_i64().unwrap(), users - paid2_users - 1, "{now:#?}");
    assert_eq!(now[n + 1]["users"].as_i64().unwrap(), users - paid2_users, "{now:#?}");
    assert!(now[n + 1]["to_entry"].is_null());
    let text = keyfall(&db, &["key-history", "--fingerprint", &fp], None);
    assert!(text.stdout.contains("; − paid-2"), "{}", text.stdout);

    // A gap: what lies before its end cannot be vouched for.
    db.store.detach().await.unwrap();
    sqlx::query("UPDATE users SET role = 'viewer' WHERE email = 'paid2@paid.com'").execute(&mut conn).await.unwrap();
    db.store.install_mapping(&keyfall::store::Mapping::demo()).await.unwrap();
    let after = history(&db);
    let intervals = after["stretches"][0]["intervals"].as_array().unwrap();
    let blind: Vec<&serde_json::Value> = intervals.iter().filter(|i| i["cannot_vouch"].is_string()).collect();
    assert!(blind.iter().any(|i| i["cannot_vouch"].as_str().unwrap().contains("gap")), "{after:#}");
    assert_eq!(vouched(&after).len(), 1, "{after:#}");
}
