//! stdout for the command line. A reader that went away (`keyfall … | head`)
//! is not an error and never a panic: what is left to print is dropped,
//! a reading command stops where it can (the streamed ones stop reading
//! the database), a writing command still does what it was asked (its
//! exit code says how that went), and the process exits as it would have.
//! Any other write error (a full disk under `> file`) fails the command.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The reader of stdout went away.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first other error writing stdout.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Write to stdout (what `out!` and `outln!` expand to).
pub(crate) fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        note(&e);
    }
}

/// Write bytes to stdout as `write` does.
pub(crate) fn write_bytes(bytes: &[u8]) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        note(&e);
    }
}

/// Remember how writing stdout failed: a closed pipe quietly, anything
/// else to be reported when the command ends.
pub(crate) fn note(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CLOSED.store(true, Ordering::Relaxed);
    } else if let Ok(mut failed) = FAILED.lock() {
        failed.get_or_insert_with(|| e.to_string());
    }
}

/// Whether the reader went away: a reading command may stop here.
pub(crate) fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// At the end of a command: flush stdout; an error other than a closed
/// pipe is the command's failure.
pub(crate) fn finish() -> Result<(), String> {
    if !closed()
        && let Err(e) = std::io::stdout().lock().flush()
    {
        note(&e);
    }
    match FAILED.lock().ok().and_then(|mut f| f.take()) {
        Some(e) => Err(format!("cannot write the output: {e}")),
        None => Ok(()),
    }
}
