//! Issue 23, point 3: the blast radius of a key over a year of history at
//! XL. The XL data set (`common.rs`), then a year of changes written into
//! the audit log (`history_year.sql`: ~1,000,000 rows over 365 days, a
//! leaked key planted in aws-admin's openai setting over two stretches and
//! in two tenants'), then a whole `keyfall key-history --fingerprint FP`
//! process timed (the release binary, local socket), as text and `--json`,
//! and the same call in process (`Store::key_history`).
//!
//! Run: `cargo bench --bench history` (see `common.rs` for the database).
//! Not a test: it prints figures and asserts nothing.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;

const KEYFALL: &str = env!("CARGO_BIN_EXE_keyfall");
const LEAKED: &str = "sk-bench-leaked-key-0000000000000000";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    let (store, target) = common::xl_store().await;
    println!("data: XL in {} (ready in {:.1} s)", store.label(), started.elapsed().as_secs_f64());
    let loaded: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM keyfall.audit_log WHERE action = 'bench_year')")
            .fetch_one(store.pool())
            .await
            .expect("read the log");
    if !loaded {
        let started = Instant::now();
        let mut tx = store.pool().begin().await.expect("begin");
        sqlx::raw_sql(include_str!("history_year.sql")).execute(&mut *tx).await.expect("history_year.sql");
        tx.commit().await.expect("commit the year");
        println!("a year of history written in {:.1} s", started.elapsed().as_secs_f64());
    }
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keyfall.audit_log").fetch_one(store.pool()).await.expect("count");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("machine: {}; audit rows: {rows}; load average: {}", common::machine(), load.trim());
    if std::env::var_os("KEYFALL_BENCH_LOAD_ONLY").is_some() {
        return;
    }
    let fp = keyfall::domain::secret::fingerprint(LEAKED);

    // In process: the one entry point.
    let mut inproc = Vec::new();
    let mut shape = (0, 0, 0);
    for _ in 0..3 {
        let started = Instant::now();
        let history = store.key_history(&fp).await.expect("key_history");
        inproc.push(started.elapsed());
        shape = (
            history.rows.len(),
            history.stretches.len(),
            history.stretches.iter().map(|s| s.intervals.len()).sum::<usize>(),
        );
    }
    inproc.sort();
    println!(
        "Store::key_history({fp}): {} rows, {} stretches, {} intervals; median {} · max {}",
        shape.0,
        shape.1,
        shape.2,
        ms(inproc[inproc.len() / 2]),
        ms(*inproc.last().expect("runs"))
    );

    // Whole processes, as an operator runs it.
    let url = target.options.to_url_lossy().to_string();
    for args in [&["key-history", "--fingerprint", &fp][..], &["key-history", "--fingerprint", &fp, "--json"][..]] {
        let mut walls = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let status = Command::new(KEYFALL)
                .arg("--database-url")
                .arg(&url)
                .args(args)
                .env_remove("DATABASE_URL")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run keyfall");
            walls.push(started.elapsed());
            assert!(status.success(), "keyfall {} failed: {status}", args.join(" "));
        }
        walls.sort();
        println!(
            "whole `keyfall {}`: median {} · max {}   target: a few seconds",
            args.join(" "),
            ms(walls[walls.len() / 2]),
            ms(*walls.last().expect("runs"))
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
