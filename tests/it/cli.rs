//! The binary as a script would run it: output, JSON shapes, exit codes, and
//! a canary key that must never come back out.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::TestDb;

const CANARY: &str = "sk-canary-7f3a9c1e5b2d4f60-never-print-me";

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn keyfall(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Run {
    let url = db.url();
    let args: Vec<&str> = ["--database-url", url.as_str()].into_iter().chain(args.iter().copied()).collect();
    keyfall_with(&args, stdin, &[])
}

/// The binary with exactly these arguments and these extra environment
/// variables (nothing else of the test's environment that keyfall reads).
pub fn keyfall_with(args: &[&str], stdin: Option<&str>, envs: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyfall"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("KEYFALL_STATEMENT_TIMEOUT")
        .env_remove("PGOPTIONS")
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run keyfall");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    let Output { status, stdout, stderr } = crate::support::output_within(child, crate::support::HUNG);
    let log = std::fs::read_to_string(dir.path().join("state/keyfall/keyfall.log")).unwrap_or_default();
    assert!(!log.contains("canary"), "the log holds the canary: {log}");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

#[tokio::test]
async fn acceptance_resolve_tells_why() {
    let db = TestDb::demo().await;
    let ok = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster"], None);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("1 paid-2") && ok.stdout.contains("no_row"), "{}", ok.stdout);
    assert!(ok.stdout.contains("2 aws-admin") && ok.stdout.contains("ANSWER"), "{}", ok.stdout);

    let images = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "generate_images"], None);
    assert_eq!(images.code, 1);
    assert!(images.stdout.contains("unresolved"), "{}", images.stdout);
    assert!(images.stdout.contains("no_provider"), "{}", images.stdout);

    let j = json(&keyfall(&db, &["resolve", "--user", "Paid2@Paid.com", "--function", "auto_cluster", "--json"], None));
    assert_eq!(j["user"], "paid2@paid.com");
    assert_eq!(j["integration_type"], "openai");
    assert_eq!(j["answered_by"], "aws-admin");
    assert_eq!(j["steps"][0]["verdict"], "no_row");
    assert_eq!(j["steps"][1]["verdict"], "answered");
    assert!(j["hop"].is_null());
    assert!(j["config"]["apiKey"].as_str().unwrap().starts_with("••••••••"));
    assert!(j["warnings"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn acceptance_can_names_the_failing_check() {
    let db = TestDb::demo().await;
    let paid = keyfall(&db, &["can", "--user", "paid2@paid.com", "--json"], None);
    assert_eq!(paid.code, 1, "modify_settings denied");
    let j = json(&paid);
    assert_eq!(j["policy"], "system_only");
    let modify = &j["actions"]["modify_settings"];
    assert_eq!(modify["allowed"], false);
    let failing: Vec<&str> = modify["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failing, vec!["IsSystemAccountOrDeveloper"]);
    assert_eq!(j["actions"]["task_progress"]["allowed"], true);

    let dev = keyfall(&db, &["can", "--user", "dev@igny8.com"], None);
    assert_eq!(dev.code, 0);
    assert!(dev.stdout.contains("modify_settings  ALLOWED"), "{}", dev.stdout);

    // Under policy B the owner may change their own account, not the system's.
    let own =
        keyfall(&db, &["can", "--user", "paid2@paid.com", "--account", "paid-2", "--policy", "per_account"], None);
    assert_eq!(own.code, 0, "{}", own.stdout);
    // The seed's developer without an account fails HasTenantAccess.
    let ops = keyfall(&db, &["can", "--user", "ops@igny8.com"], None);
    assert_eq!(ops.code, 1);
    assert!(ops.stdout.contains("✗ HasTenantAccess"), "{}", ops.stdout);
}

#[tokio::test]
async fn set_and_get_round_trip_without_leaking_the_key() {
    let db = TestDb::demo().await;
    let set =
        keyfall(&db, &["--as", "dev@igny8.com", "set", "paid-2", "openai", "apiKey"], Some(&format!("{CANARY}\n")));
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(set.stderr.contains("trimmed a line break"), "{}", set.stderr);
    let fp = keyfall::domain::secret::fingerprint(CANARY);
    assert!(set.stdout.contains(&fp), "{}", set.stdout);

    let get = keyfall(&db, &["get", "paid-2", "openai", "--json"], None);
    let j = json(&get);
    assert_eq!(j["own"], true);
    assert_eq!(j["version"], 1);
    assert_eq!(j["updated_by"], "dev@igny8.com");
    assert!(j["config"]["apiKey"].as_str().unwrap().ends_with(&fp));

    let resolve = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster", "--json"], None);
    assert_eq!(json(&resolve)["answered_by"], "paid-2");

    let model = keyfall(&db, &["--as", "dev@igny8.com", "set", "paid-2", "openai", "model"], Some("gpt-4o\n"));
    assert_eq!(model.code, 0, "{}", model.stderr);
    let text = keyfall(&db, &["get", "paid-2", "openai"], None);
    assert!(text.stdout.contains("model   gpt-4o") || text.stdout.contains("gpt-4o"), "{}", text.stdout);
    assert!(text.stdout.contains("v2"), "the key was kept while the model changed: {}", text.stdout);

    for run in [&set, &get, &resolve, &model, &text] {
        assert!(
            !run.stdout.contains("canary") && !run.stderr.contains("canary"),
            "leak: {} {}",
            run.stdout,
            run.stderr
        );
    }
    let mut conn = db.raw().await;
    let audit: String =
        sqlx::query_scalar("SELECT string_agg(coalesce(before::text, '') || after::text, ' ') FROM audit_log")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!audit.contains("canary") && audit.contains(&fp));
}

#[tokio::test]
async fn set_enforces_the_operators_permissions() {
    let db = TestDb::demo().await;
    let denied = keyfall(&db, &["--as", "paid2@paid.com", "set", "paid-2", "openai", "apiKey"], Some(CANARY));
    assert_eq!(denied.code, 4, "a denial is 4 on every path");
    assert!(denied.stderr.contains("IsSystemAccountOrDeveloper"), "{}", denied.stderr);
    assert!(!denied.stderr.contains("canary"));
    let nobody = keyfall(&db, &["set", "paid-2", "openai", "apiKey"], Some(CANARY));
    assert_eq!(nobody.code, 2);
    assert!(nobody.stderr.contains("--as"), "{}", nobody.stderr);
    let stale = keyfall(
        &db,
        &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "model", "--expect-version", "7"],
        Some("gpt-4o"),
    );
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("conflict"), "{}", stale.stderr);
    let range = keyfall(&db, &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "temperature"], Some("9"));
    assert_eq!(range.code, 2);
    assert!(range.stderr.contains("outside"), "{}", range.stderr);
}

#[tokio::test]
async fn usage_errors_are_one_line_and_exit_2() {
    let db = TestDb::demo().await;
    for (args, needle) in [
        (vec!["resolve", "--user", "ghost@x.com", "--function", "auto_cluster"], "unknown user"),
        (vec!["resolve", "--user", "paid2@paid.com", "--function", "nope"], "unknown function"),
        (vec!["get", "nope", "openai"], "unknown account"),
        (vec!["export", "--account", "nope"], "unknown account"),
        (vec!["audit", "--account", "nope"], "unknown account"),
        (vec!["lint", "--account", "nope"], "unknown account"),
        (vec!["get", "paid-2", "nope"], "unknown integration type"),
        (vec!["can", "--user", "\u{1b}[31mred@x.com"], "unknown user"),
    ] {
        let run = keyfall(&db, &args, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains('\u{1b}'), "escape reached the terminal");
    }
}

#[test]
fn an_unreachable_database_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keyfall"))
        .args(["--database-url", "postgres://nobody:hunter2secret@127.0.0.1:1/db", "report"])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn report_lists_every_account_and_type() {
    let db = TestDb::demo().await;
    let j = json(&keyfall(&db, &["report", "--json"], None));
    let rows = j.as_array().unwrap();
    assert_eq!(rows.len(), 8 * 3);
    let find = |account: &str, ty: &str| {
        rows.iter().find(|r| r["account"] == account && r["integration_type"] == ty).unwrap().clone()
    };
    assert_eq!(find("paid-2", "openai")["answered_by"], "aws-admin");
    assert_eq!(find("acme-studio", "openai")["answered_by"], "acme-studio");
    assert!(find("paid-2", "image_generation")["answered_by"].is_null());
    assert_eq!(rows[0]["account"], "aws-admin", "system accounts first");
    let text = keyfall(&db, &["report"], None);
    assert!(text.stdout.lines().next().unwrap().starts_with("ACCOUNT"), "{}", text.stdout);
}

#[tokio::test]
async fn audit_lists_changes_and_finds_a_key_by_fingerprint() {
    let db = TestDb::demo().await;
    let set = keyfall(&db, &["--as", "dev@igny8.com", "set", "paid-2", "openai", "apiKey"], Some(CANARY));
    assert_eq!(set.code, 0, "{}", set.stderr);
    let j = json(&keyfall(&db, &["audit", "--account", "paid-2", "--json"], None));
    let entry = &j[0];
    assert_eq!(entry["actor"], "dev@igny8.com");
    assert_eq!(entry["action"], "insert");
    assert_eq!(entry["integration_type"], "openai");
    let change = entry["changes"].as_array().unwrap().iter().find(|c| c["field"] == "config.apiKey").unwrap();
    assert_eq!(change["after"], keyfall::domain::secret::fingerprint(CANARY));

    let found = keyfall(&db, &["audit", "--find-key"], Some(&format!("{CANARY}\n")));
    assert_eq!(found.code, 0);
    assert!(found.stdout.contains("entries holding") && found.stdout.contains("paid-2 openai"), "{}", found.stdout);
    let none = keyfall(&db, &["audit", "--find-key"], Some("sk-never-stored-anywhere-0000"));
    assert_eq!(none.code, 1);
    for run in [&set, &found, &none] {
        assert!(!run.stdout.contains("canary") && !run.stderr.contains("canary"));
    }
}

/// `audit --actor`: what one operator did, in any case, their reverts and
/// overwrites included; a claim nobody verified stays the login's.
#[tokio::test]
async fn audit_lists_what_one_actor_did() {
    let db = TestDb::demo().await;
    let set = keyfall(&db, &["--as", "dev@igny8.com", "set", "paid-2", "openai", "model"], Some("gpt-4o"));
    assert_eq!(set.code, 0, "{}", set.stderr);
    // A revert as the console records it, written by a superuser acting
    // for dev@ (keyfall_actor accepts the claim); and a plain psql write.
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        "BEGIN;
         SELECT set_config('keyfall.actor', 'dev@igny8.com (revert of #1)', true);
         UPDATE integration_settings SET config = config || '{\"model\": \"gpt-4o-mini\"}'
          WHERE account_id = (SELECT id FROM accounts WHERE slug = 'paid-2') AND integration_type = 'openai';
         COMMIT;
         UPDATE integration_settings SET is_active = false
          WHERE account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio') AND integration_type = 'openai';",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    let actors = |who: &str| -> Vec<String> {
        let j = json(&keyfall(&db, &["audit", "--actor", who, "--json"], None));
        j.as_array().unwrap().iter().map(|e| e["actor"].as_str().unwrap().to_string()).collect()
    };
    let dev = actors("DEV@igny8.com");
    assert_eq!(dev, ["dev@igny8.com (revert of #1)", "dev@igny8.com"], "newest first, any case");
    let login: String = sqlx::query_scalar("SELECT session_user::text").fetch_one(&mut psql).await.unwrap();
    let theirs = actors(&login);
    assert!(!theirs.is_empty() && theirs.iter().all(|a| a == &login), "{theirs:?}");
    assert!(actors("dev@igny8").is_empty(), "a prefix of an email is not the email");
    assert!(actors("nobody@nowhere.test").is_empty());
}

#[tokio::test]
async fn chain_and_policy_are_previewed_and_guarded() {
    let db = TestDb::demo().await;
    let denied = keyfall(&db, &["--as", "paid2@paid.com", "chain", "set", "default", "--yes"], None);
    assert_eq!(denied.code, 4, "{}", denied.stderr);
    let dry = keyfall(&db, &["--as", "dev@igny8.com", "chain", "set", "default-account", "default", "--dry-run"], None);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("auto_cluster") && dry.stdout.contains("aws-admin → nothing"), "{}", dry.stdout);
    assert!(dry.stdout.contains("not applied"));
    let no_tty = keyfall(&db, &["--as", "dev@igny8.com", "chain", "set", "default", "aws-admin"], None);
    assert_eq!(no_tty.code, 2, "without a terminal, only --yes applies: {}", no_tty.stderr);
    let applied = keyfall(&db, &["--as", "dev@igny8.com", "chain", "set", "default", "aws-admin", "--yes"], None);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(keyfall(&db, &["chain", "show"], None).stdout, "1 default\n2 aws-admin\n");

    let policy = keyfall(&db, &["--as", "dev@igny8.com", "policy", "set", "per_account", "--yes"], None);
    assert_eq!(policy.code, 0, "{}", policy.stderr);
    assert!(policy.stdout.contains("users gain modify_settings on their own account"), "{}", policy.stdout);
    // Who gains is named, not only counted (issue 22, small items).
    assert!(
        policy.stdout.contains(
            "3 users gain modify_settings on their own account: owner@acme.example, paid2@paid.com, pm@initech.example"
        ),
        "{}",
        policy.stdout
    );
    let own = keyfall(&db, &["can", "--user", "paid2@paid.com", "--account", "paid-2"], None);
    assert_eq!(own.code, 0, "policy B lets an owner change their own account: {}", own.stdout);
    let audit = json(&keyfall(&db, &["audit", "--json"], None));
    assert!(audit.as_array().unwrap().iter().any(|e| e["table"] == "policy" && e["actor"] == "dev@igny8.com"));
    assert!(audit.as_array().unwrap().iter().any(|e| e["table"] == "fallback_chain" && e["actor"] == "dev@igny8.com"));
}

#[tokio::test]
async fn lint_finds_the_seeds_wrong_config_and_fixes_it_in_one_transaction() {
    let db = TestDb::demo().await;
    let lint = keyfall(&db, &["lint", "--json"], None);
    assert_eq!(lint.code, 1, "an error-level finding exits 1");
    let findings = json(&lint);
    let l001 = findings.as_array().unwrap().iter().find(|f| f["id"] == "L001").expect("L001");
    assert_eq!(l001["account"], "aws-admin");
    assert_eq!(l001["integration_type"], "image_generation");
    assert_eq!(l001["severity"], "error");
    assert_eq!(l001["fix"]["config"]["provider"], "openai", "inferred from dall-e-3");
    assert!(l001["fix"]["config"].get("apiKey").is_none());
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "L007" && f["message"].as_str().unwrap().contains("ops@igny8.com"))
    );
    // The user a finding is about is a field of its own, for scripts and
    // for the console's enter (never parsed out of the message).
    let users: Vec<&Value> = findings.as_array().unwrap().iter().filter_map(|f| f.get("user")).collect();
    assert_eq!(users, [&Value::from("ops@igny8.com")], "only L007 names a user");

    let denied = keyfall(&db, &["--as", "paid2@paid.com", "lint", "--fix", "--yes"], None);
    assert_eq!(denied.code, 4, "{}", denied.stderr);
    let fixed = keyfall(&db, &["--as", "dev@igny8.com", "lint", "--fix", "--yes"], None);
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    assert!(
        fixed.stdout.contains("config.provider: — → openai") && fixed.stdout.contains("generate_images"),
        "{}",
        fixed.stdout
    );

    let r =
        json(&keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "generate_images", "--json"], None));
    assert_eq!(r["answered_by"], "aws-admin");
    assert_eq!(r["hop"]["integration_type"], "openai");
    assert_eq!(r["hop"]["answered_by"], "aws-admin");
    assert_eq!(keyfall(&db, &["lint"], None).code, 0, "no error left");
    let audit = json(&keyfall(&db, &["audit", "--account", "aws-admin", "--type", "image_generation", "--json"], None));
    assert_eq!(audit[0]["actor"], "dev@igny8.com");
}

/// The README's Scripting section, run as written: every `$ keyfall …` line
/// with its `# exit N`, the TOML files it names written from the README too.
#[tokio::test]
async fn readme_scripting_examples_run() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("### Scripting").expect("a Scripting section")..];
    let section = &section[..section.find("| more commands").unwrap_or(section.len())];
    let dir = tempfile::tempdir().unwrap();
    // TOML and CSV blocks follow the line naming their file (`name.toml` — …).
    for (fence, ext) in [("```toml\n", ".toml"), ("```csv\n", ".csv")] {
        let mut rest = section;
        while let Some(at) = rest.find(fence) {
            let before = &rest[..at];
            let name = before.split('`').rfind(|part| part.ends_with(ext)).expect("a file name before the block");
            let body = &rest[at + fence.len()..];
            let end = body.find("```").unwrap();
            std::fs::write(dir.path().join(name), &body[..end]).unwrap();
            rest = &body[end..];
        }
    }
    // The exit codes table: every code but 70 (an internal error) and 74 (a
    // full disk: a_full_disk_fails_every_command_the_same_way) has an example.
    let codes: Vec<i32> =
        section.lines().filter_map(|l| l.strip_prefix("| **")?.split("**").next()?.parse().ok()).collect();
    assert_eq!(codes, [0, 1, 2, 3, 4, 70, 74], "the exit codes table");
    let mut shown = std::collections::BTreeSet::new();
    let db = TestDb::demo().await;
    let mut ran = 0;
    for line in section.lines().filter(|l| l.starts_with("$ keyfall ")) {
        let (command, comment) = line.split_once('#').expect("an # exit N comment");
        let expected: i32 =
            comment.trim().trim_start_matches("exit ").split(':').next().unwrap().trim().parse().unwrap();
        // `< file` feeds a file written from the section to stdin.
        let (command, stdin) = match command.split_once('<') {
            Some((c, file)) => (c, Some(std::fs::read_to_string(dir.path().join(file.trim())).unwrap())),
            None => (command, None),
        };
        let args: Vec<String> = command
            .trim()
            .trim_start_matches("$ keyfall ")
            .split_whitespace()
            .map(|a| if a.ends_with(".toml") { dir.path().join(a).display().to_string() } else { a.to_string() })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // A line naming its own database runs against that one.
        let run = if args.contains(&"--database-url") {
            keyfall_with(&args, stdin.as_deref(), &[])
        } else {
            keyfall(&db, &args, stdin.as_deref())
        };
        assert_eq!(run.code, expected, "{line}\n{}{}", run.stdout, run.stderr);
        if expected >= 2 {
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "{line}: one line saying why\n{}", run.stderr);
        }
        shown.insert(expected);
        ran += 1;
    }
    assert!(ran >= 5, "the section has its examples");
    assert_eq!(shown.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4], "an example of every exit code");
}

mod connection {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::{CANARY, keyfall};
    use crate::support::TestDb;

    async fn point_at(db: &TestDb, slug: &str, ty: &str, base: &str) {
        let base = base.to_string();
        db.store
            .write_setting("dev@igny8.com", slug, ty, None, move |_| {
                (json!({"apiKey": CANARY, "base_url": base}), true)
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn openai_success_401_timeout_and_non_json() {
        let db = TestDb::demo().await;
        let server = MockServer::start().await;
        point_at(&db, "paid-2", "openai", &server.uri()).await;
        let test = |extra: &[&str]| {
            // The mock listens on plain http on loopback: allowed on purpose.
            let mut args =
                vec!["--as", "dev@igny8.com", "test-connection", "paid-2", "openai", "--allow-insecure-endpoint"];
            args.extend_from_slice(extra);
            keyfall(&db, &args, None)
        };

        let ok = Mock::given(method("GET"))
            .and(path("/models"))
            .and(header("authorization", format!("Bearer {CANARY}").as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "gpt-4o"}, {"id": "gpt-4o-mini"}]})),
            )
            .expect(1)
            .mount_as_scoped(&server)
            .await;
        let run = test(&[]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("key accepted: 2 models listed"), "{}", run.stdout);
        drop(ok);

        // Providers quote the key in their errors: it must not come back out.
        let rejected = Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"error": {"message": format!("Incorrect API key provided: {CANARY}")}})),
            )
            .mount_as_scoped(&server)
            .await;
        let run = test(&["--json"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("rejected the key (401)"), "{}", run.stdout);
        assert!(!run.stdout.contains("canary") && !run.stderr.contains("canary"));
        drop(rejected);

        let slow = Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200).set_delay(Duration::from_secs(3)).set_body_json(json!({"data": []})),
            )
            .mount_as_scoped(&server)
            .await;
        let run = test(&["--timeout", "0.5"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("timed out"), "{}", run.stdout);
        drop(slow);

        let garbage = Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>hello</html>"))
            .mount_as_scoped(&server)
            .await;
        let run = test(&[]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("not JSON"), "{}", run.stdout);
        drop(garbage);
    }

    #[tokio::test]
    async fn runware_and_the_key_that_really_answers() {
        let db = TestDb::demo().await;
        let server = MockServer::start().await;
        point_at(&db, "paid-2", "runware", &server.uri()).await;
        point_at(&db, "paid-2", "openai", &server.uri()).await;
        Mock::given(method("POST"))
            .and(body_partial_json(json!([{"taskType": "authentication", "apiKey": CANARY}])))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"taskType": "authentication"}]})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/models"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "m"}]})))
            .mount(&server)
            .await;
        let allow = "--allow-insecure-endpoint";
        let run = keyfall(&db, &["--as", "dev@igny8.com", "test-connection", "paid-2", "runware", allow], None);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("authentication task"), "{}", run.stdout);
        // The key paid2 would really use for auto_cluster is paid-2's own.
        let run = keyfall(
            &db,
            &[
                "--as",
                "dev@igny8.com",
                "test-connection",
                "--user",
                "paid2@paid.com",
                "--function",
                "auto_cluster",
                allow,
            ],
            None,
        );
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("paid-2 openai"), "{}", run.stdout);
        let denied = keyfall(&db, &["--as", "paid2@paid.com", "test-connection", "paid-2", "runware"], None);
        assert_eq!(denied.code, 4, "test_connection is guarded like the seed's endpoint");
        assert!(denied.stderr.contains("IsSystemAccountOrDeveloper"), "{}", denied.stderr);
    }

    /// Issue 9 §7: a provider (or whatever answers at base_url) that
    /// redirects must not get the key carried to another host: the redirect
    /// is not followed and is reported, naming where it pointed.
    #[tokio::test]
    async fn a_redirect_is_not_followed_with_the_key() {
        let db = TestDb::demo().await;
        let provider = MockServer::start().await;
        let elsewhere = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "m"}]})))
            .mount(&elsewhere)
            .await;
        point_at(&db, "paid-2", "openai", &provider.uri()).await;
        point_at(&db, "paid-2", "runware", &provider.uri()).await;
        let to_models = format!("{}/v1/models", elsewhere.uri());
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(302).insert_header("location", to_models.as_str()))
            .mount(&provider)
            .await;
        // A 307 would re-send Runware's body — the key in it — as it was.
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(307)
                    .insert_header("location", format!("{}/v1?echo={CANARY}&x=\u{202e}evil", elsewhere.uri()).as_str()),
            )
            .mount(&provider)
            .await;
        let nothing_elsewhere = || async {
            let got = elsewhere.received_requests().await.expect("recording");
            let carried: Vec<String> = got
                .iter()
                .map(|r| {
                    let with_key = String::from_utf8_lossy(&r.body).contains(CANARY)
                        || r.headers.values().any(|v| v.to_str().unwrap_or_default().contains(CANARY));
                    format!("{} {} (with the key: {with_key})", r.method, r.url)
                })
                .collect();
            assert!(carried.is_empty(), "the request was carried to another host: {carried:?}");
        };

        let allow = "--allow-insecure-endpoint";
        let run =
            keyfall(&db, &["--as", "dev@igny8.com", "test-connection", "paid-2", "runware", "--json", allow], None);
        nothing_elsewhere().await;
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        let out = super::json(&run).to_string();
        assert!(out.contains("redirected (307) to") && out.contains("not followed"), "{out}");
        assert!(out.contains("echo=<key>"), "a key quoted in the location is blanked: {out}");
        assert!(!out.contains("canary") && !run.stderr.contains("canary"), "{out}");
        assert!(!out.contains('\u{202e}') && out.contains("\\\\u{202e}"), "escapes made visible: {out}");

        let run = keyfall(&db, &["--as", "dev@igny8.com", "test-connection", "paid-2", "openai", allow], None);
        nothing_elsewhere().await;
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(&format!("redirected (302) to {to_models}; not followed")),
            "names where it pointed: {}",
            run.stdout
        );
    }
}

#[test]
fn completions_and_man_page_need_no_database() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_keyfall"))
            .args(["--database-url", "postgres://nobody@127.0.0.1:1/none", "completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("keyfall"));
        // Enumerated values are offered, not file names.
        for value in ["modify_settings", "task_progress", "hybrid_readonly"] {
            assert!(script.contains(value), "{shell} completion offers {value}");
        }
        // clap_complete's fish script completes options' values only.
        if shell != "fish" {
            assert!(script.contains("image_generation"), "{shell} completion offers the types to `set`");
        }
    }
    let man = Command::new(env!("CARGO_BIN_EXE_keyfall")).arg("man").output().unwrap();
    assert!(man.status.success());
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH keyfall"));
    // A page per command, each with the sections clap does not write.
    for (args, title) in [(vec!["man"], ".TH keyfall "), (vec!["man", "resolve"], ".TH keyfall-resolve ")] {
        let out = Command::new(env!("CARGO_BIN_EXE_keyfall")).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(page.contains(title), "{args:?}");
        for section in
            [".SH ENVIRONMENT", ".SH FILES", ".SH EXIT STATUS", "PGCONNECT_TIMEOUT", "KEYFALL_STATEMENT_TIMEOUT"]
        {
            assert!(page.contains(section), "{args:?} has {section}");
        }
    }
    let none = Command::new(env!("CARGO_BIN_EXE_keyfall")).args(["man", "nope"]).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
}

#[tokio::test]
async fn export_hides_keys_and_import_round_trips_idempotently() {
    let db = TestDb::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let export = keyfall(&db, &["export"], None);
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert!(!export.stdout.contains("sk-demo") && !export.stdout.contains("rw-demo"), "no key in an export");
    let file = dir.path().join("export.json");
    std::fs::write(&file, &export.stdout).unwrap();
    let path = file.to_str().unwrap();

    let same = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--yes"], None);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(same.stdout.contains("nothing to import"), "fingerprints keep the stored keys: {}", same.stdout);

    let mut doc: Value = serde_json::from_str(&export.stdout).unwrap();
    let settings = doc["settings"].as_array_mut().unwrap();
    let openai =
        settings.iter_mut().find(|s| s["account"] == "aws-admin" && s["integration_type"] == "openai").unwrap();
    openai["config"]["model"] = serde_json::json!("gpt-4.1");
    settings.push(serde_json::json!({"account": "paid-2", "integration_type": "openai", "is_active": true,
                         "config": {"apiKey": CANARY, "model": "gpt-4o"}}));
    std::fs::write(&file, doc.to_string()).unwrap();
    let dry = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--dry-run"], None);
    assert!(
        dry.stdout.contains("config.model: gpt-4o-mini → gpt-4.1") && dry.stdout.contains("not applied"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("aws-admin → (own)"), "the impact preview: {}", dry.stdout);
    let applied = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--yes"], None);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(applied.stdout.contains("imported 2 settings"), "{}", applied.stdout);
    let again = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--yes"], None);
    assert!(again.stdout.contains("nothing to import"), "idempotent: {}", again.stdout);
    let aws = db.store.setting("aws-admin", "openai").await.unwrap().setting.unwrap();
    assert_eq!(aws.config["apiKey"], "sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9", "the stored key was kept");
    for run in [&dry, &applied, &again] {
        assert!(!run.stdout.contains("canary") && !run.stderr.contains("canary"));
    }

    // A fingerprint that is not the stored key imports nothing at all.
    let openai = doc["settings"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["account"] == "aws-admin" && s["integration_type"] == "openai")
        .unwrap();
    openai["config"]["apiKey"] = serde_json::json!("#00000000");
    openai["config"]["model"] = serde_json::json!("o3");
    std::fs::write(&file, doc.to_string()).unwrap();
    let bad = keyfall(&db, &["--as", "dev@igny8.com", "import", path, "--yes"], None);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("matches no stored key"), "{}", bad.stderr);
    assert_eq!(db.store.setting("aws-admin", "openai").await.unwrap().setting.unwrap().config["model"], "gpt-4.1");
}

#[tokio::test]
async fn a_closed_pipe_ends_quietly_and_exit_codes_mean_one_thing() {
    use std::io::{BufRead, BufReader};
    let db = TestDb::demo().await;
    // Enough accounts that the report outgrows the pipe's buffer.
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        "INSERT INTO accounts (slug, name) SELECT 'pipe-' || i, 'Pipe ' || i FROM generate_series(1, 3000) i",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    for args in [vec!["report"], vec!["man"]] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_keyfall"))
            .arg("--database-url")
            .arg(db.url())
            .args(&args)
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        // The reader (like `head -1`) goes away.
        let out = crate::support::output_within(child, crate::support::HUNG);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // A database refusal is 4, bad input 2.
    let run = keyfall(&db, &["--as", "paid2@paid.com", "export", "--account", "aws-admin", "--reveal", "--yes"], None);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let run = keyfall(&db, &["get", "no-such-account", "openai"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[tokio::test]
async fn concurrent_sets_without_a_version_never_fail_and_each_is_one_audit_row() {
    let db = TestDb::demo().await;
    let url = db.url();
    let mut handles = Vec::new();
    for w in 0..16 {
        let url = url.clone();
        handles.push(std::thread::spawn(move || {
            let dir = tempfile::tempdir().unwrap();
            let mut codes = Vec::new();
            for i in 0..3 {
                let mut child = Command::new(env!("CARGO_BIN_EXE_keyfall"))
                    .args(["--database-url", &url, "--as", "dev@igny8.com", "set", "acme-studio", "openai", "model"])
                    .env("HOME", dir.path())
                    .env("XDG_STATE_HOME", dir.path().join("state"))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(format!("model-{w}-{i}").as_bytes()).unwrap();
                let out = crate::support::output_within(child, crate::support::HUNG);
                codes.push((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()));
            }
            codes
        }));
    }
    for h in handles {
        for (code, stderr) in h.join().unwrap() {
            assert_eq!(code, Some(0), "a set without --expect-version failed: {stderr}");
        }
    }
    let mut conn = db.raw().await;
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'update' AND account_slug = 'acme-studio' AND actor = 'dev@igny8.com'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(audited, 48, "one audit row per committed set");
}

#[tokio::test]
async fn the_documented_surface_exists_and_input_is_refused_never_cut() {
    let db = TestDb::demo().await;
    let chain = json(&keyfall(&db, &["chain", "show", "--json"], None));
    assert_eq!(chain[0]["account"], "aws-admin");
    assert_eq!(chain[0]["exists"], true);
    let policy = json(&keyfall(&db, &["policy", "show", "--json"], None));
    assert_eq!((policy["policy"].as_str(), policy["letter"].as_str()), (Some("system_only"), Some("A")));
    // The seed's letters wherever a policy is named.
    let can = keyfall(&db, &["can", "--user", "paid2@paid.com", "--policy", "B", "--json"], None);
    assert_eq!(json(&can)["policy"], "per_account");
    let run = keyfall(&db, &["--as", "dev@igny8.com", "policy", "set", "c", "--dry-run"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Input beyond the limit, two lines, or not UTF-8: refused, nothing written, never echoed.
    let long = format!("gpt-{}", "x".repeat(70_000));
    for (input, why) in [(long.as_str(), "longer than"), ("gpt-4o\ngpt-4.1\n", "2 lines")] {
        let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", "model"], Some(input));
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(why) && !run.stderr.contains("gpt-4o"), "{}", run.stderr);
    }
    let model: String = {
        let mut conn = db.raw().await;
        sqlx::query_scalar(
            "SELECT s.config ->> 'model' FROM integration_settings s JOIN accounts a ON a.id = s.account_id
              WHERE a.slug = 'acme-studio' AND s.integration_type = 'openai'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };
    assert_eq!(model, "gpt-4o", "nothing was written");
    // A config error names the key.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "label = \"x\"\ncolour = \"red\"\n").unwrap();
    let run = keyfall(&db, &["--config", file.to_str().unwrap(), "report"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("colour") && run.stderr.contains("line 2"), "{}", run.stderr);
}

#[tokio::test]
async fn connections_like_libpq() {
    use std::time::{Duration, Instant};
    let db = TestDb::demo().await;
    let o = &db.target.options;
    let host = o.get_socket().map(|p| p.display().to_string()).unwrap_or_else(|| o.get_host().to_string());
    // key=value, as psql takes it.
    let conninfo =
        format!("host={host} port={} dbname={} user={}", o.get_port(), db.target.database(), o.get_username());
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyfall"));
        cmd.args(args)
            .env_remove("DATABASE_URL")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&["--database-url", &conninfo, "chain", "show"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The PG* environment, as psql uses it.
    let port = o.get_port().to_string();
    let out = run(
        &["chain", "show"],
        &[("PGHOST", &host), ("PGPORT", &port), ("PGDATABASE", db.target.database()), ("PGUSER", o.get_username())],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Not PostgreSQL: refused, the URL (and its password) never echoed.
    let out = run(&["--database-url", "mysql://u:s3cret-pw@db/x", "report"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a PostgreSQL") && !err.contains("s3cret"), "{err}");
    // A server that accepts and never answers: bounded by connect_timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let out =
        run(&["--database-url", &format!("postgres://x@{addr}/db?connect_timeout=2&sslmode=disable"), "report"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(20), "connect_timeout bounds the wait");
    drop(silent);
}

#[tokio::test]
async fn resolve_batch_answers_as_the_single_resolve_does() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    // Messier data: an inactive system row, a tenant's own key, wrong fields.
    sqlx::raw_sql(
        "UPDATE integration_settings SET config = config || '{\"temperature\": \"hot\"}'
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio');
         UPDATE integration_settings SET config = '{\"provider\": \"openai\", \"model\": \"dall-e-3\"}'
          WHERE integration_type = 'image_generation';",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let users: Vec<String> =
        sqlx::query_scalar("SELECT email FROM users ORDER BY id").fetch_all(&mut conn).await.unwrap();
    let functions = ["auto_cluster", "generate_ideas", "generate_content", "generate_image_prompts", "generate_images"];
    let mut input = String::from("user,function\n");
    for u in &users {
        for f in functions {
            input.push_str(&format!("{u},{f}\n"));
        }
    }
    input.push_str("{\"user\": \"ghost@nowhere.invalid\", \"function\": \"auto_cluster\"}\n");
    input.push_str("not a pair\n");
    let run = keyfall(&db, &["resolve", "--batch"], Some(&input));
    assert_eq!(run.code, 2, "bad lines make it exit 2: {}", run.stderr);
    let out: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(out.len(), users.len() * functions.len() + 2, "one line per pair, in order");
    for (i, line) in out.iter().take(users.len() * functions.len()).enumerate() {
        let (user, function) = (&users[i / functions.len()], functions[i % functions.len()]);
        assert_eq!((line["user"].as_str(), line["function"].as_str()), (Some(user.as_str()), Some(function)));
        let single = json(&keyfall(&db, &["resolve", "--user", user, "--function", function, "--json"], None));
        assert_eq!(line["answered_by"], single["answered_by"], "{user} {function}");
        let hop = &single["hop"];
        if !hop.is_null() && !single["answered_by"].is_null() {
            assert_eq!(line["provider_answered_by"], hop["answered_by"], "{user} {function} second hop");
        }
        let resolved = !single["answered_by"].is_null() && (hop.is_null() || !hop["answered_by"].is_null());
        assert_eq!(line["resolved"], resolved, "{user} {function}");
    }
    assert_eq!(out[out.len() - 2]["error"], "unknown user");
    assert!(out[out.len() - 1]["error"].as_str().unwrap().contains("line"));
}

/// `URL` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    format!("{url}{}{param}", if url.contains('?') { '&' } else { '?' })
}

/// Reads are bounded by a statement timeout (default 30 s; the config file,
/// `KEYFALL_STATEMENT_TIMEOUT`, or libpq's `options=-c statement_timeout=…`
/// set it): a read stuck behind a lock ends with exit 4 and one line saying
/// how to change the bound. Long streamed work (a whole export or lint) is
/// not cut by it.
#[tokio::test]
async fn reads_are_bounded_by_a_statement_timeout_and_long_work_is_not() {
    use std::time::{Duration, Instant};
    let db = TestDb::demo().await;
    // A psql session that locked the settings (and keyfall's verdicts of
    // them, which the report reads) and went to lunch.
    let mut holder = db.raw().await;
    sqlx::raw_sql("BEGIN; LOCK TABLE public.integration_settings, keyfall.row_verdicts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let url = db.url();
    let read = ["get", "aws-admin", "openai"];
    let with_url =
        |url: &str| -> Vec<String> { ["--database-url", url].into_iter().chain(read).map(str::to_string).collect() };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "statement_timeout = \"1s\"\n").unwrap();
    let by_file: Vec<String> =
        ["--config", file.to_str().unwrap()].into_iter().map(str::to_string).chain(with_url(&url)).collect();
    let by_options = with_url(&with_param(&url, "options=-c%20statement_timeout%3D1s"));
    for (args, envs) in [
        (with_url(&url), vec![("KEYFALL_STATEMENT_TIMEOUT", "1s")]),
        (by_file, vec![]),
        (with_url(&url), vec![("PGOPTIONS", "-c statement_timeout=1s")]),
        (by_options, vec![]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let run = keyfall_with(&args, None, &envs);
        assert_eq!(run.code, 4, "{envs:?} {}", run.stderr);
        assert!(run.stderr.contains("statement timeout"), "{}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(started.elapsed() < Duration::from_secs(20), "bounded");
    }
    // keyfall's own bound says how to change it.
    let run = keyfall_with(
        &with_url(&url).iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        &[("KEYFALL_STATEMENT_TIMEOUT", "1s")],
    );
    assert!(run.stderr.contains("KEYFALL_STATEMENT_TIMEOUT"), "{}", run.stderr);

    // A whole export, a whole lint and the report wait for the lock,
    // whatever the bound.
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_keyfall"))
            .args(["--database-url", &url])
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("PGOPTIONS")
            .env("KEYFALL_STATEMENT_TIMEOUT", "1s")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("XDG_CONFIG_HOME", dir.path().join("nowhere"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let export = spawn(&["export"]);
    let lint = spawn(&["lint", "--json"]);
    let report = spawn(&["report"]);
    // All three are waiting for the lock; then longer than the bound.
    let mut watcher = db.raw().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
            .fetch_one(&mut watcher)
            .await
            .unwrap();
        if waiting >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "export, lint and report never reached the lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    let export = crate::support::output_within(export, crate::support::HUNG);
    assert_eq!(export.status.code(), Some(0), "{}", String::from_utf8_lossy(&export.stderr));
    let doc: Value = serde_json::from_slice(&export.stdout).unwrap();
    assert!(doc["settings"].as_array().is_some_and(|s| !s.is_empty()), "{doc}");
    let lint = crate::support::output_within(lint, crate::support::HUNG);
    assert_eq!(lint.status.code(), Some(1), "L001 found: {}", String::from_utf8_lossy(&lint.stderr));
    let report = crate::support::output_within(report, crate::support::HUNG);
    assert_eq!(report.status.code(), Some(0), "{}", String::from_utf8_lossy(&report.stderr));
    assert!(String::from_utf8_lossy(&report.stdout).contains("aws-admin"));
}

/// A config error names the key (and a bound that is not a duration where
/// it came from): exit 2, one line, before any database is looked for.
#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    for (text, needles) in [
        ("label = \"x\"\nstatement_timeout = \"30\"\n", ["statement_timeout", "needs a unit"]),
        ("read_only = \"yes\"\n", ["line 1, read_only", "expected a boolean"]),
        ("[resolution]\nmoves_on = 5\n", ["line 2, [resolution] moves_on", "expected a sequence"]),
        ("color = \"chartreuse\"\n", ["color", "unknown colour"]),
    ] {
        std::fs::write(&file, text).unwrap();
        let run = keyfall_with(&["--config", file.to_str().unwrap(), "report"], None, &[]);
        assert_eq!(run.code, 2, "{text}: {}", run.stderr);
        assert!(needles.iter().all(|n| run.stderr.contains(n)), "{text}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    }
    let run = keyfall_with(&["report"], None, &[("KEYFALL_STATEMENT_TIMEOUT", "soon")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("KEYFALL_STATEMENT_TIMEOUT"), "{}", run.stderr);
}

/// stdout closed before keyfall writes a byte (`… | head` that already
/// left): every command ends quietly, as it would have; a write asked for
/// with `--yes` still happens.
#[tokio::test]
async fn a_closed_stdout_never_panics_and_never_stops_a_write() {
    let db = TestDb::demo().await;
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let closed = |args: &[&str], stdin: &str| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = Command::new(env!("CARGO_BIN_EXE_keyfall"))
            .args(["--database-url", &url])
            .args(args)
            .env_remove("DATABASE_URL")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::piped())
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = crate::support::output_within(child, crate::support::HUNG);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for (args, stdin, code) in [
        (vec!["completions", "bash"], "", 0),
        (vec!["man", "resolve"], "", 0),
        (vec!["report"], "", 0),
        (vec!["report", "--json"], "", 0),
        (vec!["export"], "", 0),
        (vec!["chain", "show", "--json"], "", 0),
        (vec!["resolve", "--batch"], "paid2@paid.com,auto_cluster\n", 0),
        (vec!["--as", "dev@igny8.com", "set", "acme-studio", "openai", "model", "--dry-run"], "gpt-4.1", 0),
        // The answer (an error-level finding) is known all the same.
        (vec!["lint"], "", 1),
        (vec!["--as", "dev@igny8.com", "lint", "--fix", "--yes"], "", 0),
        (vec!["--as", "dev@igny8.com", "set", "acme-studio", "openai", "model"], "gpt-4.1", 0),
    ] {
        let (got, stderr) = closed(&args, stdin);
        assert_eq!(got, Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("internal error"), "{args:?}: {stderr}");
    }
    // The fix and the set were applied although nobody read what they said.
    assert_eq!(keyfall(&db, &["lint"], None).code, 0, "lint --fix applied its fix");
    let got = json(&keyfall(&db, &["get", "acme-studio", "openai", "--json"], None));
    assert_eq!(got["config"]["model"], "gpt-4.1", "{got}");
}

/// A value pasted with quotes, spaces or a line break is cleaned the same
/// way for every field, and the cleaning is reported; `--json` gives the
/// outcome with the new version.
#[tokio::test]
async fn every_field_is_trimmed_as_a_key_is_and_said_so() {
    let db = TestDb::demo().await;
    let set = |field: &str, input: &str| {
        keyfall(&db, &["--as", "dev@igny8.com", "set", "acme-studio", "openai", field, "--json"], Some(input))
    };
    let run = set("model", "  \"gpt-4.1\"\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("trimmed") && run.stderr.contains("quotes"), "{}", run.stderr);
    let out = json(&run);
    assert_eq!((out["value"].as_str(), out["outcome"].as_str()), (Some("gpt-4.1"), Some("saved")), "{out}");
    assert!(out["version"].as_i64().is_some(), "{out}");
    let run = set("temperature", "'0.5'\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json(&run)["value"], 0.5);
    let run = set("model", "\"\"\n");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("empty value"), "{}", run.stderr);
    // A key comes back as its mask only.
    let run = set("apiKey", &format!("{CANARY}\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains(CANARY) && json(&run)["value"].as_str().unwrap().starts_with("••••"),
        "{}",
        run.stdout
    );
    // The dry run as JSON: the change (keys as fingerprints) and the impact.
    let run = keyfall(
        &db,
        &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "model", "--dry-run", "--json"],
        Some("gpt-4.1-mini"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = json(&run);
    assert_eq!(out["changes"][0]["field"], "config.model", "{out}");
    assert_eq!(out["changes"][0]["after"], "gpt-4.1-mini", "{out}");
    assert!(out["impact"].as_array().is_some_and(|i| !i.is_empty()), "{out}");
    // check --json: one object per expectation.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expect.toml");
    std::fs::write(
        &file,
        "[[expect]]\nuser = \"paid2@paid.com\"\nfunction = \"auto_cluster\"\nanswered_by = \"paid-2\"\n",
    )
    .unwrap();
    let run = keyfall(&db, &["check", file.to_str().unwrap(), "--json"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let out = json(&run);
    assert_eq!((out[0]["ok"].as_bool(), out[0]["answered_by"].as_str()), (Some(false), Some("aws-admin")), "{out}");
    assert_eq!(out[0]["expected"]["answered_by"], "paid-2");
}

// The pseudo-terminal the console's pty test uses (its module is private
// to tests/it/pty.rs): loaded here a second time, for the progress line.
#[path = "../common/pty.rs"]
#[allow(dead_code, clippy::duplicate_mod)]
mod pty_common;

/// Long work shows one line of progress on stderr when stderr is a
/// terminal, and nothing when it is not; bytes that are not UTF-8 on
/// `set`'s stdin are refused and nothing is written.
#[tokio::test]
async fn progress_on_a_terminal_only_and_input_that_is_not_utf8_is_refused() {
    use std::time::Duration;
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        "INSERT INTO accounts (slug, name) SELECT 'bulk-' || i, 'Bulk ' || i FROM generate_series(1, 1100) i;
         INSERT INTO integration_settings (account_id, integration_type, config)
         SELECT id, 'openai', '{\"apiKey\": \"sk-bulk-000000000000\", \"model\": \"gpt-4o\"}'
           FROM accounts WHERE slug LIKE 'bulk-%';",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let command_of = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keyfall"));
        c.args(["--database-url", &url])
            .args(args)
            .env_remove("DATABASE_URL")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"));
        c
    };
    let command = || command_of(&["lint", "--json"]);
    let mut pty = pty_common::Pty::open(24, 120);
    let mut child = pty.spawn(command());
    let status = pty.wait_exit(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "{}", pty.screen());
    let seen = String::from_utf8_lossy(&pty.output);
    assert!(seen.contains("lint: 1024 settings…"), "{seen}");
    assert!(pty.screen().lines().all(|l| !l.contains("settings…")), "the line is wiped when done");
    let piped = command().output().unwrap();
    assert_eq!(piped.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("settings…"), "no progress into a pipe");

    // The text report reads every row before it aligns them: a line
    // meanwhile (1,108 accounts × 3 types), wiped before the report.
    let mut pty = pty_common::Pty::open(24, 120);
    let mut child = pty.spawn(command_of(&["report"]));
    let status = pty.wait_exit(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "{}", pty.screen());
    let seen = String::from_utf8_lossy(&pty.output);
    assert!(seen.contains("report: 1024 rows…"), "{seen}");
    assert!(pty.screen().lines().all(|l| !l.contains("rows…")), "the line is wiped when done");
    let piped = command_of(&["report"]).output().unwrap();
    assert_eq!(piped.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("rows…"), "no progress into a pipe");

    let mut child = Command::new(env!("CARGO_BIN_EXE_keyfall"))
        .args(["--database-url", &url, "--as", "dev@igny8.com", "set", "acme-studio", "openai", "model"])
        .env_remove("DATABASE_URL")
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"gpt-\xff\xfe4o").unwrap();
    let out = crate::support::output_within(child, crate::support::HUNG);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"), "{}", String::from_utf8_lossy(&out.stderr));
    let got = json(&keyfall(&db, &["get", "acme-studio", "openai", "--json"], None));
    assert_eq!(got["config"]["model"], "gpt-4o", "nothing written");
}

/// A write error that is not a closed pipe (a full disk) fails the command
/// with one wording, whatever the command.
#[tokio::test]
async fn a_full_disk_fails_every_command_the_same_way() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let db = TestDb::demo().await;
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["chain", "show"], vec!["report", "--json"], vec!["export"], vec!["lint"], vec!["man"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_keyfall"))
            .args(["--database-url", &url])
            .args(&args)
            .env_remove("DATABASE_URL")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdout(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(74), "{args:?}: EX_IOERR, not bad input: {stderr}");
        assert!(stderr.starts_with("keyfall: cannot write the output: "), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}

/// A panic (one made on purpose: debug builds only) ends with 70 and one
/// line pointing at the log; the log has the message, a key in it masked,
/// and neither stream ever shows the key.
#[test]
fn a_panic_exits_70_with_its_message_in_the_log_and_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keyfall"))
        .args(["chain", "show"])
        .env("KEYFALL_TEST_PANIC", format!("the walk met an impossible row {CANARY}"))
        .env("DATABASE_URL", "postgres://127.0.0.1:1/nothing")
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(70), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("keyfall: internal error at src/main.rs:"), "{stderr}");
    assert!(stderr.contains("details in") && stderr.contains("keyfall.log"), "{stderr}");
    assert!(!stderr.contains("impossible row"), "the payload stays out of the terminal: {stderr}");
    let log_dir = dir.path().join("state/keyfall");
    let log: String = std::fs::read_dir(&log_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", log_dir.display()))
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert!(log.contains("panic") && log.contains("the walk met an impossible row"), "the message is logged: {log}");
    assert!(!log.contains(CANARY) && !stderr.contains(CANARY), "the key never: {log}");
}
