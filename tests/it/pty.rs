//! The real binary in a real pseudo-terminal: it draws the demo, takes key
//! presses, quits, and leaves the terminal as it found it (main screen,
//! cooked mode with echo).

use std::process::Command;
use std::time::Duration;

use crate::support::TestDb;

#[path = "../common/pty.rs"]
mod common;

#[tokio::test]
async fn the_real_console_draws_takes_keys_and_restores_the_terminal() {
    let db = TestDb::demo().await;
    let mut pty = common::Pty::open(24, 80);
    let before = pty.local_modes();
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyfall"));
    command
        .args(["--database-url", &db.url(), "--as", "dev@igny8.com"])
        .env("TERM", "xterm-256color")
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("NO_COLOR");
    let mut child = pty.spawn(command);
    let wait = Duration::from_secs(30);

    pty.wait_for(wait, |s| s.contains("① aws-admin") && s.contains("gpt-4o-mini"));
    assert!(pty.parser.screen().alternate_screen(), "the console draws on the alternate screen");
    pty.send(b"3");
    pty.wait_for(wait, |s| s.contains("missing (required)"));
    pty.send(b"?");
    pty.wait_for(wait, |s| s.contains("quit keyfall"));
    pty.send(b"\x1b");
    pty.wait_for(wait, |s| !s.contains("quit keyfall"));
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
