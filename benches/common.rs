//! What the benchmarks share: the XL database, loaded once.
//!
//! `KEYFALL_BENCH_SCHEMA` picks the tables the XL data set lives in:
//! unset (or `demo`), keyfall's own demo tables in database
//! `keyfall_bench_xl`; `django`, the tables Django makes for the test app in
//! `tests/django` (igny8_account, igny8_user, igny8_integration_settings) in
//! database `keyfall_bench_xl_django`, with keyfall attached to them as
//! `keyfall attach` would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use keyfall::store::{Store, Target, connect, mapping};
use sqlx::ConnectOptions;
use sqlx::postgres::PgSslMode;

/// `KEYFALL_BENCH_URL` (its database is used as given, whatever the
/// schema), else the server keyfall would find, database `keyfall_bench_xl`
/// (or `keyfall_bench_xl_django`); the XL data set is loaded the first time
/// (~20 s; with Django, the venv and Django's migrate first as well).
pub async fn xl_store() -> (Store, Target) {
    let django = match std::env::var("KEYFALL_BENCH_SCHEMA").as_deref() {
        Err(_) | Ok("") | Ok("demo") => false,
        Ok("django") => true,
        Ok(other) => panic!("KEYFALL_BENCH_SCHEMA={other:?}: `demo` (the default) or `django`"),
    };
    let target = match std::env::var("KEYFALL_BENCH_URL") {
        Ok(url) => connect::parse_target(&url).expect("KEYFALL_BENCH_URL"),
        Err(_) => {
            let url = std::env::var("DATABASE_URL").ok();
            connect::discover(url.as_deref(), &keyfall::config::data_dir())
                .await
                .expect("a PostgreSQL server")
                .with_database(if django { "keyfall_bench_xl_django" } else { "keyfall_bench_xl" })
        }
    };
    if django {
        return (django_xl_store(&target).await, target);
    }
    let target = if scale() == 10 && std::env::var_os("KEYFALL_BENCH_URL").is_none() {
        target.with_database("keyfall_bench_xl10")
    } else {
        target
    };
    let store = Store::open_demo(&target).await.expect("open the bench database");
    store.load_demo().await.expect("demo");
    if scale() == 10 {
        let started = Instant::now();
        store.load_script("keyfall bench --scale 10", xl10_script()).await.expect("xl10");
        println!("data: 10× XL ready in {:.1} s", started.elapsed().as_secs_f64());
    } else {
        store.load_demo_xl(&mut |_, _, _| {}).await.expect("xl");
    }
    (store, target)
}

/// `KEYFALL_BENCH_SCALE`: 1 (XL, the default) or 10 (ten times XL's
/// accounts and settings: 1,000,000 accounts, 2,000,000 users, 2.5 million
/// settings, in database `keyfall_bench_xl10`; not for CI).
pub fn scale() -> u32 {
    match std::env::var("KEYFALL_BENCH_SCALE").as_deref() {
        Err(_) | Ok("") | Ok("1") => 1,
        Ok("10") => 10,
        Ok(other) => panic!("KEYFALL_BENCH_SCALE={other:?}: 1 (the default) or 10"),
    }
}

/// The XL script scaled ten times (accounts, settings), two users an
/// account: the same shapes, slugs one digit longer.
fn xl10_script() -> &'static str {
    let s = include_str!("../assets/demo_xl.sql")
        .replace("generate_series(1, 100000)", "generate_series(1, 1000000)")
        .replace("lpad(i::text, 6, '0')", "lpad(i::text, 7, '0')")
        .replace("generate_series(1, 1000000) AS n", "generate_series(1, 2000000) AS n")
        .replace("lpad((1 + (n - 1) / 10)::text, 6, '0')", "lpad((1 + (n - 1) / 2)::text, 7, '0')")
        .replace("'user1000000@xl-100000.example'", "'user2000000@xl-1000000.example'")
        .replace("'xl-100000'", "'xl-1000000'");
    Box::leak(s.into_boxed_str())
}

/// A user of the data set from a random number (any u64).
#[allow(dead_code)] // not every bench asks
pub fn xl_user(r: u64) -> String {
    if scale() == 10 {
        let n = r % 2_000_000 + 1;
        format!("user{n}@xl-{:07}.example", 1 + (n - 1) / 2)
    } else {
        let n = r % 1_000_000 + 1;
        format!("user{n}@xl-{:06}.example", 1 + (n - 1) / 10)
    }
}

/// The tenant in the middle of the data set.
#[allow(dead_code)]
pub fn xl_tenant() -> &'static str {
    if scale() == 10 { "xl-0500000" } else { "xl-050000" }
}

/// The Django app's schema made by Django's own `migrate`, the XL data set
/// written into its tables (`django_xl.sql`, skipped once loaded), then
/// keyfall attached: its schema migrated and the detected mapping installed.
async fn django_xl_store(target: &Target) -> Store {
    let started = Instant::now();
    // Creating the bench database is the bench's own doing (as `open_demo`
    // does for the demo tables); Django's migrate needs it to exist.
    let store = Store::connect_creating(target).await.expect("open the bench database");
    let python = django_python();
    let venv_ready = started.elapsed();
    kf_py(target, &python, &["migrate"]);
    let migrated = started.elapsed();

    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::raw_sql(include_str!("django_xl.sql")).execute(&mut *tx).await.expect("load django_xl.sql");
    tx.commit().await.expect("commit django_xl.sql");
    let loaded = started.elapsed();

    let found = mapping::detect(&store.catalog().await.expect("catalog"), None).expect("detect the Django tables");
    store.migrate().await.expect("migrate keyfall's schema");
    store.install_mapping(&found).await.expect("install the mapping");
    let store = store.with_mapping(&found);
    let attached = started.elapsed();
    println!(
        "django schema: venv {:.1} s, Django migrate {:.1} s, XL data {:.1} s, attach {:.1} s; settings {}, accounts {}, users {}",
        venv_ready.as_secs_f64(),
        (migrated - venv_ready).as_secs_f64(),
        (loaded - migrated).as_secs_f64(),
        (attached - loaded).as_secs_f64(),
        found.settings.table,
        found.accounts.table,
        found.users.table,
    );
    store
}

// ---------------------------------------------------------------------------
// The test app's Python. Duplicated on purpose from tests/it/django.rs
// (`ensure_venv`, `password`, `kf_raw`), which benches cannot import: the
// same venv (`<target>/django-venv`), the same requirements and marker file,
// the same lock, so the tests and the benches share one install; and the
// same libpq variables derived from the target. Keep the two in step.

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

/// The venv's python, with Django and psycopg installed (once per machine).
fn django_python() -> PathBuf {
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
    eprintln!("installing Django into {} (first run, ~30 s)", venv.display());
    if venv.exists() {
        std::fs::remove_dir_all(&venv).expect("remove the old django-venv");
    }
    let python3 = std::env::var_os("KEYFALL_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    run_or_panic(Command::new(&python3).arg("-m").arg("venv").arg(&venv), "python3 -m venv");
    run_or_panic(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet"])
            .args(REQUIREMENTS),
        "pip install",
    );
    std::fs::write(&marker, wanted).expect("write the django-venv marker");
    python
}

fn run_or_panic(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", cmd.get_program()));
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        panic!("{what} failed ({}):\n{}", out.status, lines[lines.len().saturating_sub(60)..].join("\n"));
    }
    out
}

/// The target's password, if any (sqlx has no getter; its URL carries it
/// percent-encoded).
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

/// `python tests/django/kf.py ARGS…` with `input` on stdin: its stdout.
#[allow(dead_code)] // used by the process bench only
pub fn kf_py_output(target: &Target, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut cmd = kf_py_command(target, &django_python(), args);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kf.py");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write kf.py's stdin");
    let out = child.wait_with_output().expect("kf.py");
    if !out.status.success() {
        panic!("kf.py {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `python tests/django/kf.py ARGS…` against the target's database.
fn kf_py(target: &Target, python: &Path, args: &[&str]) {
    let mut cmd = kf_py_command(target, python, args);
    run_or_panic(&mut cmd, &format!("kf.py {}", args.join(" ")));
}

fn kf_py_command(target: &Target, python: &Path, args: &[&str]) -> Command {
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
    let mut cmd = Command::new(python);
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

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cpu}, {cores} cores")
}
