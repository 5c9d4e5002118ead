//! The last connection test (`connection_test` runs and shows it).

use chrono::{DateTime, Utc};

use crate::connection::Outcome;

/// The outcome of a connection test, for the setting pane.
#[derive(Debug, Clone)]
pub struct LastTest {
    pub account_id: i64,
    pub integration_type: String,
    /// The provider tested and whose key it was.
    pub provider: String,
    pub key_of: String,
    pub at: DateTime<Utc>,
    /// None while the call is in flight, or when there is a `problem`.
    pub outcome: Option<Outcome>,
    /// Why there is no outcome: nothing was sent (and why), or the request
    /// failed or timed out.
    pub problem: Option<String>,
    /// Started from the resolve-as panel (shown there).
    pub from_resolve: bool,
    /// The tested row's key (as a fingerprint) and endpoint when the test
    /// started: when they change, the outcome is stale.
    pub tested: Option<String>,
}
