//! The command line: one file per subcommand, each a non-interactive twin of
//! a console view, human text by default and `--json` for scripts. Uses
//! `domain` and `store`, never the console. Exit codes: 0 ok, 1 a negative
//! answer (unresolved, denied, conflict), 2 usage or input error, 3 database
//! unreachable.

mod admin;
mod audit;
mod can;
mod check;
mod console;
mod demo;
mod get;
mod lint;
mod report;
mod resolve;
mod set;
mod test_connection;
mod transfer;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::store::{Store, StoreError, connect};

#[derive(Debug, Parser)]
#[command(name = "keyfall", version, about = "See which AI key every tenant really uses, and why")]
pub struct Cli {
    /// PostgreSQL URL (else DATABASE_URL, the config file, a local server, or a private cluster).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// The operator to act as (an email of a keyfall user).
    #[arg(long = "as", global = true, value_name = "EMAIL")]
    pub operator: Option<String>,
    /// Config file (default: ~/.config/keyfall/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Console: open every database session read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Console: load the demo data first (when absent), then open.
    #[arg(long)]
    pub demo: bool,
    /// Without a command, keyfall opens the console.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the seed's scenario (idempotent); `--scale xl` adds the XL data set.
    Demo(demo::Args),
    /// Which account answers FUNCTION for USER, and why — every step, both hops.
    Resolve(resolve::Args),
    /// What USER may do with settings, check by check, under the current policy.
    Can(can::Args),
    /// Who answers every integration type for every account.
    Report(report::Args),
    /// Show one account's own setting of one type (secrets masked).
    Get(get::Args),
    /// Change one field of a setting; the value comes from stdin or a hidden prompt.
    Set(set::Args),
    /// Settings as JSON, keys as fingerprints unless --reveal.
    Export(transfer::ExportArgs),
    /// Apply an export file: validated, previewed, one audited transaction.
    Import(transfer::ImportArgs),
    /// Test a key for real against its provider (OpenAI lists models; Runware authenticates).
    TestConnection(test_connection::Args),
    /// Shell completions: keyfall completions bash|zsh|fish|elvish|powershell.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The man page (roff), e.g. keyfall man > keyfall.1
    Man,
    /// Check expected resolutions from a TOML file (a CI guard): exit 1 with a diff on any difference.
    Check(check::Args),
    /// What is wrong with the settings (rules L001–L009); `--fix` repairs what is safe.
    Lint(lint::Args),
    /// Who changed what: the audit log, secrets as fingerprints.
    Audit(audit::Args),
    /// Show or replace the system fallback chain (superuser or developer).
    #[command(subcommand)]
    Chain(admin::ChainCommand),
    /// Show or switch the permission policy (superuser or developer).
    #[command(subcommand)]
    Policy(admin::PolicyCommand),
    /// Apply the database migrations.
    Migrate,
}

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// A negative answer: unresolved, denied, conflict.
    Negative = 1,
    Usage = 2,
    Unavailable = 3,
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
}

impl CliError {
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::Negative(_) => Exit::Negative,
            CliError::Store(StoreError::Unavailable(_)) => Exit::Unavailable,
            CliError::Store(StoreError::NotFound(_) | StoreError::Invalid(_)) => Exit::Usage,
            CliError::Store(StoreError::Conflict(_)) => Exit::Negative,
            CliError::Store(StoreError::Database(_)) => Exit::Unavailable,
            CliError::Other(_) => Exit::Usage,
        }
    }
}

pub type CliResult = Result<Exit, CliError>;

pub use console::access as console_access;

/// Run one command to completion.
pub async fn run(cli: Cli) -> CliResult {
    let config = Config::load(Overrides {
        database_url: cli.database_url.clone(),
        operator: cli.operator.clone(),
        config_file: cli.config.clone(),
        read_only: cli.read_only,
    })
    .map_err(|e| CliError::Usage(e.to_string()))?;
    // What needs no database.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "keyfall", &mut std::io::stdout());
            return Ok(Exit::Ok);
        }
        Some(Command::Man) => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| CliError::Other(e.to_string()))?;
            return Ok(Exit::Ok);
        }
        _ => {}
    }
    let (store, target) = open_store(&config).await?;
    let result = match cli.command {
        None => console::run(store.clone(), &target, &config, cli.demo).await,
        Some(Command::Demo(args)) => demo::run(&store, args).await,
        Some(Command::Resolve(args)) => resolve::run(&store, args).await,
        Some(Command::Can(args)) => can::run(&store, args).await,
        Some(Command::Report(args)) => report::run(&store, args).await,
        Some(Command::Get(args)) => get::run(&store, args).await,
        Some(Command::Set(args)) => set::run(&store, &config, args).await,
        Some(Command::Audit(args)) => audit::run(&store, args).await,
        Some(Command::Lint(args)) => lint::run(&store, &config, args).await,
        Some(Command::Check(args)) => check::run(&store, args).await,
        Some(Command::TestConnection(args)) => test_connection::run(&store, &config, args).await,
        Some(Command::Export(args)) => transfer::export(&store, &config, args).await,
        Some(Command::Import(args)) => transfer::import(&store, &config, args).await,
        Some(Command::Completions { .. } | Command::Man) => Ok(Exit::Ok),
        Some(Command::Chain(command)) => admin::chain(&store, &config, command).await,
        Some(Command::Policy(command)) => admin::policy(&store, &config, command).await,
        Some(Command::Migrate) => {
            println!("migrations applied to {}", store.label());
            Ok(Exit::Ok)
        }
    };
    store.close().await;
    result
}

/// Find the database (DESIGN §5), create it if needed, migrate.
pub async fn open_store(config: &Config) -> Result<(Store, connect::Target), CliError> {
    let url = config.database_url.as_ref().map(|u| u.expose());
    let target = connect::discover(url, &config.data_dir).await?;
    let store = Store::open(&target).await.map_err(|e| match e {
        StoreError::Database(m) | StoreError::Unavailable(m) => {
            CliError::Store(StoreError::Unavailable(format!("{}: {m}", target.label())))
        }
        other => CliError::Store(other),
    })?;
    Ok((store, target))
}

/// Field changes between two versions, one indented line each, secrets as
/// fingerprints or masks.
fn changes_text(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> String {
    use crate::domain::diff;
    use crate::domain::text::visible_short;
    diff::changes(before, after)
        .iter()
        .map(|c| {
            format!(
                "    {}: {} → {}\n",
                visible_short(&c.field, 40),
                diff::shown(&c.field, c.before.as_ref()),
                diff::shown(&c.field, c.after.as_ref())
            )
        })
        .collect()
}

/// Print `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Look a user up for commands that name one; unknown → usage error.
fn require_user(data: &crate::store::SubjectData, email: &str) -> Result<crate::domain::User, CliError> {
    data.user
        .clone()
        .ok_or_else(|| CliError::Usage(format!("unknown user {:?}", crate::domain::text::visible_short(email, 120))))
}
