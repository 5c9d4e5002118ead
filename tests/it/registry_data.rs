//! The registry is the only place a rule is written (issue 21, point 1):
//! the SQL reads it as data (`keyfall.registry_types`, `registry_fields`,
//! loaded at migrate and attach with its fingerprint, the baseline migration), the
//! stored verdicts follow a registry that changes, and a provider added to
//! the registry — one entry — is judged, reported, resolved and batch-
//! resolved alike with nothing else touched. The secret shapes are
//! registry data too (`keyfall.registry_secret_shapes`): the SQL's secret
//! functions are written from them at each load.
//!
//! The added provider exists only in debug builds run with
//! `KEYFALL_TEST_PROVIDER=1` (`registry::TEST_PROVIDER`): the test runs
//! itself again in a child process with it set, so no second build of the
//! crate (a cargo feature would compile everything twice) and no other
//! test ever sees it.

use keyfall::domain::registry::{self, Kind, TYPES};
use serde_json::{Value, json};

use crate::support::TestDb;

/// `keyfall_row_verdict` over `cases` against `registry::judge`: the cases
/// where they differ.
async fn disagreements(db: &TestDb, cases: &[(String, Value, bool)]) -> Vec<String> {
    let mut conn = db.raw().await;
    let mut wrong = Vec::new();
    for (ty, config, active) in cases {
        let sql: String = sqlx::query_scalar("SELECT keyfall.keyfall_row_verdict($1, $2, $3)")
            .bind(ty)
            .bind(config)
            .bind(active)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let pure = registry::judge(ty, config, *active).verdict.as_str();
        if sql != pure {
            wrong.push(format!("{ty} {config} active={active}: registry {pure}, SQL {sql}"));
        }
    }
    wrong
}

/// The stored verdict of every setting, by account slug and type.
async fn stored(db: &TestDb) -> Vec<(String, String, String)> {
    let mut conn = db.raw().await;
    sqlx::query_as(
        "SELECT a.slug, r.integration_type, r.verdict FROM keyfall.row_verdicts r JOIN accounts a ON a.id = r.account_id
          ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_registry_is_loaded_as_data_with_its_fingerprint() {
    let db = TestDb::new().await;
    let mut conn = db.raw().await;
    let types: Vec<(String, String)> =
        sqlx::query_as("SELECT name, kind FROM keyfall.registry_types ORDER BY position")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let expected: Vec<(String, String)> = TYPES
        .iter()
        .map(|t| (t.name.to_string(), if t.kind == Kind::Provider { "provider" } else { "consumer" }.to_string()))
        .collect();
    assert_eq!(types, expected);
    let fields: Vec<(String, String, Option<f64>, Option<f64>)> = sqlx::query_as(
        "SELECT f.type, f.field, f.min::float8, f.max::float8 FROM keyfall.registry_fields f
           JOIN keyfall.registry_types t ON t.name = f.type ORDER BY t.position, f.position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let expected: Vec<(String, String, Option<f64>, Option<f64>)> = TYPES
        .iter()
        .flat_map(|t| {
            t.fields.iter().map(|f| {
                let (min, max) = match f.kind {
                    registry::FieldKind::Number { min, max } => (Some(min), Some(max)),
                    registry::FieldKind::Integer { min } => (Some(min as f64), None),
                    _ => (None, None),
                };
                (t.name.to_string(), f.name.to_string(), min, max)
            })
        })
        .collect();
    assert_eq!(fields, expected);
    let (fingerprint, providers): (String, Vec<String>) =
        sqlx::query_as("SELECT fingerprint, providers FROM keyfall.registry_state").fetch_one(&mut conn).await.unwrap();
    assert_eq!(fingerprint, registry::fingerprint());
    assert_eq!(providers, registry::provider_names().collect::<Vec<_>>());
    // Loading the same registry again changes nothing.
    let loaded: bool = sqlx::query_scalar("SELECT keyfall.keyfall_load_registry($1, $2)")
        .bind(registry::document())
        .bind(registry::fingerprint())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!loaded, "the registry in place is not loaded twice");
    // No type is named in the SQL that judges rows, as installed: only the
    // verdict function written from the tables does.
    let source: String = sqlx::query_scalar(
        "SELECT string_agg(pg_get_functiondef(p.oid), E'\\n')
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'keyfall'
            AND p.proname IN ('keyfall_judge', 'keyfall_field_problem', 'keyfall_registry_verdict_sql',
                              'keyfall_write_row_verdict', 'keyfall_load_registry')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(source.contains("keyfall_judge"), "the rule functions are installed");
    for t in TYPES.iter() {
        assert!(!source.contains(t.name), "the SQL rules name the type {}", t.name);
    }
}

#[tokio::test]
async fn a_registry_that_changes_is_loaded_again_and_the_stored_verdicts_follow() {
    let db = TestDb::new().await;
    let mut conn = db.raw().await;
    let slugs = vec!["a0".to_string()];
    let settings = [
        (0, "openai", r#"{"apiKey": "sk-test-0123456789abcdef", "temperature": 0.7}"#, true),
        (0, "runware", r#"{"model": "runware:100@1"}"#, true),
        (0, "image_generation", r#"{"provider": "runware"}"#, true),
    ];
    crate::support::load_world(&mut conn, &slugs, &[], &settings).await;
    let ours = vec![
        ("a0".to_string(), "image_generation".to_string(), "answered".to_string()),
        ("a0".to_string(), "openai".to_string(), "answered".to_string()),
        ("a0".to_string(), "runware".to_string(), "no_api_key".to_string()),
    ];
    assert_eq!(stored(&db).await, ours);

    // Another keyfall's registry: openai's temperature up to 0.5, and no
    // runware (a type it does not know, so no longer a provider either).
    let mut other = registry::document();
    let types = other["types"].as_array_mut().unwrap();
    types.retain(|t| t["name"] != "runware");
    for t in types.iter_mut().filter(|t| t["name"] == "openai") {
        for f in t["fields"].as_array_mut().unwrap().iter_mut().filter(|f| f["name"] == "temperature") {
            f["max"] = json!(0.5);
        }
    }
    let loaded: bool = sqlx::query_scalar("SELECT keyfall.keyfall_load_registry($1, 'another keyfall')")
        .bind(&other)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(loaded);
    assert_eq!(
        stored(&db).await,
        vec![
            ("a0".to_string(), "image_generation".to_string(), "bad_fields".to_string()),
            ("a0".to_string(), "openai".to_string(), "bad_fields".to_string()),
            ("a0".to_string(), "runware".to_string(), "answered".to_string()),
        ],
        "the stored verdicts are judged again by the registry loaded"
    );

    // This keyfall takes the database as one to migrate, and reads nothing
    // from it until it is.
    assert_eq!(db.store.installed().await.unwrap(), keyfall::store::Installed::Outdated);
    let refused = db.store.verify(None).await.unwrap_err().to_string();
    assert!(refused.contains("keyfall migrate"), "{refused}");
    db.store.migrate().await.unwrap();
    assert!(matches!(db.store.installed().await.unwrap(), keyfall::store::Installed::Current { .. }));
    assert_eq!(stored(&db).await, ours, "migrate loads this keyfall's registry and its verdicts");
    db.store.verify(None).await.unwrap();

    // Attach loads it too, in the same transaction as the verdicts it stores.
    sqlx::query("SELECT keyfall.keyfall_load_registry($1, 'another keyfall')")
        .bind(&other)
        .execute(&mut conn)
        .await
        .unwrap();
    db.store.install_mapping(&keyfall::store::mapping::Mapping::demo()).await.unwrap();
    assert_eq!(stored(&db).await, ours, "attach loads this keyfall's registry before judging");
    let fingerprint: String =
        sqlx::query_scalar("SELECT fingerprint FROM keyfall.registry_state").fetch_one(&mut conn).await.unwrap();
    assert_eq!(fingerprint, registry::fingerprint());
}

/// The secret shapes of the document, as `keyfall.registry_secret_shapes`
/// holds them: (kind, shape, min_after, after), by kind and position.
fn shape_rows(doc: &Value) -> Vec<(String, String, Option<i32>, Option<String>)> {
    let shapes = &doc["secret_shapes"];
    let words = |list: &str, kind: &str| {
        shapes[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (kind.to_string(), w.as_str().unwrap().to_string(), None, None))
            .collect::<Vec<_>>()
    };
    let mut rows = words("name_endings", "name_ending");
    rows.extend(words("name_last_words", "name_last_word"));
    rows.extend(words("value_markers", "value_marker"));
    rows.extend(shapes["value_prefixes"].as_array().unwrap().iter().map(|p| {
        (
            "value_prefix".to_string(),
            p["prefix"].as_str().unwrap().to_string(),
            Some(p["min_after"].as_i64().unwrap() as i32),
            Some(p["after"].as_str().unwrap().to_string()),
        )
    }));
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

async fn sql_bool(conn: &mut sqlx::PgConnection, sql: &'static str, arg: &str) -> bool {
    sqlx::query_scalar(sql).bind(arg).fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn the_secret_shapes_are_loaded_as_data_and_the_sql_redacts_by_the_shapes_loaded() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let loaded: Vec<(String, String, Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT kind, shape, min_after, after FROM keyfall.registry_secret_shapes ORDER BY kind, position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(loaded, shape_rows(&registry::document()), "the registry's shapes, loaded");
    let shapes = registry::secret_shapes();
    assert!(shapes.name_endings.contains(&"pwd") && shapes.value_prefixes.iter().any(|p| p.prefix == "sk-"));

    // Written by another client before the shapes change: a key of a shape
    // nobody knows yet under an innocent name, in a setting and in a
    // consumer's provider; the audit log and the stored provider hold them.
    let key = "zz-0123456789abcdef";
    sqlx::query(
        "UPDATE integration_settings SET config = config || jsonb_build_object('note', $1::text, 'db_sigil', 'plain-sigil-value')
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .bind(key)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE integration_settings SET config = config || jsonb_build_object('provider', $1::text)
          WHERE integration_type = 'image_generation' AND account_id = (SELECT id FROM accounts WHERE slug = 'aws-admin')",
    )
    .bind(key)
    .execute(&mut conn)
    .await
    .unwrap();
    let audit_text = "SELECT coalesce(string_agg(coalesce(before::text, '') || coalesce(after::text, ''), ' '), '')
                        FROM audit_log WHERE action <> 'redact'";
    let audited: String = sqlx::query_scalar(audit_text).fetch_one(&mut conn).await.unwrap();
    assert!(audited.contains(key) && audited.contains("plain-sigil-value"), "not a secret by today's shapes");
    let providers = "SELECT coalesce(string_agg(provider::text, ' '), '') FROM keyfall.row_verdicts";
    let provider: String = sqlx::query_scalar(providers).fetch_one(&mut conn).await.unwrap();
    assert!(provider.contains(key), "{provider}");

    // Another keyfall's shapes: `pwd` no longer a name ending, `sigil` one,
    // and `zz-` and 8 characters a key.
    let mut other = registry::document();
    let theirs = other["secret_shapes"].as_object_mut().unwrap();
    let endings = theirs["name_endings"].as_array_mut().unwrap();
    endings.retain(|e| e != "pwd");
    endings.push(json!("sigil"));
    theirs["value_prefixes"].as_array_mut().unwrap().push(json!({"prefix": "zz-", "min_after": 8, "after": "any"}));
    let loaded: bool = sqlx::query_scalar("SELECT keyfall.keyfall_load_registry($1, 'another keyfall')")
        .bind(&other)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(loaded);
    let is_key = "SELECT keyfall.keyfall_is_secret_key($1)";
    let is_value = "SELECT keyfall.keyfall_is_secret_value($1)";
    assert!(sql_bool(&mut conn, is_key, "db_sigil").await && sql_bool(&mut conn, is_key, "dbSigil").await);
    assert!(!sql_bool(&mut conn, is_key, "db_pwd").await && !sql_bool(&mut conn, is_key, "dbPwd").await);
    assert!(sql_bool(&mut conn, is_key, "apiKey").await, "the other shapes stay");
    assert!(sql_bool(&mut conn, is_value, "zz-01234567").await && !sql_bool(&mut conn, is_value, "zz-0123456").await);
    assert!(sql_bool(&mut conn, is_value, "https://x.example/?t=zz-01234567").await, "inside an assignment too");
    // What was stored under the old shapes is redacted by the new: the
    // audit log (one row says so) and the stored provider.
    let audited: String = sqlx::query_scalar(audit_text).fetch_one(&mut conn).await.unwrap();
    assert!(!audited.contains(key) && !audited.contains("plain-sigil-value"), "{audited}");
    let redacted: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'redact'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(redacted, 1);
    let provider: String = sqlx::query_scalar(providers).fetch_one(&mut conn).await.unwrap();
    assert!(!provider.contains(key), "{provider}");
    // Written now, by any client: redacted by the shapes loaded.
    sqlx::query(
        "UPDATE integration_settings SET config = config || jsonb_build_object('note2', $1::text, 'x_sigil', 'other-plain')
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio')",
    )
    .bind("zz-fedcba9876543210")
    .execute(&mut conn)
    .await
    .unwrap();
    let audited: String = sqlx::query_scalar(audit_text).fetch_one(&mut conn).await.unwrap();
    assert!(!audited.contains("zz-fedcba9876543210") && !audited.contains("other-plain"), "{audited}");

    // The migrations applied again (an install that lost its record): the
    // baseline puts its own secret functions back, and 0004 writes them from
    // the table again, so the shapes loaded stand.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "{}\n;\n{}",
        include_str!("../../migrations/0001_baseline.sql"),
        include_str!("../../migrations/0003_secret_shapes.sql")
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let mut conn = db.raw().await;
    assert!(sql_bool(&mut conn, is_key, "db_sigil").await && !sql_bool(&mut conn, is_key, "db_pwd").await);
    assert!(sql_bool(&mut conn, is_value, "zz-01234567").await);

    // Migrate loads this keyfall's shapes again, and its functions.
    db.store.migrate().await.unwrap();
    let mut conn = db.raw().await;
    assert!(sql_bool(&mut conn, is_key, "db_pwd").await && !sql_bool(&mut conn, is_key, "db_sigil").await);
    assert!(!sql_bool(&mut conn, is_value, "zz-01234567").await);
    let loaded: Vec<(String, String, Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT kind, shape, min_after, after FROM keyfall.registry_secret_shapes ORDER BY kind, position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(loaded, shape_rows(&registry::document()));
    // No shape is written in the SQL that writes the secret functions: only
    // the functions written from the table hold them.
    let source: String = sqlx::query_scalar(
        "SELECT string_agg(pg_get_functiondef(p.oid), E'\\n')
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'keyfall'
            AND p.proname IN ('keyfall_secret_key_sql', 'keyfall_key_shaped_sql', 'keyfall_write_secret_shapes',
                              'keyfall_load_registry', 'keyfall_secret_shapes_loaded')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(source.contains("registry_secret_shapes"), "the writers are installed");
    let words = shapes.name_endings.iter().chain(shapes.name_last_words).chain(shapes.value_markers);
    for shape in words.copied().chain(shapes.value_prefixes.iter().map(|p| p.prefix)) {
        // As a literal, or in an alternation of a regular expression.
        for written in [format!("'{shape}'"), format!("|{shape}|"), format!("({shape}|"), format!("|{shape})")] {
            assert!(!source.contains(&written), "the SQL writing the secret functions names the shape {written:?}");
        }
    }
}

/// Configs that tell the test provider from openai: its own key prefix, a
/// temperature and a max_tokens inside openai's ranges but outside its own.
const ACME_CONFIGS: &[&str] = &[
    r#"{"apiKey": "acme-valid-key-00000000001", "model": "acme-large"}"#,
    r#"{"apiKey": "acme-valid-key-00000000002", "temperature": 1.5}"#,
    r#"{"apiKey": "acme-valid-key-00000000003", "temperature": 0.9, "max_tokens": 16}"#,
    r#"{"apiKey": "acme-valid-key-00000000004", "max_tokens": 8}"#,
    r#"{"provider": "acme_ai", "model": "acme-large"}"#,
    r#"{"provider": "Acme_AI"}"#,
];

#[test]
fn a_provider_added_to_the_registry_is_one_entry_and_every_engine_agrees() {
    if std::env::var_os(registry::TEST_PROVIDER_ENV).is_none_or(|v| v != "1") {
        // Run this test again, alone, in a process whose registry has the
        // test provider (read once, at the registry's first use).
        with_the_test_provider("registry_data::a_provider_added_to_the_registry_is_one_entry_and_every_engine_agrees");
        return;
    }
    crate::support::registry_from_env();
    let acme = registry::spec("acme_ai").expect("the test provider is in the registry");
    assert_eq!(acme.kind, Kind::Provider);
    assert!(registry::provider_names().any(|p| p == "acme_ai"));
    assert_eq!(registry::provider_for_model("acme-large"), Some("acme_ai"));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let db = TestDb::new().await;
        // The SQL has it, from the registry alone.
        let kind: String = sqlx::query_scalar("SELECT kind FROM keyfall.registry_types WHERE name = 'acme_ai'")
            .fetch_one(&mut db.raw().await)
            .await
            .unwrap();
        assert_eq!(kind, "provider");
        // Every case the registry implies, and the ones only its ranges
        // tell apart, judged alike by the SQL and by Rust.
        let mut cases = crate::registry_sql::cases();
        assert!(cases.iter().any(|(t, _, _)| t == "acme_ai"));
        for ty in ["acme_ai", "openai", "image_generation"] {
            for config in ACME_CONFIGS {
                cases.push((ty.to_string(), serde_json::from_str(config).unwrap(), true));
            }
        }
        let wrong = disagreements(&db, &cases).await;
        assert!(wrong.is_empty(), "the SQL and the registry disagree:\n{}", wrong.join("\n"));
        // Its own ranges: inside openai's, outside its own.
        let judge = |ty: &str, c: &str| registry::judge(ty, &serde_json::from_str(c).unwrap(), true).verdict.as_str();
        assert_eq!(judge("acme_ai", ACME_CONFIGS[1]), "bad_fields");
        assert_eq!(judge("openai", ACME_CONFIGS[1]), "answered");
        assert_eq!(judge("acme_ai", ACME_CONFIGS[3]), "bad_fields");
        assert_eq!(judge("image_generation", ACME_CONFIGS[4]), "answered");
    });
    drop(rt);
    // The report, the resolver and resolve --batch's engine, on random
    // worlds holding the test provider's rows and consumers naming it.
    crate::report_prop::report_equals_resolver_and_batch(ACME_CONFIGS, 32);
}

/// The Django app's `get_model_config` pair for pair (`django.rs`), with the
/// test provider in keyfall's registry and in the app's provider types
/// (`ai_settings.py`), its rows seeded and consumers naming it (`kf.py`):
/// the same test, run again in a child process with the provider added.
#[test]
fn with_a_provider_added_keyfall_answers_as_django_pair_for_pair() {
    with_the_test_provider("django::keyfall_answers_as_djangos_get_model_config_pair_for_pair");
}

/// Run the test `name` of this binary again, alone, in a process whose
/// registry (and whose keyfall binary's) holds the test provider; it must
/// run and pass there.
pub(crate) fn with_the_test_provider(name: &str) {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(registry::TEST_PROVIDER_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = crate::support::output_within(child, crate::support::HUNG);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} with the test provider:\n{text}");
    assert!(text.contains("1 passed"), "{name} ran with the test provider:\n{text}");
}
