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
    /// How long connecting may take (`connect_timeout`, like libpq's;
    /// `None`: the default, 10 s).
    pub connect_timeout: Option<Duration>,
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
        Target {
            options: self.options.clone().database(database),
            source: self.source.clone(),
            connect_timeout: self.connect_timeout,
        }
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

/// `PGCONNECT_TIMEOUT`, in seconds, if set.
fn env_connect_timeout() -> Result<Option<Duration>, StoreError> {
    match std::env::var("PGCONNECT_TIMEOUT") {
        Ok(v) if !v.trim().is_empty() => seconds(&v).map(Some),
        _ => Ok(None),
    }
}

fn seconds(v: &str) -> Result<Duration, StoreError> {
    match v.trim().parse::<u64>() {
        Ok(0) => Ok(Duration::from_secs(3600)),
        Ok(n) => Ok(Duration::from_secs(n.max(2))),
        Err(_) => Err(StoreError::Invalid(format!(
            "connect_timeout must be whole seconds, not {:?}",
            crate::domain::text::visible_short(v, 20)
        ))),
    }
}

/// A connection string as libpq takes it: a `postgres://` / `postgresql://`
/// URL or `key=value` pairs; `connect_timeout` (seconds) bounds connecting.
/// Anything else (a `mysql://` URL) is refused. Never echoes the string.
pub fn parse_target(conn: &str) -> Result<Target, StoreError> {
    let conn = conn.trim();
    let url = if conn.contains("://") {
        let scheme = conn.split("://").next().unwrap_or_default();
        if !matches!(scheme, "postgres" | "postgresql") {
            return Err(StoreError::Invalid(format!(
                "not a PostgreSQL connection string (scheme {:?}; expected postgres:// or key=value pairs)",
                crate::domain::text::visible_short(scheme, 20)
            )));
        }
        conn.to_string()
    } else {
        conninfo_to_url(conn)?
    };
    // connect_timeout is libpq's, not sqlx's: taken out here.
    let (mut url, mut timeout) = (url.clone(), env_connect_timeout()?);
    if let Some((base, query)) = url.clone().split_once('?') {
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("connect_timeout", v)) => timeout = Some(seconds(v)?),
                _ => kept.push(pair),
            }
        }
        url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    }
    let mut options = parse_url(&url)?;
    // Without a user in the string, libpq connects as PGUSER, else the OS
    // user (sqlx would fall back to "anonymous" where it cannot tell).
    if !has_user(&url) && std::env::var_os("PGUSER").is_none_or(|u| u.is_empty()) {
        options = options.username(&os_user());
    }
    Ok(Target { options, source: Source::Configured, connect_timeout: timeout })
}

/// Whether a postgres:// URL names a user (before an `@` in its authority,
/// or as a `user=` parameter).
fn has_user(url: &str) -> bool {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let (authority, query) = match after_scheme.split_once('?') {
        Some((a, q)) => (a, q),
        None => (after_scheme, ""),
    };
    let authority = authority.split('/').next().unwrap_or_default();
    let named_in_authority =
        authority.rsplit_once('@').is_some_and(|(user, _)| !user.split(':').next().unwrap_or("").is_empty());
    named_in_authority || query.split('&').any(|p| p.strip_prefix("user=").is_some_and(|u| !u.is_empty()))
}

/// The operating-system user keyfall runs as: what libpq uses when nothing
/// names a database user.
pub fn os_user() -> String {
    // SAFETY: geteuid cannot fail.
    if let Some(name) = super::cluster::user_name(unsafe { libc::geteuid() }).filter(|n| !n.is_empty()) {
        return name;
    }
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "postgres".into())
}

/// `host=… port=… dbname=… user=… password=… sslmode=…` as a URL.
fn conninfo_to_url(conn: &str) -> Result<String, StoreError> {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    let mut pairs = Vec::new();
    let mut rest = conn;
    while !rest.trim_start().is_empty() {
        rest = rest.trim_start();
        let (key, after) = rest.split_once('=').ok_or_else(|| {
            StoreError::Invalid("connection string: expected key=value pairs or a postgres:// URL".into())
        })?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('\'') {
            let end =
                quoted.find('\'').ok_or_else(|| StoreError::Invalid("connection string: unclosed quote".into()))?;
            (quoted[..end].to_string(), &quoted[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        pairs.push((key.trim().to_string(), value));
        rest = next;
    }
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let mut url = String::from("postgres://");
    if let Some(user) = get("user") {
        url.push_str(&enc(user));
        if let Some(pw) = get("password") {
            url.push(':');
            url.push_str(&enc(pw));
        }
        url.push('@');
    }
    let host = get("host").unwrap_or("");
    let socket = host.starts_with('/');
    if socket {
        // The socket directory goes in the query; the URL needs some host.
        url.push_str("localhost");
    } else {
        url.push_str(&enc(host));
        if let Some(port) = get("port") {
            url.push(':');
            url.push_str(&enc(port));
        }
    }
    url.push('/');
    url.push_str(&enc(get("dbname").unwrap_or(DEFAULT_DATABASE)));
    let mut query = Vec::new();
    if socket {
        query.push(format!("host={}", enc(host)));
        if let Some(port) = get("port") {
            query.push(format!("port={}", enc(port)));
        }
    }
    for (k, v) in &pairs {
        match k.as_str() {
            "user" | "password" | "host" | "port" | "dbname" => {}
            "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "application_name" | "options" | "connect_timeout" => {
                query.push(format!("{k}={}", enc(v)))
            }
            other => {
                return Err(StoreError::Invalid(format!(
                    "connection string: unknown key {:?}",
                    crate::domain::text::visible_short(other, 40)
                )));
            }
        }
    }
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    Ok(url)
}

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
    discover_with(url, data_dir, cluster::Access::Owner).await
}

/// [`discover`], with who may log in to the private cluster if it comes to
/// that (the tests' cluster lets their roles in: [`cluster::Access`]).
pub async fn discover_with(url: Option<&str>, data_dir: &Path, access: cluster::Access) -> Result<Target, StoreError> {
    if let Some(url) = url {
        return parse_target(url);
    }
    // libpq's environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
    // PGSSLMODE…), as psql would use it.
    if ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
    {
        let mut options = PgConnectOptions::new();
        if std::env::var_os("PGUSER").is_none_or(|u| u.is_empty()) {
            options = options.username(&os_user());
        }
        if std::env::var_os("PGDATABASE").is_none() {
            options = options.database(DEFAULT_DATABASE);
        }
        return Ok(Target { options, source: Source::Configured, connect_timeout: env_connect_timeout()? });
    }
    let mut refusals = Vec::new();
    for options in local_candidates() {
        let label = label_of(&options);
        match probe(&options.clone().database("postgres")).await {
            Probe::Answered => {
                return Ok(Target {
                    options: options.database(DEFAULT_DATABASE),
                    source: Source::LocalServer { label },
                    connect_timeout: None,
                });
            }
            Probe::Refused(why) => refusals.push(format!("{label}: {why}")),
            Probe::Absent => {}
        }
    }
    private_target(data_dir, access, &refusals).await
}

/// Where the database is, as [`discover`] finds it, but starting and
/// creating nothing and saying nothing: what shell completion asks. The
/// private cluster only when it is already running. `None`: nothing there.
pub async fn discover_running(url: Option<&str>, data_dir: &Path) -> Option<Target> {
    if url.is_some()
        || ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
    {
        return discover(url, data_dir).await.ok();
    }
    for options in local_candidates() {
        if let Probe::Answered = probe(&options.clone().database("postgres")).await {
            let label = label_of(&options);
            return Some(Target {
                options: options.database(DEFAULT_DATABASE),
                source: Source::LocalServer { label },
                connect_timeout: None,
            });
        }
    }
    let socket_dir = data_dir.join("pgrun");
    if !socket_dir.join(format!(".s.PGSQL.{}", cluster::PORT)).exists() {
        return None;
    }
    let options = PgConnectOptions::new_without_pgpass()
        .socket(&socket_dir)
        .port(cluster::PORT)
        .username(cluster::SUPERUSER)
        .ssl_mode(PgSslMode::Disable);
    Some(Target {
        options: options.database(DEFAULT_DATABASE),
        source: Source::LocalServer { label: "the private cluster".into() },
        connect_timeout: None,
    })
}

/// The private cluster in `data_dir` (created and started as needed) as the
/// target, saying so on stderr. `refusals`: local servers that refused us.
pub async fn private_target(
    data_dir: &Path,
    access: cluster::Access,
    refusals: &[String],
) -> Result<Target, StoreError> {
    let base = data_dir.to_path_buf();
    let cluster = tokio::task::spawn_blocking(move || cluster::ensure_with(&base, access))
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
    Ok(Target { options, source: Source::Private(cluster), connect_timeout: None })
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
    let user = std::env::var("PGUSER").ok().filter(|u| !u.is_empty()).unwrap_or_else(os_user);
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

/// How long connecting waits when nothing says (libpq's default is
/// forever; keyfall's, 10 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection attempt runs before keyfall also checks, on the
/// side, whether anything listens at all. sqlx's pool retries a refused
/// connection until its timeout (a server starting up); psql says
/// "connection refused" at once, and so does keyfall. A server that
/// answers faster than this is never probed.
const REFUSAL_CHECK_AFTER: Duration = Duration::from_millis(60);

/// Where `options` connect, as messages name it: `host port N` or the
/// socket file.
pub fn endpoint(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(dir) => format!("socket {}", dir.join(format!(".s.PGSQL.{}", options.get_port())).display()),
        None => format!("{} port {}", options.get_host(), options.get_port()),
    }
}

/// Whether something accepts connections where `options` point (a bare
/// TCP or Unix-socket connect, closed at once without a byte sent, which
/// PostgreSQL does not log).
async fn reach(options: &PgConnectOptions) -> std::io::Result<()> {
    match options.get_socket() {
        Some(dir) => {
            tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{}", options.get_port()))).await.map(drop)
        }
        None => tokio::net::TcpStream::connect((options.get_host(), options.get_port())).await.map(drop),
    }
}

/// A password typed at the prompt, for the rest of the process: the
/// console's later pools, `demo`'s second connection. Keyed by endpoint
/// and user.
static TYPED_PASSWORD: std::sync::Mutex<Option<(String, String)>> = std::sync::Mutex::new(None);

fn password_key(options: &PgConnectOptions) -> String {
    format!("{}\0{}", endpoint(options), options.get_username())
}

fn with_typed_password(options: PgConnectOptions) -> PgConnectOptions {
    let typed = TYPED_PASSWORD.lock().ok().and_then(|g| g.clone());
    match typed {
        Some((key, password)) if key == password_key(&options) => options.password(&password),
        _ => options,
    }
}

/// The server wants a password it did not get (or not this one).
fn wants_password(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("28P01")
                || db.message().contains("password authentication failed")
                || db.message().contains("no password supplied")
        }
        _ => false,
    }
}

/// Whether there is a terminal to ask on (as psql: stdin or stderr is one,
/// and /dev/tty opens).
fn terminal() -> bool {
    use std::io::IsTerminal;
    (std::io::stdin().is_terminal() || std::io::stderr().is_terminal())
        && std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").is_ok()
}

/// Connect with `connect` (a pool or one connection) the way psql does:
/// a refused connection or a missing socket fails at once naming where;
/// `timeout` is for a host that does not answer; a server that wants a
/// password gets one typed at the terminal (no echo), once, else the error
/// says what to set. Errors name host, port (and user), never a password.
pub async fn open<T, F, Fut>(options: PgConnectOptions, timeout: Duration, connect: F) -> Result<T, StoreError>
where
    F: Fn(PgConnectOptions) -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut options = with_typed_password(options);
    let mut asked = false;
    loop {
        let attempt = connect(options.clone());
        tokio::pin!(attempt);
        let refusal = async {
            tokio::time::sleep(REFUSAL_CHECK_AFTER).await;
            match tokio::time::timeout(timeout, reach(&options)).await {
                Ok(Err(e)) => e,
                // Something listens (or nothing answers at all): the
                // attempt's own result, or its timeout, says the rest.
                _ => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = &mut attempt => r,
            e = refusal => Err(sqlx::Error::Io(e)),
        };
        match result {
            Ok(value) => return Ok(value),
            Err(e) if wants_password(&e) && !asked && terminal() => {
                asked = true;
                let prompt =
                    format!("Password for user {}: ", crate::domain::text::visible_short(options.get_username(), 80));
                let typed = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("password prompt: {e}")))?
                    .map_err(|e| StoreError::Unavailable(format!("cannot read the password: {e}")))?;
                if let Ok(mut g) = TYPED_PASSWORD.lock() {
                    *g = Some((password_key(&options), typed.clone()));
                }
                options = options.password(&typed);
            }
            Err(e) => return Err(explain(&options, timeout, e, asked)),
        }
    }
}

/// One line for a failed connect, naming where (and whom).
fn explain(options: &PgConnectOptions, timeout: Duration, e: sqlx::Error, asked: bool) -> StoreError {
    let at = endpoint(options);
    let user = crate::domain::text::visible_short(options.get_username(), 80);
    match e {
        sqlx::Error::Io(io) => {
            let why = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused (is a server running there?)".to_string(),
                std::io::ErrorKind::NotFound if options.get_socket().is_some() => {
                    "no such socket (is a server running there?)".to_string()
                }
                _ => io.to_string(),
            };
            StoreError::Unavailable(format!("cannot connect to {at}: {why}"))
        }
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(format!(
            "no answer from {at} within {} s (connect_timeout in the connection string or PGCONNECT_TIMEOUT sets how long to wait)",
            timeout.as_secs()
        )),
        e if wants_password(&e) && asked => {
            StoreError::Refused(format!("password authentication failed for user {user} at {at}"))
        }
        e if wants_password(&e) => StoreError::Refused(format!(
            "password authentication failed for user {user} at {at}, and there is no terminal to ask for it: set \
             PGPASSWORD, add a line to ~/.pgpass (or PGPASSFILE), or put the password in the connection string"
        )),
        other => StoreError::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_user_connects_as_the_os_user_like_libpq() {
        assert!(has_user("postgres://alice@db/x"));
        assert!(has_user("postgres://alice:pw@db/x?sslmode=require"));
        assert!(has_user("postgres://db/x?user=alice"));
        assert!(!has_user("postgres://db/x"));
        assert!(!has_user("postgres://:pw@db/x"));
        assert!(!has_user("postgres://db/x?options=a@b"));
        if std::env::var_os("PGUSER").is_none_or(|u| u.is_empty()) {
            let t = parse_target("postgres://127.0.0.1/x").unwrap();
            assert_eq!(t.options.get_username(), os_user());
            assert_ne!(os_user(), "anonymous");
        }
        let t = parse_target("postgres://bob@127.0.0.1/x").unwrap();
        assert_eq!(t.options.get_username(), "bob");
    }
}
