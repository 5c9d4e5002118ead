//! The test app's Python, shared by the tests (`tests/it/django.rs`) and the
//! benches (`benches/common.rs`), both of which include this file by path:
//! one venv (`<target>/django-venv`) with Django and psycopg from the
//! package index, installed once per machine (a marker file records what was
//! installed; threads and processes that need it at the same time wait on a
//! file lock), and `tests/django/kf.py` run against a target's database with
//! the libpq variables derived from it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use keyfall::store::Target;
use sqlx::ConnectOptions;
use sqlx::postgres::PgSslMode;

const REQUIREMENTS: &[&str] = &["Django>=5.0,<6", "psycopg[binary]>=3.1"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => repo().join(dir), // an absolute dir replaces the repo
        None => repo().join("target"),
    }
}

/// The virtualenv's python, with Django and psycopg installed.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(ensure_venv).clone()
}

fn ensure_venv() -> PathBuf {
    use std::io::Write;
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("create the target dir");
    let venv = target.join("django-venv");
    let python = venv.join("bin").join("python");
    let marker = venv.join("keyfall-requirements.txt");
    let wanted = REQUIREMENTS.join("\n");

    let lock = std::fs::File::create(target.join("django-venv.lock")).expect("create django-venv.lock");
    lock.lock().expect("lock django-venv.lock");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) && python.exists() {
        return python;
    }
    // Past the test harness' capture: the wait should not look like a hang.
    let _ = writeln!(std::io::stderr(), "installing Django into {} (first run, ~30 s)", venv.display());
    if venv.exists() {
        std::fs::remove_dir_all(&venv).expect("remove the old django-venv");
    }
    let python3 = std::env::var_os("KEYFALL_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    // What is missing, in one line: Python, its venv module, or the
    // package index.
    let shown = python3.to_string_lossy().into_owned();
    if Command::new(&python3).arg("--version").output().is_err() {
        panic!("the Django tests need Python 3: `{shown}` is not found (install it, or set KEYFALL_TEST_PYTHON)");
    }
    let made = Command::new(&python3).arg("-m").arg("venv").arg(&venv).output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        let why = made.map(|o| last_line(&o.stderr)).unwrap_or_else(|e| e.to_string());
        panic!(
            "the Django tests need Python 3's venv module: `{shown} -m venv` failed ({why}; on Debian and Ubuntu: apt install python3-venv)"
        );
    }
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet"])
        .args(REQUIREMENTS)
        .output();
    if !installed.as_ref().is_ok_and(|o| o.status.success()) {
        let why = installed.map(|o| last_line(&o.stderr)).unwrap_or_else(|e| e.to_string());
        panic!(
            "the Django tests need the package index (or a pip mirror) to install {}: pip install failed ({why})",
            REQUIREMENTS.join(" and ")
        );
    }
    std::fs::write(&marker, wanted).expect("write the django-venv marker");
    python
}

/// Run `cmd`; its output, or a panic naming `what` with stderr's last lines.
pub fn run_or_panic(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", cmd.get_program()));
    if !out.status.success() {
        panic!("{what} failed ({}):\n{}", out.status, tail(&out.stderr, 60));
    }
    out
}

/// The last non-empty line of a program's stderr.
fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string()
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The password of the target, if it has one (sqlx has no getter for it;
/// its URL carries it percent-encoded).
fn password(target: &Target) -> Option<String> {
    let url = target.options.to_url_lossy();
    let encoded = url.password()?;
    let mut bytes = Vec::new();
    let mut rest = encoded.as_bytes();
    while let [first, tail @ ..] = rest {
        match (first, tail) {
            (b'%', [h, l, after @ ..]) => {
                bytes.push(u8::from_str_radix(std::str::from_utf8(&[*h, *l]).ok()?, 16).ok()?);
                rest = after;
            }
            _ => {
                bytes.push(*first);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

/// `python tests/django/kf.py ARGS…` against the target's database (the
/// libpq variables say which), not yet run.
pub fn kf_command(target: &Target, args: &[&str]) -> Command {
    let o = &target.options;
    let host = match o.get_socket() {
        Some(dir) => dir.to_string_lossy().into_owned(),
        None => o.get_host().to_string(),
    };
    let sslmode = match o.get_ssl_mode() {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    };
    let mut cmd = Command::new(python());
    cmd.current_dir(repo())
        .arg(repo().join("tests/django/kf.py"))
        .args(args)
        .env("PGHOST", host)
        .env("PGPORT", o.get_port().to_string())
        .env("PGUSER", o.get_username())
        .env("PGDATABASE", o.get_database().unwrap_or(o.get_username()))
        .env("PGSSLMODE", sslmode)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS");
    match password(target) {
        Some(p) => cmd.env("PGPASSWORD", p),
        None => cmd.env_remove("PGPASSWORD"),
    };
    cmd
}

/// `kf.py ARGS…`: its stdout. Panics with stderr on failure.
pub fn kf_raw(target: &Target, args: &[&str]) -> String {
    let out = run_or_panic(&mut kf_command(target, args), &format!("kf.py {}", args.join(" ")));
    String::from_utf8(out.stdout).expect("kf.py prints UTF-8")
}
