//! The blast radius of a key as data (issue 23): `Store::key_history(fp)`,
//! the one entry point the console calls (and the CLI may render): every
//! settings row that held the key of fingerprint `fp`, each stretch it held
//! it, and who resolved to it when the stretch began — which accounts, how
//! many users, for which functions — walked by the one resolver over the
//! world of that moment (`Store::world_at`), with the gaps of the log that
//! lie inside it. The same computation `keyfall key-history` prints; a thin
//! entry point that an exact timeline (one interval per change) can replace
//! without its callers changing.

use std::collections::BTreeSet;

use serde::Serialize;

use super::blast::{KeyRow, cut_after};
use super::{Store, StoreError};
use crate::domain::history::{Held, Window};
use crate::domain::resolve::resolve_type;

/// The blast radius of one key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyHistory {
    pub fingerprint: String,
    pub history: Window,
    pub rows: Vec<KeyRow>,
    pub stretches: Vec<KeyStretch>,
}

/// One stretch of one row, and who resolved to it when it began.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyStretch {
    pub account: String,
    pub integration_type: String,
    pub setting_id: i64,
    #[serde(flatten)]
    pub held: Held,
    /// Who resolved to the row when the stretch began; `None` with
    /// `unknown` where history cannot say.
    pub accounts: Option<Vec<String>>,
    pub users: Option<i64>,
    pub functions: Option<Vec<String>>,
    pub unknown: Option<String>,
    /// The log's gaps inside the stretch: who resolved to it may have
    /// changed unseen.
    pub gaps: Vec<String>,
}

impl Store {
    /// The blast radius of the key of fingerprint `fp` (`#1a2b3c4d`).
    pub async fn key_history(&self, fp: &str) -> Result<KeyHistory, StoreError> {
        let window = self.history_window().await?;
        let rows = self.key_rows(fp).await?;
        let mut stretches = Vec::new();
        for row in &rows {
            for held in &row.held {
                stretches.push(self.stretch(&window, row, held).await?);
            }
        }
        Ok(KeyHistory { fingerprint: fp.to_string(), history: window, rows, stretches })
    }

    async fn stretch(&self, window: &Window, row: &KeyRow, held: &Held) -> Result<KeyStretch, StoreError> {
        let mut s = KeyStretch {
            account: row.account.clone(),
            integration_type: row.integration_type.clone(),
            setting_id: row.setting_id,
            held: held.clone(),
            accounts: None,
            users: None,
            functions: None,
            unknown: None,
            gaps: window
                .gaps
                .iter()
                .filter(|g| {
                    let after_start = held.from.is_none_or(|f| g.to.is_none_or(|t| t >= f));
                    let before_end = held.to.is_none_or(|t| g.from <= t);
                    after_start && before_end
                })
                .map(|g| g.describe())
                .collect(),
        };
        let Some(start) = &window.start else {
            s.unknown = Some("no history recorded yet".into());
            return Ok(s);
        };
        let cut = cut_after(held.from_entry, held.from, start);
        let world = match self.world_at(cut).await {
            Ok(w) => w,
            Err(StoreError::NotFound(why)) => {
                s.unknown = Some(why);
                return Ok(s);
            }
            Err(e) => return Err(e),
        };
        let counts = self.user_counts_at(&cut).await?;
        let snapshot = &world.snapshot;
        let Some(owner) = snapshot.accounts.get(&row.account_id) else {
            s.unknown = Some("the account did not exist then".into());
            return Ok(s);
        };
        let lands = |hop: &crate::domain::Hop| -> bool {
            hop.raises().is_none()
                && ((hop.integration_type == row.integration_type && hop.answered_by.as_deref() == Some(&owner.slug))
                    || hop.hop.as_ref().is_some_and(|h| {
                        h.integration_type == row.integration_type && h.answered_by.as_deref() == Some(&owner.slug)
                    }))
        };
        let mut accounts = BTreeSet::new();
        let mut functions = BTreeSet::new();
        let mut users = 0i64;
        let mut types: Vec<(&String, &String)> = world.functions.iter().collect();
        types.sort();
        let mut ids: Vec<&i64> = snapshot.accounts.keys().collect();
        ids.sort();
        for id in ids.into_iter().map(Some).chain([None]) {
            let account = id.and_then(|id| snapshot.accounts.get(id));
            let mut any = false;
            for (name, ty) in &types {
                if lands(&resolve_type(snapshot, account, ty)) {
                    any = true;
                    functions.insert((*name).clone());
                }
            }
            if any {
                users += counts.get(&id.copied()).copied().unwrap_or(0);
                accounts.insert(account.map(|a| a.slug.clone()).unwrap_or_else(|| "(users without an account)".into()));
            }
        }
        s.accounts = Some(accounts.into_iter().collect());
        s.users = Some(users);
        s.functions = Some(functions.into_iter().collect());
        Ok(s)
    }
}
