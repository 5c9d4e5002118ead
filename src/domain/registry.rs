//! The integration-type registry (DESIGN §3): which types exist, whether each
//! is a provider (holds a key) or a consumer (points at a provider), and the
//! shape of their fields. The SQL function `keyfall_row_verdict` mirrors
//! `judge`; the report-equivalence property test holds them together.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Holds its own `apiKey`.
    Provider,
    /// Answers with a `provider` reference resolved in a second hop.
    Consumer,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    /// A credential: a string, masked everywhere.
    Secret,
    Text,
    /// One of the provider types.
    ProviderRef,
    /// A number within an inclusive range.
    Number {
        min: f64,
        max: f64,
    },
    /// A whole number of at least `min`.
    Integer {
        min: i64,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    pub label: &'static str,
}

#[derive(Debug)]
pub struct TypeSpec {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub fields: &'static [Field],
    pub known_models: &'static [&'static str],
    /// The prefix a well-formed key starts with, if the provider has one.
    pub key_prefix: Option<&'static str>,
}

const fn field(name: &'static str, kind: FieldKind, required: bool, label: &'static str) -> Field {
    Field { name, kind, required, label }
}

pub static TYPES: [TypeSpec; 3] = [
    TypeSpec {
        name: "openai",
        label: "OpenAI",
        kind: Kind::Provider,
        fields: &[
            field("apiKey", FieldKind::Secret, true, "API key"),
            field("model", FieldKind::Text, false, "Model"),
            field("base_url", FieldKind::Text, false, "Base URL"),
            field("temperature", FieldKind::Number { min: 0.0, max: 2.0 }, false, "Temperature"),
            field("max_tokens", FieldKind::Integer { min: 1 }, false, "Max tokens"),
        ],
        known_models: &[
            "gpt-4o-mini",
            "gpt-4o",
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "gpt-4-turbo",
            "gpt-3.5-turbo",
            "o1",
            "o1-mini",
            "o3",
            "o3-mini",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
        ],
        key_prefix: Some("sk-"),
    },
    TypeSpec {
        name: "runware",
        label: "Runware",
        kind: Kind::Provider,
        fields: &[
            field("apiKey", FieldKind::Secret, true, "API key"),
            field("model", FieldKind::Text, false, "Model"),
            field("base_url", FieldKind::Text, false, "Base URL"),
        ],
        known_models: &["runware:100@1", "runware:101@1", "civitai:4384@128713"],
        key_prefix: None,
    },
    TypeSpec {
        name: "image_generation",
        label: "Image generation",
        kind: Kind::Consumer,
        fields: &[
            field("provider", FieldKind::ProviderRef, true, "Provider"),
            field("model", FieldKind::Text, false, "Model"),
            field("image_size", FieldKind::Text, false, "Image size"),
            field("quality", FieldKind::Text, false, "Quality"),
            field("style", FieldKind::Text, false, "Style"),
        ],
        known_models: &["dall-e-3", "dall-e-2", "gpt-image-1", "runware:100@1", "runware:101@1"],
        key_prefix: None,
    },
];

pub fn spec(name: &str) -> Option<&'static TypeSpec> {
    TYPES.iter().find(|t| t.name == name)
}

pub fn type_names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|t| t.name)
}

pub fn provider_names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().filter(|t| t.kind == Kind::Provider).map(|t| t.name)
}

impl TypeSpec {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// What a row's config says, once it exists and is active.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// Usable. `provider` is set for a consumer: where the second hop goes.
    Usable { provider: Option<String> },
    /// A provider row without a usable key.
    NoApiKey,
    /// Not an object, or a field of the wrong type or out of range.
    Invalid { problem: Problem, reason: String },
}

/// What kind of invalid a config is: lint sorts findings by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    NotObject,
    WrongType,
    OutOfRange,
    /// A required field is absent (a consumer's `provider`).
    Missing,
    /// A provider reference names no provider type.
    NotAProvider,
}

fn invalid(problem: Problem, reason: String) -> Judgement {
    Judgement::Invalid { problem, reason }
}

/// Judge a config against its type. Unknown types only need an object.
/// Order matters and is mirrored in SQL: object → key type → key present →
/// each field in registry order.
pub fn judge(integration_type: &str, config: &Value) -> Judgement {
    let Some(map) = config.as_object() else {
        return invalid(Problem::NotObject, format!("config is {}, not an object", json_kind(config)));
    };
    let Some(spec) = spec(integration_type) else {
        return Judgement::Usable { provider: None };
    };
    if spec.kind == Kind::Provider {
        match present(map, "apiKey") {
            Some(Value::String(key)) if !is_blank(key) => {}
            Some(Value::String(_)) | None => return Judgement::NoApiKey,
            Some(other) => {
                return invalid(Problem::WrongType, format!("apiKey is {}, not a string", json_kind(other)));
            }
        }
    }
    for field in spec.fields {
        if let Err((problem, reason)) = check_field(map, field) {
            return invalid(problem, reason);
        }
    }
    let provider = match spec.kind {
        Kind::Consumer => map.get("provider").and_then(Value::as_str).map(str::to_string),
        Kind::Provider => None,
    };
    Judgement::Usable { provider }
}

/// Empty or only ASCII whitespace — the same set SQL's `btrim` is given, so
/// the pure and the set-based resolver agree on exotic spaces.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
}

/// A field's value, treating JSON `null` as absent (Django writes `None`).
fn present<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|v| !v.is_null())
}

fn check_field(map: &Map<String, Value>, field: &Field) -> Result<(), (Problem, String)> {
    use Problem::*;
    let name = field.name;
    let Some(value) = present(map, name) else {
        return if field.required && field.kind != FieldKind::Secret {
            Err((Missing, format!("{name} is required")))
        } else {
            Ok(())
        };
    };
    match field.kind {
        FieldKind::Secret | FieldKind::Text => match value {
            Value::String(_) => Ok(()),
            other => Err((WrongType, format!("{name} is {}, not a string", json_kind(other)))),
        },
        FieldKind::ProviderRef => match value {
            Value::String(p) if provider_names().any(|n| n == p) => Ok(()),
            Value::String(p) => Err((
                NotAProvider,
                format!(
                    "{name} {:?} is not a provider type ({})",
                    super::text::visible_short(p, 40),
                    provider_names().collect::<Vec<_>>().join(", ")
                ),
            )),
            other => Err((WrongType, format!("{name} is {}, not a string", json_kind(other)))),
        },
        FieldKind::Number { min, max } => match value.as_f64() {
            Some(n) if n >= min && n <= max => Ok(()),
            Some(n) => Err((OutOfRange, format!("{name} {n} is outside {min}–{max}"))),
            None => Err((WrongType, format!("{name} is {}, not a number", json_kind(value)))),
        },
        FieldKind::Integer { min } => match value.as_i64() {
            Some(n) if n >= min => Ok(()),
            Some(n) => Err((OutOfRange, format!("{name} {n} is below {min}"))),
            None => Err((WrongType, format!("{name} is {}, not a whole number", json_kind(value)))),
        },
    }
}

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "a whole number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
