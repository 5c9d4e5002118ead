//! The setting pane of the main screen: one tab per integration type (the
//! registry's, then unknown types found in the data), the selected
//! account's own setting as a form with its verdict and findings, or the
//! inherited one labelled with its source, or why nothing answers. Only
//! what the policy lets the operator view is shown.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use serde_json::Value;

use super::keymap::{Action, Screen};
use super::model::Model;
use super::state::main::Pane;
use super::widgets::{Theme, ago, panes, wrap_lines};
use crate::domain::registry::{self, FieldKind, Issue, Kind};
use crate::domain::resolve::{Hop, Outcome, Verdict, resolve_type};
use crate::domain::secret::{Secret, is_secret_field};
use crate::domain::text::{visible, visible_short};
use crate::domain::{Account, Setting};

pub fn draw(model: &Model, frame: &mut Frame, area: Rect, t: Theme) {
    let focused = model.main.focus == Pane::Setting;
    let tabs = model.tabs();
    let current = model.current_type();
    let mut title = vec![Span::raw(" ")];
    for (i, ty) in tabs.iter().enumerate() {
        let label = registry::spec(ty).map(|s| s.label.to_string()).unwrap_or_else(|| visible_short(ty, 20));
        let text = format!("{} {label}", i + 1);
        let style = if *ty == current { t.selected(true) } else { t.dim() };
        title.push(Span::styled(text, style));
        title.push(Span::raw(" │ "));
    }
    title.pop();
    title.push(Span::raw(" "));
    let mut block = Block::bordered().title(Line::from(title)).border_style(t.border(focused));
    let inner = block.inner(area);
    let text = Paragraph::new(wrap_lines(setting_text(model, t), inner.width)).wrap(Wrap { trim: false });
    let lines = text.line_count(inner.width) as u16;
    let scroll = model.main.setting_scroll.min(lines.saturating_sub(inner.height));
    // What the pane cannot show is said on its bottom border, so a cut
    // explanation is never mistaken for the whole of it.
    let below = lines.saturating_sub(scroll + inner.height);
    if below > 0 {
        let key = |a| model.keymap.first_key(super::keymap::Screen::Main, a).unwrap_or("?");
        let down = key(super::keymap::Action::Down);
        let how = if focused {
            format!("{down} scrolls")
        } else {
            format!("{} here, {down} scrolls", key(super::keymap::Action::NextPane))
        };
        block =
            block.title_bottom(Line::from(Span::styled(format!(" ↓ {below} more · {how} "), t.dim())).right_aligned());
    }
    frame.render_widget(block, area);
    frame.render_widget(text.scroll((scroll, 0)), inner);
}

/// The setting pane's inside at the current size.
fn setting_inner(model: &Model) -> Rect {
    let (_, s, _) = panes(model.size, model.resolve.show_permissions);
    Block::bordered().inner(s)
}

/// Rows the setting pane shows.
pub fn setting_rows(model: &Model) -> u16 {
    setting_inner(model).height
}

/// Lines the setting pane has, wrapped to its width.
pub fn setting_lines_count(model: &Model) -> u16 {
    let width = setting_inner(model).width;
    Paragraph::new(wrap_lines(setting_text(model, Theme { color: false }), width))
        .wrap(Wrap { trim: false })
        .line_count(width) as u16
}

fn setting_text(model: &Model, t: Theme) -> Vec<Line<'static>> {
    let current = model.current_type();
    let Some(account) = model.selected_account() else {
        return vec![Line::from(Span::styled("no account selected", t.dim()))];
    };
    if model.is_loaded(account.id) {
        // Only what the policy lets the operator view: the answering
        // account's settings are theirs to see, or not at all.
        let hop = resolve_type(&model.world, Some(account), &current);
        let shown_from = hop.answered_by.clone().unwrap_or_else(|| account.slug.clone());
        for slug in [account.slug.as_str(), shown_from.as_str()] {
            if let Err(why) = super::access::may_view(model, slug) {
                return vec![
                    Line::from(Span::styled(
                        format!("{} · {} account", visible_short(&account.name, 40), account.status.as_str()),
                        t.dim(),
                    )),
                    Line::from(Span::styled(
                        format!(
                            "not shown: under policy {} you may not view {}'s settings ({why} fails; p shows why)",
                            model.policy.letter(),
                            visible_short(slug, 40)
                        ),
                        t.warn(),
                    )),
                ];
            }
        }
        let mut lines = setting_lines(model, account, &current, t);
        if let Some(test) = model
            .last_test
            .as_ref()
            .filter(|x| !x.from_resolve && x.account_id == account.id && x.integration_type == current)
        {
            let at = if account.status.grants_access() { 2 } else { 3 };
            lines.insert(at.min(lines.len()), super::connection_test::line(model, test, t));
        }
        if registry::spec(&current).is_some() {
            lines.push(Line::raw(""));
            let as_of = model.time.as_of.as_ref().map(|a| a.refusal(model));
            lines.push(match super::access::may_modify(model, account) {
                // As of a moment nothing here changes: the way back instead.
                _ if as_of.is_some() => Line::from(Span::styled(as_of.unwrap_or_default(), t.warn())),
                Ok(_) => Line::from(Span::styled(
                    format!(
                        "{} edit{} · {} delete",
                        model.keymap.first_key(Screen::Main, Action::Edit).unwrap_or("?"),
                        if model.world.settings.contains_key(&(account.id, current.clone())) {
                            ""
                        } else {
                            " (create an override)"
                        },
                        model.keymap.first_key(Screen::Main, Action::Delete).unwrap_or("?")
                    ),
                    t.dim(),
                )),
                Err(why) => {
                    Line::from(Span::styled(format!("read-only for you: {}", visible_short(&why, 200)), t.warn()))
                }
            });
        }
        lines
    } else {
        vec![Line::from(Span::styled("loading…", t.dim()))]
    }
}

fn setting_lines(model: &Model, account: &Account, ty: &str, t: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let slug = visible(&account.slug).into_owned();
    // The account itself: its name, and a status that denies its users.
    let name = format!("{} · {} account", visible_short(&account.name, 40), account.status.as_str());
    lines.push(Line::from(Span::styled(name, t.dim())));
    if !account.status.grants_access() {
        lines.push(Line::from(Span::styled(
            format!("⚠ {slug} is {}: its users are denied (HasTenantAccess)", account.status.as_str()),
            t.warn(),
        )));
    }
    let own = model.world.settings.get(&(account.id, ty.to_string()));
    let hop = resolve_type(&model.world, Some(account), ty);
    match own {
        Some(s) => {
            lines.push(setting_head(model, &slug, "own", s, t));
            if let Some(r) = &model.revealed
                && r.account_id == account.id
                && r.integration_type == ty
            {
                let left = (r.until - model.now).num_seconds().max(0);
                lines.push(Line::from(vec![
                    Span::styled("apiKey (revealed) ", t.warn()),
                    Span::raw(visible(r.secret.expose()).into_owned()),
                ]));
                lines.push(Line::from(Span::styled(
                    format!("recorded in the audit log; hidden again on any key or in {left} s"),
                    t.dim(),
                )));
            }
            lines.extend(verdict_lines(model, &hop, ty, s, t));
            let consumer = registry::spec(ty).is_some_and(|spec| spec.kind == Kind::Consumer);
            if let (true, Some(key)) = (consumer, s.config.get("apiKey")) {
                lines.push(consumer_key_line(ty, s, key, t));
            }
            lines.extend(config_lines(ty, s, t));
        }
        None => {
            let source = hop.answered_by.as_ref().and_then(|slug| {
                model.world.chain.iter().find(|e| &e.slug == slug).map(|e| (slug.clone(), e.position))
            });
            match source {
                Some((from, position)) => {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{slug} · "), Style::new().add_modifier(Modifier::BOLD)),
                        Span::styled(format!("inherited from {} (chain {position})", visible(&from)), t.accent()),
                    ]));
                    let inherited = model
                        .world
                        .chain
                        .iter()
                        .find(|e| e.slug == from)
                        .and_then(|e| e.account.as_ref())
                        .and_then(|a| model.world.settings.get(&(a.id, ty.to_string())));
                    if let Some(s) = inherited {
                        lines.push(setting_head(model, &visible(&from), "source", s, t));
                        if let Some(step) = hop.steps.iter().find(|x| x.verdict == Verdict::Answered) {
                            lines.extend(findings_lines(&step.findings, t));
                        }
                        lines.extend(config_lines(ty, s, t));
                    }
                    if let Some(second) = &hop.hop {
                        lines.push(hop_summary(second, t));
                    }
                }
                None => {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{slug} · no own setting · "), Style::new().add_modifier(Modifier::BOLD)),
                        Span::styled("resolves to nothing", t.bad()),
                    ]));
                    let last = hop.steps.len().saturating_sub(1);
                    for (i, step) in hop.steps.iter().enumerate() {
                        let (fails, style) =
                            if i == last && hop.error.is_some() { ("FAILS ", t.bad()) } else { ("", t.dim()) };
                        lines.push(Line::from(Span::styled(
                            format!(
                                "  {} {fails}{} — {}",
                                visible_short(&step.account, 24),
                                step.verdict.as_str(),
                                step.detail
                            ),
                            style,
                        )));
                    }
                    if let Some(error) = &hop.error {
                        lines.push(Line::from(Span::styled(format!("  ✗ {}", visible(error)), t.bad())));
                    }
                }
            }
        }
    }
    lines
}

fn setting_head(model: &Model, slug: &str, what: &str, s: &Setting, t: Theme) -> Line<'static> {
    let active = if s.is_active { Span::styled("active", t.ok()) } else { Span::styled("inactive", t.bad()) };
    Line::from(vec![
        Span::styled(format!("{slug} · {what} · "), Style::new().add_modifier(Modifier::BOLD)),
        active,
        Span::raw(format!(" · {}{}", s.version_label(), last_change(model.now, s))),
    ])
}

/// When and by whom the row last changed, as far as it is known (the
/// app's `updated_at` or the last audited change): nothing made up.
fn last_change(now: chrono::DateTime<chrono::Utc>, s: &Setting) -> String {
    match (s.updated_at, s.updated_by.as_deref()) {
        (Some(at), Some(by)) => format!(" · {} by {}", ago(now, at), visible_short(by, 24)),
        (Some(at), None) => format!(" · {}", ago(now, at)),
        (None, Some(by)) => format!(" · by {}", visible_short(by, 24)),
        (None, None) => String::new(),
    }
}

/// How the account's own row stands: its verdict under the rules in force,
/// and every problem keyfall sees in it.
fn verdict_lines(model: &Model, hop: &Hop, ty: &str, s: &Setting, t: Theme) -> Vec<Line<'static>> {
    let judged = registry::judge(ty, &s.config, s.is_active);
    let mut out = Vec::new();
    match model.world.rules.outcome(judged.verdict) {
        Outcome::Answers => {
            let findings: Vec<String> =
                judged.issues.iter().map(Issue::finding).chain(judged.notes.iter().cloned()).collect();
            if findings.is_empty() {
                out.push(Line::from(Span::styled("✓ answers for this account", t.ok())));
            } else {
                out.extend(findings_lines(&findings, t));
            }
        }
        Outcome::MovesOn => {
            let then = match (&hop.answered_by, &hop.error) {
                (Some(by), _) => format!("; {} answers instead", visible(by)),
                (None, Some(_)) => {
                    let at = hop.steps.last().map(|x| visible(&x.account).into_owned()).unwrap_or_default();
                    format!("; the app raises at {at}")
                }
                (None, None) => "; nothing answers".into(),
            };
            out.push(Line::from(Span::styled(
                format!("⚠ skipped: {} — {}{then}", judged.verdict.as_str(), judged.reason()),
                t.warn(),
            )));
            // What the reason does not say already: later issues, notes.
            let said = |i: usize, issue: &Issue| {
                if judged.verdict == Verdict::BadFields { issue.verdict == Verdict::BadFields } else { i == 0 }
            };
            let more = judged.issues.iter().enumerate().filter(|(i, x)| !said(*i, x)).map(|(_, x)| x.message.clone());
            for text in more.chain(judged.notes.iter().cloned()) {
                out.push(Line::from(Span::styled(format!("  ⚠ {}", visible(&text)), t.warn())));
            }
        }
        Outcome::Fails => {
            out.push(Line::from(Span::styled(
                format!("✗ fails: {} — {}; nothing answers", judged.verdict.as_str(), judged.reason()),
                t.bad(),
            )));
            if let Some(error) = &hop.error {
                out.push(Line::from(Span::styled(format!("  ✗ {}", visible(error)), t.bad())));
            }
        }
    }
    if let Some(second) = &hop.hop {
        out.push(hop_summary(second, t));
    }
    out
}

/// An answering row's findings: a count, then one line each.
fn findings_lines(findings: &[String], t: Theme) -> Vec<Line<'static>> {
    if findings.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Line::from(Span::styled(format!("⚠ answers, with {}", problems(findings.len())), t.warn()))];
    for f in findings {
        out.push(Line::from(Span::styled(format!("  ⚠ {}", visible(f)), t.warn())));
    }
    out
}

/// A consumer's own `apiKey` field, as lint L001 sees it: a real key is an
/// error; an empty one is a leftover the app never reads, an error only
/// when the row names no provider either.
fn consumer_key_line(ty: &str, s: &Setting, key: &Value, t: Theme) -> Line<'static> {
    let real = match key {
        Value::String(k) => !registry::is_blank(k),
        other => registry::is_truthy(other),
    };
    let provider = s.config.get("provider").is_some_and(registry::is_truthy);
    if real {
        Line::from(Span::styled(
            format!("⚠ L001 {} carries its own apiKey; it should name a provider", visible(ty)),
            t.warn(),
        ))
    } else if !provider && s.is_active {
        Line::from(Span::styled("⚠ L001 no provider, only an empty apiKey: name a provider", t.warn()))
    } else {
        Line::from(Span::styled("L001 an empty apiKey field, a harmless leftover", t.dim()))
    }
}

fn hop_summary(second: &Hop, t: Theme) -> Line<'static> {
    match (&second.answered_by, &second.error) {
        (Some(by), _) => Line::from(Span::styled(
            format!("└ {} key from {}", visible(&second.integration_type), visible(by)),
            t.dim(),
        )),
        (None, Some(_)) => Line::from(Span::styled(
            format!("└ {}: the app raises on the second hop", visible(&second.integration_type)),
            t.bad(),
        )),
        (None, None) => Line::from(Span::styled(
            format!("└ {}: nothing answers the second hop", visible(&second.integration_type)),
            t.bad(),
        )),
    }
}

fn config_lines(ty: &str, s: &Setting, t: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(map) = s.config.as_object() else {
        out.push(Line::from(Span::styled(
            format!("config is {}, not an object:", registry::json_kind(&s.config)),
            t.bad(),
        )));
        out.push(Line::from(visible_short(&crate::domain::secret::mask_config(&s.config).to_string(), 400)));
        return out;
    };
    let Some(spec) = registry::spec(ty) else {
        // A type keyfall does not know: its config as raw JSON, secrets
        // masked, every line made safe.
        out.push(Line::from(Span::styled("a type keyfall does not know; raw config:", t.dim())));
        let pretty = serde_json::to_string_pretty(&crate::domain::secret::mask_config(&s.config)).unwrap_or_default();
        out.extend(pretty.lines().take(200).map(|l| Line::from(visible_short(l, 400))));
        return out;
    };
    // Room for every registry field's name, and at least 12 for others.
    let width = registry::widest_field().0.max(12);
    for field in spec.fields {
        let value = map.get(field.name);
        let shown = match (value, field.kind) {
            (None | Some(Value::Null), _) if field.required && spec.kind == Kind::Consumer => {
                Span::styled("— missing (required)", t.bad())
            }
            (None | Some(Value::Null), FieldKind::Secret) => Span::styled("— missing", t.bad()),
            (None | Some(Value::Null), _) => Span::styled("—", t.dim()),
            (Some(v), FieldKind::Secret) => secret_span(v, t),
            (Some(v), _) => value_span(v),
        };
        out.push(Line::from(vec![Span::styled(format!("{:<width$} ", field.name), t.dim()), shown]));
    }
    // Fields the registry does not list are kept (the Django app may use
    // them) and shown after.
    let mut extra: Vec<&String> = map.keys().filter(|k| spec.field(k).is_none()).collect();
    extra.sort();
    for key in extra {
        let v = &map[key];
        let shown = if is_secret_field(key) { secret_span(v, t) } else { value_span(v) };
        let real_key = match v {
            Value::String(k) => !registry::is_blank(k),
            other => registry::is_truthy(other),
        };
        let note = if key == "apiKey" && spec.kind == Kind::Consumer && real_key {
            Span::styled("  ⚠ L001 a consumer has its own apiKey", t.warn())
        } else if key == "apiKey" && spec.kind == Kind::Consumer {
            Span::styled("  (a leftover the app never reads)", t.dim())
        } else {
            Span::styled("  (not in the registry)", t.dim())
        };
        out.push(Line::from(vec![
            Span::styled(format!("{:<width$} ", visible_short(key, width)), t.dim()),
            shown,
            note,
        ]));
    }
    out
}

fn secret_span(v: &Value, t: Theme) -> Span<'static> {
    match v {
        Value::String(s) if s.is_empty() => Span::styled("\"\" (empty)", t.bad()),
        Value::String(s) => Span::raw(Secret::new(s.clone()).masked()),
        other => Span::styled(Secret::new(other.to_string()).masked(), t.bad()),
    }
}

/// A non-secret field's value, masked where it is shaped like a secret;
/// nested objects and arrays are masked too, since a secret can hide at any
/// depth, by name or by shape.
fn value_span(v: &Value) -> Span<'static> {
    match crate::domain::secret::mask_config(v) {
        Value::String(s) => Span::raw(visible_short(&s, 200)),
        other => Span::raw(visible_short(&other.to_string(), 200)),
    }
}

/// "1 problem", "2 problems".
pub(super) fn problems(n: usize) -> String {
    if n == 1 { "1 problem".to_string() } else { format!("{n} problems") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_says_what_is_known_of_the_last_change_and_nothing_made_up() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z").unwrap().to_utc();
        let mut s = Setting {
            id: 1,
            account_id: 1,
            integration_type: "openai".into(),
            config: serde_json::json!({}),
            is_active: true,
            version: 7004,
            updated_at: None,
            updated_by: None,
            version_token: true,
            withheld: None,
        };
        assert_eq!(last_change(now, &s), "");
        s.updated_by = Some("dev@igny8.com".into());
        assert_eq!(last_change(now, &s), " · by dev@igny8.com");
        s.updated_at = Some(now - chrono::Duration::days(2));
        assert!(last_change(now, &s).ends_with(" by dev@igny8.com") && !last_change(now, &s).contains("0001"));
        assert_eq!(s.version_label(), "row token 7004");
    }
}
