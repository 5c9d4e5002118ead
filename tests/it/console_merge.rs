//! Issue 22, points 2–4 in the console: a conflict merges (your changed
//! fields on top of theirs, a field both changed chosen side by side),
//! discarding asks, keeping rebases; the editor, the audit view and a
//! connection test's result follow live changes; a new override's prefill
//! follows the policy and never copies a system endpoint.

use keyfall::app::{Msg, update};

use crate::console::{console, keys, screen, select, snapshots, stage};
use crate::support::{TestDb, drive};

/// psql writes, as `psql`, to acme-studio's openai row.
async fn psql(db: &TestDb, set: &str) {
    use sqlx::Connection;
    let mut conn = db.raw().await;
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET LOCAL keyfall.actor = 'psql'").execute(&mut *tx).await.unwrap();
    sqlx::query(
        "UPDATE integration_settings SET config = config || $1::jsonb
          WHERE account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio') AND integration_type = 'openai'",
    )
    .bind(set)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// acme-studio's openai form with the model changed to gpt-4.1, then a
/// psql write of `theirs`, then a save: the conflict.
async fn conflict(db: &TestDb, theirs: &str) -> keyfall::app::Model {
    let mut model = console(db, Some("dev@igny8.com"), (100, 30)).await;
    select(db, &mut model, "acme-studio").await;
    keys(&db.store, &mut model, &["e", "tab"]).await;
    keys(&db.store, &mut model, &["backspace"; 6]).await;
    update(&mut model, Msg::Paste("gpt-4.1".into()));
    psql(db, theirs).await;
    keys(&db.store, &mut model, &["ctrl-s", "enter"]).await;
    assert_eq!(stage(&model), "conflict");
    model
}

async fn stored(db: &TestDb) -> keyfall::domain::Setting {
    db.store.setting("acme-studio", "openai").await.unwrap().setting.unwrap()
}

#[tokio::test]
async fn m_applies_your_model_on_top_of_their_max_tokens() {
    let db = TestDb::demo().await;
    let mut model = conflict(&db, r#"{"max_tokens": 999}"#).await;
    assert!(screen(&model).contains("m merge"), "{}", screen(&model));
    keys(&db.store, &mut model, &["m"]).await;
    assert_eq!(stage(&model), "confirm", "the merge goes through the normal preview");
    let text = screen(&model);
    assert!(text.contains("config.model") && text.contains("gpt-4o → gpt-4.1"), "{text}");
    assert!(!text.contains("config.max_tokens"), "their field is not undone: {text}");
    assert!(text.contains("(v2 → v3)"), "checked against their version: {text}");
    snapshots(&db, &mut model, "merge_preview").await;
    keys(&db.store, &mut model, &["enter"]).await;
    assert_eq!(stage(&model), "none");
    let s = stored(&db).await;
    assert_eq!((s.config["model"].as_str(), s.config["max_tokens"].as_i64()), (Some("gpt-4.1"), Some(999)));
    assert_eq!(s.config["apiKey"], "sk-demo-FAKE-acme-studio-own-key-not-real-77Qx", "the key is untouched");
    assert_eq!(s.updated_by.as_deref(), Some("dev@igny8.com"), "a merge is no overwrite");
}

#[tokio::test]
async fn a_field_both_changed_is_chosen_side_by_side_and_keys_are_never_shown() {
    let db = TestDb::demo().await;
    let mut model = console(&db, Some("dev@igny8.com"), (100, 30)).await;
    select(&db, &mut model, "acme-studio").await;
    keys(&db.store, &mut model, &["e"]).await;
    update(&mut model, Msg::Paste("sk-mine-typed-0000000000000000".into()));
    keys(&db.store, &mut model, &["tab"]).await;
    keys(&db.store, &mut model, &["backspace"; 6]).await;
    update(&mut model, Msg::Paste("gpt-4.1".into()));
    psql(&db, r#"{"model": "gpt-4o-mini", "max_tokens": 999, "apiKey": "sk-theirs-rotated-1111111111111"}"#).await;
    keys(&db.store, &mut model, &["ctrl-s", "enter", "m"]).await;
    assert_eq!(stage(&model), "merging");
    let text = screen(&model);
    assert!(text.contains("Both of you changed these fields"), "{text}");
    assert!(text.contains("gpt-4o-mini") && text.contains("gpt-4.1"), "theirs and yours side by side: {text}");
    assert!(text.contains("their new key") && text.contains("your new key"), "{text}");
    assert!(!text.contains("sk-mine") && !text.contains("sk-theirs"), "a key is never shown: {text}");
    let debug = format!("{model:?}");
    assert!(!debug.contains("sk-mine") && !debug.contains("sk-theirs"), "nor in the model's Debug");
    snapshots(&db, &mut model, "merge_choose").await;
    // apiKey first (yours kept), then model: switched to theirs.
    keys(&db.store, &mut model, &["j", "space"]).await;
    keys(&db.store, &mut model, &["enter"]).await;
    assert_eq!(stage(&model), "confirm");
    keys(&db.store, &mut model, &["enter"]).await;
    assert_eq!(stage(&model), "none");
    let s = stored(&db).await;
    assert_eq!(s.config["model"], "gpt-4o-mini", "theirs, as chosen");
    assert_eq!(s.config["max_tokens"], 999);
    assert_eq!(s.config["apiKey"], "sk-mine-typed-0000000000000000", "yours, as chosen");
}

#[tokio::test]
async fn r_asks_before_discarding_your_edits() {
    let db = TestDb::demo().await;
    let mut model = conflict(&db, r#"{"max_tokens": 999}"#).await;
    keys(&db.store, &mut model, &["r"]).await;
    assert_eq!(stage(&model), "discard?", "reload asks first");
    let text = screen(&model);
    assert!(text.contains("Discard your edits to acme-studio openai and reload what is stored?"), "{text}");
    snapshots(&db, &mut model, "conflict_reload_asks").await;
    keys(&db.store, &mut model, &["n"]).await;
    assert_eq!(stage(&model), "conflict", "no: back to the conflict, edits intact");
    keys(&db.store, &mut model, &["r", "y"]).await;
    assert_eq!(stage(&model), "none");
    assert_eq!(stored(&db).await.config["model"], "gpt-4o", "nothing was written");
}

#[tokio::test]
async fn k_rebases_your_edits_so_the_next_save_goes_through() {
    let db = TestDb::demo().await;
    let mut model = conflict(&db, r#"{"max_tokens": 999}"#).await;
    keys(&db.store, &mut model, &["k"]).await;
    assert_eq!(stage(&model), "editing");
    let text = screen(&model);
    assert!(text.contains("· v2") && text.contains("your edits, now on their v2"), "{text}");
    assert!(text.contains("gpt-4.1") && text.contains("999"), "yours and theirs in the form: {text}");
    snapshots(&db, &mut model, "conflict_kept_rebased").await;
    keys(&db.store, &mut model, &["ctrl-s", "enter"]).await;
    assert_eq!(stage(&model), "none", "no second conflict: {}", screen(&model));
    let s = stored(&db).await;
    assert_eq!((s.config["model"].as_str(), s.config["max_tokens"].as_i64()), (Some("gpt-4.1"), Some(999)));
    assert_eq!(s.version, 3);
}

/// A listener subscribed (a ping heard), then `write` run once: the
/// change it caused, as the console would get it.
async fn heard(db: &TestDb, write: &'static str) -> keyfall::domain::change::Change {
    use keyfall::store::listen::Event;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::spawn(keyfall::store::listen::listen(db.store.clone(), move |e| tx.send(e).is_ok()));
    let mut conn = db.raw().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        assert!(std::time::Instant::now() < deadline, "the listener never heard a ping");
        sqlx::raw_sql(r#"SELECT pg_notify('keyfall_changes', '{"table": "ping", "op": "ping"}')"#)
            .execute(&mut conn)
            .await
            .unwrap();
        if let Ok(Some(Event::Change(_))) = tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await
        {
            break;
        }
    }
    while rx.try_recv().is_ok() {}
    sqlx::raw_sql(write).execute(&mut conn).await.unwrap();
    let change = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv()).await {
            Ok(Some(Event::Change(c))) if c.table != "ping" => break c,
            Ok(Some(_)) => continue,
            other => panic!("the write was not heard: {other:?}"),
        }
    };
    listener.abort();
    change
}

/// The change reaches the console: noted, then applied on the next tick.
async fn deliver(db: &TestDb, model: &mut keyfall::app::Model, change: keyfall::domain::change::Change) {
    update(model, Msg::Changed(change));
    let cmds = update(model, Msg::Tick { now: chrono::Utc::now() });
    drive(&db.store, model, cmds).await;
}

const PSQL_MAX_TOKENS: &str = "BEGIN; SET LOCAL keyfall.actor = 'psql';
     UPDATE integration_settings SET config = config || '{\"max_tokens\": 999}'::jsonb
      WHERE account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio') AND integration_type = 'openai';
     COMMIT;";

#[tokio::test]
async fn the_editor_warns_as_soon_as_its_row_changes_underneath() {
    let db = TestDb::demo().await;
    let mut model = console(&db, Some("dev@igny8.com"), (100, 30)).await;
    select(&db, &mut model, "acme-studio").await;
    keys(&db.store, &mut model, &["e", "tab", "backspace"]).await;
    assert!(!screen(&model).contains("stored now"));
    let change = heard(&db, PSQL_MAX_TOKENS).await;
    deliver(&db, &mut model, change).await;
    assert_eq!(stage(&model), "editing", "the form stays, edits intact");
    let text = screen(&model);
    assert!(text.contains("Edit acme-studio · OpenAI · v1 (stored now: v2)"), "the title follows: {text}");
    assert!(text.contains("⚠ changed by psql just now (stored now: v2)"), "{text}");
    snapshots(&db, &mut model, "editor_changed_underneath").await;
}

#[tokio::test]
async fn an_open_audit_view_follows_a_psql_update() {
    let db = TestDb::demo().await;
    let mut model = console(&db, Some("dev@igny8.com"), (100, 30)).await;
    select(&db, &mut model, "acme-studio").await;
    keys(&db.store, &mut model, &["a"]).await;
    assert!(!screen(&model).contains("config.max_tokens"), "{}", screen(&model));
    let change = heard(&db, PSQL_MAX_TOKENS).await;
    deliver(&db, &mut model, change).await;
    assert!(matches!(model.overlay, Some(keyfall::app::Overlay::Audit(_))), "still open");
    let text = screen(&model);
    assert!(text.contains("psql") && text.contains("config.max_tokens") && text.contains("→ 999"), "{text}");
    snapshots(&db, &mut model, "audit_follows_live").await;
}

#[tokio::test]
async fn a_connection_test_result_goes_stale_when_the_base_url_changes() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let db = TestDb::demo().await;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [{"id": "a"}]})))
        .mount(&server)
        .await;
    let set_url = |url: String| {
        move |cur: Option<&keyfall::domain::Setting>| {
            let mut c = cur.unwrap().config.clone();
            c["base_url"] = serde_json::json!(url);
            (c, true)
        }
    };
    db.store.write_setting("dev@igny8.com", "acme-studio", "openai", None, set_url(server.uri())).await.unwrap();
    let mut model = console(&db, Some("dev@igny8.com"), (100, 30)).await;
    select(&db, &mut model, "acme-studio").await;
    keys(&db.store, &mut model, &["t", "y"]).await;
    let text = screen(&model);
    assert!(text.contains("✓ acme-studio's openai key via") && !text.contains("stale"), "{text}");
    let change = heard(
        &db,
        "BEGIN; SET LOCAL keyfall.actor = 'psql';
         UPDATE integration_settings SET config = config || '{\"base_url\": \"https://elsewhere.example\"}'::jsonb
          WHERE account_id = (SELECT id FROM accounts WHERE slug = 'acme-studio') AND integration_type = 'openai';
         COMMIT;",
    )
    .await;
    deliver(&db, &mut model, change).await;
    let text = screen(&model);
    assert!(!text.contains("✓ acme-studio's openai key"), "the ✓ is not shown as current: {text}");
    assert!(text.contains("stale: acme-studio's openai key or base_url changed since the test"), "{text}");
    snapshots(&db, &mut model, "connection_test_stale").await;
}

#[tokio::test]
async fn under_policy_b_the_prefill_shows_nothing_the_operator_may_not_view() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    sqlx::raw_sql("UPDATE policy SET mode = 'per_account'").execute(&mut psql).await.unwrap();
    let mut model = console(&db, Some("paid2@paid.com"), (100, 30)).await;
    select(&db, &mut model, "paid-2").await;
    keys(&db.store, &mut model, &["e"]).await;
    assert_eq!(stage(&model), "editing");
    let text = screen(&model);
    assert!(text.contains("New OpenAI setting for paid-2") && !text.contains("(prefilled from"), "{text}");
    assert!(!text.contains("gpt-4o-mini") && !text.contains("0.7") && !text.contains("4096"), "{text}");
    assert!(!text.contains("from aws-admin"), "{text}");
    assert!(text.contains("nothing prefilled: under this policy you may not view aws-admin's settings"), "{text}");
    snapshots(&db, &mut model, "prefill_policy_b").await;
}

#[tokio::test]
async fn a_prefill_marks_what_it_copied_and_leaves_the_system_endpoint_out() {
    let db = TestDb::demo().await;
    db.store
        .write_setting("dev@igny8.com", "aws-admin", "openai", None, |cur| {
            let mut c = cur.unwrap().config.clone();
            c["base_url"] = serde_json::json!("https://gateway.aws-admin.internal/v1");
            (c, true)
        })
        .await
        .unwrap();
    let mut model = console(&db, Some("dev@igny8.com"), (100, 30)).await;
    select(&db, &mut model, "paid-2").await;
    keys(&db.store, &mut model, &["e"]).await;
    let text = screen(&model);
    assert!(text.contains("(prefilled from aws-admin)") && text.contains("gpt-4o-mini  (from aws-admin)"), "{text}");
    assert!(!text.contains("gateway.aws-admin"), "the system endpoint is not copied: {text}");
    assert!(text.contains("base_url not copied from aws-admin"), "and the form says so: {text}");
    snapshots(&db, &mut model, "prefill_marked").await;
    update(&mut model, Msg::Paste("sk-paid2-own-key-000000000000000".into()));
    keys(&db.store, &mut model, &["ctrl-s", "enter"]).await;
    assert_eq!(stage(&model), "none");
    let own = db.store.setting("paid-2", "openai").await.unwrap().setting.unwrap();
    assert!(own.config.get("base_url").is_none(), "{:?}", own.config.get("base_url"));
    assert_eq!(own.config["model"], "gpt-4o-mini");
}

/// Issue 22 point 3: an open lint list is not re-run on every change (a
/// whole-database read) but says it is stale after one, until ctrl-r reads
/// it again.
#[tokio::test]
async fn an_open_lint_list_says_it_is_stale_after_a_psql_update_until_read_again() {
    let db = TestDb::demo().await;
    let mut model = console(&db, Some("dev@igny8.com"), (100, 30)).await;
    keys(&db.store, &mut model, &["L"]).await;
    assert!(matches!(model.overlay, Some(keyfall::app::Overlay::Lint(_))), "lint is open");
    assert!(!screen(&model).contains("settings changed since"), "{}", screen(&model));
    let change = heard(&db, PSQL_MAX_TOKENS).await;
    deliver(&db, &mut model, change).await;
    let text = screen(&model);
    assert!(text.contains("settings changed since these findings were read"), "{text}");
    keys(&db.store, &mut model, &["ctrl-r"]).await;
    let text = screen(&model);
    assert!(matches!(model.overlay, Some(keyfall::app::Overlay::Lint(_))), "still open, read again");
    assert!(!text.contains("settings changed since"), "{text}");
}
