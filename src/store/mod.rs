//! The only module that speaks SQL. Its API takes and returns domain types;
//! sqlx errors are mapped once into `StoreError`. Every query binds its
//! parameters; every multi-statement write is one transaction that names its
//! actor with `SET LOCAL keyfall.actor` for the audit trigger.

pub mod answers;
pub mod cluster;
pub mod connect;
pub mod listen;
pub mod mapping;
mod queries;
mod report;
mod scan;
mod suggest;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

pub use connect::{Source, Target};
pub use mapping::Mapping;
pub use queries::{
    AccountRow, AuditEntry, AuditFilter, ImportItem, LintData, SettingRef, SubjectData, UserHit, WriteOutcome,
};
pub use report::{Answer, ImpactRow, Proposal, ReportRow};

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
    /// Current; the mapping installed, if any.
    Current { mapping: Option<Box<Mapping>> },
}

/// What `keyfall_preflight()` answers.
#[derive(serde::Deserialize)]
struct Preflight {
    migrations: Vec<(i64, String)>,
    mapping: Option<Value>,
    problems: Vec<String>,
    whoami: Identity,
}

/// A stale version at save time: someone else saved first.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub account: String,
    pub integration_type: String,
    pub expected_version: i64,
    pub current_version: Option<i64>,
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = crate::domain::text::visible_short(self.updated_by.as_deref().unwrap_or("an unknown writer"), 80);
        match self.current_version {
            Some(v) => write!(
                f,
                "{} {} changed since version {} (now v{v}, by {who}{})",
                self.account,
                self.integration_type,
                self.expected_version,
                self.updated_at.map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default()
            ),
            None => write!(f, "{} {} was deleted by another writer", self.account, self.integration_type),
        }
    }
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
        let store = Store::connect_creating(target).await?;
        store.create_demo_tables().await?;
        store.migrate().await?;
        store.install_mapping(&Mapping::demo()).await?;
        Ok(store.with_mapping(&Mapping::demo()))
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
        if !m.iter().all(|m| applied.iter().any(|(v, c)| *v == m.version && c[..] == m.checksum[..])) {
            return Ok(Installed::Outdated);
        }
        let spec: Option<Value> =
            sqlx::query_scalar("SELECT spec FROM keyfall.mapping LIMIT 1").fetch_optional(&self.pool).await?;
        Ok(Installed::Current { mapping: spec.as_ref().and_then(mapping::from_sql).map(Box::new) })
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

    /// What does not fit in `mapping` on this database, one sentence each.
    /// Works before keyfall is installed (attach asks it first).
    pub async fn mapping_problems(&self, mapping: &Mapping) -> Result<Vec<String>, StoreError> {
        let installed: bool =
            sqlx::query_scalar("SELECT to_regprocedure('keyfall.keyfall_mapping_problems(jsonb)') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        if installed {
            return Ok(sqlx::query_scalar("SELECT keyfall.keyfall_mapping_problems($1)")
                .bind(mapping.to_sql())
                .fetch_one(&self.pool)
                .await?);
        }
        // Not installed yet: check inside a transaction that installs the
        // function, asks it, and rolls everything back.
        let mut tx = self.pool.begin().await?;
        let m = migrator();
        for migration in m.iter() {
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
        if let Some(pre) = self.preflight().await? {
            let m = migrator();
            let current = m.iter().all(|m| {
                let checksum: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
                pre.migrations.iter().any(|(v, c)| *v == m.version && *c == checksum)
            });
            let installed = pre.mapping.as_ref().and_then(mapping::from_sql);
            if let Some(installed) = installed
                && current
                && pre.problems.is_empty()
                && wanted.is_none_or(|w| w.normalized() == installed.normalized())
            {
                return Ok((installed, pre.whoami));
            }
        }
        let mapping = self.verify_step_by_step(wanted).await?;
        Ok((mapping, self.whoami().await?))
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
        Ok(Store { pool, label: target.label(), touch_updated_at: true, rules: Default::default(), operator: None })
    }

    /// Apply pending migrations (creating the `keyfall` schema). A current
    /// schema is left alone without taking the migration lock, so a
    /// least-privilege role can still start keyfall.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if matches!(self.installed().await?, Installed::Current { .. }) {
            return Ok(());
        }
        migrator().run(&self.pool).await.map_err(|e| StoreError::from(sqlx::Error::from(e)))
    }

    /// Install `mapping`: the views over the app's tables and the audit
    /// triggers on its settings table (replacing a previous mapping's).
    pub async fn install_mapping(&self, mapping: &Mapping) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT keyfall.keyfall_install_mapping($1)").bind(mapping.to_sql()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remove everything keyfall installed: the triggers on the app's
    /// settings table and the `keyfall` schema (views, functions, chain,
    /// policy, audit log). The app's tables and rows stay as they are.
    pub async fn detach(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT keyfall.keyfall_drop_app_triggers()").execute(&mut *tx).await?;
        // The event triggers first: dropping the schema would fire them on
        // their own function's way out.
        sqlx::query("DROP EVENT TRIGGER IF EXISTS keyfall_watch_ddl").execute(&mut *tx).await?;
        sqlx::query("DROP EVENT TRIGGER IF EXISTS keyfall_watch_drop").execute(&mut *tx).await?;
        sqlx::query("DROP EVENT TRIGGER IF EXISTS keyfall_ddl_start").execute(&mut *tx).await?;
        sqlx::query("DROP EVENT TRIGGER IF EXISTS keyfall_ddl_end").execute(&mut *tx).await?;
        sqlx::query("DROP SCHEMA keyfall CASCADE").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
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
