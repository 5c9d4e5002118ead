//! `keyfall demo`: the seed's scenario, and at `--scale xl` the data set the
//! benchmarks run on.

use std::time::Instant;

use crate::store::Store;

use super::{CliResult, Exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// The seed's accounts, users and settings.
    Demo,
    /// Demo plus 100,000 accounts, 1,000,000 users, 250,000 settings.
    Xl,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How much data: demo (the seed's scenario) or xl (adds 100,000 accounts).
    #[arg(long, value_enum, default_value = "demo")]
    pub scale: Scale,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    let started = Instant::now();
    store.load_demo().await?;
    if args.scale == Scale::Xl {
        let mut progress = super::progress::Progress::new("keyfall demo --scale xl", "steps", false);
        store.load_demo_xl(&mut |i, n, what| progress.step(i, n, what)).await?;
        progress.done();
    }
    outln!(
        "demo data ({}) is in {} ({:.1} s); try: keyfall resolve --user paid2@paid.com --function generate_images",
        match args.scale {
            Scale::Demo => "demo",
            Scale::Xl => "demo + xl",
        },
        store.label(),
        started.elapsed().as_secs_f64()
    );
    Ok(Exit::Ok)
}
