//! `keyfall` with no command: decide who the console runs as and whether it
//! may write, make read-only real at the database, then hand over to `tui`.

use std::io::IsTerminal;

use crate::app::keymap::Keymap;
use crate::app::{Access, Model, Session};
use crate::config::Config;
use crate::domain::text::visible_short;
use crate::store::{Store, Target};

use super::{CliError, CliResult, Exit};

pub async fn run(store: Store, target: &Target, config: &Config, demo: bool) -> CliResult {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::Usage("the console needs a terminal; for scripts use a command (keyfall --help)".into()));
    }
    let keymap = Keymap::new(&config.keys).map_err(|e| CliError::Usage(format!("config file: {e}")))?;
    if demo {
        store.load_demo().await?;
    }
    let access = access(&store, config).await?;
    // Read-only at the server when nothing may be written whatever happens
    // (--read-only, no operator). An operator's rights are the database's
    // to check at each write, so they can change while the console is open.
    let store = if access.forced { store.reopen_read_only(target).await? } else { store };
    let session = Session {
        database: store.label().to_string(),
        label: config.label.clone(),
        color: config.color.clone(),
        access,
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    };
    // The console's bounds on each command leave room for a longer
    // statement timeout configured.
    if let Some(timeout) = config.statement_timeout {
        crate::tui::exec::set_statement_timeout(timeout);
    }
    let model = Model::new(session, keymap, chrono::Utc::now());
    crate::tui::run(store.clone(), model).await.map_err(|e| CliError::Other(format!("terminal: {e}")))?;
    store.close().await;
    Ok(Exit::Ok)
}

/// The operator, and why the session must be read-only (if it must): no
/// operator, `--read-only`, or an operator who may modify neither the system
/// settings nor their own account's under the policy in force. The same
/// decision is made again on every reload (`app::decide_access`), so rights
/// follow live changes; the database checks each write regardless.
pub async fn access(store: &Store, config: &Config) -> Result<Access, CliError> {
    let Some(email) = config.operator.as_deref() else {
        let why = match (&config.login, config.read_only) {
            (_, true) => "--read-only".to_string(),
            (Some(login), false) => format!(
                "no operator: login {} acts as no app user (--as EMAIL, or `keyfall operator add {} EMAIL`)",
                visible_short(login, 40),
                visible_short(login, 40)
            ),
            (None, false) => "no operator (start with --as EMAIL)".to_string(),
        };
        return Ok(Access { operator: None, read_only: Some(why), forced: true });
    };
    let data = store.subject(Some(email), None).await?;
    if data.user.is_none() {
        return Err(CliError::Usage(format!(
            "unknown operator {:?} (--as must name a keyfall user)",
            visible_short(email, 80)
        )));
    }
    let forced = config.read_only.then(|| "--read-only".to_string());
    Ok(crate::app::decide_access(&data, forced))
}
