//! Two-phase configuration: the file and the environment are read
//! permissively into `RawConfig`, then validated together with the command
//! line into the `Config` the program uses. The database URL is held in a
//! redacting newtype: it may carry a password.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The config file as written: everything optional, unknown keys rejected
/// so a typo is reported rather than ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub database_url: Option<String>,
    /// The operator the console and `set` act as, like `--as`.
    pub operator: Option<String>,
    /// A connection profile's label for the header ("production").
    pub label: Option<String>,
    /// Its colour: red, green, yellow, blue, magenta, cyan, gray.
    pub color: Option<String>,
    /// Open every session read-only, whatever the operator may do.
    pub read_only: Option<bool>,
    /// Key bindings: action = [keys], replacing the defaults per action.
    pub keys: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// The app's tables and columns (written by `keyfall attach`).
    pub mapping: Option<crate::store::Mapping>,
    /// Which verdicts move the walk on, and which make the app fail.
    pub resolution: Option<RawResolution>,
}

/// `[resolution]`: the rule set resolution follows (DESIGN §2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResolution {
    pub name: Option<String>,
    pub moves_on: Option<Vec<String>>,
    pub fails: Option<Vec<String>>,
}

/// A database URL that never prints itself.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn new(url: String) -> Self {
        DatabaseUrl(SecretString::from(url))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Option<DatabaseUrl>,
    pub operator: Option<String>,
    /// Where the private cluster lives.
    pub data_dir: PathBuf,
    /// Where logs go.
    pub state_dir: PathBuf,
    pub label: Option<String>,
    pub color: Option<String>,
    pub read_only: bool,
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    /// The config file's `[mapping]`, if it has one.
    pub mapping: Option<crate::store::Mapping>,
    /// The config file's `[resolution]`, as written.
    pub resolution: RawResolution,
    /// The config file read (or the one `attach` writes to).
    pub file: Option<PathBuf>,
    /// The database login, once connected (who the database says we are).
    pub login: Option<String>,
}

/// What the command line says; `None` means "not given".
#[derive(Debug, Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub operator: Option<String>,
    pub config_file: Option<PathBuf>,
    pub read_only: bool,
}

impl Config {
    /// Command line over environment over config file over defaults.
    pub fn load(overrides: Overrides) -> anyhow::Result<Config> {
        let explicit_file = overrides.config_file.clone().or_else(|| env_path("KEYFALL_CONFIG"));
        let file = explicit_file.clone().or_else(|| config_dir().map(|d| d.join("config.toml")));
        let raw = match &file {
            Some(path) if path.is_file() => read_file(path)?,
            Some(path) if explicit_file.is_some() => {
                anyhow::bail!("config file {} does not exist", path.display())
            }
            _ => RawConfig::default(),
        };
        let database_url = overrides
            .database_url
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty()))
            .or(raw.database_url)
            .map(DatabaseUrl::new);
        let operator = overrides.operator.or(raw.operator).map(|o| o.trim().to_string()).filter(|o| !o.is_empty());
        Ok(Config {
            database_url,
            operator,
            data_dir: data_dir(),
            state_dir: state_dir(),
            label: raw.label,
            color: raw.color,
            read_only: overrides.read_only || raw.read_only.unwrap_or(false),
            keys: raw.keys.unwrap_or_default(),
            mapping: raw.mapping,
            resolution: raw.resolution.unwrap_or_default(),
            file,
            login: None,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<RawConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // toml's own message names the key ("unknown field `colour`,
        // expected one of …"); the position comes from its span.
        let line = e.span().map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        anyhow::anyhow!("config file {}{at}: {}", path.display(), e.message().trim())
    })
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn home() -> Option<PathBuf> {
    env_path("HOME")
}

fn config_dir() -> Option<PathBuf> {
    env_path("XDG_CONFIG_HOME").or_else(|| home().map(|h| h.join(".config"))).map(|d| d.join("keyfall"))
}

/// `KEYFALL_DATA_DIR`, else `/var/lib/keyfall` for root (PostgreSQL runs as
/// an unprivileged user there, and cannot enter root's home), else the XDG
/// data directory.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = env_path("KEYFALL_DATA_DIR") {
        return dir;
    }
    if crate::store::cluster::running_as_root() {
        return PathBuf::from("/var/lib/keyfall");
    }
    env_path("XDG_DATA_HOME")
        .or_else(|| home().map(|h| h.join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("keyfall")
}

pub fn state_dir() -> PathBuf {
    env_path("XDG_STATE_HOME")
        .or_else(|| home().map(|h| h.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("keyfall")
}
