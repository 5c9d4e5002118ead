//! Lint, export and import read what they are about (DESIGN §10): one
//! account's `lint` and `export` are exactly the whole-database output
//! filtered to that account, and the whole-database runs — which stream —
//! print exactly what lint's pure evaluator and the whole document print.

use serde_json::Value;

use crate::cli::keyfall;
use crate::support::TestDb;

/// The demo, plus accounts whose rows test the streaming by account: a
/// tenant with every kind of finding, one with only a privileged user, one
/// with no rows at all, and a few hundred plain tenants between them.
async fn demo_plus() -> TestDb {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    sqlx::raw_sql(
        r#"INSERT INTO accounts (slug, name, status) VALUES
             ('zz-odd', 'Odd', 'active'), ('zz-user-only', 'Users', 'suspended'), ('zz-empty', 'Empty', 'trial');
           INSERT INTO accounts (slug, name) SELECT 'bulk-' || i, 'Bulk ' || i FROM generate_series(1, 300) i;
           INSERT INTO integration_settings (account_id, integration_type, config, is_active)
             SELECT a.id, t.ty, t.config::jsonb, t.active
               FROM accounts a,
                    (VALUES ('openai', '{"apiKey": " sk-pasted-key-with-space\n", "model": "gpt-9", "temperature": 7}', true),
                            ('runware', '{"model": "runware:100@1"}', true),
                            ('image_generation', '{"apiKey": "sk-wrong-place-123456", "model": "gpt-image-1"}', true)) t(ty, config, active)
              WHERE a.slug = 'zz-odd';
           INSERT INTO integration_settings (account_id, integration_type, config)
             SELECT a.id, 'image_generation', '{"provider": "Runware", "model": "civitai:1@2"}'::jsonb
               FROM accounts a WHERE a.slug LIKE 'bulk-%' AND a.id % 3 = 0;
           INSERT INTO integration_settings (account_id, integration_type, config)
             SELECT a.id, 'openai', '{"apiKey": "sk-bulk-key-000000000000", "model": "gpt-4o"}'::jsonb
               FROM accounts a WHERE a.slug LIKE 'bulk-%' AND a.id % 2 = 0;
           INSERT INTO users (email, role, is_superuser, account_id)
             SELECT 'Boss@ZZ.example', 'developer', false, id FROM accounts WHERE slug = 'zz-user-only';
           INSERT INTO users (email, role, is_superuser, account_id)
             SELECT 'odd-dev@zz.example', 'owner', true, id FROM accounts WHERE slug = 'zz-odd';"#,
    )
    .execute(&mut conn)
    .await
    .unwrap();
    db
}

fn parse(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

async fn slugs(db: &TestDb) -> Vec<String> {
    let mut conn = db.raw().await;
    sqlx::query_scalar("SELECT slug FROM accounts ORDER BY slug").fetch_all(&mut conn).await.unwrap()
}

#[tokio::test]
async fn whole_database_lint_streams_exactly_what_the_evaluator_says() {
    let db = demo_plus().await;
    let data = db.store.lint_data().await.unwrap();
    let input = keyfall::domain::lint::LintInput {
        snapshot: &data.snapshot,
        accounts: &data.accounts,
        settings: &data.settings,
        privileged: &data.privileged,
        policy: data.policy,
    };
    let findings = keyfall::domain::lint::lint(&input);
    assert!(findings.len() > 100, "enough findings to cross accounts: {}", findings.len());
    let run = keyfall(&db, &["lint", "--json"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Each finding as `--json` carries it: its format version first.
    let versioned: Vec<_> = findings.iter().map(keyfall::cli::Versioned).collect();
    assert_eq!(run.stdout, format!("{}\n", serde_json::to_string_pretty(&versioned).unwrap()), "byte for byte");
    // The text form: one line a finding in the same order, then the count.
    let text = keyfall(&db, &["lint"], None);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), findings.len() + 1);
    for (line, f) in lines.iter().zip(&findings) {
        assert!(line.starts_with(f.id), "{line} for {f:?}");
    }
    let errors = findings.iter().filter(|f| f.severity == keyfall::domain::lint::Severity::Error).count();
    assert_eq!(lines.last().copied(), Some(format!("{} findings, {errors} errors", findings.len()).as_str()));
    assert!(!run.stdout.contains("sk-pasted") && !run.stdout.contains("sk-wrong-place"), "no key in lint");
}

#[tokio::test]
async fn lint_of_one_account_is_the_whole_lint_filtered_to_it() {
    let db = demo_plus().await;
    let whole = parse(&keyfall(&db, &["lint", "--json"], None).stdout);
    let whole = whole.as_array().unwrap();
    let mut seen = 0;
    // Every named account, and the first bulk one with a finding.
    let bulk = whole.iter().find_map(|f| f["account"].as_str().filter(|a| a.starts_with("bulk-")));
    assert!(bulk.is_some(), "a bulk account has findings");
    for slug in slugs(&db).await.iter().filter(|s| !s.starts_with("bulk-") || Some(s.as_str()) == bulk) {
        let want: Vec<&Value> = whole.iter().filter(|f| f["account"] == slug.as_str()).collect();
        let run = keyfall(&db, &["lint", "--account", slug, "--json"], None);
        let got = parse(&run.stdout);
        assert_eq!(got.as_array().unwrap().iter().collect::<Vec<_>>(), want, "lint --account {slug}");
        let errors = want.iter().any(|f| f["severity"] == "error");
        assert_eq!(run.code, if errors { 1 } else { 0 }, "{slug}: {}", run.stderr);
        seen += want.len();
        // The text form agrees.
        let text = keyfall(&db, &["lint", "--account", slug], None);
        assert_eq!(text.stdout.lines().count(), want.len() + 1, "{slug}: {}", text.stdout);
    }
    assert!(seen > 5, "the accounts looked at have findings: {seen}");
    for slug in ["zz-odd", "zz-user-only", "aws-admin"] {
        assert!(whole.iter().any(|f| f["account"] == slug), "{slug} has findings to compare");
    }
    // No such account: a usage error, not an empty success.
    let run = keyfall(&db, &["lint", "--account", "no-such-account"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no-such-account"), "{}", run.stderr);
}

#[tokio::test]
async fn lint_of_a_chain_entry_naming_no_account_reports_its_l005() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    sqlx::raw_sql("UPDATE keyfall.fallback_chain SET account_slug = 'gone-account' WHERE position = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    let run = keyfall(&db, &["lint", "--account", "gone-account", "--json"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let got = parse(&run.stdout);
    let whole = parse(&keyfall(&db, &["lint", "--json"], None).stdout);
    let want: Vec<&Value> = whole.as_array().unwrap().iter().filter(|f| f["account"] == "gone-account").collect();
    assert_eq!(got.as_array().unwrap().iter().collect::<Vec<_>>(), want);
    assert_eq!(want.len(), 1);
    assert_eq!(want[0]["id"], "L005");
}

#[tokio::test]
async fn export_of_one_account_is_the_whole_export_filtered_to_it() {
    let db = demo_plus().await;
    let whole = keyfall(&db, &["export"], None);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let doc = parse(&whole.stdout);
    let entries = doc["settings"].as_array().unwrap();
    assert!(entries.len() > 100, "{}", entries.len());
    for slug in slugs(&db).await.iter().filter(|s| !s.starts_with("bulk-") || s.as_str() == "bulk-4") {
        let run = keyfall(&db, &["export", "--account", slug], None);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let want: Vec<&Value> = entries.iter().filter(|e| e["account"] == slug.as_str()).collect();
        let got = parse(&run.stdout);
        assert_eq!(got["keyfall_export"], 1);
        assert_eq!(got["settings"].as_array().unwrap().iter().collect::<Vec<_>>(), want, "export --account {slug}");
        if want.is_empty() {
            assert_eq!(run.stdout, "{\n  \"keyfall_export\": 1,\n  \"settings\": []\n}\n", "{slug}");
        } else {
            // The whole export's text holds this account's entries verbatim.
            let body = run.stdout.split_once("\"settings\": [\n").unwrap().1.rsplit_once("\n  ]\n}\n").unwrap().0;
            assert!(whole.stdout.contains(body), "{slug}: the same bytes as in the whole export");
        }
    }
    let none = keyfall(&db, &["export", "--account", "no-such-account"], None);
    assert_eq!(none.code, 2, "an unknown account is bad input: {}", none.stderr);
    assert_eq!(none.stdout, "", "nothing is written");
    assert!(none.stderr.contains("unknown account \"no-such-account\""), "{}", none.stderr);
    assert!(!whole.stdout.contains("sk-pasted") && !whole.stdout.contains("sk-bulk-key"), "no key in an export");
}

#[tokio::test]
async fn import_reads_only_the_accounts_it_names_and_judges_them_as_before() {
    let db = demo_plus().await;
    let export = keyfall(&db, &["export", "--account", "zz-odd"], None);
    let mut doc = parse(&export.stdout);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.json");
    let path = file.to_str().unwrap();
    // Unchanged: nothing to import.
    std::fs::write(&file, &export.stdout).unwrap();
    let same = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--dry-run"], None);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(same.stdout.contains("nothing to import"), "{}", same.stdout);
    // One change on one account, and a new setting on another.
    doc["settings"][2]["config"]["model"] = Value::String("runware:101@1".into());
    doc["settings"].as_array_mut().unwrap().push(serde_json::json!({
        "account": "zz-empty", "integration_type": "runware", "is_active": true,
        "config": {"apiKey": "rw-new-key-0123456789", "model": "runware:100@1"}
    }));
    std::fs::write(&file, doc.to_string()).unwrap();
    let dry = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--dry-run"], None);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("zz-odd runware\n"), "{}", dry.stdout);
    assert!(dry.stdout.contains("zz-empty runware (new)"), "{}", dry.stdout);
    assert!(dry.stdout.contains("not applied"), "{}", dry.stdout);
    assert!(!dry.stdout.contains("rw-new-key") && !dry.stdout.contains("sk-pasted"), "{}", dry.stdout);
    let applied = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--yes"], None);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(applied.stdout.contains("imported 2 settings"), "{}", applied.stdout);
    // An account the file names that does not exist: refused, with the others.
    doc["settings"][0]["account"] = Value::String("no-such-account".into());
    std::fs::write(&file, doc.to_string()).unwrap();
    let bad = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--yes"], None);
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(bad.stderr.contains("no-such-account") && bad.stderr.contains("unknown account"), "{}", bad.stderr);
}

#[tokio::test]
async fn a_consumers_provider_is_resolved_from_the_account_first_then_the_chain() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    // The chain answers no openai; one tenant has its own, one has none.
    sqlx::raw_sql(
        r#"UPDATE integration_settings SET is_active = false
            WHERE integration_type = 'openai'
              AND account_id IN (SELECT a.id FROM accounts a JOIN keyfall.fallback_chain c ON c.account_slug = a.slug);
           INSERT INTO accounts (slug, name) VALUES ('hop-own', 'Own'), ('hop-none', 'None');
           INSERT INTO integration_settings (account_id, integration_type, config)
             SELECT a.id, 'image_generation', '{"provider": "openai", "model": "dall-e-3"}'::jsonb
               FROM accounts a WHERE a.slug IN ('hop-own', 'hop-none');
           INSERT INTO integration_settings (account_id, integration_type, config)
             SELECT a.id, 'openai', '{"apiKey": "sk-hop-own-0123456789abcdef", "model": "gpt-4o"}'::jsonb
               FROM accounts a WHERE a.slug = 'hop-own';"#,
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let whole = parse(&keyfall(&db, &["lint", "--json"], None).stdout);
    let l002 = |slug: &str| -> Vec<String> {
        whole
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == "L002" && f["account"] == slug)
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(l002("hop-none"), ["hop-none image_generation: provider openai resolves to nothing for hop-none"]);
    assert!(l002("hop-own").is_empty(), "its own openai answers: {:?}", l002("hop-own"));
    for slug in ["hop-none", "hop-own"] {
        let one = parse(&keyfall(&db, &["lint", "--account", slug, "--json"], None).stdout);
        let want: Vec<&Value> = whole.as_array().unwrap().iter().filter(|f| f["account"] == slug).collect();
        assert_eq!(one.as_array().unwrap().iter().collect::<Vec<_>>(), want, "{slug}");
    }
}
