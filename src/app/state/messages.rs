//! The message log's state (`messages` has its keys and view).

use chrono::{DateTime, Utc};

use crate::app::scroll::Scroll;

/// How long a notice holds the footer before the key hints come back (it
/// stays in the log).
pub const NOTICE_SECONDS: i64 = 8;
/// Notices kept; the oldest go first.
pub(in crate::app) const KEPT: usize = 500;

#[derive(Debug, Default)]
pub struct Log {
    /// (when, notice), oldest first.
    pub entries: Vec<(DateTime<Utc>, String)>,
    /// The notice in the footer now, as recorded, and since when.
    pub(in crate::app) current: Option<(DateTime<Utc>, String)>,
    /// Open, and where it is scrolled to.
    pub open: bool,
    pub scroll: Scroll,
}

impl Log {
    /// Record the footer's notice if it is a new one.
    pub fn record(&mut self, notice: Option<&String>, now: DateTime<Utc>) {
        match notice {
            None => self.current = None,
            Some(n) if self.current.as_ref().is_some_and(|(_, c)| c == n) => {}
            Some(n) => {
                // A notice quotes no secret, whatever it carries.
                let n = crate::domain::secret::mask_shapes_in_text(n).into_owned();
                self.current = Some((now, n.clone()));
                self.entries.push((now, n));
                if self.entries.len() > KEPT {
                    self.entries.remove(0);
                }
            }
        }
    }

    /// Whether the footer's notice has been shown long enough.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.current.as_ref().is_some_and(|(at, _)| (now - *at).num_seconds() >= NOTICE_SECONDS)
    }
}
