//! The editor screen's view: the form, the save preview (field diff,
//! warnings, impact), the discard question and the conflict view.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use serde_json::Value;

use crate::app::state::editor::{Editor, Stage};
use crate::app::widgets::{Theme, ago, dialog, overlay_box, wrap_lines};
use crate::domain::diff;
use crate::domain::registry::{self, FieldKind};
use crate::domain::text::visible_short;

pub fn draw(
    ed: &Editor,
    now: DateTime<Utc>,
    scroll: &crate::app::scroll::Scroll,
    frame: &mut Frame,
    area: Rect,
    t: Theme,
) {
    let spec = ed.spec();
    let slug = visible_short(&ed.account.slug, 30);
    let title = match (&ed.base, &ed.inherited_from) {
        // The version follows the row: the one the form opened, then the stored one.
        (Some(b), _) if ed.underneath.is_some() => {
            format!(" Edit {slug} · {} · {} (stored now: {}) ", spec.label, b.version_label(), stored_now(ed))
        }
        (Some(b), _) => format!(" Edit {slug} · {} · {} ", spec.label, b.version_label()),
        (None, Some(from)) => {
            format!(" New {} override for {slug} (prefilled from {}) ", spec.label, visible_short(from, 20))
        }
        (None, None) => format!(" New {} setting for {slug} ", spec.label),
    };
    let height = (ed.fields.len() as u16 + 12).min(area.height.saturating_sub(2));
    // The save preview is as high as it needs, up to the terminal's
    // height, and scrolls.
    let width = overlay_box(area, height).width.saturating_sub(2);
    let preview = match &ed.stage {
        Stage::Confirm { changes, impact } => Some(preview_lines(ed, changes, impact, width, t)),
        _ => None,
    };
    let height = match &preview {
        Some(lines) => (lines.len() as u16 + 4).min(area.height.saturating_sub(2)),
        None => height,
    };
    let inner = dialog(frame, overlay_box(area, height), title, t);
    match &ed.stage {
        Stage::Editing | Stage::Previewing { .. } | Stage::Saving { .. } => editor_form(ed, now, frame, inner, t),
        Stage::Merging { merge, choices, focus, .. } => {
            let mut lines = vec![
                Line::from(Span::styled(
                    "Both of you changed these fields: keep theirs or yours",
                    t.warn().add_modifier(Modifier::BOLD),
                )),
                Line::from(Span::styled(
                    "Every other field you changed is applied on top of theirs; the result is previewed before saving.",
                    t.dim(),
                )),
                Line::raw(""),
            ];
            let half = (inner.width as usize).saturating_sub(24) / 2;
            lines.push(Line::from(Span::styled(format!("  {:<20}  {:<half$}{}", "field", "theirs", "yours"), t.dim())));
            for (i, (c, side)) in merge.clashes.iter().zip(choices).enumerate() {
                let secret = crate::domain::secret::is_secret_field(&c.field)
                    || [&c.theirs, &c.yours].into_iter().flatten().any(crate::domain::secret::contains_secret)
                    || spec.field(&c.field).is_some_and(|f| f.kind == FieldKind::Secret);
                // A secret is merged by "changed or not": never shown.
                let value = |v: &Option<Value>, whose: &str| match (secret, v) {
                    (_, None) => "— (removed)".to_string(),
                    (true, Some(_)) => format!("{whose} new key"),
                    (false, v) => diff::shown(&c.field, v.as_ref()),
                };
                let pick = |s: crate::domain::merge::Side, text: String| {
                    let mark = if *side == s { "● " } else { "○ " };
                    let style = if *side == s { t.accent().add_modifier(Modifier::BOLD) } else { t.dim() };
                    Span::styled(
                        format!("{mark}{:<w$}", visible_short(&text, half.saturating_sub(3)), w = half - 2),
                        style,
                    )
                };
                let marker = if i == *focus { "▶ " } else { "  " };
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("{marker}{:<20}  ", visible_short(&c.field, 20)),
                        if i == *focus { t.accent() } else { t.dim() },
                    ),
                    pick(crate::domain::merge::Side::Theirs, value(&c.theirs, "their")),
                    pick(crate::domain::merge::Side::Yours, value(&c.yours, "your")),
                ]));
            }
            frame.render_widget(Paragraph::new(wrap_lines(lines, inner.width)).wrap(Wrap { trim: false }), inner);
        }
        Stage::Confirm { .. } => {
            let head = vec![
                Line::from(Span::styled(
                    format!(
                        "Save {slug} {}{}?",
                        ed.integration_type,
                        ed.base.as_ref().map(save_of).unwrap_or_default()
                    ),
                    Style::new().add_modifier(Modifier::BOLD),
                )),
                Line::raw(""),
            ];
            let [top, rest] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(inner);
            frame.render_widget(Paragraph::new(head), top);
            crate::app::scroll::render(frame, rest, preview.unwrap_or_default(), scroll, t);
        }
        Stage::Discard { quit, reload, .. } => {
            let what = match (quit, reload) {
                (true, _) => "quit keyfall",
                (_, true) => "reload what is stored",
                _ => "close the form",
            };
            let lines = vec![
                Line::from(Span::styled(
                    format!("Discard your edits to {slug} {} and {what}?", ed.integration_type),
                    t.warn().add_modifier(Modifier::BOLD),
                )),
                Line::raw(""),
                Line::from(Span::styled(
                    if *reload {
                        "Nothing has been saved. No goes back to the conflict, edits intact."
                    } else {
                        "Nothing has been saved. No goes back to the form, edits intact."
                    },
                    t.dim(),
                )),
            ];
            frame.render_widget(Paragraph::new(wrap_lines(lines, inner.width)).wrap(Wrap { trim: false }), inner);
        }
        Stage::Conflict { conflict, theirs, asking } => {
            let mut lines = vec![
                Line::from(Span::styled("Not saved: someone changed it first", t.bad().add_modifier(Modifier::BOLD))),
                Line::from(visible_short(&conflict.to_string(), 200)),
                Line::raw(""),
            ];
            if let (Some(base), Some(theirs)) = (&ed.base, theirs) {
                lines.push(Line::from(Span::styled("their change:", t.dim())));
                let before = serde_json::json!({"config": base.config, "is_active": base.is_active});
                let after = serde_json::json!({"config": theirs.config, "is_active": theirs.is_active});
                lines.extend(change_lines(&before, &after));
            }
            if let (Some((config, active)), Some(theirs)) = (&ed.pending, theirs) {
                lines.push(Line::from(Span::styled("yours, against theirs:", t.dim())));
                let before = serde_json::json!({"config": theirs.config, "is_active": theirs.is_active});
                let after = serde_json::json!({"config": config, "is_active": active});
                lines.extend(change_lines(&before, &after));
            }
            if *asking {
                lines.push(Line::raw(""));
                lines.push(Line::from(Span::styled(
                    "Overwrite their change with yours? It is recorded as an overwrite.",
                    t.warn().add_modifier(Modifier::BOLD),
                )));
            }
            frame.render_widget(Paragraph::new(wrap_lines(lines, inner.width)).wrap(Wrap { trim: false }), inner);
        }
    }
}

/// The stored row's version now, when it moved underneath the form.
fn stored_now(ed: &Editor) -> String {
    match &ed.underneath {
        Some(u) if u.version == 0 => "deleted".into(),
        Some(u) if ed.base.as_ref().is_some_and(|b| b.version_token) => format!("row token {}", u.version),
        Some(u) => format!("v{}", u.version),
        None => String::new(),
    }
}

fn editor_form(ed: &Editor, now: DateTime<Utc>, frame: &mut Frame, inner: Rect, t: Theme) {
    // Room for every registry field's label (at least 12), after the marker.
    let label = registry::widest_field().1.max(12);
    let label_width = label as u16 + 2;
    let mut y = inner.y;
    let bottom = inner.y + inner.height;
    for (i, f) in ed.fields.iter().enumerate() {
        if y >= bottom {
            return;
        }
        let focused = i == ed.focus;
        let marker = if focused { "▶ " } else { "  " };
        let label_style = if focused { t.accent() } else { t.dim() };
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!("{marker}{:<label$}", visible_short(&f.label, label)),
                label_style,
            ))),
            Rect::new(inner.x, y, label_width.min(inner.width), 1),
        );
        let input_area = Rect::new(inner.x + label_width, y, inner.width.saturating_sub(label_width), 1);
        if f.removed {
            frame.render_widget(
                Paragraph::new(Span::styled("— removed on save (remove again to keep it)", t.warn())),
                input_area,
            );
        } else if f.is_secret() && f.text().is_empty() {
            let shown = match &f.stored_mask {
                Some(mask) => format!("{mask}  (stored; type to replace)"),
                None => "type or paste the key".to_string(),
            };
            let shown = match (&f.stored_mask, f.extra) {
                (Some(mask), true) => format!("{mask}  (not in the registry; kept as is)"),
                _ => shown,
            };
            frame.render_widget(Paragraph::new(Span::styled(shown, t.dim())), input_area);
        } else if let Some(from) = f.copied_from.as_ref().filter(|_| f.unchanged() && !focused) {
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::raw(visible_short(&f.text(), 50)),
                    Span::styled(format!("  (from {})", visible_short(from, 24)), t.dim()),
                ])),
                input_area,
            );
        } else if f.extra && !focused {
            let note = if f.name == "apiKey" { "  (a consumer's leftover)" } else { "  (not in the registry)" };
            frame.render_widget(
                Paragraph::new(Line::from(vec![Span::raw(visible_short(&f.text(), 60)), Span::styled(note, t.dim())])),
                input_area,
            );
        } else {
            frame.render_widget(&f.input, input_area);
        }
        y += 1;
    }
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("  {:<label$}", "Active"), t.dim()),
        Span::raw(if ed.is_active { "[x] active" } else { "[ ] inactive" }),
    ])];
    if let Some(u) = &ed.underneath {
        let who = u.actor.as_deref().map(|a| crate::domain::text::identity_short(a, 40)).unwrap_or("someone".into());
        let when = u.at.map(|at| format!(" {}", ago(now, at))).unwrap_or_default();
        let what = if u.version == 0 { "deleted" } else { "changed" };
        lines.push(Line::from(Span::styled(
            format!("  ⚠ {what} by {who}{when} (stored now: {}): saving will show both sides to merge", stored_now(ed)),
            t.warn(),
        )));
    }
    if let Some((mask, warning)) = ed.key_feedback() {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<label$}", "new key"), t.dim()),
            Span::styled(mask, t.accent()),
        ]));
        if let Some(w) = warning {
            lines.push(Line::from(Span::styled(format!("  ⚠ {w}"), t.warn())));
        }
    }
    if ed.fields.get(ed.focus).is_some_and(|f| f.name == "model" && !f.extra)
        && let Some((suggestions, unknown)) = ed.model_hint()
    {
        if unknown {
            lines.push(Line::from(Span::styled("  ⚠ not a model keyfall knows (allowed; lint L004)", t.warn())));
        }
        if !suggestions.is_empty() {
            lines.push(Line::from(Span::styled(format!("  known: {}", suggestions.join(", ")), t.dim())));
        }
    }
    if ed.fields.get(ed.focus).is_some_and(|f| f.kind == FieldKind::ProviderRef) {
        let typed = ed.fields[ed.focus].text();
        let choices: Vec<&str> = registry::provider_names().collect();
        if !typed.is_empty() && !choices.contains(&typed.trim()) {
            lines.push(Line::from(Span::styled("  ⚠ not a provider type: saving will refuse it", t.warn())));
        }
        lines.push(Line::from(Span::styled(format!("  choose one of: {}", choices.join(", ")), t.dim())));
    }
    let status = match &ed.stage {
        Stage::Previewing { .. } => Some(Span::styled("  computing the impact…", t.dim())),
        Stage::Saving { .. } => Some(Span::styled("  saving…", t.dim())),
        _ => ed.message.as_ref().map(|m| Span::styled(format!("  {m}"), t.warn())),
    };
    if let Some(s) = status {
        lines.push(Line::from(s));
    }
    if y < bottom {
        frame.render_widget(
            Paragraph::new(wrap_lines(lines, inner.width)).wrap(Wrap { trim: false }),
            Rect::new(inner.x, y + 1, inner.width, bottom.saturating_sub(y + 1)),
        );
    }
}

/// The save preview's lines, wrapped to `width`: the lines `set
/// --dry-run` prints (`crate::preview`), the warnings among them.
fn preview_lines(
    ed: &Editor,
    changes: &[diff::FieldChange],
    impact: &[crate::domain::change::ImpactRow],
    width: u16,
    t: Theme,
) -> Vec<Line<'static>> {
    let mut body = crate::preview::field_changes(changes);
    if changes.is_empty() {
        body.push(crate::preview::no_change());
    }
    let mut lines = crate::app::scroll::styled(&body, width, t);
    for warning in save_warnings(ed) {
        lines.extend(wrap_lines(vec![Line::from(Span::styled(format!("⚠ {warning}"), t.warn()))], width));
    }
    lines.push(Line::raw(""));
    lines.extend(crate::app::scroll::styled(&crate::preview::impact(impact), width, t));
    lines
}

/// What the save preview warns about: a model keyfall does not know.
fn save_warnings(ed: &Editor) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((config, _)) = &ed.pending
        && let Some(model) = config.get("model").and_then(Value::as_str)
        && !registry::is_known_model(ed.spec(), model)
    {
        out.push(format!(
            "model {:?} is not one keyfall knows for {} (allowed; lint L004)",
            visible_short(&crate::domain::secret::shape_masked(model), 40),
            ed.spec().label
        ));
    }
    out
}

/// "  field: before → after", one line per changed field (keys as
/// fingerprints).
fn change_lines(before: &serde_json::Value, after: &serde_json::Value) -> Vec<Line<'static>> {
    diff::changes(Some(before), Some(after))
        .into_iter()
        .map(|c| {
            Line::from(format!(
                "  {}: {} → {}",
                visible_short(&c.field, 30),
                diff::shown(&c.field, c.before.as_ref()),
                diff::shown(&c.field, c.after.as_ref())
            ))
        })
        .collect()
}

/// What a save of `base` makes of its version: the app's version column
/// goes one up (`v7 → v8`); a row token (xmin) is whatever the database
/// gives it, so nothing is promised.
fn save_of(base: &crate::domain::Setting) -> String {
    if base.version_token {
        format!(" (from {})", base.version_label())
    } else {
        format!(" (v{} → v{})", base.version, base.version + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_promises_the_next_version_only_for_a_version_column() {
        let mut base = crate::domain::Setting {
            id: 1,
            account_id: 1,
            integration_type: "openai".into(),
            config: serde_json::json!({}),
            is_active: true,
            version: 2445,
            updated_at: None,
            updated_by: None,
            version_token: false,
            withheld: None,
        };
        assert_eq!(save_of(&base), " (v2445 → v2446)");
        base.version_token = true;
        assert_eq!(save_of(&base), " (from row token 2445)");
        assert_eq!(base.version_label(), "row token 2445");
    }
}
