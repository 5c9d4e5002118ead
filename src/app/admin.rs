//! The chain and policy screen: reorder, add or remove system accounts,
//! switch the policy — superuser or developer only, previewed (who
//! resolves differently; who gains or loses which action) before the
//! audited write. Its state, its keys, its replies and its view.

use crate::domain::Policy;
use crate::domain::change::ImpactRow;
use crate::domain::model::Role;
use crate::domain::permissions::PolicyMove;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::keymap::Action;
use super::model::{Cmd, Model, Overlay};
use super::scroll;
pub use super::state::admin::*;
use super::widgets::{Theme, circled, dialog, overlay_box, wrap_lines};
use crate::domain::text::visible_short;
use crate::preview::{self, PreviewLine};

/// Waiting for a preview or the write: cancel stops waiting (the late
/// reply is dropped by its request id; a write that did go through shows
/// up live).
pub fn waiting_key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    if action == Some(Action::Cancel)
        && let Some(Overlay::Admin(view)) = &mut model.overlay
    {
        view.stage = AdminStage::Editing;
        view.message = Some("stopped waiting; if it went through, the change will show".into());
    }
    Vec::new()
}

/// Open the view, for active superusers and developers only.
pub fn open(model: &mut Model) -> Vec<Cmd> {
    if let Some(why) = &model.session.access.read_only {
        model.notice = Some(format!("read-only session: {why}"));
        return Vec::new();
    }
    let allowed = model
        .session
        .access
        .operator
        .as_ref()
        .is_some_and(|o| o.is_active && (o.is_superuser || o.role == Role::Developer));
    if !allowed {
        model.notice = Some("the chain and the policy are for active superusers and developers only".into());
        return Vec::new();
    }
    let chain: Vec<String> = model.world.chain.iter().map(|e| e.slug.clone()).collect();
    model.overlay = Some(Overlay::Admin(AdminView {
        original_chain: chain.clone(),
        chain,
        policy: model.policy,
        original_policy: model.policy,
        selected: 0,
        stage: AdminStage::Editing,
        message: None,
    }));
    Vec::new()
}

pub fn key(model: &mut Model, action: Option<Action>) -> Vec<Cmd> {
    let actor = model.session.access.operator.as_ref().map(|o| o.email.clone()).unwrap_or_default();
    let account_here = model.selected_account().map(|a| a.slug.clone());
    let request = model.requests.issue();
    let Some(Overlay::Admin(view)) = &mut model.overlay else { return Vec::new() };
    let Some(action) = action else { return Vec::new() };
    let mut cmds = Vec::new();
    view.message = None;
    match &view.stage {
        AdminStage::Editing => match action {
            Action::Close if view.chain_changed() || view.policy_changed() => {
                view.stage = AdminStage::Discard { quit: false }
            }
            Action::Close => model.overlay = None,
            Action::MoveUp if view.selected > 0 => {
                view.chain.swap(view.selected, view.selected - 1);
                view.selected -= 1;
            }
            Action::MoveDown if view.selected + 1 < view.chain.len() => {
                view.chain.swap(view.selected, view.selected + 1);
                view.selected += 1;
            }
            Action::Remove if !view.chain.is_empty() => {
                view.chain.remove(view.selected);
                view.selected = view.selected.min(view.chain.len().saturating_sub(1));
            }
            Action::Add => match account_here {
                Some(slug) if !view.chain.contains(&slug) => {
                    view.chain.push(slug);
                    view.selected = view.chain.len() - 1;
                }
                Some(_) => view.message = Some("already in the chain".into()),
                None => {}
            },
            Action::CyclePolicy => {
                let i = Policy::ALL.iter().position(|p| *p == view.policy).unwrap_or(0);
                view.policy = Policy::ALL[(i + 1) % Policy::ALL.len()];
            }
            Action::Down => view.selected = (view.selected + 1).min(view.chain.len().saturating_sub(1)),
            Action::Up => view.selected = view.selected.saturating_sub(1),
            Action::Preview => {
                if !view.chain_changed() && !view.policy_changed() {
                    view.message = Some("nothing changed".into());
                } else {
                    view.stage = AdminStage::Previewing { request };
                    cmds.push(Cmd::PreviewAdmin {
                        request,
                        chain: view.chain_changed().then(|| view.chain.clone()),
                        policy: view.policy_changed().then_some((view.original_policy, view.policy)),
                    });
                }
            }
            _ => {}
        },
        AdminStage::Confirm { .. } => match action {
            Action::Confirm => {
                view.stage = AdminStage::Applying { request };
                cmds.push(Cmd::ApplyAdmin {
                    request,
                    actor,
                    chain: view.chain_changed().then(|| view.chain.clone()),
                    policy: view.policy_changed().then_some(view.policy),
                    expected_chain: view.original_chain.clone(),
                    expected_policy: view.original_policy,
                });
            }
            Action::Back => view.stage = AdminStage::Editing,
            _ => {}
        },
        AdminStage::Discard { quit } => match action {
            Action::Confirm => {
                model.quit = *quit;
                model.overlay = None;
            }
            Action::Cancel => view.stage = AdminStage::Editing,
            _ => {}
        },
        AdminStage::Previewing { .. } | AdminStage::Applying { .. } => {}
    }
    cmds
}

/// Quitting with a change staged asks first; true when it asked.
pub fn ask_before_quitting(model: &mut Model) -> bool {
    if let Some(Overlay::Admin(view)) = &mut model.overlay
        && (view.chain_changed() || view.policy_changed())
        && matches!(view.stage, AdminStage::Editing | AdminStage::Confirm { .. })
    {
        view.stage = AdminStage::Discard { quit: true };
        return true;
    }
    false
}

pub fn previewed(model: &mut Model, request: u64, impact: Vec<ImpactRow>, moves: Vec<PolicyMove>) -> Vec<Cmd> {
    if let Some(Overlay::Admin(view)) = &mut model.overlay
        && matches!(view.stage, AdminStage::Previewing { request: r } if r == request)
    {
        view.stage = AdminStage::Confirm { impact, moves };
    }
    Vec::new()
}

pub fn applied(model: &mut Model, request: u64) -> Vec<Cmd> {
    if let Some(Overlay::Admin(view)) = &model.overlay
        && matches!(view.stage, AdminStage::Applying { request: r } if r == request)
    {
        model.overlay = None;
        model.notice = Some("chain and policy saved".into());
        model.requests.refresh();
        return model.start();
    }
    Vec::new()
}

/// A failed preview or write returns to the form.
pub fn failed(model: &mut Model, request: u64, error: &str) -> bool {
    if let Some(Overlay::Admin(view)) = &mut model.overlay
        && matches!(view.stage, AdminStage::Previewing { request: r } | AdminStage::Applying { request: r } if r == request)
    {
        view.stage = AdminStage::Editing;
        view.message = Some(format!("not saved: {}", crate::domain::text::visible_short(error, 120)));
        return true;
    }
    false
}

/// The preview's lines — the chain's (`chain: [..] → [..]` and its
/// impact) and the policy's (`policy: a → b` and who gains or loses what)
/// — the lines `keyfall chain set --dry-run` and `keyfall policy set
/// --dry-run` print.
pub fn preview_lines(view: &AdminView, impact: &[ImpactRow], moves: &[PolicyMove]) -> Vec<PreviewLine> {
    let mut lines = Vec::new();
    if view.chain_changed() {
        lines.push(preview::chain(&view.original_chain, &view.chain));
        lines.extend(preview::impact(impact));
    }
    if view.policy_changed() {
        lines.push(preview::policy(view.original_policy, view.policy));
        lines.extend(preview::policy_moves(moves));
    }
    lines
}

pub fn draw(model: &Model, view: &AdminView, frame: &mut Frame, area: Rect, t: Theme) {
    let inner = dialog(frame, overlay_box(area, area.height.saturating_sub(2)), " Chain and policy ".into(), t);
    if let AdminStage::Confirm { impact, moves } = &view.stage {
        // The preview takes the whole box and scrolls.
        let head = vec![
            Line::from(Span::styled("Apply this change? (audited)", Style::new().add_modifier(Modifier::BOLD))),
            Line::raw(""),
        ];
        let [top, body] = Layout::vertical([Constraint::Length(head.len() as u16), Constraint::Min(1)]).areas(inner);
        frame.render_widget(Paragraph::new(head), top);
        let lines = scroll::styled(&preview_lines(view, impact, moves), body.width, t);
        scroll::render(frame, body, lines, &model.preview_scroll, t);
        return;
    }
    let mut lines = vec![Line::from(Span::styled("system fallback chain (tenants fall back in this order):", t.dim()))];
    for (i, slug) in view.chain.iter().enumerate() {
        let exists = model.accounts.entry_by_slug(slug).is_some();
        let missing = if exists { "" } else { "   (no such account: L005)" };
        let mut line = Line::from(format!("{} {}{missing}", circled(i as i32 + 1), visible_short(slug, 40)));
        if i == view.selected && matches!(view.stage, AdminStage::Editing) {
            line = line.style(t.selected(true));
        }
        lines.push(line);
    }
    if view.chain.is_empty() {
        lines.push(Line::from(Span::styled("(empty: tenants without settings resolve to nothing)", t.bad())));
    }
    lines.push(Line::raw(""));
    let changed =
        if view.policy_changed() { format!("  (was {})", view.original_policy.as_str()) } else { String::new() };
    lines.push(Line::from(vec![
        Span::styled("policy  ", t.dim()),
        Span::raw(format!("{} ({}){changed}", view.policy.as_str(), view.policy.letter())),
    ]));
    lines.push(Line::raw(""));
    match &view.stage {
        AdminStage::Editing => {
            if let Some(m) = &view.message {
                lines.push(Line::from(Span::styled(m.clone(), t.warn())));
            }
        }
        AdminStage::Previewing { .. } => lines.push(Line::from(Span::styled("computing the preview…", t.dim()))),
        AdminStage::Applying { .. } => lines.push(Line::from(Span::styled("saving…", t.dim()))),
        AdminStage::Discard { quit } => {
            let what = if *quit { "quit keyfall" } else { "close" };
            let key = |a| model.keymap.first_key(super::keymap::Screen::Confirm, a).unwrap_or("?");
            lines.push(Line::from(Span::styled(
                format!(
                    "Drop the staged change (nothing is saved) and {what}? {} drops it, {} keeps it",
                    key(Action::Confirm),
                    key(Action::Cancel)
                ),
                t.warn().add_modifier(Modifier::BOLD),
            )))
        }
        AdminStage::Confirm { .. } => {}
    }
    frame.render_widget(Paragraph::new(wrap_lines(lines, inner.width)).wrap(Wrap { trim: false }), inner);
}
