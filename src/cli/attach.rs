//! `keyfall attach` and `keyfall detach`: put keyfall on an app's database
//! and take it off again. Attach inspects the database, proposes the mapping
//! (the config file's `[mapping]` filled in by detection, else the one kept
//! at detach, else detection), shows what it would install, and installs it
//! in that database on confirmation; it prints the mapping, and never writes
//! the config file. Detach removes what touches the app (keyfall's triggers,
//! event triggers, views) and keeps keyfall's own data, so a later attach
//! resumes; `detach --purge` removes everything. Neither keeps the app's
//! traffic waiting: their lock waits are bounded (store::LOCK_WAIT).

use std::io::{IsTerminal, Write};

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
    /// No effect: attach never writes the config file (kept for scripts).
    #[arg(long, hide = true)]
    pub no_config: bool,
}

#[derive(Debug, clap::Args)]
pub struct DetachArgs {
    /// Remove without asking (for scripts).
    #[arg(long)]
    pub yes: bool,
    /// Remove keyfall's schema too: its audit log, chain, policy, operators.
    #[arg(long)]
    pub purge: bool,
}

/// Each wait behind a lock, said on stderr: the store tells, the CLI
/// prints ("keyfall: attach waits for pid … (…: query …); trying again …").
pub(crate) fn say_lock_waits() -> crate::store::LockWaits {
    std::sync::Arc::new(|wait: &crate::store::LockWait| eprintln!("keyfall: {wait}"))
}

pub async fn attach(target: &Target, config: &Config, args: &AttachArgs) -> CliResult {
    let store = Store::connect(target).await?.on_lock_wait(say_lock_waits());
    let result = attach_on(&store, target, config, args).await;
    store.close().await;
    result
}

async fn attach_on(store: &Store, target: &Target, config: &Config, args: &AttachArgs) -> CliResult {
    let tables = store.catalog().await?;
    let installed = store.installed().await?;
    let kept = match &installed {
        Installed::Current { mapping: Some(m) } | Installed::Detached { mapping: Some(m), .. } => {
            Some(m.as_ref().clone())
        }
        _ => None,
    };
    // The mapping keyfall has here no longer fits where the app renamed a
    // table or column and no event trigger followed it (keyfall attached
    // by a non-superuser): found again by identity, it keeps the history's
    // names in step with the app's.
    let followed = match (&config.mapping, &args.settings_table, &kept) {
        (None, None, Some(k)) if !store.mapping_problems(k).await?.is_empty() => {
            match store.followed_mapping().await? {
                Some(f) if store.mapping_problems(&f).await?.is_empty() => Some(f),
                _ => None,
            }
        }
        _ => None,
    };
    let mapping = match (&config.mapping, &args.settings_table, kept, followed) {
        (None, None, Some(_), Some(followed)) => {
            eprintln!(
                "keyfall: the app renamed tables or columns since attach (settings now in {}): following them",
                visible_short(&followed.settings_table(), 80)
            );
            followed
        }
        // The config's [mapping], the rest detected in this database.
        (Some(input), flag, _, _) => input.resolve(&tables, flag.as_deref()).map_err(CliError::Usage)?,
        // The mapping keyfall has here (kept at detach), where it still fits.
        (None, None, Some(kept), None) if store.mapping_problems(&kept).await?.is_empty() => kept,
        (None, flag, kept, _) => {
            if let Some(kept) = kept {
                eprintln!(
                    "keyfall: the mapping keyfall had here (settings in {}) no longer fits: detecting anew",
                    visible_short(&kept.settings_table(), 80)
                );
            }
            crate::store::mapping::detect(&tables, flag.as_deref()).map_err(CliError::Usage)?
        }
    };
    let problems = store.mapping_problems(&mapping).await?;
    out!("{}", describe(target, &mapping, &installed));
    if !problems.is_empty() {
        let whose = if config.mapping.is_some() {
            "the config file's [mapping] (an input to attach only: another config file, or none, detects this database's tables)"
        } else {
            "the mapping"
        };
        return Err(CliError::Usage(format!("{whose} does not fit: {}", problems.join("; "))));
    }
    if !store.has_lower_email_index(&mapping).await? {
        outln!(
            "note: {} has no index on lower({}): a user looked up in another case than stored scans every user;\n      the app can add one in its own migration (Django: models.Index(Lower(\"email\"), name=…)) — keyfall adds nothing to the app's tables",
            visible_short(&mapping.users_table(), 80),
            visible_short(&mapping.users.columns.email, 40)
        );
    }
    if !store.settings_pairs_unique(&mapping).await? {
        outln!(
            "note: {} has no unique constraint on ({}, {}): where an account has several rows of a type, keyfall reads the lowest id,\n      as the app's .first() does, says so, and refuses to write to that pair (remove the extra rows first)",
            visible_short(&mapping.settings_table(), 80),
            visible_short(&mapping.settings.columns.account_id, 40),
            visible_short(&mapping.settings.columns.integration_type, 40)
        );
    }
    if !store.login_is_superuser().await? {
        outln!(
            "note: this login is not a superuser: no event triggers, so keyfall cannot set its views aside around the app's DDL —\n      an app migration that changes the type of a mapped column (Django's AlterField, e.g. AutoField → BigAutoField)\n      fails while keyfall is attached (\"cannot alter type of a column used by a view\"), and a renamed table or column\n      waits for `keyfall attach`; attach as a superuser, or run such a migration between `keyfall detach` and `keyfall attach`\n      (the history is kept)"
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
    if installed == Installed::Legacy {
        return Err(CliError::Usage(format!(
            "{} has keyfall's first layout (its tables in public): run `keyfall migrate` first",
            target.label()
        )));
    }
    store.migrate().await?;
    store.install_mapping(&mapping).await?;
    match &installed {
        Installed::Detached { since, .. } => outln!(
            "attached again to {}: the audit log goes on; changes since {} were not recorded",
            target.label(),
            since.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        _ => outln!("installed in {}", target.label()),
    }
    outln!(
        "the mapping lives in this database; to attach another database the same way, put this in its config file:\n{}",
        mapping.to_toml().trim_end()
    );
    Ok(Exit::Ok)
}

pub async fn detach(target: &Target, args: &DetachArgs) -> CliResult {
    let store = Store::connect(target).await?.on_lock_wait(say_lock_waits());
    let result = detach_on(&store, target, args).await;
    store.close().await;
    result
}

async fn detach_on(store: &Store, target: &Target, args: &DetachArgs) -> CliResult {
    let installed = store.installed().await?;
    let table = match &installed {
        Installed::Nothing => {
            outln!("nothing of keyfall's is installed in {}", target.label());
            return Ok(Exit::Ok);
        }
        Installed::Legacy => {
            return Err(CliError::Usage(format!(
                "{} has keyfall's first layout (its tables in public): run `keyfall migrate` first",
                target.label()
            )));
        }
        Installed::Detached { since, .. } if !args.purge => {
            outln!(
                "keyfall is detached from {} since {} already (`keyfall detach --purge` removes its data too)",
                target.label(),
                since.format("%Y-%m-%d %H:%M:%S UTC")
            );
            return Ok(Exit::Ok);
        }
        Installed::Current { mapping: Some(m) } | Installed::Detached { mapping: Some(m), .. } => m.settings_table(),
        _ => "the mapped settings table".into(),
    };
    // keyfall's newest objects (detach keeps history); a pre-release schema
    // is not migrated: it can only be purged (`migrate` says so).
    if !(args.purge && matches!(installed, Installed::PreRelease { .. })) {
        store.migrate().await?;
    }
    if args.purge {
        let kept = store.kept_data().await?;
        outln!(
            "keyfall detach --purge: {}\n  would remove: schema keyfall and everything in it — {} audit entries, {} operator mappings, {} fallback chain entries, {} function mappings, the policy — and keyfall's triggers on the app's tables\n  the app's tables and rows are left as they are",
            target.label(),
            kept.audit_entries,
            kept.operators,
            kept.chain_entries,
            kept.functions
        );
        if !args.yes {
            if !std::io::stdin().is_terminal() {
                return Err(CliError::Usage(format!(
                    "detach --purge erases keyfall's audit log ({} entries) for good: confirm with --yes",
                    kept.audit_entries
                )));
            }
            if !confirm("remove all of it? [y/N] ")? {
                outln!("nothing removed");
                return Ok(Exit::Negative);
            }
        }
        store.purge().await?;
        outln!("keyfall removed from {}", target.label());
        return Ok(Exit::Ok);
    }
    outln!(
        "keyfall detach: {}\n  would remove: keyfall's triggers on {} and the app's other tables, its event triggers, its views over the app's tables\n  keeps: its audit log, chain, policy, function map, operators and the mapping (`keyfall attach` resumes; `--purge` removes them too)\n  the app's tables and rows are left as they are",
        target.label(),
        visible_short(&table, 120)
    );
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage("detach changes the database: confirm with --yes".into()));
        }
        if !confirm("detach? [y/N] ")? {
            outln!("nothing removed");
            return Ok(Exit::Negative);
        }
    }
    store.detach().await?;
    outln!("keyfall detached from {}: nothing is recorded until `keyfall attach` resumes it", target.label());
    Ok(Exit::Ok)
}

/// The mapping as a person reads it, and what attach would install.
fn describe(target: &Target, m: &Mapping, installed: &Installed) -> String {
    let v = |s: &str| visible_short(s, 80);
    let c = &m.settings.columns;
    let token = match &c.version {
        Some(col) => format!("version column {}", v(col)),
        None => "xmin (PostgreSQL's row version)".into(),
    };
    let optional = |label: &str, col: &Option<String>| match col {
        Some(col) => format!(", {label} {}", v(col)),
        None => format!(", no {label}"),
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
        Installed::PreRelease { .. } => "a pre-release keyfall schema (`keyfall detach --purge` it first)",
        Installed::Legacy => "keyfall's first layout in public (will be moved into the keyfall schema)",
        Installed::Current { mapping: Some(old) } if old.normalized() == m.normalized() => {
            "installed with this mapping already"
        }
        Installed::Current { .. } => "installed with another mapping (will be replaced)",
        Installed::Detached { .. } => "detached (attaching resumes: the same audit log, chain and policy)",
    };
    out.push_str(&format!("keyfall here: {state}\n"));
    out.push_str("installs:\n");
    out.push_str(
        "  schema keyfall: views accounts, users, integration_settings over the tables above; its own tables\n    fallback_chain, ai_functions, policy, audit_log, mapping; functions keyfall_*\n",
    );
    out.push_str(&format!(
        "  on {}: triggers keyfall_audit_insert, keyfall_audit_update, keyfall_audit_delete, keyfall_audit_truncate\n    (an audit row per change, keys fingerprinted, and a NOTIFY; rows are never modified)\n",
        v(&m.settings_table())
    ));
    out.push_str(&format!(
        "  on {} and {}: trigger keyfall_announce (a NOTIFY when they change, so rights refresh live)\n    and triggers keyfall_audit_insert, keyfall_audit_update, keyfall_audit_delete (their history: a user's\n    email, role, flags and account, an account's slug, name and status; never a password)\n",
        v(&m.users_table()),
        v(&m.accounts_table())
    ));
    out.push_str(
        "  on keyfall's view of the settings: the check of every write against the policy, for the operator\n",
    );
    out.push_str(
        "  in the database (when a superuser attaches): event triggers keyfall_watch_ddl, keyfall_watch_drop\n    (record who disables, drops or re-creates keyfall's triggers) and keyfall_ddl_start, keyfall_ddl_end\n    (set keyfall's views aside around the app's DDL, follow renames, record what changed)\n",
    );
    out
}

fn confirm(prompt: &str) -> Result<bool, CliError> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| CliError::Other(e.to_string()))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
