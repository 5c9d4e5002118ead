//! DESIGN §10 measured from outside, as a user meets it: the real release
//! binary, a whole process per run, at XL (100,000 accounts, 1,000,000
//! users, 250,000 settings), over TCP to a server offering TLS (as Debian
//! ships PostgreSQL) and over the local socket; wall time and peak RSS per
//! run (GNU time's, when /usr/bin/time is there). Then again with both
//! cores kept busy.
//!
//! With `KEYFALL_BENCH_SCHEMA=django` the data lives in the Django test
//! app's own tables and the race runs too: the seed's way (Django ORM,
//! `get_model_config`, tests/django/kf.py `race`) against keyfall, per
//! call, per process and for the whole report.
//!
//! With `KEYFALL_BENCH_SCHEMA=both` (issue 19, point 8) it measures side by
//! side, in turn (A B A B …, the ratio taken pair by pair, so a machine
//! whose speed drifts still gives a fair ratio): the three previews on
//! Django's tables (A) against keyfall's demo tables (B) — a new aws-admin
//! key, aws-admin's image_generation provider, a chain change — and a whole
//! `keyfall resolve` process against a C libpq client that connects and
//! runs one indexed query (benches/c/one_query.c, built here with `cc` and
//! libpq), both over TCP with TLS.
//!
//! Run: `cargo bench --bench process` (see `common.rs` for the database;
//! `KEYFALL_BENCH_LOAD_ONLY=1` loads the data set and stops;
//! `KEYFALL_BENCH_TCP_URL` names the TCP server, default 127.0.0.1:5432 with
//! the same user and database). Not a test: it prints figures, asserts
//! nothing.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;

const KEYFALL: &str = env!("CARGO_BIN_EXE_keyfall");

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (store, target) = common::xl_store().await;
    if common::both_schemas() {
        let (_, django) = common::xl_store_of(true).await;
        if std::env::var_os("KEYFALL_BENCH_LOAD_ONLY").is_none() {
            side_by_side(&target, &django);
        }
        return;
    }
    if std::env::var_os("KEYFALL_BENCH_LOAD_ONLY").is_some() {
        return; // only load (or check) the data set
    }
    let django = std::env::var("KEYFALL_BENCH_SCHEMA").as_deref() == Ok("django");
    let socket = target.options.to_url_lossy().to_string();
    let tcp = std::env::var("KEYFALL_BENCH_TCP_URL").unwrap_or_else(|_| {
        format!(
            "postgres://{}@127.0.0.1:5432/{}?sslmode=prefer",
            target.options.get_username(),
            target.options.get_database().unwrap_or("keyfall")
        )
    });
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(store.pool()).await.unwrap_or_default();
    println!("machine: {}; data: XL in {} (server ssl={ssl}); binary: {KEYFALL}", common::machine(), store.label());
    // Who the seed's developer is, so writes preview as someone allowed.
    let who = ["--as", "dev@igny8.com"];

    let pairs = pairs(200_000);
    let one_user = &pairs[17].0;
    let resolve = ["resolve", "--user", one_user.as_str(), "--function", "generate_images", "--json"];
    section("whole processes, TCP + TLS (sslmode=prefer)");
    run(&tcp, &resolve, None, 60, "resolve --json", "target < 30 ms median");
    run(&tcp, &["can", "--user", "dev@igny8.com"], None, 30, "can --user", "");
    section("whole processes, local socket");
    run(&socket, &resolve, None, 60, "resolve --json", "target < 30 ms median");
    run(&socket, &["report", "--json"], None, 5, "report --json (every account × type)", "target < 1 s");
    run(&socket, &["lint", "--json"], None, 3, "lint --json (whole database)", "target < 100 MB RSS");
    run(&socket, &["lint", "--json", "--account", "aws-admin"], None, 10, "lint --account aws-admin", "in proportion");
    run(&socket, &["export"], None, 3, "export (whole database)", "target < 100 MB RSS");
    run(&socket, &["export", "--account", "aws-admin"], None, 10, "export --account aws-admin", "in proportion");
    run(
        &socket,
        &["audit", "--account", "aws-admin", "--type", "openai", "--json"],
        None,
        10,
        "audit --account aws-admin --type openai",
        "index scan",
    );
    let key = "sk-bench-rotated-0000000000000000\n";
    for (what, args) in [
        (
            "set --dry-run, aws-admin openai apiKey (every fallback)",
            ["set", "aws-admin", "openai", "apiKey", "--dry-run"],
        ),
        ("set --dry-run, a tenant's openai apiKey", ["set", common::xl_tenant(), "openai", "apiKey", "--dry-run"]),
    ] {
        let args: Vec<&str> = who.iter().copied().chain(args).collect();
        run(&socket, &args, Some(key), 5, what, "target < 1 s");
    }
    let args: Vec<&str> =
        who.iter().copied().chain(["chain", "set", "default-account", "default", "--dry-run"]).collect();
    run(&socket, &args, None, 3, "chain set --dry-run (aws-admin out: every account)", "");
    let export = std::env::temp_dir().join("keyfall-bench-import.json");
    std::fs::write(&export, one_setting_export(&socket)).expect("write the import file");
    let export = export.to_string_lossy().into_owned();
    let args: Vec<&str> = who.iter().copied().chain(["import", "--dry-run", export.as_str()]).collect();
    run(&socket, &args, None, 5, "import --dry-run of one setting (aws-admin image_generation)", "target < 1 s");
    batch(&socket, &pairs);

    section("busy machine: both cores kept busy by two spinning processes");
    let busy = Busy::start(2);
    run(&tcp, &resolve, None, 60, "resolve --json over TCP + TLS", "target < 30 ms median");
    run(&socket, &["report", "--json"], None, 3, "report --json", "target < 1 s");
    drop(busy);

    if django {
        race(&target, &pairs).await;
    }
}

fn section(name: &str) {
    println!("\n{name}");
}

/// Run `keyfall ARGS` `runs` times (after one warm-up); print the median,
/// the 90th percentile, the max wall time and the peak RSS.
fn run(url: &str, args: &[&str], stdin: Option<&str>, runs: usize, what: &str, target: &str) {
    let mut walls = Vec::new();
    let mut code = None;
    for i in 0..runs + 1 {
        let (wall, status) = spawn(url, args, stdin, false);
        if i > 0 {
            walls.push(wall);
        }
        code = Some(status);
    }
    walls.sort();
    println!(
        "  {what}: median {} · p90 {} · max {} · peak RSS {} · exit {}{}",
        ms(pct(&walls, 0.5)),
        ms(pct(&walls, 0.9)),
        ms(*walls.last().unwrap()),
        peak_rss(url, args, stdin),
        code.unwrap_or(-1),
        if target.is_empty() { String::new() } else { format!("   ({target})") }
    );
}

/// One whole process: wall time from spawn to reaped and its exit code.
/// Output goes to /dev/null, as to a pipe nobody reads slowly.
fn spawn(url: &str, args: &[&str], stdin: Option<&str>, timed: bool) -> (Duration, i32) {
    let home = std::env::temp_dir().join("keyfall-bench-home");
    std::fs::create_dir_all(&home).ok();
    let mut command = if timed {
        // GNU time forks keyfall from its own small process: the child's
        // peak RSS is then keyfall's, not this bench's (a child spawned from
        // here starts with this process's pages counted).
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%M", "-o"]).arg(rss_file()).arg(KEYFALL);
        c
    } else {
        Command::new(KEYFALL)
    };
    let started = Instant::now();
    let mut child = command
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env("HOME", &home)
        .env("XDG_STATE_HOME", &home)
        .env_remove("DATABASE_URL")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run keyfall");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).ok();
    }
    let status = child.wait().expect("wait for keyfall");
    (started.elapsed(), status.code().unwrap_or(-1))
}

fn rss_file() -> std::path::PathBuf {
    std::env::temp_dir().join("keyfall-bench-rss")
}

/// Peak RSS of one more run, through GNU time (`/usr/bin/time`), if there.
fn peak_rss(url: &str, args: &[&str], stdin: Option<&str>) -> String {
    if !std::path::Path::new("/usr/bin/time").exists() {
        return "n/a (no /usr/bin/time)".into();
    }
    spawn(url, args, stdin, true);
    match std::fs::read_to_string(rss_file()).ok().and_then(|t| t.lines().last()?.trim().parse::<f64>().ok()) {
        Some(kb) => format!("{:.1} MB", kb / 1024.0),
        None => "n/a".into(),
    }
}

/// `resolve --batch` over 200,000 pairs: answers a second, peak RSS.
fn batch(url: &str, pairs: &[(String, String)]) {
    let input: String = pairs.iter().map(|(u, f)| format!("{u},{f}\n")).collect();
    let mut runs: Vec<Duration> = (0..3).map(|_| spawn(url, &["resolve", "--batch"], Some(&input), false).0).collect();
    runs.sort();
    println!(
        "  resolve --batch, {} pairs: median of 3 {:.2} s = {:.0} answers a second (best {:.0}) · peak RSS {}   (target > 50,000 a second)",
        pairs.len(),
        runs[1].as_secs_f64(),
        pairs.len() as f64 / runs[1].as_secs_f64(),
        pairs.len() as f64 / runs[0].as_secs_f64(),
        peak_rss(url, &["resolve", "--batch"], Some(&input))
    );
}

/// Random XL users × functions (a fixed seed: every run asks the same).
fn pairs(n: usize) -> Vec<(String, String)> {
    let functions = ["auto_cluster", "generate_images", "generate_content", "generate_ideas", "generate_image_prompts"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (common::xl_user(seed), functions[i % functions.len()].to_string())
        })
        .collect()
}

/// An export file with aws-admin's image_generation setting fixed (the
/// seed's known-wrong config), for `import --dry-run`.
fn one_setting_export(url: &str) -> String {
    let out = Command::new(KEYFALL)
        .args(["--database-url", url, "export", "--account", "aws-admin"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("export");
    let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("export is JSON");
    // Keep only image_generation, with a provider: the fix lint proposes.
    if let Some(settings) = doc.get_mut("settings").and_then(|s| s.as_array_mut()) {
        settings.retain(|s| s["integration_type"] == "image_generation");
        for s in settings.iter_mut() {
            s["config"] = serde_json::json!({"provider": "openai", "model": "dall-e-3"});
        }
    }
    doc.to_string()
}

/// Processes that spin on every core until dropped.
struct Busy(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Busy {
    fn start(n: usize) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                })
            })
            .collect();
        Busy(stop, handles)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for h in self.1.drain(..) {
            h.join().ok();
        }
    }
}

/// keyfall against the seed's own way on the same tables (Django schema).
async fn race(target: &keyfall::store::Target, pairs: &[(String, String)]) {
    section("the race: the seed's way (Django ORM get_model_config) against keyfall, same tables");
    let sample: Vec<&(String, String)> = pairs.iter().take(2_000).collect();
    let input: String = sample.iter().map(|(u, f)| format!("{u},{f}\n")).collect();
    let out = common::kf_py_output(target, &["race"], &input);
    println!("  Django, in one Python process (user lookup + get_model_config per call): {}", out.trim());
    let (wall, _) = spawn(target.options.to_url_lossy().as_str(), &["resolve", "--batch"], Some(&input), false);
    println!("  keyfall resolve --batch, the same {} pairs: {} in all, process included", sample.len(), ms(wall));
    let mut walls = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        common::kf_py_output(target, &["get", "--user", &sample[0].0, "--function", &sample[0].1], "");
        walls.push(started.elapsed());
    }
    walls.sort();
    println!("  Django, one whole process (kf.py get): median {}", ms(pct(&walls, 0.5)));
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Issue 19 point 8: the previews on Django's tables against the demo's,
/// and `resolve` against a C client, each pair run in turn.
fn side_by_side(demo: &keyfall::store::Target, django: &keyfall::store::Target) {
    let (demo_url, django_url) = (demo.options.to_url_lossy().to_string(), django.options.to_url_lossy().to_string());
    println!("machine: {}; binary: {KEYFALL}", common::machine());
    section("previews, whole processes over the local socket: Django's tables (A) against the demo's (B), in turn");
    let key = "sk-bench-rotated-0000000000000000\n";
    let previews: [(&str, Vec<&str>, Option<&str>); 3] = [
        (
            "set --dry-run, a new aws-admin openai apiKey",
            vec!["--as", "dev@igny8.com", "set", "aws-admin", "openai", "apiKey", "--dry-run"],
            Some(key),
        ),
        (
            "set --dry-run, aws-admin image_generation provider openai",
            vec!["--as", "dev@igny8.com", "set", "aws-admin", "image_generation", "provider", "openai", "--dry-run"],
            None,
        ),
        (
            "chain set --dry-run default-account default",
            vec!["--as", "dev@igny8.com", "chain", "set", "default-account", "default", "--dry-run"],
            None,
        ),
    ];
    for (what, args, stdin) in &previews {
        paired(what, 7, || spawn(&django_url, args, *stdin, false), || spawn(&demo_url, args, *stdin, false));
    }

    section(
        "a whole `keyfall resolve --json` (A) against a C libpq client, connect + one indexed query (B), TCP + TLS",
    );
    let Some(client) = c_client() else {
        println!("  n/a: no C compiler or no libpq headers (cc benches/c/one_query.c -lpq failed)");
        return;
    };
    for (name, target) in [("demo tables", demo), ("Django's tables", django)] {
        let o = &target.options;
        let db = o.get_database().unwrap_or("keyfall");
        let tcp = std::env::var("KEYFALL_BENCH_TCP_URL")
            .unwrap_or_else(|_| format!("postgres://{}@127.0.0.1:5432/{db}?sslmode=require", o.get_username()));
        let conninfo = format!("host=127.0.0.1 port=5432 dbname={db} user={} sslmode=require", o.get_username());
        let user = common::xl_user(0x9e37_79b9);
        let resolve = ["resolve", "--user", user.as_str(), "--function", "generate_images", "--json"];
        paired(
            &format!("{name}: resolve against the C client"),
            40,
            || spawn(&tcp, &resolve, None, false),
            || {
                let started = Instant::now();
                let status = Command::new(&client)
                    .args([conninfo.as_str(), user.as_str()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("run the C client");
                (started.elapsed(), status.code().unwrap_or(-1))
            },
        );
    }
}

/// Run `a` and `b` in turn `runs` times each (after one warm-up of each):
/// their medians and the median of the pairs' ratios a/b.
fn paired(what: &str, runs: usize, mut a: impl FnMut() -> (Duration, i32), mut b: impl FnMut() -> (Duration, i32)) {
    a();
    b();
    let (mut walls_a, mut walls_b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut codes = (0, 0);
    for _ in 0..runs {
        let (wa, ca) = a();
        let (wb, cb) = b();
        codes = (ca, cb);
        ratios.push(wa.as_secs_f64() / wb.as_secs_f64());
        walls_a.push(wa);
        walls_b.push(wb);
    }
    walls_a.sort();
    walls_b.sort();
    ratios.sort_by(f64::total_cmp);
    println!(
        "  {what}: A median {} (min {}) · B median {} (min {}) · A/B median of pairs {:.2} (range {:.2}–{:.2}) · exit {}/{}",
        ms(pct(&walls_a, 0.5)),
        ms(walls_a[0]),
        ms(pct(&walls_b, 0.5)),
        ms(walls_b[0]),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
        codes.0,
        codes.1
    );
}

/// benches/c/one_query.c built with the system's `cc` and libpq (the
/// headers where `pg_config --includedir` says), once per run.
fn c_client() -> Option<std::path::PathBuf> {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/c/one_query.c");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("keyfall-bench-one-query");
    let include = Command::new("pg_config")
        .arg("--includedir")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "/usr/include/postgresql".into());
    let built = Command::new("cc")
        .args(["-O2", "-I", include.as_str(), "-o"])
        .arg(&out)
        .arg(&source)
        .arg("-lpq")
        .status()
        .ok()?;
    built.success().then_some(out)
}
