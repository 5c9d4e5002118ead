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

/// When to colour: `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColourChoice {
    // On a terminal, unless `NO_COLOR` is set (and not empty) or `TERM=dumb`.
    #[default]
    Auto,
    // Always, even into a pipe or a file (and over `NO_COLOR`).
    Always,
    Never,
}

/// Whether stdout is coloured, decided once per process.
static COLOUR: AtomicBool = AtomicBool::new(false);

/// Decide, for stdout, from the choice and the environment.
pub(crate) fn set_colour(choice: ColourChoice) {
    COLOUR.store(colour_for(choice, std::io::IsTerminal::is_terminal(&std::io::stdout())), Ordering::Relaxed);
}

/// Whether a stream (a terminal or not) is coloured under `choice`.
pub fn colour_for(choice: ColourChoice, terminal: bool) -> bool {
    match choice {
        ColourChoice::Always => true,
        ColourChoice::Never => false,
        ColourChoice::Auto => {
            terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

const GREEN: &str = "\x1b[32m";
const BOLD_GREEN: &str = "\x1b[1;32m";
const BOLD_RED: &str = "\x1b[1;31m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Human text with its verdicts, warnings and masks coloured, when stdout
/// is: ANSWER/ALLOWED/✓ green, DENIED/FAILS/✗/unresolved red, ⚠ lines
/// yellow, skipped steps and masked keys dim. Only the words change colour;
/// the text, and so its alignment, stays as it was.
pub(crate) fn paint(text: &str) -> std::borrow::Cow<'_, str> {
    if !COLOUR.load(Ordering::Relaxed) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.split_inclusive('\n').map(paint_line).collect())
}

fn paint_line(line: &str) -> String {
    let body = line.trim_end_matches('\n');
    let newline = &line[body.len()..];
    let trimmed = body.trim_start();
    if trimmed.starts_with('⚠') || trimmed.starts_with("warning:") {
        return format!("{YELLOW}{body}{RESET}{newline}");
    }
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = body;
    while !rest.is_empty() {
        let at = rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len());
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        let colour = match word {
            "ANSWER" | "ALLOWED" | "✓" | "ok" => Some(BOLD_GREEN),
            "DENIED" | "FAILS" | "✗" | "unresolved:" | "error" | "FAIL" => Some(BOLD_RED),
            "warning" | "warn" => Some(YELLOW),
            "skipped" => Some(DIM),
            "own" => Some(GREEN),
            w if w.starts_with('•') => Some(DIM),
            w if w.starts_with("✗") => Some(RED),
            _ => None,
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(word);
                out.push_str(RESET);
            }
            None => out.push_str(word),
        }
        rest = &rest[end..];
    }
    out.push_str(newline);
    out
}
