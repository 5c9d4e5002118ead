//! Editing one setting: a form of single-line inputs (ratatui-textarea), the
//! secret one masked with `•`. A stored key is write-only: left empty, it is
//! kept. Saving goes through stages — preview (field diff and impact), then
//! the version-checked write, then done or a conflict — all driven by
//! `update`; the edits survive a failed save or a lost database. The
//! editor's state; its keys and view are `app::editor::{keys, view}`.

use std::fmt;

use ratatui_textarea::{Input, Key, TextArea};
use serde_json::{Map, Value};

use chrono::{DateTime, Utc};

use crate::domain::change::{Conflict, ImpactRow};
use crate::domain::diff::{self, FieldChange};
use crate::domain::merge::{self, Merge, Side};
use crate::domain::registry::{self, FieldKind, Kind, TypeSpec};
use crate::domain::secret::{Secret, clean_pasted_secret, mask_config, mask_within, shape_masked};
use crate::domain::{Account, Setting};

/// One field of the form: every field of the registry type, then every
/// other field the stored setting has (kept, shown, editable, removable).
/// Its `Debug` masks what was typed as a config is masked.
pub struct FieldInput {
    pub name: String,
    pub label: String,
    pub kind: FieldKind,
    pub input: TextArea<'static>,
    /// The stored value, shown beside a secret's empty input.
    pub stored_mask: Option<String>,
    /// Not a registry field: the setting has it (the Django app may use it).
    pub extra: bool,
    /// The stored value was not a string: the text is JSON.
    pub json: bool,
    /// Marked for removal: saving drops the field.
    pub removed: bool,
    /// The text the form opened with, to know what changed.
    initial: String,
    /// Prefilled from another account's setting (a new override): its slug.
    pub copied_from: Option<String>,
}

impl FieldInput {
    pub fn text(&self) -> String {
        self.input.lines().join("")
    }

    pub fn is_secret(&self) -> bool {
        self.kind == FieldKind::Secret
    }

    /// Whether the text is still what the form opened with.
    pub fn unchanged(&self) -> bool {
        !self.removed && self.text() == self.initial
    }

    /// Whether the stored setting has this field (something to remove).
    pub fn stored(&self) -> bool {
        self.stored_mask.is_some() || !self.initial.is_empty() || self.extra
    }

    /// The text as `Debug` shows it: masked when the field is a secret, is
    /// named like one, or the text is shaped like one (a key typed into
    /// the wrong field).
    fn masked_text(&self) -> Value {
        let text = Value::String(self.text());
        if self.is_secret() && !self.text().is_empty() {
            return mask_within(&text, true);
        }
        let mut one = Map::new();
        one.insert(self.name.clone(), text);
        mask_config(&Value::Object(one)).get(&self.name).cloned().unwrap_or(Value::Null)
    }
}

impl fmt::Debug for FieldInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldInput")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("text", &self.masked_text())
            .field("stored_mask", &self.stored_mask)
            .field("extra", &self.extra)
            .field("json", &self.json)
            .field("removed", &self.removed)
            .field("changed", &(self.text() != self.initial))
            .finish_non_exhaustive()
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
    /// Someone saved first; `asking`: "overwrite theirs?" is on screen.
    Conflict {
        conflict: Box<Conflict>,
        theirs: Option<Setting>,
        asking: bool,
    },
    /// "Discard your edits?" — then close the form, quit keyfall, or
    /// (`reload`, after a conflict) show what is stored.
    Discard {
        quit: bool,
        reload: bool,
        previous: Box<Stage>,
    },
    /// Merging after a conflict: the fields both sides changed, each kept
    /// from theirs or yours (`choices`, by clash); enter merges.
    Merging {
        conflict: Box<Conflict>,
        theirs: Box<Setting>,
        merge: Merge,
        active: bool,
        choices: Vec<Side>,
        focus: usize,
    },
}

/// A restore to just before audit entry `entry` (issue 23): the keys of
/// then that the log could not give back (field, fingerprint) — today's
/// stays unless that very key is typed (checked by its fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restoring {
    pub entry: i64,
    pub missing_keys: Vec<(String, String)>,
}

/// The row changed underneath the open form (heard live).
#[derive(Debug, Clone, PartialEq)]
pub struct Underneath {
    /// Its version (or row token) now.
    pub version: i64,
    /// Who changed it and when, once the audit entry is read.
    pub actor: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

/// The form. Its `Debug` masks every config it holds (the one it started
/// from, the one being saved) and every field's text: a `{:?}` after a key
/// was typed shows its mask, never the key.
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
    /// The audit entry this edit reverts (recorded with the save).
    pub revert_of: Option<i64>,
    /// A restore to just before an audit entry (recorded with the save).
    pub restore_of: Option<Restoring>,
    /// The stored row moved on since the form opened (a save will conflict).
    pub underneath: Option<Underneath>,
    /// The config the form started from: fields not in the form are kept
    /// as they are.
    start: Map<String, Value>,
    initial_active: bool,
}

impl fmt::Debug for Editor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Editor")
            .field("account", &self.account)
            .field("integration_type", &self.integration_type)
            .field("base", &self.base)
            .field("inherited_from", &self.inherited_from)
            .field("fields", &self.fields)
            .field("is_active", &self.is_active)
            .field("focus", &self.focus)
            .field("stage", &self.stage)
            .field("message", &self.message)
            .field("pending", &self.pending.as_ref().map(|(config, active)| (mask_config(config), active)))
            .field("revert_of", &self.revert_of)
            .field("restore_of", &self.restore_of)
            .field("underneath", &self.underneath)
            .field("start", &mask_config(&Value::Object(self.start.clone())))
            .field("initial_active", &self.initial_active)
            .finish()
    }
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
        let prefilled = prefill.is_some();
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
        let input = |name: &str, label: &str, kind: FieldKind, extra: bool| {
            let secret = kind == FieldKind::Secret;
            let stored = start.get(name);
            let (value, stored_mask, json) = match (secret, stored) {
                (true, Some(Value::String(k))) if !k.is_empty() => {
                    (String::new(), Some(Secret::new(k.clone()).masked()), false)
                }
                (true, Some(Value::String(_))) => (String::new(), Some("\"\" (empty)".to_string()), false),
                (true, Some(other)) => (String::new(), Some(Secret::new(other.to_string()).masked()), true),
                (true, None) => (String::new(), None, false),
                (false, Some(Value::String(s))) => (s.clone(), None, false),
                (false, Some(Value::Null) | None) => (String::new(), None, extra),
                (false, Some(other)) => (other.to_string(), None, true),
            };
            let placeholder = match (&stored_mask, kind) {
                (Some(_), FieldKind::Secret) => Some("stored key kept unless you type a new one".to_string()),
                (None, FieldKind::Secret) => Some("type or paste the key".to_string()),
                (_, FieldKind::ProviderRef) => Some(registry::provider_choices()),
                _ => None,
            };
            FieldInput {
                name: name.to_string(),
                label: label.to_string(),
                kind,
                input: single_line(&value, secret, placeholder.as_deref()),
                stored_mask,
                extra,
                json,
                removed: false,
                initial: value,
                copied_from: None,
            }
        };
        let mut fields: Vec<FieldInput> = spec.fields.iter().map(|f| input(f.name, f.label, f.kind, false)).collect();
        // Every other field the setting has: kept, shown, removable.
        for name in start.keys().filter(|k| spec.field(k).is_none()) {
            // A secret by name or by shape, at any depth, stays masked.
            let secret = crate::domain::secret::is_secret_field(name)
                || start.get(name).is_some_and(crate::domain::secret::contains_secret);
            let kind = if secret { FieldKind::Secret } else { FieldKind::Text };
            fields.push(input(name, name, kind, true));
        }
        // A new override's prefilled fields say where they came from.
        if let (None, false, Some((from, _))) = (&base, prefilled, &inherited) {
            for f in fields.iter_mut().filter(|f| !f.initial.is_empty()) {
                f.copied_from = Some(from.clone());
            }
        }
        let is_active = base.as_ref().map(|s| s.is_active).unwrap_or(true);
        Ok(Editor {
            is_active,
            initial_active: is_active,
            inherited_from: if base.is_none() { inherited.map(|(from, _)| from) } else { None },
            account,
            integration_type: spec.name.to_string(),
            base,
            fields,
            focus: 0,
            stage: Stage::Editing,
            message: None,
            pending: None,
            revert_of: None,
            restore_of: None,
            underneath: None,
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

    /// Whether closing the form would throw something away.
    pub fn is_dirty(&self) -> bool {
        self.is_active != self.initial_active || self.fields.iter().any(|f| f.removed || f.text() != f.initial)
    }

    /// Ask "discard your edits?" before closing (or quitting).
    pub fn ask_discard(&mut self, quit: bool) {
        let previous = std::mem::replace(&mut self.stage, Stage::Editing);
        self.stage = Stage::Discard { quit, reload: false, previous: Box::new(previous) };
    }

    /// Ask "discard your edits and reload?" (after a conflict).
    pub fn ask_reload(&mut self) {
        let previous = std::mem::replace(&mut self.stage, Stage::Editing);
        self.stage = Stage::Discard { quit: false, reload: true, previous: Box::new(previous) };
    }

    /// "No": back to where the question was asked.
    pub fn back_from_discard(&mut self) {
        if let Stage::Discard { previous, .. } = std::mem::replace(&mut self.stage, Stage::Editing) {
            self.stage = *previous;
        }
    }

    /// Mark the focused field for removal, or take the mark back. A
    /// field the setting does not have has nothing to remove: it is cleared.
    pub fn remove_focused(&mut self) {
        let field = self.focused();
        if field.removed {
            field.removed = false;
        } else if field.stored() {
            field.removed = true;
            field.input = single_line("", field.is_secret(), None);
        } else {
            field.input = single_line("", field.is_secret(), None);
        }
        let name = field.name.clone();
        let removed = field.removed;
        self.message = Some(if removed {
            format!("{name} will be removed on save (press again to keep it)")
        } else {
            format!("{name} kept")
        });
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
        let field = self.focused();
        field.removed = false;
        field.input.input(input);
    }

    /// A paste into the focused field: a key loses surrounding whitespace,
    /// line breaks and quotes (and says so); other fields lose line breaks.
    pub fn paste(&mut self, text: &str) {
        let field = self.focused();
        field.removed = false;
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

    /// The new key typed so far, if any: the mask and fingerprint of what
    /// will be stored (surrounding whitespace trimmed, and then said so),
    /// and a warning when it does not look like this provider's keys.
    pub fn key_feedback(&self) -> Option<(String, Option<String>)> {
        let field = self.fields.get(self.focus).filter(|f| f.is_secret() && !f.text().is_empty());
        let field = field.or_else(|| self.fields.iter().find(|f| f.is_secret() && !f.text().is_empty()))?;
        let typed = field.text();
        let stored = typed.trim();
        if stored.is_empty() {
            return Some(("(only spaces: nothing will be stored)".into(), None));
        }
        let key = Secret::new(stored.to_string());
        let mut warning = (stored.len() != typed.len())
            .then(|| "surrounding spaces will be trimmed: the fingerprint is of the trimmed key".to_string());
        if let Some(prefix) = self.spec().key_prefix.filter(|_| !field.extra)
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

    /// A restore's keys: a key typed where the one of then could not be
    /// restored must be that key (its fingerprint); none typed keeps today's.
    pub fn restore_check(&self) -> Result<(), String> {
        let Some(restoring) = &self.restore_of else { return Ok(()) };
        for (name, fp) in &restoring.missing_keys {
            let Some(field) = self.fields.iter().find(|f| &f.name == name) else { continue };
            let typed = field.text();
            let typed = typed.trim();
            if !typed.is_empty() && crate::domain::secret::fingerprint(typed) != *fp {
                return Err(format!(
                    "{}: the key typed is not the key of just before #{} ({fp}); type that key, or clear the field to keep today's",
                    field.label, restoring.entry
                ));
            }
        }
        Ok(())
    }

    /// The config and active flag the form describes, or what is wrong.
    pub fn build(&self) -> Result<(Value, bool), String> {
        let mut map = self.start.clone();
        for f in &self.fields {
            let text = f.text();
            let value = text.trim();
            let name = f.name.as_str();
            // What a message quotes back: a key typed into the wrong field is masked.
            let quoted = shape_masked(value);
            if f.removed {
                map.remove(name);
                continue;
            }
            if f.extra && f.kind != FieldKind::Secret {
                if value.is_empty() {
                    map.remove(name);
                } else if text != f.initial {
                    // JSON where the stored value was JSON (a number, an
                    // object), else text.
                    let v = if f.json {
                        serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()))
                    } else {
                        Value::String(value.to_string())
                    };
                    map.insert(name.to_string(), v);
                }
                continue;
            }
            match f.kind {
                FieldKind::Secret => {
                    if !value.is_empty() {
                        map.insert(name.to_string(), Value::String(value.to_string()));
                    }
                }
                _ if value.is_empty() => {
                    map.remove(name);
                }
                FieldKind::Text => {
                    map.insert(name.to_string(), Value::String(value.to_string()));
                }
                FieldKind::ProviderRef => {
                    if !registry::provider_names().any(|p| p == value) {
                        return Err(format!(
                            "{}: {quoted:?} is not one of {}",
                            f.label,
                            registry::provider_names().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    map.insert(name.to_string(), Value::String(value.to_string()));
                }
                FieldKind::Number { min, max } => {
                    let n: f64 = value.parse().map_err(|_| format!("{}: {quoted:?} is not a number", f.label))?;
                    if !(min..=max).contains(&n) {
                        return Err(format!("{}: {n} is outside {min}–{max}", f.label));
                    }
                    let number = serde_json::Number::from_f64(n).ok_or_else(|| format!("{}: not finite", f.label))?;
                    map.insert(name.to_string(), Value::Number(number));
                }
                FieldKind::Integer { min } => {
                    let n: i64 = value.parse().map_err(|_| format!("{}: {quoted:?} is not a whole number", f.label))?;
                    if n < min {
                        return Err(format!("{}: {n} is below {min}", f.label));
                    }
                    map.insert(name.to_string(), Value::from(n));
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

    /// The three-way merge of the config being saved with `theirs`: your
    /// changed fields (against the version the form opened) on top of
    /// their row; the active flag likewise (a flag cannot clash).
    pub fn merge_with(&self, theirs: &Setting) -> Option<(Merge, bool)> {
        let (ours, active) = self.pending.as_ref()?;
        let base = self.base.as_ref().and_then(|b| b.config.as_object().cloned()).unwrap_or_default();
        let merged = merge::three_way(&base, ours.as_object()?, theirs.config.as_object()?);
        let active = *merge::pick(&self.initial_active, active, &theirs.is_active).unwrap_or(active);
        Some((merged, active))
    }

    /// Put the form on `theirs`: the version a save now checks against;
    /// the fields show `config` (a merge's result), each field differing
    /// from theirs counted as your edit; a key you typed stays typed (their
    /// key is what the form shows as stored, masked).
    pub fn rebase(&mut self, theirs: &Setting, config: Map<String, Value>, active: bool) -> Result<(), String> {
        let spec = self.spec();
        let stored = theirs.config.as_object().cloned().unwrap_or_default();
        let mut start = config.clone();
        let mut typed = Vec::new();
        for f in self.fields.iter().filter(|f| f.is_secret() && !f.text().is_empty()) {
            if config.get(&f.name) != stored.get(&f.name) {
                typed.push((f.name.clone(), f.text()));
                match stored.get(&f.name) {
                    Some(v) => start.insert(f.name.clone(), v.clone()),
                    None => start.remove(&f.name),
                };
            }
        }
        let fresh = Editor::open(spec, self.account.clone(), Some(theirs.clone()), None)?;
        let mut next = Editor::open_with(spec, self.account.clone(), Some(theirs.clone()), None, Some(start))?;
        for f in &mut next.fields {
            f.initial = fresh.fields.iter().find(|g| g.name == f.name).map(|g| g.initial.clone()).unwrap_or_default();
            if let Some((_, text)) = typed.iter().find(|(n, _)| *n == f.name) {
                f.input = single_line(text, true, None);
            } else if !config.contains_key(&f.name) && stored.contains_key(&f.name) {
                f.removed = true;
                f.input = single_line("", f.is_secret(), None);
            }
        }
        next.is_active = active;
        next.initial_active = theirs.is_active;
        next.focus = self.focus.min(next.fields.len().saturating_sub(1));
        next.revert_of = self.revert_of;
        next.restore_of = self.restore_of.clone();
        *self = next;
        Ok(())
    }

    /// The field diff against the stored setting, secrets as fingerprints.
    pub fn changes(&self, config: &Value, is_active: bool) -> Vec<FieldChange> {
        let version = |c: &Value, a: bool| serde_json::json!({"config": crate::domain::secret::fingerprint_config(c), "is_active": a});
        let before = self.base.as_ref().map(|s| version(&s.config, s.is_active));
        diff::changes(before.as_ref(), Some(&version(config, is_active)))
    }
}
