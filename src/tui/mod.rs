//! The console's runtime: the only user of crossterm. It owns the terminal
//! (raw mode, alternate screen, bracketed paste, mouse capture unless
//! turned off — restored on every exit path, a panic included), turns terminal events into `Msg`s, runs `Cmd`s
//! in background tasks, and redraws. ratatui diffs frames, so only cells
//! that changed are written, and `backend` writes them in as few bytes as
//! it can — what keeps it light over SSH; an unchanged frame writes none.

pub mod backend;
pub mod exec;

use std::io::{self, Stdout};
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event, EventStream, KeyCode,
    KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use crossterm::{cursor, execute};
use futures_util::StreamExt;
use ratatui::Terminal;
use tokio::sync::mpsc;

use crate::app::{self, Cmd, Model, Msg};
use crate::store::Store;
use crate::store::listen::Event as DbEvent;
use backend::LeanBackend;

/// Raw mode and the alternate screen, undone on drop; and the terminal's
/// events, one stream for the whole session (a second reader would split
/// the bytes of a mouse report between them).
pub struct TerminalGuard {
    pub terminal: Terminal<LeanBackend<Stdout>>,
    events: EventStream,
}

impl TerminalGuard {
    /// Take the terminal; `mouse`: take the mouse too (SGR reports).
    pub fn enter(mouse: bool) -> io::Result<TerminalGuard> {
        install_restoring_panic_hook();
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen, EnableBracketedPaste, cursor::Hide) {
            restore();
            return Err(e);
        }
        if mouse && let Err(e) = execute!(stdout, EnableMouseCapture) {
            restore();
            return Err(e);
        }
        let terminal = Terminal::new(LeanBackend::new(stdout)).inspect_err(|_| restore())?;
        Ok(TerminalGuard { terminal, events: EventStream::new() })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Put the terminal back as we found it. Safe to call more than once.
pub fn restore() {
    // The lean backend leaves its pen set between frames: reset it first.
    let _ = execute!(
        io::stdout(),
        crossterm::style::SetAttribute(crossterm::style::Attribute::Reset),
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
}

fn install_restoring_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// A crossterm key as the keymap names it: "q", "G", "ctrl-c", "enter".
pub fn key_name(key: &KeyEvent) -> Option<String> {
    if !matches!(key.kind, KeyEventKind::Press | KeyEventKind::Repeat) {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let base = match key.code {
        KeyCode::Char(' ') => "space".to_string(),
        KeyCode::Char(c) if ctrl || alt => c.to_lowercase().to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::Delete => "delete".into(),
        KeyCode::Insert => "insert".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        KeyCode::F(n) => format!("f{n}"),
        _ => return None,
    };
    Some(if ctrl {
        format!("ctrl-{base}")
    } else if alt {
        format!("alt-{base}")
    } else {
        base
    })
}

/// OSC 52 "set the clipboard" for `text`: base64 inside, so nothing in it
/// reaches the terminal as a control sequence.
pub fn osc52(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut b64 = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n =
            (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    format!("\x1b]52;c;{b64}\x07")
}

/// A mouse event as the model takes it: a left click or the wheel.
pub fn mouse_of(event: &MouseEvent) -> Option<app::mouse::Mouse> {
    use app::mouse::MouseKind;
    let kind = match event.kind {
        MouseEventKind::Down(MouseButton::Left) => MouseKind::Click,
        MouseEventKind::ScrollUp => MouseKind::ScrollUp,
        MouseEventKind::ScrollDown => MouseKind::ScrollDown,
        _ => return None,
    };
    Some(app::mouse::Mouse { kind, column: event.column, row: event.row })
}

/// Run the console until the user quits.
pub async fn run(store: Store, model: Model, mouse: bool) -> anyhow::Result<()> {
    let mut guard = TerminalGuard::enter(mouse)?;
    run_in(&mut guard, store, model).await?;
    drop(guard);
    Ok(())
}

/// Run the console on a terminal already taken, until the user quits or
/// asks for another context (`model.switch_to`); the model comes back.
pub async fn run_in(guard: &mut TerminalGuard, store: Store, mut model: Model) -> anyhow::Result<Model> {
    let size = guard.terminal.size()?;
    model.size = (size.width, size.height);
    // Tests drive the off-task filter on the small demo (debug builds only).
    #[cfg(debug_assertions)]
    if let Some(limit) = std::env::var("KEYFALL_TEST_INLINE_FILTER_LIMIT").ok().and_then(|v| v.parse().ok()) {
        model.accounts.set_inline_limit(limit);
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let spawn = |cmds: Vec<Cmd>| {
        for cmd in cmds {
            // The clipboard goes through the terminal: written here, on the
            // loop, between frames.
            if let Cmd::Copy { text, .. } = &cmd {
                use std::io::Write;
                let mut out = io::stdout();
                let _ = out.write_all(osc52(text.expose()).as_bytes());
                let _ = out.flush();
            }
            let store = store.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let request = cmd.request();
                // A panic inside a command (bad data the decoder chokes on)
                // becomes a failed request, never a silent hang.
                let msg = match tokio::spawn(async move { exec::run(&store, cmd).await }).await {
                    Ok(msg) => msg,
                    Err(_) => Msg::Failed { request, error: "internal error (see the log)".into(), unavailable: false },
                };
                let _ = tx.send(msg);
            });
        }
    };
    spawn(model.start());
    let events_tx = tx.clone();
    let listener = tokio::spawn(crate::store::listen::listen(store.clone(), move |event| {
        let msg = match event {
            DbEvent::Change(change) => Msg::Changed(change),
            DbEvent::Lost(error) => Msg::ListenerLost { error },
            DbEvent::Resumed => Msg::ListenerResumed,
        };
        events_tx.send(msg).is_ok()
    }));
    guard.terminal.draw(|f| app::view::draw(&model, f))?;

    // Changes heard between ticks are applied together on the next one.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        let msg = tokio::select! {
            event = guard.events.next() => match event {
                Some(Ok(Event::Key(key))) => match key_name(&key) {
                    // A panic inside the console on purpose, so a test can
                    // hold the restore to its word (debug builds only).
                    #[cfg(debug_assertions)]
                    Some(name) if std::env::var("KEYFALL_TEST_PANIC_KEY").is_ok_and(|k| k == name) => {
                        panic!("panic key pressed")
                    }
                    Some(name) => Msg::Key(name),
                    None => continue,
                },
                Some(Ok(Event::Paste(text))) => Msg::Paste(text),
                Some(Ok(Event::Resize(width, height))) => Msg::Resize { width, height },
                Some(Ok(Event::Mouse(event))) => match mouse_of(&event) {
                    Some(m) => Msg::Mouse(m),
                    None => continue,
                },
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(msg) = rx.recv() => msg,
            _ = tick.tick() => Msg::Tick { now: chrono::Utc::now() },
            _ = terminate.recv() => break,
            _ = hangup.recv() => break,
        };
        let cmds = app::update(&mut model, msg);
        spawn(cmds);
        // A keystroke's filter pass over a big account index runs on a
        // blocking thread; its result comes back as a message.
        if let Some(job) = model.accounts.take_job() {
            let tx = tx.clone();
            tokio::task::spawn_blocking(move || {
                let _ = tx.send(Msg::Filtered(Box::new(job.run())));
            });
        }
        if model.quit || model.switch_to.is_some() {
            break;
        }
        guard.terminal.draw(|f| app::view::draw(&model, f))?;
    }
    listener.abort();
    Ok(model)
}
