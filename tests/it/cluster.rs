//! The private-cluster path for real: a machine with PostgreSQL installed
//! but not running. A throwaway cluster is created from the installed
//! binaries, migrated, used and stopped again.

use keyfall::store::cluster;
use keyfall::store::{Store, Target, connect};

#[tokio::test]
async fn private_cluster_starts_from_scratch_and_is_reused() {
    if cluster::find_bin_dir().is_none() {
        panic!("PostgreSQL binaries are needed for this test (install postgresql)");
    }
    let base = tempfile::Builder::new().prefix("keyfall-cluster-").tempdir_in("/tmp").unwrap();
    let path = base.path().to_path_buf();
    if cluster::running_as_root() {
        // The unprivileged owner must be able to reach the folder.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let first = tokio::task::spawn_blocking({
        let p = path.clone();
        move || cluster::ensure(&p)
    })
    .await
    .unwrap()
    .expect("create and start the private cluster");
    assert!(first.created && first.started);

    let target = Target {
        options: connect::private_options(&first).database("keyfall"),
        source: keyfall::store::Source::Private(first.clone()),
    };
    let store = Store::open(&target).await.expect("create the database and migrate");
    store.load_demo().await.unwrap();
    let data = store.subject(Some("paid2@paid.com"), Some("auto_cluster")).await.unwrap();
    assert!(data.user.is_some());
    store.close().await;

    let second = tokio::task::spawn_blocking({
        let p = path.clone();
        move || cluster::ensure(&p)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!second.created && !second.started, "reused, not re-created");

    cluster::stop(&second).expect("stop");
    let third = tokio::task::spawn_blocking(move || cluster::ensure(&path)).await.unwrap().unwrap();
    assert!(!third.created && third.started, "a stopped cluster is started again");
    cluster::stop(&third).expect("stop");
}
