//! The command line: one file per subcommand, each a non-interactive twin of
//! a console view, human text by default and `--json` for scripts. Uses
//! `domain` and `store`, never the console. Exit codes: 0 ok, 1 a negative
//! answer (unresolved, `can`'s denied, conflict), 2 usage or input error, 3
//! database unreachable, 4 refused (every denial) or failed, 70 an internal error, 74
//! the output could not be written; writing to a closed pipe ends quietly
//! with the code the command would have had.

/// `print!` for commands: to stdout through `out`, where a closed pipe is
/// not a panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::write(format_args!($($arg)*)) };
}

/// `println!` for commands, as `out!`.
macro_rules! outln {
    () => { $crate::cli::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

mod admin;
mod attach;
mod audit;
mod batch;
mod blast;
mod can;
mod check;
mod complete;
mod console;
mod contexts;
mod demo;
mod get;
mod history;
mod input;
mod lint;
mod operator;
mod out;
mod progress;
mod report;
mod resolve;
mod restore;
mod set;
mod suggest;
mod test_connection;
mod transfer;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::store::{Mapping, Store, StoreError, connect};

pub use out::ColourChoice;

#[derive(Debug, Parser)]
#[command(
    name = "keyfall",
    version,
    about = "See which AI key every tenant really uses, and why",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// PostgreSQL URL or libpq key=value pairs (else DATABASE_URL, the config file, PG* variables, a local server, or a private cluster).
    #[arg(long, global = true, value_name = "URL", help_heading = GLOBAL)]
    pub database_url: Option<String>,
    /// The operator to act as (an email of a keyfall user).
    #[arg(long = "as", global = true, value_name = "EMAIL", help_heading = GLOBAL)]
    pub operator: Option<String>,
    /// Config file (default: ~/.config/keyfall/config.toml).
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Colour verdicts, warnings and masks: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_name = "WHEN", value_enum, default_value_t, help_heading = GLOBAL)]
    pub color: ColourChoice,
    /// Console: open every database session read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Console: load the demo data first (when absent), then open.
    #[arg(long)]
    pub demo: bool,
    /// A named database of the config file's [contexts] (else KEYFALL_CONTEXT, else default_context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Console: leave the mouse to the terminal (no clicks, no wheel); config: mouse = false.
    #[arg(long)]
    pub no_mouse: bool,
    /// Without a command, keyfall opens the console.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the seed's scenario (idempotent); `--scale xl` adds the XL data set.
    #[command(
        after_help = "Examples:\n  keyfall demo\n  keyfall demo --scale xl                # 100,000 accounts, 1,000,000 users"
    )]
    Demo(demo::Args),
    /// Which account answers FUNCTION for USER, and why — every step, both hops.
    #[command(
        after_help = "Examples:\n  keyfall resolve --user paid2@paid.com --function auto_cluster\n  keyfall resolve --user paid2@paid.com --function generate_images --json\n  keyfall resolve --batch < pairs.csv    # user,function lines in, one JSON line out each"
    )]
    Resolve(resolve::Args),
    /// What USER may do with settings, check by check, under the current policy.
    #[command(
        after_help = "Examples:\n  keyfall can --user paid2@paid.com\n  keyfall can --user paid2@paid.com --account paid-2 --action view_settings --policy B"
    )]
    Can(can::Args),
    /// Who answers every integration type for every account.
    #[command(
        after_help = "Examples:\n  keyfall report\n  keyfall report --json | jq '.[] | select(.answered_by == null)'"
    )]
    Report(report::Args),
    /// Show one account's own setting of one type (secrets masked).
    #[command(after_help = "Examples:\n  keyfall get aws-admin openai\n  keyfall get paid-2 image_generation --json")]
    Get(get::Args),
    /// Change one field of a setting; a plain value may follow, a secret comes from stdin or a hidden prompt.
    #[command(
        after_help = "Examples:\n  keyfall --as dev@igny8.com set aws-admin openai model gpt-4o\n  keyfall --as dev@igny8.com set aws-admin openai apiKey < key.txt      # a key from stdin only\n  keyfall --as dev@igny8.com set aws-admin openai model gpt-4o --dry-run"
    )]
    Set(set::Args),
    /// Bring a setting, the chain or the policy back to how it was at a moment (previewed, version-checked, audited as a restore).
    #[command(
        after_help = "Examples:\n  keyfall --as dev@igny8.com restore --account aws-admin --type openai --at '#812' --dry-run\n  keyfall --as dev@igny8.com restore --account aws-admin --type openai --at 'yesterday 14:00' --keep-key --yes\n  keyfall --as dev@igny8.com restore --chain --at '3 days ago' --yes\n  keyfall --as dev@igny8.com restore --policy --at '#812' --dry-run"
    )]
    Restore(restore::Args),
    /// Settings as JSON, keys as fingerprints unless --reveal.
    #[command(
        after_help = "Examples:\n  keyfall export > settings.json\n  keyfall --as dev@igny8.com export --account aws-admin --reveal --yes"
    )]
    Export(transfer::ExportArgs),
    /// Apply an export file: validated, previewed, one audited transaction.
    #[command(
        after_help = "Examples:\n  keyfall --as dev@igny8.com import settings.json --dry-run\n  keyfall --as dev@igny8.com import settings.json --yes"
    )]
    Import(transfer::ImportArgs),
    /// Test a key for real against its provider (OpenAI lists models; Runware authenticates).
    #[command(
        after_help = "Examples:\n  keyfall --as dev@igny8.com test-connection aws-admin openai\n  keyfall --as dev@igny8.com test-connection --user paid2@paid.com --function auto_cluster"
    )]
    TestConnection(test_connection::Args),
    /// Shell completions: subcommands, options, and names from the data (slugs, emails, functions, types, fields).
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell: bash, zsh, fish (with names from the data), elvish, powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Man pages (roff): keyfall's, or a command's, or all of them into a directory.
    #[command(after_help = MAN_HELP)]
    Man {
        /// The command whose page to write (default: keyfall's own).
        #[arg(value_name = "COMMAND", conflicts_with = "dir")]
        command: Option<String>,
        /// Write every page (keyfall.1 and keyfall-COMMAND.1 for each command) into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// What the completion scripts ask while you type (hidden): candidates for the word at INDEX.
    #[command(name = "__complete", hide = true)]
    Complete {
        /// Which of WORDS is being completed.
        #[arg(long)]
        index: usize,
        /// Only say (by the exit code) whether keyfall completes that word.
        #[arg(long)]
        check: bool,
        /// The command line, the program's name first.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Check expected resolutions from a TOML file (a CI guard): exit 1 with a diff on any difference.
    #[command(
        after_help = "Examples:\n  keyfall check expectations.toml        # [[expect]] user, function, answered_by"
    )]
    Check(check::Args),
    /// What is wrong with the settings (rules L001–L009); `--fix` repairs what is safe.
    #[command(
        after_help = "Examples:\n  keyfall lint\n  keyfall lint --account aws-admin --json\n  keyfall --as dev@igny8.com lint --fix --yes"
    )]
    Lint(lint::Args),
    /// Who changed what: the audit log, secrets as fingerprints.
    #[command(
        after_help = "Examples:\n  keyfall audit --account aws-admin --type openai\n  keyfall audit --actor dev@igny8.com --limit 20 --json\n  keyfall audit --find-key < key.txt     # where a key was set, by its fingerprint"
    )]
    Audit(audit::Args),
    /// The blast radius of a key (stdin, a hidden prompt, or --fingerprint): every row that held it, when, and who resolved to it.
    #[command(
        after_help = "Examples:\n  keyfall key-history < leaked-key.txt         # the key on stdin, never argv\n  keyfall key-history --fingerprint 35c712e1 --csv > incident.csv\n  keyfall key-history --fingerprint 35c712e1 --json"
    )]
    KeyHistory(blast::Args),
    /// Show or replace the system fallback chain (superuser or developer).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  keyfall chain show\n  keyfall --as dev@igny8.com chain set aws-admin default-account default --dry-run"
    )]
    Chain(admin::ChainCommand),
    /// Show or switch the permission policy (superuser or developer).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  keyfall policy show --json\n  keyfall --as dev@igny8.com policy set B --dry-run"
    )]
    Policy(admin::PolicyCommand),
    /// Which database login may act as which app user (the schema owner's job).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  keyfall operator list\n  keyfall operator add alice alice@example.com   # as the schema owner"
    )]
    Operator(operator::OperatorCommand),
    /// Create or update keyfall's own schema (`keyfall`) and install the mapping.
    #[command(
        after_help = "Examples:\n  keyfall migrate\n  keyfall --database-url postgres://me@localhost/myapp migrate"
    )]
    Migrate,
    /// Use keyfall on an app's database: find its tables, show the mapping and what would be installed, install on confirmation.
    #[command(
        after_help = "Examples:\n  keyfall --database-url postgres://me@localhost/myapp attach --dry-run\n  keyfall --database-url postgres://me@localhost/myapp attach --yes"
    )]
    Attach(attach::AttachArgs),
    /// Remove everything keyfall installed (its schema and its triggers); the app's tables and rows stay as they were.
    #[command(
        after_help = "Examples:\n  keyfall detach --yes\n  keyfall detach --purge --yes           # also drops keyfall's own schema and data"
    )]
    Detach(attach::DetachArgs),
    /// The config file's named databases ([contexts.NAME]); passwords masked.
    #[command(
        alias = "context",
        after_help = "Examples:\n  keyfall contexts                      # * marks the one in use\n  keyfall --context prod resolve --user paid2@paid.com --function auto_cluster\n  KEYFALL_CONTEXT=staging keyfall report"
    )]
    Contexts(contexts::Args),
}

impl Command {
    /// Work that is long by design and runs without keyfall's statement
    /// timeout: loading and installing (demo, migrate, attach, detach) and
    /// whole-database output read as it streams (lint and export without
    /// `--account`, the report — whose query sets no clock of its own
    /// either), which runs as long as its reader takes.
    fn is_long_work(&self) -> bool {
        match self {
            Command::Demo(_) | Command::Migrate | Command::Attach(_) | Command::Detach(_) => true,
            Command::Lint(args) => args.account.is_none(),
            Command::Export(args) => args.account.is_none(),
            Command::Report(_) | Command::KeyHistory(_) => true,
            _ => false,
        }
    }
}

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// A negative answer: unresolved, `can`'s denied, findings, conflict.
    Negative = 1,
    Usage = 2,
    Unavailable = 3,
    /// Refused or failed: a permission (checked by keyfall or by the
    /// database: every denial of something asked for is 4), a timeout, a
    /// constraint, a failed migration.
    Refused = 4,
    /// stdout could not be written (not a closed pipe): EX_IOERR.
    Output = 74,
}

/// A command's failure, mapped to one line and an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Negative(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
    /// Writing stdout failed (a full disk; a closed pipe is not an error).
    #[error("{0}")]
    Output(String),
}

impl CliError {
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::Negative(_) => Exit::Negative,
            CliError::Store(StoreError::Unavailable(_)) => Exit::Unavailable,
            CliError::Store(StoreError::NotFound(_) | StoreError::Invalid(_)) => Exit::Usage,
            CliError::Store(StoreError::Conflict(_)) => Exit::Negative,
            CliError::Store(StoreError::Database(_) | StoreError::Refused(_)) => Exit::Refused,
            CliError::Store(StoreError::NotInstalled(_)) => Exit::Usage,
            CliError::Other(_) => Exit::Usage,
            CliError::Output(_) => Exit::Output,
        }
    }
}

pub type CliResult = Result<Exit, CliError>;

pub use audit::render as render_audit;
pub use console::access as console_access;
pub use console::open_context as console_context;

/// Run one command to completion.
pub async fn run(cli: Cli) -> CliResult {
    out::set_colour(cli.color);
    if let Some(Command::Complete { index, check, words }) = cli.command {
        let request =
            complete::Request { database_url: cli.database_url, config_file: cli.config, index, check, words };
        return Ok(complete::run(request).await);
    }
    let config = Config::load(Overrides {
        database_url: cli.database_url.clone(),
        operator: cli.operator.clone(),
        config_file: cli.config.clone(),
        read_only: cli.read_only,
        context: cli.context.clone(),
        no_mouse: cli.no_mouse,
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut config = config;
    if cli.command.as_ref().is_some_and(Command::is_long_work) {
        config.statement_timeout = None;
    }
    // What needs no database.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            out::write_bytes(&complete::script(*shell));
            return finish(Ok(Exit::Ok));
        }
        Some(Command::Man { dir: Some(dir), .. }) => {
            let written = man_pages(dir)
                .map_err(|e| CliError::Usage(format!("cannot write the man pages into {}: {e}", dir.display())))?;
            outln!(
                "wrote {written} man pages into {} (man -M DIR keyfall, or put them in ~/.local/share/man/man1)",
                dir.display()
            );
            return finish(Ok(Exit::Ok));
        }
        Some(Command::Man { command, .. }) => {
            return match man_page(command.as_deref(), &mut std::io::stdout()) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CliError::Usage(e.to_string())),
                // `keyfall man | head`: the reader had enough; another write
                // error is said as every command says it.
                Err(e) => {
                    out::note(&e);
                    finish(Ok(Exit::Ok))
                }
                Ok(()) => finish(Ok(Exit::Ok)),
            };
        }
        Some(Command::Contexts(args)) => return finish(contexts::run(&config, args)),
        _ => {}
    }
    if let Some(Command::Attach(args)) = &cli.command {
        let target = find_target(&config).await?;
        return attach::attach(&target, &config, args).await;
    }
    if let Some(Command::Detach(args)) = &cli.command {
        let target = find_target(&config).await?;
        return attach::detach(&target, args).await;
    }
    let intent = match &cli.command {
        Some(Command::Demo(_)) => Intent::Demo,
        None if cli.demo => Intent::Demo,
        Some(Command::Migrate) => Intent::Migrate,
        _ => Intent::Read,
    };
    // A command line uses one connection; the console a pool.
    let single = cli.command.is_some();
    // The audit log is keyfall's own: it stays readable while the app's
    // tables no longer fit the mapping (it is where the change is told).
    let log_only = matches!(cli.command, Some(Command::Audit(_)));
    // A one-shot `resolve` reads its user, function and settings in the
    // start-up check's statement.
    let first = match &cli.command {
        Some(Command::Resolve(a)) if !a.batch && a.at.is_none() => a.user.as_deref().zip(a.function.as_deref()),
        _ => None,
    };
    let (store, target, identity) = open_store_with(&config, intent, single, log_only, first).await?;
    if let Some(bound) = config.statement_timeout
        && !target.options.get_options().is_some_and(|o| o.ends_with(&own_bound(bound)))
    {
        // The connection string or PGOPTIONS set the bound, not keyfall.
        config.statement_timeout = None;
    }
    // The console may move to another context: it starts from the config
    // as asked, before the operator is decided for this database.
    let asked = config.clone();
    let store = match identify(&store, identity, &mut config).await {
        Ok(operator) => store.with_rules(config_rules(&config)?).with_operator(operator),
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    let result = match cli.command {
        None => console::run(store.clone(), &target, &config, cli.demo, &asked).await,
        Some(Command::Demo(args)) => demo::run(&store, args).await,
        Some(Command::Resolve(args)) => resolve::run(&store, args).await,
        Some(Command::Can(args)) => can::run(&store, args).await,
        Some(Command::Report(args)) => report::run(&store, args).await,
        Some(Command::Get(args)) => get::run(&store, args).await,
        Some(Command::Set(args)) => set::run(&store, &config, args).await,
        Some(Command::Restore(args)) => restore::run(&store, &config, args).await,
        Some(Command::Audit(args)) => audit::run(&store, args).await,
        Some(Command::KeyHistory(args)) => blast::run(&store, args).await,
        Some(Command::Lint(args)) => lint::run(&store, &config, args).await,
        Some(Command::Check(args)) => check::run(&store, args).await,
        Some(Command::TestConnection(args)) => test_connection::run(&store, &config, args).await,
        Some(Command::Export(args)) => transfer::export(&store, &config, args).await,
        Some(Command::Import(args)) => transfer::import(&store, &config, args).await,
        Some(
            Command::Completions { .. }
            | Command::Man { .. }
            | Command::Complete { .. }
            | Command::Attach(_)
            | Command::Detach(_)
            | Command::Contexts(_),
        ) => Ok(Exit::Ok),
        Some(Command::Chain(command)) => admin::chain(&store, &config, command).await,
        Some(Command::Policy(command)) => admin::policy(&store, &config, command).await,
        Some(Command::Operator(command)) => operator::run(&store, command).await,
        Some(Command::Migrate) => {
            outln!("keyfall's schema is current in {}", store.label());
            Ok(Exit::Ok)
        }
    };
    let result = match result {
        Err(e) => Err(suggest_names(&store, e).await),
        ok => ok,
    };
    store.close().await;
    finish(result.map_err(|e| explain_timeout(e, &config)))
}

/// An unknown account, user or function, with the names a typo away
/// ("unknown account "aws-admn" (did you mean aws-admin?)"), whichever
/// command said it.
async fn suggest_names(store: &Store, e: CliError) -> CliError {
    let message = e.to_string();
    let Some((kind, typed)) = ["account", "user", "operator", "function"].iter().find_map(|kind| {
        let rest = message.strip_prefix(&format!("unknown {kind} \""))?;
        let typed = &rest[..rest.find('"')?];
        // Only a name shown as itself (no escapes) is looked up again.
        (!typed.contains('\\')).then_some((*kind, typed.to_string()))
    }) else {
        return e;
    };
    if message.contains("did you mean") {
        return e;
    }
    let candidates = match kind {
        "account" => store.slug_candidates(&typed).await,
        "function" => store.function_names().await,
        _ => store.email_candidates(&typed).await,
    };
    let hint = match candidates {
        Ok(names) => suggest::did_you_mean(&typed, names.iter().map(String::as_str)),
        Err(_) => String::new(),
    };
    if hint.is_empty() {
        return e;
    }
    let quoted = format!("unknown {kind} \"{typed}\"");
    let with_hint = message.replacen(&quoted, &format!("{quoted}{hint}"), 1);
    match e {
        CliError::Store(StoreError::NotFound(_)) => CliError::Store(StoreError::NotFound(with_hint)),
        CliError::Negative(_) => CliError::Negative(with_hint),
        CliError::Usage(_) => CliError::Usage(with_hint),
        // Any other kind keeps its exit code and its words.
        other => other,
    }
}

/// A statement cancelled by keyfall's own bound says how to change it.
fn explain_timeout(e: CliError, config: &Config) -> CliError {
    match (e, config.statement_timeout) {
        (CliError::Store(StoreError::Database(m)), Some(bound)) if m.contains("statement timeout") => {
            CliError::Store(StoreError::Database(format!(
                "{m} ({} ms, keyfall's bound on a statement: KEYFALL_STATEMENT_TIMEOUT or statement_timeout in the \
                 config file sets it, 0 turns it off)",
                bound.as_millis()
            )))
        }
        (e, _) => e,
    }
}

/// A command's outcome once its output is flushed: a closed pipe changes
/// nothing, another write error (a full disk) fails a command that had
/// succeeded.
fn finish(result: CliResult) -> CliResult {
    match (out::finish(), result) {
        (Err(e), Ok(_)) => Err(CliError::Output(e)),
        (_, result) => result,
    }
}

/// Who the operator is, as the database says (DESIGN §4): `--as` (or the
/// config's `operator`) must be an app user this login may act as; without
/// it, the one app user the login is mapped to, if exactly one. A login
/// mapped to nobody has no operator: it reads, and every write says how to
/// map it.
async fn identify(
    store: &Store,
    identity: Option<crate::store::Identity>,
    config: &mut Config,
) -> Result<Option<String>, CliError> {
    let id = match identity {
        Some(id) => id,
        None => store.whoami().await?,
    };
    let operator = match config.operator.take() {
        Some(email) if id.may_act_as(&email) => Some(email),
        Some(email) => {
            let may = if id.emails.is_empty() { "nobody yet".to_string() } else { id.emails.join(", ") };
            return Err(CliError::Usage(format!(
                "login {} may not act as {} (it may act as: {may}); a database superuser maps it with `keyfall operator add {} EMAIL`",
                crate::domain::text::visible_short(&id.login, 80),
                crate::domain::text::visible_short(&email, 120),
                crate::domain::text::visible_short(&id.login, 80),
            )));
        }
        None if id.emails.len() == 1 => id.emails.first().cloned(),
        None => None,
    };
    config.operator = operator.clone();
    config.login = Some(id.login);
    Ok(operator)
}

/// What a command may do to the database before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Read (and write settings) only: the database and keyfall's objects
    /// must exist; nothing is created, migrated or installed.
    Read,
    /// `keyfall migrate`: create the database if missing, apply migrations,
    /// (re)install the mapping.
    Migrate,
    /// `keyfall demo` / `--demo`: keyfall's demo tables, created if missing.
    Demo,
}

/// The rule set resolution follows: the config's `[resolution]`, else the
/// seed's `get_model_config`.
pub fn config_rules(config: &Config) -> Result<crate::domain::resolve::Rules, CliError> {
    let r = &config.resolution;
    if r.name.is_none() && r.moves_on.is_none() && r.fails.is_none() {
        return Ok(crate::domain::resolve::Rules::default());
    }
    let default = crate::domain::resolve::Rules::default();
    let moves_on: Vec<String> =
        r.moves_on.clone().unwrap_or_else(|| default.moves_on_names().into_iter().map(str::to_string).collect());
    let fails: Vec<String> =
        r.fails.clone().unwrap_or_else(|| default.fails_names().into_iter().map(str::to_string).collect());
    let moves_on: Vec<&str> = moves_on.iter().map(String::as_str).collect();
    let fails: Vec<&str> = fails.iter().map(String::as_str).collect();
    crate::domain::resolve::Rules::new(r.name.as_deref().unwrap_or("custom (config [resolution])"), &moves_on, &fails)
        .map_err(|e| CliError::Usage(format!("config file [resolution]: {e}")))
}

/// Where the database is (DESIGN §5), without connecting to it yet; every
/// session bounded by the config's statement timeout, unless the
/// connection string (`options=-c statement_timeout=…`) or `PGOPTIONS`
/// already sets one, as libpq would send it.
pub async fn find_target(config: &Config) -> Result<connect::Target, CliError> {
    let url = config.database_url.as_ref().map(|u| u.expose());
    let mut target = connect::discover(url, &config.data_dir).await?;
    if let Some(bound) = config.statement_timeout
        && !target.options.get_options().is_some_and(|o| o.contains("statement_timeout"))
    {
        target.options = target.options.options([("statement_timeout", format!("{}ms", bound.as_millis()))]);
    }
    Ok(target)
}

/// keyfall's statement timeout as the startup options carry it.
fn own_bound(bound: std::time::Duration) -> String {
    format!("-c statement_timeout={}ms", bound.as_millis())
}

/// Find the database and open it as `intent` allows: reading commands
/// change nothing and say what is missing; `migrate`, `demo` and the private
/// cluster's first run create what they need. `single`: one connection (a
/// command line) rather than a pool (the console). Reading commands learn
/// who the login is in the same round trip as the installation check.
/// `log_only`: the command reads only keyfall's own tables (`audit`), so
/// app tables that no longer fit the mapping are said, not refused.
pub async fn open_store(
    config: &Config,
    intent: Intent,
    single: bool,
    log_only: bool,
) -> Result<(Store, connect::Target, Option<crate::store::Identity>), CliError> {
    open_store_with(config, intent, single, log_only, None).await
}

/// `open_store`; with `subject` (user, function), a reading command's check
/// also reads what `Store::subject` will be asked for them
/// (`Store::check_with_subject`).
async fn open_store_with(
    config: &Config,
    intent: Intent,
    single: bool,
    log_only: bool,
    subject: Option<(&str, &str)>,
) -> Result<(Store, connect::Target, Option<crate::store::Identity>), CliError> {
    let mut identity = None;
    let target = find_target(config).await?;
    let private = matches!(target.source, connect::Source::Private(_));
    let store = match intent {
        Intent::Demo => {
            let store = Store::connect_creating(&target).await?;
            if let crate::store::Installed::Current { mapping: Some(m) }
            | crate::store::Installed::Detached { mapping: Some(m), .. } = store.installed().await?
                && !m.is_demo()
            {
                store.close().await;
                return Err(CliError::Usage(format!(
                    "{} is attached to the app's tables ({}); the demo uses keyfall's own demo tables: use another database",
                    target.label(),
                    m.settings_table()
                )));
            }
            store.close().await;
            Store::open_demo_telling(&target, Some(attach::say_lock_waits())).await?
        }
        Intent::Migrate => {
            let store = Store::connect_creating(&target).await?.on_lock_wait(attach::say_lock_waits());
            // The mapping installed stays, even where keyfall's schema is
            // older than this keyfall (an outdated install is still attached
            // to the app's tables: never fall back to the demo tables there).
            // A detached database stays detached (`attach` resumes it); the
            // config's [mapping] is used only where nothing is installed.
            let installed = store.installed_mapping().await?;
            if installed.is_none()
                && let Some((since, _)) = store.detached_since().await?
            {
                store.migrate().await?;
                outln!(
                    "keyfall is detached from {} since {}: migrated, still detached (`keyfall attach` resumes it)",
                    target.label(),
                    since.format("%Y-%m-%d %H:%M:%S UTC")
                );
                store
            } else {
                let mapping = match (installed, &config.mapping) {
                    (Some(m), _) => m,
                    (None, Some(input)) => input.resolve(&store.catalog().await?, None).map_err(CliError::Usage)?,
                    (None, None) => Mapping::demo(),
                };
                if mapping.is_demo() {
                    store.create_demo_tables().await?;
                } else {
                    let problems = store.mapping_problems(&mapping).await?;
                    if !problems.is_empty() {
                        return Err(StoreError::NotInstalled(format!(
                            "the mapping does not fit {}: {}",
                            target.label(),
                            problems.join("; ")
                        ))
                        .into());
                    }
                }
                store.migrate().await?;
                store.install_mapping(&mapping).await?;
                store.with_mapping(&mapping)
            }
        }
        Intent::Read => {
            let store = if private && config.mapping.is_none() {
                // The private cluster is keyfall's own: its first run sets
                // up the (empty) demo tables.
                let store = Store::connect_creating(&target).await?;
                if store.installed().await? == crate::store::Installed::Nothing {
                    store.close().await;
                    Store::open_demo_telling(&target, Some(attach::say_lock_waits())).await?
                } else {
                    store
                }
            } else {
                let connected =
                    if single { Store::connect_single(&target).await } else { Store::connect(&target).await };
                connected.map_err(|e| match e {
                    StoreError::Unavailable(m) if m.contains("does not exist") => StoreError::Unavailable(format!(
                        "{m} (keyfall never creates a database for a reading command: `keyfall demo` or `keyfall migrate` create one)"
                    )),
                    other => other,
                })?
            };
            let checked = match subject {
                Some((user, function)) => store.check_with_subject(None, user, function).await,
                None => store.check(None).await,
            };
            match checked {
                Ok((mapping, id)) => {
                    identity = Some(id);
                    store.with_mapping(&mapping)
                }
                Err(StoreError::NotInstalled(m)) if log_only && m.contains("no longer fit") => {
                    eprintln!("keyfall: {m}");
                    store
                }
                Err(e) => {
                    store.close().await;
                    return Err(e.into());
                }
            }
        }
    };
    Ok((store, target, identity))
}

/// Field changes between two versions, one indented line each, secrets as
/// fingerprints or masks.
fn changes_text(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> String {
    crate::preview::text(&crate::preview::changes(before, after))
}

/// The version of every `--json` shape (docs/json/*.schema.json): a field
/// may be added without changing it; a field renamed, removed or changed
/// in meaning or type changes it.
pub const FORMAT_VERSION: u32 = 1;

/// A JSON object with `"format_version"` first, then the object's own
/// fields (a struct or a map; never a list).
pub struct Versioned<'a, T: ?Sized>(pub &'a T);

impl<T: serde::Serialize + ?Sized> serde::Serialize for Versioned<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Flat<'b, U: ?Sized> {
            format_version: u32,
            #[serde(flatten)]
            rest: &'b U,
        }
        Flat { format_version: FORMAT_VERSION, rest: self.0 }.serialize(serializer)
    }
}

/// Print the object `value` as pretty JSON on stdout, versioned.
fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(&Versioned(value)).map_err(|e| CliError::Other(e.to_string()))?;
    outln!("{text}");
    Ok(())
}

/// Print a list as a pretty JSON array on stdout, each element versioned.
fn print_json_list<T: serde::Serialize>(items: &[T]) -> Result<(), CliError> {
    let items: Vec<Versioned<'_, T>> = items.iter().map(Versioned).collect();
    let text = serde_json::to_string_pretty(&items).map_err(|e| CliError::Other(e.to_string()))?;
    outln!("{text}");
    Ok(())
}

/// keyfall's man page, or `keyfall-COMMAND`'s, with the sections clap does
/// not write: ENVIRONMENT, FILES, EXIT STATUS.
fn man_page(command: Option<&str>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    let top = Cli::command();
    let page = match command {
        None => top,
        Some(name) => {
            let sub = top.find_subcommand(name).cloned().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no command {:?} (see `keyfall --help`)", crate::domain::text::visible_short(name, 40)),
                )
            })?;
            // clap names are &'static str without its `string` feature; one
            // page per process, so the name is simply leaked.
            let display: &'static str = Box::leak(format!("keyfall-{}", sub.get_name()).into_boxed_str());
            sub.name(display).version(env!("CARGO_PKG_VERSION"))
        }
    };
    clap_mangen::Man::new(page).render(out)?;
    out.write_all(MAN_SECTIONS.as_bytes())?;
    out.write_all(see_also(command).as_bytes())
}

/// The commands that have a page of their own.
fn page_commands() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command().get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_string()).collect()
}

/// SEE ALSO (roff): keyfall's page names every command's; a command's
/// names keyfall's.
fn see_also(command: Option<&str>) -> String {
    let pages: Vec<String> = match command {
        None => page_commands().iter().map(|c| format!("\\fBkeyfall\\-{}\\fR(1)", c.replace('-', "\\-"))).collect(),
        Some(_) => vec!["\\fBkeyfall\\fR(1)".to_string()],
    };
    format!(".SH \"SEE ALSO\"\n{}\n", pages.join(",\n"))
}

/// `keyfall man --dir DIR`: keyfall.1 and keyfall-COMMAND.1 for every
/// command, the directory created if missing. How many pages were written.
fn man_pages(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut written = 0;
    for command in std::iter::once(None).chain(page_commands().into_iter().map(Some)) {
        let name = match &command {
            None => "keyfall.1".to_string(),
            Some(c) => format!("keyfall-{c}.1"),
        };
        let mut page = Vec::new();
        man_page(command.as_deref(), &mut page)?;
        std::fs::write(dir.join(name), page)?;
        written += 1;
    }
    Ok(written)
}

/// Where global options are listed, apart from each command's own.
const GLOBAL: &str = "Global options";

/// `keyfall --help`'s end: the exit codes, one meaning each.
const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   ok
  1   a negative answer: unresolved, `can` answers denied, an error-level lint finding, a failed `check`, a conflict
  2   bad input: an unknown account, user, function or type, a bad file, value or config key, no keyfall objects
  3   the database cannot be reached (or does not exist)
  4   refused or failed: a permission (whoever checked it, keyfall or the database), a read-only session,
      a statement or lock timeout, a constraint, a failed migration
  70  an internal error (details in the log)
  74  the output could not be written (a full disk)

Examples:
  keyfall demo                                              # load the seed's scenario
  keyfall resolve --user paid2@paid.com --function auto_cluster
  keyfall --as dev@igny8.com set aws-admin openai model gpt-4o";

/// `keyfall completions --help`'s end: where each shell's file goes.
const COMPLETIONS_HELP: &str = "\
Where the file goes (open a new shell after):
  bash  keyfall completions bash > ~/.local/share/bash-completion/completions/keyfall
  zsh   keyfall completions zsh > ~/.zfunc/_keyfall
        (and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath))
  fish  keyfall completions fish > ~/.config/fish/completions/keyfall.fish

Slugs, emails and functions are asked of keyfall as you type: of the database the
command line, DATABASE_URL, the config file or PG* variables name, a local server, or
the private cluster when it runs — within a second and one indexed query; when none
answers, nothing is offered and nothing is said. Types and fields come from keyfall's
registry. Regenerate the file after upgrading keyfall.";

/// `keyfall man --help`'s end: where the pages go.
const MAN_HELP: &str = "\
Examples:
  keyfall man --dir ~/.local/share/man/man1      # every page; then: man keyfall-resolve
  keyfall man resolve > keyfall-resolve.1        # one page
  keyfall man | man -l -                         # read keyfall's page without installing it

~/.local/share/man is on man's path by default on most systems (manpath shows it).";

/// What every page ends with (roff).
const MAN_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
\fBDATABASE_URL\fR
The database, as a postgres:// URL or libpq key=value pairs, when \-\-database\-url is not given.
.TP
\fBPGHOST\fR, \fBPGPORT\fR, \fBPGDATABASE\fR, \fBPGUSER\fR, \fBPGPASSWORD\fR, \fBPGSSLMODE\fR, \fBPGCONNECT_TIMEOUT\fR
libpq's variables, used as psql uses them when PGHOST, PGPORT or PGDATABASE is set. Without a user, keyfall connects as the operating\-system user.
.TP
\fBPGOPTIONS\fR
Options sent at connection, as libpq sends them; a \-c statement_timeout=... here (or options= in the connection string) replaces keyfall's own bound.
.TP
\fBKEYFALL_STATEMENT_TIMEOUT\fR
How long one statement may run (30s, 2min, 500ms; 0: no bound of keyfall's), over the config file's statement_timeout. Default 30s. Loads, migrations and streamed whole\-database output run without it.
.TP
\fBKEYFALL_DATA_DIR\fR
Where the private cluster lives when no server is configured or answering.
.TP
\fBKEYFALL_PG_BINDIR\fR
Where to find initdb and pg_ctl for the private cluster.
.TP
\fBXDG_CONFIG_HOME\fR, \fBXDG_STATE_HOME\fR, \fBXDG_DATA_HOME\fR
The base directories of the files below.
.SH FILES
.TP
\fI~/.config/keyfall/config.toml\fR
database_url, operator, statement_timeout, [mapping] (the app's tables, an input to keyfall attach only: every other command uses the mapping installed in its database) and [resolution] (the rules the app resolves by).
.TP
\fI~/.local/state/keyfall/keyfall.log\fR
The log (mode 0600); it never holds a key.
.TP
\fI~/.local/share/keyfall/\fR (\fI/var/lib/keyfall/\fR as root)
The private cluster's data and socket directories.
.SH EXIT STATUS
.TP
\fB0\fR
Success.
.TP
\fB1\fR
A negative answer: unresolved, \fBcan\fR answering denied, findings, a conflict.
.TP
\fB2\fR
Bad input: an unknown account, user, type or command; no keyfall objects in the database.
.TP
\fB3\fR
The database cannot be reached.
.TP
\fB4\fR
Refused or failed: a permission (every denial, whether keyfall or the database checked it), a timeout, a constraint.
.TP
\fB70\fR
An internal error (its message, without data, is in the log).
.TP
\fB74\fR
The output could not be written (a full disk); what the command was asked
to write to the database was still done.
.PP
Writing to a closed pipe ends quietly with 0.
"#;

/// Enumerated values as clap knows them, so `--help` lists them and the
/// shell completions offer them.
fn action_parser() -> impl clap::builder::TypedValueParser<Value = crate::domain::permissions::Action> {
    use crate::domain::permissions::Action;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Action::ALL.map(Action::as_str))
        .map(|s| Action::parse(&s).expect("clap checked it is one of Action::ALL"))
}

/// A policy by name or by letter (any case).
fn policy_parser() -> impl clap::builder::TypedValueParser<Value = crate::domain::Policy> {
    use crate::domain::Policy;
    use clap::builder::TypedValueParser;
    let names = Policy::ALL.map(Policy::as_str).into_iter().chain(["A", "B", "C"]);
    clap::builder::PossibleValuesParser::new(names)
        .map(|s| Policy::parse(&s).expect("clap checked it is a policy name or letter"))
}

/// An integration type the registry knows (writes and tests; reading
/// commands also take types found only in the data).
fn type_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::domain::registry::type_names())
}

/// The one wording for an account that does not exist (exit 2).
/// A read the database withheld, said as a refusal (exit 4, as every
/// denial): "not shown: under policy B paid2@paid.com may not view
/// acme-studio's settings (IsSystemAccountOrDeveloper or
/// IsAccountOwnerOrAdmin fails)". The checks are `can`'s, for the
/// session's operator; the database made the same decision.
async fn not_shown(store: &Store, account: &crate::domain::Account) -> Result<CliError, CliError> {
    use crate::domain::model::chain_position;
    use crate::domain::permissions::{Action, Subject, Target, evaluate};
    let slug = crate::domain::text::visible_short(&account.slug, 60);
    let Some(email) = store.operator.clone() else {
        return Ok(CliError::Store(StoreError::Refused(format!(
            "not shown: {slug}'s settings are shown only to an operator who may view them, and this login acts as \
             no app user (a database superuser maps it with `keyfall operator add LOGIN EMAIL`)"
        ))));
    };
    let data = store.subject(Some(&email), None).await?;
    let chain = &data.snapshot.chain;
    let why = match &data.user {
        None => format!("{} is no app user", crate::domain::text::visible_short(&email, 80)),
        Some(user) => {
            let own = user.account_id.and_then(|id| data.snapshot.accounts.get(&id));
            let subject =
                Subject { user, account: own, account_chain_position: own.and_then(|a| chain_position(chain, a.id)) };
            let target = match chain_position(chain, account.id) {
                Some(_) => Target::System { slug: &account.slug },
                None => Target::Tenant { account },
            };
            let decision = evaluate(&subject, data.policy, Action::ViewSettings, &target);
            let failing: Vec<&str> = decision.failing().map(|c| c.name.as_str()).collect();
            format!("{} fails", failing.join(", "))
        }
    };
    Ok(CliError::Store(StoreError::Refused(format!(
        "not shown: under policy {} {} may not view {slug}'s settings ({why})",
        data.policy.letter(),
        crate::domain::text::visible_short(&email, 80)
    ))))
}

fn unknown_account(slug: &str) -> CliError {
    CliError::Usage(format!("unknown account {:?}", crate::domain::text::visible_short(slug, 80)))
}

/// Look a user up for commands that name one; unknown → usage error.
fn require_user(data: &crate::domain::directory::SubjectData, email: &str) -> Result<crate::domain::User, CliError> {
    data.user
        .clone()
        .ok_or_else(|| CliError::Usage(format!("unknown user {:?}", crate::domain::text::visible_short(email, 120))))
}
