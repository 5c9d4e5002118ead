//! Changes heard and not yet applied (`live` applies them).

use std::collections::HashSet;

/// Changes heard since the last tick, applied together (at most one reload
/// per tick, however many notices arrive).
#[derive(Debug, Default)]
pub(in crate::app) struct Pending {
    pub(in crate::app) accounts: HashSet<i64>,
    /// The chain, the policy, the functions, or a bulk write: reload all.
    pub(in crate::app) everything: bool,
    /// The newest audit entry, to name its actor.
    pub(in crate::app) audit: Option<i64>,
}

impl Pending {
    pub(in crate::app) fn is_empty(&self) -> bool {
        self.accounts.is_empty() && !self.everything && self.audit.is_none()
    }
}
