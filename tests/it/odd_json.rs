//! Odd numbers and deep JSON (issue 18, point 4): `1e400`, `-1e400`,
//! `1e-400`, `-0`, 10,000-deep nesting and 4301-digit integers get one
//! verdict from every reader — the resolver (CLI and console), the SQL row
//! verdict behind `resolve --batch` and `report`, and the app itself
//! (Django's `get_model_config`, run for real) — and `export` never turns
//! such a row into something else.

use keyfall::domain::json::read_config;
use keyfall::domain::registry;
use serde_json::Value;

use crate::cli::keyfall;
use crate::django::{kf, kf_raw};
use crate::support::TestDb;

fn deep(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// Config texts (as written to jsonb) that are odd to some reader.
fn odd_texts() -> Vec<(String, String)> {
    let big_int = format!("1{}", "0".repeat(4300));
    let mut out = Vec::new();
    for (name, value) in [
        ("1e400", "1e400".to_string()),
        ("-1e400", "-1e400".to_string()),
        ("1e-400", "1e-400".to_string()),
        ("-1e-400", "-1e-400".to_string()),
        ("-0", "-0".to_string()),
        ("-0.0", "-0.0".to_string()),
        ("1.5e400", "1.5e400".to_string()),
        ("1e400+0.5", format!("1{}.5", "0".repeat(400))),
        ("2^64", "18446744073709551616".to_string()),
        ("2^63", "9223372036854775808".to_string()),
        ("1e20", "100000000000000000000".to_string()),
        ("4301 digits", big_int.clone()),
        ("4300 digits", big_int[..4300].to_string()),
        ("899 deep", deep(898)),
        ("900 deep", deep(899)),
        ("10000 deep", deep(9999)),
        ("200 deep", deep(199)),
    ] {
        for field in ["temperature", "max_tokens", "apiKey", "provider", "model", "x"] {
            let key = if field == "apiKey" { "" } else { r#""apiKey": "sk-odd-0123456789abcdef", "# };
            let provider = if field == "provider" { "" } else { r#""provider": "openai", "# };
            out.push((format!("{field}={name}"), format!("{{{key}{provider}\"{field}\": {value}}}")));
        }
        out.push((format!("bare {name}"), value.clone()));
    }
    out
}

/// The SQL row verdict (which `resolve --batch` and `report` read from
/// `keyfall.row_verdicts`) and the resolver's judge of the same row, read
/// from its `jsonb::text` as the store reads it, agree on every odd value,
/// for each type, active or not.
#[tokio::test]
async fn the_sql_verdict_and_the_resolver_agree_on_odd_numbers_and_deep_json() {
    let db = TestDb::new().await;
    let mut conn = db.raw().await;
    let mut wrong = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, text) in odd_texts() {
        for ty in ["openai", "runware", "image_generation", "stability"] {
            for active in [true, false] {
                let (sql, stored): (String, String) =
                    sqlx::query_as("SELECT keyfall.keyfall_row_verdict($1, $2::jsonb, $3), ($2::jsonb)::text")
                        .bind(ty)
                        .bind(&text)
                        .bind(active)
                        .fetch_one(&mut conn)
                        .await
                        .unwrap();
                let pure = registry::judge(ty, &read_config(&stored), active).verdict.as_str();
                seen.insert(pure);
                if sql != pure {
                    wrong.push(format!("{name} {ty} active={active}: resolver {pure}, SQL {sql}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "the SQL and the resolver disagree:\n{}", wrong.join("\n"));
    for v in ["unreadable", "inactive", "invalid_config", "no_api_key", "key_not_string", "bad_fields", "answered"] {
        assert!(seen.contains(v), "no case gives {v}: {seen:?}");
    }
}

/// What one reader says of acme's `auto_cluster`.
#[derive(Debug, PartialEq)]
struct Says {
    answered_by: Option<String>,
    raises: bool,
}

/// The Django app's tables with keyfall attached: aws-admin with a key,
/// acme-studio with its own row (set per case), owner@acme.test of acme.
async fn django_world() -> TestDb {
    let db = TestDb::bare().await;
    kf(&db.target, &["migrate"]);
    let mut conn = db.raw().await;
    sqlx::raw_sql(
        "INSERT INTO igny8_account (slug, name, status) VALUES ('aws-admin', 'AWS Admin', 'active'),
                                                          ('acme-studio', 'Acme Studio', 'active');
         INSERT INTO igny8_user (email, role, is_superuser, is_active, account_id)
              SELECT 'owner@acme.test', 'owner', false, true, id FROM igny8_account WHERE slug = 'acme-studio';
         INSERT INTO igny8_integration_settings (integration_type, config, is_active, created_at, updated_at, account_id)
              SELECT 'openai', jsonb_build_object('apiKey', 'sk-aws-admin-0123456789abcdef', 'model', 'gpt-4o'),
                     true, now(), now(), id
                FROM igny8_account WHERE slug = 'aws-admin';
         INSERT INTO igny8_integration_settings (integration_type, config, is_active, created_at, updated_at, account_id)
              SELECT 'openai', '{}', true, now(), now(), id FROM igny8_account WHERE slug = 'acme-studio';",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let run = keyfall(&db, &["attach", "--yes", "--no-config"], None);
    assert_eq!(run.code, 0, "attach: {}\n{}", run.stdout, run.stderr);
    db
}

/// What the console makes of `email`'s `function`: the snapshot's chain
/// with the user's account's settings as `Cmd::LoadSettings` fetches them
/// (`Store::settings_of`), walked by the one resolver.
async fn console_answer(db: &TestDb, email: &str, function: &str) -> Says {
    use keyfall::domain::resolve::resolve;
    let store = keyfall::store::Store::connect(&db.target).await.unwrap();
    let mapping = store.verify(None).await.expect("attached");
    let store = store.with_mapping(&mapping);
    let mut data = store.subject(Some(email), Some(function)).await.unwrap();
    let account = data.user_account().expect("the user's account").clone();
    let fetched = store.settings_of(&[account.id]).await.unwrap();
    data.snapshot.settings.retain(|(id, _), _| *id != account.id);
    data.snapshot.settings.extend(fetched.into_iter().map(|s| ((s.account_id, s.integration_type.clone()), s)));
    let r = resolve(&data.snapshot, data.user.as_ref().unwrap(), data.function.as_ref().unwrap());
    store.close().await;
    Says { answered_by: r.hop.answered_by.clone(), raises: r.hop.failure().is_some() }
}

/// One odd config in acme-studio's openai row: Django's `get_model_config`,
/// `resolve`, `resolve --batch` and `report` all say the same — who
/// answers, or that the app raises — and that is what the case expects.
#[tokio::test]
async fn every_reader_gives_the_apps_answer_for_odd_numbers_and_deep_json() {
    let db = django_world().await;
    let mut conn = db.raw().await;
    let acme = Some("acme-studio".to_string());
    let aws = Some("aws-admin".to_string());
    let key = r#""apiKey": "sk-acme-own-0123456789abcdef""#;
    let cases: Vec<(&str, String, bool, Option<String>, bool)> = vec![
        // (what, config, active, who answers, the app raises)
        ("temperature 1e400", format!("{{{key}, \"temperature\": 1e400}}"), true, acme.clone(), false),
        ("temperature -1e400", format!("{{{key}, \"temperature\": -1e400}}"), true, acme.clone(), false),
        ("temperature 1e-400", format!("{{{key}, \"temperature\": 1e-400}}"), true, acme.clone(), false),
        ("temperature -0", format!("{{{key}, \"temperature\": -0}}"), true, acme.clone(), false),
        ("max_tokens 1e400", format!("{{{key}, \"max_tokens\": 1e400}}"), true, acme.clone(), false),
        ("apiKey 1e-400 (0.0 to Python)", r#"{"apiKey": 1e-400}"#.to_string(), true, aws.clone(), false),
        ("apiKey -0", r#"{"apiKey": -0}"#.to_string(), true, aws.clone(), false),
        ("apiKey 1e400 (an int: .strip() raises)", r#"{"apiKey": 1e400}"#.to_string(), true, None, true),
        ("200 deep", format!("{{{key}, \"x\": {}}}", deep(199)), true, acme.clone(), false),
        ("10,000 deep", format!("{{{key}, \"x\": {}}}", deep(9999)), true, None, true),
        ("10,000 deep, inactive", format!("{{{key}, \"x\": {}}}", deep(9999)), false, None, true),
        ("4301 digits", format!("{{{key}, \"x\": 1{}}}", "0".repeat(4300)), true, None, true),
        ("config 1e400", "1e400".to_string(), true, aws.clone(), false),
    ];
    for (what, config, active, answered_by, raises) in cases {
        sqlx::query(
            "UPDATE igny8_integration_settings SET config = $1::jsonb, is_active = $2
              WHERE account_id = (SELECT id FROM igny8_account WHERE slug = 'acme-studio')",
        )
        .bind(&config)
        .bind(active)
        .execute(&mut conn)
        .await
        .unwrap();
        let expected = Says { answered_by, raises };

        // Python prints 1e400 as its 401 digits: read leniently.
        let app = read_config(&kf_raw(&db.target, &["get", "--user", "owner@acme.test", "--function", "auto_cluster"]));
        let app =
            Says { answered_by: app["answered_by"].as_str().map(str::to_string), raises: app["error"].is_string() };
        assert_eq!(app, expected, "{what}: the app");

        let run = keyfall(&db, &["resolve", "--user", "owner@acme.test", "--function", "auto_cluster", "--json"], None);
        let one: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{what}: {e}: {}", run.stderr));
        if what == "temperature 1e400" {
            let findings = one["steps"][0]["findings"].to_string();
            assert!(findings.contains("temperature is a number beyond what keyfall holds"), "{findings}");
            assert!(!findings.contains("18446744073709551615"), "no stand-in shown as the value: {findings}");
        }
        let resolved =
            Says { answered_by: one["answered_by"].as_str().map(str::to_string), raises: one["error"].is_string() };
        assert_eq!(resolved, expected, "{what}: resolve {one}");

        // The console resolves over the settings it fetched (`settings_of`,
        // what `Cmd::LoadSettings` runs) with the same resolver.
        let console = console_answer(&db, "owner@acme.test", "auto_cluster").await;
        assert_eq!(console, expected, "{what}: the console's settings");

        let run = keyfall(&db, &["resolve", "--batch"], Some("owner@acme.test,auto_cluster\n"));
        let line: Value =
            serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {}", run.stderr));
        assert_eq!(line["answered_by"].as_str(), expected.answered_by.as_deref(), "{what}: batch {line}");
        assert_eq!(line["resolved"], expected.answered_by.is_some(), "{what}: batch {line}");

        let run = keyfall(&db, &["report", "--json"], None);
        let rows: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{what}: {e}: {}", run.stderr));
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["account"] == "acme-studio" && r["integration_type"] == "openai")
            .unwrap_or_else(|| panic!("{what}: no report row for acme-studio openai: {rows}"));
        assert_eq!(row["answered_by"].as_str(), expected.answered_by.as_deref(), "{what}: report {row}");
    }
}

/// `export` never writes a row as something it is not: a config keyfall
/// can only approximate (a number beyond f64, nesting serde cannot hold)
/// or nesting past redaction's depth, whose fingerprint no other database
/// can restore) stops it with the row named and a non-zero exit; one it holds exactly
/// (`-0`, `1e-7`, `2^64 - 1`, 51 deep) goes through export and import into a
/// fresh database as the same jsonb, byte for byte.
#[tokio::test]
async fn export_refuses_what_it_cannot_carry_and_round_trips_the_rest() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let set = |config: String| {
        sqlx::query(
            "UPDATE integration_settings SET config = config || $1::jsonb
              WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
        )
        .bind(config)
    };
    for odd in ["1e400".to_string(), "1e-400".to_string(), format!("{{\"a\": {}}}", deep(200)), deep(9999)] {
        let before: String = sqlx::query_scalar(
            "SELECT config::text FROM integration_settings
              WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        set(format!("{{\"odd\": {odd}}}")).execute(&mut conn).await.unwrap();
        let run = keyfall(&db, &["export"], None);
        assert_ne!(run.code, 0, "export of {} must fail", &odd[..odd.len().min(20)]);
        assert!(run.stderr.contains("acme-studio") && run.stderr.contains("openai"), "names the row: {}", run.stderr);
        assert!(!run.stderr.contains("sk-demo"), "no key in the error: {}", run.stderr);
        assert!(serde_json::from_str::<Value>(&run.stdout).is_err(), "no complete-looking document: {}", run.stdout);
        sqlx::query(
            "UPDATE integration_settings SET config = $1::jsonb
              WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
        )
        .bind(before)
        .execute(&mut conn)
        .await
        .unwrap();
    }

    set(format!(
        "{{\"temperature\": -0, \"small\": 1e-7, \"big\": 18446744073709551615, \"neg\": -9223372036854775808, \"half\": 0.5, \"nested\": {}}}",
        deep(50)
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let run = keyfall(&db, &["export"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &run.stdout).unwrap();

    let fresh = TestDb::demo().await;
    let mut fresh_conn = fresh.raw().await;
    let path = file.path().to_str().unwrap();
    let run = keyfall(&fresh, &["--as", "dev@igny8.com", "import", path, "--yes"], None);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let all = "SELECT a.slug, s.integration_type, s.config::text, s.is_active
                 FROM integration_settings s JOIN accounts a ON a.id = s.account_id ORDER BY 1, 2";
    let want: Vec<(String, String, String, bool)> = sqlx::query_as(all).fetch_all(&mut conn).await.unwrap();
    let got: Vec<(String, String, String, bool)> = sqlx::query_as(all).fetch_all(&mut fresh_conn).await.unwrap();
    assert_eq!(got, want, "export → import is the same jsonb");
}

/// `test-connection --user` tests the key the one resolver chose: with
/// `temperature: 1e400` in acme-studio's row (which the issue saw send the
/// test to aws-admin's key) it is acme-studio's own; with a row the app
/// cannot read, there is no key to test.
#[tokio::test]
async fn test_connection_for_a_user_tests_the_key_the_app_would_use() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let set = |config: String| {
        sqlx::query(
            "UPDATE integration_settings SET config = config || $1::jsonb
              WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
        )
        .bind(config)
    };
    // Nothing listens on port 9: the test fails fast, and says whose key.
    set(r#"{"temperature": 1e400, "base_url": "http://127.0.0.1:9"}"#.to_string()).execute(&mut conn).await.unwrap();
    let args = [
        "--as",
        "dev@igny8.com",
        "test-connection",
        "--allow-insecure-endpoint",
        "--user",
        "owner@acme.example",
        "--function",
        "auto_cluster",
    ];
    let run = keyfall(&db, &args, None);
    assert!(run.stdout.contains("acme-studio openai"), "acme-studio's own key: {}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("aws-admin"), "{}", run.stdout);

    set(format!("{{\"x\": {}}}", deep(9999))).execute(&mut conn).await.unwrap();
    let run = keyfall(&db, &args, None);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("unresolved, no key to test"), "{}", run.stderr);
}

/// A config keyfall holds only approximately is never written back: `set`
/// on another field of that row is refused, saying why, and the stored
/// jsonb (1e400's 401 digits) is untouched.
#[tokio::test]
async fn an_approximated_config_is_never_written_back() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    sqlx::query(
        "UPDATE integration_settings SET config = config || $1::jsonb
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .bind(r#"{"temperature": 1e400}"#)
    .execute(&mut conn)
    .await
    .unwrap();
    const STORED: &str = "SELECT config::text FROM integration_settings
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')";
    let before: String = sqlx::query_scalar(STORED).fetch_one(&mut conn).await.unwrap();
    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", "model"], Some("gpt-4.1\n"));
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("approximately"), "{}", run.stderr);
    assert!(!run.stderr.contains("sk-demo"), "{}", run.stderr);
    let after: String = sqlx::query_scalar(STORED).fetch_one(&mut conn).await.unwrap();
    assert_eq!(after, before);
    assert!(after.contains(&format!("1{}", "0".repeat(400))));
}
