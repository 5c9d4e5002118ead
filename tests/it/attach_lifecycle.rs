//! keyfall's life on an app's database (issue 19): attach and detach never
//! keep the app's traffic waiting behind them; detach keeps keyfall's
//! history and attach resumes it; the mapping belongs to the database, so
//! one config file serves databases with different tables.

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::cli::{Run, keyfall, keyfall_with};
use crate::support::TestDb;

/// An app whose tables are not keyfall's names: no `updated_at`, its users
/// point at their tenant by `tenant_id`.
const APP: &str = "
CREATE TABLE tenant (id bigserial PRIMARY KEY, slug text NOT NULL UNIQUE, name text NOT NULL,
                     status text NOT NULL DEFAULT 'active');
CREATE TABLE member (id bigserial PRIMARY KEY, email text NOT NULL, role text NOT NULL DEFAULT 'owner',
                     is_superuser boolean NOT NULL DEFAULT false, is_active boolean NOT NULL DEFAULT true,
                     tenant_id bigint REFERENCES tenant (id));
CREATE TABLE app_settings (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES tenant (id),
                           integration_type text NOT NULL, config jsonb NOT NULL DEFAULT '{}',
                           is_active boolean NOT NULL DEFAULT true, created_at timestamptz NOT NULL DEFAULT now(),
                           UNIQUE (account_id, integration_type));
INSERT INTO tenant (slug, name) VALUES ('acme', 'Acme'), ('globex', 'Globex');
INSERT INTO member (email, role, is_superuser, tenant_id) VALUES ('ops@acme.test', 'developer', true, 1),
                                                                ('bob@globex.test', 'owner', false, 2);
INSERT INTO app_settings (account_id, integration_type, config)
VALUES (1, 'openai', '{\"model\": \"gpt-4o\"}'), (2, 'openai', '{\"model\": \"gpt-4o-mini\"}');
";

async fn app_db() -> TestDb {
    let db = TestDb::bare().await;
    let mut conn = db.raw().await;
    sqlx::raw_sql(APP).execute(&mut conn).await.unwrap();
    db
}

fn with_config(db: &TestDb, config: &std::path::Path, args: &[&str]) -> Run {
    let url = db.url();
    let config = config.to_str().unwrap();
    let all: Vec<&str> =
        ["--config", config, "--database-url", url.as_str()].into_iter().chain(args.iter().copied()).collect();
    keyfall_with(&all, None, &[])
}

async fn scalar_i64(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.raw().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut conn).await.unwrap()
}

/// keyfall's triggers on the app's tables, its event triggers, its views.
async fn touching_the_app(db: &TestDb) -> Vec<String> {
    let mut conn = db.raw().await;
    sqlx::query_scalar(
        "SELECT 'trigger ' || tg.tgname || ' on ' || tg.tgrelid::regclass::text
           FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
          WHERE NOT tg.tgisinternal AND n.nspname = 'keyfall' AND cn.nspname <> 'keyfall'
         UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger WHERE evtname LIKE 'keyfall%'
         UNION ALL SELECT 'view ' || v FROM unnest(ARRAY['keyfall.accounts', 'keyfall.users', 'keyfall.integration_settings']) v
                    WHERE to_regclass(v) IS NOT NULL
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn one_config_file_serves_databases_with_different_mappings() {
    let demo = TestDb::demo().await;
    let app = app_db().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    // The config names the app's settings table only, and says it has no
    // updated_at: the rest is detected in the database attach runs on.
    let text = "label = \"any\"\n\n[mapping.settings]\ntable = \"app_settings\"\ncolumns = { updated_at = false }\n";
    std::fs::write(&config, text).unwrap();

    let run = with_config(&app, &config, &["attach", "--yes"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("public.app_settings") && run.stdout.contains("no updated_at"), "{}", run.stdout);
    assert!(run.stdout.contains("updated_at = false"), "attach prints the mapping to keep: {}", run.stdout);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text, "attach wrote the config file");
    let accounts: String = {
        let mut conn = app.raw().await;
        sqlx::query_scalar("SELECT spec -> 'accounts' ->> 'table' FROM keyfall.mapping")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(accounts, "tenant", "the accounts table is detected from the settings table's foreign key");

    // Every command, on either database, with the same config and no flag
    // about tables, uses the mapping installed where it runs.
    for (db, account, model) in [(&app, "acme", "gpt-4o"), (&demo, "aws-admin", "gpt-4o")] {
        let run = with_config(db, &config, &["get", account, "openai", "--json"]);
        assert_eq!(run.code, 0, "{}: {}", db.url(), run.stderr);
        assert!(run.stdout.contains(model), "{}", run.stdout);
        for args in [vec!["report"], vec!["audit"], vec!["lint"]] {
            let run = with_config(db, &config, &args);
            assert!(run.code == 0 || run.code == 1, "{args:?} on {}: {}", db.url(), run.stderr);
            assert!(!run.stderr.contains("[mapping]"), "{}", run.stderr);
        }
    }
    // Attach on the demo with that config would install the config's
    // settings table there: it does not fit, and nothing changes.
    let run = with_config(&demo, &config, &["attach", "--yes"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("app_settings"), "{}", run.stderr);
    let run = with_config(&demo, &config, &["get", "aws-admin", "openai"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test]
async fn detach_keeps_the_history_and_attach_resumes_it() {
    let db = app_db().await;
    let run = keyfall(&db, &["attach", "--yes"], None);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let printed = run.stdout[run.stdout.find("[mapping").expect("the mapping printed")..].to_string();
    let mut conn = db.raw().await;
    sqlx::raw_sql(
        "UPDATE app_settings SET config = '{\"model\": \"o3\"}' WHERE account_id = 1;
         INSERT INTO keyfall.fallback_chain (account_slug, position) VALUES ('acme', 10)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let attached = touching_the_app(&db).await;
    assert!(attached.iter().any(|o| o.starts_with("trigger ")), "{attached:?}");
    let audited = scalar_i64(&db, "SELECT count(*) FROM keyfall.audit_log").await;
    assert!(audited >= 1);

    // No terminal, no --yes: nothing happens.
    let run = keyfall(&db, &["detach"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(touching_the_app(&db).await, attached);

    let run = keyfall(&db, &["detach", "--yes"], None);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(touching_the_app(&db).await.is_empty(), "{:?}", touching_the_app(&db).await);
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM keyfall.audit_log WHERE action <> 'detach'").await, audited);
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM keyfall.audit_log WHERE action = 'detach'").await, 1);
    // keyfall's own DDL is no gap of someone else's.
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM keyfall.audit_log WHERE action LIKE 'capture%'").await, 0);
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM keyfall.fallback_chain WHERE account_slug = 'acme'").await, 1);
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM keyfall.detached").await, 1);
    let detach_id = scalar_i64(&db, "SELECT max(id) FROM keyfall.audit_log").await;

    // The app goes on, unrecorded; reading commands say why they stop.
    sqlx::raw_sql("UPDATE app_settings SET config = '{\"model\": \"o4\"}' WHERE account_id = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(scalar_i64(&db, "SELECT max(id) FROM keyfall.audit_log").await, detach_id);
    // Even where keyfall's schema is older than this keyfall (its newest
    // migration not applied), a detached database says it is detached.
    sqlx::raw_sql(
        "DELETE FROM keyfall._sqlx_migrations WHERE version = (SELECT max(version) FROM keyfall._sqlx_migrations)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for args in [vec!["report"], vec!["audit"], vec!["get", "acme", "openai"]] {
        let run = keyfall(&db, &args, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("keyfall is detached from") && run.stderr.contains("`keyfall attach` resumes it"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // `keyfall migrate` leaves it detached, and makes no demo tables here.
    let run = keyfall(&db, &["migrate"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("still detached"), "{}", run.stdout);
    assert!(touching_the_app(&db).await.is_empty());
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM pg_class WHERE relname = 'integration_settings'").await, 0);
    // An app migration can run now: keyfall holds nothing on its tables.
    sqlx::raw_sql("ALTER TABLE app_settings ADD COLUMN note text").execute(&mut conn).await.unwrap();

    // Attach again with the mapping attach printed, as a user keeps it.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &printed).unwrap();
    let run = with_config(&db, &config, &["attach", "--yes"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("attached again"), "{}", run.stdout);
    assert_eq!(touching_the_app(&db).await, attached, "everything is back");
    let attach_id = scalar_i64(&db, "SELECT max(id) FROM keyfall.audit_log WHERE action = 'attach'").await;
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM keyfall.audit_log WHERE action LIKE 'capture%'").await, 0);
    assert!(attach_id > detach_id, "the same log goes on");
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM keyfall.fallback_chain WHERE account_slug = 'acme'").await, 1);
    let run = keyfall(&db, &["audit"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("keyfall detached by") && run.stdout.contains("nothing recorded from here"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("keyfall attached again by") && run.stdout.contains("were not recorded"),
        "{}",
        run.stdout
    );
    // And new changes are recorded again.
    sqlx::raw_sql("UPDATE app_settings SET config = '{\"model\": \"o5\"}' WHERE account_id = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(scalar_i64(&db, "SELECT max(id) FROM keyfall.audit_log").await > attach_id);

    // Detach, attach with no config at all: the mapping kept is used.
    let run = keyfall(&db, &["detach", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = keyfall(&db, &["attach", "--yes"], None);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(touching_the_app(&db).await, attached);

    // --purge says what it would lose, and asks.
    let run = keyfall(&db, &["detach", "--purge"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("audit entries") && run.stdout.contains("operator"), "{}", run.stdout);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    let run = keyfall(&db, &["detach", "--purge", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(touching_the_app(&db).await.is_empty());
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'keyfall'").await, 0);
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM app_settings").await, 2, "the app's rows stay");
}

/// An app transaction left open on the settings table (`idle in
/// transaction`): its pid.
async fn hold_a_row(db: &TestDb) -> (sqlx::PgConnection, i32) {
    let mut holder = db.raw().await;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut holder).await.unwrap();
    sqlx::raw_sql("BEGIN; UPDATE app_settings SET is_active = is_active WHERE account_id = 1")
        .execute(&mut holder)
        .await
        .unwrap();
    (holder, pid)
}

/// Until a session waits for `pid` (keyfall, in the lock queue).
async fn waiting_behind(conn: &mut sqlx::PgConnection, pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))")
                .bind(pid)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "nothing ever waited for pid {pid}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn_keyfall(db: &TestDb, args: &[&str]) -> tokio::task::JoinHandle<Run> {
    let url = db.url();
    let args: Vec<String> = ["--database-url", url.as_str()].iter().chain(args).map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        keyfall_with(&args, None, &[])
    })
}

#[tokio::test]
async fn attach_behind_an_open_app_transaction_never_queues_the_app() {
    let db = app_db().await;
    let (holder, pid) = hold_a_row(&db).await;
    let started = Instant::now();
    let attach = spawn_keyfall(&db, &["attach", "--yes"]);
    // While attach waits, the app writes another row: it is held up at
    // most one lock wait, never until attach is done.
    let mut app = db.raw().await;
    waiting_behind(&mut app, pid).await;
    let write = Instant::now();
    sqlx::query("UPDATE app_settings SET config = config || '{\"x\": 1}' WHERE account_id = 2")
        .execute(&mut app)
        .await
        .unwrap();
    let took = write.elapsed();
    assert!(took < Duration::from_secs(4), "the app's write waited {took:?}");
    assert!(!attach.is_finished(), "attach was already done: the write proves nothing");

    let run = attach.await.unwrap();
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    let named = format!("pid {pid} (idle in transaction");
    assert!(run.stderr.contains("waits for") && run.stderr.contains(&named), "{}", run.stderr);
    let last = run.stderr.trim().lines().last().unwrap();
    assert!(last.contains("gave up") && last.contains(&named) && last.contains("UPDATE app_settings"), "{last}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // keyfall's schema may be migrated; nothing is on the app's tables.
    let left: Vec<String> =
        touching_the_app(&db).await.into_iter().filter(|o| !o.starts_with("event trigger")).collect();
    assert!(left.is_empty(), "a failed attach left {left:?}");
    holder.close().await.unwrap();
}

#[tokio::test]
async fn attach_and_detach_go_through_once_the_app_transaction_ends() {
    let db = app_db().await;
    let (mut holder, pid) = hold_a_row(&db).await;
    let attach = spawn_keyfall(&db, &["attach", "--yes"]);
    let mut watcher = db.raw().await;
    waiting_behind(&mut watcher, pid).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    let run = attach.await.unwrap();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&format!("waits for pid {pid}")), "{}", run.stderr);
    assert!(!touching_the_app(&db).await.is_empty());

    // Detach, behind a console-like reader of keyfall's view that stays
    // in its transaction, gives up naming it.
    let mut reader = db.raw().await;
    let reader_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut reader).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM keyfall.integration_settings").execute(&mut reader).await.unwrap();
    let run = spawn_keyfall(&db, &["detach", "--yes"]).await.unwrap();
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("pid {reader_pid} (idle in transaction")), "{}", run.stderr);
    assert!(!touching_the_app(&db).await.is_empty(), "a failed detach changes nothing");
    sqlx::raw_sql("ROLLBACK").execute(&mut reader).await.unwrap();
    let run = keyfall(&db, &["detach", "--yes"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(touching_the_app(&db).await.is_empty());
}

/// Issue 19 point 9: `attach --dry-run` names every trigger attach then
/// installs on the app's tables, on the line of its table, and every event
/// trigger it installs in the database — read back from the catalog.
#[tokio::test]
async fn the_dry_run_names_every_trigger_attach_installs() {
    let db = app_db().await;
    let dry = keyfall(&db, &["attach", "--dry-run", "--no-config"], None);
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    let run = keyfall(&db, &["attach", "--yes", "--no-config"], None);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let mut conn = db.raw().await;
    let installed: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE NOT t.tgisinternal AND c.relname IN ('tenant', 'member', 'app_settings') ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(installed.len() >= 8, "{installed:?}");
    for (table, trigger) in &installed {
        let named = dry.stdout.split("\n  on ").any(|block| {
            let head = block.lines().next().unwrap_or_default();
            head.contains(&format!("public.{table}")) && block.contains(trigger.as_str())
        });
        assert!(named, "the dry run does not name {trigger} on {table}:\n{}", dry.stdout);
    }
    let events: Vec<String> =
        sqlx::query_scalar("SELECT evtname::text FROM pg_event_trigger WHERE evtname LIKE 'keyfall%' ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for event in &events {
        assert!(
            dry.stdout.contains(event.as_str()),
            "the dry run does not name event trigger {event}:\n{}",
            dry.stdout
        );
    }
}

/// keyfall's DDL watchers work quietly: the app's migration (here psql, as
/// a person would run it) hears nothing of keyfall's own views — before,
/// each ALTER TABLE on a mapped table printed "view … does not exist,
/// skipping" three times.
#[tokio::test]
async fn an_app_ddl_on_a_mapped_table_hears_no_notice_from_keyfall() {
    let db = TestDb::new().await;
    let touching = touching_the_app(&db).await;
    assert!(touching.iter().any(|t| t == "event trigger keyfall_ddl_start"), "the watchers are in place: {touching:?}");
    // psql, pointed at the test's database by the libpq variables the
    // Django runner sets.
    let libpq = crate::django::kf_command(&db.target, &[]);
    let mut psql = std::process::Command::new("psql");
    for (k, v) in libpq.get_envs() {
        match v {
            Some(v) => psql.env(k, v),
            None => psql.env_remove(k),
        };
    }
    let out = psql
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .args(["-c", "ALTER TABLE integration_settings ADD COLUMN note text"])
        .args(["-c", "ALTER TABLE integration_settings DROP COLUMN note"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("NOTICE"), "the app's migration hears keyfall's view work: {stderr}");
    // The watchers did run: the views are there again and keyfall answers.
    assert!(touching_the_app(&db).await.iter().any(|t| t == "view keyfall.integration_settings"));
    let run = keyfall(&db, &["report", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
