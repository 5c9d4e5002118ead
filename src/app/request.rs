//! Latest reply wins: every `Cmd` carries a request id, and a reply is
//! wanted only while its id is the newest of its kind (gitui's
//! `asyncjob`). One tracker issues the ids and remembers, per kind, the
//! newest; a screen that waits for one reply (the editor's save, the audit
//! list) keeps the id it issued in its own state instead, so closing the
//! screen drops the reply. A refresh marks every older reply as stale.

/// The kinds of request where only the newest reply counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Loading the index, the chain, the policy and the functions.
    Boot,
    /// What the resolve-as panel shows.
    Resolve,
    /// The user picker's search.
    UserSearch,
    /// The connection test shown under the setting or the trace.
    ConnectionTest,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Boot, Kind::Resolve, Kind::UserSearch, Kind::ConnectionTest];

    fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Issues request ids and says whether a reply is still wanted.
#[derive(Debug)]
pub struct Tracker {
    next: u64,
    /// The newest id of each kind (0: none asked yet, or forgotten).
    latest: [u64; Kind::ALL.len()],
    /// Replies to ids below this were asked before a refresh.
    epoch: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker { next: 1, latest: [0; Kind::ALL.len()], epoch: 0 }
    }
}

impl Tracker {
    /// A fresh id, tracked by whoever keeps it (a screen, a cache).
    pub fn issue(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        id
    }

    /// A fresh id that is now the newest of `kind`: replies to earlier
    /// ones of that kind are stale.
    pub fn start(&mut self, kind: Kind) -> u64 {
        let id = self.issue();
        self.latest[kind.index()] = id;
        id
    }

    /// Whether `id` is the newest request of `kind` (its reply is wanted).
    pub fn is_latest(&self, kind: Kind, id: u64) -> bool {
        id != 0 && self.latest[kind.index()] == id
    }

    /// No reply of `kind` is wanted any more.
    pub fn forget(&mut self, kind: Kind) {
        self.latest[kind.index()] = 0;
    }

    /// Everything asked so far is from before a refresh: its replies are
    /// stale (a reload follows).
    pub fn refresh(&mut self) {
        self.epoch = self.next;
    }

    /// Whether `id` was asked before the last refresh.
    pub fn is_stale(&self, id: u64) -> bool {
        id < self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_reply_is_dropped_and_the_latest_kept() {
        let mut t = Tracker::default();
        let first = t.start(Kind::Resolve);
        let second = t.start(Kind::Resolve);
        assert!(!t.is_latest(Kind::Resolve, first), "an older resolve's reply is dropped");
        assert!(t.is_latest(Kind::Resolve, second));
        // Kinds are independent: a search does not make a resolve stale.
        let search = t.start(Kind::UserSearch);
        assert!(t.is_latest(Kind::Resolve, second) && t.is_latest(Kind::UserSearch, search));
        // An id of one kind is never the latest of another.
        assert!(!t.is_latest(Kind::Boot, second));
        t.forget(Kind::UserSearch);
        assert!(!t.is_latest(Kind::UserSearch, search));
    }

    #[test]
    fn a_refresh_makes_every_earlier_reply_stale() {
        let mut t = Tracker::default();
        let before = t.issue();
        t.refresh();
        let after = t.issue();
        assert!(t.is_stale(before) && !t.is_stale(after));
        assert!(!t.is_latest(Kind::Boot, 0), "0 is never a request");
    }
}
