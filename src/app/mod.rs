//! The console's state machine: `update(&mut Model, Msg) -> Vec<Cmd>` is
//! pure and synchronous. It never touches the terminal or the database; it
//! asks for work by returning `Cmd`s, which the runtime (`tui`) executes in
//! background tasks whose replies come back as `Msg`s carrying the request
//! id they answer — a stale reply is dropped (latest wins).
//!
//! In three layers, each importing only the ones below it (no import
//! circle: `layers.rs` checks):
//! - at the bottom, the widget library (`widgets`, `scroll`), the keymap,
//!   the request ids, the model (`model`: `Model`, `Msg`, `Cmd`, `Overlay`,
//!   `Outcome`) and each screen's own state (`state::*`, `accounts`);
//! - in the middle, the screens (`admin`, `audit`, `editor`, `lint_view`,
//!   …): each its keys, its replies and its view, over the model; a step
//!   that belongs to another screen is an `Outcome`, never a call to it;
//! - on top, the routers: `update` here (keys by screen, each reply to the
//!   overlay waiting for its request id: `Overlay::awaits`), `follow` (what
//!   an `Outcome` asks), `mouse` and `view::draw` (the frame).
//!
//! A new screen is its state in `state/`, its keys and view in a file of
//! its own, and one `Overlay` variant: the compiler then asks where it is
//! drawn (`view::draw`), which `Screen` has its keys (`screen_below_help`)
//! and which replies it waits for (`Overlay::awaits`, the reply routes).

mod access;
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod connection_test;
pub mod delete;
pub mod editor;
pub mod endpoint;
mod follow;
pub mod help;
pub mod keymap;
pub mod lint_view;
mod live;
pub mod main_screen;
pub mod messages;
pub mod model;
pub mod mouse;
pub mod palette;
pub mod permissions_view;
pub mod picker;
pub mod request;
pub mod resolve_panel;
pub mod reveal;
pub mod scroll;
pub mod setting_pane;
pub mod state;
pub mod time_travel;
pub mod view;
pub mod widgets;

use crate::domain::Account;
use crate::domain::directory::AccountRow;

pub use access::{Access, decide_access, may_modify, may_test, may_view, may_view_account};
use accounts::status_of;
pub use connection_test::LastTest;
use editor::keys::{editor_key, on_previewed, on_saved, waiting_key};
use follow::follow;
use keymap::{Action, Screen};
pub use main_screen::Pane;
use model::load_visible;
use model::resolve_cmd;
pub use model::{Boot, Cmd, Connection, Model, Msg, Overlay, Session, USER_PAGE};
pub use resolve_panel::ResolvePanel;
use state::editor::Stage;

/// Apply one message; return the work it calls for. Every notice goes to
/// the message log; a notice leaves the footer after a few seconds; a
/// preview starts at its top.
pub fn update(model: &mut Model, msg: Msg) -> Vec<Cmd> {
    let tick = matches!(msg, Msg::Tick { .. });
    let screen = model.screen_below_help();
    let cmds = update_model(model, msg);
    if tick && model.messages.expired(model.now) {
        model.notice = None;
    }
    model.messages.record(model.notice.as_ref(), model.now);
    if model.screen_below_help() != screen {
        model.preview_scroll.reset();
    }
    cmds
}

fn update_model(model: &mut Model, msg: Msg) -> Vec<Cmd> {
    match msg {
        Msg::Key(key) => {
            model.notice = None;
            if let Some(revealed) = model.revealed.take() {
                // Any key hides a revealed key first; copy takes it along
                // (it was confirmed and recorded as a reveal).
                if model.screen() == Screen::Main && model.keymap.action(Screen::Main, &key) == Some(Action::Copy) {
                    return main_screen::copy(model, "the revealed key".into(), revealed.secret);
                }
                return Vec::new();
            }
            on_key(model, &key)
        }
        Msg::Paste(text) => on_paste(model, &text),
        Msg::Resize { width, height } => {
            model.size = (width, height);
            load_visible(model)
        }
        Msg::Filtered(filtered) => {
            if model.accounts.apply(*filtered) {
                load_visible(model)
            } else {
                Vec::new()
            }
        }
        Msg::Tick { now } => {
            model.now = now;
            if model.revealed.as_ref().is_some_and(|r| now >= r.until) {
                model.revealed = None;
            }
            if let Some((at, _)) = model.boot_retry
                && now >= at
            {
                model.boot_retry = None;
                model.requests.refresh();
                return model.start();
            }
            live::apply_pending(model)
        }
        // The past view does not follow live changes: it counts them.
        Msg::Changed(change) if model.time.as_of.is_some() => {
            time_travel::heard(model, change.bulk.unwrap_or(1).max(1) as usize);
            Vec::new()
        }
        Msg::Changed(change) => {
            live::note_change(model, change);
            Vec::new()
        }
        Msg::ListenerLost { error } => {
            model.connection = Connection::Lost;
            model.notice = Some(format!(
                "database connection lost ({}); retrying",
                crate::domain::text::visible_short(&error, 80)
            ));
            Vec::new()
        }
        Msg::ListenerResumed if model.time.as_of.is_some() => {
            model.notice = Some("database connection back (changes made meanwhile are not counted)".into());
            Vec::new()
        }
        Msg::ListenerResumed => {
            // Notices sent while we were away are gone: reload what we show.
            model.notice = Some("database connection back; reloaded".into());
            model.requests.refresh();
            model.start()
        }
        // A preview or a write: to the overlay that asked (nobody waits
        // for a stale one).
        Msg::Previewed { request, impact } => match &model.overlay {
            Some(overlay) if overlay.awaits(request) => match overlay {
                Overlay::ConfirmDelete(_) => delete::previewed(model, request, impact),
                Overlay::Edit(_) => on_previewed(model, request, impact),
                Overlay::Picker(_)
                | Overlay::ConfirmReveal(_)
                | Overlay::Audit(_)
                | Overlay::Admin(_)
                | Overlay::Lint(_)
                | Overlay::ConfirmEndpoint(_)
                | Overlay::Palette(_)
                | Overlay::AsOf(_)
                | Overlay::KeyHistory(_) => Vec::new(),
            },
            _ => Vec::new(),
        },
        Msg::Revealed { request, secret } => reveal::revealed(model, request, secret),
        Msg::AdminPreviewed { request, impact, moves } => admin::previewed(model, request, impact, moves),
        Msg::AdminApplied { request } => admin::applied(model, request),
        Msg::Linted { request, findings, page } => lint_view::loaded(model, request, findings, page),
        Msg::Tested { request, outcome } => connection_test::tested(model, request, outcome),
        Msg::AuditList { request, entries } => audit::loaded(model, request, entries),
        Msg::Saved { request, result } => match &model.overlay {
            Some(overlay) if overlay.awaits(request) => match overlay {
                Overlay::ConfirmDelete(_) => delete::deleted(model, request, result),
                Overlay::Edit(_) => on_saved(model, request, result),
                Overlay::Picker(_)
                | Overlay::ConfirmReveal(_)
                | Overlay::Audit(_)
                | Overlay::Admin(_)
                | Overlay::Lint(_)
                | Overlay::ConfirmEndpoint(_)
                | Overlay::Palette(_)
                | Overlay::AsOf(_)
                | Overlay::KeyHistory(_) => Vec::new(),
            },
            _ => Vec::new(),
        },
        Msg::AuditLoaded { request, entry } => {
            if model.requests.is_stale(request) {
                return Vec::new();
            }
            if let Some(e) = entry {
                model.notice = Some(live::change_notice(&e));
                editor::keys::heard(model, &e);
            }
            Vec::new()
        }
        Msg::Booted { request, boot } => {
            if !model.requests.is_latest(request::Kind::Boot, request) || model.time.as_of.is_some() {
                return Vec::new();
            }
            on_boot(model, request, *boot)
        }
        Msg::IndexLoaded { request, accounts } => {
            if !model.requests.is_latest(request::Kind::Boot, request) || model.time.as_of.is_some() {
                return Vec::new();
            }
            let chain = model.world.chain.clone();
            model.accounts.set_accounts(accounts.into_iter().map(account_of).collect(), &chain);
            model.accounts.partial = false;
            load_visible(model)
        }
        Msg::Settings { request, account_ids, settings } => {
            model.cache.settled(request);
            if model.requests.is_stale(request) {
                return Vec::new();
            }
            model.connection = Connection::Up;
            for id in &account_ids {
                model.world.settings.retain(|(a, _), _| a != id);
                model.cache.loaded.insert(*id);
                if let Some(e) = model.accounts.entry_by_id(*id) {
                    model.world.accounts.insert(*id, e.account.clone());
                }
            }
            for s in settings {
                model.world.settings.insert((s.account_id, s.integration_type.clone()), s);
            }
            editor::keys::settings_loaded(model, &account_ids);
            Vec::new()
        }
        Msg::Resolved { request, subject } => resolve_panel::resolved(model, request, *subject),
        Msg::UsersFound { request, hits } if matches!(model.overlay, Some(Overlay::Palette(_))) => {
            palette::found(model, request, hits)
        }
        Msg::UsersFound { request, hits } => picker::found(model, request, hits),
        Msg::Failed { request, error, unavailable } => on_failed(model, request, &error, unavailable),
        Msg::Copied { .. } => Vec::new(),
        Msg::Mouse(m) => mouse::on_mouse(model, m),
        Msg::HistoryLoaded { request, window, recent } => time_travel::history_loaded(model, request, window, recent),
        Msg::Travelled { request, world } => time_travel::travelled(model, request, *world),
        Msg::KeyHistoryLoaded { request, history } => time_travel::key_history_loaded(model, request, *history),
    }
}

/// A request failed. Only the newest request of each kind may report;
/// a failed boot is retried with backoff (1 s doubling to 30 s).
fn on_failed(model: &mut Model, request: u64, error: &str, unavailable: bool) -> Vec<Cmd> {
    let editing = match &mut model.overlay {
        Some(Overlay::Edit(_)) => editor::keys::failed(model, request, error),
        Some(Overlay::ConfirmDelete(_)) => match delete::failed(model, request, error) {
            Some(true) => true,
            // The preview: the dialog still works and says so.
            Some(false) => return Vec::new(),
            None => false,
        },
        _ => false,
    };
    let editing = editing
        || admin::failed(model, request, error)
        || audit::failed(model, request, error)
        || reveal::failed(model, request, error)
        || connection_test::failed(model, request, error)
        || lint_view::failed(model, request, error)
        || time_travel::failed(model, request, error);
    if editing {
        if unavailable {
            model.connection = Connection::Lost;
        }
        return Vec::new();
    }
    let mut retry = None;
    // Settings requests settle (their accounts may be asked again); then
    // only the newest request of each kind may report.
    let settings = model.cache.settled(request);
    if settings {
        // Said below, unless from before a refresh.
    } else if model.requests.is_latest(request::Kind::Boot, request) {
        let attempt = model.boot_retry.map(|(_, n)| n + 1).unwrap_or(0);
        let wait = chrono::Duration::seconds(1i64 << attempt.min(5)).min(chrono::Duration::seconds(30));
        model.boot_retry = Some((model.now + wait, attempt));
    } else if model.requests.is_latest(request::Kind::UserSearch, request) {
        // A query typed meanwhile is still wanted.
        retry = picker::search_failed(model);
        palette::search_failed(model);
    } else if !model.requests.is_latest(request::Kind::Resolve, request) {
        // An answer nobody waits for any more.
        return Vec::new();
    }
    if model.requests.is_stale(request) {
        return Vec::new();
    }
    if unavailable {
        model.connection = Connection::Lost;
    }
    model.notice = Some(crate::domain::text::visible_short(error, 200));
    retry.map(|query| picker::search_users(model, query)).unwrap_or_default()
}

fn account_of(r: AccountRow) -> Account {
    Account { id: r.id, status: status_of(&r.status), slug: r.slug, name: r.name }
}

fn on_boot(model: &mut Model, request: u64, boot: Boot) -> Vec<Cmd> {
    model.connection = Connection::Up;
    // Rights follow the operator, the policy and the chain as they are now.
    if model.session.access.operator.is_some() {
        let forced = model.session.access.forced.then(|| model.session.access.read_only.clone()).flatten();
        let before = model.session.access.read_only.clone();
        model.session.access = decide_access(&boot.base, forced);
        if model.session.access.read_only != before {
            model.notice = Some(match &model.session.access.read_only {
                Some(why) => format!("your rights changed: read-only now ({why})"),
                None => "your rights changed: you may edit now".to_string(),
            });
        }
    }
    model.policy = boot.base.policy;
    model.functions = boot.functions;
    let chain = boot.base.snapshot.chain.clone();
    // A reload (a live change, a reconnect) keeps the whole index it has
    // until the new one is in: the first page would shrink the list and
    // lose a selection or a filter's matches beyond it.
    let have_whole = model.accounts.total() > 0 && !model.accounts.partial;
    if boot.complete || !have_whole {
        model.accounts.set_accounts(boot.accounts.into_iter().map(account_of).collect(), &chain);
        model.accounts.partial = !boot.complete;
    }
    model.world = boot.base.snapshot;
    model.cache.clear();
    editor::keys::row_moved(model);
    model.boot_retry = None;
    if model.resolve.function.is_none() {
        model.resolve.function = model.functions.first().map(|(f, _)| f.clone());
    }
    let mut cmds = load_visible(model);
    cmds.extend(resolve_cmd(model));
    if !boot.complete {
        cmds.push(Cmd::LoadIndex { request });
    }
    cmds
}

fn on_paste(model: &mut Model, text: &str) -> Vec<Cmd> {
    if let Some(Overlay::Edit(ed)) = &mut model.overlay {
        if matches!(ed.stage, Stage::Editing) {
            ed.paste(text);
        }
        return Vec::new();
    }
    // Only text inputs take pastes; line breaks never become keys.
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if let Some(Overlay::Picker(p)) = &mut model.overlay {
        let query = format!("{}{clean}", p.query);
        return picker::set_query(model, query);
    }
    if let Some(Overlay::Lint(view)) = &mut model.overlay {
        if view.filtering {
            let filter = format!("{}{clean}", view.filter);
            view.set_filter(filter);
        }
        return Vec::new();
    }
    if let Some(Overlay::AsOf(p)) = &mut model.overlay {
        time_travel::paste(p, &clean);
        return Vec::new();
    }
    if let Some(Overlay::Palette(p)) = &mut model.overlay {
        let query = format!("{}{clean}", p.query);
        return palette::set_query(model, query);
    }
    if model.accounts.filtering {
        let filter = format!("{}{clean}", model.accounts.filter);
        model.accounts.set_filter(filter);
        return load_visible(model);
    }
    Vec::new()
}

fn on_key(model: &mut Model, key: &str) -> Vec<Cmd> {
    let screen = model.screen();
    let action = model.keymap.action(screen, key);
    match action {
        Some(Action::Help) if screen != Screen::Help => {
            model.help = Some(help::HelpView::default());
            return Vec::new();
        }
        Some(Action::Quit) => return follow::quit(model),
        Some(Action::Messages) if screen != Screen::Messages => return messages::open(model),
        Some(a)
            if matches!(screen, Screen::SavePreview | Screen::Delete | Screen::ChainPolicyPreview)
                && model.preview_scroll.key(a) =>
        {
            return Vec::new();
        }
        _ => {}
    }
    match screen {
        Screen::AsOf => time_travel::picker_key(model, key, action),
        Screen::KeyHistory => time_travel::key_history_key(model, action),
        Screen::Help => help::key(model, action),
        Screen::Messages => messages::key(model, action),
        Screen::Main => {
            let outcome = main_screen::key(model, action);
            follow(model, outcome)
        }
        Screen::Filter if matches!(model.overlay, Some(Overlay::Lint(_))) => lint_view::filter_key(model, key, action),
        Screen::Filter => main_screen::filter_key(model, key, action),
        Screen::Picker => picker::key(model, key, action),
        Screen::Palette => {
            let outcome = palette::key(model, key, action);
            follow(model, outcome)
        }
        Screen::Editor | Screen::SavePreview | Screen::Conflict | Screen::Merge => editor_key(model, key, action),
        Screen::Confirm => match &model.overlay {
            Some(Overlay::ConfirmReveal(_)) => reveal::key(model, action),
            Some(Overlay::ConfirmEndpoint(_)) => endpoint::key(model, action),
            Some(Overlay::Admin(_)) => admin::key(model, action),
            _ => editor_key(model, key, action),
        },
        Screen::Delete => delete::key(model, action),
        Screen::Waiting => match &model.overlay {
            Some(Overlay::Admin(_)) => admin::waiting_key(model, action),
            _ => waiting_key(model, action),
        },
        Screen::Audit => {
            let outcome = audit::key(model, action);
            follow(model, outcome)
        }
        Screen::Lint => lint_view::key(model, action),
        Screen::ChainPolicy | Screen::ChainPolicyPreview => admin::key(model, action),
    }
}
