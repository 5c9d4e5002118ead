//! Issue 23, point 5: `keyfall restore --at WHEN` brings a setting, the
//! chain or the policy back to how it was, through the normal preview, the
//! version check and the audit log — keys only where the log can vouch for
//! them (a fingerprint equal to today's, or the key given again).

use serde_json::Value;

use crate::cli::keyfall;
use crate::support::TestDb;

const DEV: &str = "dev@igny8.com";

/// The id of the newest audit entry of a table.
async fn last_entry(conn: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query_scalar("SELECT max(id) FROM keyfall.audit_log WHERE table_name = $1")
        .bind(table)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn run(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(conn).await.unwrap();
}

/// A setting's (config, version), if it exists.
async fn stored(conn: &mut sqlx::PgConnection, slug: &str, ty: &str) -> Option<(Value, i64)> {
    sqlx::query_as(
        "SELECT s.config, s.version FROM integration_settings s JOIN accounts a ON a.id = s.account_id
          WHERE a.slug = $1 AND s.integration_type = $2",
    )
    .bind(slug)
    .bind(ty)
    .fetch_optional(conn)
    .await
    .unwrap()
}

async fn chain(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar("SELECT account_slug FROM fallback_chain ORDER BY position").fetch_all(conn).await.unwrap()
}

fn restore(db: &TestDb, who: &str, rest: &[&str], stdin: Option<&str>) -> crate::cli::Run {
    let args: Vec<&str> = ["--as", who, "restore"].into_iter().chain(rest.iter().copied()).collect();
    keyfall(db, &args, stdin)
}

#[tokio::test]
async fn a_setting_changed_twice_goes_back_to_each_moment_previewed_and_audited() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let key = "sk-demo-FAKE-acme-studio-own-key-not-real-77Qx";
    let acme = "(SELECT id FROM accounts WHERE slug = 'acme-studio')";
    run(
        &mut conn,
        &format!(
            "UPDATE integration_settings SET config = config || '{{\"model\": \"gpt-4.1\"}}'
              WHERE account_id = {acme} AND integration_type = 'openai'"
        ),
    )
    .await;
    let first = last_entry(&mut conn, "integration_settings").await;
    let between: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut conn).await.unwrap();
    run(
        &mut conn,
        &format!(
            "UPDATE integration_settings SET config = config || '{{\"model\": \"o3\", \"temperature\": 0.2}}'
              WHERE account_id = {acme} AND integration_type = 'openai'"
        ),
    )
    .await;
    let second = last_entry(&mut conn, "integration_settings").await;
    let (_, version) = stored(&mut conn, "acme-studio", "openai").await.unwrap();

    // The preview: the same lines as `set --dry-run`, nothing written.
    let at = format!("#{second}");
    let dry = restore(&db, DEV, &["--account", "acme-studio", "--type", "openai", "--at", &at, "--dry-run"], None);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout.starts_with(&format!("restore acme-studio openai v{version} to as of just before #{second} (")),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("    config.model: o3 → gpt-4.1\n"), "{}", dry.stdout);
    assert!(dry.stdout.contains("    config.temperature: 0.2 → —\n"), "{}", dry.stdout);
    assert!(dry.stdout.contains("key apiKey: today's key is the key of"), "{}", dry.stdout);
    assert!(dry.stdout.contains("impact"), "{}", dry.stdout);
    assert!(dry.stdout.ends_with("not applied (dry run)\n"), "{}", dry.stdout);
    assert!(!dry.stdout.contains(key) && !dry.stderr.contains(key));
    assert_eq!(stored(&mut conn, "acme-studio", "openai").await.unwrap().1, version);

    // To the moment between the two changes, given as a time.
    let iso = between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let done = restore(&db, DEV, &["--account", "acme-studio", "--type", "openai", "--at", &iso, "--yes"], None);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    assert!(done.stdout.contains("restored acme-studio openai as of "), "{}", done.stdout);
    let (config, now) = stored(&mut conn, "acme-studio", "openai").await.unwrap();
    assert_eq!(config, serde_json::json!({"apiKey": key, "model": "gpt-4.1"}));
    assert!(now > version);
    // The audit row is an ordinary update by the operator, keys as
    // fingerprints, and the write carried the restore's note.
    let (actor, before, after): (String, Value, Value) = sqlx::query_as(
        "SELECT actor, before, after FROM keyfall.audit_log WHERE table_name = 'integration_settings'
          ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let stamp = between.format("%Y-%m-%d %H:%M:%S UTC");
    assert_eq!(actor, format!("{DEV} (restored to as of {stamp})"));
    assert_eq!(before["config"]["model"], "o3");
    assert_eq!(after["config"]["model"], "gpt-4.1");
    assert!(after["config"]["apiKey"].as_str().unwrap().starts_with('#'));

    // To the moment before the first change: the demo's row.
    let back = restore(
        &db,
        DEV,
        &["--account", "acme-studio", "--type", "openai", "--at", &format!("#{first}"), "--yes"],
        None,
    );
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    let (config, _) = stored(&mut conn, "acme-studio", "openai").await.unwrap();
    assert_eq!(config, serde_json::json!({"apiKey": key, "model": "gpt-4o"}));
    // Once more: nothing left to restore.
    let again = restore(
        &db,
        DEV,
        &["--account", "acme-studio", "--type", "openai", "--at", &format!("#{first}"), "--yes"],
        None,
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.starts_with("nothing to restore: acme-studio openai is as it was at "), "{}", again.stdout);
}

#[tokio::test]
async fn a_deleted_setting_needs_its_key_again_and_one_created_later_is_deleted() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let key = "sk-demo-FAKE-acme-studio-own-key-not-real-77Qx";
    run(
        &mut conn,
        "DELETE FROM integration_settings WHERE integration_type = 'openai'
            AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .await;
    let deleted = format!("#{}", last_entry(&mut conn, "integration_settings").await);
    let args = ["--account", "acme-studio", "--type", "openai", "--at", deleted.as_str(), "--yes"];
    // The log keeps the key's fingerprint only: without it, refused, plainly.
    let refused = restore(&db, DEV, &args, None);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("cannot be restored from the log") && refused.stderr.contains("--keep-key"),
        "{}",
        refused.stderr
    );
    assert!(stored(&mut conn, "acme-studio", "openai").await.is_none());
    // Another key: refused, never quoted.
    let wrong = "sk-not-the-key-of-that-moment-0000111122223333";
    let refused = restore(&db, DEV, &args, Some(wrong));
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("is not the key of that moment"), "{}", refused.stderr);
    assert!(!refused.stderr.contains(wrong) && !refused.stdout.contains(wrong));
    assert!(stored(&mut conn, "acme-studio", "openai").await.is_none());
    // The key of that moment, on stdin: the row comes back whole.
    let done = restore(&db, DEV, &args, Some(&format!("{key}\n")));
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    assert!(done.stdout.contains("it does not exist today: the restore creates it"), "{}", done.stdout);
    assert!(done.stdout.contains("key apiKey: the key given is the key of"), "{}", done.stdout);
    assert!(!done.stdout.contains(key) && !done.stderr.contains(key));
    let (config, _) = stored(&mut conn, "acme-studio", "openai").await.unwrap();
    assert_eq!(config, serde_json::json!({"apiKey": key, "model": "gpt-4o"}));

    // A setting created after the moment: restoring means deleting it.
    run(
        &mut conn,
        "INSERT INTO integration_settings (account_id, integration_type, config)
         SELECT id, 'openai', '{\"model\": \"gpt-4o-mini\"}' FROM accounts WHERE slug = 'paid-2'",
    )
    .await;
    let created = format!("#{}", last_entry(&mut conn, "integration_settings").await);
    let args = ["--account", "paid-2", "--type", "openai", "--at", created.as_str()];
    let dry = restore(&db, DEV, &[&args[..], &["--dry-run"]].concat(), None);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("it did not exist then: the restore deletes it"), "{}", dry.stdout);
    assert!(dry.stdout.contains("    config.model: gpt-4o-mini → —"), "{}", dry.stdout);
    assert!(stored(&mut conn, "paid-2", "openai").await.is_some());
    let done = restore(&db, DEV, &[&args[..], &["--yes"]].concat(), None);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    assert!(stored(&mut conn, "paid-2", "openai").await.is_none());
    let action: String = sqlx::query_scalar(
        "SELECT action FROM keyfall.audit_log WHERE table_name = 'integration_settings' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(action, "delete");
}

#[tokio::test]
async fn keep_key_restores_everything_but_a_key_the_log_cannot_give_back() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let rotated = "sk-rotated-0000aaaa1111bbbb2222cccc";
    run(
        &mut conn,
        &format!(
            "UPDATE integration_settings SET config = config || '{{\"apiKey\": \"{rotated}\", \"model\": \"o3\"}}'
              WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'aws-admin')"
        ),
    )
    .await;
    let at = format!("#{}", last_entry(&mut conn, "integration_settings").await);
    let base = ["--account", "aws-admin", "--type", "openai", "--at", at.as_str()];
    // The preview says where the key would come from.
    let dry = restore(&db, DEV, &[&base[..], &["--dry-run"]].concat(), None);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("key apiKey: the key of just before") && dry.stdout.contains("give that key on stdin"),
        "{}",
        dry.stdout
    );
    let kept = restore(&db, DEV, &[&base[..], &["--keep-key", "--dry-run"]].concat(), None);
    assert!(kept.stdout.contains("today's key (#") && kept.stdout.contains("(--keep-key)"), "{}", kept.stdout);
    assert!(!kept.stdout.contains("config.apiKey"), "the key does not move: {}", kept.stdout);
    let done = restore(&db, DEV, &[&base[..], &["--keep-key", "--yes"]].concat(), None);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let (config, _) = stored(&mut conn, "aws-admin", "openai").await.unwrap();
    assert_eq!(config["apiKey"], rotated);
    assert_eq!(config["model"], "gpt-4o-mini");
    assert!(!done.stdout.contains(rotated) && !done.stderr.contains(rotated));
}

#[tokio::test]
async fn a_row_changed_since_the_preview_is_a_conflict_and_rights_and_history_are_checked() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    run(
        &mut conn,
        "UPDATE integration_settings SET config = config || '{\"model\": \"o3\"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .await;
    let at = format!("#{}", last_entry(&mut conn, "integration_settings").await);
    let (_, seen) = stored(&mut conn, "acme-studio", "openai").await.unwrap();
    // Someone writes between the preview (at v`seen`) and the save.
    run(
        &mut conn,
        "UPDATE integration_settings SET config = config || '{\"model\": \"o4\"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .await;
    let seen = seen.to_string();
    let args = ["--account", "acme-studio", "--type", "openai", "--at", at.as_str()];
    let conflict = restore(&db, DEV, &[&args[..], &["--expect-version", &seen, "--yes"]].concat(), None);
    assert_eq!(conflict.code, 1, "{}{}", conflict.stdout, conflict.stderr);
    assert!(conflict.stderr.contains("conflict"), "{}", conflict.stderr);
    assert_eq!(stored(&mut conn, "acme-studio", "openai").await.unwrap().0["model"], "o4");

    // An owner of a tenant may not modify under the system-only policy.
    let denied = restore(&db, "owner@acme.example", &[&args[..], &["--yes"]].concat(), None);
    assert_eq!(denied.code, 4, "{}{}", denied.stdout, denied.stderr);
    assert!(denied.stderr.contains("denied"), "{}", denied.stderr);
    assert_eq!(stored(&mut conn, "acme-studio", "openai").await.unwrap().0["model"], "o4");
    let denied = restore(&db, "owner@acme.example", &["--chain", "--at", &at, "--yes"], None);
    assert_eq!(denied.code, 4, "{}", denied.stderr);

    // Before history: keyfall does not know, and writes nothing.
    let before =
        restore(&db, DEV, &["--account", "acme-studio", "--type", "openai", "--at", "2001-01-01", "--yes"], None);
    assert_eq!(before.code, 2, "{}", before.stderr);
    assert!(
        before.stderr.contains("keyfall does not know") && before.stderr.contains("history begins"),
        "{}",
        before.stderr
    );
    let before = restore(&db, DEV, &["--policy", "--at", "2001-01-01", "--yes"], None);
    assert!(before.stderr.contains("keyfall does not know"), "{}", before.stderr);
}

#[tokio::test]
async fn the_chain_and_the_policy_go_back_too() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let was = chain(&mut conn).await;
    let policy_was: String = sqlx::query_scalar("SELECT mode FROM policy").fetch_one(&mut conn).await.unwrap();
    let mark: i64 = sqlx::query_scalar("SELECT max(id) + 1 FROM keyfall.audit_log").fetch_one(&mut conn).await.unwrap();
    run(&mut conn, "DELETE FROM fallback_chain WHERE account_slug = 'default-account'").await;
    run(&mut conn, "UPDATE policy SET mode = 'per_account'").await;
    assert_ne!(chain(&mut conn).await, was);
    let at = format!("#{mark}");

    let dry = restore(&db, DEV, &["--chain", "--at", &at, "--dry-run"], None);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.starts_with("restore the chain to as of just before"), "{}", dry.stdout);
    assert!(dry.stdout.contains(&format!("] → [{}]", was.join(", "))), "{}", dry.stdout);
    let done = restore(&db, DEV, &["--chain", "--at", &at, "--yes"], None);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    assert_eq!(chain(&mut conn).await, was);

    let dry = restore(&db, DEV, &["--policy", "--at", &at, "--dry-run"], None);
    assert!(dry.stdout.contains(&format!("policy: per_account → {policy_was}")), "{}", dry.stdout);
    let done = restore(&db, DEV, &["--policy", "--at", &at, "--yes"], None);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let policy: String = sqlx::query_scalar("SELECT mode FROM policy").fetch_one(&mut conn).await.unwrap();
    assert_eq!(policy, policy_was);
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM keyfall.audit_log WHERE table_name IN ('fallback_chain', 'policy') AND id > $1 + 1",
    )
    .bind(mark)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!actors.is_empty(), "the chain and the policy writes are audited");
    assert!(actors.iter().all(|a| *a == format!("{DEV} (restored to as of #{mark})")), "{actors:?}");
}

/// The console: `R` on an audit entry opens the editor with the setting as
/// it was just before that entry, the restored fields marked, the key of
/// then checked if typed, and the save goes through the preview.
#[tokio::test]
async fn the_audit_view_restores_to_before_an_entry_through_the_editor() {
    use crate::console::{console, keys, screen, stage};
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let rotated = "sk-rotated-0000aaaa1111bbbb2222cccc";
    let aws = "(SELECT id FROM accounts WHERE slug = 'aws-admin')";
    run(
        &mut conn,
        &format!(
            "BEGIN; SET LOCAL keyfall.actor = 'ops@igny8.com';
             UPDATE integration_settings SET config = config || '{{\"model\": \"gpt-4.1\"}}'
              WHERE account_id = {aws} AND integration_type = 'openai'; COMMIT;"
        ),
    )
    .await;
    run(
        &mut conn,
        &format!(
            "BEGIN; SET LOCAL keyfall.actor = 'ops@igny8.com';
             UPDATE integration_settings
                SET config = (config || '{{\"model\": \"o3\", \"apiKey\": \"{rotated}\"}}'::jsonb) - 'temperature'
              WHERE account_id = {aws} AND integration_type = 'openai'; COMMIT;"
        ),
    )
    .await;
    let second = last_entry(&mut conn, "integration_settings").await;
    let mut model = console(&db, Some(DEV), (80, 24)).await;
    keys(&db.store, &mut model, &["a"]).await;
    assert!(screen(&model).contains("R restore"), "{}", screen(&model));
    // The newest entry is selected: back to just before it.
    keys(&db.store, &mut model, &["R"]).await;
    assert_eq!(stage(&model), "editing", "{}", screen(&model));
    let text = screen(&model);
    let marked = format!("(from just before #{second})");
    assert!(text.contains("gpt-4.1") && text.contains(&marked), "{text}");
    assert!(text.contains("the key of then (#35c712e1) cannot be"), "the key is said plainly: {text}");
    // The entry's id depends on what the migrations write: kept out, the columns kept.
    let scrubbed = text.replace(&format!("#{second}"), &format!("#{}", "N".repeat(second.to_string().len())));
    insta::assert_snapshot!("restore_from_audit_80x24", scrubbed);
    // Another key typed where the key of then belongs: refused.
    keys(&db.store, &mut model, &["x", "ctrl-s"]).await;
    assert_eq!(stage(&model), "editing");
    assert!(screen(&model).contains("is not the key of just before"), "{}", screen(&model));
    // None typed: today's key stays; the preview shows what comes back.
    keys(&db.store, &mut model, &["backspace", "ctrl-s"]).await;
    assert_eq!(stage(&model), "confirm", "{}", screen(&model));
    let text = screen(&model);
    assert!(text.contains("o3 → gpt-4.1") && text.contains("— → 0.7"), "{text}");
    keys(&db.store, &mut model, &["enter"]).await;
    let (config, _) = stored(&mut conn, "aws-admin", "openai").await.unwrap();
    assert_eq!(config["model"], "gpt-4.1");
    assert_eq!(config["temperature"], 0.7);
    assert_eq!(config["apiKey"], rotated, "the key the log cannot give back stays today's");
    let last = db.store.audit(Some("aws-admin"), Some("openai"), None, 1).await.unwrap();
    assert_eq!(last[0].actor, format!("{DEV} (restored to as of #{second})"));
    // The audit view says so (wide enough for the line to stay whole).
    let cmds = keyfall::app::update(&mut model, keyfall::app::Msg::Resize { width: 160, height: 48 });
    crate::support::drive(&db.store, &mut model, cmds).await;
    keys(&db.store, &mut model, &["a"]).await;
    assert!(screen(&model).contains("update (restored to as of #"), "{}", screen(&model));
}

/// A moment across a gap (keyfall detached meanwhile): what changed then was
/// never recorded, so the past cannot be rebuilt — refused, nothing written.
#[tokio::test]
async fn a_moment_before_a_gap_is_refused() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let before_gap: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut conn).await.unwrap();
    db.store.detach().await.unwrap();
    run(
        &mut conn,
        "UPDATE integration_settings SET config = config || '{\"model\": \"o3\"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .await;
    db.store.install_mapping(&keyfall::store::Mapping::demo()).await.unwrap();
    let at = before_gap.to_rfc3339();
    let refused = restore(&db, DEV, &["--account", "acme-studio", "--type", "openai", "--at", &at, "--yes"], None);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("keyfall does not know") && refused.stderr.contains("gap"), "{}", refused.stderr);
    assert_eq!(stored(&mut conn, "acme-studio", "openai").await.unwrap().0["model"], "o3");
}

/// A least-privilege operator role reads keys masked: today's key, the one
/// of then, comes back as its mask, which the database writes back as the
/// stored key — the restore never sees nor loses it.
#[tokio::test]
async fn a_least_privilege_operator_restores_without_reading_the_key() {
    let db = TestDb::demo().await;
    let mut owner = db.raw().await;
    run(&mut owner, include_str!("../../assets/least_privilege_role.sql")).await;
    db.store.operator_add("keyfall_operator", DEV).await.unwrap();
    let key = "sk-demo-FAKE-acme-studio-own-key-not-real-77Qx";
    run(
        &mut owner,
        "UPDATE integration_settings SET config = config || '{\"model\": \"o3\"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .await;
    let at = format!("#{}", last_entry(&mut owner, "integration_settings").await);
    let operator = db.target.options.clone().username("keyfall_operator");
    let url = sqlx::ConnectOptions::to_url_lossy(&operator).to_string();
    let args = [
        "--database-url",
        url.as_str(),
        "--as",
        DEV,
        "restore",
        "--account",
        "acme-studio",
        "--type",
        "openai",
        "--at",
        at.as_str(),
        "--yes",
    ];
    let done = crate::cli::keyfall_with(&args, None, &[]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    assert!(done.stdout.contains("key apiKey: today's key is the key of"), "{}", done.stdout);
    let (config, _) = stored(&mut owner, "acme-studio", "openai").await.unwrap();
    assert_eq!(config, serde_json::json!({"apiKey": key, "model": "gpt-4o"}));
    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM keyfall.audit_log WHERE table_name = 'integration_settings' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(actor, format!("{DEV} (restored to as of {at})"));
}
