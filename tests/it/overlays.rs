//! Issue 22's last console leftovers, each at 80×24 and at 160×48: the
//! reveal and endpoint questions grow with the terminal; a click selects a
//! row of a picker, the palette or the lint list and a second click opens
//! it, the wheel scrolls them and the message log; lint's tree (level →
//! rule → account); the palette's README picture; `:ctx NAME` through the
//! snapshot harness, the header in the context's label and colour.

use keyfall::app::keymap::Keymap;
use keyfall::app::mouse::{Mouse, MouseKind};
use keyfall::app::{Model, Msg, Overlay, update, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use serde_json::json;

use crate::console::{console, keys, screen, select, snapshots};
use crate::support::{TestDb, drive};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

async fn send(db: &TestDb, model: &mut Model, msg: Msg) {
    let cmds = update(model, msg);
    drive(&db.store, model, cmds).await;
}

async fn resize(db: &TestDb, model: &mut Model, (w, h): (u16, u16)) {
    send(db, model, Msg::Resize { width: w, height: h }).await;
}

fn click(column: u16, row: u16) -> Msg {
    Msg::Mouse(Mouse { kind: MouseKind::Click, column, row })
}

fn wheel(down: bool, column: u16, row: u16) -> Msg {
    let kind = if down { MouseKind::ScrollDown } else { MouseKind::ScrollUp };
    Msg::Mouse(Mouse { kind, column, row })
}

/// The width of the box whose top border holds `title` (corner to corner).
fn box_width(text: &str, title: &str) -> usize {
    let line = text.lines().find(|l| l.contains(title)).unwrap_or_else(|| panic!("no {title:?} box:\n{text}"));
    let chars: Vec<char> = line.chars().collect();
    let left = chars.iter().position(|c| *c == '┌').expect(line);
    let right = chars.iter().rposition(|c| *c == '┐').expect(line);
    right - left + 1
}

/// The words inside the box whose top border holds `title` (nothing
/// drawn beside it), its lines joined.
fn box_text(text: &str, title: &str) -> String {
    let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
    let top = lines.iter().position(|l| l.iter().collect::<String>().contains(title)).expect(title);
    let left = lines[top].iter().position(|c| *c == '┌').expect(title);
    let right = lines[top].iter().rposition(|c| *c == '┐').expect(title);
    let mut words = Vec::new();
    for line in &lines[top + 1..] {
        if line.get(left) == Some(&'└') {
            break;
        }
        let inside: String = line.iter().skip(left + 1).take(right - left - 1).collect();
        words.extend(inside.split_whitespace().map(str::to_string));
    }
    words.join(" ")
}

/// The screen row (0-based) of the first line containing `needle`, and
/// the column where it starts.
fn find(text: &str, needle: &str) -> (u16, u16) {
    find_after(text, "", needle)
}

/// `find`, from the line holding `marker` on (an overlay's first line, so
/// nothing behind it is found).
fn find_after(text: &str, marker: &str, needle: &str) -> (u16, u16) {
    let from = text.lines().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("{marker:?}:\n{text}"));
    let (row, line) = text
        .lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?}:\n{text}"));
    let column = line.chars().take(line.find(needle).unwrap()).count();
    (column as u16, row as u16)
}

/// Point 8: the reveal and the endpoint questions are wider at 160×48 than
/// at 80×24, and every word of them is there at both sizes.
#[tokio::test]
async fn the_reveal_and_endpoint_questions_grow_with_the_terminal() {
    let db = TestDb::demo().await;
    db.store
        .write_setting("dev@igny8.com", "paid-2", "openai", None, |_| {
            (json!({"apiKey": "sk-test-endpoint-not-a-real-key-0001", "base_url": "http://127.0.0.1:9"}), true)
        })
        .await
        .unwrap();
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    keys(&db.store, &mut model, &["v"]).await;
    assert!(matches!(model.overlay, Some(Overlay::ConfirmReveal(_))));
    let mut widths = Vec::new();
    for size in SIZES {
        resize(&db, &mut model, size).await;
        let text = screen(&model);
        widths.push(box_width(&text, " Reveal key "));
        for words in ["Show aws-admin's openai key in clear?", "under your name.", "Any key but yes cancels."] {
            assert!(text.contains(words), "{size:?}: {words:?}\n{text}");
        }
    }
    assert!(widths[1] > widths[0] + 20, "the reveal box grows: {widths:?}");
    keys(&db.store, &mut model, &["n"]).await;
    assert!(model.overlay.is_none());

    resize(&db, &mut model, (80, 24)).await;
    select(&db, &mut model, "paid-2").await;
    keys(&db.store, &mut model, &["t"]).await;
    assert!(matches!(model.overlay, Some(Overlay::ConfirmEndpoint(_))), "{}", screen(&model));
    snapshots(&db, &mut model, "endpoint_question").await;
    let mut widths = Vec::new();
    for size in SIZES {
        resize(&db, &mut model, size).await;
        let text = screen(&model);
        widths.push(box_width(&text, " Send the key there? "));
        let flat = box_text(&text, " Send the key there? ");
        for words in [
            "http://127.0.0.1:9 is plain http on a loopback address",
            "Nothing has been sent yet.",
            "y send anyway / n cancel",
        ] {
            assert!(flat.contains(words), "{size:?}: {words:?}\n{text}");
        }
    }
    assert!(widths[1] > widths[0] + 20, "the endpoint box grows: {widths:?}");
}

/// Point 7: in the pickers, the palette and the lint list a click selects
/// the row under it and a second click (a double-click) opens it as enter
/// would; the wheel scrolls them and the message log.
#[tokio::test]
async fn clicks_select_rows_in_overlays_and_a_second_click_opens() {
    let db = TestDb::demo().await;
    for size in SIZES {
        let mut model = console(&db, Some("dev@igny8.com"), size).await;

        // The AI-function picker: the second function by a click, then picked.
        keys(&db.store, &mut model, &["f"]).await;
        let text = screen(&model);
        let second = model.functions.get(1).map(|(f, _)| f.clone()).expect("two functions");
        let (column, row) = find_after(&text, " AI function ", &format!("{second} "));
        send(&db, &mut model, click(column + 1, row)).await;
        let Some(Overlay::Picker(p)) = &model.overlay else { panic!("{}", screen(&model)) };
        assert_eq!(p.current().map(|i| i.value.clone()), Some(second.clone()), "{size:?}: a click selects");
        send(&db, &mut model, click(column + 1, row)).await;
        assert!(model.overlay.is_none(), "{size:?}: a second click picks\n{}", screen(&model));
        assert_eq!(model.resolve.function.as_deref(), Some(second.as_str()));
        // The wheel moves a picker's selection three rows a notch.
        keys(&db.store, &mut model, &["f"]).await;
        let text = screen(&model);
        let (column, row) = find_after(&text, " AI function ", &format!("{second} "));
        send(&db, &mut model, wheel(true, column, row)).await;
        let Some(Overlay::Picker(p)) = &model.overlay else { panic!() };
        assert_eq!(p.selected, 3.min(p.len() - 1), "{size:?}");
        keys(&db.store, &mut model, &["esc"]).await;

        // The palette: a click on its second row selects it, the second
        // click jumps there.
        keys(&db.store, &mut model, &[":", "p", "a", "i", "d"]).await;
        let text = screen(&model);
        let Some(Overlay::Palette(p)) = &model.overlay else { panic!("{text}") };
        let second = p.shown().get(1).cloned().expect("two matches for paid");
        let (column, row) = find_after(&text, ":paid", &format!("{} ", second.text));
        assert_eq!(row, find(&text, ":paid").1 + 2, "the second row: {text}");
        send(&db, &mut model, click(column, row)).await;
        let Some(Overlay::Palette(p)) = &model.overlay else { panic!("{}", screen(&model)) };
        assert_eq!(p.selected, 1, "{size:?}: one click selects");
        send(&db, &mut model, click(column, row)).await;
        assert!(model.overlay.is_none(), "{size:?}: the second jumps");
        match &second.jump {
            keyfall::app::palette::Jump::Account(id) => assert_eq!(model.selected_account().map(|a| a.id), Some(*id)),
            keyfall::app::palette::Jump::User(email) => assert_eq!(model.resolve.email.as_ref(), Some(email)),
            other => panic!("{other:?}"),
        }

        // Lint: a click on a heading selects it, the second closes it; a
        // finding twice goes to its setting.
        keys(&db.store, &mut model, &["L"]).await;
        let rows = |model: &Model| {
            let Some(Overlay::Lint(view)) = &model.overlay else { panic!("no lint view") };
            view.row_texts()
        };
        let text = screen(&model);
        let (column, row) = find(&text, "▾ L001");
        send(&db, &mut model, click(column, row)).await;
        assert!(rows(&model).contains(&"  ▾ L001 1/1".to_string()), "{:#?}", rows(&model));
        send(&db, &mut model, click(column, row)).await;
        assert!(rows(&model).contains(&"  ▸ L001 1/1".to_string()), "{size:?}: {:#?}", rows(&model));
        let text = screen(&model);
        let (column, row) = find(&text, "no system account answers image_generation");
        send(&db, &mut model, click(column, row)).await;
        assert!(matches!(model.overlay, Some(Overlay::Lint(_))), "one click only selects");
        send(&db, &mut model, click(column, row)).await;
        assert!(model.overlay.is_none(), "{}", screen(&model));
        assert_eq!(model.current_type(), "image_generation");

        // The message log scrolls under the wheel.
        model.main.focus = keyfall::app::Pane::Accounts;
        select(&db, &mut model, "paid-2").await;
        // Sixty notices (more than the log shows at 160×48), each after the
        // one before left the footer.
        for _ in 0..60 {
            keys(&db.store, &mut model, &["v"]).await;
            let later = model.now + chrono::Duration::seconds(9);
            send(&db, &mut model, Msg::Tick { now: later }).await;
        }
        keys(&db.store, &mut model, &["f2"]).await;
        assert!(model.messages.open);
        let before = screen(&model);
        send(&db, &mut model, wheel(false, size.0 / 2, size.1 / 2)).await;
        let after = screen(&model);
        assert_ne!(before, after, "{size:?}: the wheel scrolls the log");
        send(&db, &mut model, wheel(true, size.0 / 2, size.1 / 2)).await;
        assert_eq!(screen(&model), before, "{size:?}: and back");
    }
}

/// Point 5: lint is a tree — level, rule, account — with counts at each
/// level; the errors about no account and the system accounts come first;
/// `/` still filters, down to one tenant's heading.
#[tokio::test]
async fn lint_is_a_tree_of_level_rule_and_account() {
    let db = TestDb::demo().await;
    let mut psql = db.raw().await;
    // 40 tenants whose image_generation names no provider (an L002 each),
    // one of them with a second finding of the same rule (runware too).
    sqlx::raw_sql(
        "INSERT INTO accounts (slug, name) SELECT 'bulk-' || lpad(i::text, 3, '0'), 'Firm ' || i || ' Corp'
           FROM generate_series(1, 40) i;
         INSERT INTO integration_settings (account_id, integration_type, config, is_active)
         SELECT id, 'image_generation', '{\"model\": \"dall-e-3\"}', true FROM accounts WHERE slug LIKE 'bulk-%';",
    )
    .execute(&mut psql)
    .await
    .unwrap();
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    keys(&db.store, &mut model, &["L"]).await;
    let rows = |model: &Model| {
        let Some(Overlay::Lint(view)) = &model.overlay else { panic!("no lint view") };
        view.row_texts()
    };
    let got = rows(&model);
    assert_eq!(got[0], "▾ error 42/42", "{got:#?}");
    assert_eq!(got[1], "  ▾ L006 1/1", "the system-wide error first: {got:#?}");
    assert!(got[2].starts_with("no system account answers image_generation"), "{got:#?}");
    assert_eq!(got[3], "  ▾ L001 1/1", "then the system account's: {got:#?}");
    assert_eq!(got[5], "  ▸ L002 40/40", "then the tenants', closed: {got:#?}");
    assert_eq!(got[6], "▾ warning 1/1", "{got:#?}");
    snapshots(&db, &mut model, "lint_tree").await;
    resize(&db, &mut model, (80, 24)).await;
    // The tenants' rule opened: each account's one finding on its level.
    keys(&db.store, &mut model, &["g", "j", "j", "j", "j", "j"]).await;
    let text = screen(&model);
    assert!(text.contains("L002 a consumer's provider does not resolve: 40 errors about 40 tenants"), "{text}");
    keys(&db.store, &mut model, &["enter"]).await;
    let got = rows(&model);
    assert_eq!(got[5], "  ▾ L002 40/40");
    assert!(got[6].starts_with("bulk-001 image_generation names no provider"), "{got:#?}");
    // A filter by a tenant's name finds its finding, counts say of how many.
    keys(&db.store, &mut model, &["/", "f", "i", "r", "m", "space", "1", "7", "space", "enter"]).await;
    let got = rows(&model);
    assert_eq!(got, ["▾ error 1/42", "  ▾ L002 1/40", "bulk-017 image_generation names no provider: the app skips it"]);
    let text = screen(&model);
    assert!(text.contains("1 of 40"), "{text}");
}

/// The `:` palette's README picture: accounts by slug or name, the screens.
#[tokio::test]
async fn the_palette_has_a_picture() {
    let db = TestDb::demo().await;
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    keys(&db.store, &mut model, &[":", "p", "a", "i", "d"]).await;
    assert!(matches!(model.overlay, Some(Overlay::Palette(_))));
    snapshots(&db, &mut model, "palette").await;
    let text = screen(&model);
    assert!(text.contains("account  paid-2"), "{text}");
}

/// Point 9 through the snapshot harness: `:ctx two` asks the runtime to
/// move, which opens the context as `--context two` would (the function
/// the console calls); the header shows the new context's label in its
/// colour, and read-only when the context is.
#[tokio::test]
async fn ctx_switches_and_the_header_takes_the_contexts_label_and_colour() {
    let one = TestDb::demo().await;
    let two = TestDb::demo().await;
    let context = |name: &str, db: &TestDb, label: &str, color: &str, read_only: bool| keyfall::config::Context {
        name: name.into(),
        url: keyfall::config::DatabaseUrl::new(db.url()),
        label: Some(label.into()),
        color: Some(color.into()),
        read_only,
    };
    let config = keyfall::config::Config {
        database_url: None,
        operator: Some("dev@igny8.com".into()),
        data_dir: std::env::temp_dir(),
        state_dir: std::env::temp_dir(),
        label: None,
        color: None,
        read_only: false,
        keys: Default::default(),
        mapping: None,
        resolution: Default::default(),
        file: None,
        login: None,
        statement_timeout: None,
        contexts: vec![context("one", &one, "ALPHA", "green", false), context("two", &two, "BETA", "magenta", true)],
        context: None,
        read_only_asked: false,
        mouse: true,
    };
    let open = |name: &'static str| {
        let config = config.clone();
        async move {
            let (store, mut model) =
                keyfall::cli::console_context(&config, name, Keymap::default_keys()).await.expect("open the context");
            model.session.database = format!("localhost/{name}");
            model.session.no_color = true;
            let cmds = update(&mut model, Msg::Resize { width: 80, height: 24 });
            drive(&store, &mut model, cmds).await;
            let cmds = model.start();
            drive(&store, &mut model, cmds).await;
            (store, model)
        }
    };
    let (store, mut model) = open("one").await;
    assert_eq!(model.context.as_deref(), Some("one"));
    let text = screen(&model);
    assert!(text.starts_with(" keyfall [ALPHA] localhost/one") && !text.contains("read-only"), "{text}");
    assert_eq!(label_colour(&mut model, "[ALPHA]"), Some(Color::Green));
    for key in [":", "c", "t", "x", "space", "t", "w", "o", "enter"] {
        let cmds = update(&mut model, Msg::Key(key.into()));
        drive(&store, &mut model, cmds).await;
    }
    assert_eq!(model.switch_to.as_deref(), Some("two"), "{}", screen(&model));
    store.close().await;

    let (_store, mut model) = open("two").await;
    assert_eq!(model.context.as_deref(), Some("two"));
    for size in SIZES {
        resize(&two, &mut model, size).await;
        let text = screen(&model);
        let header = text.lines().next().unwrap();
        assert!(header.starts_with(" keyfall [BETA] localhost/two"), "{header}");
        assert!(header.contains("read-only"), "a read_only context opens read-only: {header}");
        assert_eq!(label_colour(&mut model, "[BETA]"), Some(Color::Magenta), "{size:?}");
    }
    snapshots(&two, &mut model, "ctx_two").await;
}

/// The background colour of the header's `label` cells, drawn in colour.
fn label_colour(model: &mut Model, label: &str) -> Option<Color> {
    model.session.no_color = false;
    let (w, h) = model.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| view::draw(model, f)).unwrap();
    model.session.no_color = true;
    let buffer = terminal.backend().buffer();
    let header: String = (0..w).map(|x| buffer[(x, 0)].symbol().to_string()).collect();
    let at = header.chars().take(header.find(label)?).count() as u16;
    let colours: Vec<Option<Color>> =
        (at..at + label.chars().count() as u16).map(|x| buffer[(x, 0)].bg.into()).collect();
    colours.iter().all(|c| *c == colours[0]).then_some(colours[0]).flatten()
}

/// The stale lint list names the key that reads it again from the keymap
/// in force (here rebound to f5), and that key does.
#[tokio::test]
async fn the_stale_lint_hint_names_the_refresh_key_of_the_keymap() {
    let db = TestDb::demo().await;
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    let rebound = std::collections::BTreeMap::from([("lint.refresh".to_string(), vec!["f5".to_string()])]);
    model.keymap = Keymap::new(&rebound).unwrap();
    keys(&db.store, &mut model, &["L"]).await;
    let Some(Overlay::Lint(view)) = &mut model.overlay else { panic!("no lint view") };
    view.stale = true;
    for size in SIZES {
        resize(&db, &mut model, size).await;
        let flat = screen(&model).replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("settings changed since these findings were read: f5 reads them again"), "{flat}");
        assert!(!flat.contains("ctrl-r"), "{flat}");
    }
    keys(&db.store, &mut model, &["f5"]).await;
    let Some(Overlay::Lint(view)) = &model.overlay else { panic!("still open") };
    assert!(!view.stale, "read again");
}

/// `:ctx` with no contexts in the config says how to name some, at both
/// sizes, instead of "no match".
#[tokio::test]
async fn ctx_without_contexts_says_how_to_name_them() {
    let db = TestDb::demo().await;
    let mut model = console(&db, Some("dev@igny8.com"), (80, 24)).await;
    keys(&db.store, &mut model, &[":", "c", "t", "x"]).await;
    for size in SIZES {
        resize(&db, &mut model, size).await;
        let text = box_text(&screen(&model), " Jump to: ");
        assert!(text.contains("no contexts: add [contexts.NAME] to the config file"), "{text}");
        assert!(!text.contains("no match"), "{text}");
    }
    keys(&db.store, &mut model, &["enter"]).await;
    assert!(model.switch_to.is_none() && model.overlay.is_none());
}

/// The audit list answers the mouse too: a click selects an entry, a
/// second click on it does what enter does (revert, through the editor).
#[tokio::test]
async fn a_click_selects_an_audit_entry_and_a_second_click_reverts_it() {
    let db = TestDb::demo().await;
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
    for size in SIZES {
        let mut model = console(&db, Some("dev@igny8.com"), size).await;
        keys(&db.store, &mut model, &["a"]).await;
        let selected = |model: &Model| {
            let Some(Overlay::Audit(view)) = &model.overlay else { panic!("no audit view:\n{}", screen(model)) };
            assert!(view.entries.len() >= 2, "two entries: {:?}", view.entries);
            view.selected
        };
        assert_eq!(selected(&model), 0, "the newest entry first");
        // The older entry (the demo's insert) by its line, below the newest.
        let text = screen(&model);
        let newest = find(&text, "ops@igny8.com").1;
        let older = text
            .lines()
            .enumerate()
            .skip(newest as usize + 1)
            .find(|(_, l)| l.contains(" insert") || l.contains(" update"))
            .map(|(i, _)| i as u16)
            .unwrap_or_else(|| panic!("{size:?}: an older entry under the newest:\n{text}"));
        let column = find(&text, "ops@igny8.com").0;
        send(&db, &mut model, click(column, older)).await;
        assert_eq!(selected(&model), 1, "{size:?}: a click selects the entry under it\n{}", screen(&model));
        // A click outside the list does nothing.
        send(&db, &mut model, click(0, 0)).await;
        assert_eq!(selected(&model), 1, "{size:?}");
        // Back to the newest, then a second click on it reverts it.
        send(&db, &mut model, click(column, newest)).await;
        assert_eq!(selected(&model), 0, "{size:?}");
        send(&db, &mut model, click(column, newest)).await;
        assert_eq!(crate::console::stage(&model), "editing", "{size:?}: the second click reverts, as enter does");
        keys(&db.store, &mut model, &["esc"]).await;
    }
}
