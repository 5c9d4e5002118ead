//! Who the console runs as and whether it may write (`access` decides).

use crate::domain::User;

/// Who the console runs as and whether it may write; decided at start and
/// again on every reload, so it follows changes to the operator, the
/// policy and the chain.
#[derive(Debug, Clone)]
pub struct Access {
    pub operator: Option<User>,
    /// Why the session is read-only, if it is.
    pub read_only: Option<String>,
    /// Read-only whatever the rights (`--read-only`, no operator): the
    /// database session itself is read-only.
    pub forced: bool,
}
