//! `keyfall operator add|list|remove`: which database login may act as
//! which app user (DESIGN §4). Writing the map is the schema owner's job —
//! the database refuses anyone else — and every change is audited.

use crate::domain::text::visible;
use crate::store::Store;

use super::{CliResult, Exit};

#[derive(Debug, clap::Subcommand)]
pub enum OperatorCommand {
    /// Let database login ROLE act as the app user EMAIL (one role per admin; peer auth over SSH).
    Add {
        /// The database login (a role with LOGIN).
        role: String,
        /// The app user it acts as.
        email: String,
    },
    /// Every login and the app users it may act as.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stop login ROLE acting as EMAIL.
    Remove {
        /// The database login.
        role: String,
        /// The app user it should no longer act as.
        email: String,
    },
}

pub async fn run(store: &Store, command: OperatorCommand) -> CliResult {
    match command {
        OperatorCommand::Add { role, email } => {
            let added = store.operator_add(&role, &email).await?;
            if added {
                outln!("{} may now act as {}", visible(&role), visible(&email));
            } else {
                outln!("{} already acts as {}", visible(&role), visible(&email));
            }
            Ok(Exit::Ok)
        }
        OperatorCommand::List { json } => {
            let all = store.operator_list().await?;
            if json {
                let rows: Vec<_> = all.iter().map(|(l, e)| serde_json::json!({"login": l, "email": e})).collect();
                super::print_json_list(&rows)?;
            } else if all.is_empty() {
                outln!("no login is mapped to an app user yet: keyfall operator add ROLE EMAIL");
            } else {
                for (login, email) in &all {
                    outln!("{:<24} {}", visible(login), visible(email));
                }
            }
            Ok(Exit::Ok)
        }
        OperatorCommand::Remove { role, email } => {
            if store.operator_remove(&role, &email).await? {
                outln!("{} no longer acts as {}", visible(&role), visible(&email));
                Ok(Exit::Ok)
            } else {
                Err(super::CliError::Usage(format!(
                    "{} is not mapped to {}",
                    crate::domain::text::visible_short(&role, 80),
                    crate::domain::text::visible_short(&email, 120)
                )))
            }
        }
    }
}
