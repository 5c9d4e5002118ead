//! The real binary in a real pseudo-terminal: it draws the demo, takes key
//! presses, quits, and leaves the terminal as it found it (main screen,
//! cooked mode with echo).

use std::process::Command;
use std::time::Duration;

use crate::support::TestDb;

#[path = "../common/pty.rs"]
pub(crate) mod common;

/// The real binary as dev@ on `db`, for a terminal, its home, state and
/// config under `home`.
fn console(db: &TestDb, home: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyfall"));
    command
        .args(["--database-url", &db.url(), "--as", "dev@igny8.com"])
        .env("TERM", "xterm-256color")
        .env("HOME", home)
        .env("XDG_STATE_HOME", home)
        .env("XDG_CONFIG_HOME", home);
    command
}

#[tokio::test]
async fn the_real_console_draws_takes_keys_and_restores_the_terminal() {
    let db = TestDb::demo().await;
    let mut pty = common::Pty::open(24, 80);
    let before = pty.local_modes();
    let home = tempfile::tempdir().unwrap();
    let mut command = console(&db, home.path());
    command.env_remove("NO_COLOR");
    let mut child = pty.spawn(command);
    let wait = Duration::from_secs(30);

    pty.wait_for(wait, |s| s.contains("① aws-admin") && s.contains("gpt-4o-mini"));
    assert!(pty.parser.screen().alternate_screen(), "the console draws on the alternate screen");
    pty.send(b"3");
    pty.wait_for(wait, |s| s.contains("missing (required)"));
    pty.send(b"?");
    pty.wait_for(wait, |s| s.contains("Keys (your keymap)") && s.contains("edit the setting"));
    pty.send(b"\x1b");
    pty.wait_for(wait, |s| !s.contains("Keys (your keymap)"));
    pty.send(b"q");
    let status = pty.wait_exit(&mut child, Duration::from_secs(20));

    assert!(status.success(), "exit status {status:?}");
    assert!(!pty.parser.screen().alternate_screen(), "back on the main screen");
    let modes = libc::ICANON | libc::ECHO;
    assert_eq!(pty.local_modes() & modes, before & modes, "cooked mode and echo restored");
    let text = String::from_utf8_lossy(&pty.output);
    assert!(text.contains("\x1b[?2004l"), "bracketed paste turned off again");
    assert!(text.contains("\x1b[?25h"), "cursor shown again");
}

/// Above the inline limit (a million accounts; here forced to none) the
/// filter pass runs off the UI task: typing still filters, the list and
/// the settings of what it shows follow, and a miss says so.
#[tokio::test]
async fn the_filter_runs_off_the_ui_task_for_a_big_index() {
    let db = TestDb::demo().await;
    let mut pty = common::Pty::open(24, 80);
    let home = tempfile::tempdir().unwrap();
    let mut command = console(&db, home.path());
    command.env("KEYFALL_TEST_INLINE_FILTER_LIMIT", "0");
    let mut child = pty.spawn(command);
    let wait = Duration::from_secs(30);
    pty.wait_for(wait, |s| s.contains("① aws-admin") && s.contains("gpt-4o-mini"));
    pty.send(b"/paid\r");
    pty.wait_for(wait, |s| s.contains("paid-2 · inherited from aws-admin") && !s.contains("① aws-admin"));
    pty.send(b"/zzqx");
    pty.wait_for(wait, |s| s.contains("no account matches"));
    pty.send(b"\x1b");
    pty.wait_for(wait, |s| s.contains("① aws-admin") && !s.contains("no account matches"));
    pty.send(b"q");
    let status = pty.wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
}

/// DESIGN §11's canary, through the real console: a key pasted into the
/// editor and saved reaches neither the terminal, nor the log, nor the audit
/// log — only its mask and fingerprint do.
#[tokio::test]
async fn a_canary_key_saved_through_the_console_is_never_shown_or_logged() {
    const CANARY: &str = "sk-canary-pty-3c9d1e7f0a2b-never-print";
    let db = TestDb::demo().await;
    let mut pty = common::Pty::open(30, 100);
    let home = tempfile::tempdir().unwrap();
    let mut command = console(&db, home.path());
    command.env("KEYFALL_LOG", "debug");
    let mut child = pty.spawn(command);
    let wait = Duration::from_secs(30);
    pty.wait_for(wait, |s| s.contains("① aws-admin") && s.contains("gpt-4o-mini"));
    // Filter to paid-2, open the editor, paste the key (bracketed), save.
    pty.send(b"/paid\r");
    pty.wait_for(wait, |s| s.contains("paid-2 · inherited from aws-admin"));
    pty.send(b"e");
    pty.wait_for(wait, |s| s.contains("New OpenAI override for paid-2"));
    pty.send(format!("\x1b[200~{CANARY}\n\x1b[201~").as_bytes());
    pty.wait_for(wait, |s| s.contains("trimmed a line break"));
    pty.send(b"\x13"); // ctrl-s
    pty.wait_for(wait, |s| s.contains("impact (who resolves differently"));
    pty.send(b"\r");
    pty.wait_for(wait, |s| s.contains("saved paid-2 openai v1") || s.contains("created paid-2 openai"));
    pty.send(b"q");
    let status = pty.wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success());

    let output = String::from_utf8_lossy(&pty.output);
    assert!(!output.contains("canary"), "the key reached the terminal");
    let log = std::fs::read_to_string(home.path().join("keyfall/keyfall.log")).expect("a debug log was written");
    assert!(!log.is_empty(), "the log has content, so the check below means something");
    assert!(!log.contains("canary"), "the key reached the log");
    let stored = db.store.setting("paid-2", "openai").await.unwrap().setting.unwrap();
    assert_eq!(stored.config["apiKey"], CANARY, "saved, trimmed of the pasted line break");
    let mut conn = db.raw().await;
    let audit: String = sqlx::query_scalar("SELECT string_agg(coalesce(after::text, ''), ' ') FROM audit_log")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!audit.contains("canary"));
}

/// DESIGN §6 "redraws only what changed": once the first frame is drawn and
/// the settings of the rows on screen have landed, the idle console writes
/// nothing — no clock, no cursor show/hide, no colour reset on each tick.
/// A count of bytes over two seconds (eight ticks), not a timing.
#[tokio::test]
async fn the_idle_console_writes_nothing_to_the_terminal() {
    let db = TestDb::demo().await;
    let mut pty = common::Pty::open(48, 160);
    let home = tempfile::tempdir().unwrap();
    let mut command = console(&db, home.path());
    command.env_remove("NO_COLOR");
    let mut child = pty.spawn(command);
    let wait = Duration::from_secs(30);
    // The first full frame: accounts marked, the setting and the trace drawn.
    pty.wait_for(wait, |s| {
        s.contains("● connected")
            && s.contains("① aws-admin")
            && s.contains("gpt-4o-mini")
            && s.contains("✓ aws-admin answers")
            && !s.contains(" · · ·")
    });
    // Replies already on their way may still draw: wait until a whole
    // second passes without output (bounded), then count.
    let deadline = std::time::Instant::now() + wait;
    loop {
        let before = pty.output.len();
        pty.drain_for(Duration::from_secs(1));
        if pty.output.len() == before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the console never went quiet; screen:\n{}", pty.screen());
    }
    let before = pty.output.len();
    pty.drain_for(Duration::from_secs(2));
    let idle = &pty.output[before..];
    assert!(idle.is_empty(), "the idle console wrote {} bytes: {:?}", idle.len(), String::from_utf8_lossy(idle));
    pty.send(b"q");
    let status = pty.wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success());
}
