//! The reveal question and a revealed key (`reveal` has the keys and view).

use chrono::{DateTime, Utc};

use crate::domain::Secret;

/// "Reveal this key? It is recorded." — yes reveals, any other key cancels.
#[derive(Debug)]
pub struct RevealDialog {
    pub account: String,
    pub account_id: i64,
    pub integration_type: String,
    /// The reveal asked for, once confirmed.
    pub request: Option<u64>,
}

/// A key on screen: for one setting, until a deadline or the next key.
#[derive(Debug)]
pub struct Revealed {
    pub account_id: i64,
    pub integration_type: String,
    pub secret: Secret,
    pub until: DateTime<Utc>,
}
