//! An app whose settings table has no unique (account, integration_type)
//! constraint (issue 19, point 5): the Django app of the tests migrated to
//! its model without `unique_together` (`kf.py evolve drop_unique`), with
//! several rows for some pairs — made with psql before attach and with the
//! ORM after. keyfall attaches; resolve, the report and `resolve --batch`
//! answer as the app's `get_model_config` does (its `.first()` takes the
//! lowest id); the trace and `get` say which row answers; every write to
//! such a pair is refused naming the rows, and nothing changes.

use keyfall::domain::change::Proposal;
use keyfall::domain::resolve::resolve;
use keyfall::store::{ImportItem, Store, StoreError};
use serde_json::{Value, json};

use crate::cli::keyfall;
use crate::django::{kf, kf_lines};
use crate::support::TestDb;

/// The Django app seeded, its model without `unique_together`, a developer
/// to act as, and two pairs with two rows each (made with psql):
/// aws-admin's openai, whose lowest row is inactive (the app moves on,
/// though the other row would answer), and default's openai, whose lowest
/// row answers (the other is inactive).
async fn loose_app() -> TestDb {
    let db = TestDb::bare().await;
    kf(&db.target, &["migrate"]);
    kf(&db.target, &["seed", "--seed", "24", "--tenants", "12", "--users", "90"]);
    let evolved = kf(&db.target, &["evolve", "drop_unique", "--account", "tenant-1"]);
    assert_eq!(evolved["ok"], true, "{evolved}");
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        r#"INSERT INTO igny8_user (email, role, is_superuser, is_active, account_id)
           SELECT 'dev@igny8.com', 'developer', true, true, id FROM igny8_account WHERE slug = 'aws-admin';
           DELETE FROM igny8_integration_settings s USING igny8_account a
            WHERE a.id = s.account_id AND a.slug IN ('aws-admin', 'default') AND s.integration_type = 'openai';
           INSERT INTO igny8_integration_settings (account_id, integration_type, config, is_active, created_at, updated_at)
           SELECT a.id, 'openai', v.config::jsonb, v.active, now(), now()
             FROM igny8_account a
             JOIN (VALUES ('aws-admin', '{"apiKey": "sk-loose-first-0000000001", "model": "gpt-4o"}', false, 1),
                          ('aws-admin', '{"apiKey": "sk-loose-second-000000002", "model": "gpt-4.1"}', true, 2),
                          ('default', '{"apiKey": "sk-loose-default-00000003", "model": "gpt-4o"}', true, 3),
                          ('default', '{"apiKey": "sk-loose-default-00000004", "model": "o3"}', false, 4))
                  AS v(slug, config, active, n) ON v.slug = a.slug
            ORDER BY v.n;"#,
    )
    .execute(&mut psql)
    .await
    .unwrap();
    db
}

/// The ids of one pair's rows, lowest first.
async fn pair_ids(db: &TestDb, slug: &str, ty: &str) -> Vec<i64> {
    let mut psql = db.raw().await;
    sqlx::query_scalar(
        "SELECT s.id FROM igny8_integration_settings s JOIN igny8_account a ON a.id = s.account_id
          WHERE a.slug = $1 AND s.integration_type = $2 ORDER BY s.id",
    )
    .bind(slug)
    .bind(ty)
    .fetch_all(&mut psql)
    .await
    .unwrap()
}

/// The app's table as text, to show a refused write changed nothing.
async fn table_text(db: &TestDb) -> String {
    let mut psql = db.raw().await;
    sqlx::query_scalar(
        "SELECT string_agg(format('%s %s %s %s %s', id, account_id, integration_type, config, is_active), E'\n' ORDER BY id)
           FROM igny8_integration_settings",
    )
    .fetch_one(&mut psql)
    .await
    .unwrap()
}

/// Every user × function: keyfall's resolver, its report and `resolve
/// --batch` each answer as the app's `get_model_config` does.
async fn answers_as_the_app(db: &TestDb, store: &Store, when: &str) {
    let answers = kf_lines(&db.target, &["answers"]);
    assert!(answers.len() >= 90 * 5, "{when}: {} answers", answers.len());
    let report = store.report().await.unwrap();
    for a in &answers {
        let (email, function) = (a["user"].as_str().unwrap(), a["function"].as_str().unwrap());
        let data = store.subject(Some(email), Some(function)).await.unwrap();
        let r = resolve(&data.snapshot, data.user.as_ref().unwrap(), data.function.as_ref().unwrap());
        let context = || format!("{when}: {email} · {function}: django {a}\nkeyfall {}", crate::django::trace(&r));
        assert_eq!(r.hop.failure().is_some(), a["error"].is_string(), "raises: {}", context());
        if a["error"].is_null() {
            assert_eq!(r.hop.answered_by.as_deref(), a["answered_by"].as_str(), "{}", context());
            if r.hop.answered_by.is_some() {
                let second = r.hop.hop.as_ref().and_then(|h| h.answered_by.as_deref());
                assert_eq!(second, a["provider_answered_by"].as_str(), "{}", context());
            }
        }
        let Some(account) = data.user_account() else { continue };
        let ty = if function == "generate_images" { "image_generation" } else { "openai" };
        let row = report.iter().find(|r| r.account == account.slug && r.integration_type == ty).unwrap();
        let row = row.app_answer();
        assert_eq!(
            row.raises.is_some(),
            a["error"].is_string(),
            "{when}: report raises for {} {ty}: {a}",
            account.slug
        );
        assert_eq!(row.answered_by.as_deref(), a["answered_by"].as_str(), "{when}: report for {} {ty}", account.slug);
    }
    let input: String = answers.iter().map(|a| format!("{},{}\n", a["user"], a["function"])).collect();
    let run = keyfall(db, &["resolve", "--batch"], Some(&input.replace('"', "")));
    assert!(run.code <= 1, "{when}: {}", run.stderr);
    let lines: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), answers.len());
    for (a, line) in answers.iter().zip(&lines) {
        assert_eq!(line["raises"].is_string(), a["error"].is_string(), "{when}: batch: django {a}\nkeyfall {line}");
        assert_eq!(line["answered_by"], a["answered_by"], "{when}: batch: django {a}\nkeyfall {line}");
    }
}

#[tokio::test]
async fn a_table_without_the_unique_pair_is_attached_and_read_as_the_app_reads_it() {
    let db = loose_app().await;
    let run = keyfall(&db, &["attach", "--yes"], None);
    assert_eq!(run.code, 0, "attach: {}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("has no unique constraint on (account_id, integration_type)")
            && run.stdout.contains("keyfall reads the lowest id"),
        "attach says how it reads such a table: {}",
        run.stdout
    );
    let store = Store::connect(&db.target).await.unwrap();
    let mapping = store.verify(None).await.expect("attached");
    let store = store.with_mapping(&mapping);

    // The app passes aws-admin's inactive lowest row over, though the next
    // one would answer; default's lowest row answers.
    let dev = kf(&db.target, &["get", "--user", "dev@igny8.com", "--function", "auto_cluster"]);
    assert_eq!(dev["answered_by"], "default", "{dev}");
    answers_as_the_app(&db, &store, "attached").await;

    // The trace says which row answers, and so does `get`.
    let ids = pair_ids(&db, "aws-admin", "openai").await;
    assert_eq!(ids.len(), 2);
    let data = store.subject(Some("dev@igny8.com"), Some("auto_cluster")).await.unwrap();
    let r = resolve(&data.snapshot, data.user.as_ref().unwrap(), data.function.as_ref().unwrap());
    let said = format!(
        "one of 2 rows for (aws-admin, openai), ids {}, {}: the app takes the lowest id, {}",
        ids[0], ids[1], ids[0]
    );
    let step = r.hop.steps.iter().find(|s| s.account == "aws-admin").unwrap();
    assert!(step.detail.contains(&said), "{}", crate::django::trace(&r));
    let get = keyfall(&db, &["get", "aws-admin", "openai"], None);
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert!(get.stdout.contains(&said) && get.stdout.contains("inactive"), "{}", get.stdout);
    let get = keyfall(&db, &["get", "aws-admin", "openai", "--json"], None);
    let get: Value = serde_json::from_str(&get.stdout).unwrap();
    assert_eq!(get["row_ids"], json!(ids), "{get}");
    assert_eq!(get["is_active"], false, "the row shown is the one the app reads: {get}");

    // After attach, rows made and removed by the app's ORM: default gets a
    // second runware row, and aws-admin's lowest openai row goes — the
    // next one, active, now answers for aws-admin (the capture hands the
    // pair's verdict over).
    let config = r#"{"apiKey": "rw-loose-0000000000000005"}"#;
    kf(&db.target, &["write", "--account", "default", "--type", "runware", "--how", "create", "--config", config]);
    kf(&db.target, &["write", "--account", "default", "--type", "runware", "--how", "create", "--active", "false"]);
    let mut psql = db.raw().await;
    sqlx::query("DELETE FROM igny8_integration_settings WHERE id = $1").bind(ids[0]).execute(&mut psql).await.unwrap();
    let dev = kf(&db.target, &["get", "--user", "dev@igny8.com", "--function", "auto_cluster"]);
    assert_eq!(dev["answered_by"], "aws-admin", "{dev}");
    answers_as_the_app(&db, &store, "after the ORM's writes").await;
    store.close().await;
}

#[tokio::test]
async fn writes_to_a_pair_with_several_rows_are_refused_naming_them() {
    let db = loose_app().await;
    let run = keyfall(&db, &["attach", "--yes"], None);
    assert_eq!(run.code, 0, "attach: {}\n{}", run.stdout, run.stderr);
    let store = Store::connect(&db.target).await.unwrap();
    let mapping = store.verify(None).await.expect("attached");
    let store = store.with_mapping(&mapping);
    let ids = pair_ids(&db, "default", "openai").await;
    let named = format!("(default, openai) has 2 rows (ids {}, {})", ids[0], ids[1]);
    let before = table_text(&db).await;

    // `set`, its dry run (the impact preview) and the store's other
    // writers: each refused in one line naming the rows.
    for args in [
        &["--as", "dev@igny8.com", "set", "default", "openai", "model", "gpt-4.1"][..],
        &["--as", "dev@igny8.com", "set", "default", "openai", "model", "gpt-4.1", "--dry-run"][..],
    ] {
        let run = keyfall(&db, args, None);
        assert_eq!(run.code, 2, "{args:?}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(&named) && run.stderr.contains("lowest id"), "{}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
    let refused = |e: StoreError| matches!(&e, StoreError::Invalid(m) if m.contains(&named));
    let seen = store.setting("default", "openai").await.unwrap();
    assert_eq!(seen.several, ids);
    let version = seen.setting.as_ref().unwrap().version;
    let e = store.delete_setting("dev@igny8.com", "default", "openai", version).await.unwrap_err();
    assert!(refused(e), "delete");
    let e = store
        .write_setting("dev@igny8.com", "default", "openai", Some(version), |_| (json!({"apiKey": "sk-x"}), true))
        .await
        .unwrap_err();
    assert!(refused(e), "write at a version");
    let item = ImportItem {
        account: "default".into(),
        integration_type: "openai".into(),
        config: json!({"apiKey": "sk-loose-import-0000000009"}),
        is_active: true,
        expected_version: version,
    };
    let e = store.write_many("dev@igny8.com", &[item]).await.unwrap_err();
    assert!(refused(e), "import");
    let e = store.apply_configs("dev@igny8.com", &[("default".into(), "openai".into(), version, json!({}))]).await;
    assert!(refused(e.unwrap_err()), "apply_configs");
    let account_id = store.account("default").await.unwrap().unwrap().id;
    let e = store.impact(&Proposal::Delete { account_id, integration_type: "openai".into() }).await.unwrap_err();
    assert!(refused(e), "the preview of a delete");
    assert_eq!(table_text(&db).await, before, "a refused write changed nothing");

    // A pair with no row yet is created once, and then changed, as on any
    // table.
    let mut psql = db.raw().await;
    sqlx::query("INSERT INTO igny8_account (slug, name, status) VALUES ('kf-loose', 'KF loose', 'active')")
        .execute(&mut psql)
        .await
        .unwrap();
    for model in ["gpt-4.1", "o3"] {
        let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "kf-loose", "openai", "model", model], None);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }
    assert_eq!(pair_ids(&db, "kf-loose", "openai").await.len(), 1);
    store.close().await;
}

/// Two transactions adding a row each to one pair of a settings table
/// without the unique pair, at the same time (the app's workers, each in
/// its own transaction): one verdict stays, the lowest id's — the row the
/// app reads. The second writer's capture waits for the first to end, as
/// the missing unique index would have made it wait, then judges the pair
/// with the first's row in view. Both rows are audited.
#[tokio::test]
async fn two_writers_adding_rows_to_one_pair_at_once_leave_one_verdict() {
    let db = TestDb::demo().await;
    let mut first = db.raw().await;
    let mut second = db.raw().await;
    sqlx::raw_sql(
        "ALTER TABLE public.integration_settings DROP CONSTRAINT integration_settings_account_id_integration_type_key;
         DELETE FROM public.integration_settings s USING public.accounts a
          WHERE a.id = s.account_id AND a.slug = 'paid-2' AND s.integration_type = 'runware'",
    )
    .execute(&mut first)
    .await
    .unwrap();
    let account: i64 =
        sqlx::query_scalar("SELECT id FROM public.accounts WHERE slug = 'paid-2'").fetch_one(&mut first).await.unwrap();
    let insert = "INSERT INTO public.integration_settings (account_id, integration_type, config, is_active)
                  VALUES ($1, 'runware', $2::jsonb, true) RETURNING id";

    sqlx::raw_sql("BEGIN").execute(&mut first).await.unwrap();
    let low: i64 = sqlx::query_scalar(insert)
        .bind(account)
        .bind(r#"{"apiKey": "rw-concurrent-first-000000001"}"#)
        .fetch_one(&mut first)
        .await
        .unwrap();
    // The second writer, while the first has not committed.
    let writer = tokio::spawn(async move {
        sqlx::raw_sql("BEGIN").execute(&mut second).await.unwrap();
        let high: i64 = sqlx::query_scalar(insert)
            .bind(account)
            .bind(r#"{"apiKey": "rw-concurrent-second-00000002"}"#)
            .fetch_one(&mut second)
            .await
            .unwrap();
        sqlx::raw_sql("COMMIT").execute(&mut second).await.unwrap();
        high
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!writer.is_finished(), "the second writer waits for the first (the pair's lock)");
    sqlx::raw_sql("COMMIT").execute(&mut first).await.unwrap();
    let high = tokio::time::timeout(std::time::Duration::from_secs(30), writer).await.unwrap().unwrap();
    assert!(low < high);

    let verdicts: Vec<i64> = sqlx::query_scalar(
        "SELECT setting_id FROM keyfall.row_verdicts WHERE account_id = $1 AND integration_type = 'runware'",
    )
    .bind(account)
    .fetch_all(&mut first)
    .await
    .unwrap();
    assert_eq!(verdicts, vec![low], "one verdict for the pair, the lowest id's");
    let audited: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT action, row_id FROM keyfall.audit_log
          WHERE table_name = 'integration_settings' AND (row_id = ANY ($1) OR action LIKE 'capture%') ORDER BY id",
    )
    .bind(vec![low, high])
    .fetch_all(&mut first)
    .await
    .unwrap();
    assert_eq!(audited, vec![("insert".to_string(), Some(low)), ("insert".to_string(), Some(high))]);
}
