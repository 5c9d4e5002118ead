//! `keyfall attach` and `keyfall detach`: put keyfall on an app's database
//! and take it off again. Attach inspects the database, proposes the mapping
//! (or takes the config file's), shows what it would install, and installs
//! and writes the config only on confirmation. Detach removes every object
//! keyfall installed; the app's tables and rows stay exactly as they were.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::config::Config;
use crate::domain::text::visible_short;
use crate::store::{Installed, Mapping, Store, Target};

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// The app's settings table (`table` or `schema.table`) when several fit.
    #[arg(long, value_name = "TABLE")]
    pub settings_table: Option<String>,
    /// Show the mapping and what would be installed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Install without asking (for scripts).
    #[arg(long)]
    pub yes: bool,
    /// Do not write the mapping into the config file.
    #[arg(long)]
    pub no_config: bool,
}

#[derive(Debug, clap::Args)]
pub struct DetachArgs {
    /// Remove without asking (for scripts).
    #[arg(long)]
    pub yes: bool,
}

pub async fn attach(target: &Target, config: &Config, args: &AttachArgs) -> CliResult {
    let store = Store::connect(target).await?;
    let result = attach_on(&store, target, config, args).await;
    store.close().await;
    result
}

async fn attach_on(store: &Store, target: &Target, config: &Config, args: &AttachArgs) -> CliResult {
    let mapping = match (&config.mapping, &args.settings_table) {
        (Some(m), None) => m.clone(),
        _ => {
            let tables = store.catalog().await?;
            crate::store::mapping::detect(&tables, args.settings_table.as_deref()).map_err(CliError::Usage)?
        }
    };
    let problems = store.mapping_problems(&mapping).await?;
    let installed = store.installed().await?;
    out!("{}", describe(target, &mapping, &installed, config.file.as_deref(), args.no_config));
    if !problems.is_empty() {
        return Err(CliError::Usage(format!("the mapping does not fit: {}", problems.join("; "))));
    }
    if !store.has_lower_email_index(&mapping).await? {
        outln!(
            "note: {} has no index on lower({}): a user looked up in another case than stored scans every user;\n      the app can add one in its own migration (Django: models.Index(Lower(\"email\"), name=…)) — keyfall adds nothing to the app's tables",
            visible_short(&mapping.users_table(), 80),
            visible_short(&mapping.users.columns.email, 40)
        );
    }
    if args.dry_run {
        outln!("dry run: nothing installed");
        return Ok(Exit::Ok);
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(
                "attach changes the database: confirm with --yes (or --dry-run to look)".into(),
            ));
        }
        if !confirm("install? [y/N] ")? {
            outln!("nothing installed");
            return Ok(Exit::Negative);
        }
    }
    store.migrate().await?;
    store.install_mapping(&mapping).await?;
    outln!("installed in {}", target.label());
    if !args.no_config {
        match config.file.as_deref() {
            Some(path) => {
                write_mapping(path, &mapping)?;
                outln!("mapping written to {}", path.display());
            }
            None => outln!("no config file location (set HOME or --config): the mapping lives in the database only"),
        }
    }
    Ok(Exit::Ok)
}

pub async fn detach(target: &Target, args: &DetachArgs) -> CliResult {
    let store = Store::connect(target).await?;
    let result = detach_on(&store, target, args).await;
    store.close().await;
    result
}

async fn detach_on(store: &Store, target: &Target, args: &DetachArgs) -> CliResult {
    let installed = store.installed().await?;
    if installed == Installed::Nothing {
        outln!("nothing of keyfall's is installed in {}", target.label());
        return Ok(Exit::Ok);
    }
    let table = match &installed {
        Installed::Current { mapping: Some(m) } => m.settings_table(),
        _ => "the mapped settings table".into(),
    };
    outln!(
        "keyfall detach: {}\n  would remove: schema keyfall (its views, chain, policy, functions, audit log) and the audit triggers on {}\n  the app's tables and rows are left as they are",
        target.label(),
        visible_short(&table, 120)
    );
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage("detach removes keyfall's audit log too: confirm with --yes".into()));
        }
        if !confirm("remove? [y/N] ")? {
            outln!("nothing removed");
            return Ok(Exit::Negative);
        }
    }
    store.detach().await?;
    outln!("keyfall removed from {}", target.label());
    Ok(Exit::Ok)
}

/// The mapping as a person reads it, and what attach would install.
fn describe(
    target: &Target,
    m: &Mapping,
    installed: &Installed,
    config_file: Option<&Path>,
    no_config: bool,
) -> String {
    let v = |s: &str| visible_short(s, 80);
    let c = &m.settings.columns;
    let token = match &c.version {
        Some(col) => format!("version column {}", v(col)),
        None => "xmin (PostgreSQL's row version)".into(),
    };
    let optional = |label: &str, col: &Option<String>| match col {
        Some(col) => format!(", {label} {}", v(col)),
        None => String::new(),
    };
    let mut out = format!("keyfall attach: {}\n", target.label());
    out.push_str(&format!(
        "  settings  {}  (id {}, account {}, type {}, config {}, active {}{}{}{}; conflicts by {token})\n",
        v(&m.settings_table()),
        v(&c.id),
        v(&c.account_id),
        v(&c.integration_type),
        v(&c.config),
        v(&c.is_active),
        optional("updated_at", &c.updated_at),
        optional("created_at", &c.created_at),
        optional("updated_by", &c.updated_by),
    ));
    let a = &m.accounts.columns;
    out.push_str(&format!(
        "  accounts  {}  (id {}, slug {}, name {}, status {})\n",
        v(&m.accounts_table()),
        v(&a.id),
        v(&a.slug),
        v(&a.name),
        v(&a.status)
    ));
    let u = &m.users.columns;
    out.push_str(&format!(
        "  users     {}  (id {}, email {}, role {}, superuser {}, active {}, account {})\n",
        v(&m.users_table()),
        v(&u.id),
        v(&u.email),
        v(&u.role),
        v(&u.is_superuser),
        v(&u.is_active),
        v(&u.account_id)
    ));
    let state = match installed {
        Installed::Nothing => "not installed yet",
        Installed::Outdated => "installed, older version (will be migrated)",
        Installed::Legacy => "keyfall's first layout in public (will be moved into the keyfall schema)",
        Installed::Current { mapping: Some(old) } if old.normalized() == m.normalized() => {
            "installed with this mapping already"
        }
        Installed::Current { .. } => "installed with another mapping (will be replaced)",
    };
    out.push_str(&format!("keyfall here: {state}\n"));
    out.push_str("installs:\n");
    out.push_str(
        "  schema keyfall: views accounts, users, integration_settings over the tables above; its own tables\n    fallback_chain, ai_functions, policy, audit_log, mapping; functions keyfall_*\n",
    );
    out.push_str(&format!(
        "  on {}: triggers keyfall_audit_insert, keyfall_audit_update, keyfall_audit_delete\n    (an audit row per change, keys fingerprinted, and a NOTIFY; rows are never modified)\n",
        v(&m.settings_table())
    ));
    out.push_str(&format!(
        "  on {} and {}: trigger keyfall_announce (a NOTIFY when they change, so rights refresh live)\n",
        v(&m.users_table()),
        v(&m.accounts_table())
    ));
    out.push_str(
        "  on keyfall's view of the settings: the check of every write against the policy, for the operator\n",
    );
    if !no_config && let Some(path) = config_file {
        out.push_str(&format!("  config: [mapping] in {}\n", path.display()));
    }
    out
}

fn confirm(prompt: &str) -> Result<bool, CliError> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| CliError::Other(e.to_string()))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Put `[mapping]` into the config file: appended when the file has none,
/// else the file is rewritten with the new mapping (its comments are lost;
/// say so).
fn write_mapping(path: &Path, mapping: &Mapping) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::Other(format!("cannot write {}: {e}", path.display()));
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut table: toml::Table = toml::from_str(&existing)
        .map_err(|e| CliError::Usage(format!("config file {}: {}", path.display(), e.message())))?;
    let text = if table.contains_key("mapping") {
        let value = toml::Table::try_from(mapping).map_err(|e| CliError::Other(e.to_string()))?;
        table.insert("mapping".into(), toml::Value::Table(value));
        eprintln!("keyfall: replacing [mapping] in {} (comments in it are not kept)", path.display());
        toml::to_string(&table).map_err(|e| CliError::Other(e.to_string()))?
    } else {
        let mut text = existing;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("\n# The app's tables, written by `keyfall attach`.\n");
        text.push_str(&mapping.to_toml());
        text
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)?;
    Ok(())
}
