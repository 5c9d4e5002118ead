//! The audit screen: the history of one setting, newest first, each entry
//! labelled (a revert and an overwrite say so, a reveal is not a change);
//! `enter` reverts the selected entry through the editor. Its state, its
//! keys and its view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::access::may_modify;
use super::keymap::Action;
use super::model::{Cmd, Model, Outcome, Overlay};
pub use super::state::audit::*;
use super::state::editor::Editor;
use super::widgets::{Theme, centered, dialog, wrap_line};
use crate::domain::audit::AuditEntry;
use crate::domain::diff;
use crate::domain::history::Moment;
use crate::domain::registry;
use crate::domain::text::visible_short;

pub(super) fn open(model: &mut Model) -> Vec<Cmd> {
    let Some(account) = model.selected_account().cloned() else { return Vec::new() };
    if let Err(why) = super::access::may_view(model, &account.slug) {
        model.notice = Some(format!("its history is not yours to view under this policy ({why} fails)"));
        return Vec::new();
    }
    let integration_type = model.current_type();
    let request = model.request();
    let cmd = Cmd::LoadAuditList { request, account: account.slug.clone(), integration_type: integration_type.clone() };
    model.overlay = Some(Overlay::Audit(AuditView {
        account,
        integration_type,
        entries: Vec::new(),
        selected: 0,
        request,
        loading: true,
        error: None,
        drawn: Default::default(),
    }));
    vec![cmd]
}

/// The audit view's request failed: it says so instead of waiting forever.
/// The entries arrived (for the view still open).
pub(super) fn loaded(model: &mut Model, request: u64, entries: Vec<AuditEntry>) -> Vec<Cmd> {
    if let Some(Overlay::Audit(view)) = &mut model.overlay
        && view.request == request
    {
        // A live reload keeps the selected entry selected.
        let selected = view.entries.get(view.selected).map(|e| e.id);
        view.selected = selected.and_then(|id| entries.iter().position(|e| e.id == id)).unwrap_or(0);
        view.entries = entries;
        view.loading = false;
        view.error = None;
    }
    Vec::new()
}

/// Something changed live: an open audit view whose account it touched
/// (`touched`) reads its entries again, keeping what is on screen until
/// they arrive.
pub(super) fn follow(model: &mut Model, touched: impl Fn(i64) -> bool) -> Vec<Cmd> {
    let Some(Overlay::Audit(view)) = &model.overlay else { return Vec::new() };
    if !touched(view.account.id) {
        return Vec::new();
    }
    let (account, integration_type) = (view.account.slug.clone(), view.integration_type.clone());
    let request = model.request();
    if let Some(Overlay::Audit(view)) = &mut model.overlay {
        view.request = request;
    }
    vec![Cmd::LoadAuditList { request, account, integration_type }]
}

pub(super) fn failed(model: &mut Model, request: u64, error: &str) -> bool {
    match &mut model.overlay {
        Some(Overlay::Audit(view)) if view.request == request && view.loading => {
            view.loading = false;
            view.error = Some(crate::domain::text::visible_short(error, 200));
            true
        }
        _ => false,
    }
}

/// A key in the audit view: its own work, or the delete dialog (reverting
/// a creation) or the world before an entry, for the router.
pub(super) fn key(model: &mut Model, action: Option<Action>) -> Outcome {
    // As of a moment: only reading; a change from here is refused.
    if let Some(cmds) = super::time_travel::intercept(model, super::keymap::Screen::Audit, action) {
        return cmds.into();
    }
    let page = (model.size.1 as usize).saturating_sub(6) / 2;
    let Some(Overlay::Audit(view)) = &mut model.overlay else { return Outcome::Done(Vec::new()) };
    match action {
        Some(Action::Close) => model.overlay = None,
        Some(Action::Revert) => return revert(model),
        Some(Action::Restore) => return restore(model),
        // `@`: the world just before the selected entry.
        Some(Action::AsOf) => {
            let Some(entry) = view.entries.get(view.selected) else { return Outcome::Done(Vec::new()) };
            let id = entry.id;
            model.notice = Some(format!("reading the world just before #{id}…"));
            return Outcome::Travel(Moment::BeforeEntry(id));
        }
        Some(a) => {
            if let Some(delta) = super::widgets::movement(a, page) {
                view.selected = super::widgets::moved(view.selected, delta, view.entries.len());
            }
        }
        None => {}
    }
    Outcome::Done(Vec::new())
}

/// Revert the selected audit entry: a new change, through the editor (so
/// with its diff, impact preview and version check), that puts back the
/// fields the entry changed. Keys are kept only as fingerprints, so an old
/// key cannot be restored: the current one stays, and the form says so.
fn revert(model: &mut Model) -> Outcome {
    use crate::domain::secret::{fingerprint, is_secret_field};
    let Some(Overlay::Audit(view)) = &model.overlay else { return Outcome::Done(Vec::new()) };
    let Some(entry) = view.entries.get(view.selected).cloned() else { return Outcome::Done(Vec::new()) };
    let account = view.account.clone();
    let ty = view.integration_type.clone();
    let Some(spec) = registry::spec(&ty) else { return Outcome::Done(Vec::new()) };
    if let Err(why) = may_modify(model, &account) {
        model.notice = Some(format!("read-only here: {why}"));
        return Outcome::Done(Vec::new());
    }
    if entry.action == "reveal" {
        model.notice = Some("a reveal changed nothing; there is nothing to revert".into());
        return Outcome::Done(Vec::new());
    }
    if !revertable(&entry) {
        model.notice =
            Some("this entry is about the log itself, not a change of the setting: nothing to revert".into());
        return Outcome::Done(Vec::new());
    }
    let current = model.world.settings.get(&(account.id, ty.clone())).cloned();
    let Some(before) = entry.before.as_ref() else {
        // Reverting a creation is a deletion.
        model.overlay = None;
        return Outcome::Open(Action::Delete);
    };
    let old_config = before.get("config").and_then(|c| c.as_object()).cloned().unwrap_or_default();
    let mut target = current.as_ref().and_then(|s| s.config.as_object().cloned()).unwrap_or_default();
    let mut kept_key = false;
    for change in crate::domain::diff::changes(entry.before.as_ref(), entry.after.as_ref()) {
        let Some(path) = change.field.strip_prefix("config.") else { continue };
        let field = path.split('.').next().unwrap_or(path).to_string();
        match old_config.get(&field) {
            Some(serde_json::Value::String(old)) if is_secret_field(&field) && old.starts_with('#') => {
                let now = target.get(&field).and_then(|v| v.as_str()).map(fingerprint);
                kept_key |= now.as_deref() != Some(old.as_str());
            }
            // The log holds fingerprints (of secrets by name or by shape,
            // at any depth): restoring would write them as values. Keep
            // what is there.
            Some(old)
                if is_secret_field(&field)
                    || crate::domain::secret::contains_secret(old)
                    || crate::domain::secret::contains_fingerprint(old) =>
            {
                kept_key = true;
            }
            Some(old) => {
                target.insert(field, old.clone());
            }
            None => {
                target.remove(&field);
            }
        }
    }
    // Only what the entry changed is put back.
    let active = crate::domain::diff::changes(entry.before.as_ref(), entry.after.as_ref())
        .iter()
        .any(|c| c.field == "is_active")
        .then(|| before.get("is_active").and_then(|v| v.as_bool()))
        .flatten();
    match Editor::open_with(spec, account, current, None, Some(target)) {
        Ok(mut ed) => {
            if let Some(a) = active {
                ed.is_active = a;
            }
            ed.revert_of = Some(entry.id);
            ed.message = Some(if kept_key {
                format!(
                    "reverting entry #{}: the old key cannot be restored (the log keeps fingerprints only); the current key stays",
                    entry.id
                )
            } else {
                format!("reverting entry #{}: review, then ctrl-s", entry.id)
            });
            model.overlay = Some(Overlay::Edit(Box::new(ed)));
        }
        Err(why) => model.notice = Some(why),
    }
    Outcome::Done(Vec::new())
}

/// Restore the setting to how it was just before the selected entry (the
/// entry's `before`, which the log recorded whole): the editor opens with
/// that row, the fields it brings back marked, and goes through the normal
/// preview, version check and save, recorded as a restore. Keys are
/// fingerprints in the log: today's stays unless it is the one of then,
/// or the operator types that key (checked). No row then: a deletion.
fn restore(model: &mut Model) -> Outcome {
    use crate::domain::restore::{self, KeyFate, KeySource};
    let Some(Overlay::Audit(view)) = &model.overlay else { return Outcome::Done(Vec::new()) };
    let Some(entry) = view.entries.get(view.selected).cloned() else { return Outcome::Done(Vec::new()) };
    let account = view.account.clone();
    let ty = view.integration_type.clone();
    let Some(spec) = registry::spec(&ty) else { return Outcome::Done(Vec::new()) };
    if let Err(why) = may_modify(model, &account) {
        model.notice = Some(format!("read-only here: {why}"));
        return Outcome::Done(Vec::new());
    }
    if entry.action == "reveal" || !revertable(&entry) {
        model.notice = Some(format!("entry #{} changed no setting: there is nothing to restore to", entry.id));
        return Outcome::Done(Vec::new());
    }
    let current = model.world.settings.get(&(account.id, ty.clone())).cloned();
    let Some(before) = entry.before.as_ref() else {
        // It did not exist before this entry: restoring is deleting.
        if current.is_none() {
            model.notice = Some(format!("nothing to restore: no setting before #{} and none now", entry.id));
            return Outcome::Done(Vec::new());
        }
        model.overlay = None;
        return Outcome::Open(Action::Delete);
    };
    let Some(past) = before.get("config") else {
        model.notice =
            Some(format!("entry #{} was recorded without the setting's contents: nothing to restore", entry.id));
        return Outcome::Done(Vec::new());
    };
    let plan = match restore::rebuild(past, current.as_ref().map(|s| &s.config), KeySource::KeepToday) {
        Ok(plan) => plan,
        Err(why) => {
            model.notice = Some(why);
            return Outcome::Done(Vec::new());
        }
    };
    let Some(map) = plan.config.as_object().cloned() else {
        model.notice = Some("the config then was not an object: restore it with `keyfall restore`".into());
        return Outcome::Done(Vec::new());
    };
    let missing: Vec<(String, String)> = plan
        .keys
        .iter()
        .filter(|k| matches!(k.fate, KeyFate::KeptToday(_)))
        .map(|k| (k.path.clone(), k.fingerprint.clone()))
        .collect();
    let now = current.as_ref().and_then(|s| s.config.as_object().cloned()).unwrap_or_default();
    match Editor::open_with(spec, account, current, None, Some(map.clone())) {
        Ok(mut ed) => {
            ed.is_active = before.get("is_active").and_then(|v| v.as_bool()).unwrap_or(true);
            // The fields the restore brings back say so.
            let then = format!("just before #{}", entry.id);
            for f in ed.fields.iter_mut().filter(|f| !f.is_secret() && map.get(&f.name) != now.get(&f.name)) {
                f.copied_from = Some(then.clone());
            }
            ed.message = Some(if missing.is_empty() {
                format!("restoring to {then}: review, then ctrl-s")
            } else {
                let fps: Vec<&str> = missing.iter().map(|(_, fp)| fp.as_str()).collect();
                format!(
                    "restoring to {then}: the key of then ({}) cannot be restored from the log; today's stays unless you type that key (checked)",
                    fps.join(", ")
                )
            });
            ed.restore_of = Some(super::state::editor::Restoring { entry: entry.id, missing_keys: missing });
            model.overlay = Some(Overlay::Edit(Box::new(ed)));
        }
        Err(why) => model.notice = Some(why),
    }
    Outcome::Done(Vec::new())
}

pub fn draw(view: &AuditView, frame: &mut Frame, area: Rect, t: Theme) {
    let title =
        format!(" Audit · {} · {} ", visible_short(&view.account.slug, 30), visible_short(&view.integration_type, 20));
    let inner =
        dialog(frame, centered(area, area.width.saturating_sub(4).min(110), area.height.saturating_sub(2)), title, t);
    let mut lines = Vec::new();
    if let Some(error) = &view.error {
        lines.push(Line::from(Span::styled(format!("the audit log could not be read: {error}"), t.bad())));
    } else if view.loading {
        lines.push(Line::from(Span::styled("loading…", t.dim())));
    } else if view.entries.is_empty() {
        lines.push(Line::from(Span::styled("no audit entries for this setting", t.dim())));
    }
    let width = inner.width as usize;
    let mut selected_line = 0;
    let rows: Vec<crate::domain::audit::Row> = view.entries.iter().map(AuditEntry::row).collect();
    let mut entry_of_line: Vec<Option<usize>> = vec![None; lines.len()];
    for (i, e) in view.entries.iter().enumerate() {
        entry_of_line.resize(lines.len(), Some(i.saturating_sub(1)));
        if i == view.selected {
            selected_line = lines.len();
        }
        let version = e.after.as_ref().or(e.before.as_ref()).and_then(|v| v.get("version")).map(|v| format!(" v{v}"));
        // What the entry is, in words: a revert and an overwrite say so
        // (keyfall records them in the actor), a reveal is not a change.
        let (actor, label) = audit_label(e);
        let mut head = Line::from(vec![
            Span::raw(format!("{} ", e.at.format("%Y-%m-%d %H:%M:%S"))),
            Span::styled(format!("{:<26} ", crate::domain::text::identity_short(&actor, 26)), t.accent()),
            Span::raw(format!("{label}{}", version.unwrap_or_default())),
        ]);
        if i == view.selected {
            head = head.style(t.selected(true));
        }
        // Wrapped lines keep their column: under the actor, under the value.
        lines.extend(wrap_line(head, width, 20));
        // An entry about the log itself (capture off or on, detach and
        // attach, the app's tables changed, a redaction…): the words
        // `keyfall audit` uses.
        if let Some(words) = crate::domain::audit::action_words(&e.row(), &rows) {
            let line = Line::from(Span::styled(format!("    {words}"), t.dim()));
            lines.extend(wrap_line(line, width, 4));
            continue;
        }
        if e.action == "reveal" {
            let fp = e
                .after
                .as_ref()
                .and_then(|a| a.get("config"))
                .and_then(|c| c.get("apiKey"))
                .or_else(|| e.after.as_ref().and_then(|a| a.get("apiKey")));
            let fp = fp.map(|v| diff::shown("apiKey", Some(v))).unwrap_or_else(|| "the key".into());
            let line = Line::from(Span::styled(format!("    key {fp} shown in clear; nothing changed"), t.dim()));
            lines.extend(wrap_line(line, width, 8));
            continue;
        }
        for c in diff::changes(e.before.as_ref(), e.after.as_ref()) {
            let line = Line::from(vec![
                Span::styled(format!("    {:<22}", visible_short(&c.field, 22)), t.dim()),
                Span::raw(diff::shown(&c.field, c.before.as_ref())),
                Span::styled(" → ", t.dim()),
                Span::raw(diff::shown(&c.field, c.after.as_ref())),
            ]);
            lines.extend(wrap_line(line, width, 26));
        }
    }
    if let Some(last) = view.entries.len().checked_sub(1) {
        entry_of_line.resize(lines.len(), Some(last));
    }
    let height = inner.height as usize;
    let scroll = selected_line.saturating_sub(height / 3);
    *view.drawn.borrow_mut() = Drawn { area: inner, scroll, entry_of_line };
    frame.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), inner);
}

/// A click on an entry selects it; a click on the entry already selected
/// does what enter does (revert it, through the editor and its preview).
pub(super) fn click(model: &mut Model, column: u16, row: u16) -> Outcome {
    let Some(Overlay::Audit(view)) = &mut model.overlay else { return Outcome::Done(Vec::new()) };
    let entry = {
        let drawn = view.drawn.borrow();
        let a = drawn.area;
        if column < a.x || column >= a.right() || row < a.y || row >= a.bottom() {
            return Outcome::Done(Vec::new());
        }
        drawn.entry_of_line.get(drawn.scroll + (row - a.y) as usize).copied().flatten()
    };
    match entry {
        Some(i) if i != view.selected => {
            view.selected = i;
            Outcome::Done(Vec::new())
        }
        Some(_) => key(model, Some(Action::Revert)),
        None => Outcome::Done(Vec::new()),
    }
}

/// (actor, label) of an audit entry: "dev@… (revert of #12)" is dev@…
/// and "revert of #12"; an overwrite likewise; a reveal is "revealed".
fn audit_label(e: &AuditEntry) -> (String, String) {
    if e.action == "reveal" {
        let for_test =
            e.after.as_ref().and_then(|a| a.get("purpose")).and_then(|p| p.as_str()) == Some("test_connection");
        let what = if for_test { "read the key for a connection test" } else { "revealed the key" };
        return (e.actor.clone(), what.into());
    }
    if let Some((who, rest)) = e.actor.rsplit_once(" (")
        && let Some(what) = rest.strip_suffix(')')
        && (what == "overwrite" || what.starts_with("revert of #") || what.starts_with("restored to as of "))
    {
        return (who.to_string(), format!("{} ({})", visible_short(&e.action, 8), what));
    }
    (e.actor.clone(), visible_short(&e.action, 8))
}

/// Whether an audit-view action can do something now (for the footer).
pub(super) fn available(view: &AuditView, action: Action) -> bool {
    match action {
        Action::Revert | Action::Restore => {
            view.entries.get(view.selected).is_some_and(|e| e.action != "reveal" && revertable(e))
        }
        _ => true,
    }
}

/// Whether an entry is a change of the setting (an entry about the log
/// itself — capture, detach, attach, the app's tables — changed none).
fn revertable(e: &AuditEntry) -> bool {
    crate::domain::audit::action_words(&e.row(), &[]).is_none()
}
