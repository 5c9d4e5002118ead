//! `keyfall` with no command: decide who the console runs as and whether it
//! may write, make read-only real at the database, then hand over to `tui`.
//! `:ctx NAME` ends a run with a context to move to: the console connects
//! to that context's database (as a command would with `--context NAME`)
//! and starts again there, on the same terminal; if it cannot, it stays
//! where it was and says why.

use std::io::IsTerminal;

use crate::app::keymap::Keymap;
use crate::app::{Access, Model, Session};
use crate::config::Config;
use crate::domain::text::visible_short;
use crate::store::{Store, Target};

use super::{CliError, CliResult, Exit};

pub async fn run(store: Store, target: &Target, config: &Config, demo: bool, asked: &Config) -> CliResult {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::Usage("the console needs a terminal; for scripts use a command (keyfall --help)".into()));
    }
    let keymap = Keymap::new(&config.keys).map_err(|e| CliError::Usage(format!("config file: {e}")))?;
    if demo {
        store.load_demo().await?;
    }
    // The console's bounds on each command leave room for a longer
    // statement timeout configured.
    if let Some(timeout) = config.statement_timeout {
        crate::tui::exec::set_statement_timeout(timeout);
    }
    let (mut store, mut model) = prepare(store, target, config, keymap.clone()).await?;
    let mut guard =
        crate::tui::TerminalGuard::enter(config.mouse).map_err(|e| CliError::Other(format!("terminal: {e}")))?;
    loop {
        model = crate::tui::run_in(&mut guard, store.clone(), model)
            .await
            .map_err(|e| CliError::Other(format!("terminal: {e}")))?;
        let Some(name) = model.switch_to.take() else { break };
        model.notice = Some(format!("connecting to context {}…", visible_short(&name, 40)));
        let _ = guard.terminal.draw(|f| crate::app::view::draw(&model, f));
        match open_context(asked, &name, keymap.clone()).await {
            Ok((new_store, new_model)) => {
                store.close().await;
                store = new_store;
                model = new_model;
            }
            Err(e) => {
                model.notice = Some(format!(
                    "cannot switch to context {}: {}",
                    visible_short(&name, 40),
                    visible_short(&e.to_string(), 200)
                ));
            }
        }
    }
    drop(guard);
    store.close().await;
    Ok(Exit::Ok)
}

/// Connect to the context `name` as `keyfall --context NAME` would: its
/// database, its label and colour, read-only if it is; the operator asked
/// for must be one this login may act as there. (Public for the tests,
/// which switch as `:ctx NAME` does.)
pub async fn open_context(asked: &Config, name: &str, keymap: Keymap) -> Result<(Store, Model), CliError> {
    let mut config = asked.with_context(name).map_err(CliError::Usage)?;
    let (store, target, identity) = super::open_store(&config, super::Intent::Read, false, false).await?;
    let store = match super::identify(&store, identity, &mut config).await {
        Ok(operator) => match super::config_rules(&config) {
            Ok(rules) => store.with_rules(rules).with_operator(operator),
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        },
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    prepare(store, &target, &config, keymap).await
}

/// The model the console starts with on `store`.
async fn prepare(store: Store, target: &Target, config: &Config, keymap: Keymap) -> Result<(Store, Model), CliError> {
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
    let mut model = Model::new(session, keymap, chrono::Utc::now());
    model.contexts = config.contexts.iter().map(|c| (c.name.clone(), c.header_label().to_string())).collect();
    model.context = config.context.clone();
    Ok((store, model))
}

/// The operator, and why the session must be read-only (if it must): no
/// operator, `--read-only`, or an operator who may modify neither the system
/// settings nor their own account's under the policy in force. The same
/// decision is made again on every reload (`app::decide_access`), so rights
/// follow live changes; the database checks each write regardless.
pub async fn access(store: &Store, config: &Config) -> Result<Access, CliError> {
    let Some(email) = config.operator.as_deref() else {
        let why = match (&config.login, config.read_only) {
            (_, true) => read_only_reason(config),
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
    let forced = config.read_only.then(|| read_only_reason(config));
    Ok(crate::app::decide_access(&data, forced))
}

/// Why the session is read-only when asked: the flag (or the file), else
/// the context's `read_only`.
fn read_only_reason(config: &Config) -> String {
    match &config.context {
        Some(name) if !config.read_only_asked => format!("context {} is read-only", visible_short(name, 40)),
        _ => "--read-only".to_string(),
    }
}
