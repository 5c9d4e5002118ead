//! Issue 18 §7 and §8: a connection test sends the key only where it may —
//! plain http, credentials in the URL, loopback, link-local, private and
//! unspecified addresses need the operator's word (`--allow-insecure-endpoint`,
//! the console's dialog) and are refused otherwise, with nothing sent and the
//! endpoint and reason named; a console request always ends (a reply or a
//! timeout, said on screen); and what holds a config or typed input cannot
//! print a key through `Debug`.

use std::time::Duration;

use keyfall::app::{Cmd, Model, Msg, Overlay, update, view};
use keyfall::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::cli::keyfall;
use crate::support::{TestDb, drive};

const CANARY: &str = "sk-canary-endpoint-5c1d9e7a3b-never-print-me";

/// paid-2's own openai setting, with the canary key, pointed at `base`.
async fn point_at(db: &TestDb, base: &str) {
    let base = base.to_string();
    db.store
        .write_setting("dev@igny8.com", "paid-2", "openai", None, move |_| {
            (json!({"apiKey": CANARY, "base_url": base}), true)
        })
        .await
        .unwrap();
}

/// A mock provider that accepts any key; what it received is the proof.
async fn provider() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "gpt-4o"}]})))
        .mount(&server)
        .await;
    server
}

async fn received(server: &MockServer) -> usize {
    server.received_requests().await.expect("recording").len()
}

/// How many times a key was read out of the database for a test.
async fn key_reads(db: &TestDb) -> i64 {
    let mut conn = db.raw().await;
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'test_connection'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn refused_endpoints_get_no_key_and_say_where_and_why() {
    let db = TestDb::demo().await;
    let server = provider().await;
    let port = server.address().port();
    let mock = server.uri();
    let cases = [
        (mock.clone(), format!("{mock} is plain http on a loopback address: the key would be sent there")),
        (
            "http://169.254.169.254/latest".to_string(),
            "http://169.254.169.254 is plain http on a link-local address (where cloud metadata services answer)"
                .to_string(),
        ),
        ("https://10.20.30.40/v1".to_string(), "https://10.20.30.40 is on a private address".to_string()),
        ("https://[fd00::1]:8443".to_string(), "https://[fd00::1]:8443 is on a private address".to_string()),
        ("https://0.0.0.0:9".to_string(), "https://0.0.0.0:9 is on an unspecified address".to_string()),
        // A name is resolved first, and every address it has checked.
        (
            format!("https://localhost:{port}"),
            format!("https://localhost:{port} is on a loopback address (localhost → "),
        ),
        (
            format!("http://ops:pw-s3cr3t-in-url@127.0.0.1:{port}/v1"),
            format!("{mock} is plain http on a loopback address, and a URL with credentials in it (not shown)"),
        ),
    ];
    for (base, expected) in &cases {
        point_at(&db, base).await;
        for json in [false, true] {
            let mut args = vec!["--as", "dev@igny8.com", "test-connection", "paid-2", "openai"];
            if json {
                args.push("--json");
            }
            let run = keyfall(&db, &args, None);
            assert_eq!(run.code, 2, "{base}: refused as bad input\n{}{}", run.stdout, run.stderr);
            assert!(run.stderr.contains(expected.as_str()), "{base}: names where and why\n{}", run.stderr);
            assert!(run.stderr.contains("--allow-insecure-endpoint"), "{base}: says how to send anyway");
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
            for out in [&run.stdout, &run.stderr] {
                assert!(!out.contains("s3cr3t") && !out.contains("ops:"), "URL credentials printed: {out}");
                assert!(!out.contains("canary"), "the key printed: {out}");
            }
        }
    }
    assert_eq!(received(&server).await, 0, "the mock received a request: the key was sent");
    assert_eq!(key_reads(&db).await, 0, "a stored base_url that is refused: the key is not even read");

    // Confirmed: sent, and said so; credentials in the URL still never shown.
    let creds = format!("http://ops:pw-s3cr3t-in-url@127.0.0.1:{port}");
    point_at(&db, &creds).await;
    for json in [false, true] {
        let mut args =
            vec!["--as", "dev@igny8.com", "test-connection", "paid-2", "openai", "--allow-insecure-endpoint"];
        if json {
            args.push("--json");
        }
        let run = keyfall(&db, &args, None);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("key accepted") && run.stdout.contains("plain http on a loopback"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains(&format!("127.0.0.1:{port}")), "{}", run.stdout);
        for out in [&run.stdout, &run.stderr] {
            assert!(!out.contains("s3cr3t") && !out.contains("ops") && !out.contains("canary"), "{out}");
        }
    }
    assert_eq!(received(&server).await, 2, "sent when allowed");
}

/// The test checks the config it reads, not only the one it was shown: a
/// base_url that changes between the two is checked again.
#[tokio::test]
async fn the_endpoint_is_checked_again_on_the_config_the_key_comes_with() {
    let db = TestDb::demo().await;
    let server = provider().await;
    let provider_config = json!({"apiKey": CANARY, "base_url": server.uri()});
    let outcome = keyfall::connection::test(
        "openai",
        &provider_config,
        Duration::from_secs(10),
        &keyfall::connection::Insecure::Refuse,
    )
    .await;
    assert!(!outcome.ok && outcome.refused.is_some() && outcome.status.is_none(), "{outcome:?}");
    // A confirmation names one endpoint and reason: another is refused.
    let other = keyfall::connection::Refusal {
        endpoint: "http://127.0.0.1:1".into(),
        reason: "plain http on a loopback address".into(),
    };
    let outcome = keyfall::connection::test(
        "openai",
        &provider_config,
        Duration::from_secs(10),
        &keyfall::connection::Insecure::Confirmed(other),
    )
    .await;
    assert!(outcome.refused.is_some(), "{outcome:?}");
    assert_eq!(received(&server).await, 0, "nothing sent unconfirmed");
    let confirmed = outcome.refused.unwrap();
    let outcome = keyfall::connection::test(
        "openai",
        &provider_config,
        Duration::from_secs(10),
        &keyfall::connection::Insecure::Confirmed(confirmed),
    )
    .await;
    assert!(outcome.ok && outcome.insecure.is_some(), "{outcome:?}");
    assert_eq!(received(&server).await, 1);
    drop(db);
}

async fn console(db: &TestDb, operator: &str, read_only: bool, size: (u16, u16)) -> Model {
    crate::console::console_with(db, Some(operator), read_only, size).await
}

async fn keys(store: &Store, model: &mut Model, keys: &[&str]) {
    for key in keys {
        let cmds = update(model, Msg::Key(key.to_string()));
        drive(store, model, cmds).await;
    }
}

fn screen(model: &Model) -> String {
    let (w, h) = model.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| view::draw(model, f)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buffer[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The screen's text with line breaks and box borders gone, to find a
/// sentence a dialog wrapped (drawn as wide as the dialog, so nothing
/// beside it interleaves).
async fn dialog_text(db: &TestDb, model: &mut Model) -> String {
    let size = model.size;
    let cmds = update(model, Msg::Resize { width: 72, height: 24 });
    drive(&db.store, model, cmds).await;
    let text = screen(model).replace(['│', '\n'], " ").split_whitespace().collect::<Vec<_>>().join(" ");
    let cmds = update(model, Msg::Resize { width: size.0, height: size.1 });
    drive(&db.store, model, cmds).await;
    text
}

/// Why the last test has no outcome, as its line says it.
fn problem(model: &Model) -> String {
    model.last_test.as_ref().and_then(|t| t.problem.clone()).unwrap_or_default()
}

async fn select(db: &TestDb, model: &mut Model, slug: &str) {
    let id = db.store.account(slug).await.unwrap().unwrap().id;
    for _ in 0..50 {
        if model.selected_account().map(|a| a.id) == Some(id) {
            return;
        }
        keys(&db.store, model, &["j"]).await;
    }
    panic!("{slug} not reachable");
}

#[tokio::test]
async fn the_console_asks_before_sending_a_key_to_plain_http_on_loopback() {
    let db = TestDb::demo().await;
    let server = provider().await;
    point_at(&db, &server.uri()).await;
    let mut model = console(&db, "dev@igny8.com", false, (160, 48)).await;
    select(&db, &mut model, "paid-2").await;
    keys(&db.store, &mut model, &["t"]).await;
    assert!(matches!(model.overlay, Some(Overlay::ConfirmEndpoint(_))), "a dialog asks: {}", screen(&model));
    let text = dialog_text(&db, &mut model).await;
    let expected = format!("{} is plain http on a loopback address: the key would be sent there", server.uri());
    assert!(text.contains(&expected) && text.contains("y send anyway / n cancel"), "{text}");
    assert_eq!(received(&server).await, 0, "nothing sent before the answer");

    // n: nothing sent; the line says why.
    keys(&db.store, &mut model, &["n"]).await;
    assert!(model.overlay.is_none());
    assert_eq!(problem(&model), format!("not sent: {expected}"));
    assert!(screen(&model).contains("✗ paid-2's openai key: not sent"), "{}", screen(&model));
    assert_eq!(received(&server).await, 0);

    // Asked again, y: sent, and the line says it went where it was confirmed.
    keys(&db.store, &mut model, &["t", "y"]).await;
    let outcome = model.last_test.as_ref().and_then(|t| t.outcome.clone()).expect("an outcome");
    assert!(outcome.ok && outcome.host.starts_with("127.0.0.1:"), "{outcome:?}");
    assert_eq!(outcome.insecure.as_deref(), Some("plain http on a loopback address"));
    assert!(screen(&model).contains("✓ paid-2's openai key via 127.0.0.1"), "{}", screen(&model));
    assert_eq!(received(&server).await, 1);

    // The endpoint changes between the question and the answer: the key
    // is not sent to the new one on the old answer; it is asked about.
    keys(&db.store, &mut model, &["t"]).await;
    assert!(matches!(model.overlay, Some(Overlay::ConfirmEndpoint(_))));
    let elsewhere = provider().await;
    point_at(&db, &format!("http://user:pw-hidden@127.0.0.1:{}", elsewhere.address().port())).await;
    keys(&db.store, &mut model, &["y"]).await;
    let Some(Overlay::ConfirmEndpoint(dialog)) = &model.overlay else { panic!("asked again: {}", screen(&model)) };
    assert_eq!(dialog.refusal.endpoint, elsewhere.uri());
    let text = dialog_text(&db, &mut model).await;
    assert!(text.contains("a URL with credentials in it (not shown)") && !text.contains("pw-hidden"), "{text}");
    assert_eq!(received(&elsewhere).await, 0, "the changed endpoint got nothing");
    assert_eq!(received(&server).await, 1);
    assert!(!format!("{model:?}").contains("pw-hidden"), "nor does the model's Debug show the URL's credentials");
}

#[tokio::test]
async fn a_session_that_may_not_read_the_key_is_told_at_once() {
    let db = TestDb::demo().await;
    let server = provider().await;
    point_at(&db, &server.uri()).await;
    // paid2 owns paid-2, but under policy A testing is for system members
    // and developers: the database would refuse the key.
    let mut model = console(&db, "paid2@paid.com", false, (160, 48)).await;
    select(&db, &mut model, "paid-2").await;
    let cmds = update(&mut model, Msg::Key("t".into()));
    assert!(!cmds.iter().any(|c| matches!(c, Cmd::TestConnection { .. })), "no request: {cmds:?}");
    assert_eq!(
        problem(&model),
        "not tested: IsSystemAccountOrDeveloper fails: you may not test paid-2's keys under this policy"
    );
    // Said where it is seen: the footer (this operator's pane hides the settings).
    assert!(
        screen(&model).contains("paid-2's openai key not tested: IsSystemAccountOrDeveloper"),
        "{}",
        screen(&model)
    );
    // A developer in a --read-only session: its database session cannot
    // record the read of the key.
    let mut model = console(&db, "dev@igny8.com", true, (160, 48)).await;
    select(&db, &mut model, "paid-2").await;
    let cmds = update(&mut model, Msg::Key("t".into()));
    assert!(!cmds.iter().any(|c| matches!(c, Cmd::TestConnection { .. })), "no request: {cmds:?}");
    assert_eq!(
        problem(&model),
        "not tested: this session is read-only (--read-only) and a test records its read of the key"
    );
    assert!(screen(&model).contains("not tested") && !screen(&model).contains("testing"), "{}", screen(&model));
    assert_eq!(received(&server).await, 0);
    assert_eq!(key_reads(&db).await, 0);
}

#[tokio::test]
async fn a_request_past_its_bound_says_it_timed_out() {
    let db = TestDb::demo().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(20)).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    point_at(&db, &server.uri()).await;
    let mut model = console(&db, "dev@igny8.com", false, (120, 30)).await;
    select(&db, &mut model, "paid-2").await;
    keys(&db.store, &mut model, &["t"]).await;
    let cmds = update(&mut model, Msg::Key("y".into()));
    let [cmd @ Cmd::TestConnection { .. }] = &cmds[..] else { panic!("{cmds:?}") };
    // The provider answers in 20 s; the console waits half a second.
    let msg = keyfall::tui::exec::run_within(&db.store, cmd.clone(), Duration::from_millis(500)).await;
    assert!(matches!(&msg, Msg::Failed { error, .. } if error == "timed out after 0.5 s"), "{msg:?}");
    update(&mut model, msg);
    assert_eq!(problem(&model), "not tested: timed out after 0.5 s");
    let text = screen(&model);
    assert!(text.contains("✗ paid-2's openai key: not tested") && !text.contains("testing"), "{text}");

    // A screen that waits (the lint view) says so too, instead of loading forever.
    let cmds = update(&mut model, Msg::Key("L".into()));
    let [cmd @ Cmd::Lint { .. }] = &cmds[..] else { panic!("{cmds:?}") };
    let msg = keyfall::tui::exec::run_within(&db.store, cmd.clone(), Duration::ZERO).await;
    update(&mut model, msg);
    assert!(model.overlay.is_none(), "the lint view closed");
    assert_eq!(model.notice.as_deref(), Some("lint did not finish: timed out after 0 s"));
    assert!(screen(&model).contains("lint did not finish"), "{}", screen(&model));
    // Every command has a bound.
    assert_eq!(keyfall::tui::exec::bound(cmd), Duration::from_secs(120));
}

#[tokio::test]
async fn a_key_typed_or_pasted_into_the_editor_never_shows_in_debug() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let stored: String = sqlx::query_scalar(
        "SELECT s.config ->> 'apiKey' FROM integration_settings s JOIN accounts a ON a.id = s.account_id
          WHERE a.slug = 'aws-admin' AND s.integration_type = 'openai'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let typed = "hunter2-typed-by-hand-correct-horse";
    let pasted = "sk-proj-PASTEDintoTHEmodelFIELD0123456789";
    let leaks = |text: &str| -> Vec<&str> {
        [typed, pasted, stored.as_str(), "correct-horse", "PASTEDintoTHE"]
            .into_iter()
            .filter(|k| text.contains(k))
            .collect()
    };
    let mut model = console(&db, "dev@igny8.com", false, (120, 30)).await;
    // aws-admin's own openai setting: the form starts from its stored key.
    select(&db, &mut model, "aws-admin").await;
    keys(&db.store, &mut model, &["e"]).await;
    assert!(matches!(model.overlay, Some(Overlay::Edit(_))), "{}", screen(&model));
    // Type a key into the key field (focused first), character by character.
    for c in typed.chars() {
        let msg = Msg::Key(c.to_string());
        assert!(leaks(&format!("{msg:?}")).is_empty());
        update(&mut model, msg);
    }
    // Paste a key-shaped value into the model field by mistake (cleared first).
    update(&mut model, Msg::Key("tab".into()));
    update(&mut model, Msg::Key("ctrl-d".into()));
    let paste = Msg::Paste(pasted.into());
    assert_eq!(leaks(&format!("{paste:?}")), Vec::<&str>::new(), "a paste's Debug");
    update(&mut model, paste);
    let Some(Overlay::Edit(ed)) = &model.overlay else { panic!() };
    assert_eq!(ed.fields[0].text(), typed, "the key is in the form");
    assert_eq!(ed.fields[1].text(), pasted, "and the paste");
    assert_eq!(leaks(&format!("{model:?}")), Vec::<&str>::new(), "the model's Debug while editing");
    assert_eq!(leaks(&format!("{model:#?}")), Vec::<&str>::new());
    // The preview and the save carry the config: their Debug masks it.
    let cmds = update(&mut model, Msg::Key("ctrl-s".into()));
    assert!(matches!(cmds[..], [Cmd::Preview { .. }]), "{cmds:?}");
    assert_eq!(leaks(&format!("{cmds:?}")), Vec::<&str>::new(), "the preview command's Debug");
    drive(&db.store, &mut model, cmds).await;
    assert_eq!(leaks(&format!("{model:?}")), Vec::<&str>::new(), "the model's Debug at the confirm stage");
    let cmds = update(&mut model, Msg::Key("enter".into()));
    assert!(matches!(cmds[..], [Cmd::Save { .. }]), "{cmds:?}");
    assert_eq!(leaks(&format!("{cmds:?}")), Vec::<&str>::new(), "the save command's Debug");
    drive(&db.store, &mut model, cmds).await;
    let saved = db.store.config_for_test("dev@igny8.com", "aws-admin", "openai").await.unwrap().unwrap();
    assert_eq!(saved["apiKey"], typed, "the key was saved, for real");
    // The resolve panel's finding about the unknown model quotes it masked.
    assert_eq!(leaks(&format!("{model:?}")), Vec::<&str>::new(), "the model's Debug after the save");
    assert_eq!(leaks(&screen(&model)), Vec::<&str>::new(), "nor the screen");
}
