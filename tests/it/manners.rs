//! Issue 20: psql's and gh's manners. A refused connection fails at once
//! naming where; the connect timeout is only for a host that does not
//! answer; a password is asked at a terminal (or the error says what to
//! set); a mistyped name gets "did you mean"; a plain value may be typed
//! after `set`, a key may not.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::{keyfall, keyfall_with};
use crate::pty::common;
use crate::support::TestDb;

fn one_line(stderr: &str) {
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
}

#[tokio::test]
async fn a_refused_port_fails_at_once_naming_host_and_port() {
    let started = Instant::now();
    let run = keyfall_with(&["--database-url", "postgres://127.0.0.1:1/keyfall", "report"], None, &[]);
    let took = started.elapsed();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(took < Duration::from_secs(3), "refused is said at once, not after the timeout: {took:?}");
    assert!(run.stderr.contains("127.0.0.1 port 1") && run.stderr.contains("connection refused"), "{}", run.stderr);
    one_line(&run.stderr);
}

#[tokio::test]
async fn a_missing_socket_fails_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://nobody@localhost/keyfall?host={}", dir.path().display());
    let started = Instant::now();
    let run = keyfall_with(&["--database-url", &url, "report"], None, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let socket = dir.path().join(".s.PGSQL.5432");
    assert!(
        run.stderr.contains(&socket.display().to_string()) && run.stderr.contains("no such socket"),
        "{}",
        run.stderr
    );
    one_line(&run.stderr);
}

/// A server that accepts the connection and never says a word: the connect
/// timeout (here 2 s from the connection string) is what ends the wait.
#[tokio::test]
async fn a_server_that_never_answers_takes_the_connect_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection, answering nothing.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("postgres://nobody@127.0.0.1:{port}/keyfall?connect_timeout=2&sslmode=disable");
    let started = Instant::now();
    let run = tokio::task::spawn_blocking(move || keyfall_with(&["--database-url", &url, "report"], None, &[]))
        .await
        .unwrap();
    let took = started.elapsed();
    holder.abort();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(8), "the 2 s timeout: {took:?}");
    assert!(
        run.stderr.contains(&format!("no answer from 127.0.0.1 port {port} within 2 s")),
        "names where and how long: {}",
        run.stderr
    );
    one_line(&run.stderr);
}

/// The tests' private cluster with one role that must give a password
/// (scram over its socket); the machine's server and its pg_hba.conf are
/// left alone.
mod password {
    use super::*;
    use keyfall::store::cluster::{self, PrivateCluster};
    use keyfall::store::connect;
    use sqlx::{ConnectOptions, Connection};

    const ROLE: &str = "kf_pw_role";
    const PASSWORD: &str = "typed-at-the-prompt-91";

    async fn cluster_demanding_a_password() -> (tempfile::TempDir, PrivateCluster) {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::Builder::new().prefix("keyfall-manners-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = base.path().to_path_buf();
        let c = tokio::task::spawn_blocking(move || cluster::ensure_with(&p, cluster::Access::AnyRoleOnSocket))
            .await
            .unwrap()
            .expect("the tests' cluster");
        let mut admin = connect::private_options(&c).database("postgres").connect().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        let hba_path = c.data_dir.join("pg_hba.conf");
        let hba = std::fs::read_to_string(&hba_path).unwrap();
        std::fs::write(&hba_path, format!("local all {ROLE} scram-sha-256\n{hba}")).unwrap();
        sqlx::query("SELECT pg_reload_conf()").execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
        (base, c)
    }

    fn url(c: &PrivateCluster) -> String {
        format!("postgres://{ROLE}@localhost/postgres?host={}&port={}", c.socket_dir.display(), cluster::PORT)
    }

    #[tokio::test]
    async fn without_a_terminal_it_says_whom_where_and_what_to_set_and_pgpass_works() {
        let (_base, c) = cluster_demanding_a_password().await;
        let url = url(&c);
        let home = tempfile::tempdir().unwrap();
        let nopass = home.path().join("none");
        let nopass = nopass.to_str().unwrap();
        let run = keyfall_with(&["--database-url", &url, "report"], None, &[("PGPASSFILE", nopass)]);
        assert_eq!(run.code, 4, "{}", run.stderr);
        for part in [ROLE, "PGPASSWORD", ".pgpass", &c.socket_dir.display().to_string()] {
            assert!(run.stderr.contains(part), "names {part}: {}", run.stderr);
        }
        one_line(&run.stderr);

        // A .pgpass line (PGPASSFILE, mode 0600) is used, as libpq uses it:
        // past authentication, keyfall finds no keyfall objects there.
        use std::os::unix::fs::PermissionsExt;
        let pgpass = home.path().join("pgpass");
        std::fs::write(&pgpass, format!("*:*:*:{ROLE}:{PASSWORD}\n")).unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let run = keyfall_with(&["--database-url", &url, "report"], None, &[("PGPASSFILE", pgpass.to_str().unwrap())]);
        assert!(!run.stderr.contains("password"), "the .pgpass password was used: {}", run.stderr);
        assert_eq!(run.code, 2, "connected; no keyfall objects: {}", run.stderr);

        // PGPASSWORD likewise.
        let run = keyfall_with(
            &["--database-url", &url, "report"],
            None,
            &[("PGPASSFILE", nopass), ("PGPASSWORD", PASSWORD)],
        );
        assert_eq!(run.code, 2, "{}", run.stderr);
        cluster::stop(&c).unwrap();
    }

    #[tokio::test]
    async fn on_a_terminal_it_asks_without_echo_and_connects() {
        let (_base, c) = cluster_demanding_a_password().await;
        let home = tempfile::tempdir().unwrap();
        let mut pty = common::Pty::open(24, 200);
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyfall"));
        command
            .args(["--database-url", &url(&c), "report"])
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env("PGPASSFILE", home.path().join("none"))
            .env_remove("PGPASSWORD")
            .env_remove("DATABASE_URL");
        let mut child = pty.spawn(command);
        pty.wait_for(Duration::from_secs(30), |s| s.contains(&format!("Password for user {ROLE}:")));
        // The prompt is written before the echo is turned off: type only
        // once the terminal no longer echoes (a person is slower than that).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pty.local_modes() & libc::ECHO != 0 {
            assert!(std::time::Instant::now() < deadline, "the prompt never turned the echo off");
            std::thread::sleep(Duration::from_millis(5));
        }
        pty.send(format!("{PASSWORD}\r").as_bytes());
        let status = pty.wait_exit(&mut child, Duration::from_secs(30));
        let screen = pty.screen();
        assert!(!screen.contains(PASSWORD), "the password is not echoed: {screen}");
        assert!(!screen.contains("authentication failed"), "{screen}");
        assert_eq!(status.code(), Some(2), "connected with the typed password; no keyfall objects: {screen}");
        cluster::stop(&c).unwrap();
    }
}

#[tokio::test]
async fn did_you_mean_for_accounts_users_functions_types_and_fields() {
    let db = TestDb::demo().await;
    let run = keyfall(&db, &["get", "aws-admn", "openai"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(r#"unknown account "aws-admn" (did you mean aws-admin?)"#), "{}", run.stderr);
    one_line(&run.stderr);

    // Nothing plausible: no suggestion.
    let run = keyfall(&db, &["get", "zzzzzzzz", "openai"], None);
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);

    let run = keyfall(&db, &["resolve", "--user", "paid2@paid.co", "--function", "auto_cluster"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("did you mean paid2@paid.com"), "{}", run.stderr);

    let run = keyfall(&db, &["resolve", "--user", "paid2@paid.com", "--function", "auto_clustr"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("did you mean auto_cluster"), "{}", run.stderr);

    let run = keyfall(&db, &["get", "aws-admin", "opnai"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("did you mean openai"), "{}", run.stderr);

    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "modle", "gpt-4o"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(r#"unknown field "modle" for openai (did you mean model?)"#), "{}", run.stderr);
}

#[tokio::test]
async fn a_slug_in_another_case_is_the_account_when_unambiguous() {
    let db = TestDb::demo().await;
    let run = keyfall(&db, &["get", "AWS-Admin", "openai", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(j["account"], "aws-admin");

    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "AWS-ADMIN", "openai", "model", "gpt-4.1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("aws-admin openai model = gpt-4.1"), "{}", run.stdout);

    // Two accounts equal but for case: neither is guessed.
    let mut raw = db.raw().await;
    // (The demo's slugs are lowercase by a CHECK; an app's need not be.)
    sqlx::raw_sql(
        "ALTER TABLE public.accounts DROP CONSTRAINT accounts_slug_check;
         INSERT INTO public.accounts (slug, name) VALUES ('Aws-Admin', 'twin')",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let run = keyfall(&db, &["get", "AWS-ADMIN", "openai"], None);
    assert_eq!(run.code, 2, "ambiguous: {}", run.stderr);
    assert!(run.stderr.contains("unknown account"), "{}", run.stderr);
    // Exact case still finds each.
    assert_eq!(keyfall(&db, &["get", "Aws-Admin", "openai"], None).code, 0);
}

#[tokio::test]
async fn set_takes_a_plain_value_from_argv_and_refuses_a_key_there_without_echoing_it() {
    let db = TestDb::demo().await;
    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "model", "gpt-4o"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stored = db.store.setting("aws-admin", "openai").await.unwrap().setting.unwrap();
    assert_eq!(stored.config["model"], "gpt-4o");

    let key = "sk-proj-argvcanary0123456789abcdefABCDEF";
    // In a secret field.
    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "apiKey", key], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("shell history") && run.stderr.contains("stdin"), "{}", run.stderr);
    assert!(!run.stderr.contains("argvcanary") && !run.stdout.contains("argvcanary"), "never echoed");
    one_line(&run.stderr);
    // Key-shaped, in a plain field.
    let run = keyfall(&db, &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "model", key], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("shell history") && run.stderr.contains("apiKey"), "{}", run.stderr);
    assert!(!run.stderr.contains("argvcanary"), "never echoed: {}", run.stderr);
    let after = db.store.setting("aws-admin", "openai").await.unwrap().setting.unwrap();
    assert_eq!(after.version, stored.version, "nothing written");
    assert_ne!(after.config["apiKey"], key);

    let run =
        keyfall(&db, &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "model", "gpt-4o", "--unset"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
}
