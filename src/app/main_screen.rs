//! The main screen: the accounts list (every account with its place in the
//! chain, its status and one marker per integration type), the setting
//! pane (`setting_pane`) and the resolve-as panel (`resolve_panel`), with
//! the filter typed into the list. Its keys — moving, tabs, opening the
//! other screens, copying — and the accounts list's view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::access::{may_modify, may_view, may_view_account};
use super::keymap::{Action, Screen};
use super::model::{Cmd, Model, Outcome, load_visible};
pub use super::state::main::*;
use super::widgets::{Theme, circled, moved, movement, pane_block, typed_char};
use super::{resolve_panel, setting_pane};
use crate::domain::Account;
use crate::domain::registry;
use crate::domain::resolve::resolve_type;
use crate::domain::text::visible;
use serde_json::Value;

/// Whether a main-screen action can do something here and now (the footer
/// offers only those; help lists every key).
pub(super) fn available(model: &Model, action: Action) -> bool {
    let account = model.selected_account();
    let ty = model.current_type();
    let own = account.and_then(|a| model.world.settings.get(&(a.id, ty.clone())));
    let writable = || account.is_some_and(|a| may_modify(model, a).is_ok()) && registry::spec(&ty).is_some();
    // As of a moment: read-only, and Esc returns to now.
    if let Some(available) = super::time_travel::available(model, action) {
        return available;
    }
    match action {
        Action::Edit => writable(),
        Action::Delete => own.is_some() && writable(),
        Action::Reveal => {
            own.and_then(|s| s.config.get("apiKey")).and_then(Value::as_str).is_some_and(|k| !k.is_empty())
                && writable()
        }
        Action::ChainPolicy => {
            model.session.access.read_only.is_none()
                && model
                    .session
                    .access
                    .operator
                    .as_ref()
                    .is_some_and(|o| o.is_active && (o.is_superuser || o.role == crate::domain::model::Role::Developer))
        }
        Action::TestConnection => model.session.access.operator.is_some(),
        Action::Audit => account.is_some_and(|a| may_view(model, &a.slug).is_ok()),
        Action::Lint => model.world.chain.first().is_none_or(|e| may_view(model, &e.slug).is_ok()),
        // Esc clears the filter, else closes the permissions view.
        Action::Cancel => !model.accounts.filter.is_empty() || model.resolve.show_permissions,
        Action::Tab(n @ 1..) => (n as usize) < model.tabs().len(),
        _ => true,
    }
}

/// A main-screen key: its own work, or another screen to open (the
/// router opens it).
pub(super) fn key(model: &mut Model, action: Option<Action>) -> Outcome {
    let Some(action) = action else {
        return Outcome::Done(Vec::new());
    };
    // As of a moment: read-only (every write says why), Esc returns to now.
    if let Some(cmds) = super::time_travel::intercept(model, Screen::Main, Some(action)) {
        return cmds.into();
    }
    if opens_a_screen(action) {
        return Outcome::Open(action);
    }
    act(model, action).into()
}

/// The actions that open another screen.
fn opens_a_screen(action: Action) -> bool {
    matches!(
        action,
        Action::PickUser
            | Action::PickFunction
            | Action::Edit
            | Action::Reveal
            | Action::Audit
            | Action::ChainPolicy
            | Action::Lint
            | Action::TestConnection
            | Action::Delete
            | Action::Palette
            | Action::AsOf
            | Action::KeyHistory
    )
}

fn act(model: &mut Model, action: Action) -> Vec<Cmd> {
    let page = model.account_rows();
    if let Some(delta) = movement(action, page) {
        return match model.main.focus {
            Pane::Resolve => {
                let len = resolve_panel::resolve_lines(model) as usize;
                let rows = resolve_panel::resolve_rows(model) as usize;
                let max = len.saturating_sub(rows);
                model.resolve.scroll = moved(model.resolve.scroll as usize, delta, max + 1) as u16;
                Vec::new()
            }
            Pane::Setting => {
                let len = setting_pane::setting_lines_count(model) as usize;
                let rows = setting_pane::setting_rows(model) as usize;
                let max = len.saturating_sub(rows);
                model.main.setting_scroll = moved(model.main.setting_scroll as usize, delta, max + 1) as u16;
                Vec::new()
            }
            Pane::Accounts => {
                let before = model.accounts.selected_index();
                model.accounts.move_by(delta);
                if model.accounts.selected_index() != before {
                    model.main.setting_scroll = 0;
                }
                load_visible(model)
            }
        };
    }
    match action {
        Action::NextPane => {
            model.main.focus = model.main.focus.next();
            Vec::new()
        }
        Action::PrevPane => {
            model.main.focus = model.main.focus.prev();
            Vec::new()
        }
        Action::Filter => {
            model.accounts.filtering = true;
            model.main.focus = Pane::Accounts;
            Vec::new()
        }
        Action::NextTab => {
            model.main.tab = (model.main.tab + 1) % model.tabs().len();
            model.main.setting_scroll = 0;
            Vec::new()
        }
        Action::PrevTab => {
            let n = model.tabs().len();
            model.main.tab = (model.main.tab + n - 1) % n;
            model.main.setting_scroll = 0;
            Vec::new()
        }
        Action::Tab(n) => {
            let index = n as usize;
            if index < model.tabs().len() {
                model.main.tab = index;
                model.main.setting_scroll = 0;
            }
            Vec::new()
        }
        Action::Permissions => {
            model.resolve.show_permissions = !model.resolve.show_permissions;
            model.resolve.scroll = 0;
            if model.resolve.email.is_none() {
                let key = model.keymap.first_key(Screen::Main, Action::PickUser).unwrap_or("u").to_string();
                model.notice = Some(format!("pick a user first ({key})"));
            }
            Vec::new()
        }
        Action::Refresh => {
            model.requests.refresh();
            let cmds = model.start();
            model.notice = Some("reloading…".into());
            cmds
        }
        Action::Copy => copy_selection(model),
        Action::Cancel => {
            if !model.accounts.filter.is_empty() {
                model.accounts.set_filter(String::new());
                return load_visible(model);
            }
            if model.resolve.show_permissions {
                model.resolve.show_permissions = false;
                model.resolve.scroll = 0;
            }
            Vec::new()
        }
        Action::Accept => {
            if model.main.focus == Pane::Accounts {
                model.main.focus = Pane::Setting;
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

pub(super) fn filter_key(model: &mut Model, key: &str, action: Option<Action>) -> Vec<Cmd> {
    match action {
        Some(Action::Cancel) => {
            model.accounts.filtering = false;
            model.accounts.set_filter(String::new());
        }
        Some(Action::Accept) => model.accounts.filtering = false,
        Some(a) => {
            if let Some(delta) = movement(a, model.account_rows()) {
                model.accounts.move_by(delta);
            }
        }
        None if key == "backspace" => {
            let mut f = model.accounts.filter.clone();
            f.pop();
            model.accounts.set_filter(f);
        }
        None => {
            if let Some(c) = typed_char(key) {
                let f = format!("{}{c}", model.accounts.filter);
                model.accounts.set_filter(f);
            }
        }
    }
    load_visible(model)
}

/// Ask the runtime to put `text` on the clipboard, and say what was copied.
pub(super) fn copy(model: &mut Model, what: String, text: crate::domain::Secret) -> Vec<Cmd> {
    let request = model.request();
    model.notice = Some(format!("copied {what} to your clipboard (OSC 52; your terminal must allow it)"));
    vec![Cmd::Copy { request, what, text }]
}

/// `y` on the main screen: the selected account's slug, the fingerprint of
/// the key shown in the setting pane, or the resolve-as trace as text.
fn copy_selection(model: &mut Model) -> Vec<Cmd> {
    use crate::domain::Secret;
    match model.main.focus {
        Pane::Accounts => match model.selected_account().map(|a| a.slug.clone()) {
            Some(slug) => {
                copy(model, format!("the slug {}", crate::domain::text::visible_short(&slug, 40)), Secret::new(slug))
            }
            None => Vec::new(),
        },
        Pane::Setting => {
            let Some(account) = model.selected_account().cloned() else { return Vec::new() };
            let ty = model.current_type();
            let hop = crate::domain::resolve::resolve_type(&model.world, Some(&account), &ty);
            let shown = hop.answered_by.clone().unwrap_or_else(|| account.slug.clone());
            if [account.slug.as_str(), shown.as_str()].iter().any(|slug| may_view(model, slug).is_err()) {
                model.notice = Some("not yours to view under this policy".into());
                return Vec::new();
            }
            let owner = match model.world.settings.get(&(account.id, ty.clone())) {
                Some(_) => Some(account.id),
                None => hop.answered_by.as_ref().and_then(|slug| {
                    model.world.chain.iter().find(|e| &e.slug == slug).and_then(|e| e.account.as_ref()).map(|a| a.id)
                }),
            };
            let key = owner
                .and_then(|id| model.world.settings.get(&(id, ty.clone())))
                .and_then(|s| s.config.get("apiKey"))
                .and_then(serde_json::Value::as_str)
                .filter(|k| !k.is_empty())
                // As of a moment the config holds a masked fingerprint.
                .map(super::time_travel::key_fingerprint);
            match key {
                Some(fp) => copy(model, format!("the key's fingerprint {fp}"), Secret::new(fp)),
                None => {
                    model.notice = Some("no key here to copy the fingerprint of".into());
                    Vec::new()
                }
            }
        }
        Pane::Resolve => {
            let text = resolve_panel::resolve_plain(model);
            copy(model, "the resolve-as panel as text".into(), Secret::new(text))
        }
    }
}

/// One symbol per registry type: how an account stands for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Its own setting answers.
    Own,
    /// It has a setting, but it is skipped and something else answers.
    OwnSkipped,
    /// No own setting; inherits from the chain.
    Inherits,
    /// Nothing answers (including a second hop that finds nothing).
    Nothing,
    /// Not loaded yet.
    Unknown,
    /// The policy does not let the operator view this account's settings,
    /// or those of the account that answers for it: nothing is said.
    Hidden,
}

pub fn marker(model: &Model, account: &Account, integration_type: &str) -> Marker {
    // Only what the policy lets the operator view, as in the setting pane:
    // not even whether a system account has settings.
    if may_view_account(model, account).is_err() {
        return Marker::Hidden;
    }
    if !model.is_loaded(account.id) {
        return Marker::Unknown;
    }
    let hop = resolve_type(&model.world, Some(account), integration_type);
    if let Some(by) = hop.answered_by.as_deref()
        && by != account.slug
        && may_view(model, by).is_err()
    {
        return Marker::Hidden;
    }
    let has_own = model.world.settings.contains_key(&(account.id, integration_type.to_string()));
    match (hop.is_resolved(), hop.answered_by.as_deref() == Some(account.slug.as_str()), has_own) {
        (false, _, _) => Marker::Nothing,
        (true, true, _) => Marker::Own,
        (true, false, true) => Marker::OwnSkipped,
        (true, false, false) => Marker::Inherits,
    }
}

/// The accounts list.
pub fn draw_accounts(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let focused = model.main.focus == Pane::Accounts;
    let pane = &model.accounts;
    // While only the first page is in, the total is "300+".
    let more = if pane.partial { "+" } else { "" };
    let title = if pane.filter.is_empty() {
        format!(" Accounts {}{more} ", pane.total())
    } else if pane.matching() {
        format!(" Accounts …/{}{more} ", pane.total())
    } else {
        format!(" Accounts {}/{}{more} ", pane.len(), pane.total())
    };
    let block = pane_block(title, focused, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let filter_line = if pane.filtering {
        Line::from(vec![Span::styled("/", t.accent()), Span::raw(visible(&pane.filter).into_owned()), Span::raw("▏")])
    } else if !pane.filter.is_empty() {
        Line::from(vec![Span::styled("/", t.accent()), Span::raw(visible(&pane.filter).into_owned())])
    } else {
        let types: Vec<&str> = registry::TYPES.iter().map(|s| s.column).collect();
        Line::from(Span::styled(format!("{:>w$}", types.join(" "), w = inner.width as usize - 1), t.dim()))
    };
    frame.render_widget(Paragraph::new(filter_line), Rect { height: 1, ..inner });
    let rows = inner.height.saturating_sub(1) as usize;
    let offset = pane.scroll_for(rows);
    let width = inner.width as usize;
    let mut lines = Vec::with_capacity(rows);
    // Names in a column past the longest slug on screen (within half the
    // room), when it leaves a name room enough; else no name column.
    let text_width = width.saturating_sub(2 + 2 * registry::TYPES.len());
    let name_at = pane
        .window(offset, rows)
        .map(|e| visible(&e.account.slug).chars().count() + 1)
        .max()
        .unwrap_or(0)
        .min(text_width / 2);
    let name_at = (text_width.saturating_sub(name_at) >= 20).then_some(name_at);
    for (i, entry) in pane.window(offset, rows).enumerate() {
        let index = offset + i;
        let chain = entry.chain.map(circled).unwrap_or_else(|| " ".into());
        // The chain mark, then slug, name and status (accounts::row_spans),
        // then a marker column per type.
        let mut spans = vec![Span::raw(format!("{chain} "))];
        spans.extend(super::accounts::row_spans(&entry.account, &pane.filter, text_width, name_at, t));
        for spec in &registry::TYPES {
            let m = marker(model, &entry.account, spec.name);
            spans.push(Span::raw(" "));
            spans.push(Span::styled(m.symbol(), m.style(t)));
        }
        let mut line = Line::from(spans);
        if index == pane.selected_index() {
            line = line.style(t.selected(focused));
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines
            .push(Line::from(Span::styled(if pane.total() == 0 { "loading…" } else { "no account matches" }, t.dim())));
    }
    frame.render_widget(Paragraph::new(lines), Rect { y: inner.y + 1, height: inner.height - 1, ..inner });
}

impl Marker {
    fn symbol(self) -> &'static str {
        match self {
            Marker::Own => "●",
            Marker::OwnSkipped => "!",
            Marker::Inherits => "○",
            Marker::Nothing => "✗",
            Marker::Unknown => "·",
            Marker::Hidden => "-",
        }
    }

    fn style(self, t: Theme) -> Style {
        match self {
            Marker::Own => t.ok(),
            Marker::OwnSkipped => t.warn(),
            Marker::Inherits => Style::new(),
            Marker::Nothing => t.bad(),
            Marker::Unknown | Marker::Hidden => t.dim(),
        }
    }
}
