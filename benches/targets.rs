//! DESIGN §10 targets for the foundation, measured against PostgreSQL at XL
//! (100,000 accounts, 1,000,000 users, 250,000 settings):
//! - one resolve, both hops, from query to pure verdict: p50 and p99;
//! - the fallback report, every account × type, set-based.
//!
//! Run: `cargo bench --bench targets` (see `common.rs` for the database).
//! Not a test: it prints figures and asserts nothing.

mod common;

use std::time::{Duration, Instant};

use keyfall::domain::resolve::resolve;
use keyfall::store::Store;

const RESOLVES: usize = 20_000;
const REPORTS: usize = 7;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let load = Instant::now();
    let (store, _) = common::xl_store().await;
    println!("data: XL in {} (ready in {:.1} s)", store.label(), load.elapsed().as_secs_f64());
    machine(&store).await;

    // One resolve: the single-round-trip gather plus the pure walk.
    let functions = ["auto_cluster", "generate_images", "generate_content"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut samples = Vec::with_capacity(RESOLVES);
    for i in 0..RESOLVES + 1_000 {
        let email = common::xl_user(next());
        let function = functions[i % functions.len()];
        let started = Instant::now();
        let data = store.subject(Some(&email), Some(function)).await.expect("subject");
        let r = resolve(&data.snapshot, data.user.as_ref().expect("user"), data.function.as_ref().expect("function"));
        let elapsed = started.elapsed();
        std::hint::black_box(r);
        if i >= 1_000 {
            samples.push(elapsed); // the first 1,000 warm the caches
        }
    }
    samples.sort();
    println!(
        "resolve (both hops, one round trip): n={RESOLVES} p50={} p99={} max={}   target p50<0.25 ms, p99<1 ms",
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap())
    );

    // The floor: one indexed single-row query through the same pool and
    // driver (what any resolve costs before it does anything).
    let mut floor = Vec::with_capacity(RESOLVES);
    for i in 0..RESOLVES + 1_000 {
        let started = Instant::now();
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1")
            .bind((i % 90_000) as i64 + 1)
            .fetch_optional(store.pool())
            .await
            .expect("floor query");
        let elapsed = started.elapsed();
        std::hint::black_box(id);
        if i >= 1_000 {
            floor.push(elapsed);
        }
    }
    floor.sort();
    println!(
        "floor (one indexed row through sqlx, same pool): p50={} p99={}",
        ms(percentile(&floor, 0.50)),
        ms(percentile(&floor, 0.99))
    );

    impact(&store).await;

    let mut runs = Vec::new();
    let mut rows = 0;
    for _ in 0..REPORTS {
        let started = Instant::now();
        rows = store.report().await.expect("report").len();
        runs.push(started.elapsed());
    }
    runs.sort();
    println!(
        "report (every account × type, {rows} rows): median={} min={} max={}   target <1 s",
        ms(percentile(&runs, 0.5)),
        ms(runs[0]),
        ms(*runs.last().unwrap())
    );
}

/// The impact preview of one edit (DESIGN §10: under 1 s at XL).
async fn impact(store: &Store) {
    use keyfall::domain::change::Proposal;
    // The preview writes as the operator (then rolls back) and the database
    // checks their right: preview as the seed's developer, as the tests do
    // (the bench's login is a database superuser, so it may act as anyone).
    let store = &store.clone().with_operator(Some("dev@igny8.com".into()));
    let aws = store.account("aws-admin").await.expect("query").expect("aws-admin");
    let tenant = store.account(common::xl_tenant()).await.expect("query").expect("xl tenant");
    let cases = [
        (
            "tenant's own openai key",
            Proposal::Setting {
                account_id: tenant.id,
                integration_type: "openai".into(),
                config: serde_json::json!({"apiKey": "sk-bench-000000000000"}),
                is_active: true,
            },
        ),
        (
            "aws-admin openai key (every account)",
            Proposal::Setting {
                account_id: aws.id,
                integration_type: "openai".into(),
                config: serde_json::json!({"apiKey": "sk-bench-000000000000", "model": "gpt-4o"}),
                is_active: true,
            },
        ),
        (
            "aws-admin image_generation fix",
            Proposal::Setting {
                account_id: aws.id,
                integration_type: "image_generation".into(),
                config: serde_json::json!({"provider": "openai", "model": "dall-e-3"}),
                is_active: true,
            },
        ),
        ("chain without aws-admin (all types)", Proposal::Chain(vec!["default-account".into(), "default".into()])),
    ];
    for (name, proposal) in cases {
        let mut runs = Vec::new();
        let mut groups = 0;
        for _ in 0..5 {
            let started = Instant::now();
            groups = store.impact(&proposal).await.expect("impact").len();
            runs.push(started.elapsed());
        }
        runs.sort();
        println!(
            "impact preview, {name}: median={} max={} ({groups} groups)   target <1 s",
            ms(percentile(&runs, 0.5)),
            ms(*runs.last().unwrap())
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn machine(store: &Store) {
    let version: String =
        sqlx::query_scalar("SELECT split_part(version(), ' on ', 1)").fetch_one(store.pool()).await.unwrap_or_default();
    println!("machine: {}; {version}", common::machine());
}
