//! Test support: one PostgreSQL server per test process, found by the same
//! code as the app (`DATABASE_URL`, else a local server, else a private
//! cluster), and a fresh database per test, dropped afterwards.
//!
//! The tests' private cluster is not keyfall's own (`~/.local/share/keyfall`,
//! which holds your keys): it lives in `<target>/keyfall-test-cluster`, and
//! lets any role in over its private socket (`cluster::Access::
//! AnyRoleOnSocket`), because the tests log in as the roles they create.
//! `KEYFALL_TEST_CLUSTER=1` uses it even when a server is running (what a
//! machine with PostgreSQL installed and none running does).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use keyfall::store::{Store, Target, connect};
use sqlx::{AssertSqlSafe, ConnectOptions};

static SERVER: OnceLock<Target> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The server tests run against; the first caller finds (or starts) it.
/// The tests that add a provider run this test binary again with
/// `KEYFALL_TEST_PROVIDER=1`; the registry then holds it here too, as it
/// does in the keyfall binary they start.
pub fn registry_from_env() {
    if std::env::var_os(keyfall::domain::registry::TEST_PROVIDER_ENV).is_some_and(|v| v == "1") {
        keyfall::domain::registry::enable_test_provider();
    }
}

async fn server() -> Target {
    registry_from_env();
    if let Some(t) = SERVER.get() {
        return t.clone();
    }
    let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty());
    let dir = test_cluster_dir();
    let access = keyfall::store::cluster::Access::AnyRoleOnSocket;
    let forced = url.is_none() && std::env::var_os("KEYFALL_TEST_CLUSTER").is_some_and(|v| !v.is_empty() && v != "0");
    let target = if forced {
        connect::private_target(&dir, access, &[]).await
    } else {
        connect::discover_with(url.as_deref(), &dir, access).await
    }
    .expect("no PostgreSQL for the tests: set DATABASE_URL or install PostgreSQL");
    sweep_stale(&target).await;
    SERVER.get_or_init(|| target).clone()
}

/// `<target>/keyfall-test-cluster`: the tests' private cluster, apart from
/// keyfall's own.
fn test_cluster_dir() -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => repo.join(dir), // an absolute dir replaces the repo
        None => repo.join("target"),
    };
    target.join("keyfall-test-cluster")
}

/// Drop databases left by test processes that are gone (a killed run).
async fn sweep_stale(target: &Target) {
    let Ok(mut admin) = target.options.clone().database("postgres").connect().await else { return };
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'keyfall_test_%'")
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
    for name in names {
        let pid = name.trim_start_matches("keyfall_test_").split('_').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", keyfall::store::quote_ident(&name));
            let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await;
        }
    }
}

/// A migrated, empty database of its own; dropped when this goes out of scope.
pub struct TestDb {
    pub store: Store,
    pub target: Target,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let server = server().await;
        let name = format!("keyfall_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let target = server.with_database(&name);
        let store = Store::open_demo(&target).await.expect("open test database");
        TestDb { store, target }
    }

    /// A fresh, empty database with nothing of keyfall's in it (an app's
    /// database before `keyfall attach`). `store` is connected but verifies
    /// nothing.
    pub async fn bare() -> TestDb {
        let server = server().await;
        let name = format!("keyfall_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let target = server.with_database(&name);
        let store = Store::connect_creating(&target).await.expect("create test database");
        TestDb { store, target }
    }

    /// A fresh database with the demo loaded. Its store acts as
    /// dev@igny8.com (a developer superuser of aws-admin) for previews, as
    /// the CLI's does for its operator.
    pub async fn demo() -> TestDb {
        let mut db = TestDb::new().await;
        db.store.load_demo().await.expect("load demo");
        db.store = db.store.clone().with_operator(Some("dev@igny8.com".into()));
        db
    }

    /// A URL for this database, for running the binary.
    pub fn url(&self) -> String {
        self.target.options.to_url_lossy().to_string()
    }

    /// A plain connection, as psql or the Django app would have: the app's
    /// tables in `public` first, keyfall's own (audit log, chain, policy)
    /// found after them.
    pub async fn raw(&self) -> sqlx::PgConnection {
        self.target.options.clone().options([("search_path", "public, keyfall")]).connect().await.expect("connect")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let options = self.target.options.clone();
        let name = self.target.database().to_string();
        // Drop runs inside the test's runtime: do the async cleanup on a
        // thread of its own.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut admin = options.database("postgres").connect().await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", keyfall::store::quote_ident(&name));
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await.ok()
            })
        });
        let _ = handle.join();
    }
}

/// Run console commands through the runtime's executor, and the commands
/// their replies call for, until none are left. Bounded: a command that
/// takes longer than a minute, or replies that keep asking for more work
/// (a loop), fail the test instead of hanging it.
pub async fn drive(store: &Store, model: &mut keyfall::app::Model, cmds: Vec<keyfall::app::Cmd>) {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);
    let mut queue = std::collections::VecDeque::from(cmds);
    let mut ran = 0;
    while let Some(cmd) = queue.pop_front() {
        ran += 1;
        assert!(ran <= 10_000, "the console keeps asking for work: {cmd:?}");
        let what = format!("{cmd:?}");
        let msg = tokio::time::timeout(LIMIT, keyfall::tui::exec::run(store, cmd))
            .await
            .unwrap_or_else(|_| panic!("{what} took longer than {LIMIT:?}"));
        queue.extend(keyfall::app::update(model, msg));
    }
}

/// A property test's world written into a test database, replacing what is
/// there: the accounts `slugs` (slug = name), the fallback chain (slugs that
/// may name no account), and the settings (account index into `slugs`,
/// type, config JSON, active), the last one given for an (account, type)
/// winning. The account ids by slug, and each setting written with its id.
pub async fn load_world<'a>(
    conn: &mut sqlx::PgConnection,
    slugs: &[String],
    chain: &[String],
    settings: &[(usize, &'a str, &'a str, bool)],
) -> (std::collections::HashMap<String, i64>, Vec<(i64, usize, &'a str, &'a str, bool)>) {
    sqlx::raw_sql("DELETE FROM keyfall.fallback_chain; TRUNCATE accounts RESTART IDENTITY CASCADE;")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO accounts (slug, name) SELECT s, s FROM unnest($1::text[]) s")
        .bind(slugs)
        .execute(&mut *conn)
        .await
        .unwrap();
    let ids: std::collections::HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT slug, id FROM accounts")
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .into_iter()
            .collect();
    sqlx::query(
        "INSERT INTO keyfall.fallback_chain (position, account_slug)
         SELECT p, s FROM unnest($1::text[]) WITH ORDINALITY AS c(s, p)",
    )
    .bind(chain)
    .execute(&mut *conn)
    .await
    .unwrap();
    let mut unique = std::collections::HashMap::new();
    for &(a, t, c, active) in settings {
        unique.insert((a, t), (c, active));
    }
    let mut written = Vec::new();
    for ((a, t), (c, active)) in unique {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO integration_settings (account_id, integration_type, config, is_active)
             VALUES ($1, $2, $3::text::jsonb, $4) RETURNING id",
        )
        .bind(ids[&slugs[a]])
        .bind(t)
        .bind(c)
        .bind(active)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        written.push((id, a, t, c, active));
    }
    (ids, written)
}

/// How long a child process of a test may run before it is taken for hung:
/// a guard against a test that never ends, far above any command's time
/// (not a speed assertion).
pub const HUNG: std::time::Duration = std::time::Duration::from_secs(300);

#[path = "../common/child.rs"]
mod child;
pub use child::output_within;
