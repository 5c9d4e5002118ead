//! The outside check of issue 19, run as an outsider would: a Django app
//! keyfall's own code never shaped (`tests/django_outside`: integer ids
//! made bigint later, its own table names, an extra foreign key, a model
//! rename, `is_active` renamed `enabled`, `updated_at` and the unique pair
//! added later, a data migration writing settings, squashed migrations),
//! migrated step by step by its own non-superuser role with keyfall
//! attached — by a superuser, and separately by that role itself — the
//! ORM writing after each step; locks held by the app during attach,
//! detach and re-attach; one config file serving three databases; two
//! writers of one pair under REPEATABLE READ and SERIALIZABLE.

use std::process::Command;
use std::time::{Duration, Instant};

use keyfall::store::{Source, Target};
use serde_json::Value;
use sqlx::{ConnectOptions, Connection};

use crate::cli::{Run, keyfall_with};
use crate::support::TestDb;

// The shared venv and runner of the Django tests (made once under a file lock).
use crate::django::django_py;

/// The outside app's own role: LOGIN, not a superuser, owner of its database.
const ROLE: &str = "keyfall_outside_app";

/// The app's migrations after the squashed first two, in order.
const STEPS: [&str; 7] = [
    "0003_rename_org_workspace",
    "0004_rename_is_active_enabled",
    "0005_credential_updated_at",
    "0006_unique_pair",
    "0007_system_keys",
    "0008_bigint_ids",
    "0009_type_length_index",
];
const SQUASHED: &str = "0001_squashed_0002_credential_created_by";

/// `outside.py ARGS…` as the app's role on `app`'s database; `prod`: the
/// deployment with its own table names. Its JSON; panics with stderr.
fn outside(app: &Target, prod: bool, args: &[&str]) -> Value {
    let out = django_py::run_or_panic(&mut outside_command(app, prod, args), &format!("outside.py {}", args.join(" ")));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("outside.py {args:?}: {e}"))
}

/// `outside.py ARGS…`, not yet run.
fn outside_command(app: &Target, prod: bool, args: &[&str]) -> Command {
    let o = &app.options;
    let host = match o.get_socket() {
        Some(dir) => dir.to_string_lossy().into_owned(),
        None => o.get_host().to_string(),
    };
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(django_py::python());
    cmd.current_dir(repo)
        .arg(repo.join("tests/django_outside/outside.py"))
        .args(args)
        .env("PGHOST", host)
        .env("PGPORT", o.get_port().to_string())
        .env("PGUSER", o.get_username())
        .env("PGDATABASE", o.get_database().unwrap_or_default())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("VAULT_FLAVOUR", if prod { "prod" } else { "staging" })
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS");
    cmd
}

/// A fresh database owned by the app's role, and that role's target.
async fn app_database() -> (TestDb, Target) {
    let db = TestDb::bare().await;
    let mut admin = db.raw().await;
    // Roles are cluster-wide and tests run in parallel: make it once.
    for _ in 0..3 {
        let made = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN CREATE ROLE {ROLE} LOGIN; END IF; END $$"
        )))
        .execute(&mut admin)
        .await;
        if made.is_ok() {
            break;
        }
    }
    let owner = format!("ALTER DATABASE {} OWNER TO {ROLE}", keyfall::store::quote_ident(db.target.database()));
    sqlx::raw_sql(sqlx::AssertSqlSafe(owner)).execute(&mut admin).await.unwrap();
    let app =
        Target { options: db.target.options.clone().username(ROLE), source: Source::Configured, connect_timeout: None };
    (db, app)
}

fn url_of(target: &Target) -> String {
    target.options.to_url_lossy().to_string()
}

/// keyfall against `who`'s URL (the superuser's, or the app's role's).
fn kf_as(who: &Target, args: &[&str]) -> Run {
    let url = url_of(who);
    let all: Vec<&str> = ["--database-url", url.as_str()].into_iter().chain(args.iter().copied()).collect();
    keyfall_with(&all, None, &[])
}

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.raw().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut conn).await.unwrap()
}

/// The ORM's four writes (create, save, update, delete) as the app's role,
/// then what the audit log holds of them.
async fn writes_audited(db: &TestDb, app: &Target, step: &str) {
    let before = scalar(db, "SELECT coalesce(max(id), 0) FROM keyfall.audit_log").await;
    let out = outside(app, false, &["writes", "--account", "tenant-2"]);
    assert_eq!(out["writes"], 4, "{step}: {out}");
    let mut conn = db.raw().await;
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, integration_type FROM keyfall.audit_log
          WHERE id > $1 AND db_login = $2 AND table_name = 'integration_settings' ORDER BY id",
    )
    .bind(before)
    .bind(ROLE)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["insert", "update", "update", "delete"], "{step}: every ORM write audited: {rows:?}");
    assert!(rows.iter().all(|(_, t)| t.as_deref() == Some("outside_probe")), "{step}: {rows:?}");
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM keyfall.audit_log WHERE coalesce(before::text, '') || coalesce(after::text, '') LIKE '%outside-written%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "{step}: the key the app wrote is in no audit row in clear");
}

/// keyfall's reading commands as `who`: each works, or says in one line
/// that it needs `keyfall attach`. Whether all of them worked.
fn commands_work_or_say_attach(who: &Target, step: &str) -> bool {
    let mut all = true;
    let commands: [&[&str]; 5] = [
        &["get", "aws-admin", "openai"],
        &["resolve", "--user", "owner@tenant-1.test", "--function", "auto_cluster", "--json"],
        &["report"],
        &["audit", "--limit", "5"],
        &["lint"],
    ];
    for args in commands {
        let run = kf_as(who, args);
        if run.code == 0 || run.code == 1 {
            continue;
        }
        all = false;
        assert_eq!(run.code, 2, "{step}: {args:?}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{step}: {args:?} says it in one line: {}", run.stderr);
        assert!(run.stderr.contains("keyfall attach"), "{step}: {args:?} says what to run: {}", run.stderr);
    }
    all
}

/// keyfall's triggers on the app's tables and its event triggers.
async fn touching_the_app(db: &TestDb) -> Vec<String> {
    let mut conn = db.raw().await;
    sqlx::query_scalar(
        "SELECT 'trigger ' || tg.tgname || ' on ' || tg.tgrelid::regclass::text
           FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
          WHERE NOT tg.tgisinternal AND n.nspname = 'keyfall' AND cn.nspname <> 'keyfall'
         UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger WHERE evtname LIKE 'keyfall%'
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// `outside.py migrate TARGET` as the app's role. Where keyfall was attached
/// by a non-superuser (no event triggers), a migration changing the type
/// of a mapped column fails on keyfall's views: it then runs between
/// `keyfall detach` and `keyfall attach`, as attach's note says, and the
/// history goes on. Its JSON, and whether it needed the detach.
async fn migrate_as_the_app(db: &TestDb, app: &Target, attacher: &Target, by_owner: bool, to: &str) -> (Value, bool) {
    let tried = outside_command(app, false, &["migrate", to]).output().unwrap();
    if tried.status.success() {
        return (serde_json::from_slice(&tried.stdout).unwrap(), false);
    }
    let stderr = String::from_utf8_lossy(&tried.stderr);
    assert!(by_owner, "{to} failed with keyfall attached by a superuser:\n{stderr}");
    assert!(stderr.contains("cannot alter type of a column used by a view"), "{to}:\n{stderr}");
    let first_audit = scalar(db, "SELECT min(id) FROM keyfall.audit_log").await;
    let run = kf_as(attacher, &["detach", "--yes"]);
    assert_eq!(run.code, 0, "{to}: {}\n{}", run.stdout, run.stderr);
    let out = outside(app, false, &["migrate", to]);
    if to == "zero" {
        outside(app, false, &["migrate"]);
        outside(app, false, &["seed"]);
    }
    let run = kf_as(attacher, &["attach", "--yes", "--no-config"]);
    assert_eq!(run.code, 0, "{to}: attach after the migration: {}\n{}", run.stdout, run.stderr);
    assert_eq!(scalar(db, "SELECT min(id) FROM keyfall.audit_log").await, first_audit, "{to}: the history goes on");
    (out, true)
}

/// The whole life of the outside app with keyfall attached by `attacher`.
async fn the_app_lives_with_keyfall(by_owner: bool) {
    let (db, app) = app_database().await;
    let attacher = if by_owner { app.clone() } else { db.target.clone() };
    outside(&app, false, &["migrate", SQUASHED]);
    outside(&app, false, &["seed"]);
    let run = kf_as(&attacher, &["attach", "--yes", "--no-config"]);
    assert_eq!(run.code, 0, "attach: {}\n{}", run.stdout, run.stderr);
    writes_audited(&db, &app, "attached").await;
    assert!(commands_work_or_say_attach(&attacher, "attached"), "everything works once attached");
    let first_audit = scalar(&db, "SELECT min(id) FROM keyfall.audit_log").await;

    let mut reattached = Vec::new();
    let mut blocked = Vec::new();
    for step in STEPS {
        let (out, detached) = migrate_as_the_app(&db, &app, &attacher, by_owner, step).await;
        if detached {
            blocked.push(step);
        }
        assert_eq!(out["at"], step, "{out}");
        writes_audited(&db, &app, step).await;
        if !commands_work_or_say_attach(&attacher, step) {
            // Following the app: attach again, the history kept.
            let kept = scalar(&db, "SELECT count(*) FROM keyfall.audit_log").await;
            let run = kf_as(&attacher, &["attach", "--yes", "--no-config"]);
            assert_eq!(run.code, 0, "{step}: attach again: {}\n{}", run.stdout, run.stderr);
            reattached.push(step);
            assert!(scalar(&db, "SELECT count(*) FROM keyfall.audit_log").await >= kept, "{step}");
            assert_eq!(scalar(&db, "SELECT min(id) FROM keyfall.audit_log").await, first_audit, "{step}");
            assert!(commands_work_or_say_attach(&attacher, step), "{step}: works after attach");
            writes_audited(&db, &app, step).await;
        }
    }
    // The data migration's writes are the app's, audited as its role.
    assert!(
        scalar(
            &db,
            "SELECT count(*) FROM keyfall.audit_log WHERE integration_type = 'runware' AND db_login = 'keyfall_outside_app'"
        )
        .await
            >= 1
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM keyfall.audit_log WHERE action LIKE 'capture_failed'").await, 0);

    // `migrate vault zero` and back, then the ORM again.
    if migrate_as_the_app(&db, &app, &attacher, by_owner, "zero").await.1 {
        blocked.push("zero"); // and back, between detach and attach
    } else {
        outside(&app, false, &["migrate"]);
        outside(&app, false, &["seed"]);
    }
    if !commands_work_or_say_attach(&attacher, "zero and back") {
        let run = kf_as(&attacher, &["attach", "--yes", "--no-config"]);
        assert_eq!(run.code, 0, "zero and back: attach again: {}\n{}", run.stdout, run.stderr);
        reattached.push("zero and back");
        assert!(commands_work_or_say_attach(&attacher, "zero and back"));
    }
    writes_audited(&db, &app, "zero and back").await;
    assert_eq!(scalar(&db, "SELECT min(id) FROM keyfall.audit_log").await, first_audit, "the history survives");
    eprintln!(
        "attached by {}: attach again after {reattached:?}; detach for {blocked:?}",
        if by_owner { "the owner" } else { "a superuser" }
    );
    if by_owner {
        let type_changes = ["0008_bigint_ids", "0009_type_length_index", "zero"];
        assert!(blocked.contains(&"0008_bigint_ids"), "{blocked:?}");
        assert!(blocked.iter().all(|b| type_changes.contains(b)), "only type changes of mapped columns: {blocked:?}");
    } else {
        assert!(reattached.is_empty() && blocked.is_empty(), "a superuser's attach follows every step");
    }

    // Detach leaves nothing on the app's tables; the app goes on.
    let run = kf_as(&attacher, &["detach", "--yes"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(touching_the_app(&db).await.is_empty(), "{:?}", touching_the_app(&db).await);
    outside(&app, false, &["writes", "--account", "tenant-2"]);
    // Attach again resumes the same log; --purge asks first.
    let run = kf_as(&attacher, &["attach", "--yes", "--no-config"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(scalar(&db, "SELECT min(id) FROM keyfall.audit_log").await, first_audit);
    writes_audited(&db, &app, "attached again").await;
    let run = kf_as(&attacher, &["detach", "--purge"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("audit entries") && run.stderr.contains("--yes"), "{}\n{}", run.stdout, run.stderr);
    assert!(!touching_the_app(&db).await.is_empty(), "asking changed nothing");
    let run = kf_as(&attacher, &["detach", "--purge", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(touching_the_app(&db).await.is_empty());
    outside(&app, false, &["writes", "--account", "tenant-2"]);
}

#[tokio::test]
async fn the_outside_app_migrates_and_writes_with_keyfall_attached_by_a_superuser() {
    the_app_lives_with_keyfall(false).await;
}

#[tokio::test]
async fn the_outside_app_migrates_and_writes_with_keyfall_attached_by_its_owner() {
    the_app_lives_with_keyfall(true).await;
}

/// An app session holding a lock in an open transaction: its pid.
async fn hold(db: &TestDb, sql: &str) -> (sqlx::PgConnection, i32) {
    let mut holder = db.raw().await;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut holder).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN; {sql}"))).execute(&mut holder).await.unwrap();
    (holder, pid)
}

/// What happened while keyfall ran behind a held lock: its run, the longest
/// the app's `statement` took meanwhile (run again and again on a session
/// of its own), and whether keyfall was ever seen waiting for `pid`.
struct Raced {
    run: Run,
    longest: Duration,
    waited: bool,
}

async fn keyfall_racing_the_app(db: &TestDb, args: &[&str], pid: i32, statement: &str) -> Raced {
    let url = db.url();
    let args: Vec<String> = ["--database-url", url.as_str()].iter().chain(args).map(|s| s.to_string()).collect();
    let task = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        keyfall_with(&args, None, &[])
    });
    let mut app = db.raw().await;
    let mut watcher = db.raw().await;
    let mut longest = Duration::ZERO;
    let mut waited = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !task.is_finished() {
        assert!(Instant::now() < deadline, "keyfall {:?} never ended", "racing");
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))")
                .bind(pid)
                .fetch_one(&mut watcher)
                .await
                .unwrap();
        waited |= waiting > 0;
        let started = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string())).execute(&mut app).await.unwrap();
        longest = longest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Raced { run: task.await.unwrap(), longest, waited }
}

/// keyfall behind the app's lock: done, or given up with exit 4 naming the
/// session; the app's other statement never waited beyond one lock wait.
fn never_queued(what: &str, raced: &Raced, pid: i32) {
    let Raced { run, longest, waited } = raced;
    assert!(*longest < Duration::from_secs(4), "{what}: the app's statement waited {longest:?}\n{}", run.stderr);
    match run.code {
        0 => {}
        4 => {
            assert!(waited, "{what}: gave up without waiting?");
            let named = format!("pid {pid} (idle in transaction");
            assert!(run.stderr.contains("waits for") && run.stderr.contains(&named), "{what}: {}", run.stderr);
            let last = run.stderr.trim().lines().last().unwrap_or_default();
            assert!(last.contains("gave up") && last.contains(&named), "{what}: {last}");
        }
        code => panic!("{what}: exit {code}: {}\n{}", run.stdout, run.stderr),
    }
}

#[tokio::test]
async fn app_locks_during_attach_detach_and_reattach_never_queue_the_app() {
    let (db, app) = app_database().await;
    outside(&app, false, &["migrate"]);
    outside(&app, false, &["seed"]);
    let row_lock = "UPDATE vault_ai_credentials SET enabled = enabled
                     WHERE account_id = (SELECT id FROM vault_workspace WHERE slug = 'aws-admin')";
    let app_write = "UPDATE vault_ai_credentials SET config = config
                      WHERE account_id = (SELECT id FROM vault_workspace WHERE slug = 'tenant-1')";
    let share_lock = "SELECT count(*) FROM vault_ai_credentials";
    let app_read = "SELECT count(*) FROM vault_ai_credentials";
    let mut outcomes = Vec::new();
    // The app's active flag is `enabled` (0004): detection cannot find the
    // settings table; the config's [mapping] names it, as README says.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[mapping.settings]\ntable = \"vault_ai_credentials\"\ncolumns = { is_active = \"enabled\" }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let attach = ["--config", config, "attach", "--yes"];

    // attach behind a row lock: gives up, the app's other writes go on.
    let (holder, pid) = hold(&db, row_lock).await;
    let raced = keyfall_racing_the_app(&db, &attach, pid, app_write).await;
    never_queued("attach behind a row lock", &raced, pid);
    assert_eq!(raced.run.code, 4, "attach needs a lock the row lock holds off: {}", raced.run.stderr);
    assert!(
        touching_the_app(&db).await.iter().all(|o| o.starts_with("event trigger")),
        "a failed attach left triggers"
    );
    holder.close().await.unwrap();
    // attach behind a reader idle in its transaction (ACCESS SHARE).
    let (holder, pid) = hold(&db, share_lock).await;
    let raced = keyfall_racing_the_app(&db, &attach, pid, app_read).await;
    never_queued("attach behind an idle reader", &raced, pid);
    outcomes.push(("attach behind an idle reader", raced.run.code));
    holder.close().await.unwrap();
    if raced.run.code != 0 {
        let run = kf_as(&db.target, &attach);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }

    // detach behind each: never queues the app.
    for (what, lock, statement) in
        [("detach behind an idle reader", share_lock, app_read), ("detach behind a row lock", row_lock, app_write)]
    {
        let (holder, pid) = hold(&db, lock).await;
        let raced = keyfall_racing_the_app(&db, &["detach", "--yes"], pid, statement).await;
        never_queued(what, &raced, pid);
        outcomes.push((what, raced.run.code));
        holder.close().await.unwrap();
        if raced.run.code == 0 {
            // Attached again, for the next.
            let run = kf_as(&db.target, &attach);
            assert_eq!(run.code, 0, "{}", run.stderr);
        } else {
            assert!(!touching_the_app(&db).await.is_empty(), "{what}: a failed detach changes nothing");
        }
    }
    // Re-attach (after a detach) behind each.
    for (what, lock, statement) in [
        ("re-attach behind an idle reader", share_lock, app_read),
        ("re-attach behind a row lock", row_lock, app_write),
    ] {
        let run = kf_as(&db.target, &["detach", "--yes"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let (holder, pid) = hold(&db, lock).await;
        let raced = keyfall_racing_the_app(&db, &attach, pid, statement).await;
        never_queued(what, &raced, pid);
        outcomes.push((what, raced.run.code));
        holder.close().await.unwrap();
        if raced.run.code != 0 {
            let run = kf_as(&db.target, &attach);
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
        assert!(raced.run.stdout.contains("attached again") || raced.run.code != 0, "{}", raced.run.stdout);
    }
    eprintln!("outcomes (exit codes): {outcomes:?}");
    // The history went on through all of it.
    writes_audited(&db, &app, "after the locks").await;
}

/// The demo, a staging database (the outside app as it is deployed) and a
/// production one (the same app with its own table names, whose settings
/// table detection cannot find: its mapping is given in the config, for
/// that database only): one config file, every command with `--context`
/// only; attach → detach → attach on each.
#[tokio::test]
async fn one_config_serves_the_demo_a_staging_and_a_production_database() {
    let demo = TestDb::demo().await;
    let (staging, staging_app) = app_database().await;
    outside(&staging_app, false, &["migrate", "0003_rename_org_workspace"]);
    outside(&staging_app, false, &["seed"]);
    let (production, production_app) = app_database().await;
    outside(&production_app, true, &["migrate"]);
    outside(&production_app, true, &["seed"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let text = format!(
        "default_context = \"demo\"\n\n\
         [contexts.demo]\nurl = \"{}\"\n\n\
         [contexts.staging]\nurl = \"{}\"\nlabel = \"STAGING\"\n\n\
         [contexts.production]\nurl = \"{}\"\nlabel = \"PRODUCTION\"\ncolour = \"red\"\n\n\
         [contexts.production.mapping.settings]\ntable = \"prd_ai_credentials\"\ncolumns = {{ is_active = \"enabled\" }}\n",
        demo.url(),
        staging.url(),
        production.url()
    );
    std::fs::write(&config, &text).unwrap();
    let config = config.to_str().unwrap();
    let on = |ctx: &str, args: &[&str]| -> Run {
        let all: Vec<&str> = ["--config", config, "--context", ctx].into_iter().chain(args.iter().copied()).collect();
        keyfall_with(&all, None, &[])
    };
    let every_command_works = |ctx: &str, user: &str, when: &str| {
        let commands: [&[&str]; 5] = [
            &["get", "aws-admin", "openai", "--json"],
            &["resolve", "--user", user, "--function", "auto_cluster", "--json"],
            &["report"],
            &["audit", "--limit", "5"],
            &["lint"],
        ];
        for args in commands {
            let run = on(ctx, args);
            assert!(run.code == 0 || run.code == 1, "{ctx} {when}: {args:?}: {}\n{}", run.stdout, run.stderr);
        }
    };

    for ctx in ["staging", "production"] {
        let run = on(ctx, &["attach", "--yes"]);
        assert_eq!(run.code, 0, "{ctx}: {}\n{}", run.stdout, run.stderr);
    }
    assert_eq!(std::fs::read_to_string(config).unwrap(), text, "attach leaves the config file as it is");
    // The staging app deploys its next migrations, attached.
    for step in &STEPS[1..] {
        outside(&staging_app, false, &["migrate", step]);
    }
    for (ctx, user) in
        [("demo", "dev@igny8.com"), ("staging", "owner@tenant-1.test"), ("production", "owner@tenant-1.test")]
    {
        every_command_works(ctx, user, "attached");
    }
    let run = on("production", &["get", "aws-admin", "openai", "--json"]);
    assert!(run.stdout.contains("gpt-4o-mini"), "production answers from its own tables: {}", run.stdout);
    for ctx in ["staging", "production"] {
        let run = on(ctx, &["detach", "--yes"]);
        assert_eq!(run.code, 0, "{ctx}: {}\n{}", run.stdout, run.stderr);
        let run = on(ctx, &["attach", "--yes"]);
        assert_eq!(run.code, 0, "{ctx}: attach again: {}\n{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("attached again"), "{ctx}: {}", run.stdout);
    }
    for (ctx, user) in
        [("demo", "dev@igny8.com"), ("staging", "owner@tenant-1.test"), ("production", "owner@tenant-1.test")]
    {
        every_command_works(ctx, user, "attached again");
    }
    // And the writes of each app are audited in its own database.
    writes_audited(&staging, &staging_app, "staging").await;
    let before = scalar(&production, "SELECT coalesce(max(id), 0) FROM keyfall.audit_log").await;
    outside(&production_app, true, &["writes", "--account", "tenant-2"]);
    let after =
        scalar(&production, "SELECT count(*) FROM keyfall.audit_log WHERE integration_type = 'outside_probe'").await;
    assert!(after >= 4 && before > 0, "production's writes audited");
}

/// Two app transactions insert rows at once into a settings table without
/// the unique (account, type) pair — for one pair, and for two — under
/// each isolation level the app may use: both commit as they would without
/// keyfall (before 0007, under SERIALIZABLE the second COMMIT failed with a
/// serialization failure keyfall's reads caused, and under REPEATABLE READ
/// one pair kept two verdicts), both are audited, and keyfall keeps one
/// verdict per pair, the lowest id's.
#[tokio::test]
async fn two_writers_at_once_under_each_isolation_level() {
    let (db, app) = app_database().await;
    outside(&app, false, &["migrate", SQUASHED]);
    outside(&app, false, &["seed"]);
    let run = kf_as(&db.target, &["attach", "--yes", "--no-config"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let insert = "INSERT INTO vault_ai_credentials (account_id, integration_type, config, is_active)
                  SELECT id, 'runware', '{\"apiKey\": \"rw-concurrent-0123456789\"}', true FROM vault_org WHERE slug = $1";
    for level in ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"] {
        for (first, second) in [("tenant-3", "tenant-3"), ("tenant-3", "tenant-2")] {
            let what = format!("{level}, {first} and {second}");
            let mut psql = db.raw().await;
            sqlx::raw_sql("DELETE FROM vault_ai_credentials WHERE integration_type = 'runware'")
                .execute(&mut psql)
                .await
                .unwrap();
            let audited_before = scalar(&db, "SELECT coalesce(max(id), 0) FROM keyfall.audit_log").await;
            let mut a = app.options.connect().await.unwrap();
            let mut b = app.options.connect().await.unwrap();
            let b_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut b).await.unwrap();
            let begin = format!("BEGIN ISOLATION LEVEL {level}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(begin.clone())).execute(&mut a).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(begin)).execute(&mut b).await.unwrap();
            sqlx::query(insert).bind(first).execute(&mut a).await.unwrap();
            let slug = second.to_string();
            let b_task = tokio::spawn(async move {
                let inserted = sqlx::query(insert).bind(&slug).execute(&mut b).await.map(|_| ());
                (b, inserted)
            });
            // The second inserts (for the same pair it waits for the
            // first, as a unique index would make it), then the first
            // commits, then the second.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let waiting: bool = sqlx::query_scalar(
                    "SELECT wait_event_type IS NOT DISTINCT FROM 'Lock' FROM pg_stat_activity WHERE pid = $1",
                )
                .bind(b_pid)
                .fetch_one(&mut psql)
                .await
                .unwrap();
                if waiting || b_task.is_finished() || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let a_committed = sqlx::raw_sql("COMMIT").execute(&mut a).await.map(|_| ());
            assert!(a_committed.is_ok(), "{what}: the app's first commit failed: {a_committed:?}");
            let (mut b, inserted) = b_task.await.unwrap();
            assert!(inserted.is_ok(), "{what}: the app's second insert failed: {inserted:?}");
            let committed = sqlx::raw_sql("COMMIT").execute(&mut b).await.map(|_| ());
            assert!(committed.is_ok(), "{what}: the app's second commit failed: {committed:?}");
            let failed = scalar(&db, "SELECT count(*) FROM keyfall.audit_log WHERE action = 'capture_failed'").await;
            assert_eq!(failed, 0, "{what}");
            let audited = sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM keyfall.audit_log WHERE id > $1 AND action = 'insert' AND integration_type = 'runware'",
            )
            .bind(audited_before)
            .fetch_one(&mut psql)
            .await
            .unwrap();
            assert_eq!(audited, 2, "{what}: both inserts audited");
            let verdicts: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT o.slug::text, r.setting_id,
                        (SELECT min(s.id)::bigint FROM vault_ai_credentials s
                          WHERE s.account_id = r.account_id AND s.integration_type = r.integration_type)
                   FROM keyfall.row_verdicts r JOIN vault_org o ON o.id = r.account_id
                  WHERE r.integration_type = 'runware' ORDER BY 1",
            )
            .fetch_all(&mut psql)
            .await
            .unwrap();
            let pairs: Vec<&str> = if first == second { vec![first] } else { vec!["tenant-2", "tenant-3"] };
            let slugs: Vec<&str> = verdicts.iter().map(|(s, _, _)| s.as_str()).collect();
            assert_eq!(slugs, pairs, "{what}: one verdict per pair: {verdicts:?}");
            assert!(verdicts.iter().all(|(_, id, lowest)| id == lowest), "{what}: the lowest id's: {verdicts:?}");
        }
    }
    let run = kf_as(&db.target, &["get", "tenant-3", "runware", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
