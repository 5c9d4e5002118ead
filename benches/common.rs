//! What the benchmarks share: the XL database, loaded once.

use keyfall::store::{Source, Store, Target, connect};

/// `KEYFALL_BENCH_URL`, else the server keyfall would find, database
/// `keyfall_bench_xl`; the XL data set is loaded the first time (~20 s).
pub async fn xl_store() -> (Store, Target) {
    let target = match std::env::var("KEYFALL_BENCH_URL") {
        Ok(url) => Target { options: connect::parse_url(&url).expect("KEYFALL_BENCH_URL"), source: Source::Configured },
        Err(_) => {
            let url = std::env::var("DATABASE_URL").ok();
            connect::discover(url.as_deref(), &keyfall::config::data_dir())
                .await
                .expect("a PostgreSQL server")
                .with_database("keyfall_bench_xl")
        }
    };
    let store = Store::open_demo(&target).await.expect("open the bench database");
    store.load_demo().await.expect("demo");
    store.load_demo_xl().await.expect("xl");
    (store, target)
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
