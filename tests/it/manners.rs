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

/// keyfall in a pseudo-terminal (stdout a terminal) on `db`; the raw bytes
/// it wrote and its exit status.
fn on_a_terminal(db: &TestDb, args: &[&str], envs: &[(&str, &str)]) -> (Vec<u8>, std::process::ExitStatus) {
    let home = tempfile::tempdir().unwrap();
    let mut pty = common::Pty::open(40, 200);
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyfall"));
    command
        .args(["--database-url", &db.url()])
        .args(args)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .envs(envs.iter().copied());
    let mut child = pty.spawn(command);
    let status = pty.wait_exit(&mut child, Duration::from_secs(30));
    (pty.output.clone(), status)
}

#[tokio::test]
async fn colour_on_a_terminal_none_in_a_pipe_or_under_no_color() {
    let db = TestDb::demo().await;
    let args = ["resolve", "--user", "paid2@paid.com", "--function", "auto_cluster"];
    let esc = |bytes: &[u8]| bytes.windows(2).any(|w| w == b"\x1b[");
    // A terminal: verdicts and masks coloured.
    let (out, status) = on_a_terminal(&db, &args, &[]);
    assert_eq!(status.code(), Some(0));
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("\x1b[1;32mANSWER\x1b[0m"), "ANSWER in green: {text:?}");
    assert!(text.contains("\x1b[2m••••••••3fA9\x1b[0m"), "the mask dimmed: {text:?}");
    // NO_COLOR on the same terminal: none; --color always wins over it.
    let (out, _) = on_a_terminal(&db, &args, &[("NO_COLOR", "1")]);
    assert!(!esc(&out), "NO_COLOR: {:?}", String::from_utf8_lossy(&out));
    let always: Vec<&str> = ["--color", "always"].into_iter().chain(args).collect();
    let (out, _) = on_a_terminal(&db, &always, &[("NO_COLOR", "1")]);
    assert!(esc(&out), "--color always over NO_COLOR");
    let never: Vec<&str> = ["--color", "never"].into_iter().chain(args).collect();
    let (out, _) = on_a_terminal(&db, &never, &[]);
    assert!(!esc(&out), "--color never");
    // A pipe: none, unless asked; the text is the same once the colour is
    // taken out.
    let piped = keyfall(&db, &args, None);
    assert!(!piped.stdout.contains('\x1b'), "{:?}", piped.stdout);
    let forced = keyfall(&db, &always, None);
    assert!(forced.stdout.contains("\x1b[1;32mANSWER\x1b[0m"), "{:?}", forced.stdout);
    let stripped = forced.stdout.replace("\x1b[1;32m", "").replace("\x1b[2m", "").replace("\x1b[0m", "");
    assert_eq!(stripped, piped.stdout, "colour changes no character");
    // JSON is never coloured.
    let json: Vec<&str> = always.iter().copied().chain(["--json"]).collect();
    assert!(!keyfall(&db, &json, None).stdout.contains('\x1b'));
    // A denial on `can`, in red.
    let can = keyfall(&db, &["--color", "always", "can", "--user", "paid2@paid.com"], None);
    assert!(
        can.stdout.contains("\x1b[1;31mDENIED\x1b[0m") && can.stdout.contains("\x1b[1;31m✗\x1b[0m"),
        "{:?}",
        can.stdout
    );
}

#[tokio::test]
async fn a_denial_is_exit_4_on_every_path() {
    let db = TestDb::demo().await;
    let paid = |args: &[&str]| -> crate::cli::Run {
        let args: Vec<&str> = ["--as", "paid2@paid.com"].into_iter().chain(args.iter().copied()).collect();
        keyfall(&db, &args, None)
    };
    for args in [
        &["policy", "set", "B", "--yes"][..],
        &["chain", "set", "default", "--yes"],
        &["set", "aws-admin", "openai", "model", "gpt-4o"],
        &["export", "--account", "aws-admin", "--reveal", "--yes"],
        &["lint", "--fix", "--yes"],
    ] {
        let run = paid(args);
        assert_eq!(run.code, 4, "{args:?}: {}", run.stderr);
        one_line(&run.stderr);
    }
    // `can` answering "denied" is an answer, not a refusal: 1.
    let run = keyfall(&db, &["can", "--user", "paid2@paid.com"], None);
    assert_eq!(run.code, 1);
}

#[test]
fn a_config_key_below_a_table_is_named_with_its_line_and_the_table() {
    let readme = include_str!("../../README.md");
    let start = readme.find("```toml\ndatabase_url").expect("the README's example config");
    let example = &readme[start + "```toml\n".len()..];
    let example = &example[..example.find("```").unwrap()];
    let text = format!("{example}statement_timeout = \"2min\"\n");
    let line = text.lines().count();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, &text).unwrap();
    let run = keyfall_with(&["--config", file.to_str().unwrap(), "report"], None, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let expected = format!(
        "`statement_timeout` is inside [keys.editor] (line {line}), which holds key bindings of one screen (action = [keys]); move it above the first [table]"
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    one_line(&run.stderr);
    // Moved to the top, it is taken.
    std::fs::write(&file, format!("statement_timeout = \"2min\"\n{example}")).unwrap();
    let run = keyfall_with(
        &["--config", file.to_str().unwrap(), "--database-url", "postgres://127.0.0.1:1/x", "report"],
        None,
        &[],
    );
    assert_eq!(run.code, 3, "the config is fine, the database absent: {}", run.stderr);
}

#[test]
fn every_subcommand_has_examples_described_arguments_and_global_options_apart() {
    use clap::CommandFactory;
    let top = keyfall::cli::Cli::command();
    let mut bare = Vec::new();
    for command in top.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = command.get_name();
        let commands: Vec<&clap::Command> = std::iter::once(command).chain(command.get_subcommands()).collect();
        for c in commands {
            for arg in c.get_arguments().filter(|a| !a.is_hide_set() && a.get_id() != "help") {
                if arg.get_help().is_none() {
                    bare.push(format!("{name} {} {}", c.get_name(), arg.get_id()));
                }
            }
        }
        let run = keyfall_with(&[name, "--help"], None, &[]);
        assert_eq!(run.code, 0, "{name}");
        if !["completions", "man"].contains(&name) {
            assert!(run.stdout.contains("\nExamples:\n  keyfall "), "{name} --help has examples:\n{}", run.stdout);
        }
        let global = run.stdout.find("\nGlobal options:\n").unwrap_or_else(|| panic!("{name}: {}", run.stdout));
        assert!(run.stdout[global..].contains("--database-url"), "{name}");
        assert!(!run.stdout[..global].contains("--database-url"), "{name}: global options apart");
    }
    assert!(bare.is_empty(), "arguments without a description: {bare:?}");
    let help = keyfall_with(&["--help"], None, &[]);
    for code in ["  0 ", "  1 ", "  2 ", "  3 ", "  4 ", "  70 ", "  74 "] {
        assert!(help.stdout.contains(&format!("\n{code}")), "exit code{code}in --help");
    }
    let completions = keyfall_with(&["completions", "--help"], None, &[]);
    for place in ["bash-completion/completions/keyfall", "~/.zfunc/_keyfall", "fish/completions/keyfall.fish"] {
        assert!(completions.stdout.contains(place), "{place}: {}", completions.stdout);
    }
    assert!(keyfall_with(&["man", "--help"], None, &[]).stdout.contains("~/.local/share/man/man1"));
}

#[test]
fn man_dir_writes_a_page_per_command_with_see_also() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let run = keyfall_with(&["man", "--dir", pages.to_str().unwrap()], None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let top = std::fs::read_to_string(pages.join("keyfall.1")).unwrap();
    assert!(top.contains(".SH \"SEE ALSO\"") && top.contains("\\fBkeyfall\\-resolve\\fR(1)"), "{top}");
    assert!(top.contains("\\fBkeyfall\\-test\\-connection\\fR(1)"));
    let resolve = std::fs::read_to_string(pages.join("keyfall-resolve.1")).unwrap();
    assert!(resolve.contains(".SH \"SEE ALSO\"\n\\fBkeyfall\\fR(1)"), "{resolve}");
    assert!(resolve.contains("Examples:"), "the examples are in the page too");
    let count = std::fs::read_dir(&pages).unwrap().count();
    assert!(count >= 20, "a page per command: {count}");
    assert!(!pages.join("keyfall-__complete.1").exists(), "no page for the hidden helper");
    assert!(run.stdout.contains(&format!("wrote {count} man pages")), "{}", run.stdout);
}

#[tokio::test]
async fn completion_offers_names_from_the_database_and_is_silent_without_one() {
    let db = TestDb::demo().await;
    let ask = |words: &[&str]| -> crate::cli::Run {
        // The word completed is the last; "keyfall" is word 0.
        let index = words.len().to_string();
        let args: Vec<&str> = ["__complete", "--index", index.as_str(), "--", "keyfall"]
            .into_iter()
            .chain(words.iter().copied())
            .collect();
        keyfall(&db, &args, None)
    };
    let lines = |run: &crate::cli::Run| -> Vec<String> { run.stdout.lines().map(str::to_string).collect() };
    assert_eq!(lines(&ask(&["get", "aws"])), ["aws-admin"]);
    assert_eq!(lines(&ask(&["get", "AWS"])), ["aws-admin"], "any case");
    assert!(lines(&ask(&["get", "aws-admin", ""])).contains(&"image_generation".to_string()));
    assert_eq!(lines(&ask(&["set", "aws-admin", "openai", "mo"])), ["model"]);
    assert_eq!(lines(&ask(&["resolve", "--user", "paid2"])), ["paid2@paid.com"]);
    assert_eq!(lines(&ask(&["resolve", "--function", "generate_ima"])), ["generate_image_prompts", "generate_images"]);
    assert_eq!(lines(&ask(&["--as", "dev@"])), ["dev@igny8.com"]);
    assert!(lines(&ask(&["chain", "set", "aws-admin", "def"])).contains(&"default-account".to_string()));
    assert_eq!(lines(&ask(&["can", "--user", "paid2@paid.com", "--account", "paid-"])), ["paid-2"]);
    // Subcommands, options, files: the static script's (exit 1, nothing).
    for words in [&["re"][..], &["resolve", "--"], &["import", "se"]] {
        let run = ask(words);
        assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{words:?}");
    }
    // No database answering: nothing offered, nothing said, at once.
    let started = Instant::now();
    let run = keyfall_with(
        &[
            "--database-url",
            "postgres://127.0.0.1:1/keyfall",
            "__complete",
            "--index",
            "2",
            "--",
            "keyfall",
            "get",
            "aw",
        ],
        None,
        &[],
    );
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "", ""));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_bash_script_asks_keyfall_for_names_and_keeps_the_static_ones() {
    let db = TestDb::demo().await;
    for (shell, hook) in
        [("bash", "_keyfall_data"), ("zsh", "compdef _keyfall_data keyfall"), ("fish", "__keyfall_data")]
    {
        let run = keyfall_with(&["completions", shell], None, &[]);
        assert!(run.stdout.contains(hook) && run.stdout.contains("__complete"), "{shell}");
    }
    let zsh = keyfall_with(&["completions", "zsh"], None, &[]).stdout;
    assert!(!zsh.contains("compdef _keyfall keyfall"), "zsh ends in the data-aware function");
    // bash for real: the script sourced, a completion run as bash would.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("keyfall.bash");
    std::fs::write(&script, keyfall_with(&["completions", "bash"], None, &[]).stdout).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_keyfall")).parent().unwrap();
    let complete = |line: &str| -> Vec<String> {
        let program = format!(
            "source {}; COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMP_LINE='{line}'; \
             COMP_POINT=${{#COMP_LINE}}; _keyfall_data keyfall; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash")
            .args(["--norc", "-c", &program])
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
            .env("DATABASE_URL", db.url())
            .env("HOME", dir.path())
            .output()
            .expect("bash");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
    };
    assert_eq!(complete("keyfall get aws"), ["aws-admin"]);
    assert_eq!(complete("keyfall resolve --function auto_c"), ["auto_cluster"]);
    let subcommands = complete("keyfall res");
    assert!(subcommands.contains(&"resolve".to_string()), "the static part still answers: {subcommands:?}");
}

/// zsh for real (`.ci/run` installs it), its completion system's `compadd`
/// replaced by a printer: the hook's words, index and call are zsh's own.
#[tokio::test]
async fn the_zsh_hook_asks_keyfall_with_zshs_own_words() {
    let db = TestDb::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("_keyfall");
    std::fs::write(&script, keyfall_with(&["completions", "zsh"], None, &[]).stdout).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_keyfall")).parent().unwrap();
    let complete = |words: &str| -> Vec<String> {
        let program = format!(
            "compdef() {{ :; }}; source {}; compadd() {{ shift; print -l -- \"$@\"; }}; \
             words=({words}); CURRENT=${{#words}}; _keyfall_data",
            script.display()
        );
        let out = Command::new("zsh")
            .args(["-f", "-c", &program])
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
            .env("DATABASE_URL", db.url())
            .env("HOME", dir.path())
            .output()
            .expect("zsh is installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
    };
    assert_eq!(complete("keyfall get aws"), ["aws-admin"]);
    assert_eq!(complete("keyfall resolve --user paid2"), ["paid2@paid.com"]);
    assert_eq!(complete("keyfall resolve --function auto_c"), ["auto_cluster"]);
}

/// fish for real (`.ci/run` installs it): positionals and every option
/// naming data (fish completes an option's value only from that option's
/// own entries) ask keyfall; the static part still answers.
#[tokio::test]
async fn the_fish_script_asks_keyfall_for_names_positional_and_after_options() {
    let db = TestDb::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("keyfall.fish");
    std::fs::write(&script, keyfall_with(&["completions", "fish"], None, &[]).stdout).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_keyfall")).parent().unwrap();
    let complete = |line: &str| -> Vec<String> {
        let program = format!("source {}; complete -C '{line}'", script.display());
        let out = Command::new("fish")
            .args(["--no-config", "-c", &program])
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
            .env("DATABASE_URL", db.url())
            .env("HOME", dir.path())
            .output()
            .expect("fish is installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    assert_eq!(complete("keyfall get aws"), ["aws-admin"]);
    assert_eq!(complete("keyfall get aws-admin open"), ["openai"]);
    assert_eq!(complete("keyfall resolve --user paid2"), ["paid2@paid.com"]);
    assert_eq!(complete("keyfall resolve --function auto_c"), ["auto_cluster"]);
    assert_eq!(complete("keyfall audit --account aws-ad"), ["aws-admin"]);
    let subcommands = complete("keyfall res");
    assert!(subcommands.contains(&"resolve".to_string()), "the static part still answers: {subcommands:?}");
}
