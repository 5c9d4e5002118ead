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
    let store = Store::open_demo(&target).await.expect("create the database and migrate");
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

/// DESIGN §11: losing the database mid-session keeps the console up, says
/// so, and keeps unsaved edits, which save once the database is back.
#[tokio::test]
async fn a_lost_database_keeps_the_edit_and_the_save_succeeds_afterwards() {
    use keyfall::app::keymap::Keymap;
    use keyfall::app::{Access, Model, Msg, Session, update};

    use crate::support::drive;

    let base = tempfile::Builder::new().prefix("keyfall-restart-").tempdir_in("/tmp").unwrap();
    let path = base.path().to_path_buf();
    if cluster::running_as_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ensure = |p: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || cluster::ensure(&p)).await.unwrap().unwrap()
    };
    let running = ensure(path.clone()).await;
    let target = Target {
        options: connect::private_options(&running).database("keyfall"),
        source: keyfall::store::Source::Private(running.clone()),
    };
    let store = Store::open_demo(&target).await.unwrap();
    store.load_demo().await.unwrap();
    let operator = store.subject(Some("dev@igny8.com"), None).await.unwrap().user;
    let session = Session {
        database: "private".into(),
        label: None,
        color: None,
        access: Access { operator, read_only: None },
        no_color: true,
    };
    let mut model = Model::new(session, Keymap::default_keys(), chrono::Utc::now());
    let cmds = model.start();
    drive(&store, &mut model, cmds).await;
    // Open aws-admin's OpenAI setting and change the model.
    for key in ["e", "tab"].into_iter().chain(["backspace"; 12]) {
        update(&mut model, Msg::Key(key.into()));
    }
    update(&mut model, Msg::Paste("gpt-4.1".into()));

    cluster::stop(&running).unwrap();
    let cmds = update(&mut model, Msg::Key("ctrl-s".into()));
    drive(&store, &mut model, cmds).await;
    let Some(keyfall::app::Overlay::Edit(ed)) = &model.overlay else { panic!("the editor must stay open") };
    assert!(matches!(ed.stage, keyfall::app::editor::Stage::Editing));
    assert!(ed.message.as_deref().unwrap_or_default().starts_with("not saved"), "{:?}", ed.message);
    assert_eq!(ed.fields[1].text(), "gpt-4.1", "the edit is kept");

    ensure(path.clone()).await;
    // The pool may hand out a connection that died with the server once;
    // pressing save again is what an operator would do.
    let mut saved = false;
    for _ in 0..4 {
        let cmds = update(&mut model, Msg::Key("ctrl-s".into()));
        drive(&store, &mut model, cmds).await;
        let cmds = update(&mut model, Msg::Key("enter".into()));
        drive(&store, &mut model, cmds).await;
        if model.overlay.is_none() {
            saved = true;
            break;
        }
    }
    assert!(saved, "saved once the database was back");
    let setting = store.setting("aws-admin", "openai").await.unwrap().setting.unwrap();
    assert_eq!(setting.config["model"], "gpt-4.1");
    store.close().await;
    cluster::stop(&running).unwrap();
}
