//! The palette's state (`palette` has its keys and view).

use crate::app::keymap::Action;
use crate::domain::directory::UserHit;

/// Where an entry jumps.
#[derive(Debug, Clone, PartialEq)]
pub enum Jump {
    Account(i64),
    User(String),
    /// A main-screen action (audit, lint, permissions…).
    Screen(Action),
    Help,
    Tab(usize),
    Context(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// "account", "user", "screen", "context".
    pub kind: &'static str,
    /// What is matched and shown first.
    pub text: String,
    pub detail: String,
    pub jump: Jump,
}

#[derive(Debug, Clone, Default)]
pub struct Palette {
    pub query: String,
    /// The ranked entries for the query, best first.
    pub(in crate::app) shown: Vec<Entry>,
    pub selected: usize,
    /// Users found for the last search, and whether one is in flight.
    pub(in crate::app) users: Vec<UserHit>,
    pub(in crate::app) searching: Option<String>,
    pub(in crate::app) queued: Option<String>,
}

impl Palette {
    pub fn shown(&self) -> &[Entry] {
        &self.shown
    }

    pub fn current(&self) -> Option<&Entry> {
        self.shown.get(self.selected)
    }
}
