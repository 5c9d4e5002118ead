//! What the benchmarks share: the XL database, loaded once.
//!
//! `KEYFALL_BENCH_SCHEMA` picks the tables the XL data set lives in:
//! unset (or `demo`), keyfall's own demo tables in database
//! `keyfall_bench_xl`; `django`, the tables Django makes for the test app in
//! `tests/django` (igny8_account, igny8_user, igny8_integration_settings) in
//! database `keyfall_bench_xl_django`, with keyfall attached to them as
//! `keyfall attach` would.

use std::time::Instant;

use keyfall::store::{Store, Target, connect, mapping};

/// `KEYFALL_BENCH_URL` (its database is used as given, whatever the
/// schema), else the server keyfall would find, database `keyfall_bench_xl`
/// (or `keyfall_bench_xl_django`); the XL data set is loaded the first time
/// (~20 s; with Django, the venv and Django's migrate first as well).
pub async fn xl_store() -> (Store, Target) {
    let django = match std::env::var("KEYFALL_BENCH_SCHEMA").as_deref() {
        Err(_) | Ok("") | Ok("demo") | Ok("both") => false,
        Ok("django") => true,
        Ok(other) => panic!("KEYFALL_BENCH_SCHEMA={other:?}: `demo` (the default), `django` or `both`"),
    };
    xl_store_of(django).await
}

/// `KEYFALL_BENCH_SCHEMA=both`: the process bench measures the two data
/// sets side by side (keyfall's demo tables, then Django's).
#[allow(dead_code)] // the process bench only
pub fn both_schemas() -> bool {
    std::env::var("KEYFALL_BENCH_SCHEMA").as_deref() == Ok("both")
}

/// The XL data set in keyfall's demo tables (`django` false) or in
/// Django's (true), loaded the first time. `KEYFALL_BENCH_URL` names the
/// demo tables' database; `KEYFALL_BENCH_DJANGO_URL` Django's, when both
/// are measured.
pub async fn xl_store_of(django: bool) -> (Store, Target) {
    let given = if django && both_schemas() { "KEYFALL_BENCH_DJANGO_URL" } else { "KEYFALL_BENCH_URL" };
    let target = match std::env::var(given) {
        Ok(url) => connect::parse_target(&url).expect(given),
        Err(_) => {
            let url = std::env::var("DATABASE_URL").ok();
            connect::discover(url.as_deref(), &keyfall::config::data_dir())
                .await
                .expect("a PostgreSQL server")
                .with_database(if django { "keyfall_bench_xl_django" } else { "keyfall_bench_xl" })
        }
    };
    if django {
        purge_pre_release(&target).await;
        return (django_xl_store(&target).await, target);
    }
    let target = if scale() == 10 && std::env::var_os("KEYFALL_BENCH_URL").is_none() {
        target.with_database("keyfall_bench_xl10")
    } else {
        target
    };
    purge_pre_release(&target).await;
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

/// A bench database made by a pre-release keyfall (migrations 1–15, before
/// 0.1.0's baseline) is not migrated in place: keyfall's schema there is
/// purged, and the bench attaches again below; the data set (the app's
/// tables) stays loaded.
async fn purge_pre_release(target: &Target) {
    let Ok(store) = Store::connect(target).await else { return };
    if let Ok(keyfall::store::Installed::PreRelease { last }) = store.installed().await {
        println!("{}: keyfall schema of a pre-release (migrations 1–{last}): purged, attached again", target.label());
        store.purge().await.expect("purge the pre-release keyfall schema");
    }
    store.close().await;
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
    django_py::python();
    let venv_ready = started.elapsed();
    django_py::kf_raw(target, &["migrate"]);
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
// The test app's Python: the same venv and kf.py runner as the tests'.

#[path = "../tests/common/child.rs"]
#[allow(dead_code)] // used by the process bench only
mod child;
#[path = "../tests/common/django_py.rs"]
#[allow(dead_code)] // the benches use part of it
mod django_py;

/// `python tests/django/kf.py ARGS…` with `input` on stdin: its stdout.
#[allow(dead_code)] // used by the process bench only
pub fn kf_py_output(target: &Target, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = django_py::kf_command(target, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kf.py");
    // Fed from a thread, so a kf.py answering while it reads cannot block
    // on a full pipe; a kf.py that hangs fails the bench after ten minutes.
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child::output_within(child, std::time::Duration::from_secs(600));
    feeder.join().expect("the stdin feeder").expect("write kf.py's stdin");
    if !out.status.success() {
        panic!("kf.py {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
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
