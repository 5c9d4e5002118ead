//! Who is there, as the console lists them and as a resolve or a permission
//! check reads one subject: an account of the index, a user the picker
//! found, and a user with the function, policy and settings they need.

use super::model::{Account, AiFunction, Policy, User};
use super::resolve::Snapshot;

/// One account as the console's index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub status: String,
}

/// A user found by the picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHit {
    pub email: String,
    pub role: String,
    pub account: Option<String>,
    pub is_active: bool,
}

/// What a resolve or a permission check needs, loaded in one round trip.
#[derive(Debug, Clone)]
pub struct SubjectData {
    pub user: Option<User>,
    pub function: Option<AiFunction>,
    pub policy: Policy,
    pub snapshot: Snapshot,
}

impl SubjectData {
    pub fn user_account(&self) -> Option<&Account> {
        self.user.as_ref()?.account_id.and_then(|id| self.snapshot.accounts.get(&id))
    }
}
