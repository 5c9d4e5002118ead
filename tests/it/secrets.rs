//! Secrets by shape (DESIGN §11): one definition in Rust
//! (`domain::secret`) and one in SQL (migrations/0001_baseline.sql, section 2), held equal here on a
//! table of names, values and documents; canaries in every shape, written by
//! another client, never come back out of any command or the log; and rows
//! another client wrote that serde cannot hold (1e400, deep nesting) are
//! shown, updated and deleted without failing.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use keyfall::domain::secret::{
    MAX_DEPTH, Secret, fingerprint, fingerprint_config, fingerprint_document, is_secret_field, is_secret_value,
    mask_config,
};
use serde_json::{Value, json};
use sqlx::ConnectOptions;

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
    let run = run_at(dir.path(), &db.url(), args, stdin);
    {
        use std::os::unix::fs::PermissionsExt;
        let log_path = dir.path().join("state/keyfall/keyfall.log");
        let mode = std::fs::metadata(&log_path).expect("a log file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the log is the user's only");
    }
    run
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
    let alphabets: [&str; 8] = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-",
        "abcdef0123456789",
        "abcdefghijklmnopqrstuvwxyz-/0123",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "abcdefghijklmnopqrstuvwxyz0123456789 .:@",
        "aA0-é\u{212A}\t",
        // The separators and quotes the URL, assignment and JSON rules cut at.
        "ab=&?#:/@\"{}[]\\ kKeyPwd0.,;'",
        "eyJ.aB9_-",
    ];
    let prefixes = [
        "",
        "",
        "",
        "sk-",
        "rw-",
        "AKIA",
        "Bearer ",
        "bearer\t",
        " ",
        "-----BEGIN ",
        "https://",
        "x://u:",
        "{\"",
        "[\"",
        "pwd=",
        "a?api_key=",
        "eyJ",
        "{\"apiKey\":",
        "{\"a\":\"{\\\"",
        "h://sk-",
    ];
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
    // Short names (issue 18): `pwd` anywhere as an ending, `pass` as the last word.
    ("pwd", true),
    ("db_pwd", true),
    ("dbPwd", true),
    ("PWD", true),
    ("pass", true),
    ("db_pass", true),
    ("smtpPass", true),
    ("SMTP_PASS", true),
    ("x-pass", true),
    ("pass_", true),
    ("pass_through", false),
    ("passThrough", false),
    ("bypass", false),
    ("compass", false),
    ("passes", false),
    ("pass2", false),
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

/// The shapes of issue 18, each named: a secret inside a URL, a connection
/// string, a JWT, JSON inside a string (at any depth), and the negatives that
/// must stay plain — all judged alike by Rust and SQL.
const SHAPES: &[(&str, &str, bool)] = &[
    ("url query key", "https://x.example/v1?api_key=abc123", true),
    ("url query key among others", "https://x.example/v1?model=gpt-4o&apiKey=abc", true),
    ("url query token, relative", "/v1/chat?token=abc", true),
    ("url query key-shaped value", "https://x.example/v1?x=sk-abcdefgh12", true),
    ("url fragment token", "https://app.example/cb#access_token=abc123&state=z", true),
    ("url userinfo password", "https://user:hunter2@proxy.example:8080/", true),
    ("url userinfo key", "https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r.git", true),
    ("dsn password", "postgres://app:PW@host/db", true),
    ("dsn empty user", "redis://:hunter2@cache:6379/0", true),
    ("dsn password with @", "mysql://user:p@ss@db.example/app", true),
    ("dsn inside text", "DATABASE_URL=postgres://app:PW@host/db", true),
    ("libpq string", "host=db.internal user=app password=hunter2 dbname=app", true),
    ("ado string", "Server=tcp:x;Database=y;User Id=u;Pwd=p;", true),
    ("short pwd assignment", "pwd=x", true),
    ("short pass assignment", "db_pass=x", true),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", true),
    ("jwt unsigned, in text", "token: eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", true),
    ("json in a string", "{\"apiKey\":\"sk-…\"}", true),
    ("json, key-shaped value", "{\"nested\": \"sk-0123456789ab\"}", true),
    ("json array", "[\"x\", \"AKIAIOSFODNN7EXAMPLE\"]", true),
    ("json in a string in a string", "{\"outer\":\"{\\\"password\\\":\\\"x\\\"}\"}", true),
    ("json holding a dsn", "{\"dsn\": \"postgres://u:p@h/db\"}", true),
    ("json cut off", "{\"apiKey\": \"sk-cut", true),
    ("json short name", "{\"pwd\": 1234}", true),
    ("json with a query url", "[{\"url\": \"https://x/?token=abc\"}]", true),
    ("a name holding an escaped quote", "{\"a\\\"apiKey\": 1}", true),
    // Negatives: plain URLs, model names, ids, words.
    ("plain url", "https://api.openai.com/v1/chat/completions", false),
    ("url with a plain query", "https://api.example/v1/models?limit=10&order=desc&max_tokens=5", false),
    ("url with a fragment", "https://docs.example/v1#section-2", false),
    ("dsn without password", "postgres://app@db.internal/app", false),
    ("url with a port", "https://host:8443/path", false),
    ("url with an empty password", "https://user:@host/", false),
    ("at in the path", "https://x.example/a@b", false),
    ("email", "ops@example.com", false),
    ("mailto", "mailto:ops@example.com", false),
    ("runware model", "runware:100@1", false),
    ("model", "gpt-4o", false),
    ("dotted model", "gpt-4.1-2025-04-14", false),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", false),
    ("word with eyJ", "greyJacket.v2.yaml", false),
    ("plain json", "{\"model\": \"gpt-4o\", \"max_tokens\": 100}", false),
    ("json naming a key without a value", "{\"apiKey\"}", false),
    ("bracketed note", "[draft] plain note", false),
    ("plain assignments", "temperature=0.7&top_p=1", false),
    ("pass_through assignment", "pass_through=true", false),
    ("words", "Pass the salt, please", false),
    ("lone equals", "key words = are fine", false),
    ("version header", "x-api-version=2024-01-01", false),
    ("empty token", "https://x/?token=", false),
    ("a tab ends a value", "api_key=\tx", false),
    ("a tab ends an authority", "https://a:\tb@h", false),
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
        "x", "", "_", "__", "2", "-", "é", "private", "Passwd", "pass", "Pass", "PASS", "pwd", "Pwd", "by",
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

async fn sql_json(db: &TestDb, function: &str, doc: &Value) -> Value {
    let mut conn = db.raw().await;
    let sql = format!("SELECT keyfall.{function}($1::text::jsonb)::text");
    let text: String =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(doc.to_string()).fetch_one(&mut conn).await.unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_corpus_of_shapes_is_judged_alike_in_rust_and_sql_and_hidden_by_both() {
    assert!(SHAPES.iter().filter(|s| s.2).count() >= 20, "at least 20 shapes");
    assert!(SHAPES.iter().filter(|s| !s.2).count() >= 15, "and plenty of negatives");
    let db = TestDb::demo().await;
    let values: Vec<String> = SHAPES.iter().map(|(_, v, _)| v.to_string()).collect();
    let sql = sql_bools(&db, "keyfall_is_secret_value", &values).await;
    for ((label, value, want), sql) in SHAPES.iter().zip(sql) {
        assert_eq!(is_secret_value(value), *want, "Rust: {label}: {value:?}");
        assert_eq!(sql, *want, "SQL: {label}: {value:?}");
        // Under an innocent name: masked (whole) and fingerprinted (whole)
        // by both sides, or left as it is by both.
        let doc = json!({"innocent": value, "list": [value], "deep": {"x": value}});
        let masked = mask_config(&doc);
        let sql_masked = sql_json(&db, "keyfall_mask", &doc).await;
        let redacted = fingerprint_config(&doc);
        assert_eq!(redacted, sql_redact(&db, &doc.to_string()).await, "{label}: redaction");
        for (shown, side) in [(&masked, "Rust mask"), (&sql_masked, "SQL mask"), (&redacted, "redaction")] {
            for at in [&shown["innocent"], &shown["list"][0], &shown["deep"]["x"]] {
                assert_eq!(at == &json!(value), !want, "{side}: {label}: {shown}");
            }
        }
        if *want {
            assert_eq!(masked["innocent"], json!(Secret::new(*value).masked()), "{label}: masked whole");
            assert_eq!(sql_masked["innocent"], masked["innocent"], "{label}: the database masks it as keyfall does");
            assert_eq!(redacted["innocent"], json!(fingerprint(value)), "{label}: fingerprinted whole");
        }
    }
    // An audit document, member by member, as the history's redaction does it.
    let config: serde_json::Map<String, Value> =
        SHAPES.iter().enumerate().map(|(i, (_, v, _))| (format!("f{i}"), json!(v))).collect();
    let doc = json!({"config": config, "is_active": true, "pwd": "short", "apiKey": "#1a2b3c4d"});
    assert_eq!(fingerprint_document(&doc), sql_json(&db, "keyfall_redact_document", &doc).await);
    assert_eq!(fingerprint_document(&doc)["pwd"], json!(fingerprint("short")));
}

/// A canary in each shape of issue 18, under innocent names (and the short
/// secret names), each spelled with "canary".
const NEW_CANARIES: &[(&str, &str)] = &[
    ("base_url", "https://api.example.com/v1?api_key=canary0query0key"),
    ("callback", "https://app.example.com/cb#access_token=canary0fragment"),
    ("proxy", "https://canary0user:canary0pw@proxy.example.com:8080/"),
    ("dsn", "postgres://app:canary0dsn0pw@db.internal:5432/app"),
    ("conn", "host=db user=app password=canary0libpq dbname=app"),
    ("extra", "{\"apiKey\":\"sk-canary-json-0123456789\"}"),
    ("extra_deep", "{\"inner\":\"{\\\"token\\\":\\\"canary0deep\\\"}\"}"),
    ("session", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.canary0jwt0sig"),
    ("pwd", "canary1"),
    ("db_pass", "canary2"),
];

/// A consumer's provider holding a raw key: the second hop's label.
const PROVIDER_CANARY: &str = "sk-canary-provider-0123456789";

fn new_canary_config() -> Value {
    Value::Object(NEW_CANARIES.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

/// The binary as another database login (the least-privilege role).
fn run_as(db: &TestDb, login: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let url = db.target.options.clone().username(login).to_url_lossy().to_string();
    run_url(&url, args, stdin)
}

fn run_url(url: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    run_at(dir.path(), url, args, stdin)
}

/// The binary against `url`, its home and log under `dir`.
fn run_at(dir: &std::path::Path, url: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyfall"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("KEYFALL_LOG", "trace")
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
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
    let Output { status, stdout, stderr } = crate::support::output_within(child, crate::support::HUNG);
    let log = std::fs::read_to_string(dir.join("state/keyfall/keyfall.log")).unwrap_or_default();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        log,
    }
}

fn assert_no_new_canary(what: &str, run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr), ("log", &run.log)] {
        assert!(!text.to_lowercase().contains("canary"), "{what} {name} holds a canary: {text}");
    }
}

async fn least_privilege(db: &TestDb) {
    let mut owner = db.raw().await;
    sqlx::raw_sql(include_str!("../../assets/least_privilege_role.sql")).execute(&mut owner).await.unwrap();
    db.store.operator_add("keyfall_operator", "dev@igny8.com").await.unwrap();
}

#[tokio::test]
async fn canaries_in_the_new_shapes_never_come_out() {
    let db = TestDb::demo().await;
    least_privilege(&db).await;
    let mut psql = db.raw().await;
    // Written by another client, twice, so the audit has before and after;
    // and a consumer whose provider holds a raw key.
    for model in ["gpt-4o", "gpt-4o-mini"] {
        sqlx::query(
            "UPDATE integration_settings SET config = config || $1::text::jsonb || jsonb_build_object('model', $2::text)
              WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
        )
        .bind(new_canary_config().to_string())
        .bind(model)
        .execute(&mut psql)
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE integration_settings SET config = config || jsonb_build_object('provider', jsonb_build_object('nested', $1::text))
          WHERE integration_type = 'image_generation'",
    )
    .bind(PROVIDER_CANARY)
    .execute(&mut psql)
    .await
    .unwrap();
    let stored: String = sqlx::query_scalar(
        "SELECT string_agg(coalesce(before::text, '') || coalesce(after::text, ''), ' ') FROM audit_log",
    )
    .fetch_one(&mut psql)
    .await
    .unwrap();
    assert!(!stored.contains("canary"), "the audit log table: {stored}");
    let verdicts: String = sqlx::query_scalar("SELECT string_agg(coalesce(provider::text, ''), ' ') FROM row_verdicts")
        .fetch_one(&mut psql)
        .await
        .unwrap();
    assert!(!verdicts.contains("canary"), "the report's kept providers: {verdicts}");

    let commands: &[&[&str]] = &[
        &["get", "acme-studio", "openai"],
        &["get", "acme-studio", "openai", "--json"],
        &["get", "aws-admin", "image_generation", "--json"],
        &["export"],
        &["audit"],
        &["audit", "--json"],
        &["report", "--json"],
        &["report"],
        &["resolve", "--user", "owner@acme.example", "--function", "auto_cluster", "--json"],
        &["resolve", "--user", "paid2@paid.com", "--function", "generate_images", "--json"],
        &["resolve", "--user", "paid2@paid.com", "--function", "generate_images"],
        &["lint", "--json"],
        &["lint"],
    ];
    for args in commands {
        let out = run(&db, args, None);
        assert!(out.code == 0 || (matches!(args[0], "lint" | "resolve") && out.code == 1), "{args:?}: {}", out.stderr);
        assert_no_new_canary(&format!("{args:?}"), &out);
        // Through the least-privilege login, which reads keys masked.
        let out = run_as(&db, "keyfall_operator", args, None);
        assert!(out.code == 0 || (matches!(args[0], "lint" | "resolve") && out.code == 1), "{args:?}: {}", out.stderr);
        assert_no_new_canary(&format!("operator {args:?}"), &out);
    }
    // The import preview of a file holding them (for another account).
    let doc = json!({"keyfall_export": 1, "settings": [{
        "account": "paid-2", "integration_type": "openai", "is_active": true,
        "config": {"apiKey": "sk-canary-import-0123456789", "extra": NEW_CANARIES[5].1, "dsn": NEW_CANARIES[3].1}
    }]});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), doc.to_string()).unwrap();
    let preview = run(&db, &["--as", "dev@igny8.com", "import", file.path().to_str().unwrap(), "--dry-run"], None);
    assert_eq!(preview.code, 0, "{}{}", preview.stdout, preview.stderr);
    assert!(preview.stdout.contains("paid-2"), "{}", preview.stdout);
    assert_no_new_canary("import --dry-run", &preview);
}

#[tokio::test]
async fn set_refuses_the_new_shapes_under_plain_names_and_masks_the_short_secret_names() {
    let db = TestDb::demo().await;
    for (_, value) in &NEW_CANARIES[..8] {
        for field in ["base_url", "model", "note"] {
            let out = run(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", field], Some(value));
            assert_eq!(out.code, 2, "{field} = {value}: {}", out.stderr);
            assert!(out.stderr.contains("not a secret field"), "{}", out.stderr);
            assert_no_new_canary(&format!("set {field}"), &out);
        }
        // Quoted, as a paste may be: still refused.
        let quoted = format!("\"{value}\"\n");
        let out = run(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", "note"], Some(&quoted));
        assert_eq!(out.code, 2, "quoted {value}: {}", out.stderr);
        assert_no_new_canary("set quoted", &out);
    }
    let setting = db.store.setting("acme-studio", "openai").await.unwrap().setting.unwrap();
    assert!(!setting.config.to_string().contains("canary"), "{}", setting.config);
    // Under `pwd` and `db_pass` a short value is a secret: stored, never echoed.
    for (field, value) in &NEW_CANARIES[8..] {
        let out = run(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", field], Some(value));
        assert_eq!(out.code, 0, "{field}: {}", out.stderr);
        assert_no_new_canary(&format!("set {field}"), &out);
        for args in [&["get", "acme-studio", "openai"][..], &["get", "acme-studio", "openai", "--json"], &["audit"]] {
            assert_no_new_canary(&format!("{args:?}"), &run(&db, args, None));
        }
    }
    let setting = db.store.setting("acme-studio", "openai").await.unwrap().setting.unwrap();
    assert_eq!(setting.config["pwd"], "canary1", "stored as given");
    let mut psql = db.raw().await;
    let log: String = sqlx::query_scalar("SELECT string_agg(coalesce(after::text, ''), ' ') FROM audit_log")
        .fetch_one(&mut psql)
        .await
        .unwrap();
    assert!(!log.contains("canary"), "{log}");
}

#[tokio::test]
async fn audit_rows_written_before_the_wider_shapes_are_redacted_and_the_log_says_so() {
    let db = TestDb::demo().await;
    let mut owner = db.raw().await;
    // Rows as the trigger wrote them before 0008 knew these shapes: in clear.
    let before = json!({"config": new_canary_config(), "is_active": true});
    let after = json!({"config": {"provider": {"nested": PROVIDER_CANARY}, "model": "gpt-4o"}, "is_active": true});
    let plain = json!({"config": {"model": "gpt-4o", "base_url": "https://api.openai.com/v1"}, "is_active": true});
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO keyfall.audit_log (actor, action, table_name, account_slug, integration_type, before, after)
         SELECT 'old-writer', 'update', 'integration_settings', 'acme-studio', 'openai', b::jsonb, a::jsonb
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(b, a, i) ORDER BY i
         RETURNING id",
    )
    .bind(vec![before.to_string(), plain.to_string()])
    .bind(vec![after.to_string(), plain.to_string()])
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let count_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keyfall.audit_log").fetch_one(&mut owner).await.unwrap();

    let redacted: i64 =
        sqlx::query_scalar("SELECT keyfall.keyfall_redact_history()").fetch_one(&mut owner).await.unwrap();
    assert_eq!(redacted, 1, "only the row holding secrets");
    let all: String = sqlx::query_scalar(
        "SELECT string_agg(coalesce(before::text, '') || coalesce(after::text, ''), ' ') FROM keyfall.audit_log",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert!(!all.contains("canary"), "{all}");
    // Exactly what keyfall shows for such a row (fingerprint_document).
    let (b, a): (String, String) =
        sqlx::query_as("SELECT before::text, after::text FROM keyfall.audit_log WHERE id = $1")
            .bind(ids[0])
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap(), fingerprint_document(&before));
    assert_eq!(serde_json::from_str::<Value>(&a).unwrap(), fingerprint_document(&after));
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["config"]["pwd"], json!(fingerprint("canary1")));
    let untouched: String = sqlx::query_scalar("SELECT before::text FROM keyfall.audit_log WHERE id = $1")
        .bind(ids[1])
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&untouched).unwrap(), plain, "a row without secrets is left alone");
    // The log says what was done, in one row of its own.
    let (action, table, note, rows): (String, String, String, i64) = sqlx::query_as(
        "SELECT action, table_name, after ->> 'redacted', (after ->> 'rows')::bigint FROM keyfall.audit_log ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!((action.as_str(), table.as_str(), rows), ("redact", "audit_log", 1));
    assert_eq!(note, "redacted 1 rows: secret shapes widened");
    let count_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keyfall.audit_log").fetch_one(&mut owner).await.unwrap();
    assert_eq!(count_after, count_before + 1, "one row added, none removed");
    let shown = run(&db, &["audit", "--limit", "3"], None);
    assert!(shown.stdout.contains("redacted 1 rows: secret shapes widened"), "{}", shown.stdout);
    assert_no_new_canary("audit", &shown);
    // Again: nothing left to redact, nothing logged.
    let again: i64 = sqlx::query_scalar("SELECT keyfall.keyfall_redact_history()").fetch_one(&mut owner).await.unwrap();
    assert_eq!(again, 0);
    let count_again: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keyfall.audit_log").fetch_one(&mut owner).await.unwrap();
    assert_eq!(count_again, count_after);
    // The log is append-only again, for the owner too.
    let update =
        sqlx::query("UPDATE keyfall.audit_log SET actor = 'x' WHERE id = $1").bind(ids[1]).execute(&mut owner).await;
    assert!(update.unwrap_err().to_string().contains("append-only"), "the trigger is back");
    // Nobody else may run it (it lifts the append-only trigger).
    let mut sqlx_owner = db.raw().await;
    sqlx::raw_sql(include_str!("../../assets/least_privilege_role.sql")).execute(&mut sqlx_owner).await.unwrap();
    let mut operator =
        db.target.options.clone().username("keyfall_operator").connect().await.expect("connect as the operator");
    let denied = sqlx::query_scalar::<_, i64>("SELECT keyfall.keyfall_redact_history()").fetch_one(&mut operator).await;
    assert!(denied.is_err(), "the operator role cannot rewrite the log");
}

#[tokio::test]
async fn lint_does_not_lint_a_mask_and_says_l008_was_not_checked() {
    let db = TestDb::demo().await;
    least_privilege(&db).await;
    let mut owner = db.raw().await;
    sqlx::query(
        "UPDATE integration_settings SET config = jsonb_set(config, '{apiKey}', '\"sk-pasted-with-newline-0000\\n\"')
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    // The owner reads raw keys: L008 finds the bad paste, and only it.
    let raw = run(&db, &["lint", "--json"], None);
    let findings: Vec<Value> = serde_json::from_str(&raw.stdout).unwrap();
    let l008: Vec<&Value> = findings.iter().filter(|f| f["id"] == "L008").collect();
    assert_eq!(l008.len(), 1, "{l008:?}");
    assert_eq!(l008[0]["account"], "acme-studio");
    assert!(!raw.stdout.contains("not checked"), "{}", raw.stdout);
    // The operator login reads every key masked (`••••••••abcd #1234abcd`,
    // which holds a space): no L008 on a mask, and lint says what it skipped.
    for args in [&["lint", "--json"][..], &["lint"]] {
        let masked = run_as(&db, "keyfall_operator", args, None);
        assert!(masked.code == 0 || masked.code == 1, "{}", masked.stderr);
        assert!(!masked.stdout.contains("holds whitespace"), "{}", masked.stdout);
        assert!(masked.stdout.contains("L008 not checked: keys are masked for this login"), "{}", masked.stdout);
        assert!(!masked.stdout.contains("sk-pasted"), "{}", masked.stdout);
    }
    let masked = run_as(&db, "keyfall_operator", &["lint", "--json"], None);
    let findings: Vec<Value> = serde_json::from_str(&masked.stdout).unwrap();
    let l008: Vec<&Value> = findings.iter().filter(|f| f["id"] == "L008").collect();
    assert_eq!(l008.len(), 1, "one note, no warning per key: {l008:?}");
    assert_eq!(l008[0]["severity"], "info");
    assert!(l008[0]["fix"].is_null());
}

/// The console's resolve panel, drawn: the second hop's line names the type
/// the provider holds — a raw key there is masked, in a session that reads
/// raw keys (the owner's) too.
#[tokio::test]
async fn the_second_hop_line_never_shows_a_key_held_under_provider() {
    use keyfall::app::keymap::Keymap;
    use keyfall::app::{Model, Msg, Session, update, view};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    for provider in [json!({"nested": PROVIDER_CANARY}), json!(PROVIDER_CANARY), json!(NEW_CANARIES[0].1)] {
        sqlx::query(
            "UPDATE integration_settings SET config = config || jsonb_build_object('provider', $1::text::jsonb)
              WHERE integration_type = 'image_generation'",
        )
        .bind(provider.to_string())
        .execute(&mut psql)
        .await
        .unwrap();
        let config = keyfall::config::Config {
            database_url: None,
            operator: Some("dev@igny8.com".into()),
            data_dir: std::env::temp_dir(),
            state_dir: std::env::temp_dir(),
            label: None,
            color: None,
            read_only: false,
            keys: Default::default(),
            mapping: None,
            resolution: Default::default(),
            file: None,
            login: None,
            statement_timeout: None,
            contexts: Vec::new(),
            context: None,
            read_only_asked: false,
            mouse: true,
        };
        let access = keyfall::cli::console_access(&db.store, &config).await.unwrap();
        let session =
            Session { database: "localhost/keyfall".into(), label: None, color: None, access, no_color: true };
        let mut model = Model::new(session, Keymap::default_keys(), chrono::Utc::now());
        let send = |model: &mut Model, msg: Msg| update(model, msg);
        let cmds = send(&mut model, Msg::Resize { width: 200, height: 60 });
        crate::support::drive(&db.store, &mut model, cmds).await;
        let cmds = model.start();
        crate::support::drive(&db.store, &mut model, cmds).await;
        for key in ["u", "p", "a", "i", "d", "2", "enter", "f"] {
            let cmds = send(&mut model, Msg::Key(key.into()));
            crate::support::drive(&db.store, &mut model, cmds).await;
        }
        for _ in 0..10 {
            let current = match &model.overlay {
                Some(keyfall::app::Overlay::Picker(p)) => p.current().map(|i| i.value.clone()),
                _ => None,
            };
            if current.as_deref() == Some("generate_images") {
                break;
            }
            let cmds = send(&mut model, Msg::Key("down".into()));
            crate::support::drive(&db.store, &mut model, cmds).await;
        }
        let cmds = send(&mut model, Msg::Key("enter".into()));
        crate::support::drive(&db.store, &mut model, cmds).await;
        let draw = |model: &Model| {
            let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
            terminal.draw(|f| view::draw(model, f)).unwrap();
            let buffer = terminal.backend().buffer();
            (0..60)
                .map(|y| (0..200).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>() + "\n")
                .collect::<String>()
        };
        let text = draw(&model);
        assert!(text.contains("generate_images → image_generation"), "{text}");
        assert!(text.contains("└ "), "the second hop is drawn: {text}");
        assert!(text.contains("••••••••"), "its label masked: {text}");
        assert!(!text.contains("canary"), "{provider}: {text}");
        // A notice carrying an error's text that quotes a DSN with its password.
        let error = "error connecting to postgres://app:canary0notice@db.internal/app: refused".to_string();
        let cmds = send(&mut model, Msg::ListenerLost { error });
        crate::support::drive(&db.store, &mut model, cmds).await;
        let text = draw(&model);
        assert!(text.contains("database connection lost (error connecting to ••••••••"), "{text}");
        assert!(!text.contains("canary"), "the notice: {text}");
    }
}

/// A canary of each shape the test provider adds to the registry (debug
/// builds, `KEYFALL_TEST_PROVIDER=1`): a key by its prefix under an
/// innocent name, and a field named by the added name ending.
fn added_shape_config() -> Value {
    json!({
        "model": "gpt-4o",
        "note": "acme-canary-key-00000001",
        "webhookSignature": "plain-canary-text-02",
        "hook": {"signing_signature": "canary-signing-03", "url": "https://hooks.example/x?t=acme-canary-key-00000003"},
    })
}

/// A secret shape added to the registry — one entry in
/// `registry::TEST_SECRET_SHAPES` — is known to Rust and to the SQL alike:
/// loaded with the registry, the database's redaction (the audit capture)
/// and masking (the view) follow it, and no command lets it out. Runs itself
/// again in a process with the test provider, with the whole table of
/// shapes held equal there too.
#[test]
fn a_secret_shape_added_to_the_registry_is_redacted_by_rust_and_sql_alike() {
    use keyfall::domain::registry;
    if std::env::var_os(registry::TEST_PROVIDER_ENV).is_none_or(|v| v != "1") {
        // Not a secret without the added shapes.
        assert!(!is_secret_value("acme-canary-key-00000001") && !is_secret_field("webhookSignature"));
        crate::registry_data::with_the_test_provider(
            "secrets::a_secret_shape_added_to_the_registry_is_redacted_by_rust_and_sql_alike",
        );
        crate::registry_data::with_the_test_provider("secrets::rust_and_sql_agree_on_names_values_and_documents");
        return;
    }
    crate::support::registry_from_env();
    let shapes = registry::secret_shapes();
    assert!(shapes.value_prefixes.iter().any(|p| p.prefix == "acme-") && shapes.name_endings.contains(&"signature"));
    assert!(!registry::SECRET_SHAPES.value_prefixes.iter().any(|p| p.prefix == "acme-"), "added, not built in");
    // Rust.
    assert!(is_secret_value("acme-canary-key-00000001") && !is_secret_value("acme-large"));
    assert!(is_secret_field("webhookSignature") && is_secret_field("signing_signature"));
    assert!(!is_secret_field("signatures") && !is_secret_field("model"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let db = TestDb::demo().await;
        // The SQL, from the registry it loaded.
        let names: Vec<String> = ["webhookSignature", "signing_signature", "SIGNATURE", "signatures", "model", "db_pass"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let sql = sql_bools(&db, "keyfall_is_secret_key", &names).await;
        for (name, sql) in names.iter().zip(sql) {
            assert_eq!(sql, is_secret_field(name), "SQL and Rust differ on the name {name:?}");
        }
        let values: Vec<String> = ["acme-canary-key-00000001", "acme-1234567", "acme-12345678", "acme-large", "x=acme-12345678"]
            .iter()
            .map(|v| v.to_string())
            .collect();
        let sql = sql_bools(&db, "keyfall_is_secret_value", &values).await;
        for (value, sql) in values.iter().zip(sql) {
            assert_eq!(sql, is_secret_value(value), "SQL and Rust differ on the value {value:?}");
        }
        let doc = added_shape_config();
        assert_eq!(fingerprint_config(&doc), sql_redact(&db, &doc.to_string()).await, "redaction of {doc}");
        assert_eq!(mask_config(&doc), sql_json(&db, "keyfall_mask", &doc).await, "masking of {doc}");
        // Written by another client, twice (the audit has before and after).
        let mut psql = db.raw().await;
        for model in ["gpt-4o", "gpt-4o-mini"] {
            sqlx::query(
                "UPDATE integration_settings SET config = config || $1::text::jsonb || jsonb_build_object('model', $2::text)
                  WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
            )
            .bind(added_shape_config().to_string())
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
        assert!(!stored.contains("canary"), "the audit log holds a canary: {stored}");
        for args in [
            &["get", "acme-studio", "openai", "--json"][..],
            &["get", "acme-studio", "openai"],
            &["export", "--account", "acme-studio"],
            &["audit", "--json"],
            &["report", "--json"],
        ] {
            let out = run(&db, args, None);
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            assert!(!out.stdout.contains("canary"), "{args:?} stdout: {}", out.stdout);
            assert!(!out.stderr.contains("canary") && !out.log.contains("canary"), "{args:?}: {}", out.stderr);
        }
    });
}
