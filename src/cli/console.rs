//! `keyfall` with no command: decide who the console runs as and whether it
//! may write, make read-only real at the database, then hand over to `tui`.

use std::io::IsTerminal;

use crate::app::keymap::Keymap;
use crate::app::{Access, Model, Session};
use crate::config::Config;
use crate::domain::model::chain_position;
use crate::domain::permissions::{self, Action, Subject, Target as PermTarget};
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
    let store = match access.read_only {
        Some(_) => store.reopen_read_only(target).await?,
        None => store,
    };
    let session = Session {
        database: store.label().to_string(),
        label: config.label.clone(),
        color: config.color.clone(),
        access,
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    };
    let model = Model::new(session, keymap, chrono::Utc::now());
    crate::tui::run(store.clone(), model).await.map_err(|e| CliError::Other(format!("terminal: {e}")))?;
    store.close().await;
    Ok(Exit::Ok)
}

/// The operator, and why the session must be read-only (if it must): no
/// operator, `--read-only`, or an operator who may modify neither the system
/// settings nor their own account's under the policy in force.
pub async fn access(store: &Store, config: &Config) -> Result<Access, CliError> {
    let Some(email) = config.operator.as_deref() else {
        let why = if config.read_only { "--read-only" } else { "no operator (start with --as EMAIL)" };
        return Ok(Access { operator: None, read_only: Some(why.into()) });
    };
    let data = store.subject(Some(email), None).await?;
    let user = data.user.clone().ok_or_else(|| {
        CliError::Usage(format!("unknown operator {:?} (--as must name a keyfall user)", visible_short(email, 80)))
    })?;
    if config.read_only {
        return Ok(Access { operator: Some(user), read_only: Some("--read-only".into()) });
    }
    let chain = &data.snapshot.chain;
    let account = data.user_account();
    let subject =
        Subject { user: &user, account, account_chain_position: account.and_then(|a| chain_position(chain, a.id)) };
    let head = chain.first().map(|e| e.slug.clone()).unwrap_or_default();
    let system =
        permissions::evaluate(&subject, data.policy, Action::ModifySettings, &PermTarget::System { slug: &head });
    let own = account.filter(|a| chain_position(chain, a.id).is_none()).map(|a| {
        permissions::evaluate(&subject, data.policy, Action::ModifySettings, &PermTarget::Tenant { account: a })
    });
    let may_write = system.allowed || own.as_ref().is_some_and(|d| d.allowed);
    let read_only = if may_write {
        None
    } else {
        let failing: Vec<String> = system.failing().map(|c| c.name.clone()).collect();
        Some(format!("{} fails for {}", failing.join(", "), visible_short(&user.email, 60)))
    };
    Ok(Access { operator: Some(user), read_only })
}
