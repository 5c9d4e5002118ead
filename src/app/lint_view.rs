//! The lint view (DESIGN §8 in the console): every finding, `enter` jumps
//! to the setting, `f` opens its fix in the editor — so it goes through the
//! same diff, impact preview and version-checked save as any edit.

use serde_json::Value;

use crate::domain::lint::Finding;
use crate::domain::registry;

use super::editor::Editor;
use super::keymap::Action;
use super::{Cmd, Model, Overlay, may_modify};

#[derive(Debug)]
pub struct LintView {
    pub findings: Vec<Finding>,
    pub selected: usize,
    pub request: u64,
    pub loading: bool,
}

pub fn open(model: &mut Model) -> Vec<Cmd> {
    let request = model.request();
    model.overlay = Some(Overlay::Lint(LintView { findings: Vec::new(), selected: 0, request, loading: true }));
    vec![Cmd::Lint { request }]
}

pub fn loaded(model: &mut Model, request: u64, findings: Vec<Finding>) -> Vec<Cmd> {
    if let Some(Overlay::Lint(view)) = &mut model.overlay
        && view.request == request
    {
        view.findings = findings;
        view.loading = false;
        view.selected = 0;
    }
    Vec::new()
}

pub fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let page = (model.size.1 as usize).saturating_sub(6);
    let Some(Overlay::Lint(view)) = &mut model.overlay else { return Vec::new() };
    match action {
        Some(Action::Close) => model.overlay = None,
        Some(Action::Jump) => return jump(model),
        Some(Action::Fix) => return fix(model),
        Some(a) => {
            if let Some(delta) = super::movement(a, page) {
                view.selected = super::moved(view.selected, delta, view.findings.len());
            }
        }
        None => {}
    }
    Vec::new()
}

/// Select the finding's account and type in the main view.
fn jump(model: &mut Model) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &model.overlay else { return Vec::new() };
    let Some(f) = view.findings.get(view.selected).cloned() else { return Vec::new() };
    model.overlay = None;
    select(model, &f);
    super::load_visible(model)
}

fn select(model: &mut Model, f: &Finding) {
    if let Some(slug) = &f.account {
        model.accounts.set_filter(String::new());
        let id = model.accounts.window(0, usize::MAX).find(|e| &e.account.slug == slug).map(|e| e.account.id);
        if let Some(id) = id {
            model.accounts.select_account(id);
        }
    }
    if let Some(ty) = &f.integration_type
        && let Some(i) = model.tabs().iter().position(|t| t == ty)
    {
        model.tab = i;
    }
}

/// Open the finding's fix in the editor (the base is the setting as it is
/// now, so a stale fix conflicts like any edit).
fn fix(model: &mut Model) -> Vec<Cmd> {
    let Some(Overlay::Lint(view)) = &model.overlay else { return Vec::new() };
    let Some(f) = view.findings.get(view.selected).cloned() else { return Vec::new() };
    let Some(fix) = f.fix.clone() else {
        model.notice = Some(format!("{} has no automatic fix: enter jumps to the setting", f.id));
        return Vec::new();
    };
    let (Some(slug), Some(ty)) = (f.account.clone(), f.integration_type.clone()) else { return Vec::new() };
    model.overlay = None;
    select(model, &f);
    let cmds = super::load_visible(model);
    let Some(account) = model.selected_account().cloned().filter(|a| a.slug == slug) else { return cmds };
    if let Err(why) = may_modify(model, &account) {
        model.notice = Some(format!("read-only here: {why}"));
        return cmds;
    }
    let (Some(spec), Some(Value::Object(prefill))) = (registry::spec(&ty), fix.config.clone()) else { return cmds };
    let base = model.world.settings.get(&(account.id, ty.clone())).cloned();
    if base.as_ref().map(|b| b.version) != Some(fix.version) {
        model.notice = Some("the setting changed since lint ran: press L again".into());
        return cmds;
    }
    match Editor::open_with(spec, account, base, None, Some(prefill)) {
        Ok(mut ed) => {
            ed.message = Some(match &fix.field {
                Some(field) => format!(
                    "{}: {}: fill in {field} ({}), then ctrl-s",
                    f.id,
                    fix.description,
                    fix.choices.join(" or ")
                ),
                None => format!("{}: {} — review, then ctrl-s", f.id, fix.description),
            });
            if let Some(i) = fix.field.as_ref().and_then(|field| ed.fields.iter().position(|x| &x.name == field)) {
                ed.focus = i;
            }
            model.overlay = Some(Overlay::Edit(Box::new(ed)));
        }
        Err(why) => model.notice = Some(why),
    }
    cmds
}
