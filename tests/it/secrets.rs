//! Secrets by shape (DESIGN §11): one definition in Rust
//! (`domain::secret`) and one in SQL (migrations/0002), held equal here on a
//! table of names, values and documents; canaries in every shape, written by
//! another client, never come back out of any command or the log; and rows
//! another client wrote that serde cannot hold (1e400, deep nesting) are
//! shown, updated and deleted without failing.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use keyfall::domain::secret::{
    MAX_DEPTH, fingerprint, fingerprint_config, is_secret_field, is_secret_value, mask_config,
};
use serde_json::{Value, json};

use crate::support::TestDb;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    log: String,
}

/// The binary, logging everything it logs at all (`KEYFALL_LOG=trace`).
fn run(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyfall"))
        .arg("--database-url")
        .arg(db.url())
        .args(args)
        .env_remove("DATABASE_URL")
        .env("KEYFALL_LOG", "trace")
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keyfall");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    let log_path = dir.path().join("state/keyfall/keyfall.log");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log_path).expect("a log file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the log is the user's only");
    }
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        log,
    }
}

async fn sql_bools(db: &TestDb, function: &str, inputs: &[String]) -> Vec<bool> {
    let mut conn = db.raw().await;
    let sql = format!("SELECT keyfall.{function}(v) FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i) ORDER BY i");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(inputs).fetch_all(&mut conn).await.unwrap()
}

async fn sql_redact(db: &TestDb, doc: &str) -> Value {
    let mut conn = db.raw().await;
    let text: String = sqlx::query_scalar("SELECT keyfall.keyfall_redact($1::text::jsonb)::text")
        .bind(doc)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A deterministic stream of strings near the rules' edges: lengths 28–44,
/// drawn from alphabets that do and do not qualify, with and without the
/// prefixes.
fn generated_values() -> Vec<String> {
    let alphabets: [&str; 6] = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-",
        "abcdef0123456789",
        "abcdefghijklmnopqrstuvwxyz-/0123",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "abcdefghijklmnopqrstuvwxyz0123456789 .:@",
        "aA0-é\u{212A}\t",
    ];
    let prefixes = ["", "", "", "sk-", "rw-", "AKIA", "Bearer ", "bearer\t", " ", "-----BEGIN "];
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut out = Vec::new();
    for _ in 0..3000 {
        let alphabet: Vec<char> = alphabets[next() % alphabets.len()].chars().collect();
        let prefix = prefixes[next() % prefixes.len()];
        let len = if prefix.is_empty() { 28 + next() % 17 } else { next() % 16 };
        let body: String = (0..len).map(|_| alphabet[next() % alphabet.len()]).collect();
        out.push(format!("{prefix}{body}"));
    }
    out
}

const NAMES: &[(&str, bool)] = &[
    ("apiKey", true),
    ("api_key", true),
    ("API-KEY", true),
    ("APIKEY", true),
    ("apiKeys", true),
    ("api_key_2", true),
    ("apiKey2", true),
    ("secret_access_key", true),
    ("private_key", true),
    ("privateKey", true),
    ("Authorization", true),
    ("authorization", true),
    ("clientSecret", true),
    ("client_secrets", true),
    ("password", true),
    ("db_passwd", true),
    ("token", true),
    ("accessToken", true),
    ("refresh_token", true),
    ("credentials", true),
    ("gcpCredential", true),
    ("secretKey", true),
    ("X-Api-Key", true),
    ("sshPassphrase", true),
    ("is_private", true),
    ("model", false),
    ("max_tokens", false),
    ("maxTokens", false),
    ("provider", false),
    ("base_url", false),
    ("temperature", false),
    ("keywords", false),
    ("note", false),
    ("headers", false),
    ("", false),
    ("\u{212A}ey", false),
    ("api\u{212A}EY", false),
    ("ＡＰＩ_KEY", true),
    ("keyé", true),
    ("tokens", false),
];

const VALUES: &[(&str, bool)] = &[
    ("sk-proj-AbCdEf0123456789", true),
    ("  sk-12345678\n", true),
    ("sk-1234567", false),
    ("sk_live_12345678", true),
    ("rw-12345678", true),
    ("AKIAIOSFODNN7EXAMPLE", true),
    ("ASIAIOSFODNN7EXA", true),
    ("AKIAiosfodnn7example", false),
    ("Bearer abcdefgh", true),
    ("bearer\t\tabcdefgh12", true),
    ("Bearer abc", false),
    ("Bearer of bad news", false),
    ("Bearer abcdefgh more", false),
    ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----", true),
    ("see -----BEGIN CERTIFICATE----- below", true),
    ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", true),
    ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", true),
    ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", true),
    ("123e4567-e89b-12d3-a456-426614174000", false),
    ("anthropic/claude-3-5-sonnet-20241022", false),
    ("accounts/fireworks/models/llama-v3p1-405b-instruct", false),
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", false),
    ("https://api.openai.com/v1/chat/completions", false),
    ("2024-07-18T10:00:00Z", false),
    ("gpt-4o-mini", false),
    ("runware:101@1", false),
    ("someVeryLongConfigurationValueNameX", false),
    ("#1a2b3c4d", false),
    ("", false),
    ("\u{7}\u{1b}[31m", false),
];

#[tokio::test]
async fn rust_and_sql_agree_on_names_values_and_documents() {
    let db = TestDb::demo().await;
    // Names.
    let names: Vec<String> = NAMES.iter().map(|(n, _)| n.to_string()).collect();
    let sql = sql_bools(&db, "keyfall_is_secret_key", &names).await;
    for ((name, want), sql) in NAMES.iter().zip(sql) {
        assert_eq!(is_secret_field(name), *want, "Rust: name {name:?}");
        assert_eq!(sql, *want, "SQL: name {name:?}");
    }
    // Thousands of names built from word pieces in every case and joiner,
    // so the SQL's camelCase and snake_case shortcuts meet their edges.
    let pieces = [
        "api", "key", "Key", "KEY", "keys", "Keys", "monkey", "board", "token", "Tokens", "pass", "word", "secret",
        "x", "", "_", "__", "2", "-", "é", "private", "Passwd",
    ];
    let mut generated = Vec::new();
    for a in pieces {
        for b in pieces {
            for c in ["", "key", "Key", "_key", "Board", "s"] {
                generated.push(format!("{a}{b}{c}"));
            }
        }
    }
    let sql = sql_bools(&db, "keyfall_is_secret_key", &generated).await;
    for (name, sql) in generated.iter().zip(sql) {
        assert_eq!(sql, is_secret_field(name), "SQL and Rust differ on the name {name:?}");
    }
    // Values: the table, then thousands near the edges.
    let values: Vec<String> = VALUES.iter().map(|(v, _)| v.to_string()).collect();
    let sql = sql_bools(&db, "keyfall_is_secret_value", &values).await;
    for ((value, want), sql) in VALUES.iter().zip(sql) {
        assert_eq!(is_secret_value(value), *want, "Rust: value {value:?}");
        assert_eq!(sql, *want, "SQL: value {value:?}");
    }
    let generated = generated_values();
    let sql = sql_bools(&db, "keyfall_is_secret_value", &generated).await;
    let mut flagged = 0;
    for (value, sql) in generated.iter().zip(sql) {
        assert_eq!(is_secret_value(value), sql, "Rust and SQL differ on {value:?}");
        flagged += usize::from(sql);
    }
    assert!(flagged > 300 && flagged < 2700, "the generated values exercise both sides ({flagged})");
    // Documents: the whole redaction, in objects and arrays, at depth.
    let docs = [
        json!({"apiKey": "sk-a", "model": "gpt-4o", "temperature": 1, "max_tokens": 100}),
        json!({"secret_access_key": "wJalrX", "private_key": "pk", "api_key_2": "two", "apiKeys": ["a", "b", "", null, 7, true]}),
        json!({"headers": {"Authorization": "Basic Zm9vOmJhcg==", "Accept": "json"}, "note": "sk-0123456789"}),
        json!({"list": [{"token": {"nested": [1, "x", {"deeper": false}]}}, "AKIAIOSFODNN7EXAMPLE", "plain"]}),
        json!({"credentials": {"user": "u", "pass": 12, "b": {"long key": "v", "k": "w"}}, "n": null, "e": ""}),
        json!({"apiKey": "#1a2b3c4d", "x": "#1A2B3C4D", "blob": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}),
        json!({"weird \u{1}\"\\ key": {"password": "a\u{1}\"\\\n\té"}, "é": "é"}),
        json!(["sk-0123456789", {"apiKey": 3}]),
        json!("Bearer 0123456789"),
        json!({"apiKey": {"ab": 1, "a": [2, 3], "bbb": {}}}),
    ];
    for doc in docs {
        let text = doc.to_string();
        assert_eq!(fingerprint_config(&doc), sql_redact(&db, &text).await, "redaction of {text}");
        assert_eq!(fingerprint_config(&fingerprint_config(&doc)), fingerprint_config(&doc), "idempotent: {text}");
    }
    // Depth: the object or array at MAX_DEPTH is its fingerprint, whole.
    for n in [MAX_DEPTH - 2, MAX_DEPTH, MAX_DEPTH + 1, 100] {
        let text = format!("{{\"a\": {}{{\"apiKey\": \"k\", \"b\": [1, 2]}}{}}}", "[".repeat(n), "]".repeat(n));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(fingerprint_config(&doc), sql_redact(&db, &text).await, "redaction {n} deep");
    }
}

fn nested(n: usize) -> String {
    format!("{}1{}", "[".repeat(n), "]".repeat(n))
}

#[tokio::test]
async fn deep_documents_from_another_client_are_audited_updated_deleted_and_shown() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    for n in [1000usize, 5000] {
        let config = format!("{{\"apiKey\": \"sk-deep-0123456789\", \"model\": \"gpt-4o\", \"deep\": {}}}", nested(n));
        sqlx::query(
            "INSERT INTO integration_settings (account_id, integration_type, config, is_active)
             SELECT id, 'runware', $1::text::jsonb, true FROM accounts WHERE slug = 'acme-studio'
             ON CONFLICT (account_id, integration_type) DO UPDATE SET config = EXCLUDED.config",
        )
        .bind(&config)
        .execute(&mut psql)
        .await
        .unwrap_or_else(|e| panic!("insert {n} deep: {e}"));
        sqlx::query(
            "UPDATE integration_settings SET config = jsonb_set(config, '{model}', '\"other\"')
              WHERE integration_type = 'runware' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
        )
        .execute(&mut psql)
        .await
        .unwrap_or_else(|e| panic!("update {n} deep: {e}"));
        // The trigger cut the subtree at MAX_DEPTH: its fingerprint, as Rust computes it.
        let after: String = sqlx::query_scalar("SELECT after::text FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut psql)
            .await
            .unwrap();
        let mut cut: Value = serde_json::from_str::<Value>(&after).unwrap()["config"]["deep"].clone();
        for _ in 1..MAX_DEPTH {
            cut = cut[0].clone();
        }
        assert_eq!(cut, Value::String(fingerprint(&nested(n + 1 - MAX_DEPTH))), "{n} deep");
        assert!(!after.contains("sk-deep"), "the key is fingerprinted");

        for args in [
            &["audit"][..],
            &["audit", "--json"],
            &["get", "acme-studio", "runware"],
            &["get", "acme-studio", "runware", "--json"],
            &["export"],
            &["report", "--json"],
            &["lint", "--json"],
        ] {
            let out = run(&db, args, None);
            // export stops at a row it cannot carry exactly, naming it.
            let code_ok = match args[0] {
                "lint" => out.code == 1,
                "export" => out.code != 0 && out.stderr.contains("acme-studio runware"),
                _ => out.code == 0,
            };
            assert!(code_ok, "{args:?} {n} deep: {}", out.stderr);
            assert!(!out.stdout.contains("sk-deep-0123456789"), "{args:?}: {}", out.stdout);
            assert!(!out.stderr.contains("sk-deep-0123456789"), "{args:?}: {}", out.stderr);
        }
        let audit = run(&db, &["audit", "--json", "--account", "acme-studio", "--type", "runware"], None);
        assert!(audit.stdout.contains("config.model"), "{}", audit.stdout);
    }
    sqlx::query(
        "DELETE FROM integration_settings
          WHERE integration_type = 'runware' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .execute(&mut psql)
    .await
    .expect("a deep row can be deleted");
    let out = run(&db, &["audit", "--account", "acme-studio", "--type", "runware"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("delete"), "{}", out.stdout);
}

#[tokio::test]
async fn numbers_beyond_f64_and_nesting_beyond_serde_never_break_a_command() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        "UPDATE integration_settings SET config = config || '{\"temperature\": 1e400}'::jsonb
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio');
         UPDATE integration_settings SET config = config || jsonb_build_object('deep', (repeat('[', 200) || '1' || repeat(']', 200))::jsonb)
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'aws-admin');",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    for args in [
        &["audit"][..],
        &["audit", "--json"],
        &["get", "acme-studio", "openai"],
        &["get", "aws-admin", "openai", "--json"],
        &["report", "--json"],
    ] {
        let out = run(&db, args, None);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    }
    // export never writes such a row as something else: it stops, naming it.
    let out = run(&db, &["export"], None);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(out.stderr.contains("openai") && out.stderr.contains("cannot carry it exactly"), "{}", out.stderr);
    let audit = db.store.audit(Some("acme-studio"), Some("openai"), None, 1).await.unwrap();
    let digits = format!("1{}", "0".repeat(400));
    assert_eq!(audit[0].after.as_ref().unwrap()["config"]["temperature"], Value::String(digits), "shown as text");
    let deep = db.store.audit(Some("aws-admin"), Some("openai"), None, 1).await.unwrap();
    assert!(deep[0].after.as_ref().unwrap()["config"]["deep"].is_array());
    let entry = db.store.audit_entry(audit[0].id).await.unwrap();
    assert!(entry.is_some());
}

/// A canary in every shape, every one spelled with "canary" so a leak is
/// easy to see.
const CANARIES: &[&str] = &[
    "wJalrXUtnFEMI/K7MDENG/canary9SECRETkey2X",
    "canary-private-key-material-0001",
    "canary-api-key-two-0002",
    "canary-apikeys-elem-0003",
    "canary-apikeys-elem-0004",
    "Bearer canary0token0005abcdef",
    "sk-canary-note-0006abcdef",
    "AKIACANARY0007ABCD",
    "-----BEGIN PRIVATE KEY-----\nMIIcanary0008\n-----END PRIVATE KEY-----",
    "q7Xcanary9Lm2Pz8Rt4Vb6Nw3Ks5Hd1Jf0Gy8Ta2",
    "rw-canary0009abcdef",
];

fn canary_config() -> Value {
    json!({
        "secret_access_key": CANARIES[0],
        "private_key": CANARIES[1],
        "api_key_2": CANARIES[2],
        "apiKeys": [CANARIES[3], CANARIES[4]],
        "headers": {"Authorization": CANARIES[5], "Accept": "application/json"},
        "note": CANARIES[6],
        "aws_id": CANARIES[7],
        "cert": CANARIES[8],
        "blob": CANARIES[9],
        "notes": ["plain", CANARIES[10]],
    })
}

fn assert_no_canary(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} holds {canary:?}: {text}");
    }
    assert!(!text.to_lowercase().contains("canary"), "{what} holds a canary: {text}");
}

#[tokio::test]
async fn canaries_in_every_shape_never_come_out() {
    assert_eq!(CANARIES[9].len(), 40);
    // The ones under innocent names are known by their shape alone.
    for c in &CANARIES[5..] {
        let config = json!({"innocent": c});
        let masked = mask_config(&config).to_string();
        assert!(!masked.contains("canary"), "{c:?} is recognised by shape or by name: {masked}");
    }
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    // Written by another client, twice, so the audit has before and after.
    for model in ["gpt-4o", "gpt-4o-mini"] {
        sqlx::query(
            "UPDATE integration_settings SET config = config || $1::text::jsonb || jsonb_build_object('model', $2::text)
              WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
        )
        .bind(canary_config().to_string())
        .bind(model)
        .execute(&mut psql)
        .await
        .unwrap();
    }
    let stored: String = sqlx::query_scalar(
        "SELECT string_agg(coalesce(before::text, '') || coalesce(after::text, ''), ' ') FROM audit_log",
    )
    .fetch_one(&mut psql)
    .await
    .unwrap();
    assert_no_canary("the audit log table", &stored);

    for args in [
        &["get", "acme-studio", "openai"][..],
        &["get", "acme-studio", "openai", "--json"],
        &["export"],
        &["export", "--account", "acme-studio"],
        &["audit"],
        &["audit", "--json"],
        &["report", "--json"],
        &["report"],
        &["resolve", "--user", "owner@acme.example", "--function", "auto_cluster", "--json"],
        &["resolve", "--user", "owner@acme.example", "--function", "auto_cluster"],
        &["lint", "--json"],
        &["lint"],
    ] {
        let out = run(&db, args, None);
        assert!(out.code == 0 || (args[0] == "lint" && out.code == 1), "{args:?}: {}", out.stderr);
        assert_no_canary(&format!("{args:?} stdout"), &out.stdout);
        assert_no_canary(&format!("{args:?} stderr"), &out.stderr);
        assert_no_canary(&format!("{args:?} log"), &out.log);
    }
    // The fingerprints in the export stand for the stored values: an import
    // of it changes nothing.
    let export = run(&db, &["export", "--account", "acme-studio"], None);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &export.stdout).unwrap();
    let import = run(&db, &["--as", "dev@igny8.com", "import", file.path().to_str().unwrap(), "--yes"], None);
    assert_eq!(import.code, 0, "{}{}", import.stdout, import.stderr);
    assert!(import.stdout.contains("nothing to import"), "{}", import.stdout);
}

#[tokio::test]
async fn a_key_set_into_a_field_that_is_not_secret_is_refused_and_not_echoed() {
    let db = TestDb::demo().await;
    for (field, value) in [
        ("model", "sk-canary-model-0123456789\n"),
        ("temperature", "sk-canary-temp-0123456789\n"),
        ("max_tokens", "AKIACANARY0123456789\n"),
        ("base_url", "Bearer canary0123456789\n"),
        ("is_active", "q7Xcanary9Lm2Pz8Rt4Vb6Nw3Ks5Hd1Jf0Gy8Ta2\n"),
    ] {
        let out = run(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", field], Some(value));
        assert_eq!(out.code, 2, "{field}: {}", out.stderr);
        assert_no_canary("stdout", &out.stdout);
        assert_no_canary("stderr", &out.stderr);
        assert_no_canary("log", &out.log);
    }
    let refused =
        run(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", "model"], Some("sk-canary-0123456789"));
    assert!(refused.stderr.contains("not a secret field"), "{}", refused.stderr);
    // Other rejected values are not quoted either.
    let nan = run(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", "temperature"], Some("canary-hot\n"));
    assert_eq!(nan.code, 2);
    assert_no_canary("stderr", &nan.stderr);
    assert_no_canary("log", &nan.log);
    let setting = db.store.setting("acme-studio", "openai").await.unwrap().setting.unwrap();
    assert_no_canary("the stored config", &setting.config.to_string());
    // Into the key field it goes, masked.
    let ok =
        run(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", "apiKey"], Some("sk-canary-0123456789\n"));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_no_canary("stdout", &ok.stdout);
    assert_no_canary("stderr", &ok.stderr);
}
