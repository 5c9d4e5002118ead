//! Entry point: parse arguments, install the panic hook and file logging,
//! run the command, map its outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

use keyfall::cli::{self, Cli, Exit};

fn main() -> ExitCode {
    // The tests that add a provider run keyfall with it (debug builds only).
    #[cfg(debug_assertions)]
    if std::env::var_os(keyfall::domain::registry::TEST_PROVIDER_ENV).is_some_and(|v| v == "1") {
        keyfall::domain::registry::enable_test_provider();
    }
    let cli = Cli::parse();
    let log_dir = keyfall::config::state_dir();
    let _log_guard = init_logging(&log_dir);
    install_panic_hook(log_dir.join("keyfall.log"));

    // A command line is one task after another: it runs on this thread
    // (no worker threads to start, and no hand-over from an I/O thread to
    // the waiting one on every round trip to the server — each a wake-up
    // that a busy machine makes slow). The console, whose database work
    // runs beside the screen, gets two workers.
    let mut builder = match cli.command {
        Some(_) => tokio::runtime::Builder::new_current_thread(),
        None => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyfall: cannot start the runtime: {e}");
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    // A panic unwinds out of the command (the console's terminal guard
    // restores the screen on the way) and ends the process with 70
    // (EX_SOFTWARE), its message in the log.
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // A panic on purpose, so a test can hold the hook to its word;
        // debug builds only (what the tests run), never in a release.
        #[cfg(debug_assertions)]
        if let Some(text) = std::env::var_os("KEYFALL_TEST_PANIC") {
            panic!("{}", text.to_string_lossy());
        }
        runtime.block_on(cli::run(cli))
    })) {
        Ok(outcome) => outcome,
        Err(_) => return ExitCode::from(70),
    };
    match outcome {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            tracing::warn!(error = %e, "command failed");
            eprintln!("keyfall: {}", one_line(&e.to_string()));
            ExitCode::from(e.exit() as u8)
        }
    }
}

/// Errors are one line: the first line of the message, control characters
/// made visible.
fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    keyfall::domain::text::visible(first).into_owned()
}

/// Logs go to a file in the state directory, never to the screen. With no
/// writable state directory, there is no log. The file is the user's only
/// (0600), created so before anything is written to it, and narrowed to
/// 0600 if an older keyfall left it readable by others.
fn init_logging(dir: &std::path::Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    std::fs::create_dir_all(dir).ok()?;
    private_log_file(&dir.join("keyfall.log")).ok()?;
    let appender = tracing_appender::rolling::never(dir, "keyfall.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let level = match std::env::var("KEYFALL_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        Ok("info") => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_max_level(level).try_init().ok()?;
    Some(guard)
}

#[cfg(unix)]
fn private_log_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn private_log_file(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// A panic prints one line pointing at the log, never the payload (which
/// could quote data); the log gets the message with anything shaped like a
/// key masked. Writing to a closed pipe (`keyfall report | head -1`) is not
/// an error: the process ends quietly with 0.
fn install_panic_hook(log_file: std::path::PathBuf) {
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if message.contains("Broken pipe") && message.starts_with("failed printing to std") {
            std::process::exit(0);
        }
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = scrub(&message);
        let message = keyfall::domain::text::visible_short(&message, 500);
        tracing::error!(%location, %message, "panic");
        eprintln!("keyfall: internal error at {location}; details in {}", log_file.display());
    }));
}

/// A message with every word shaped like a key masked (a URL or DSN with
/// its credentials first, before `:` cuts it into words).
fn scrub(message: &str) -> String {
    let separator =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ':' | '(' | ')' | '[' | ']' | '{' | '}');
    let message = keyfall::domain::secret::mask_shapes_in_text(message);
    message
        .split_inclusive(separator)
        .map(|piece| {
            let word = piece.trim_end_matches(separator);
            let tail = &piece[word.len()..];
            format!("{}{tail}", keyfall::domain::secret::shape_masked(word))
        })
        .collect()
}
