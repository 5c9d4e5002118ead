//! The state of time travel: the moment shown, the "as of" picker, a
//! key's blast radius (`time_travel` has the keys and views).

use crate::domain::audit::AuditEntry;
use crate::domain::blast::KeyHistory;
use crate::domain::history::{Cut, Window};

/// Whether the console shows the past, and the trip in flight.
#[derive(Debug, Default)]
pub struct TimeTravel {
    /// The moment shown; `None`: now.
    pub as_of: Option<AsOf>,
    /// The request of a trip in flight (from the picker or the audit view).
    pub pending: Option<u64>,
}

/// The moment the console shows.
#[derive(Debug, Clone)]
pub struct AsOf {
    pub cut: Cut,
    pub window: Window,
    /// Changes heard since: the past view does not follow them.
    pub changes_since: usize,
}

impl AsOf {
    /// "2026-12-05 14:00 UTC (#812)"; seconds when the moment has them.
    pub fn label(&self) -> String {
        use chrono::Timelike;
        let time = if self.cut.at.second() == 0 && self.cut.at.nanosecond() == 0 {
            self.cut.at.format("%Y-%m-%d %H:%M UTC").to_string()
        } else {
            self.cut.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        };
        match self.cut.entry {
            Some(n) => format!("{time} (#{n})"),
            None => time,
        }
    }
}

/// The "as of" picker.
#[derive(Debug, Default)]
pub struct AsOfPicker {
    pub input: String,
    /// Where history begins and its gaps; `None` while loading.
    pub window: Option<Window>,
    /// The last changes of the audit log, newest first.
    pub recent: Vec<AuditEntry>,
    /// A preset chosen with the arrows (then the input is its `#N`).
    pub selected: Option<usize>,
    /// Why the moment typed cannot be shown.
    pub error: Option<String>,
    pub request: u64,
}

/// The blast radius of one key, over the screen.
#[derive(Debug)]
pub struct KeyHistoryView {
    pub fingerprint: String,
    /// Which setting showed it ("aws-admin openai").
    pub from: String,
    pub history: Option<KeyHistory>,
    pub error: Option<String>,
    pub request: u64,
    pub scroll: usize,
}
