//! Where the database is (DESIGN §5): an explicit URL wins; otherwise a
//! server answering on the local socket or 127.0.0.1:5432; otherwise the
//! private cluster. The same code serves the app and the tests.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};

use super::StoreError;
use super::cluster::{self, PrivateCluster};

/// The database keyfall uses when it picks the server itself.
pub const DEFAULT_DATABASE: &str = "keyfall";

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub enum Source {
    /// `--database-url`, `DATABASE_URL` or the config file.
    Configured,
    /// A server already running on this machine.
    LocalServer { label: String },
    /// keyfall's own cluster.
    Private(PrivateCluster),
}

/// A server and database to use, with a label safe to show (no password).
#[derive(Clone)]
pub struct Target {
    pub options: PgConnectOptions,
    pub source: Source,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // PgConnectOptions' own Debug would print the password.
        f.debug_struct("Target").field("label", &self.label()).finish_non_exhaustive()
    }
}

impl Target {
    /// `host/db` or `socket-dir/db`: what the header and messages show.
    pub fn label(&self) -> String {
        label_of(&self.options)
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> Target {
        Target { options: self.options.clone().database(database), source: self.source.clone() }
    }

    pub fn database(&self) -> &str {
        self.options.get_database().unwrap_or("postgres")
    }
}

pub fn label_of(options: &PgConnectOptions) -> String {
    let db = options.get_database().unwrap_or("postgres");
    match options.get_socket() {
        Some(dir) => format!("{}/{db}", dir.display()),
        None => format!("{}/{db}", options.get_host()),
    }
}

/// The query parameters sqlx understands. Anything else is refused before
/// parsing: sqlx would log an unknown parameter's value — possibly a secret
/// — to our log file.
const KNOWN_PARAMETERS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// Parse a URL without ever echoing it (it may hold a password).
pub fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let key = pair.split('=').next().unwrap_or_default();
            let indexed_option = key.starts_with("options[") && key.ends_with(']');
            if !(KNOWN_PARAMETERS.contains(&key) || indexed_option) {
                return Err(StoreError::Invalid(format!(
                    "database URL: unknown connection parameter {:?}",
                    crate::domain::text::visible_short(key, 40)
                )));
            }
        }
    }
    PgConnectOptions::from_str(url).map_err(|e| {
        StoreError::Invalid(format!("database URL is not valid: {}", redact_url_error(&e.to_string(), url)))
    })
}

fn redact_url_error(message: &str, url: &str) -> String {
    if url.is_empty() { message.to_string() } else { message.replace(url, "<url>") }
}

/// Pick the server: `url` if given, else a local one, else the private
/// cluster under `data_dir`. Reports what it chose on stderr when it chose.
pub async fn discover(url: Option<&str>, data_dir: &Path) -> Result<Target, StoreError> {
    if let Some(url) = url {
        return Ok(Target { options: parse_url(url)?, source: Source::Configured });
    }
    let mut refusals = Vec::new();
    for options in local_candidates() {
        let label = label_of(&options);
        match probe(&options.clone().database("postgres")).await {
            Probe::Answered => {
                return Ok(Target {
                    options: options.database(DEFAULT_DATABASE),
                    source: Source::LocalServer { label },
                });
            }
            Probe::Refused(why) => refusals.push(format!("{label}: {why}")),
            Probe::Absent => {}
        }
    }
    let base = data_dir.to_path_buf();
    let cluster = tokio::task::spawn_blocking(move || cluster::ensure(&base))
        .await
        .map_err(|e| StoreError::Unavailable(format!("private cluster: {e}")))?
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let how = if cluster.created {
        "created and started"
    } else if cluster.started {
        "started"
    } else {
        "using"
    };
    let mut note = format!(
        "keyfall: no database configured and no PostgreSQL answering locally; {how} the private cluster in {}",
        cluster.data_dir.display()
    );
    if !refusals.is_empty() {
        note.push_str(&format!(" (a local server refused us: {})", refusals.join("; ")));
    }
    if cluster.locked_down {
        note.push_str(&format!(
            "; it was open to every local user (made by an older keyfall): now only {} and root may connect",
            cluster.owner
        ));
    }
    if cluster.started || cluster.created {
        note.push_str(&format!("; stop it with: {}", cluster.stop_command()));
    }
    eprintln!("{note}");
    let options = private_options(&cluster).database(DEFAULT_DATABASE);
    Ok(Target { options, source: Source::Private(cluster) })
}

/// The superuser, over the socket, with no password: the cluster admits it
/// by peer authentication, only to its own OS user and root.
pub fn private_options(cluster: &PrivateCluster) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .socket(&cluster.socket_dir)
        .port(cluster::PORT)
        .username(cluster::SUPERUSER)
        .ssl_mode(PgSslMode::Disable)
}

/// The usual places a local server listens, as the OS user (or `PGUSER`).
fn local_candidates() -> Vec<PgConnectOptions> {
    let user = std::env::var("PGUSER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| if cluster::running_as_root() { "root".into() } else { "postgres".into() });
    let mut out = Vec::new();
    for dir in ["/var/run/postgresql", "/run/postgresql", "/tmp"] {
        if Path::new(dir).join(".s.PGSQL.5432").exists() {
            out.push(
                PgConnectOptions::new_without_pgpass()
                    .socket(PathBuf::from(dir))
                    .port(5432)
                    .username(&user)
                    .ssl_mode(PgSslMode::Disable),
            );
            break;
        }
    }
    out.push(
        PgConnectOptions::new_without_pgpass().host("127.0.0.1").port(5432).username(&user).ssl_mode(PgSslMode::Prefer),
    );
    out
}

enum Probe {
    Answered,
    /// A server is there but would not let us in.
    Refused(String),
    /// Nothing listening.
    Absent,
}

async fn probe(options: &PgConnectOptions) -> Probe {
    match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Probe::Answered
        }
        Ok(Err(sqlx::Error::Database(e))) => Probe::Refused(e.message().to_string()),
        Ok(Err(_)) | Err(_) => Probe::Absent,
    }
}
