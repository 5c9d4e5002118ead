//! DESIGN §10 targets for the console at XL (100,000 accounts, 1,000,000
//! users, 250,000 settings):
//! - start to first full frame, and RSS, of the real (release) binary in a
//!   pseudo-terminal: "full" means the accounts pane with its markers, the
//!   setting and the resolve-as trace all drawn;
//! - one filter keystroke to frame (update + draw), in process;
//! - bytes written to the terminal for one cursor move, within the screen
//!   and once the list scrolls (the runtime's backend, counted);
//! - bytes written by the idle console (the real binary, 2 s after its
//!   first full frame);
//! - a user search by substring (the picker's query), for a prefix, a
//!   common and a rare substring, and one that matches nobody.
//!
//! Run: `cargo bench --bench console` (see `common.rs` for the database).
//! Not a test: it prints figures and asserts nothing.

mod common;

#[path = "../tests/common/pty.rs"]
mod pty;

use std::collections::VecDeque;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keyfall::app::keymap::Keymap;
use keyfall::app::{Access, Cmd, Model, Msg, Session, update, view};
use keyfall::store::Store;
use keyfall::tui::backend::LeanBackend;
use ratatui::backend::TestBackend;
use ratatui::{Terminal, TerminalOptions, Viewport};
use sqlx::ConnectOptions;

const STARTS: usize = 10;

#[tokio::main]
async fn main() {
    let (store, target) = common::xl_store().await;
    println!("machine: {}; data: XL in {}", common::machine(), store.label());
    start_up(target.options.to_url_lossy().as_ref());
    keystrokes(&store).await;
    cursor_bytes(&store).await;
    user_search(&store).await;
}

async fn user_search(store: &Store) {
    for query in ["user12345", "paid", "42@xl-0001", "9999@xl-00", "nobody-zzq"] {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..5 {
            let started = Instant::now();
            found = store.find_users(query, keyfall::app::USER_PAGE).await.expect("find users").len();
            times.push(started.elapsed());
        }
        println!(
            "user search {query:?} ({found} found): median {} max {}   target well under 1 s",
            ms(median(times.clone())),
            ms(*times.iter().max().unwrap())
        );
    }
}

fn start_up(url: &str) {
    let mut times = Vec::new();
    let mut whole = Vec::new();
    let mut rss_kb = 0;
    let mut idle = None;
    for _ in 0..STARTS {
        let mut pty = pty::Pty::open(48, 160);
        let home = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyfall"));
        command
            .args(["--database-url", url, "--as", "dev@igny8.com"])
            .env("TERM", "xterm-256color")
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path());
        let started = Instant::now();
        let mut child = pty.spawn(command);
        pty.wait_for(Duration::from_secs(30), |s| {
            s.contains("● connected")
                && s.contains("② default-account")
                && s.contains("✓ answers for this account")
                && s.contains("✓ aws-admin answers")
                && !s.contains("loading")
                && !s.contains(" · · ·")
        });
        times.push(started.elapsed());
        // The first frame comes from the index's first page ("302+"); the
        // whole index follows.
        pty.wait_for(Duration::from_secs(60), |s| {
            s.split(" Accounts ").nth(1).is_some_and(|rest| {
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                digits > 0 && rest[digits..].starts_with(' ')
            })
        });
        whole.push(started.elapsed());
        if idle.is_none() {
            // Settings of neighbouring rows may still land (and draw) just
            // after the frame: let the screen settle, then listen.
            pty.drain_for(Duration::from_millis(1500));
            let before = pty.output.len();
            pty.drain_for(Duration::from_secs(2));
            idle = Some(pty.output.len() - before);
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        rss_kb = rss_kb.max(field("VmHWM:")).max(field("VmRSS:"));
        pty.send(b"q");
        pty.wait_exit(&mut child, Duration::from_secs(20));
    }
    times.sort();
    println!(
        "start to first full frame (real binary, 160×48 pty): median {} max {}   target <300 ms",
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap())
    );
    whole.sort();
    println!(
        "  the whole account index in (the count without \"+\"): median {} max {}",
        ms(whole[whole.len() / 2]),
        ms(*whole.last().unwrap())
    );
    println!("peak RSS, the whole index in: {:.1} MB   target <80 MB", rss_kb as f64 / 1024.0);
    println!("bytes written by the idle console in 2 s: {}   target 0", idle.unwrap_or_default());
}

async fn drive(store: &Store, model: &mut Model, cmds: Vec<Cmd>) {
    let mut queue = VecDeque::from(cmds);
    while let Some(cmd) = queue.pop_front() {
        let msg = keyfall::tui::exec::run(store, cmd).await;
        queue.extend(update(model, msg));
    }
}

async fn booted(store: &Store, size: (u16, u16)) -> Model {
    let session = Session {
        database: store.label().to_string(),
        label: None,
        color: None,
        access: Access { operator: None, read_only: Some("bench".into()), forced: true },
        no_color: false,
    };
    let mut model = Model::new(session, Keymap::default_keys(), chrono::Utc::now());
    let cmds = update(&mut model, Msg::Resize { width: size.0, height: size.1 });
    drive(store, &mut model, cmds).await;
    let cmds = model.start();
    drive(store, &mut model, cmds).await;
    model
}

async fn keystrokes(store: &Store) {
    let mut model = booted(store, (160, 48)).await;
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    terminal.draw(|f| view::draw(&model, f)).expect("draw");
    let mut samples = Vec::new();
    // Typed twice: the first pass scans all 100,000 slugs on its first key.
    let mut updates = Vec::new();
    // Above the inline limit (10× XL) the pass runs off the UI task: the
    // keystroke's frame shows the filter typed, and the list follows when
    // the pass is done (its time, then the apply and the frame).
    let mut follows = Vec::new();
    for round in 0..20 {
        for key in ["/", "x", "l", "0", "4", "2", "esc"] {
            let started = Instant::now();
            let mut cmds = update(&mut model, Msg::Key(key.to_string()));
            let updated = started.elapsed();
            terminal.draw(|f| view::draw(&model, f)).expect("draw");
            let elapsed = started.elapsed();
            if key != "/" && key != "esc" {
                samples.push((round, key, elapsed));
                updates.push(updated);
            }
            if let Some(job) = model.accounts.take_job() {
                let filtered = job.run();
                cmds.extend(update(&mut model, Msg::Filtered(Box::new(filtered))));
                terminal.draw(|f| view::draw(&model, f)).expect("draw");
                follows.push(started.elapsed());
            }
            // Settings for newly shown rows arrive in the background; not
            // part of the keystroke's frame.
            drive(store, &mut model, cmds).await;
        }
    }
    updates.sort();
    let mut all: Vec<Duration> = samples.iter().map(|s| s.2).collect();
    all.sort();
    let first: Vec<Duration> = samples.iter().filter(|s| s.1 == "x").map(|s| s.2).collect();
    println!(
        "filter keystroke to frame (update + draw, 160×48, {} keys): p50 {} p99 {} max {}; first key (full scan) median {}   target <10 ms",
        all.len(),
        ms(all[all.len() / 2]),
        ms(all[all.len() * 99 / 100]),
        ms(*all.last().unwrap()),
        ms(median(first))
    );
    println!(
        "  of which update (filtering): p50 {} p99 {}",
        ms(updates[updates.len() / 2]),
        ms(updates[updates.len() * 99 / 100])
    );
    if !follows.is_empty() {
        follows.sort();
        println!(
            "  the list follows (a pass off the UI task over {} accounts, then the frame): p50 {} p99 {}",
            model.accounts.total(),
            ms(follows[follows.len() / 2]),
            ms(follows[follows.len() * 99 / 100])
        );
    }
}

async fn cursor_bytes(store: &Store) {
    for size in [(80u16, 24u16), (160, 48)] {
        let mut model = booted(store, size).await;
        let written = Arc::new(AtomicUsize::new(0));
        // A fixed viewport: the size under test, not the bench's own terminal.
        // The runtime's own backend, writing to a counter.
        let viewport = Viewport::Fixed(ratatui::layout::Rect::new(0, 0, size.0, size.1));
        let backend =
            LeanBackend::with_size(Counter(written.clone()), ratatui::layout::Size { width: size.0, height: size.1 });
        let mut terminal = Terminal::with_options(backend, TerminalOptions { viewport }).expect("terminal");
        terminal.draw(|f| view::draw(&model, f)).expect("draw");
        // Moves within the screen, then moves past its bottom edge: each of
        // those scrolls the list (the case that used to cost 1.6-2.1 KB).
        let rows = model.account_rows();
        let mut within = Vec::new();
        let mut scrolling = Vec::new();
        for step in 0..rows + 20 {
            let cmds = update(&mut model, Msg::Key("j".into()));
            drive(store, &mut model, cmds).await;
            written.store(0, Ordering::SeqCst);
            terminal.draw(|f| view::draw(&model, f)).expect("draw");
            let n = written.load(Ordering::SeqCst);
            if step + 1 < rows { within.push(n) } else { scrolling.push(n) }
        }
        let stats = |v: &mut Vec<usize>| {
            v.sort();
            format!("median {} B, max {} B", v[v.len() / 2], v[v.len() - 1])
        };
        println!(
            "bytes written for one cursor move (j) at {}×{}: within the screen {}; once the list scrolls {}   target <1 KB",
            size.0,
            size.1,
            stats(&mut within),
            stats(&mut scrolling)
        );
    }
}

/// A terminal that only counts what it is sent.
struct Counter(Arc<AtomicUsize>);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::SeqCst);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
