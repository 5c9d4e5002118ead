//! The only module that speaks SQL. Its API takes and returns domain types;
//! sqlx errors are mapped once into `StoreError`. Every query binds its
//! parameters; every multi-statement write is one transaction that names its
//! actor with `SET LOCAL keyfall.actor` for the audit trigger.

pub mod answers;
pub mod blast;
pub mod cluster;
pub mod connect;
pub mod history;
pub mod listen;
pub mod mapping;
mod queries;
mod report;
mod scan;
mod suggest;
pub use suggest::Completable;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

pub use connect::{Source, Target};
pub use mapping::Mapping;
pub use queries::{AuditFilter, ImportItem, LintData, SettingRef, WriteOutcome};
pub use report::ReportRow;

use crate::domain::change::Conflict;

/// Connections of the console's (and the tests') pool.
const POOL_SIZE: u32 = 8;

/// keyfall's migrations, recorded in `keyfall._sqlx_migrations` so nothing of
/// keyfall's lands in the app's schema.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("./migrations");
    m.dangerous_set_table_name("keyfall._sqlx_migrations");
    m.create_schema("keyfall");
    m
}

/// The highest version recorded where keyfall's migration 1 is recorded
/// with another checksum than this keyfall's: a pre-release schema (its
/// migrations 1–15, replaced by the 0.1.0 baseline), or one this keyfall
/// cannot tell from it. `None` where migration 1 is this keyfall's or not
/// recorded at all.
fn pre_release(m: &sqlx::migrate::Migrator, applied: &[(i64, Vec<u8>)]) -> Option<i64> {
    let first = m.iter().find(|m| m.version == 1)?;
    let (_, recorded) = applied.iter().find(|(v, _)| *v == 1)?;
    if recorded[..] == first.checksum[..] {
        return None;
    }
    applied.iter().map(|(v, _)| *v).max()
}

/// What to do with a pre-release schema, one line.
fn pre_release_message(db: &str, last: i64) -> String {
    format!(
        "{db} has a pre-release keyfall schema (migrations 1–{last}, before keyfall {}): it is not migrated in place;          run `keyfall detach --purge` (keyfall's audit log there goes with it), then `keyfall attach`",
        env!("CARGO_PKG_VERSION")
    )
}

/// Who a session is, as the database says (`keyfall_whoami`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Identity {
    /// The database login (`session_user`).
    pub login: String,
    /// A database superuser may act as any app user.
    pub superuser: bool,
    /// The app users this login may act as (`keyfall operator add`).
    pub emails: Vec<String>,
}

impl Identity {
    pub fn may_act_as(&self, email: &str) -> bool {
        self.superuser || self.emails.iter().any(|e| e.eq_ignore_ascii_case(email))
    }
}

/// What keyfall finds of itself in a database.
#[derive(Debug, Clone, PartialEq)]
pub enum Installed {
    /// No `keyfall` schema: nothing of keyfall's is here.
    Nothing,
    /// keyfall's first layout (everything in `public`): `keyfall migrate`
    /// moves it into the `keyfall` schema, audit log included.
    Legacy,
    /// keyfall's objects exist but this keyfall has newer migrations.
    Outdated,
    /// keyfall's objects made by a pre-release keyfall (before 0.1.0, whose
    /// baseline migration replaced migrations 1–15): its migration 1 is
    /// recorded with another checksum. Not migrated in place: `keyfall
    /// detach --purge`, then `keyfall attach` (the message says so).
    PreRelease {
        /// The highest migration version recorded there.
        last: i64,
    },
    /// Current; the mapping installed, if any.
    Current { mapping: Option<Box<Mapping>> },
    /// Current, detached by `keyfall detach`: keyfall's own data kept, its
    /// triggers and views gone; `attach` resumes with the mapping kept.
    Detached { since: DateTime<Utc>, by: String, mapping: Option<Box<Mapping>> },
}

/// What `detach --purge` would lose.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptData {
    pub audit_entries: i64,
    pub operators: i64,
    pub chain_entries: i64,
    pub functions: i64,
}

/// One wait of attach, detach or migrate behind a lock: a try waits at most
/// this long (so the app's statements queued behind keyfall's wait no
/// longer), then keyfall lets go and tries again.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Tries before giving up (about 10 s in all, with the pauses between).
const LOCK_TRIES: u32 = 4;

/// What keyfall does under its bounded lock waits.
#[derive(Debug, Clone, Copy)]
enum Locked<'a> {
    Migrate,
    Attach(&'a Mapping),
    Detach,
    Purge,
}

impl Locked<'_> {
    fn name(&self) -> &'static str {
        match self {
            Locked::Migrate => "migrate",
            Locked::Attach(_) => "attach",
            Locked::Detach | Locked::Purge => "detach",
        }
    }
}

/// One wait behind a lock that attach, detach or migrate lets go of before
/// trying again: what the caller is told (the CLI says it on stderr), so
/// `store` itself prints nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct LockWait {
    /// `attach`, `detach` or `migrate`.
    pub work: &'static str,
    /// The sessions it waits for: pid, state and the start of the query.
    pub who: String,
    /// The pause before the next try.
    pub retry_in: Duration,
    /// The next try's number, of `tries`.
    pub next_try: u32,
    pub tries: u32,
}

impl std::fmt::Display for LockWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} waits for {}; trying again in {:.2} s (try {} of {})",
            self.work,
            self.who,
            self.retry_in.as_secs_f64(),
            self.next_try,
            self.tries
        )
    }
}

/// Who hears of lock waits ([`Store::on_lock_wait`]).
pub type LockWaits = std::sync::Arc<dyn Fn(&LockWait) + Send + Sync>;

/// pid, state, transaction start, query: a row of `pg_stat_activity`.
type BlockerRow = (i32, String, Option<DateTime<Utc>>, String);

/// A session another one waits for (`pg_blocking_pids`).
#[derive(Debug, Clone, PartialEq)]
struct Blocker {
    pid: i32,
    state: String,
    since: Option<DateTime<Utc>>,
    query: String,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.state.is_empty() { "state unknown" } else { self.state.as_str() };
        write!(f, "pid {} ({}", self.pid, crate::domain::text::visible_short(state, 40))?;
        if let Some(t) = self.since {
            write!(f, ", transaction since {}", t.format("%H:%M:%S UTC"))?;
        }
        let query = query_start(&self.query);
        if !query.is_empty() {
            write!(f, ": {query}")?;
        }
        write!(f, ")")
    }
}

/// The start of a session's query as keyfall may show it: cut before its
/// first literal (a quoted string or a dollar-quoted body could hold a key)
/// and shortened.
fn query_start(query: &str) -> String {
    let mut end = query.len();
    let bytes = query.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        let dollar_quote = *b == b'$' && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if *b == b'\'' || dollar_quote {
            end = i;
            break;
        }
    }
    let head = query[..end].split_whitespace().collect::<Vec<_>>().join(" ");
    let cut = end < query.len();
    let shown = crate::domain::text::visible_short(&head, 60);
    if cut && !shown.ends_with('…') { format!("{shown} …") } else { shown }
}

fn describe_blockers(blockers: &[Blocker]) -> String {
    match blockers {
        [] => "another session (gone before keyfall could see which)".into(),
        many => many.iter().map(Blocker::to_string).collect::<Vec<_>>().join(", "),
    }
}

/// How one try of bounded work ended badly.
enum Failed {
    /// A lock not granted in time (`lock_timeout`), or the bounded LOCK
    /// statement cut short (`statement_timeout`).
    LockWait,
    Other(sqlx::Error),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => Failed::LockWait,
            _ => Failed::Other(e),
        }
    }
}

/// What `keyfall_preflight()` answers.
#[derive(serde::Deserialize)]
struct Preflight {
    migrations: Vec<(i64, String)>,
    mapping: Option<Value>,
    problems: Vec<String>,
    whoami: Identity,
    /// The registry's fingerprint loaded (the baseline's registry tables): `""` none,
    /// absent or null where this login may not read it.
    #[serde(default)]
    registry: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(Box<Conflict>),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(String),
    /// The database refused: a permission, a read-only session, a timeout.
    #[error("{0}")]
    Refused(String),
    /// keyfall's objects are missing, outdated, or do not fit the app.
    #[error("{0}")]
    NotInstalled(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // Message only: the DETAIL of a constraint error can quote the
                // row, and a row can hold a key.
                let message = db.message().to_string();
                match code.as_str() {
                    "25006" => StoreError::Refused(format!("read-only session: {message}")),
                    "42501" if message.starts_with("denied by the database") || message.contains("may not act as") => {
                        StoreError::Refused(message)
                    }
                    "42501" => StoreError::Refused(format!("not allowed by the database: {message}")),
                    "57P01" | "57P02" | "57P03" | "53300" => StoreError::Unavailable(message),
                    c if c.starts_with("08") => StoreError::Unavailable(message),
                    _ => StoreError::Database(message),
                }
            }
            sqlx::Error::Io(e) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Tls(e) => StoreError::Unavailable(format!("TLS: {e}")),
            sqlx::Error::PoolTimedOut => StoreError::Unavailable("timed out waiting for the database to answer".into()),
            sqlx::Error::PoolClosed => StoreError::Unavailable("connection pool closed".into()),
            sqlx::Error::Protocol(p) => StoreError::Unavailable(format!("protocol: {p}")),
            sqlx::Error::Configuration(c) => StoreError::Invalid(format!("connection settings: {c}")),
            sqlx::Error::Migrate(m) => StoreError::Database(format!("migration: {m}")),
            other => StoreError::Database(other.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    label: String,
    /// The app's settings table has an `updated_at` keyfall's writes set
    /// (Django's `auto_now` has no database default).
    touch_updated_at: bool,
    /// The rule set resolution follows (config `[resolution]`).
    rules: crate::domain::resolve::Rules,
    /// The app user this session acts as, when the login may (previews
    /// write as them before rolling back).
    pub(crate) operator: Option<String>,
    /// Told of each wait behind a lock (attach, detach, migrate); nobody
    /// when unset.
    lock_waits: Option<LockWaits>,
    /// A subject's row read with the start-up check
    /// ([`Store::check_with_subject`]), for the one `subject` call that asks
    /// the same; taken by it.
    prefetched: std::sync::Arc<std::sync::Mutex<Option<Prefetched>>>,
}

/// The row `subject(email, function)` reads, read ahead.
struct Prefetched {
    email: String,
    function: String,
    row: sqlx::postgres::PgRow,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's Debug would print its connect options, password included.
        f.debug_struct("Store").field("label", &self.label).finish_non_exhaustive()
    }
}

impl Store {
    /// Connect to an existing database. One that does not exist is an
    /// error (`Unavailable`, exit 3), never created: only `demo`, `migrate`
    /// and the private cluster's first run create databases.
    pub async fn connect(target: &Target) -> Result<Store, StoreError> {
        Store::pool_for(target, target.options.clone(), POOL_SIZE).await
    }

    /// `connect` for one command line: a single connection, reused by every
    /// query. (A pool of several hands the next query a second connection
    /// while the first is still being returned — a second TLS set-up in a
    /// 20 ms command.) Nothing in a command holds a transaction while it
    /// queries the pool.
    pub async fn connect_single(target: &Target) -> Result<Store, StoreError> {
        Store::pool_for(target, target.options.clone(), 1).await
    }

    /// Connect, creating the database first when the server says it does not
    /// exist (`demo`, `migrate`, the private cluster).
    pub async fn connect_creating(target: &Target) -> Result<Store, StoreError> {
        ensure_database(target).await?;
        Store::pool_for(target, target.options.clone(), POOL_SIZE).await
    }

    /// A fresh store for keyfall's own demo tables: the database created if
    /// missing, the demo tables, the migrations, the demo mapping. What
    /// `keyfall demo` and the tests start from.
    pub async fn open_demo(target: &Target) -> Result<Store, StoreError> {
        Store::open_demo_telling(target, None).await
    }

    /// `open_demo`, telling `lock_waits` of each wait behind a lock.
    pub async fn open_demo_telling(target: &Target, lock_waits: Option<LockWaits>) -> Result<Store, StoreError> {
        let mut store = Store::connect_creating(target).await?;
        store.lock_waits = lock_waits;
        store.create_demo_tables().await?;
        store.migrate().await?;
        store.install_mapping(&Mapping::demo()).await?;
        Ok(store.with_mapping(&Mapping::demo()))
    }

    /// The same store, telling `tell` of each wait behind a lock (attach,
    /// detach, migrate let go and try again: who they wait for).
    pub fn on_lock_wait(mut self, tell: LockWaits) -> Store {
        self.lock_waits = Some(tell);
        self
    }

    /// The same store, writing as `mapping` requires.
    pub fn with_mapping(mut self, mapping: &Mapping) -> Store {
        self.touch_updated_at = mapping.settings.columns.updated_at.is_some();
        self
    }

    /// The same store, acting as the app user `email` (already checked
    /// against the login's identities by `whoami`).
    pub fn with_operator(mut self, email: Option<String>) -> Store {
        self.operator = email;
        self
    }

    /// Who this session is, as the database says: the login, whether it is
    /// a database superuser, and the app users it may act as.
    pub async fn whoami(&self) -> Result<Identity, StoreError> {
        let doc: Value = sqlx::query_scalar("SELECT keyfall_whoami()").fetch_one(&self.pool).await?;
        serde_json::from_value(doc).map_err(|e| StoreError::Database(format!("unexpected data shape: {e}")))
    }

    /// Map a database login to an app user (`keyfall operator add`); the
    /// schema owner's job, audited.
    pub async fn operator_add(&self, login: &str, email: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user: Option<String> =
            sqlx::query_scalar("SELECT email FROM users WHERE lower(email) = lower($1) ORDER BY id LIMIT 1")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(user) = user else {
            return Err(StoreError::NotFound(format!(
                "unknown user {:?}",
                crate::domain::text::visible_short(email, 120)
            )));
        };
        let role: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)")
            .bind(login)
            .fetch_one(&mut *tx)
            .await?;
        if !role {
            return Err(StoreError::NotFound(format!(
                "no database role {:?} (create it first: CREATE ROLE … LOGIN)",
                crate::domain::text::visible_short(login, 80)
            )));
        }
        let added = sqlx::query("INSERT INTO operators (login, email) VALUES ($1, lower($2)) ON CONFLICT DO NOTHING")
            .bind(login)
            .bind(&user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(added > 0)
    }

    pub async fn operator_remove(&self, login: &str, email: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let removed = sqlx::query("DELETE FROM operators WHERE login = $1 AND email = lower($2)")
            .bind(login)
            .bind(email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// Every login → app user mapping.
    pub async fn operator_list(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT login, email FROM operators ORDER BY login, email").fetch_all(&self.pool).await?)
    }

    /// The same store, resolving by `rules`.
    pub fn with_rules(mut self, rules: crate::domain::resolve::Rules) -> Store {
        self.rules = rules;
        self
    }

    pub fn rules(&self) -> &crate::domain::resolve::Rules {
        &self.rules
    }

    /// What of keyfall is installed here.
    pub async fn installed(&self) -> Result<Installed, StoreError> {
        let has_schema: bool = sqlx::query_scalar(
            "SELECT to_regnamespace('keyfall') IS NOT NULL AND to_regclass('keyfall._sqlx_migrations') IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        if !has_schema {
            let legacy: bool = sqlx::query_scalar(
                "SELECT to_regclass('public._sqlx_migrations') IS NOT NULL
                        AND to_regclass('public.audit_log') IS NOT NULL
                        AND to_regclass('public.fallback_chain') IS NOT NULL",
            )
            .fetch_one(&self.pool)
            .await?;
            return Ok(if legacy { Installed::Legacy } else { Installed::Nothing });
        }
        let applied: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM keyfall._sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?;
        let m = migrator();
        if let Some(last) = pre_release(&m, &applied) {
            return Ok(Installed::PreRelease { last });
        }
        let current = m.iter().all(|m| applied.iter().any(|(v, c)| *v == m.version && c[..] == m.checksum[..]))
            && self.registry_loaded().await?;
        let spec: Option<Value> =
            sqlx::query_scalar("SELECT spec FROM keyfall.mapping LIMIT 1").fetch_optional(&self.pool).await?;
        // Detached, whatever the state of the migrations (attach migrates).
        if spec.is_none()
            && let Some((since, by, kept)) = self.detached().await?
        {
            return Ok(Installed::Detached { since, by, mapping: mapping::from_sql(&kept).map(Box::new) });
        }
        if !current {
            return Ok(Installed::Outdated);
        }
        Ok(Installed::Current { mapping: spec.as_ref().and_then(mapping::from_sql).map(Box::new) })
    }

    /// Whether the registry loaded here is this keyfall's (its fingerprint,
    /// the baseline's registry tables; keyfall's migrations applied). A login that may not
    /// read it takes it as loaded: it could not load another.
    async fn registry_loaded(&self) -> Result<bool, StoreError> {
        let loaded: Result<Option<String>, sqlx::Error> =
            sqlx::query_scalar("SELECT fingerprint FROM keyfall.registry_state").fetch_optional(&self.pool).await;
        match loaded {
            Ok(fp) => Ok(fp.as_deref() == Some(crate::domain::registry::fingerprint().as_str())),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42501") => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Since when and by whom keyfall is detached here (whatever the state
    /// of its migrations); `None` where it is not.
    pub async fn detached_since(&self) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        Ok(self.detached().await?.map(|(since, by, _)| (since, by)))
    }

    /// When and by whom keyfall was detached here, and the mapping it kept;
    /// `None` where it is not (or this login may not read it).
    async fn detached(&self) -> Result<Option<(DateTime<Utc>, String, Value)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT detached_at, detached_by, spec FROM keyfall.detached
              WHERE to_regclass('keyfall.detached') IS NOT NULL
                AND has_table_privilege('keyfall.detached', 'SELECT')",
        )
        .fetch_optional(&self.pool)
        .await
        .or_else(|e| match e {
            // No such table (a pre-release keyfall's schema), or not this login's
            // to read: not known to be detached.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("42P01" | "42501")) => Ok(None),
            other => Err(other),
        })?)
    }

    /// What keyfall keeps of its own here: what `detach --purge` would
    /// lose.
    pub async fn kept_data(&self) -> Result<KeptData, StoreError> {
        let (audit_entries, operators, chain_entries, functions): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM keyfall.audit_log), (SELECT count(*) FROM keyfall.operators),
                    (SELECT count(*) FROM keyfall.fallback_chain), (SELECT count(*) FROM keyfall.ai_functions)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(KeptData { audit_entries, operators, chain_entries, functions })
    }

    /// The mapping installed, whatever the state of keyfall's migrations
    /// (`None` where keyfall has none here).
    pub async fn installed_mapping(&self) -> Result<Option<Mapping>, StoreError> {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('keyfall.mapping') IS NOT NULL").fetch_one(&self.pool).await?;
        if !exists {
            return Ok(None);
        }
        let spec: Option<Value> =
            sqlx::query_scalar("SELECT spec FROM keyfall.mapping LIMIT 1").fetch_optional(&self.pool).await?;
        Ok(spec.as_ref().and_then(mapping::from_sql))
    }

    /// Whether this login is a database superuser (only a superuser can
    /// install event triggers).
    pub async fn login_is_superuser(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), false)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// The installed mapping followed to the app's tables as they are now:
    /// a table or column renamed since attach is found again by its
    /// identity (the table oids and column numbers recorded at attach), as
    /// the event trigger follows it where a superuser attached. `None`
    /// where keyfall has no mapping here, or it cannot be followed.
    pub async fn followed_mapping(&self) -> Result<Option<Mapping>, StoreError> {
        let exists: bool = sqlx::query_scalar(
            "SELECT to_regclass('keyfall.mapping') IS NOT NULL
                    AND to_regprocedure('keyfall.keyfall_mapping_followed(jsonb,jsonb)') IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        if !exists {
            return Ok(None);
        }
        let spec: Result<Option<Option<Value>>, sqlx::Error> = sqlx::query_scalar(
            "SELECT keyfall.keyfall_mapping_followed(m.spec, m.places) FROM keyfall.mapping m
              WHERE m.places IS NOT NULL LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await;
        match spec {
            Ok(spec) => Ok(spec.flatten().as_ref().and_then(mapping::from_sql)),
            // Not this login's to run or read: nothing followed.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42501") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What does not fit in `mapping` on this database, one sentence each,
    /// by this keyfall's rules. Works before keyfall is installed (attach
    /// asks it first) and on an older install (its pending migrations
    /// applied in a transaction rolled back).
    pub async fn mapping_problems(&self, mapping: &Mapping) -> Result<Vec<String>, StoreError> {
        let recorded: bool = sqlx::query_scalar("SELECT to_regclass('keyfall._sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        let applied: Vec<i64> = if recorded {
            sqlx::query_scalar("SELECT version FROM keyfall._sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?
        } else {
            Vec::new()
        };
        let m = migrator();
        let pending: Vec<_> = m.iter().filter(|x| !applied.contains(&x.version)).collect();
        if pending.is_empty() {
            return Ok(sqlx::query_scalar("SELECT keyfall.keyfall_mapping_problems($1)")
                .bind(mapping.to_sql())
                .fetch_one(&self.pool)
                .await?);
        }
        // Not installed, or older: check inside a transaction that applies
        // what is missing, asks, and rolls everything back (its lock waits
        // bounded: a look never queues the app).
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('lock_timeout', $1, true)")
            .bind(format!("{}ms", LOCK_WAIT.as_millis()))
            .execute(&mut *tx)
            .await?;
        for migration in pending {
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS keyfall; {}", migration.sql.as_str())))
                .execute(&mut *tx)
                .await?;
        }
        let problems: Vec<String> = sqlx::query_scalar("SELECT keyfall.keyfall_mapping_problems($1)")
            .bind(mapping.to_sql())
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(problems)
    }

    /// Whether the app's settings table has a unique constraint on
    /// (account, type). Without one, a pair may have several rows: keyfall
    /// reads the lowest id, as the app's `.first()` does, and writes to no
    /// such pair.
    pub async fn settings_pairs_unique(&self, mapping: &Mapping) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (
                 SELECT 1 FROM pg_catalog.pg_index i
                  WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 2 AND i.indpred IS NULL
                    AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_catalog.pg_attribute a
                          WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]))
                        = (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[$2::text, $3::text]) x))",
        )
        .bind(mapping.settings_table())
        .bind(&mapping.settings.columns.account_id)
        .bind(&mapping.settings.columns.integration_type)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Check that this database has keyfall's objects, current, and that the
    /// mapping in force is `wanted` (when the config names one). Returns the
    /// mapping in force. Reading commands call this and change nothing.
    pub async fn verify(&self, wanted: Option<&Mapping>) -> Result<Mapping, StoreError> {
        Ok(self.check(wanted).await?.0)
    }

    /// `verify` and `whoami` together: one round trip when all is well
    /// (`keyfall_preflight()`, a simple query, no statement to prepare);
    /// step by step, for the exact message, only when something is off.
    pub async fn check(&self, wanted: Option<&Mapping>) -> Result<(Mapping, Identity), StoreError> {
        if let Some(pre) = self.preflight().await?
            && let Some(fit) = Self::fits(pre, wanted)
        {
            return Ok(fit);
        }
        let mapping = self.verify_step_by_step(wanted).await?;
        Ok((mapping, self.whoami().await?))
    }

    /// The mapping in force and who this is, when the start-up check says
    /// all is well: keyfall's migrations current, a mapping installed that
    /// fits (and is `wanted`, when one is).
    fn fits(pre: Preflight, wanted: Option<&Mapping>) -> Option<(Mapping, Identity)> {
        let m = migrator();
        let current = m.iter().all(|m| {
            let checksum: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
            pre.migrations.iter().any(|(v, c)| *v == m.version && *c == checksum)
        }) && pre.registry.as_ref().is_none_or(|fp| *fp == crate::domain::registry::fingerprint());
        let installed = pre.mapping.as_ref().and_then(mapping::from_sql)?;
        (current && pre.problems.is_empty() && wanted.is_none_or(|w| w.normalized() == installed.normalized()))
            .then_some((installed, pre.whoami))
    }

    /// `check`, reading in the same statement what `subject(Some(email),
    /// Some(function))` reads, kept for that call: a one-shot `resolve`
    /// pays one statement (and one connection hand-back) instead of two.
    /// Anything but the all-is-well answer is `check`'s own way, the row
    /// dropped.
    pub async fn check_with_subject(
        &self,
        wanted: Option<&Mapping>,
        email: &str,
        function: &str,
    ) -> Result<(Mapping, Identity), StoreError> {
        use sqlx::Row;
        let row = match sqlx::query(queries::CHECKED_SUBJECT_SQL).bind(email).bind(function).fetch_one(&self.pool).await
        {
            Ok(row) => row,
            // keyfall's objects missing, older or not this login's to read:
            // `check` says which.
            Err(sqlx::Error::Database(_)) => return self.check(wanted).await,
            Err(e) => return Err(e.into()),
        };
        let pre: Option<Preflight> =
            row.try_get::<Option<String>, _>("kf_preflight")?.and_then(|text| serde_json::from_str(&text).ok());
        if let Some(pre) = pre
            && let Some(fit) = Self::fits(pre, wanted)
        {
            if let Ok(mut slot) = self.prefetched.lock() {
                *slot = Some(Prefetched { email: email.to_string(), function: function.to_string(), row });
            }
            return Ok(fit);
        }
        let mapping = self.verify_step_by_step(wanted).await?;
        Ok((mapping, self.whoami().await?))
    }

    /// The row read ahead for `subject(email, function)`, if that is what
    /// was read ahead (taken: a second call reads again).
    fn take_prefetched(&self, email: Option<&str>, function: Option<&str>) -> Option<sqlx::postgres::PgRow> {
        let mut slot = self.prefetched.lock().ok()?;
        match (&*slot, email, function) {
            (Some(p), Some(e), Some(f)) if p.email == e && p.function == f => slot.take().map(|p| p.row),
            _ => None,
        }
    }

    /// Everything `check` needs in one simple-protocol query, or `None`
    /// where keyfall's objects (or this function) are missing.
    async fn preflight(&self) -> Result<Option<Preflight>, StoreError> {
        use sqlx::Row;
        let row = match sqlx::raw_sql("SELECT keyfall.keyfall_preflight()::text").fetch_one(&self.pool).await {
            Ok(row) => row,
            // No schema, no function, no right to read it: the step-by-step
            // check says which.
            Err(sqlx::Error::Database(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let text: String = row.try_get(0)?;
        Ok(serde_json::from_str(&text).ok())
    }

    async fn verify_step_by_step(&self, wanted: Option<&Mapping>) -> Result<Mapping, StoreError> {
        let db = crate::domain::text::visible_short(&self.label, 120);
        match self.installed().await? {
            Installed::Nothing => Err(StoreError::NotInstalled(format!(
                "{db} has no keyfall objects: run `keyfall attach` to use it with your app's tables, or `keyfall migrate` / `keyfall demo` for keyfall's own demo tables"
            ))),
            Installed::Legacy => Err(StoreError::NotInstalled(format!(
                "{db} has keyfall's first layout (its tables in public): run `keyfall migrate` to move it into the keyfall schema (nothing is lost)"
            ))),
            Installed::Outdated => Err(StoreError::NotInstalled(format!(
                "keyfall's objects in {db} are older than this keyfall: run `keyfall migrate`"
            ))),
            Installed::PreRelease { last } => Err(StoreError::NotInstalled(pre_release_message(&db, last))),
            Installed::Detached { since, by, .. } => Err(StoreError::NotInstalled(format!(
                "keyfall is detached from {db} since {} (by {}): `keyfall attach` resumes it",
                since.format("%Y-%m-%d %H:%M:%S UTC"),
                crate::domain::text::identity_short(&by, 60)
            ))),
            Installed::Current { mapping: None } => Err(StoreError::NotInstalled(format!(
                "{db} has keyfall's schema but no mapping of the app's tables: run `keyfall attach`"
            ))),
            Installed::Current { mapping: Some(installed) } => {
                if let Some(wanted) = wanted
                    && wanted.normalized() != installed.normalized()
                {
                    return Err(StoreError::NotInstalled(format!(
                        "the config's [mapping] (settings in {}) is not the one installed in {db} (settings in {}): run `keyfall attach` to install it",
                        wanted.settings_table(),
                        installed.settings_table()
                    )));
                }
                let problems = self.mapping_problems(&installed).await?;
                if !problems.is_empty() {
                    return Err(StoreError::NotInstalled(format!(
                        "the app's tables changed and no longer fit keyfall's mapping: {}; keyfall still records \
                         every change to the settings (whole rows), and `keyfall attach` re-maps them keeping the history",
                        problems.join("; ")
                    )));
                }
                Ok(*installed)
            }
        }
    }

    /// The same database with every session read-only at the server
    /// (`default_transaction_read_only`): no view can write through it.
    pub async fn reopen_read_only(&self, target: &Target) -> Result<Store, StoreError> {
        let options = target.options.clone().options([("default_transaction_read_only", "on")]);
        let mut store = Store::pool_for(target, options, POOL_SIZE).await?;
        store.touch_updated_at = self.touch_updated_at;
        store.rules = self.rules.clone();
        store.operator = self.operator.clone();
        self.close().await;
        Ok(store)
    }

    async fn pool_for(
        target: &Target,
        options: sqlx::postgres::PgConnectOptions,
        size: u32,
    ) -> Result<Store, StoreError> {
        let options = options.options([("search_path", "keyfall")]);
        let timeout = target.connect_timeout.unwrap_or(connect::DEFAULT_CONNECT_TIMEOUT);
        let pool = connect::open(options, timeout, |options| {
            PgPoolOptions::new()
                .max_connections(size)
                // libpq's connect_timeout: a host that drops packets or a
                // server that never answers fails in this time instead of
                // hanging (a refused connection fails at once: `open`).
                .acquire_timeout(timeout)
                // A ping before every query would double the round trips of
                // a resolve; a dead connection surfaces as Unavailable.
                .test_before_acquire(false)
                .connect_with(options)
        })
        .await
        .map_err(|e| match e {
            StoreError::Database(m) if m.contains("does not exist") && m.contains("database") => {
                StoreError::Unavailable(format!(
                    "database {:?} does not exist on {}",
                    crate::domain::text::visible_short(target.database(), 80),
                    target.label()
                ))
            }
            other => other,
        })?;
        Ok(Store {
            pool,
            label: target.label(),
            touch_updated_at: true,
            rules: Default::default(),
            operator: None,
            lock_waits: None,
            prefetched: Default::default(),
        })
    }

    /// Apply pending migrations (creating the `keyfall` schema). A current
    /// schema is left alone without taking the migration lock, so a
    /// least-privilege role can still start keyfall. Every lock is waited
    /// for a bounded time (`LOCK_WAIT`), then tried again.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.installed().await? {
            Installed::Current { .. } => return Ok(()),
            Installed::PreRelease { last } => {
                let db = crate::domain::text::visible_short(&self.label, 120);
                return Err(StoreError::NotInstalled(pre_release_message(&db, last)));
            }
            _ => {}
        }
        self.bounded(Locked::Migrate).await
    }

    /// Install `mapping` (keyfall's migrations applied): the views over the
    /// app's tables and keyfall's triggers on them, replacing a previous
    /// mapping's; where keyfall was detached, it resumes (the same audit
    /// log, a row saying what was not recorded). Locks are waited for a
    /// bounded time, never queueing the app's traffic for long.
    pub async fn install_mapping(&self, mapping: &Mapping) -> Result<(), StoreError> {
        self.bounded(Locked::Attach(mapping)).await
    }

    /// Take keyfall off the app's tables: its triggers on them, its event
    /// triggers and its views over them go; its own data (audit log, chain,
    /// policy, function map, operators, the mapping) stays, marked detached.
    pub async fn detach(&self) -> Result<(), StoreError> {
        self.bounded(Locked::Detach).await
    }

    /// Remove everything keyfall installed: its triggers and event triggers
    /// and the whole `keyfall` schema (audit log included). The app's
    /// tables and rows stay as they are.
    pub async fn purge(&self) -> Result<(), StoreError> {
        self.bounded(Locked::Purge).await
    }

    /// Run `work` so that it never keeps the app waiting long: each try
    /// waits at most `LOCK_WAIT` for a lock, then lets go, tells
    /// `on_lock_wait`'s listener who it waits for, and tries again after a pause; after `LOCK_TRIES`
    /// it gives up (`Refused`, exit 4) naming the blocking session.
    async fn bounded(&self, work: Locked<'_>) -> Result<(), StoreError> {
        let mut pause = Duration::from_millis(250);
        for attempt in 1..=LOCK_TRIES {
            let mut conn = self.pool.acquire().await?;
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *conn).await?;
            let seen = std::sync::Mutex::new(Vec::new());
            let result = {
                let run = run_locked(&mut conn, work);
                let watch = self.watch_blockers(pid, &seen);
                tokio::pin!(run, watch);
                tokio::select! {
                    r = &mut run => r,
                    () = &mut watch => run.await,
                }
            };
            drop(conn);
            let blockers = seen.into_inner().unwrap_or_default();
            match result {
                Ok(()) => return Ok(()),
                Err(Failed::LockWait) => {
                    let who = describe_blockers(&blockers);
                    if attempt == LOCK_TRIES {
                        return Err(StoreError::Refused(format!(
                            "{} gave up after {LOCK_TRIES} tries: {who} holds a lock it needs (keyfall waits at most {} s at a time, so the app is not held up): try again when that session is done, or end it",
                            work.name(),
                            LOCK_WAIT.as_secs()
                        )));
                    }
                    if let Some(tell) = &self.lock_waits {
                        tell(&LockWait {
                            work: work.name(),
                            who,
                            retry_in: pause,
                            next_try: attempt + 1,
                            tries: LOCK_TRIES,
                        });
                    }
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(Failed::Other(e)) => return Err(e.into()),
            }
        }
        Err(StoreError::Refused(format!("{} gave up", work.name())))
    }

    /// Note, every 200 ms, the sessions `pid` waits for (the last seen is
    /// what a timeout reports), on a second connection opened only when
    /// the work takes that long. Runs until dropped; ends early only when
    /// no second connection is to be had.
    async fn watch_blockers(&self, pid: i32, seen: &std::sync::Mutex<Vec<Blocker>>) {
        let mut conn = None;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if conn.is_none() {
                match self.pool.acquire().await {
                    Ok(c) => conn = Some(c),
                    Err(_) => return,
                }
            }
            let Some(conn) = conn.as_mut() else { return };
            let rows: Result<Vec<BlockerRow>, _> = sqlx::query_as(
                "SELECT a.pid, coalesce(a.state, ''), a.xact_start, coalesce(a.query, '')
                   FROM pg_catalog.pg_stat_activity a
                  WHERE a.pid = ANY (pg_catalog.pg_blocking_pids($1))
                  ORDER BY a.pid",
            )
            .bind(pid)
            .fetch_all(&mut **conn)
            .await;
            match rows {
                Ok(rows) if !rows.is_empty() => {
                    let blockers = rows
                        .into_iter()
                        .map(|(pid, state, since, query)| Blocker { pid, state, since, query })
                        .collect();
                    if let Ok(mut s) = seen.lock() {
                        *s = blockers;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// Every ordinary table outside keyfall's and the system's schemas, with
    /// its columns and single-column foreign keys: what `attach` looks at.
    pub async fn catalog(&self) -> Result<Vec<mapping::TableInfo>, StoreError> {
        let columns: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, NULL)
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relkind IN ('r', 'p')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'keyfall')
                AND n.nspname NOT LIKE 'pg\\_%'
              ORDER BY 1, 2, a.attnum",
        )
        .fetch_all(&self.pool)
        .await?;
        let fks: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT sn.nspname::text, s.relname::text, a.attname::text, tn.nspname::text, t.relname::text
               FROM pg_constraint k
               JOIN pg_class s ON s.oid = k.conrelid
               JOIN pg_namespace sn ON sn.oid = s.relnamespace
               JOIN pg_class t ON t.oid = k.confrelid
               JOIN pg_namespace tn ON tn.oid = t.relnamespace
               JOIN pg_attribute a ON a.attrelid = s.oid AND a.attnum = k.conkey[1]
              WHERE k.contype = 'f' AND cardinality(k.conkey) = 1",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut tables: Vec<mapping::TableInfo> = Vec::new();
        for (schema, table, column, ty) in columns {
            match tables.last_mut() {
                Some(t) if t.schema == schema && t.name == table => t.columns.push((column, ty)),
                _ => tables.push(mapping::TableInfo {
                    schema,
                    name: table,
                    columns: vec![(column, ty)],
                    foreign_keys: Vec::new(),
                }),
            }
        }
        for (schema, table, column, ref_schema, ref_table) in fks {
            if let Some(t) = tables.iter_mut().find(|t| t.schema == schema && t.name == table) {
                t.foreign_keys.push((column, ref_schema, ref_table));
            }
        }
        Ok(tables)
    }

    /// Whether the app's users table has an index keyfall's any-case email
    /// lookup can use (`lower(email)`); without one, an email typed in
    /// another case than stored scans every user.
    pub async fn has_lower_email_index(&self, mapping: &Mapping) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                             WHERE i.indrelid = to_regclass($1)
                               AND pg_catalog.pg_get_indexdef(i.indexrelid) ILIKE '%lower(' || $2 || ')%')",
        )
        .bind(mapping.users_table())
        .bind(&mapping.users.columns.email)
        .fetch_one(&self.pool)
        .await?)
    }

    /// keyfall's demo "app" tables in `public` (`assets/demo_schema.sql`).
    pub async fn create_demo_tables(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Serialise concurrent first runs: CREATE TABLE IF NOT EXISTS races.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('keyfall.demo_schema'))").execute(&mut *tx).await?;
        sqlx::raw_sql(include_str!("../../assets/demo_schema.sql")).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `host/db`: never carries a password.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One try of `work` on `conn`: every lock wait bounded by `LOCK_WAIT`.
async fn run_locked(conn: &mut sqlx::PgConnection, work: Locked<'_>) -> Result<(), Failed> {
    let wait = format!("{}ms", LOCK_WAIT.as_millis());
    if let Locked::Migrate = work {
        // Each migration is its own transaction; a session setting bounds
        // the lock waits of all of them.
        sqlx::query("SELECT set_config('lock_timeout', $1, false)").bind(&wait).execute(&mut *conn).await?;
        let mut result = migrator().run(&mut *conn).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => e.into(),
            other => Failed::Other(sqlx::Error::from(other)),
        });
        if result.is_ok() {
            result = load_registry(conn).await;
        }
        // sqlx leaves its migration lock held when a migration fails.
        let _ = sqlx::query("SELECT set_config('lock_timeout', '0', false), pg_advisory_unlock_all()")
            .execute(&mut *conn)
            .await;
        return result;
    }
    let mut tx = conn.begin().await?;
    // All the locks first, in one statement bounded as a whole, then the
    // work under them (nothing waits a second time).
    let (bound,): (String,) = sqlx::query_as("SELECT current_setting('statement_timeout')").fetch_one(&mut *tx).await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $1, true)")
        .bind(&wait)
        .execute(&mut *tx)
        .await?;
    let spec = match work {
        Locked::Attach(m) => Some(m.to_sql()),
        _ => None,
    };
    match sqlx::query("SELECT keyfall.keyfall_lock_app($1)").bind(&spec).execute(&mut *tx).await {
        Ok(_) => {}
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("57014") => return Err(Failed::LockWait),
        Err(e) => return Err(e.into()),
    }
    sqlx::query("SELECT set_config('statement_timeout', $1, true)").bind(&bound).execute(&mut *tx).await?;
    match work {
        Locked::Attach(m) => {
            // The registry first: the verdicts attach stores are its.
            load_registry_in(&mut tx).await?;
            sqlx::query("SELECT keyfall.keyfall_attach($1)").bind(m.to_sql()).execute(&mut *tx).await?;
        }
        Locked::Detach => {
            sqlx::query("SELECT keyfall.keyfall_detach()").execute(&mut *tx).await?;
        }
        Locked::Purge => {
            // The event triggers first (they would fire on their own
            // function's way out), then keyfall's triggers on the app's
            // tables, then the schema.
            sqlx::raw_sql(PURGE).execute(&mut *tx).await?;
        }
        Locked::Migrate => {}
    }
    Ok(tx.commit().await?)
}

/// Load this keyfall's registry into the database (the baseline's registry tables), in a
/// transaction of its own; nothing happens where it is loaded already.
async fn load_registry(conn: &mut sqlx::PgConnection) -> Result<(), Failed> {
    let mut tx = conn.begin().await?;
    load_registry_in(&mut tx).await?;
    Ok(tx.commit().await?)
}

/// Load the registry in the caller's transaction: the tables, and the
/// stored verdicts judged again where its fingerprint changes.
async fn load_registry_in(tx: &mut sqlx::PgConnection) -> Result<(), Failed> {
    use crate::domain::registry;
    sqlx::query("SELECT keyfall.keyfall_load_registry($1, $2)")
        .bind(registry::document())
        .bind(registry::fingerprint())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `detach --purge`: everything of keyfall's, found generically. keyfall's
/// triggers on the app's tables go the way attach replaces them
/// (`keyfall_drop_app_triggers`, in the baseline migration).
const PURGE: &str = "DO $purge$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT e.evtname FROM pg_catalog.pg_event_trigger e WHERE e.evtname LIKE 'keyfall\\_%' LOOP
        EXECUTE format('DROP EVENT TRIGGER %I', t.evtname);
    END LOOP;
    PERFORM keyfall.keyfall_drop_app_triggers();
    DROP SCHEMA keyfall CASCADE;
END
$purge$";

/// Create the target database when the server says it does not exist.
async fn ensure_database(target: &Target) -> Result<(), StoreError> {
    let timeout = target.connect_timeout.unwrap_or(connect::DEFAULT_CONNECT_TIMEOUT);
    // 3D000 is an answer here, not a failure: `open` passes it on.
    let first = connect::open(target.options.clone(), timeout, |o| async move {
        match tokio::time::timeout(timeout, o.connect()).await {
            Ok(Ok(conn)) => Ok(Ok(conn)),
            Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("3D000") => Ok(Err(())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    })
    .await?;
    match first {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(()) => {
            let name = target.database().to_string();
            let mut admin = connect::open(target.options.clone().database("postgres"), timeout, |o| async move {
                tokio::time::timeout(timeout, o.connect()).await.unwrap_or(Err(sqlx::Error::PoolTimedOut))
            })
            .await?;
            let sql = format!("CREATE DATABASE {}", quote_ident(&name));
            match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await {
                Ok(_) => {}
                // Another process created it between our two connects.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(e.into()),
            }
            let _ = admin.close().await;
            Ok(())
        }
    }
}

/// A PostgreSQL identifier, quoted. Only for names keyfall itself chose or
/// validated; values always go through bind parameters.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::{Blocker, query_start};

    #[test]
    fn a_blocking_query_is_shown_up_to_its_first_literal() {
        let q = "UPDATE app_settings SET config = '{\"apiKey\": \"sk-live-0123456789\"}' WHERE id = 1";
        let shown = query_start(q);
        assert_eq!(shown, "UPDATE app_settings SET config = …");
        let q = "DO $$ BEGIN PERFORM set_key('sk-live-0123456789'); END $$";
        assert!(!query_start(q).contains("sk-live"), "{}", query_start(q));
        assert_eq!(query_start("SELECT * FROM t WHERE id = $1"), "SELECT * FROM t WHERE id = $1");
        assert_eq!(query_start("BEGIN;\n  UPDATE t\tSET a = 1"), "BEGIN; UPDATE t SET a = 1");
        let long = format!("SELECT {}", "x, ".repeat(40));
        assert_eq!(query_start(&long).chars().count(), 60);
        let b = Blocker { pid: 42, state: "idle in transaction".into(), since: None, query: q.into() };
        assert!(b.to_string().starts_with("pid 42 (idle in transaction: DO"), "{b}");
    }
}
