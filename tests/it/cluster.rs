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
        connect_timeout: None,
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
        connect_timeout: None,
    };
    let store = Store::open_demo(&target).await.unwrap().with_operator(Some("dev@igny8.com".into()));
    store.load_demo().await.unwrap();
    let operator = store.subject(Some("dev@igny8.com"), None).await.unwrap().user;
    let session = Session {
        database: "private".into(),
        label: None,
        color: None,
        access: Access { operator, read_only: None, forced: false },
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

/// Issue 9 §6: the private cluster holds every key, so another local user
/// must not get in — neither through the socket folder nor, should it be
/// opened, past authentication.
mod private {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    use keyfall::store::cluster::{self, PrivateCluster};
    use keyfall::store::connect;
    use sqlx::{ConnectOptions, Connection};

    async fn ensure(path: &Path) -> PrivateCluster {
        let p = path.to_path_buf();
        tokio::task::spawn_blocking(move || cluster::ensure(&p)).await.unwrap().expect("the private cluster")
    }

    fn throwaway(prefix: &str) -> (tempfile::TempDir, PathBuf) {
        let base = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").unwrap();
        // The unprivileged owner (when we are root) must reach the folder.
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = base.path().to_path_buf();
        (base, path)
    }

    fn passwd(name: &str) -> Option<(u32, u32)> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.first() == Some(&name)).then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
        })
    }

    /// A local account that is neither root nor the cluster's own.
    fn intruder(c: &PrivateCluster) -> (u32, u32) {
        let owner = std::fs::metadata(&c.data_dir).unwrap().uid();
        ["nobody", "daemon", "bin"]
            .into_iter()
            .filter_map(passwd)
            .find(|(uid, _)| *uid != 0 && *uid != owner)
            .expect("an unprivileged account other than the cluster's")
    }

    /// `psql` as `uid`: Ok(what the server answered) or Err(why it failed).
    fn psql_as(c: &PrivateCluster, (uid, gid): (u32, u32)) -> Result<String, String> {
        let psql = c.bin_dir.join("psql");
        let psql = if psql.is_file() { psql } else { PathBuf::from("psql") };
        let out = Command::new(psql)
            .args(["-X", "-w", "-At", "-p", &cluster::PORT.to_string(), "-U", cluster::SUPERUSER, "-d", "postgres"])
            .arg("-h")
            .arg(&c.socket_dir)
            .args(["-c", "SELECT current_user"])
            .current_dir("/")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/")
            .uid(uid)
            .gid(gid)
            .output()
            .expect("run psql");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if out.status.success() { Ok(stdout) } else { Err(stderr) }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o777
    }

    /// The socket folder is private, and behind it authentication admits
    /// only the cluster's user and root.
    fn assert_private(c: &PrivateCluster) {
        let owner = std::fs::metadata(&c.data_dir).unwrap().uid();
        if cluster::running_as_root() {
            let intruder = intruder(c);
            // The attack as it stands: another user, straight at the socket.
            let err = psql_as(c, intruder).expect_err("another local user must not get in");
            assert!(err.contains("Permission denied"), "refused at the socket folder: {err}");
            // Had the folder been opened, authentication still says no.
            let mode_was = mode(&c.socket_dir);
            std::fs::set_permissions(&c.socket_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let behind = psql_as(c, intruder);
            std::fs::set_permissions(&c.socket_dir, std::fs::Permissions::from_mode(mode_was)).unwrap();
            let err = behind.expect_err("another local user must not get past authentication");
            assert!(err.contains("authentication failed"), "refused by authentication: {err}");
            // The cluster's own user does get in.
            let owner_ids = (owner, std::fs::metadata(&c.data_dir).unwrap().gid());
            assert_eq!(psql_as(c, owner_ids).as_deref(), Ok(cluster::SUPERUSER), "its own user gets in");
        } else {
            eprintln!("not root: cannot try another OS user; checking the folder and pg_hba.conf only");
        }
        assert_eq!(mode(&c.socket_dir), 0o700, "the socket folder is private");
        assert_eq!(std::fs::metadata(&c.socket_dir).unwrap().uid(), owner, "and belongs to the cluster's user");
        let hba = std::fs::read_to_string(c.data_dir.join("pg_hba.conf")).unwrap();
        assert!(!hba.lines().any(|l| l.split_whitespace().any(|w| w == "trust")), "no trust: {hba}");
    }

    async fn keyfall_connects(c: &PrivateCluster) {
        let mut conn = connect::private_options(c).database("postgres").connect().await.expect("keyfall gets in");
        let who: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(&mut conn).await.unwrap();
        assert_eq!(who, cluster::SUPERUSER);
        conn.close().await.unwrap();
    }

    #[tokio::test]
    async fn another_local_user_cannot_get_in() {
        let (_base, path) = throwaway("keyfall-private-");
        let c = ensure(&path).await;
        assert!(c.created && !c.locked_down);
        keyfall_connects(&c).await;
        assert_private(&c);
        cluster::stop(&c).unwrap();
    }

    /// An older keyfall left the cluster trusting everyone on a world-open
    /// socket: the next run locks it down, dropping sessions opened meanwhile.
    #[tokio::test]
    async fn a_cluster_left_open_by_an_older_keyfall_is_locked_down() {
        let (_base, path) = throwaway("keyfall-open-");
        let c = ensure(&path).await;
        // What older keyfalls made: trust for all, socket folder open.
        std::fs::write(c.data_dir.join("pg_hba.conf"), "local all all trust\n").unwrap();
        std::fs::write(c.data_dir.join("pg_ident.conf"), "").unwrap();
        std::fs::set_permissions(&c.socket_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let reload = Command::new(c.bin_dir.join("pg_ctl"))
            .args(["reload", "-s", "-D"])
            .arg(&c.data_dir)
            .current_dir("/")
            .uid(std::fs::metadata(&c.data_dir).unwrap().uid())
            .gid(std::fs::metadata(&c.data_dir).unwrap().gid())
            .status()
            .unwrap();
        assert!(reload.success());
        if cluster::running_as_root() {
            // The hole is real: an intruder gets in (once the reload lands).
            let intruder = intruder(&c);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut attempt = psql_as(&c, intruder);
            while attempt.is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                attempt = psql_as(&c, intruder);
            }
            assert_eq!(attempt.as_deref(), Ok(cluster::SUPERUSER), "the simulated old cluster is open");
        }
        // A session opened while it was open…
        let mut lingering = connect::private_options(&c).database("postgres").connect().await.unwrap();

        let again = ensure(&path).await;
        assert_private(&again);
        assert!(again.locked_down && !again.created, "locked down in place, not re-created");
        // …does not survive the lock-down.
        assert!(sqlx::query("SELECT 1").execute(&mut lingering).await.is_err(), "old sessions are dropped");
        keyfall_connects(&again).await;

        let third = ensure(&path).await;
        assert!(!third.locked_down && !third.started, "nothing to do the next time");
        cluster::stop(&third).unwrap();
    }

    /// The tests' cluster (`Access::AnyRoleOnSocket`) lets the roles the
    /// tests create log in as themselves — and still nobody but its OS user
    /// and root reaches its socket; keyfall's own access, put back on the
    /// same folder, shuts those roles out again.
    #[tokio::test]
    async fn the_tests_cluster_admits_any_role_but_only_through_its_private_socket() {
        let (_base, path) = throwaway("keyfall-tests-");
        let p = path.clone();
        let c = tokio::task::spawn_blocking(move || cluster::ensure_with(&p, cluster::Access::AnyRoleOnSocket))
            .await
            .unwrap()
            .expect("the tests' cluster");
        let mut admin = connect::private_options(&c).database("postgres").connect().await.expect("keyfall gets in");
        sqlx::raw_sql("CREATE ROLE kf_any_role LOGIN").execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
        let role = connect::private_options(&c).username("kf_any_role").database("postgres");
        let mut conn = role.connect().await.expect("a role the tests made logs in as itself");
        let who: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(&mut conn).await.unwrap();
        assert_eq!(who, "kf_any_role");
        conn.close().await.unwrap();
        if cluster::running_as_root() {
            let err = psql_as(&c, intruder(&c)).expect_err("another local user must not get in");
            assert!(err.contains("Permission denied"), "refused at the socket folder: {err}");
        } else {
            eprintln!("not root: cannot try another OS user; checking the folder and pg_hba.conf only");
        }
        assert_eq!(mode(&c.socket_dir), 0o700, "the socket folder is private");
        let hba = std::fs::read_to_string(c.data_dir.join("pg_hba.conf")).unwrap();
        let rules: Vec<&str> =
            hba.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()).collect();
        assert!(
            rules.iter().all(|l| l.starts_with("local") || l.split_whitespace().last() == Some("reject")),
            "the socket only; TCP refused: {hba}"
        );

        let own = ensure(&path).await;
        assert!(own.locked_down, "keyfall's own access replaces the tests'");
        let err = role.connect().await.expect_err("under keyfall's own access the role is refused");
        assert!(err.to_string().contains("authentication failed"), "{err}");
        cluster::stop(&own).unwrap();
    }

    /// The stop command keyfall prints (and the README shows) works as written.
    #[tokio::test]
    async fn the_printed_stop_command_stops_it() {
        let (_base, path) = throwaway("keyfall-stop-");
        let c = ensure(&path).await;
        let command = c.stop_command();
        let out = Command::new("sh").arg("-c").arg(&command).current_dir(&path).output().unwrap();
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!c.data_dir.join("postmaster.pid").exists(), "stopped by: {command}");
    }
}
