//! One line of progress on stderr for long work (a whole-database lint or
//! export, the XL demo load): only on a terminal, wiped when done.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A line on stderr while a whole-database run streams, only when stderr
/// is a terminal (a pipe or a log gets nothing); at most ten updates a
/// second, wiped when done.
pub(crate) struct Progress {
    what: &'static str,
    unit: &'static str,
    shown: Option<Instant>,
    count: u64,
    on: bool,
}

impl Progress {
    /// `streams`: the command writes its output while it runs, so a
    /// terminal on stdout too would mix the two on one screen: no line then.
    pub(crate) fn new(what: &'static str, unit: &'static str, streams: bool) -> Progress {
        let on = std::io::stderr().is_terminal() && !(streams && std::io::stdout().is_terminal());
        Progress { what, unit, shown: None, count: 0, on }
    }

    pub(crate) fn tick(&mut self) {
        self.count += 1;
        if !self.on || !self.count.is_multiple_of(1024) {
            return;
        }
        let now = Instant::now();
        if self.shown.is_some_and(|t| now.duration_since(t) < Duration::from_millis(100)) {
            return;
        }
        self.shown = Some(now);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}: {} {}…", self.what, self.count, self.unit);
        let _ = err.flush();
    }

    /// A long job's step `i` of `n` (`i` past `n`: finishing up).
    pub(crate) fn step(&mut self, i: usize, n: usize, what: &str) {
        if !self.on || n < 2 {
            return;
        }
        self.shown = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let what = crate::domain::text::visible_short(what, 60);
        let _ = if i > n {
            write!(err, "\r\x1b[K{}: {what}…", self.what)
        } else {
            write!(err, "\r\x1b[K{}: step {i}/{n}: {what}…", self.what)
        };
        let _ = err.flush();
    }

    pub(crate) fn done(&mut self) {
        if self.shown.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done();
    }
}
