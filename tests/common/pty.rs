//! A program in a pseudo-terminal, read through a terminal emulator (vt100):
//! shared by the console's pty test and its start-up benchmark.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A program started in a pty; killed (and reaped) when dropped.
pub struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub struct Pty {
    master: File,
    pub slave: OwnedFd,
    rx: mpsc::Receiver<Vec<u8>>,
    pub parser: vt100::Parser,
    /// Every byte the program wrote.
    pub output: Vec<u8>,
}

impl Pty {
    pub fn open(rows: u16, cols: u16) -> Pty {
        let mut master = 0;
        let mut slave = 0;
        let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: out-pointers to two ints and a valid winsize; no name buffer.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two fresh descriptors that we now own.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let (tx, rx) = mpsc::channel();
        let mut reader = master.try_clone().expect("clone pty master");
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let nz = |n: u16| std::num::NonZeroU16::new(n).expect("non-zero size");
        Pty { master, slave, rx, parser: vt100::Parser::new(nz(rows), nz(cols), 0), output: Vec::new() }
    }

    /// Start `command` with this terminal as its controlling terminal. The
    /// program is killed when the handle is dropped, so a failed test leaves
    /// nothing running.
    pub fn spawn(&self, mut command: Command) -> Running {
        let stdio = || Stdio::from(self.slave.try_clone().expect("clone pty slave"));
        command.stdin(stdio()).stdout(stdio()).stderr(stdio());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        Running(command.spawn().expect("start the program"))
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to pty");
    }

    pub fn screen(&self) -> String {
        self.parser.screen().contents()
    }

    fn take(&mut self, timeout: Duration) -> bool {
        match self.rx.recv_timeout(timeout) {
            Ok(bytes) => {
                self.parser.process(&bytes);
                self.output.extend_from_slice(&bytes);
                true
            }
            Err(_) => false,
        }
    }

    /// Read output until the screen satisfies `done` (panics after `limit`).
    pub fn wait_for(&mut self, limit: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.screen()) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out; screen:\n{}", self.screen());
            self.take(left);
        }
    }

    /// Read whatever arrives for `span` (the bytes land in `output`).
    #[allow(dead_code)] // used by the idle checks, not by every includer
    pub fn drain_for(&mut self, span: Duration) {
        let deadline = Instant::now() + span;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.take(left);
        }
    }

    /// Read output until the child exits and the output goes quiet.
    pub fn wait_exit(&mut self, child: &mut Child, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the program did not exit; screen:\n{}", self.screen());
            self.take(Duration::from_millis(50));
        };
        while self.take(Duration::from_millis(200)) {}
        status
    }

    /// The terminal's local modes (ICANON, ECHO…).
    #[allow(dead_code)] // the pty test uses it; the start-up benchmark does not
    pub fn local_modes(&self) -> libc::tcflag_t {
        // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: the slave is an open terminal descriptor.
        assert_eq!(unsafe { libc::tcgetattr(self.slave.as_raw_fd(), &mut t) }, 0);
        t.c_lflag
    }
}
