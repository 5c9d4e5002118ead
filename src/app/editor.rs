//! Editing one setting: a form of single-line inputs (ratatui-textarea), the
//! secret one masked with `•`. A stored key is write-only: left empty, it is
//! kept. Saving goes through stages — preview (field diff and impact), then
//! the version-checked write, then done or a conflict — all driven by
//! `update`; the edits survive a failed save or a lost database.

use ratatui_textarea::{Input, Key, TextArea};
use serde_json::{Map, Value};

use crate::domain::diff::{self, FieldChange};
use crate::domain::registry::{self, FieldKind, Kind, TypeSpec};
use crate::domain::secret::{Secret, clean_pasted_secret};
use crate::domain::{Account, Setting};
use crate::store::{Conflict, ImpactRow};

/// One field of the form.
#[derive(Debug)]
pub struct FieldInput {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub input: TextArea<'static>,
    /// The stored value, shown beside a secret's empty input.
    pub stored_mask: Option<String>,
}

impl FieldInput {
    pub fn text(&self) -> String {
        self.input.lines().join("")
    }

    pub fn is_secret(&self) -> bool {
        self.kind == FieldKind::Secret
    }
}

/// Where a save stands.
#[derive(Debug)]
pub enum Stage {
    Editing,
    /// Waiting for the impact preview.
    Previewing {
        request: u64,
    },
    /// The diff and the impact are shown; enter saves.
    Confirm {
        changes: Vec<FieldChange>,
        impact: Vec<ImpactRow>,
    },
    /// Waiting for the write.
    Saving {
        request: u64,
    },
    /// Someone saved first.
    Conflict {
        conflict: Box<Conflict>,
        theirs: Option<Setting>,
    },
}

#[derive(Debug)]
pub struct Editor {
    pub account: Account,
    pub integration_type: String,
    /// The setting as it was when editing began (None: a new override).
    pub base: Option<Setting>,
    /// Where a new override was prefilled from.
    pub inherited_from: Option<String>,
    pub fields: Vec<FieldInput>,
    pub is_active: bool,
    pub focus: usize,
    pub stage: Stage,
    /// What the last paste had trimmed, or a validation problem.
    pub message: Option<String>,
    /// The config being previewed or saved.
    pub pending: Option<(Value, bool)>,
    /// The config the form started from: fields outside the registry are
    /// kept as they are.
    start: Map<String, Value>,
}

fn single_line(value: &str, secret: bool, placeholder: Option<&str>) -> TextArea<'static> {
    let mut t = TextArea::new(vec![value.to_string()]);
    if secret {
        t.set_mask_char('•');
    }
    if let Some(p) = placeholder {
        t.set_placeholder_text(p);
    }
    t.set_cursor_line_style(ratatui::style::Style::default());
    t.move_cursor(ratatui_textarea::CursorMove::End);
    t
}

impl Editor {
    /// A form for `account`'s own setting (`base`), or — when it has none —
    /// a new override prefilled from the inherited setting (keys left empty).
    pub fn open(
        spec: &'static TypeSpec,
        account: Account,
        base: Option<Setting>,
        inherited: Option<(String, Setting)>,
    ) -> Result<Editor, String> {
        Editor::open_with(spec, account, base, inherited, None)
    }

    /// As `open`, with the form filled from `prefill` instead (a revert):
    /// `base` still anchors the version check.
    pub fn open_with(
        spec: &'static TypeSpec,
        account: Account,
        base: Option<Setting>,
        inherited: Option<(String, Setting)>,
        prefill: Option<Map<String, Value>>,
    ) -> Result<Editor, String> {
        let start = match (&base, &inherited) {
            _ if prefill.is_some() => prefill.unwrap_or_default(),
            (Some(s), _) => s.config.as_object().cloned().ok_or_else(|| {
                format!("the stored config is {}, not an object: fix it first", registry::json_kind(&s.config))
            })?,
            (None, Some((_, s))) => s
                .config
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| spec.field(k).is_none_or(|f| f.kind != FieldKind::Secret))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            (None, None) => Map::new(),
        };
        let fields = spec
            .fields
            .iter()
            .map(|f| {
                let secret = f.kind == FieldKind::Secret;
                let stored = start.get(f.name);
                let (value, stored_mask) = match (secret, stored) {
                    (true, Some(Value::String(k))) if !k.is_empty() => {
                        (String::new(), Some(Secret::new(k.clone()).masked()))
                    }
                    (true, _) => (String::new(), None),
                    (false, Some(Value::String(s))) => (s.clone(), None),
                    (false, Some(Value::Null) | None) => (String::new(), None),
                    (false, Some(other)) => (other.to_string(), None),
                };
                let placeholder = match (&stored_mask, f.kind) {
                    (Some(_), FieldKind::Secret) => Some("stored key kept unless you type a new one"),
                    (None, FieldKind::Secret) => Some("type or paste the key"),
                    (_, FieldKind::ProviderRef) => Some("openai or runware"),
                    _ => None,
                };
                FieldInput {
                    name: f.name,
                    label: f.label,
                    kind: f.kind,
                    input: single_line(&value, secret, placeholder),
                    stored_mask,
                }
            })
            .collect();
        Ok(Editor {
            is_active: base.as_ref().map(|s| s.is_active).unwrap_or(true),
            inherited_from: if base.is_none() { inherited.map(|(from, _)| from) } else { None },
            account,
            integration_type: spec.name.to_string(),
            base,
            fields,
            focus: 0,
            stage: Stage::Editing,
            message: None,
            pending: None,
            start,
        })
    }

    pub fn spec(&self) -> &'static TypeSpec {
        registry::spec(&self.integration_type).expect("editors exist for registry types only")
    }

    pub fn expected_version(&self) -> i64 {
        self.base.as_ref().map(|s| s.version).unwrap_or(0)
    }

    pub fn focused(&mut self) -> &mut FieldInput {
        let i = self.focus.min(self.fields.len() - 1);
        &mut self.fields[i]
    }

    pub fn move_focus(&mut self, delta: isize) {
        let n = self.fields.len() as isize;
        self.focus = ((self.focus as isize + delta).rem_euclid(n)) as usize;
    }

    /// A key typed into the focused field.
    pub fn type_key(&mut self, key: &str) {
        let input = match key {
            "backspace" => Input { key: Key::Backspace, ..Input::default() },
            "delete" => Input { key: Key::Delete, ..Input::default() },
            "left" => Input { key: Key::Left, ..Input::default() },
            "right" => Input { key: Key::Right, ..Input::default() },
            "home" => Input { key: Key::Home, ..Input::default() },
            "end" => Input { key: Key::End, ..Input::default() },
            "space" => Input { key: Key::Char(' '), ..Input::default() },
            k if k.chars().count() == 1 => {
                Input { key: Key::Char(k.chars().next().unwrap_or(' ')), ..Input::default() }
            }
            _ => return,
        };
        self.message = None;
        self.focused().input.input(input);
    }

    /// A paste into the focused field: a key loses surrounding whitespace,
    /// line breaks and quotes (and says so); other fields lose line breaks.
    pub fn paste(&mut self, text: &str) {
        let field = self.focused();
        if field.is_secret() {
            let (clean, trimmed) = clean_pasted_secret(text);
            field.input.insert_str(clean);
            self.message =
                (!trimmed.is_empty()).then(|| format!("trimmed {} from the pasted key", trimmed.join(" and ")));
        } else {
            let clean: String = text.chars().filter(|c| !c.is_control()).collect();
            field.input.insert_str(clean);
            self.message = None;
        }
    }

    /// The new key typed so far, if any: its mask and fingerprint, and a
    /// warning when it does not look like this provider's keys.
    pub fn key_feedback(&self) -> Option<(String, Option<String>)> {
        let field = self.fields.iter().find(|f| f.is_secret())?;
        let typed = field.text();
        if typed.is_empty() {
            return None;
        }
        let key = Secret::new(typed);
        let mut warning = None;
        if let Some(prefix) = self.spec().key_prefix
            && !key.expose().starts_with(prefix)
        {
            warning = Some(format!("{} keys usually start with {prefix:?}", self.spec().label));
        }
        if key.expose().chars().any(|c| c.is_whitespace() || c == '"' || c == '\'') {
            warning = Some("whitespace or quotes inside the key (lint L008)".into());
        }
        Some((key.masked(), warning))
    }

    /// Models the registry knows, to suggest; and a warning when the typed
    /// model is not one of them (free text is allowed: lint L004).
    pub fn model_hint(&self) -> Option<(Vec<&'static str>, bool)> {
        let field = self.fields.iter().find(|f| f.name == "model")?;
        let typed = field.text();
        let known = self.spec().known_models;
        let suggestions: Vec<&'static str> =
            known.iter().copied().filter(|m| typed.is_empty() || m.starts_with(typed.trim())).take(5).collect();
        let unknown = !typed.trim().is_empty() && !registry::is_known_model(self.spec(), typed.trim());
        Some((suggestions, unknown))
    }

    /// The config and active flag the form describes, or what is wrong.
    pub fn build(&self) -> Result<(Value, bool), String> {
        let mut map = self.start.clone();
        for f in &self.fields {
            let text = f.text();
            let value = text.trim();
            match f.kind {
                FieldKind::Secret => {
                    if !value.is_empty() {
                        map.insert(f.name.to_string(), Value::String(value.to_string()));
                    }
                }
                _ if value.is_empty() => {
                    map.remove(f.name);
                }
                FieldKind::Text => {
                    map.insert(f.name.to_string(), Value::String(value.to_string()));
                }
                FieldKind::ProviderRef => {
                    if !registry::provider_names().any(|p| p == value) {
                        return Err(format!(
                            "{}: {value:?} is not one of {}",
                            f.label,
                            registry::provider_names().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    map.insert(f.name.to_string(), Value::String(value.to_string()));
                }
                FieldKind::Number { min, max } => {
                    let n: f64 = value.parse().map_err(|_| format!("{}: {value:?} is not a number", f.label))?;
                    if !(min..=max).contains(&n) {
                        return Err(format!("{}: {n} is outside {min}–{max}", f.label));
                    }
                    let number = serde_json::Number::from_f64(n).ok_or_else(|| format!("{}: not finite", f.label))?;
                    map.insert(f.name.to_string(), Value::Number(number));
                }
                FieldKind::Integer { min } => {
                    let n: i64 = value.parse().map_err(|_| format!("{}: {value:?} is not a whole number", f.label))?;
                    if n < min {
                        return Err(format!("{}: {n} is below {min}", f.label));
                    }
                    map.insert(f.name.to_string(), Value::from(n));
                }
            }
        }
        if self.spec().kind == Kind::Provider && self.base.is_none() && !map.contains_key("apiKey") {
            return Err("a new provider override needs its own key".into());
        }
        Ok((Value::Object(map), self.is_active))
    }

    /// Our changes (against the version we started from) applied on top of
    /// `theirs` — an overwrite keeps what they changed and we did not (a
    /// key they rotated stays rotated unless we typed a new one).
    pub fn rebased(&self, theirs: Option<&Setting>) -> Option<(Value, bool)> {
        let (ours, active) = self.pending.clone()?;
        let (Some(theirs), Some(base)) = (theirs, &self.base) else { return Some((ours, active)) };
        let (Some(ours_map), Some(base_map), Some(theirs_map)) =
            (ours.as_object(), base.config.as_object(), theirs.config.as_object())
        else {
            return Some((ours, active));
        };
        let mut merged = theirs_map.clone();
        let keys: std::collections::BTreeSet<&String> = ours_map.keys().chain(base_map.keys()).collect();
        for k in keys {
            match (base_map.get(k), ours_map.get(k)) {
                (b, Some(o)) if b != Some(o) => {
                    merged.insert(k.clone(), o.clone());
                }
                (Some(_), None) => {
                    merged.remove(k);
                }
                _ => {}
            }
        }
        let active = if active != base.is_active { active } else { theirs.is_active };
        Some((Value::Object(merged), active))
    }

    /// The field diff against the stored setting, secrets as fingerprints.
    pub fn changes(&self, config: &Value, is_active: bool) -> Vec<FieldChange> {
        let version = |c: &Value, a: bool| serde_json::json!({"config": crate::domain::secret::fingerprint_config(c), "is_active": a});
        let before = self.base.as_ref().map(|s| version(&s.config, s.is_active));
        diff::changes(before.as_ref(), Some(&version(config, is_active)))
    }
}
