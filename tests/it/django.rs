//! The real app: a small Django project (`tests/django`) with igny8's models
//! and its `get_model_config`, run with a Python of its own. keyfall's
//! answers are held to what this code answers.
//!
//! Django comes from the package index into `<target>/django-venv`, once per
//! machine (a marker file records what was installed); threads and
//! processes (nextest) that need it at the same time wait on a file lock.
//! A test that cannot get Django fails: it never skips.

use std::path::PathBuf;
use std::process::Command;

use keyfall::store::Target;
use serde_json::Value;

#[path = "../common/django_py.rs"]
pub mod django_py;
pub use django_py::{kf_command, kf_raw};

use crate::support::TestDb;

/// `kf.py ARGS…` whose output is one JSON value.
pub fn kf(target: &Target, args: &[&str]) -> Value {
    let out = kf_raw(target, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kf.py {}: not JSON ({e}): {out}", args.join(" ")))
}

/// `kf.py ARGS…` whose output is one JSON value per line (`answers`).
pub fn kf_lines(target: &Target, args: &[&str]) -> Vec<Value> {
    kf_raw(target, args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("kf.py {}: not JSON ({e}): {l}", args.join(" "))))
        .collect()
}

#[tokio::test]
async fn the_django_app_migrates_seeds_and_answers() {
    let db = TestDb::bare().await;
    kf(&db.target, &["migrate"]);
    // Seed 24 is one where all three outcomes below occur (most seeds
    // show only some of them).
    let seeded = kf(&db.target, &["seed", "--seed", "24", "--tenants", "30", "--users", "200"]);
    assert_eq!(seeded["users"], 200, "{seeded}");
    let answers = kf_lines(&db.target, &["answers"]);
    assert_eq!(answers.len(), 200 * 5);
    assert!(answers.iter().any(|a| a["answered_by"] == "aws-admin"));
    assert!(answers.iter().any(|a| a["error"].is_string()), "no user's walk meets a non-string apiKey");
    assert!(answers.iter().any(|a| a["answered_by"].is_null() && a["error"].is_null()));

    // `get` is the same function, one pair at a time.
    let first = &answers[0];
    let one = kf(&db.target, &["get", "--user", first["user"].as_str().unwrap(), "--function", "auto_cluster"]);
    for field in ["user", "function", "answered_by", "provider_answered_by", "error"] {
        assert_eq!(one[field], first[field], "{field}");
    }
}

// ---------------------------------------------------------------------------
// keyfall attached to the Django app's own tables (issue 8).

use crate::cli::keyfall;
use keyfall::domain::resolve::resolve;
use keyfall::store::Store;

/// A Django database with seeded messy data, keyfall attached by its CLI.
async fn attached(seed: u32, tenants: u32, users: u32) -> (TestDb, Store) {
    let db = TestDb::bare().await;
    kf(&db.target, &["migrate"]);
    let seed = seed.to_string();
    let (tenants, users) = (tenants.to_string(), users.to_string());
    kf(&db.target, &["seed", "--seed", &seed, "--tenants", &tenants, "--users", &users]);
    let run = keyfall(&db, &["attach", "--yes", "--no-config"], None);
    assert_eq!(run.code, 0, "attach: {}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("igny8_integration_settings") && run.stdout.contains("xmin"), "{}", run.stdout);
    assert!(run.stdout.contains("no index on lower(email)"), "attach says what any-case lookups cost: {}", run.stdout);
    let store = Store::connect(&db.target).await.unwrap();
    let mapping = store.verify(None).await.expect("attached");
    let store = store.with_mapping(&mapping);
    (db, store)
}

#[tokio::test]
async fn keyfall_answers_as_djangos_get_model_config_pair_for_pair() {
    let mut pairs = 0;
    let mut outcomes = [0usize; 4]; // answered, answered with a hop, unresolved, the app raises
    for seed in [24, 2] {
        let (db, store) = attached(seed, 60, 450).await;
        let answers = kf_lines(&db.target, &["answers"]);
        assert_eq!(answers.len(), 450 * 5);
        for a in &answers {
            let (email, function) = (a["user"].as_str().unwrap(), a["function"].as_str().unwrap());
            let data = store.subject(Some(email), Some(function)).await.unwrap();
            let r = resolve(&data.snapshot, data.user.as_ref().unwrap(), data.function.as_ref().unwrap());
            let context =
                || format!("seed {seed}, {email} · {function}: django {a}\nkeyfall {}", crate::django::trace(&r));
            match a["error"].as_str() {
                Some(_) => {
                    assert!(r.hop.failure().is_some(), "the app raises, keyfall does not say so: {}", context());
                    outcomes[3] += 1;
                }
                None => {
                    assert!(r.hop.failure().is_none(), "keyfall says the app raises: {}", context());
                    assert_eq!(r.hop.answered_by.as_deref(), a["answered_by"].as_str(), "{}", context());
                    let second = r.hop.hop.as_ref().and_then(|h| h.answered_by.as_deref());
                    if r.hop.answered_by.is_some() {
                        assert_eq!(second, a["provider_answered_by"].as_str(), "{}", context());
                    }
                    outcomes[match (&r.hop.answered_by, &r.hop.hop) {
                        (Some(_), None) => 0,
                        (Some(_), Some(_)) => 1,
                        (None, _) => 2,
                    }] += 1;
                }
            }
            pairs += 1;
        }
        // The set-based report says the same for every user's account,
        // raises included (the call then answers nothing).
        let report = store.report().await.unwrap();
        for a in &answers {
            let email = a["user"].as_str().unwrap();
            let data = store.subject(Some(email), None).await.unwrap();
            let Some(account) = data.user_account() else { continue };
            let ty = if a["function"] == "generate_images" { "image_generation" } else { "openai" };
            let row = report.iter().find(|r| r.account == account.slug && r.integration_type == ty).unwrap();
            let row = row.app_answer();
            assert_eq!(row.raises.is_some(), a["error"].is_string(), "report raises for {} {ty}: {a}", account.slug);
            assert_eq!(row.answered_by.as_deref(), a["answered_by"].as_str(), "report for {} {ty}", account.slug);
            if a["answered_by"].is_string() {
                let second = row.provider_answered_by.as_deref();
                assert_eq!(second, a["provider_answered_by"].as_str(), "report hop for {} {ty}", account.slug);
            }
        }
        // resolve --batch answers every pair as the app does.
        let input: String = answers.iter().map(|a| format!("{},{}\n", a["user"], a["function"])).collect();
        let run = keyfall(&db, &["resolve", "--batch"], Some(&input.replace('"', "")));
        assert!(run.code <= 1, "{}", run.stderr);
        let lines: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), answers.len());
        for (a, line) in answers.iter().zip(&lines) {
            assert_eq!(line["user"], a["user"]);
            assert_eq!(line["raises"].is_string(), a["error"].is_string(), "batch raises: django {a}\nkeyfall {line}");
            assert_eq!(line["answered_by"], a["answered_by"], "batch: django {a}\nkeyfall {line}");
            if a["answered_by"].is_string() {
                assert_eq!(line["provider_answered_by"], a["provider_answered_by"], "django {a}\nkeyfall {line}");
            }
            let resolved = a["answered_by"].is_string()
                && (a["function"] != "generate_images" || a["provider_answered_by"].is_string());
            assert_eq!(line["resolved"], resolved, "django {a}\nkeyfall {line}");
        }
        store.close().await;
    }
    assert!(pairs >= 4000, "{pairs} pairs");
    assert!(outcomes.iter().all(|&n| n > 0), "every outcome occurs: {outcomes:?}");
}

/// Rows that make the app raise — a non-string apiKey where the first hop
/// stops, and where a consumer's second hop stops — and a consumer naming a
/// provider that is no integration type, with a row of that type on the
/// user's account: every output of keyfall answers each as the real app's
/// `get_model_config` does.
#[tokio::test]
async fn raises_and_a_provider_that_is_no_type_answer_as_the_app_in_every_output() {
    let (db, store) = attached(24, 3, 6).await;
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        r#"INSERT INTO igny8_account (slug, name, status)
           VALUES ('raise-first', 'R1', 'active'), ('raise-second', 'R2', 'active'), ('stab', 'S', 'active');
           INSERT INTO igny8_user (email, role, is_superuser, is_active, account_id)
           SELECT 'u@' || slug, 'owner', false, true, id FROM igny8_account
            WHERE slug IN ('raise-first', 'raise-second', 'stab');
           INSERT INTO igny8_integration_settings (account_id, integration_type, config, is_active, created_at, updated_at)
           SELECT a.id, v.t, v.c::jsonb, true, now(), now() FROM igny8_account a
             JOIN (VALUES ('raise-first', 'openai', '{"apiKey": 123, "model": "gpt-4o"}'),
                          ('raise-second', 'image_generation', '{"provider": "runware"}'),
                          ('raise-second', 'runware', '{"apiKey": ["rw-in-a-list"]}'),
                          ('stab', 'image_generation', '{"provider": "stability"}'),
                          ('stab', 'stability', '{"apiKey": "st-FAKE-0000000000000001"}')) v(s, t, c)
               ON v.s = a.slug"#,
    )
    .execute(&mut psql)
    .await
    .unwrap();
    let pairs =
        [("u@raise-first", "generate_content"), ("u@raise-second", "generate_images"), ("u@stab", "generate_images")];
    let input: String = pairs.iter().map(|(u, f)| format!("{u},{f}\n")).collect();
    let batch = keyfall(&db, &["resolve", "--batch"], Some(&input));
    assert_eq!(batch.code, 1, "two pairs raise: {}", batch.stderr);
    let lines: Vec<Value> = batch.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let report = keyfall(&db, &["report", "--json"], None);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let report: Value = serde_json::from_str(&report.stdout).unwrap();
    let text = keyfall(&db, &["report"], None).stdout;
    for ((user, function), line) in pairs.iter().zip(&lines) {
        let app = kf(&db.target, &["get", "--user", user, "--function", function]);
        let single = keyfall(&db, &["resolve", "--user", user, "--function", function, "--json"], None);
        let single: Value = serde_json::from_str(&single.stdout).unwrap();
        let account = &user[2..];
        let ty = if *function == "generate_images" { "image_generation" } else { "openai" };
        let row = report.as_array().unwrap().iter().find(|r| r["account"] == account && r["integration_type"] == ty);
        let row = row.unwrap_or_else(|| panic!("no report row for {account} {ty}"));
        let context = format!("{user} {function}: django {app}\nbatch {line}\nreport {row}\nresolve {single}");
        match app["error"].as_str() {
            Some(error) => {
                assert!(error.starts_with("AttributeError"), "{context}");
                for raises in [&line["raises"], &row["raises"]] {
                    let raises = raises.as_str().unwrap_or_else(|| panic!("no raise: {context}"));
                    assert!(raises.starts_with("the app's get_model_config raises here: "), "{context}");
                    assert!(raises.contains("key_not_string") && raises.contains("AttributeError"), "{context}");
                }
                assert_eq!(line["raises"], row["raises"], "{context}");
                for answer in [line, row] {
                    assert!(answer["answered_by"].is_null() && answer["provider_answered_by"].is_null(), "{context}");
                }
                assert_eq!(line["resolved"], false, "{context}");
                let hop_error = if *function == "generate_images" { &single["hop"]["error"] } else { &single["error"] };
                assert!(hop_error.is_string(), "the single resolve says it too: {context}");
            }
            None => {
                // The provider that is no type: the app walks "stability"
                // as a type and uses the account's row of it.
                assert_eq!(app["answered_by"], "stab", "{context}");
                assert_eq!(app["provider_answered_by"], "stab", "{context}");
                for answer in [line, row] {
                    assert_eq!(answer["answered_by"], "stab", "{context}");
                    assert_eq!(answer["provider"], "stability", "{context}");
                    assert_eq!(answer["provider_answered_by"], "stab", "{context}");
                    assert!(answer["raises"].is_null(), "{context}");
                }
                assert_eq!(line["resolved"], true, "{context}");
                assert_eq!(single["answered_by"], "stab", "{context}");
                assert_eq!(single["hop"]["answered_by"], "stab", "{context}");
            }
        }
    }
    assert!(lines[1]["raises"].as_str().unwrap().contains("in the second hop"), "{}", lines[1]);
    assert!(lines[0]["raises"].as_str().unwrap().contains("raise-first's openai setting"), "{}", lines[0]);
    // The text report marks the raises apart from "nothing answers".
    let line = |slug: &str| text.lines().find(|l| l.starts_with(&format!("{slug} "))).unwrap_or_default().to_string();
    assert!(line("raise-first").contains("✗ raises"), "{text}");
    assert!(line("raise-second").contains("✗ raises"), "{text}");
    assert!(text.contains("where the app raises") && text.contains("✗ raises raise-first: the app's"), "{text}");
    store.close().await;
}

/// An app table without `updated_at` (and, like Django's, without a version
/// column): `get`, `get --json` and a conflict show the last audited change
/// or nothing — never `0001-01-01` or `by ?` — and the version as the row
/// token it is, never as a count.
#[tokio::test]
async fn without_updated_at_rows_show_the_audited_change_or_nothing_and_a_row_token() {
    let db = TestDb::bare().await;
    kf(&db.target, &["migrate"]);
    kf(&db.target, &["seed", "--seed", "24", "--tenants", "3", "--users", "6"]);
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        "ALTER TABLE igny8_integration_settings DROP COLUMN updated_at;
         INSERT INTO igny8_account (slug, name, status) VALUES ('quiet', 'Q', 'active'), ('loud', 'L', 'active');
         INSERT INTO igny8_integration_settings (account_id, integration_type, config, is_active, created_at)
         SELECT id, 'openai', '{\"apiKey\": \"sk-quiet-FAKE-000000000001\"}', true, now()
           FROM igny8_account WHERE slug = 'quiet';
         INSERT INTO igny8_user (email, role, is_superuser, is_active, account_id)
         SELECT 'dev@igny8.com', 'developer', true, true, id FROM igny8_account WHERE slug = 'aws-admin'
         ON CONFLICT DO NOTHING;",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    let run = keyfall(&db, &["attach", "--yes", "--no-config"], None);
    assert_eq!(run.code, 0, "attach: {}\n{}", run.stdout, run.stderr);
    let role: String = sqlx::query_scalar("SELECT session_user::text").fetch_one(&mut psql).await.unwrap();
    // A change after attach is audited: its time and writer are known.
    sqlx::raw_sql(
        "INSERT INTO igny8_integration_settings (account_id, integration_type, config, is_active, created_at)
         SELECT id, 'openai', '{\"apiKey\": \"sk-loud-FAKE-0000000000001\"}', true, now()
           FROM igny8_account WHERE slug = 'loud'",
    )
    .execute(&mut psql)
    .await
    .unwrap();

    // Written before attach, never audited: nothing is known, nothing shown.
    let quiet = keyfall(&db, &["get", "quiet", "openai", "--json"], None);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    let quiet: Value = serde_json::from_str(&quiet.stdout).unwrap();
    assert!(quiet["updated_at"].is_null(), "{quiet}");
    assert!(quiet["updated_by"].is_null(), "{quiet}");
    assert_eq!(quiet["version_token"], true, "{quiet}");
    let text = keyfall(&db, &["get", "quiet", "openai"], None).stdout;
    let head = text.lines().next().unwrap();
    assert_eq!(head, format!("quiet · openai · own · active · row token {}", quiet["version"]), "{text}");

    let loud = keyfall(&db, &["get", "loud", "openai", "--json"], None);
    let loud: Value = serde_json::from_str(&loud.stdout).unwrap();
    assert_eq!(loud["updated_by"], role.as_str(), "{loud}");
    let at: chrono::DateTime<chrono::Utc> = serde_json::from_value(loud["updated_at"].clone()).unwrap();
    assert!((chrono::Utc::now() - at).num_minutes().abs() < 5, "the audited time: {loud}");
    let text = keyfall(&db, &["get", "loud", "openai"], None).stdout;
    assert!(text.contains(&format!("· row token {} · updated {}", loud["version"], at.format("%Y-%m-%d"))), "{text}");
    assert!(text.contains(&format!(" by {role}")) && !text.contains("0001-01-01"), "{text}");

    // A stale token is a conflict that names who and when, and no count.
    let mapping = Store::connect(&db.target).await.unwrap();
    let installed = mapping.verify(None).await.unwrap();
    let store = mapping.with_mapping(&installed);
    let seen = store.setting("loud", "openai").await.unwrap().setting.unwrap();
    assert!(seen.version_token && seen.updated_at.is_some());
    sqlx::raw_sql("UPDATE igny8_integration_settings SET is_active = false WHERE integration_type = 'openai' AND account_id = (SELECT id FROM igny8_account WHERE slug = 'loud')")
        .execute(&mut psql)
        .await
        .unwrap();
    let err = store
        .write_setting("dev@igny8.com", "loud", "openai", Some(seen.version), |cur| (cur.unwrap().config.clone(), true))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, keyfall::store::StoreError::Conflict(_)), "{message}");
    assert!(message.starts_with("conflict: loud openai changed since you read it (by "), "{message}");
    assert!(message.contains(&role) && !message.contains("0001-01-01") && !message.contains(" v"), "{message}");
    store.close().await;
}

/// The trace as text, for failure messages.
pub fn trace(r: &keyfall::domain::resolve::Resolution) -> String {
    serde_json::to_string(&r.hop).unwrap_or_default()
}

#[tokio::test]
async fn django_orm_writes_are_live_audited_and_shown() {
    let (db, store) = attached(24, 5, 20).await;
    let mut psql = db.raw().await;
    let role: String = sqlx::query_scalar("SELECT session_user::text").fetch_one(&mut psql).await.unwrap();
    sqlx::raw_sql("INSERT INTO igny8_account (slug, name, status) VALUES ('orm-tenant', 'ORM tenant', 'active')")
        .execute(&mut psql)
        .await
        .unwrap();

    let (send, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::spawn(keyfall::store::listen::listen(store.clone(), move |e| send.send(e).is_ok()));
    // The listener is subscribed once a first notice gets through.
    let ready = async {
        loop {
            sqlx::raw_sql("SELECT pg_notify('keyfall_changes', '{\"table\":\"ping\",\"op\":\"ping\"}')")
                .execute(&mut psql)
                .await
                .unwrap();
            match tokio::time::timeout(std::time::Duration::from_millis(300), changes.recv()).await {
                Ok(Some(keyfall::store::listen::Event::Change(c))) if c.table == "ping" => break,
                _ => continue,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), ready).await.expect("the listener subscribes");

    let cfg = r#"{"apiKey": "sk-orm-FAKE-0000000000000001", "model": "gpt-4o"}"#;
    let writes: [(&str, Option<&str>, &str); 5] = [
        ("create", Some(cfg), "insert"),
        ("save", Some(r#"{"apiKey": "sk-orm-FAKE-0000000000000002", "model": "gpt-4o"}"#), "update"),
        ("update", Some(r#"{"apiKey": "sk-orm-FAKE-0000000000000003", "model": "gpt-4.1"}"#), "update"),
        ("bulk_update", Some(r#"{"apiKey": "sk-orm-FAKE-0000000000000004", "temperature": "hot"}"#), "update"),
        ("delete", None, "delete"),
    ];
    for (how, config, op) in writes {
        let mut args = vec!["write", "--account", "orm-tenant", "--type", "openai", "--how", how];
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        kf(&db.target, &args);
        let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match changes.recv().await {
                    Some(keyfall::store::listen::Event::Change(c)) if c.table == "integration_settings" => break c,
                    Some(_) => continue,
                    None => panic!("listener ended"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("Django's {how}() never reached the listener"));
        assert_eq!(seen.op, op, "{how}");
        assert!(seen.audit_id.is_some(), "{how}: the notice names its audit row");
    }
    listener.abort();

    let run = keyfall(&db, &["audit", "--account", "orm-tenant", "--type", "openai", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let entries: Value = serde_json::from_str(&run.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["delete", "update", "update", "update", "insert"], "newest first");
    assert!(entries.iter().all(|e| e["actor"] == role.as_str()), "the database role names the writer: {entries:?}");
    assert!(!run.stdout.contains("sk-orm-FAKE"), "keys are fingerprinted in the audit log: {}", run.stdout);
    let text = keyfall(&db, &["audit", "--account", "orm-tenant"], None);
    assert!(text.stdout.contains("config.model: gpt-4o → gpt-4.1"), "{}", text.stdout);
    store.close().await;
}

#[tokio::test]
async fn a_keyfall_save_is_what_django_reads_next_and_a_django_save_in_between_conflicts() {
    let (db, store) = attached(24, 5, 20).await;
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        "INSERT INTO igny8_account (slug, name, status) VALUES ('kf-tenant', 'KF tenant', 'active');
         INSERT INTO igny8_user (email, role, is_superuser, is_active, account_id)
         SELECT 'dev@igny8.com', 'developer', true, true, id FROM igny8_account WHERE slug = 'aws-admin'
         ON CONFLICT DO NOTHING;
         INSERT INTO igny8_user (email, role, is_superuser, is_active, account_id)
         SELECT 'owner@kf-tenant.example', 'owner', false, true, id FROM igny8_account WHERE slug = 'kf-tenant';",
    )
    .execute(&mut psql)
    .await
    .unwrap();

    // keyfall creates the tenant's own OpenAI setting, then changes its model.
    let key = "sk-kf-FAKE-saved-by-keyfall-0001";
    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "kf-tenant", "openai", "apiKey"], Some(key));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "kf-tenant", "openai", "model"], Some("gpt-4.1"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let django = kf(&db.target, &["get", "--user", "owner@kf-tenant.example", "--function", "generate_content"]);
    assert_eq!(django["answered_by"], "kf-tenant", "{django}");
    assert_eq!(django["config"]["apiKey"], key);
    assert_eq!(django["config"]["model"], "gpt-4.1");
    // keyfall's writes set Django's auto_now field as save() would.
    let fresh: bool = sqlx::query_scalar(
        "SELECT s.updated_at > now() - interval '1 minute' AND s.created_at <= s.updated_at
           FROM igny8_integration_settings s JOIN igny8_account a ON a.id = s.account_id
          WHERE a.slug = 'kf-tenant' AND s.integration_type = 'openai'",
    )
    .fetch_one(&mut psql)
    .await
    .unwrap();
    assert!(fresh);

    // keyfall reads (the console's editor, a preview)…
    let seen = store.setting("kf-tenant", "openai").await.unwrap().setting.unwrap();
    // …Django saves meanwhile…
    kf(
        &db.target,
        &[
            "write",
            "--account",
            "kf-tenant",
            "--type",
            "openai",
            "--how",
            "save",
            "--config",
            r#"{"apiKey": "sk-kf-FAKE-rotated-by-django-02", "model": "gpt-4o"}"#,
        ],
    );
    // …and keyfall's write is a conflict, not an overwrite.
    let err = store
        .write_setting("dev@igny8.com", "kf-tenant", "openai", Some(seen.version), |cur| {
            let mut c = cur.unwrap().config.clone();
            c["model"] = "gpt-4o-mini".into();
            (c, true)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, keyfall::store::StoreError::Conflict(_)), "{err}");
    let django = kf(&db.target, &["get", "--user", "owner@kf-tenant.example", "--function", "generate_content"]);
    assert_eq!(django["config"]["model"], "gpt-4o", "Django's save stands");
    assert_eq!(django["config"]["apiKey"], "sk-kf-FAKE-rotated-by-django-02");
    // The CLI says the same with a stale --expect-version.
    let run = keyfall(
        &db,
        &[
            "--as",
            "dev@igny8.com",
            "set",
            "kf-tenant",
            "openai",
            "model",
            "--expect-version",
            &seen.version.to_string(),
        ],
        Some("gpt-4o-mini"),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("conflict"), "{}", run.stderr);
    store.close().await;
}

/// `pg_dump` of the Django app's tables: schema and rows.
fn dump(db: &TestDb) -> String {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("pg_dump"));
    let o = &db.target.options;
    let host = o.get_socket().map(|p| p.display().to_string()).unwrap_or_else(|| o.get_host().to_string());
    let out = Command::new(bin)
        .args(["--no-owner", "--no-privileges", "-t", "public.igny8_*"])
        .env("PGHOST", host)
        .env("PGPORT", o.get_port().to_string())
        .env("PGUSER", o.get_username())
        .env("PGDATABASE", db.target.database())
        .output()
        .expect("pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    // pg_dump marks its output with a random `\restrict` key each run.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn detach_leaves_the_django_tables_as_they_were_before_attach() {
    let db = TestDb::bare().await;
    kf(&db.target, &["migrate"]);
    kf(&db.target, &["seed", "--seed", "24", "--tenants", "10", "--users", "40"]);
    let before = dump(&db);
    let run = keyfall(&db, &["attach", "--yes", "--no-config"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for args in [vec!["report"], vec!["lint"], vec!["audit"], vec!["export"]] {
        let run = keyfall(&db, &args, None);
        assert!(run.code <= 1, "{args:?}: {}", run.stderr);
    }
    let attached = dump(&db);
    assert_ne!(attached, before, "attach puts its triggers on the settings table");
    let run = keyfall(&db, &["detach"], None);
    assert_eq!(run.code, 2, "detach without a terminal needs --yes: {}", run.stderr);
    let run = keyfall(&db, &["detach", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(dump(&db), before, "detach left something behind on the app's tables");
    let mut conn = db.raw().await;
    let schema: bool =
        sqlx::query_scalar("SELECT to_regnamespace('keyfall') IS NOT NULL").fetch_one(&mut conn).await.unwrap();
    assert!(schema, "detach keeps keyfall's own schema (its history)");
    let run = keyfall(&db, &["detach", "--purge", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(dump(&db), before);
    let schema: bool =
        sqlx::query_scalar("SELECT to_regnamespace('keyfall') IS NOT NULL").fetch_one(&mut conn).await.unwrap();
    assert!(!schema, "--purge removes the keyfall schema");
    // Django still works on its tables.
    let answers = kf_lines(&db.target, &["answers"]);
    assert_eq!(answers.len(), 40 * 5);
    kf(&db.target, &["write", "--account", "aws-admin", "--type", "openai", "--how", "update", "--config", "{}"]);
}

#[tokio::test]
async fn migrate_on_an_outdated_install_keeps_the_apps_mapping() {
    let (db, store) = attached(31, 4, 12).await;
    store.close().await;
    let mut conn = db.raw().await;
    // keyfall's schema from an older keyfall: its newest migration missing.
    sqlx::raw_sql(
        "DELETE FROM keyfall._sqlx_migrations WHERE version = (SELECT max(version) FROM keyfall._sqlx_migrations)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let run = keyfall(&db, &["report"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("keyfall migrate"), "{}", run.stderr);
    let run = keyfall(&db, &["migrate"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let demo: bool = sqlx::query_scalar("SELECT to_regclass('public.integration_settings') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!demo, "migrate made keyfall's demo tables in the app's database");
    let run = keyfall(&db, &["report", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(rows.as_array().unwrap().iter().any(|r| r["account"] == "aws-admin"), "still the app's tables");
}

#[tokio::test]
async fn attach_prints_the_mapping_and_the_config_only_feeds_attach() {
    let db = TestDb::bare().await;
    kf(&db.target, &["migrate"]);
    kf(&db.target, &["seed", "--seed", "24", "--tenants", "5", "--users", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "# my settings\nlabel = \"staging\"\n").unwrap();
    let config_arg = config.to_str().unwrap();

    // A dry run shows the mapping and what would be installed, and changes nothing.
    let run = keyfall(&db, &["--config", config_arg, "attach", "--dry-run"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for expected in [
        "public.igny8_integration_settings",
        "public.igny8_account",
        "public.igny8_user",
        "xmin",
        "keyfall_audit_insert",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    let run = keyfall(&db, &["--config", config_arg, "report"], None);
    assert_eq!(run.code, 2, "nothing installed yet: {}", run.stderr);

    // Attach installs in the database and prints the mapping; the config
    // file is not written.
    let run = keyfall(&db, &["--config", config_arg, "attach", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# my settings\nlabel = \"staging\"\n");
    let printed = run.stdout[run.stdout.find("[mapping").expect("the mapping printed")..].to_string();
    assert!(printed.contains("igny8_integration_settings"), "{printed}");
    let run = keyfall(&db, &["--config", config_arg, "report", "--json"], None);
    assert!(run.code <= 1, "{}", run.stderr);

    // The mapping keyfall printed, kept in the config: detach, attach
    // again with it (the app has no updated_at: it says so, `false`).
    std::fs::write(&config, format!("label = \"staging\"\n{printed}")).unwrap();
    let run = keyfall(&db, &["detach", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = keyfall(&db, &["--config", config_arg, "attach", "--yes"], None);
    assert_eq!(run.code, 0, "attach → detach → attach on what keyfall wrote: {}", run.stderr);

    // A config naming a column the app does not have: other commands use
    // the mapping installed and are not troubled; attach says precisely.
    std::fs::write(&config, printed.replace("slug = \"slug\"", "slug = \"handle\"")).unwrap();
    let run = keyfall(&db, &["--config", config_arg, "report", "--json"], None);
    assert!(run.code <= 1, "{}", run.stderr);
    let run = keyfall(&db, &["--config", config_arg, "attach", "--dry-run"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("column handle (for slug) does not exist in public.igny8_account"), "{}", run.stderr);
    // The demo refuses a database attached to an app.
    let run = keyfall(&db, &["demo"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("igny8_integration_settings"), "{}", run.stderr);
}
