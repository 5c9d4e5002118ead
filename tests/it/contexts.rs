//! Jump and point (issue 22, points 7 and 9): named databases in one config
//! file (`--context`, `KEYFALL_CONTEXT`, `keyfall contexts`, `:ctx NAME` in
//! the console), the `:` palette, and the mouse.

use std::time::Duration;

use keyfall::app::mouse::{Mouse, MouseKind};
use keyfall::app::{Model, Msg, update, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::cli::keyfall_with;
use crate::console::{console_with, scrub};
use crate::support::{TestDb, drive};

use crate::pty::common as pty;

/// An app whose tables are not keyfall's: attached, it has its own mapping.
const APP: &str = "
CREATE TABLE tenant (id bigserial PRIMARY KEY, slug text NOT NULL UNIQUE, name text NOT NULL,
                     status text NOT NULL DEFAULT 'active');
CREATE TABLE member (id bigserial PRIMARY KEY, email text NOT NULL, role text NOT NULL DEFAULT 'owner',
                     is_superuser boolean NOT NULL DEFAULT false, is_active boolean NOT NULL DEFAULT true,
                     tenant_id bigint REFERENCES tenant (id));
CREATE TABLE app_settings (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES tenant (id),
                           integration_type text NOT NULL, config jsonb NOT NULL DEFAULT '{}',
                           is_active boolean NOT NULL DEFAULT true, created_at timestamptz NOT NULL DEFAULT now(),
                           UNIQUE (account_id, integration_type));
INSERT INTO tenant (slug, name) VALUES ('acme', 'Acme');
INSERT INTO member (email, role, is_superuser, tenant_id) VALUES ('ops@acme.test', 'developer', true, 1);
INSERT INTO app_settings (account_id, integration_type, config) VALUES (1, 'openai', '{\"model\": \"o3-acme\"}');
";

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let file = dir.join("config.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test]
async fn one_config_names_two_databases_and_each_uses_its_own_mapping() {
    let demo = TestDb::demo().await;
    let app = TestDb::bare().await;
    sqlx::raw_sql(APP).execute(&mut app.raw().await).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "default_context = \"demo\"\n\n[mapping.settings]\ntable = \"app_settings\"\ncolumns = {{ updated_at = false }}\n\n\
         [contexts.demo]\nurl = \"{}\"\nlabel = \"DEMO\"\ncolour = \"green\"\n\n\
         [contexts.app]\ndatabase_url = \"{}\"\nlabel = \"APP\"\ncolor = \"red\"\nread_only = true\n\n\
         [contexts.far]\nurl = \"postgresql://ops:hunter2@db.invalid/prod\"\n",
        demo.url(),
        app.url()
    );
    let config = write_config(dir.path(), &text);
    let config = config.to_str().unwrap();

    // The mapping is installed in the app's database through its context.
    let run = keyfall_with(&["--config", config, "--context", "app", "attach", "--yes"], None, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    // The same command, one config, two databases: each answers from its
    // own tables (the flag, the environment, the default).
    let run = keyfall_with(&["--config", config, "--context", "app", "get", "acme", "openai"], None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("o3-acme"), "{}", run.stdout);
    let run = keyfall_with(&["--config", config, "get", "acme", "openai"], None, &[("KEYFALL_CONTEXT", "app")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("o3-acme"), "{}", run.stdout);
    let run = keyfall_with(&["--config", config, "get", "aws-admin", "openai"], None, &[]);
    assert_eq!(run.code, 0, "the default context is the demo: {}", run.stderr);
    assert!(run.stdout.contains("gpt-4o"), "{}", run.stdout);
    let run = keyfall_with(&["--config", config, "--context", "demo", "get", "acme", "openai"], None, &[]);
    assert_eq!(run.code, 2, "acme is not in the demo: {}", run.stderr);

    // The list: every context, the one in force marked, no password.
    let run = keyfall_with(&["--config", config, "--context", "app", "contexts"], None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("hunter2") && run.stdout.contains("postgresql://ops:****@db.invalid/prod"));
    let current: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(current.len(), 1, "{}", run.stdout);
    assert!(current[0].contains("app") && current[0].contains("APP") && current[0].contains("yes"), "{}", run.stdout);
    let run = keyfall_with(&["--config", config, "context", "list", "--json"], None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app", "demo", "far"]);
    assert_eq!(list[1]["current"], true, "the default context is in force");
    assert!(!run.stdout.contains("hunter2"));

    // Errors name what is wrong and where.
    let run = keyfall_with(&["--config", config, "--context", "stage", "report"], None, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown context \"stage\" (contexts: app, demo, far)"), "{}", run.stderr);
    let run =
        keyfall_with(&["--config", config, "--context", "app", "--database-url", &demo.url(), "report"], None, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("give one"), "{}", run.stderr);
    // The command line over the environment: --database-url over KEYFALL_CONTEXT.
    let run = keyfall_with(
        &["--config", config, "--database-url", &demo.url(), "get", "aws-admin", "openai"],
        None,
        &[("KEYFALL_CONTEXT", "app")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bad = write_config(dir.path(), "[contexts.prod]\nurl = 5\n");
    let run = keyfall_with(&["--config", bad.to_str().unwrap(), "contexts"], None, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("contexts.prod.url: expected a string"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
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
    scrub(&out)
}

async fn send(db: &TestDb, model: &mut Model, msg: Msg) {
    let cmds = update(model, msg);
    drive(&db.store, model, cmds).await;
}

async fn type_keys(db: &TestDb, model: &mut Model, keys: &[&str]) {
    for key in keys {
        send(db, model, Msg::Key(key.to_string())).await;
    }
}

#[tokio::test]
async fn the_palette_jumps_to_an_account_a_user_a_screen_and_a_context() {
    let db = TestDb::demo().await;
    for size in [(80, 24), (160, 48)] {
        let mut model = console_with(&db, Some("dev@igny8.com"), false, size).await;
        model.contexts = vec![("here".into(), "HERE".into()), ("other".into(), "OTHER".into())];
        model.context = Some("here".into());
        type_keys(&db, &mut model, &[":", "p", "a", "i", "d"]).await;
        insta::assert_snapshot!(format!("palette_paid_{}x{}", size.0, size.1), screen(&model));
        let first = model.accounts.entries().iter().find(|e| e.account.slug.starts_with("paid")).unwrap();
        let want = first.account.slug.clone();
        type_keys(&db, &mut model, &["enter"]).await;
        assert!(model.overlay.is_none());
        assert_eq!(model.selected_account().map(|a| a.slug.as_str()), Some(want.as_str()));
        assert_eq!(model.main.focus, keyfall::app::Pane::Accounts);
        assert!(screen(&model).contains(&format!("{want} ·")), "the setting pane shows it:\n{}", screen(&model));
    }
    let mut model = console_with(&db, Some("dev@igny8.com"), false, (80, 24)).await;
    model.contexts = vec![("here".into(), "HERE".into()), ("other".into(), "OTHER".into())];
    model.context = Some("here".into());

    // A filter that hides the account is cleared to show it.
    type_keys(&db, &mut model, &["/", "z", "e", "t", "a", "enter", ":", "a", "w", "s", "-", "a", "d", "enter"]).await;
    assert_eq!(model.selected_account().map(|a| a.slug.as_str()), Some("aws-admin"));
    assert!(model.accounts.filter.is_empty());

    // A user by email: resolve-as follows.
    type_keys(&db, &mut model, &[":", "o", "p", "s", "@"]).await;
    let shown = screen(&model);
    assert!(shown.contains("user") && shown.contains("ops@igny8.com"), "{shown}");
    while model.overlay.as_ref().is_some_and(|_| {
        matches!(&model.overlay, Some(keyfall::app::Overlay::Palette(p)) if p.current().is_some_and(|e| e.kind != "user"))
    }) {
        type_keys(&db, &mut model, &["down"]).await;
    }
    type_keys(&db, &mut model, &["enter"]).await;
    assert_eq!(model.resolve.email.as_deref(), Some("ops@igny8.com"));

    // A screen by name.
    type_keys(&db, &mut model, &[":", "l", "i", "n", "t", "enter"]).await;
    assert!(matches!(model.overlay, Some(keyfall::app::Overlay::Lint(_))), "{}", screen(&model));
    type_keys(&db, &mut model, &["esc"]).await;

    // A context: the runtime is asked to move; the one in force is not.
    type_keys(&db, &mut model, &[":", "c", "t", "x", " "]).await;
    let shown = screen(&model);
    assert!(shown.contains("ctx here") && shown.contains("HERE (here)") && shown.contains("ctx other"), "{shown}");
    assert!(!shown.contains("aws-admin"), "ctx narrows to the contexts: {shown}");
    type_keys(&db, &mut model, &["o", "t", "h", "e", "r", "enter"]).await;
    assert_eq!(model.switch_to.as_deref(), Some("other"));
    model.switch_to = None;
    type_keys(&db, &mut model, &[":", "c", "t", "x", " ", "h", "e", "r", "e", "enter"]).await;
    assert_eq!(model.switch_to, None);
    assert!(model.notice.as_deref().is_some_and(|n| n.contains("already in context here")));

    // Esc closes it, a miss says so.
    type_keys(&db, &mut model, &[":", "z", "z", "q", "x", "enter"]).await;
    assert!(model.overlay.is_none() && model.notice.as_deref().is_some_and(|n| n.contains("nothing matches")));
    type_keys(&db, &mut model, &[":", "esc"]).await;
    assert!(model.overlay.is_none());
}

#[tokio::test]
async fn clicks_select_and_focus_and_the_wheel_scrolls() {
    let db = TestDb::demo().await;
    for size in [(80u16, 24u16), (160, 48)] {
        let mut model = console_with(&db, Some("dev@igny8.com"), false, size).await;
        let (a, s, r) = view::panes(size, false);
        let click = |column: u16, row: u16| Msg::Mouse(Mouse { kind: MouseKind::Click, column, row });
        // The third row of the list (inside the border, below the filter line).
        let third = model.accounts.entries()[2].account.slug.clone();
        send(&db, &mut model, click(a.x + 4, a.y + 4)).await;
        assert_eq!(model.selected_account().map(|a| a.slug.clone()), Some(third), "{size:?}");
        send(&db, &mut model, click(r.x + 5, r.y + 3)).await;
        assert_eq!(model.main.focus, keyfall::app::Pane::Resolve);
        // A tab's title: the third tab.
        let line: Vec<char> = screen(&model).lines().nth(s.y as usize).unwrap().chars().collect();
        let column =
            (s.x as usize..line.len()).find(|&i| line[i] == '3' && line.get(i + 1) == Some(&' ')).unwrap() as u16;
        send(&db, &mut model, click(column, s.y)).await;
        assert_eq!(model.main.tab, 2, "{}", screen(&model));
        assert_eq!(model.main.focus, keyfall::app::Pane::Setting);
        // The wheel over the list moves the selection three rows a notch.
        let before = model.accounts.selected_index();
        send(&db, &mut model, Msg::Mouse(Mouse { kind: MouseKind::ScrollDown, column: a.x + 2, row: a.y + 5 })).await;
        assert_eq!(model.accounts.selected_index(), before + 3);
        assert_eq!(model.main.focus, keyfall::app::Pane::Accounts);
        send(&db, &mut model, Msg::Mouse(Mouse { kind: MouseKind::ScrollUp, column: a.x + 2, row: a.y + 5 })).await;
        assert_eq!(model.accounts.selected_index(), before);
        // In the palette: a click on a row jumps there.
        type_keys(&db, &mut model, &[":", "l", "i", "n", "t"]).await;
        let text = screen(&model);
        let row = text.lines().position(|l| l.contains("screen   lint")).expect(&text) as u16;
        send(&db, &mut model, click(size.0 / 2, row)).await;
        assert!(matches!(model.overlay, Some(keyfall::app::Overlay::Lint(_))), "{}", screen(&model));
    }
}

/// The real binary in a pty: `:ctx` moves to the other database (the
/// header's label follows, a read-only context opens read-only), the mouse
/// clicks and scrolls through SGR reports, and capture is off again at exit
/// — not taken at all with --no-mouse.
#[tokio::test]
async fn the_real_console_switches_context_and_takes_the_mouse() {
    let one = TestDb::demo().await;
    let two = TestDb::demo().await;
    let home = tempfile::tempdir().unwrap();
    let text = format!(
        "[contexts.one]\nurl = \"{}\"\nlabel = \"ALPHA\"\ncolour = \"green\"\n\n\
         [contexts.two]\nurl = \"{}\"\nlabel = \"BETA\"\ncolour = \"magenta\"\nread_only = true\n",
        one.url(),
        two.url()
    );
    let config = write_config(home.path(), &text);
    let command = |extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_keyfall"));
        command
            .args(["--config", config.to_str().unwrap(), "--as", "dev@igny8.com"])
            .args(extra)
            .env("TERM", "xterm-256color")
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env("NO_COLOR", "1")
            .env_remove("DATABASE_URL")
            .env_remove("KEYFALL_CONTEXT");
        command
    };
    let wait = Duration::from_secs(30);
    // A row in the second database only: the switch really reconnects.
    sqlx::raw_sql("INSERT INTO accounts (slug, name, status) VALUES ('only-in-two', 'Two', 'active')")
        .execute(&mut two.raw().await)
        .await
        .unwrap();

    for (rows, cols) in [(24u16, 80u16), (48, 160)] {
        let mut term = pty::Pty::open(rows, cols);
        let mut child = term.spawn(command(&["--context", "one"]));
        term.wait_for(wait, |s| s.contains("[ALPHA]") && s.contains("① aws-admin") && s.contains("gpt-4o-mini"));
        assert!(!term.screen().contains("read-only"), "{}", term.screen());
        term.send(b":ctx two\r");
        term.wait_for(wait, |s| s.contains("[BETA]") && s.contains("read-only") && s.contains("① aws-admin"));
        term.send(b"/only-in\r");
        term.wait_for(wait, |s| s.contains("Accounts 1/9") && s.contains("only-in-two ·"));
        term.send(b"\x1b");
        term.wait_for(wait, |s| s.contains("Accounts 9 ") && !s.contains("/only-in"));
        // A click on the third row of the list selects it (1-based cells).
        term.send(b"\x1b[<0;6;6M\x1b[<0;6;6m");
        let third = {
            let screen = term.screen();
            screen.lines().nth(5).unwrap().chars().skip(2).take(20).collect::<String>().trim().to_string()
        };
        let slug = third.split_whitespace().next().unwrap().to_string();
        term.wait_for(wait, |s| s.contains(&format!("{slug} ·")));
        // The wheel over the list moves the selection three rows.
        term.send(b"\x1b[<65;6;6M");
        let fourth_below = {
            let screen = term.screen();
            screen.lines().nth(8).unwrap().chars().skip(2).take(20).collect::<String>()
        };
        let slug = fourth_below.split_whitespace().next().unwrap().to_string();
        term.wait_for(wait, |s| s.contains(&format!("{slug} ·")));
        term.send(b"q");
        let status = term.wait_exit(&mut child, Duration::from_secs(20));
        assert!(status.success(), "{status:?}");
        let out = String::from_utf8_lossy(&term.output);
        assert!(out.contains("\x1b[?1000h") && out.contains("\x1b[?1006h"), "mouse capture taken (SGR)");
        assert!(out.contains("\x1b[?1000l") && out.contains("\x1b[?1006l"), "mouse capture given back");
        assert!(!term.parser.screen().alternate_screen());
    }

    // --no-mouse: capture never taken, and a click is nothing.
    let mut term = pty::Pty::open(24, 80);
    let mut child = term.spawn(command(&["--context", "one", "--no-mouse"]));
    term.wait_for(wait, |s| s.contains("[ALPHA]") && s.contains("gpt-4o-mini"));
    term.send(b"q");
    let status = term.wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(!String::from_utf8_lossy(&term.output).contains("\x1b[?1000h"), "no mouse capture");
}

/// A panic inside the console gives the mouse back too, with the rest of
/// the terminal.
#[tokio::test]
async fn a_panic_in_the_console_gives_the_mouse_back() {
    let db = TestDb::demo().await;
    let home = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_keyfall"));
    command
        .args(["--database-url", &db.url(), "--as", "dev@igny8.com"])
        .env("TERM", "xterm-256color")
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("KEYFALL_TEST_PANIC_KEY", "ctrl-t");
    let mut term = pty::Pty::open(24, 80);
    let before = term.local_modes();
    let mut child = term.spawn(command);
    term.wait_for(Duration::from_secs(30), |s| s.contains("① aws-admin") && s.contains("gpt-4o-mini"));
    term.send(b"\x14");
    let status = term.wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(70), "an internal error");
    let out = String::from_utf8_lossy(&term.output);
    let taken = out.rfind("\x1b[?1000h").expect("mouse capture taken");
    assert!(out[taken..].contains("\x1b[?1000l") && out[taken..].contains("\x1b[?1006l"), "given back");
    assert!(!term.parser.screen().alternate_screen());
    let modes = libc::ICANON | libc::ECHO;
    assert_eq!(term.local_modes() & modes, before & modes, "cooked mode and echo restored");
}
