//! Issue 23 point 4: the console goes back in time. `@` opens the "as of"
//! picker; the whole screen then shows the world of that moment, under its
//! own header, read-only; Esc returns to now. From the audit view `@` shows
//! the world just before an entry; `b` opens the blast radius of the key
//! the setting pane shows. Driven through `update()` with the executor's
//! real replies, as `console.rs` does.

use keyfall::app::{Model, Msg, Overlay, update};
use keyfall::domain::change::Change;

use crate::console::{console, keys, screen, snapshots};
use crate::support::{TestDb, drive};

/// psql, as the owner naming its operator, moves aws-admin's OpenAI model
/// to gpt-3.5-turbo; the audit entry of that change.
async fn change_the_model(db: &TestDb) -> i64 {
    let mut psql = db.raw().await;
    sqlx::raw_sql(
        "BEGIN; SET LOCAL keyfall.actor = 'ops@igny8.com';
         UPDATE integration_settings SET config = jsonb_set(config, '{model}', '\"gpt-3.5-turbo\"')
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'aws-admin');
         COMMIT;",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    sqlx::query_scalar("SELECT max(id) FROM keyfall.audit_log WHERE table_name = 'integration_settings'")
        .fetch_one(&mut psql)
        .await
        .unwrap()
}

/// Type `text` into whatever takes text, key by key.
async fn type_text(db: &TestDb, model: &mut Model, text: &str) {
    let typed: Vec<String> = text.chars().map(|c| if c == ' ' { "space".into() } else { c.to_string() }).collect();
    let typed: Vec<&str> = typed.iter().map(String::as_str).collect();
    keys(&db.store, model, &typed).await;
}

fn header(model: &Model) -> String {
    screen(model).lines().next().unwrap_or_default().to_string()
}

/// `2026-12-08 09:14` (a minute, no seconds) also varies run to run.
fn scrub_minutes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("YYYY-MM-DD ") {
        let (head, tail) = rest.split_at(i + "YYYY-MM-DD ".len());
        out.push_str(head);
        let b = tail.as_bytes();
        if b.len() >= 5 && b[0].is_ascii_digit() && b[1].is_ascii_digit() && b[2] == b':' && b[3].is_ascii_digit() {
            out.push_str("hh:mm");
            rest = &tail[5..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn as_of_shows_the_setting_before_a_change_read_only_and_esc_returns_to_now() {
    let db = TestDb::demo().await;
    let entry = change_the_model(&db).await;
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    assert!(screen(&model).contains("gpt-3.5-turbo"), "{}", screen(&model));

    // The picker: where history begins, the last changes.
    keys(&db.store, &mut model, &["@"]).await;
    let text = screen(&model);
    assert!(matches!(model.overlay, Some(Overlay::AsOf(_))), "{text}");
    assert!(text.contains("history since") && text.contains("(attach)"), "{text}");
    assert!(text.contains(&format!("#{entry}")), "the last change is offered: {text}");
    type_text(&db, &mut model, &format!("#{entry}")).await;
    keys(&db.store, &mut model, &["enter"]).await;

    // The world just before it: the old model, the header in its own mark.
    let as_of = model.time.as_of.as_ref().expect("as of a moment");
    assert_eq!(as_of.cut.entry, Some(entry));
    assert!(model.overlay.is_none());
    let head = header(&model);
    assert!(head.contains("as of ") && head.contains(&format!("(#{entry})")), "{head}");
    let text = screen(&model);
    assert!(text.contains("gpt-4o-mini") && !text.contains("gpt-3.5-turbo"), "{text}");
    assert!(model.resolve.resolution.is_some(), "the resolve-as panel resolved the past");
    assert!(!text.contains("sk-demo-FAKE"), "no key in the past view: {text}");
    // The notice saying so has gone (the message log keeps it): the hints.
    update(&mut model, Msg::Tick { now: chrono::Utc::now() + chrono::Duration::seconds(10) });
    let footer = screen(&model).lines().last().unwrap_or_default().to_string();
    assert!(footer.contains("esc now") && footer.contains("@ as of"), "{footer}");
    assert!(!footer.contains("e edit"), "no write key is offered: {footer}");
    snapshots(&db, &mut model, "as_of").await;
    update(&mut model, Msg::Resize { width: 80, height: 24 });

    // Every write key says why it is refused.
    for key in ["e", "d", "v", "c", "t", "L"] {
        keys(&db.store, &mut model, &[key]).await;
        assert!(model.overlay.is_none(), "{key} opened something as of a moment");
        let notice = model.notice.clone().unwrap_or_default();
        assert!(notice.contains("read-only") && notice.contains("returns to now"), "{key}: {notice}");
    }
    keys(&db.store, &mut model, &["e"]).await;
    snapshots(&db, &mut model, "as_of_refused").await;
    update(&mut model, Msg::Resize { width: 80, height: 24 });

    // Live changes keep arriving; the past does not change, it counts them.
    let mut psql = db.raw().await;
    sqlx::query(
        "UPDATE integration_settings SET config = jsonb_set(config, '{model}', '\"gpt-4.1\"')
          WHERE integration_type = 'openai' AND account_id = (SELECT id FROM accounts WHERE slug = 'aws-admin')",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    let change = Change {
        table: "integration_settings".into(),
        op: "UPDATE".into(),
        id: None,
        account_id: model.selected_account().map(|a| a.id),
        audit_id: None,
        bulk: None,
    };
    let cmds = update(&mut model, Msg::Changed(change));
    drive(&db.store, &mut model, cmds).await;
    let cmds = update(&mut model, Msg::Tick { now: chrono::Utc::now() });
    drive(&db.store, &mut model, cmds).await;
    assert_eq!(model.time.as_of.as_ref().map(|a| a.changes_since), Some(1));
    assert!(header(&model).contains(&format!("(#{entry}) +1")), "{}", header(&model));
    assert!(model.notice.as_deref().unwrap_or_default().contains("1 change made since"), "{:?}", model.notice);
    assert!(screen(&model).contains("gpt-4o-mini"), "{}", screen(&model));
    update(&mut model, Msg::Resize { width: 160, height: 48 });
    assert!(header(&model).contains("1 change since"), "{}", header(&model));
    update(&mut model, Msg::Resize { width: 80, height: 24 });

    // Esc returns to now, which has moved on.
    keys(&db.store, &mut model, &["esc"]).await;
    assert!(model.time.as_of.is_none());
    let text = screen(&model);
    assert!(!header(&model).contains("as of"), "{text}");
    assert!(text.contains("gpt-4.1") && !text.contains("gpt-4o-mini"), "{text}");
    // And writes work again.
    keys(&db.store, &mut model, &["e"]).await;
    assert!(matches!(model.overlay, Some(Overlay::Edit(_))), "{}", screen(&model));
}

#[tokio::test]
async fn the_picker_refuses_a_moment_before_history_and_one_it_cannot_read() {
    let db = TestDb::demo().await;
    change_the_model(&db).await;
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    keys(&db.store, &mut model, &["@"]).await;
    type_text(&db, &mut model, "2000-01-01 09:00").await;
    keys(&db.store, &mut model, &["enter"]).await;
    assert!(model.time.as_of.is_none());
    let Some(Overlay::AsOf(picker)) = &model.overlay else { panic!("the picker stays open: {}", screen(&model)) };
    let error = picker.error.clone().unwrap_or_default();
    assert!(error.contains("does not know") && error.contains("history begins"), "{error}");
    assert!(screen(&model).contains("keyfall does not know the world"), "{}", screen(&model));
    for (w, h) in [(80, 24), (160, 48)] {
        update(&mut model, Msg::Resize { width: w, height: h });
        insta::assert_snapshot!(format!("as_of_picker_refused_{w}x{h}"), scrub_minutes(&screen(&model)));
    }
    update(&mut model, Msg::Resize { width: 80, height: 24 });

    // Words it cannot read, and an entry that does not exist.
    for key in std::iter::repeat_n("backspace", 20) {
        keys(&db.store, &mut model, &[key]).await;
    }
    type_text(&db, &mut model, "soon").await;
    keys(&db.store, &mut model, &["enter"]).await;
    let Some(Overlay::AsOf(picker)) = &model.overlay else { panic!("{}", screen(&model)) };
    assert!(picker.error.as_deref().unwrap_or_default().contains("cannot read"), "{:?}", picker.error);
    for key in ["backspace"; 4] {
        keys(&db.store, &mut model, &[key]).await;
    }
    type_text(&db, &mut model, "#999999").await;
    keys(&db.store, &mut model, &["enter"]).await;
    let Some(Overlay::AsOf(picker)) = &model.overlay else { panic!("{}", screen(&model)) };
    assert!(picker.error.as_deref().unwrap_or_default().contains("no audit entry #999999"), "{:?}", picker.error);
    assert!(model.time.as_of.is_none());

    // An ISO time after the change: now's model; `↓` picks the last change.
    keys(&db.store, &mut model, &["esc", "@", "down"]).await;
    let Some(Overlay::AsOf(picker)) = &model.overlay else { panic!("{}", screen(&model)) };
    assert!(picker.input.starts_with('#'), "{}", picker.input);
    keys(&db.store, &mut model, &["esc", "@"]).await;
    let later = (chrono::Utc::now() + chrono::Duration::seconds(1)).format("%Y-%m-%d %H:%M:%S").to_string();
    type_text(&db, &mut model, &later).await;
    keys(&db.store, &mut model, &["enter"]).await;
    assert!(model.time.as_of.as_ref().is_some_and(|a| a.cut.entry.is_none()), "{}", screen(&model));
    assert!(screen(&model).contains("gpt-3.5-turbo"), "{}", screen(&model));
    // `now` in the picker returns too.
    keys(&db.store, &mut model, &["@"]).await;
    type_text(&db, &mut model, "now").await;
    keys(&db.store, &mut model, &["enter"]).await;
    assert!(model.time.as_of.is_none() && model.overlay.is_none(), "{}", screen(&model));
    // Enter alone: just before the newest change listed (the psql update).
    let newest: i64 = db.store.audit(Some("aws-admin"), Some("openai"), None, 1).await.unwrap()[0].id;
    keys(&db.store, &mut model, &["@", "enter"]).await;
    assert_eq!(model.time.as_of.as_ref().and_then(|a| a.cut.entry), Some(newest), "{}", screen(&model));
    assert!(screen(&model).contains("gpt-4o-mini"), "the world before the change: {}", screen(&model));
}

#[tokio::test]
async fn from_an_audit_entry_one_key_shows_the_world_just_before_it() {
    let db = TestDb::demo().await;
    let entry = change_the_model(&db).await;
    let mut model = console(&db, Some("dev@igny8.com"), (100, 30)).await;
    keys(&db.store, &mut model, &["a"]).await;
    assert!(screen(&model).contains("gpt-4o-mini → gpt-3.5-turbo"), "{}", screen(&model));
    keys(&db.store, &mut model, &["@"]).await;
    let as_of = model.time.as_of.as_ref().expect("as of the entry");
    assert_eq!(as_of.cut.entry, Some(entry), "the newest entry is selected first");
    assert!(model.overlay.is_none(), "the audit view closes on the world it shows");
    let text = screen(&model);
    assert!(text.contains("gpt-4o-mini") && !text.contains("gpt-3.5-turbo"), "{text}");
    snapshots(&db, &mut model, "as_of_audit_jump").await;
    // The audit view opens in the past too; reverting there is refused.
    keys(&db.store, &mut model, &["a"]).await;
    assert!(matches!(model.overlay, Some(Overlay::Audit(_))));
    keys(&db.store, &mut model, &["enter"]).await;
    assert!(matches!(model.overlay, Some(Overlay::Audit(_))), "no editor as of a moment");
    assert!(model.notice.as_deref().unwrap_or_default().contains("read-only"), "{:?}", model.notice);
}

#[tokio::test]
async fn the_blast_radius_of_the_key_shown_opens_from_the_setting_pane() {
    let db = TestDb::demo().await;
    let key = "sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9";
    let fp = keyfall::domain::secret::fingerprint(key);
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    assert_eq!(model.selected_account().unwrap().slug, "aws-admin");
    keys(&db.store, &mut model, &["b"]).await;
    let Some(Overlay::KeyHistory(view)) = &model.overlay else { panic!("{}", screen(&model)) };
    assert_eq!(view.fingerprint, fp);
    let history = view.history.as_ref().expect("read");
    assert!(!history.stretches.is_empty());
    let text = screen(&model);
    assert!(text.contains(&fp) && text.contains("aws-admin openai config.apiKey"), "{text}");
    assert!(text.contains("resolved to it"), "{text}");
    assert!(!text.contains(key), "never the key itself: {text}");
    for (w, h) in [(80, 24), (160, 48)] {
        update(&mut model, Msg::Resize { width: w, height: h });
        insta::assert_snapshot!(format!("key_history_{w}x{h}"), scrub_minutes(&screen(&model)));
    }
    update(&mut model, Msg::Resize { width: 80, height: 24 });
    keys(&db.store, &mut model, &["esc"]).await;
    assert!(model.overlay.is_none());

    // As of a moment the key is known by its fingerprint: the same radius.
    let entry = change_the_model(&db).await;
    keys(&db.store, &mut model, &["@"]).await;
    type_text(&db, &mut model, &format!("#{entry}")).await;
    keys(&db.store, &mut model, &["enter", "b"]).await;
    let Some(Overlay::KeyHistory(view)) = &model.overlay else { panic!("{}", screen(&model)) };
    assert_eq!(view.fingerprint, fp);
}

#[tokio::test]
async fn a_moment_across_a_gap_is_refused_in_the_picker_with_the_gap_named() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    let before_gap: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut conn).await.unwrap();
    // Detached, the app changes a user unseen; attached again.
    db.store.detach().await.unwrap();
    sqlx::query("UPDATE users SET role = 'viewer' WHERE email = 'paid2@paid.com'").execute(&mut conn).await.unwrap();
    db.store.install_mapping(&keyfall::store::Mapping::demo()).await.unwrap();
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    keys(&db.store, &mut model, &["@"]).await;
    assert!(screen(&model).contains("gap: detached"), "where history has a gap, it says so: {}", screen(&model));
    type_text(&db, &mut model, &before_gap.format("%Y-%m-%d %H:%M:%S%.6f").to_string()).await;
    keys(&db.store, &mut model, &["enter"]).await;
    let Some(Overlay::AsOf(picker)) = &model.overlay else { panic!("{}", screen(&model)) };
    let error = picker.error.clone().unwrap_or_default();
    assert!(error.contains("gap after it") && error.contains("detached"), "{error}");
    assert!(model.time.as_of.is_none(), "nothing is shown that history cannot vouch for");
}

/// The real binary in a pseudo-terminal: `@`, a moment typed, the past
/// shown, a write refused, Esc back to now.
#[tokio::test]
async fn in_a_real_terminal_the_picker_takes_a_moment_and_esc_returns() {
    use std::time::Duration;
    let db = TestDb::demo().await;
    let entry = change_the_model(&db).await;
    let mut pty = crate::pty::common::Pty::open(24, 80);
    let home = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_keyfall"));
    command
        .args(["--database-url", &db.url(), "--as", "dev@igny8.com"])
        .env("TERM", "xterm-256color")
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path());
    let mut child = pty.spawn(command);
    let wait = Duration::from_secs(30);
    pty.wait_for(wait, |s| s.contains("① aws-admin") && s.contains("gpt-3.5-turbo"));
    pty.send(b"@");
    pty.wait_for(wait, |s| s.contains("history since") && s.contains(&format!("#{entry}")));
    pty.send(format!("#{entry}\r").as_bytes());
    pty.wait_for(wait, |s| s.contains(&format!("(#{entry})")) && s.contains("gpt-4o-mini"));
    pty.send(b"e");
    pty.wait_for(wait, |s| s.contains("read-only; Esc re"));
    pty.send(b"\x1b");
    pty.wait_for(wait, |s| !s.contains(&format!("(#{entry})")) && s.contains("gpt-3.5-turbo"));
    pty.send(b"q");
    let status = pty.wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
}

/// The resolve-as user and the permission checks come from the past too:
/// a user demoted after the moment is shown as they were.
#[tokio::test]
async fn the_permissions_view_as_of_a_moment_judges_the_user_as_they_were() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    sqlx::query("UPDATE users SET role = 'viewer' WHERE email = 'paid2@paid.com'").execute(&mut psql).await.unwrap();
    let entry: i64 = sqlx::query_scalar("SELECT max(id) FROM keyfall.audit_log WHERE table_name = 'users'")
        .fetch_one(&mut psql)
        .await
        .unwrap();
    let mut model = console(&db, Some("dev@igny8.com"), (160, 48)).await;
    keys(&db.store, &mut model, &["u"]).await;
    type_text(&db, &mut model, "paid2@paid.com").await;
    keys(&db.store, &mut model, &["enter", "p"]).await;
    let role = |m: &Model| m.resolve.subject.as_ref().and_then(|s| s.user.as_ref()).map(|u| u.role);
    assert_eq!(role(&model), Some(keyfall::domain::Role::Viewer), "{}", screen(&model));
    let now = screen(&model);
    keys(&db.store, &mut model, &["@"]).await;
    type_text(&db, &mut model, &format!("#{entry}")).await;
    keys(&db.store, &mut model, &["enter"]).await;
    assert_eq!(model.time.as_of.as_ref().and_then(|a| a.cut.entry), Some(entry));
    assert_eq!(role(&model), Some(keyfall::domain::Role::Owner), "as they were: {}", screen(&model));
    assert!(model.resolve.show_permissions && screen(&model).contains("paid2@paid.com"), "{}", screen(&model));
    assert_ne!(screen(&model).lines().skip(1).collect::<Vec<_>>(), now.lines().skip(1).collect::<Vec<_>>());
    // Esc first closes the permissions view, then returns to now.
    keys(&db.store, &mut model, &["esc"]).await;
    assert!(model.time.as_of.is_some() && !model.resolve.show_permissions);
    keys(&db.store, &mut model, &["esc"]).await;
    assert!(model.time.as_of.is_none());
    assert_eq!(role(&model), Some(keyfall::domain::Role::Viewer));
}
