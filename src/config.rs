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
    /// Key bindings: `action = [keys]` on every screen that has the
    /// action, or `[keys.screen]` tables for one screen.
    pub keys: Option<std::collections::BTreeMap<String, RawKeys>>,
    /// The app's tables and columns, as `keyfall attach` should install
    /// them (any part left out is detected); never read by other commands.
    pub mapping: Option<crate::store::mapping::MappingInput>,
    /// Which verdicts move the walk on, and which make the app fail.
    pub resolution: Option<RawResolution>,
    /// How long one statement of a command may run ("30s", "2min"; "0":
    /// no bound), like PostgreSQL's `statement_timeout`.
    pub statement_timeout: Option<String>,
}

/// One entry under `[keys]`: an action's keys, or a screen's table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawKeys {
    Keys(Vec<String>),
    Screen(std::collections::BTreeMap<String, Vec<String>>),
}

/// `[keys]` flattened: `action` or `screen.action` → keys.
fn flatten_keys(raw: std::collections::BTreeMap<String, RawKeys>) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    for (name, entry) in raw {
        match entry {
            RawKeys::Keys(keys) => {
                out.insert(name, keys);
            }
            RawKeys::Screen(actions) => {
                for (action, keys) in actions {
                    out.insert(format!("{name}.{action}"), keys);
                }
            }
        }
    }
    out
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
    /// The config file's `[mapping]`, if it has one: an input to `attach`
    /// only (every other command uses the mapping installed in its
    /// database).
    pub mapping: Option<crate::store::mapping::MappingInput>,
    /// The config file's `[resolution]`, as written.
    pub resolution: RawResolution,
    /// The config file read.
    pub file: Option<PathBuf>,
    /// The database login, once connected (who the database says we are).
    pub login: Option<String>,
    /// The bound on each statement of a command (`statement_timeout`);
    /// `None`: no bound. Long work (loads, migrations, streamed
    /// whole-database output) runs without it.
    pub statement_timeout: Option<std::time::Duration>,
}

/// The header colours `color` may name.
const COLORS: [&str; 8] = ["red", "green", "yellow", "blue", "magenta", "cyan", "gray", "grey"];

/// The statement timeout when nothing sets one: a read that takes longer
/// is stuck behind a lock or a runaway plan, not working.
pub const DEFAULT_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
        // KEYFALL_STATEMENT_TIMEOUT over the file's statement_timeout; each
        // error names where the value came from.
        let statement_timeout = match std::env::var("KEYFALL_STATEMENT_TIMEOUT").ok().filter(|v| !v.trim().is_empty()) {
            Some(v) => duration(&v).map_err(|e| anyhow::anyhow!("KEYFALL_STATEMENT_TIMEOUT: {e}"))?,
            None => match &raw.statement_timeout {
                Some(v) => duration(v).map_err(|e| {
                    let at = file.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default();
                    anyhow::anyhow!("config file{at}: statement_timeout: {e}")
                })?,
                None => Some(DEFAULT_STATEMENT_TIMEOUT),
            },
        };
        if let Some(color) = &raw.color
            && !COLORS.contains(&color.to_ascii_lowercase().as_str())
        {
            let at = file.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default();
            anyhow::bail!(
                "config file{at}: color: unknown colour {:?} (one of {})",
                crate::domain::text::visible_short(color, 30),
                COLORS.join(", ")
            );
        }
        Ok(Config {
            database_url,
            operator,
            data_dir: data_dir(),
            state_dir: state_dir(),
            label: raw.label,
            color: raw.color,
            read_only: overrides.read_only || raw.read_only.unwrap_or(false),
            keys: flatten_keys(raw.keys.unwrap_or_default()),
            mapping: raw.mapping,
            resolution: raw.resolution.unwrap_or_default(),
            file,
            login: None,
            statement_timeout,
        })
    }
}

/// A duration as PostgreSQL writes one for `statement_timeout`: a number
/// and a unit (`500ms`, `30s`, `2min`, `1h`), or `0` for no bound. A bare
/// number is refused: PostgreSQL would read it as milliseconds, libpq's
/// `connect_timeout` as seconds.
pub fn duration(text: &str) -> Result<Option<std::time::Duration>, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = (&t[..digits], t[digits..].trim());
    let shown = crate::domain::text::visible_short(t, 30);
    let n: u64 = number.parse().map_err(|_| format!("expected a duration such as 30s or 2min, not {shown:?}"))?;
    if n == 0 && unit.is_empty() {
        return Ok(None);
    }
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "" => return Err(format!("{shown:?} needs a unit: ms, s, min or h (0 turns the bound off)")),
        _ => return Err(format!("unknown unit in {shown:?}: use ms, s, min or h")),
    };
    let ms = n.checked_mul(ms).filter(|ms| *ms <= i32::MAX as u64).ok_or_else(|| format!("{shown:?} is too long"))?;
    Ok((ms > 0).then(|| std::time::Duration::from_millis(ms)))
}

fn read_file(path: &Path) -> anyhow::Result<RawConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        if let Some(misplaced) = misplaced_key(&text) {
            return anyhow::anyhow!("config file {}: {misplaced}", path.display());
        }
        // toml's message names an unknown key ("unknown field `colour`,
        // expected one of …") but not the key of a wrong value ("invalid
        // type: string \"yes\", expected a boolean"): the line and the key
        // written on it come from its span (never the line itself, which
        // may hold a password).
        let at = match e.span() {
            Some(sp) => {
                let start = sp.start.min(text.len());
                let line = text[..start].matches('\n').count() + 1;
                match key_at(&text, start) {
                    Some(key) => format!(" (line {line}, {key})"),
                    None => format!(" (line {line})"),
                }
            }
            None => String::new(),
        };
        anyhow::anyhow!("config file {}{at}: {}", path.display(), e.message().trim())
    })
}

/// The keys that belong at the top of the file, before any `[table]`.
const TOP_KEYS: [&str; 6] = ["database_url", "operator", "label", "color", "read_only", "statement_timeout"];

/// A top-level key written below a `[table]` header — where TOML puts it
/// inside that table (`statement_timeout = "2min"` appended after
/// `[keys.editor]`): said as such, with the line and what the table holds.
fn misplaced_key(text: &str) -> Option<String> {
    let mut table: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            table = Some(line.trim_start_matches('[').trim_end_matches(']').trim().to_string());
            continue;
        }
        let Some((key, _)) = line.split_once('=') else { continue };
        let key = key.trim().trim_matches('"');
        let Some(table) = &table else { continue };
        if !TOP_KEYS.contains(&key) {
            continue;
        }
        let holds = match table.split('.').next().unwrap_or_default() {
            "keys" if table.contains('.') => "key bindings of one screen (action = [keys])",
            "keys" => "key bindings (action = [keys])",
            "resolution" => "the rules resolution follows (name, moves_on, fails)",
            "mapping" => "the app's tables and columns",
            _ => "a table of its own",
        };
        return Some(format!(
            "`{key}` is inside [{}] (line {}), which holds {holds}; move it above the first [table]",
            crate::domain::text::visible_short(table, 40),
            n + 1
        ));
    }
    None
}

/// The key written on the line holding byte `at` (`read_only`,
/// `[resolution] moves_on`), when the line is a `key = value`.
fn key_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with(['#', '[']) {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|t| format!("{} ", t.split('#').next().unwrap_or(t).trim()));
    Some(crate::domain::text::visible_short(&format!("{}{key}", table.unwrap_or_default()), 80))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::duration;

    #[test]
    fn statement_timeouts_are_written_as_postgresql_writes_them() {
        assert_eq!(duration("30s"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(duration(" 2min "), Ok(Some(Duration::from_secs(120))));
        assert_eq!(duration("500ms"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(duration("1 h"), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(duration("0"), Ok(None));
        assert_eq!(duration("0s"), Ok(None));
        assert!(duration("30").unwrap_err().contains("needs a unit"));
        assert!(duration("30 days").unwrap_err().contains("unknown unit"));
        assert!(duration("soon").is_err());
        assert!(duration("9999999h").unwrap_err().contains("too long"));
    }

    #[test]
    fn a_wrong_value_is_reported_by_its_key() {
        let text = "label = \"x\"\n[resolution]  # the app's rules\nmoves_on = 5\n";
        let at = text.find("5").unwrap();
        assert_eq!(super::key_at(text, at).as_deref(), Some("[resolution] moves_on"));
        assert_eq!(super::key_at("read_only = \"yes\"", 12).as_deref(), Some("read_only"));
        assert_eq!(super::key_at("[keys]\n", 2), None);
    }
}
