//! The only module that speaks SQL. Its API takes and returns domain types;
//! sqlx errors are mapped once into `StoreError`. Every query binds its
//! parameters; every multi-statement write is one transaction that names its
//! actor with `SET LOCAL keyfall.actor` for the audit trigger.

pub mod cluster;
pub mod connect;
pub mod listen;
mod queries;
mod report;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

pub use connect::{Source, Target};
pub use queries::{AccountRow, AuditEntry, ImportItem, LintData, SettingRef, SubjectData, UserHit, WriteOutcome};
pub use report::{Answer, ImpactRow, Proposal, ReportRow};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
                    "25006" => StoreError::Invalid(format!("read-only session: {message}")),
                    "42501" => StoreError::Invalid(format!("not allowed by the database: {message}")),
                    "57P01" | "57P02" | "57P03" | "53300" => StoreError::Unavailable(message),
                    c if c.starts_with("08") => StoreError::Unavailable(message),
                    _ => StoreError::Database(message),
                }
            }
            sqlx::Error::Io(e) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Tls(e) => StoreError::Unavailable(format!("TLS: {e}")),
            sqlx::Error::PoolTimedOut => StoreError::Unavailable("timed out waiting for a connection".into()),
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
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's Debug would print its connect options, password included.
        f.debug_struct("Store").field("label", &self.label).finish_non_exhaustive()
    }
}

impl Store {
    /// Connect to `target`, creating its database when missing, and apply
    /// the migrations.
    pub async fn open(target: &Target) -> Result<Store, StoreError> {
        let store = Store::open_unmigrated(target).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connect (creating the database when missing) without migrating.
    pub async fn open_unmigrated(target: &Target) -> Result<Store, StoreError> {
        ensure_database(target).await?;
        Store::pool_for(target, target.options.clone()).await
    }

    /// The same database with every session read-only at the server
    /// (`default_transaction_read_only`): no view can write through it.
    pub async fn reopen_read_only(&self, target: &Target) -> Result<Store, StoreError> {
        let options = target.options.clone().options([("default_transaction_read_only", "on")]);
        let store = Store::pool_for(target, options).await?;
        self.close().await;
        Ok(store)
    }

    async fn pool_for(target: &Target, options: sqlx::postgres::PgConnectOptions) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every query would double the round trips of a
            // resolve; a dead connection surfaces as Unavailable instead.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Store { pool, label: target.label() })
    }

    /// Apply pending migrations. A current schema is left alone without
    /// taking the migration lock, so a least-privilege role (which may not
    /// create tables) can still start keyfall.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.is_current().await? {
            return Ok(());
        }
        MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::from(sqlx::Error::from(e)))
    }

    async fn is_current(&self) -> Result<bool, StoreError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text").fetch_one(&self.pool).await?;
        if exists.is_none() {
            return Ok(false);
        }
        let applied: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?;
        Ok(MIGRATOR.iter().all(|m| applied.iter().any(|(v, c)| *v == m.version && c[..] == m.checksum[..])))
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
    match target.options.connect().await {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            let name = target.database().to_string();
            let mut admin = target.options.clone().database("postgres").connect().await?;
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
        Err(e) => Err(e.into()),
    }
}

/// A PostgreSQL identifier, quoted. Only for names keyfall itself chose or
/// validated; values always go through bind parameters.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
