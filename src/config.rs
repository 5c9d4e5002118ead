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
    /// Named databases: `[contexts.prod]` with `url`, `label`, `colour`,
    /// `read_only`, `mapping`; read by `contexts` below, so each error names its key.
    pub contexts: Option<toml::Table>,
    /// The context used when neither `--context` nor `KEYFALL_CONTEXT` names one.
    pub default_context: Option<String>,
    /// The console takes the mouse (default true); `--no-mouse` turns it off.
    pub mouse: Option<bool>,
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
    /// The config file's named databases, by name.
    pub contexts: Vec<Context>,
    /// The context in force (`--context`, `KEYFALL_CONTEXT`,
    /// `default_context`), if any.
    pub context: Option<String>,
    /// Read-only asked for whatever the context (`--read-only`, the file's
    /// `read_only`): kept when switching to another context.
    pub read_only_asked: bool,
    /// The console takes the mouse (clicks, the wheel).
    pub mouse: bool,
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
    /// `--context NAME` (else `KEYFALL_CONTEXT`).
    pub context: Option<String>,
    /// `--no-mouse`.
    pub no_mouse: bool,
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
        let at = file.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default();
        let mut contexts = match &raw.contexts {
            Some(table) => contexts(table).map_err(|e| anyhow::anyhow!("config file{at}: {e}"))?,
            None => Vec::new(),
        };
        // A context without a colour takes the file's.
        for c in &mut contexts {
            c.color = c.color.take().or_else(|| raw.color.clone());
        }
        // An explicit context (the flag, the environment) names the
        // database; `default_context` only where nothing else does.
        // The command line over the environment: --database-url over
        // KEYFALL_CONTEXT.
        let env_context = std::env::var("KEYFALL_CONTEXT").ok().filter(|_| overrides.database_url.is_none());
        let asked = overrides.context.clone().or(env_context).filter(|c| !c.trim().is_empty());
        let env_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty());
        if asked.is_some() && overrides.database_url.is_some() {
            anyhow::bail!("--context and --database-url both name a database: give one");
        }
        let chosen = match asked {
            Some(name) => Some(name),
            None if overrides.database_url.is_none() && env_url.is_none() => raw.default_context.clone(),
            None => None,
        };
        let context = match &chosen {
            Some(name) => Some(select(&contexts, name).map_err(|e| anyhow::anyhow!("{e}{}", in_file(&at)))?.clone()),
            None => None,
        };
        let database_url = match &context {
            Some(c) => Some(c.url.clone()),
            None => overrides.database_url.or(env_url).or(raw.database_url).map(DatabaseUrl::new),
        };
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
        let (label, color, context_read_only) = match &context {
            Some(c) => (Some(c.header_label().to_string()), c.color.clone(), c.read_only),
            None => (raw.label, raw.color, false),
        };
        Ok(Config {
            database_url,
            operator,
            data_dir: data_dir(),
            state_dir: state_dir(),
            label,
            color,
            read_only: overrides.read_only || raw.read_only.unwrap_or(false) || context_read_only,
            keys: flatten_keys(raw.keys.unwrap_or_default()),
            // A context's own [contexts.NAME.mapping] over the file's.
            mapping: match (&context, &raw.contexts) {
                (Some(c), Some(table)) => {
                    table.get(&c.name).and_then(|t| t.get("mapping")).and_then(|m| context_mapping(m).ok())
                }
                _ => None,
            }
            .or(raw.mapping),
            resolution: raw.resolution.unwrap_or_default(),
            file,
            login: None,
            statement_timeout,
            contexts,
            context: context.map(|c| c.name),
            read_only_asked: overrides.read_only || raw.read_only.unwrap_or(false),
            mouse: !overrides.no_mouse && raw.mouse.unwrap_or(true),
        })
    }

    /// This configuration moved to the context `name`: its database, label,
    /// colour, and read-only if the context is (or the session was asked to
    /// be). The operator asked for stays; who the login is is learned again.
    pub fn with_context(&self, name: &str) -> Result<Config, String> {
        let c = select(&self.contexts, name)?;
        let mut config = self.clone();
        config.database_url = Some(c.url.clone());
        config.label = Some(c.header_label().to_string());
        config.color = c.color.clone();
        config.read_only = self.read_only_asked || c.read_only;
        config.context = Some(c.name.clone());
        config.login = None;
        Ok(config)
    }
}

fn in_file(at: &str) -> String {
    if at.is_empty() { String::new() } else { format!(" (config file{at})") }
}

/// A named database of the config file: `[contexts.NAME]`.
#[derive(Debug, Clone)]
pub struct Context {
    pub name: String,
    pub url: DatabaseUrl,
    pub label: Option<String>,
    pub color: Option<String>,
    pub read_only: bool,
}

impl Context {
    /// What the header shows: its label, else its name.
    pub fn header_label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// The URL as it may be shown: a password (in the userinfo, a
    /// `password=` pair or parameter) replaced by `****`.
    pub fn shown_url(&self) -> String {
        masked_url(self.url.expose())
    }
}

/// `name` among `contexts`, or an error naming the ones there are.
fn select<'a>(contexts: &'a [Context], name: &str) -> Result<&'a Context, String> {
    contexts.iter().find(|c| c.name == name).ok_or_else(|| {
        let shown = crate::domain::text::visible_short(name, 40);
        if contexts.is_empty() {
            format!("unknown context {shown:?}: the config file has no [contexts]")
        } else {
            let names: Vec<&str> = contexts.iter().map(|c| c.name.as_str()).collect();
            format!("unknown context {shown:?} (contexts: {})", names.join(", "))
        }
    })
}

/// `[contexts.NAME.mapping]`: that database's tables, an input to `keyfall
/// attach` there (over the file's `[mapping]`), read as `[mapping]` is.
fn context_mapping(value: &toml::Value) -> Result<crate::store::mapping::MappingInput, String> {
    value.clone().try_into().map_err(|e: toml::de::Error| e.message().trim().to_string())
}

/// `[contexts]` read by hand, so every error names its table and key
/// (`contexts.prod.url: expected a string`).
pub fn contexts(table: &toml::Table) -> Result<Vec<Context>, String> {
    let mut out = Vec::new();
    for (name, value) in table {
        let shown = crate::domain::text::visible_short(name, 40);
        let at = format!("contexts.{shown}");
        let toml::Value::Table(entries) = value else {
            return Err(format!("{at}: expected a table ([contexts.{shown}] with url = \"postgres://…\")"));
        };
        if name.trim().is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("{at}: a context's name is one word"));
        }
        let text = |key: &str| -> Result<Option<String>, String> {
            match entries.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("{at}.{key}: expected a string, found {}", other.type_str())),
            }
        };
        let mut url = None;
        let mut color = None;
        for (key, value) in entries {
            match key.as_str() {
                "url" | "database_url" => {
                    if url.is_some() {
                        return Err(format!("{at}: url and database_url both given: give one"));
                    }
                    url = text(key)?;
                }
                "colour" | "color" => {
                    if color.is_some() {
                        return Err(format!("{at}: colour and color both given: give one"));
                    }
                    let c = text(key)?.unwrap_or_default();
                    if !COLORS.contains(&c.to_ascii_lowercase().as_str()) {
                        return Err(format!(
                            "{at}.{key}: unknown colour {:?} (one of {})",
                            crate::domain::text::visible_short(&c, 30),
                            COLORS.join(", ")
                        ));
                    }
                    color = Some(c);
                }
                "label" => {
                    text(key)?;
                }
                "read_only" => {
                    if !value.is_bool() {
                        return Err(format!("{at}.read_only: expected true or false, found {}", value.type_str()));
                    }
                }
                // This database's tables, an input to `attach` there only.
                "mapping" => {
                    context_mapping(value).map_err(|e| format!("{at}.mapping: {e}"))?;
                }
                other => {
                    return Err(format!(
                        "{at}: unknown key {:?} (url, label, colour, read_only, mapping)",
                        crate::domain::text::visible_short(other, 40)
                    ));
                }
            }
        }
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Err(format!("{at}.url: missing (the context's database: url = \"postgres://…\")"));
        };
        out.push(Context {
            name: name.clone(),
            url: DatabaseUrl::new(url),
            label: text("label")?,
            color,
            read_only: entries.get("read_only").and_then(toml::Value::as_bool).unwrap_or(false),
        });
    }
    Ok(out)
}

/// A database URL (or libpq `key=value` pairs) with any password in it
/// replaced by `****`: in the userinfo, a `password=` pair, or a
/// `password` query parameter.
pub fn masked_url(url: &str) -> String {
    let url = url.trim();
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:****@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
                        _ => pair.to_string(),
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_string(),
        };
        return crate::domain::text::visible(&format!("{scheme}://{authority}{tail}")).into_owned();
    }
    // key=value pairs: the value of password may be quoted, with spaces.
    let mut out = String::new();
    let mut rest = url;
    while !rest.is_empty() {
        let trimmed = rest.trim_start();
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        rest = trimmed;
        let Some(eq) = rest.find('=') else {
            out.push_str(rest);
            break;
        };
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let value_len = if after.starts_with('\'') {
            let mut escaped = false;
            let mut end = after.len();
            for (i, c) in after.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            end
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        let value = &after[..value_len];
        if key.eq_ignore_ascii_case("password") {
            out.push_str(&format!("{key}=****"));
        } else {
            out.push_str(&format!("{key}={value}"));
        }
        rest = &after[value_len..];
    }
    crate::domain::text::visible(&out).into_owned()
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
        // A context takes its own label, colour, read_only and URL.
        let context = table.starts_with("contexts.");
        if context && ["database_url", "label", "color", "read_only"].contains(&key) {
            continue;
        }
        let holds = match table.split('.').next().unwrap_or_default() {
            "contexts" => "one named database (url, label, colour, read_only, mapping)",
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

    fn parsed(text: &str) -> Result<Vec<super::Context>, String> {
        let table: toml::Table = toml::from_str(text).unwrap();
        super::contexts(table["contexts"].as_table().unwrap())
    }

    #[test]
    fn contexts_are_read_with_either_spelling() {
        let text = "[contexts.prod]\nurl = \"postgres://ops:hunter2@db.example/app\"\nlabel = \"PRODUCTION\"\n\
                    colour = \"red\"\nread_only = true\n\n[contexts.demo]\ndatabase_url = \"host=localhost dbname=demo\"\n\
                    color = \"green\"\n";
        let contexts = parsed(text).unwrap();
        let names: Vec<&str> = contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["demo", "prod"]);
        let prod = &contexts[1];
        assert_eq!((prod.header_label(), prod.color.as_deref(), prod.read_only), ("PRODUCTION", Some("red"), true));
        assert_eq!(prod.url.expose(), "postgres://ops:hunter2@db.example/app");
        assert_eq!(prod.shown_url(), "postgres://ops:****@db.example/app");
        let demo = &contexts[0];
        assert_eq!((demo.header_label(), demo.color.as_deref(), demo.read_only), ("demo", Some("green"), false));
        assert!(!format!("{contexts:?}").contains("hunter2"), "a context's Debug hides its URL");
    }

    #[test]
    fn context_errors_name_the_table_and_the_key() {
        let err = |text: &str| parsed(text).unwrap_err();
        assert_eq!(err("[contexts.prod]\nurl = 5\n"), "contexts.prod.url: expected a string, found integer");
        assert!(err("[contexts.prod]\nlabel = \"x\"\n").starts_with("contexts.prod.url: missing"));
        assert!(
            err("[contexts.prod]\nurl = \"x\"\ncolour = \"pink\"\n")
                .starts_with("contexts.prod.colour: unknown colour")
        );
        assert!(
            err("[contexts.prod]\nurl = \"x\"\nread_only = \"yes\"\n")
                .starts_with("contexts.prod.read_only: expected true or false")
        );
        assert!(
            err("[contexts.prod]\nurl = \"x\"\nlabel = []\n").starts_with("contexts.prod.label: expected a string")
        );
        assert!(err("[contexts.prod]\nurl = \"x\"\nhost = \"y\"\n").starts_with("contexts.prod: unknown key \"host\""));
        assert!(err("[contexts]\nprod = \"postgres://x\"\n").starts_with("contexts.prod: expected a table"));
        assert!(err("[contexts.prod]\nurl = \"x\"\ndatabase_url = \"y\"\n").contains("give one"));
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        use super::masked_url;
        assert_eq!(
            masked_url("postgresql://ops:s3cret@db:5432/app?sslmode=require"),
            "postgresql://ops:****@db:5432/app?sslmode=require"
        );
        assert_eq!(masked_url("postgres://ops@db/app"), "postgres://ops@db/app");
        assert_eq!(
            masked_url("postgres://db/app?user=ops&password=s3cret"),
            "postgres://db/app?user=ops&password=****"
        );
        assert_eq!(masked_url("postgres://o:p@ss:w@db/app"), "postgres://o:****@db/app");
        assert_eq!(masked_url("host=db password=s3cret dbname=app"), "host=db password=**** dbname=app");
        assert_eq!(masked_url("host=db password='s3 \\' cret' dbname=app"), "host=db password=**** dbname=app");
    }

    #[test]
    fn a_context_is_chosen_by_flag_environment_or_default() {
        let dir = std::env::temp_dir().join(format!("keyfall-contexts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            "default_context = \"demo\"\nmouse = false\n[contexts.prod]\nurl = \"postgres://p/prod\"\nlabel = \"PROD\"\n\
             read_only = true\n[contexts.demo]\nurl = \"postgres://d/demo\"\n",
        )
        .unwrap();
        let load = |context: Option<&str>, read_only: bool| {
            super::Config::load(super::Overrides {
                config_file: Some(file.clone()),
                context: context.map(str::to_string),
                read_only,
                ..Default::default()
            })
        };
        // (The environment's KEYFALL_CONTEXT and DATABASE_URL are not set by the test runner.)
        if std::env::var_os("KEYFALL_CONTEXT").is_none() && std::env::var_os("DATABASE_URL").is_none() {
            let config = load(None, false).unwrap();
            assert_eq!(config.context.as_deref(), Some("demo"));
            assert_eq!(config.database_url.as_ref().unwrap().expose(), "postgres://d/demo");
            assert_eq!((config.label.as_deref(), config.read_only, config.mouse), (Some("demo"), false, false));
        }
        let config = load(Some("prod"), false).unwrap();
        assert_eq!(config.database_url.as_ref().unwrap().expose(), "postgres://p/prod");
        assert_eq!((config.label.as_deref(), config.read_only), (Some("PROD"), true));
        // Switching away from a read-only context keeps only what was asked.
        let demo = config.with_context("demo").unwrap();
        assert_eq!((demo.label.as_deref(), demo.read_only), (Some("demo"), false));
        let asked = load(Some("prod"), true).unwrap().with_context("demo").unwrap();
        assert!(asked.read_only, "--read-only holds in every context");
        let err = load(Some("stage"), false).unwrap_err().to_string();
        assert!(err.starts_with("unknown context \"stage\" (contexts: demo, prod)"), "{err}");
        let both = super::Config::load(super::Overrides {
            config_file: Some(file.clone()),
            context: Some("prod".into()),
            database_url: Some("postgres://x/y".into()),
            ..Default::default()
        });
        assert!(both.unwrap_err().to_string().contains("give one"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
