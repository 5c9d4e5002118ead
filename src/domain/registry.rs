//! The integration-type registry (DESIGN §3): which types exist, whether each
//! is a provider (holds a key) or a consumer (points at a provider), and the
//! shape of their fields — and `judge`, the per-row rules of the app's own
//! `get_model_config` (`_usable`), which yield one raw [`Verdict`] per row.
//! The SQL function `keyfall_row_verdict` mirrors `judge` verdict for
//! verdict (the spec is on [`Verdict`]); the report-equivalence property
//! test holds them together. Which verdicts move the walk on is not decided
//! here but by `resolve::Rules`.
//!
//! The registry is the only place a type is written: the SQL reads it as
//! data ([`document`], loaded into `keyfall.registry_types` /
//! `registry_fields` at migrate and attach with its [`fingerprint`],
//! the baseline migration's registry tables). Adding a provider whose key is tested by an existing
//! protocol is one entry in [`BUILT_IN`].

use serde::Serialize;
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

#[derive(Debug, Clone)]
pub struct TypeSpec {
    pub name: &'static str,
    pub label: &'static str,
    /// One character heading the type's marker column in the console's
    /// accounts list.
    pub column: &'static str,
    pub kind: Kind,
    pub fields: &'static [Field],
    pub known_models: &'static [&'static str],
    /// The prefix a well-formed key starts with, if the provider has one.
    pub key_prefix: Option<&'static str>,
    /// How a provider's key is tested for real, if it can be; `None` for a
    /// consumer (it holds no key) and for a provider without a test.
    pub test: Option<KeyTest>,
    /// Lowercase prefixes of model names that say a model is this
    /// provider's (`dall-e` → openai), so a consumer without a provider can
    /// be given one from its model ([`provider_for_model`]). No prefix
    /// starts another type's.
    pub model_prefixes: &'static [&'static str],
}

/// Which call tests a provider's key (DESIGN §9), and where it goes when
/// the setting has no `base_url`. `connection` speaks each protocol; the
/// registry says which one a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTest {
    /// `GET {base}/models` with the key as a bearer token; a `data` array
    /// in the answer means the key works (OpenAI).
    ListModels { base: &'static str },
    /// `POST {base}` one authentication task with the key in the body; an
    /// answer without `errors` means the key works (Runware).
    AuthTask { base: &'static str },
}

impl KeyTest {
    /// The default base URL, used when the setting has no `base_url`.
    pub fn base(self) -> &'static str {
        match self {
            KeyTest::ListModels { base } | KeyTest::AuthTask { base } => base,
        }
    }
}

const fn field(name: &'static str, kind: FieldKind, required: bool, label: &'static str) -> Field {
    Field { name, kind, required, label }
}

/// Every integration type, providers before consumers: [`BUILT_IN`], and
/// in a debug build run with `KEYFALL_TEST_PROVIDER=1` one more provider
/// ([`TEST_PROVIDER`], for the tests that add a provider). Reads as a slice
/// (`TYPES.iter()`, `TYPES.len()`, `for t in &TYPES`).
pub static TYPES: Registry = Registry(());

/// The registry in force (see [`TYPES`]).
#[derive(Debug)]
pub struct Registry(());

impl std::ops::Deref for Registry {
    type Target = [TypeSpec];
    fn deref(&self) -> &[TypeSpec] {
        types()
    }
}

impl<'a> IntoIterator for &'a Registry {
    type Item = &'a TypeSpec;
    type IntoIter = std::slice::Iter<'a, TypeSpec>;
    fn into_iter(self) -> Self::IntoIter {
        types().iter()
    }
}

/// The environment variable that, in a debug build, adds [`TEST_PROVIDER`]
/// to the registry (`1`). Release builds never read it. Read by the binary
/// (`main`) and the tests' support code, which then call
/// [`enable_test_provider`]: the domain reads no environment.
pub const TEST_PROVIDER_ENV: &str = "KEYFALL_TEST_PROVIDER";

#[cfg(debug_assertions)]
static TEST_PROVIDER_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on the registry holds [`TEST_PROVIDER`] too (debug builds, for
/// the tests that add a provider; called before anything reads the
/// registry).
#[cfg(debug_assertions)]
pub fn enable_test_provider() {
    TEST_PROVIDER_ON.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn types() -> &'static [TypeSpec] {
    #[cfg(debug_assertions)]
    if TEST_PROVIDER_ON.load(std::sync::atomic::Ordering::SeqCst) {
        static WITH_TEST_PROVIDER: std::sync::OnceLock<Vec<TypeSpec>> = std::sync::OnceLock::new();
        return WITH_TEST_PROVIDER.get_or_init(|| {
            let mut all = BUILT_IN.to_vec();
            let at = all.iter().rposition(|t| t.kind == Kind::Provider).map_or(0, |i| i + 1);
            all.insert(at, TEST_PROVIDER.clone());
            all
        });
    }
    &BUILT_IN
}

/// A provider that exists only for tests (debug builds, with
/// [`TEST_PROVIDER_ENV`] set): what adding one registry entry gives, with a
/// range of its own (`temperature` 0–1, `max_tokens` from 16) so the SQL's
/// ranges are seen to come from the registry.
#[cfg(debug_assertions)]
pub static TEST_PROVIDER: TypeSpec = TypeSpec {
    name: "acme_ai",
    column: "A",
    label: "Acme AI",
    kind: Kind::Provider,
    fields: &[
        field("apiKey", FieldKind::Secret, true, "API key"),
        field("model", FieldKind::Text, false, "Model"),
        field("base_url", FieldKind::Text, false, "Base URL"),
        field("temperature", FieldKind::Number { min: 0.0, max: 1.0 }, false, "Temperature"),
        field("max_tokens", FieldKind::Integer { min: 16 }, false, "Max tokens"),
    ],
    known_models: &["acme-large", "acme-small"],
    key_prefix: Some("acme-"),
    test: Some(KeyTest::ListModels { base: "https://api.acme-ai.test/v1" }),
    model_prefixes: &["acme-"],
};

/// The types keyfall knows. Providers before consumers.
pub static BUILT_IN: [TypeSpec; 3] = [
    TypeSpec {
        name: "openai",
        column: "O",
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
        test: Some(KeyTest::ListModels { base: "https://api.openai.com/v1" }),
        model_prefixes: &["dall-e", "gpt-image"],
    },
    TypeSpec {
        name: "runware",
        column: "R",
        label: "Runware",
        kind: Kind::Provider,
        fields: &[
            field("apiKey", FieldKind::Secret, true, "API key"),
            field("model", FieldKind::Text, false, "Model"),
            field("base_url", FieldKind::Text, false, "Base URL"),
        ],
        known_models: &["runware:100@1", "runware:101@1", "civitai:4384@128713"],
        key_prefix: None,
        test: Some(KeyTest::AuthTask { base: "https://api.runware.ai/v1" }),
        model_prefixes: &["runware:", "civitai:"],
    },
    TypeSpec {
        name: "image_generation",
        column: "I",
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
        test: None,
        model_prefixes: &[],
    },
];

/// The shapes by which a secret is known, wherever it is (DESIGN §11): the
/// data of `domain::secret`'s rules, and the only place they are written.
/// The SQL reads them as data too: [`document`] carries them, keyfall loads
/// them into `keyfall.registry_secret_shapes` with the rest, and
/// `keyfall_is_secret_key` / `keyfall_is_key_shaped` are written again from
/// that table at each load (migrations/0003_secret_shapes.sql). What stays
/// code, in `domain::secret` and its SQL twin: how a name is cut into words,
/// the `Bearer` form, JWTs, high entropy, URL credentials, assignments and
/// JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretShapes {
    /// A word of a field name ending with one of these makes the field
    /// secret. Lowercase ASCII letters and digits (a name's words are).
    pub name_endings: &'static [&'static str],
    /// A name whose **last** word is one of these is secret (a short word
    /// that is secret only there: `db_pass`, not `pass_through`).
    pub name_last_words: &'static [&'static str],
    /// A value starting with one of these, followed by enough characters,
    /// is a key by itself.
    pub value_prefixes: &'static [KeyPrefix],
    /// A value holding one of these anywhere is a key (a PEM block).
    pub value_markers: &'static [&'static str],
}

/// A value shape: `prefix`, then at least `min_after` characters of `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPrefix {
    pub prefix: &'static str,
    pub min_after: usize,
    pub after: After,
}

/// Which characters must follow a [`KeyPrefix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Any characters.
    Any,
    /// ASCII uppercase letters and digits (an AWS access key id).
    UpperOrDigit,
}

impl After {
    pub fn as_str(self) -> &'static str {
        match self {
            After::Any => "any",
            After::UpperOrDigit => "upper_or_digit",
        }
    }
}

const fn key_prefix(prefix: &'static str, min_after: usize, after: After) -> KeyPrefix {
    KeyPrefix { prefix, min_after, after }
}

/// The secret shapes keyfall knows (see [`SecretShapes`]).
pub static SECRET_SHAPES: SecretShapes = SecretShapes {
    // `tokens` is deliberately not an ending: `max_tokens` is a count.
    name_endings: &[
        "key",
        "keys",
        "secret",
        "secrets",
        "token",
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "authorization",
        "credential",
        "credentials",
        "private",
        "pwd",
    ],
    name_last_words: &["pass"],
    value_prefixes: &[
        // OpenAI, Stripe-style and Runware keys.
        key_prefix("sk-", 8, After::Any),
        key_prefix("sk_", 8, After::Any),
        key_prefix("rw-", 8, After::Any),
        // AWS access key ids.
        key_prefix("AKIA", 12, After::UpperOrDigit),
        key_prefix("ASIA", 12, After::UpperOrDigit),
    ],
    value_markers: &["-----BEGIN "],
};

/// The shapes the test provider adds (debug builds, with
/// [`TEST_PROVIDER_ENV`]): its keys by their prefix, and fields named
/// `…signature` by name — what adding a secret shape to the registry gives.
#[cfg(debug_assertions)]
pub static TEST_SECRET_SHAPES: SecretShapes = SecretShapes {
    name_endings: &["signature"],
    name_last_words: &[],
    value_prefixes: &[key_prefix("acme-", 8, After::Any)],
    value_markers: &[],
};

/// The secret shapes in force: [`SECRET_SHAPES`], and in a debug build run
/// with the test provider [`TEST_SECRET_SHAPES`] too.
pub fn secret_shapes() -> &'static SecretShapes {
    #[cfg(debug_assertions)]
    if TEST_PROVIDER_ON.load(std::sync::atomic::Ordering::SeqCst) {
        type Lists = (Vec<&'static str>, Vec<&'static str>, Vec<KeyPrefix>, Vec<&'static str>);
        static LISTS: std::sync::OnceLock<Lists> = std::sync::OnceLock::new();
        static WITH_TEST_SHAPES: std::sync::OnceLock<SecretShapes> = std::sync::OnceLock::new();
        return WITH_TEST_SHAPES.get_or_init(|| {
            let (a, b) = (&SECRET_SHAPES, &TEST_SECRET_SHAPES);
            let lists = LISTS.get_or_init(|| {
                (
                    [a.name_endings, b.name_endings].concat(),
                    [a.name_last_words, b.name_last_words].concat(),
                    [a.value_prefixes, b.value_prefixes].concat(),
                    [a.value_markers, b.value_markers].concat(),
                )
            });
            SecretShapes {
                name_endings: &lists.0,
                name_last_words: &lists.1,
                value_prefixes: &lists.2,
                value_markers: &lists.3,
            }
        });
    }
    &SECRET_SHAPES
}

pub fn spec(name: &str) -> Option<&'static TypeSpec> {
    TYPES.iter().find(|t| t.name == name)
}

pub fn type_names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|t| t.name)
}

pub fn provider_names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().filter(|t| t.kind == Kind::Provider).map(|t| t.name)
}

/// The provider an image model belongs to, when its name says so: the
/// provider type one of whose [`TypeSpec::model_prefixes`] starts the
/// model's name, in any ASCII case.
pub fn provider_for_model(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    TYPES
        .iter()
        .filter(|t| t.kind == Kind::Provider)
        .find(|t| t.model_prefixes.iter().any(|p| m.starts_with(p)))
        .map(|t| t.name)
}

/// The provider types as a reader would list them: "openai or runware".
pub fn provider_choices() -> String {
    provider_names().collect::<Vec<_>>().join(" or ")
}

impl TypeSpec {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The widest field name and the widest field label of any type, in
/// characters, so columns of fields line up whatever the registry holds.
pub fn widest_field() -> (usize, usize) {
    let fields = TYPES.iter().flat_map(|t| t.fields.iter());
    fields.fold((0, 0), |(name, label), f| (name.max(f.name.chars().count()), label.max(f.label.chars().count())))
}

/// The registry as the SQL reads it (the baseline migration's registry tables,
/// `keyfall_load_registry`): each type's name, kind and key prefix, and
/// each field's name, kind, whether it is required and its range; and the
/// [`secret_shapes`]. Only what the rules use: a label or a known model
/// changing loads nothing.
pub fn document() -> Value {
    let types: Vec<Value> = TYPES
        .iter()
        .map(|t| {
            let fields: Vec<Value> = t
                .fields
                .iter()
                .map(|f| {
                    let (kind, min, max) = match f.kind {
                        FieldKind::Secret => ("secret", Value::Null, Value::Null),
                        FieldKind::Text => ("text", Value::Null, Value::Null),
                        FieldKind::ProviderRef => ("provider_ref", Value::Null, Value::Null),
                        FieldKind::Number { min, max } => ("number", min.into(), max.into()),
                        FieldKind::Integer { min } => ("integer", min.into(), Value::Null),
                    };
                    serde_json::json!({"name": f.name, "kind": kind, "required": f.required, "min": min, "max": max})
                })
                .collect();
            let kind = match t.kind {
                Kind::Provider => "provider",
                Kind::Consumer => "consumer",
            };
            serde_json::json!({"name": t.name, "kind": kind, "key_prefix": t.key_prefix, "fields": fields})
        })
        .collect();
    let shapes = secret_shapes();
    let prefixes: Vec<Value> = shapes
        .value_prefixes
        .iter()
        .map(|p| serde_json::json!({"prefix": p.prefix, "min_after": p.min_after, "after": p.after.as_str()}))
        .collect();
    let secret_shapes = serde_json::json!({
        "name_endings": shapes.name_endings,
        "name_last_words": shapes.name_last_words,
        "value_prefixes": prefixes,
        "value_markers": shapes.value_markers,
    });
    serde_json::json!({ "types": types, "secret_shapes": secret_shapes })
}

/// The fingerprint of [`document`]: the SHA-256 of its JSON text, in hex.
/// The database keeps the one it loaded (`keyfall.registry_state`); a
/// database holding another is one to migrate.
pub fn fingerprint() -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(document().to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The raw verdict of one position of a walk: the **first** of these checks
/// that matches, in this order. The SQL mirror (`keyfall_row_verdict`) must
/// give the same answer for every row; the walk gives `no_row`/`no_account`.
///
/// Words used below, all as the app (Python) sees them:
/// - *falsy*: `bool(v)` is false — JSON `null`, `false`, a number equal to 0
///   (`0`, `0.0`, `-0.0`), `""`, `[]`, `{}`. Everything else is *truthy*.
/// - *blank*: a string whose every character is one `str.strip()` removes
///   (`str.isspace()`): U+0009–U+000D, U+001C–U+001F, U+0020, U+0085,
///   U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000
///   (Rust's `char::is_whitespace` plus U+001C–U+001F). `""` is blank;
///   U+200B and U+FEFF are **not** whitespace.
/// - *provider types*: `openai`, `runware`; *consumer types*:
///   `image_generation`; any other type is *unknown*.
/// - *absent* for a field: the key is missing or its value is JSON `null`.
///
/// 1. `no_row` — the account has no setting of the type; `no_account` — a
///    chain entry names a slug that is no account. Both always move on.
/// 2. `unreadable` — the app cannot read the row at all: its `jsonb::text`
///    is nested `json::APP_MAX_DEPTH` (900) containers deep or more, or holds
///    an integer of more than 4300 digits, and the app's `json.loads` raises
///    (`RecursionError`, `ValueError`) while loading it — before it looks at
///    `is_active` (see `json::read_config`).
/// 3. `inactive` — `is_active` is false.
/// 4. `invalid_config` — `config` is not a JSON object.
/// 5. `no_api_key` — provider type; `config.apiKey` is missing, falsy, or a
///    blank string.
/// 6. `key_not_string` — provider type; `apiKey` is truthy and not a string
///    (a non-zero number, `true`, a non-empty array or object): the app's
///    `api_key.strip()` raises `AttributeError`.
/// 7. `no_provider` — consumer type; `config.provider` is missing or falsy.
/// 8. `bad_fields` — known type; any field of its registry entry is wrong:
///    a text field (`model`, `base_url`, `image_size`, `quality`, `style`)
///    present and not a string; `temperature` present and not a number, or
///    below 0 or above 2 as Python's `float` of it compares (`1e400` is out,
///    `-1e-400` is `-0.0`, in); `max_tokens` present and not an integer (a
///    number written without fraction or exponent, as jsonb prints it:
///    `4096.0` and `"12"` are not; any number of digits), or below 1; a
///    consumer's `provider` not a string, or a string that is not exactly a
///    provider type (`"dalle"`, `"  "`, `" openai"`, `"Runware"`,
///    `"image_generation"`). `apiKey` is judged by 5 and 6 only; fields
///    outside the registry are never judged. A number is falsy as Python
///    reads it: an integer equal to 0, or a fraction whose `float` is 0
///    (`1e-400`).
/// 9. `answered` — anything else; an unknown type answers with any active
///    object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The account has no setting of this type.
    NoRow,
    /// A chain entry names a slug that is no account.
    NoAccount,
    /// The app's `json.loads` raises reading the config (nested too deep,
    /// an integer of too many digits): the app raises on this row.
    Unreadable,
    /// The setting's `is_active` is false.
    Inactive,
    /// The config is not a JSON object.
    InvalidConfig,
    /// A provider whose `apiKey` is missing, falsy or blank.
    NoApiKey,
    /// A provider whose `apiKey` is truthy but not a string (the app raises).
    KeyNotString,
    /// A consumer whose `provider` is missing or falsy.
    NoProvider,
    /// A registry field of the wrong type or out of range, or a consumer's
    /// provider that is not a provider type.
    BadFields,
    /// Nothing the app checks is wrong.
    Answered,
}

impl Verdict {
    /// Every verdict, in check order.
    pub const ALL: [Verdict; 10] = [
        Verdict::NoRow,
        Verdict::NoAccount,
        Verdict::Unreadable,
        Verdict::Inactive,
        Verdict::InvalidConfig,
        Verdict::NoApiKey,
        Verdict::KeyNotString,
        Verdict::NoProvider,
        Verdict::BadFields,
        Verdict::Answered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NoRow => "no_row",
            Verdict::NoAccount => "no_account",
            Verdict::Unreadable => "unreadable",
            Verdict::Inactive => "inactive",
            Verdict::InvalidConfig => "invalid_config",
            Verdict::NoApiKey => "no_api_key",
            Verdict::KeyNotString => "key_not_string",
            Verdict::NoProvider => "no_provider",
            Verdict::BadFields => "bad_fields",
            Verdict::Answered => "answered",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of wrong one issue is: lint sorts findings by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The setting is inactive (not a config problem; resolution skips it).
    Inactive,
    /// The app cannot read the config at all (`Verdict::Unreadable`).
    Unreadable,
    NotObject,
    WrongType,
    OutOfRange,
    /// A required value is absent or falsy (a provider's `apiKey`, a
    /// consumer's `provider`).
    Missing,
    /// A provider reference names no provider type.
    NotAProvider,
}

/// One thing wrong with a row, tied to the verdict it would give were it the
/// first.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub verdict: Verdict,
    pub problem: Problem,
    /// The field concerned, if any.
    pub field: Option<&'static str>,
    /// Plain words, without what follows from it: "temperature is a string,
    /// not a number". Database text in it is made visible.
    pub message: String,
}

impl Issue {
    /// The message as a finding on a row that answers all the same: says what
    /// the app does with it.
    pub fn finding(&self) -> String {
        match (self.verdict, self.problem) {
            (Verdict::BadFields, Problem::WrongType | Problem::OutOfRange) if self.field != Some("provider") => {
                format!("{}; the app will send it", self.message)
            }
            _ => self.message.clone(),
        }
    }
}

/// Where a consumer's second hop goes, as the app computes it:
/// `str(config["provider"])`.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// A string provider (any non-empty string, even one that is not a
    /// provider type): the second hop walks this type.
    Walk(String),
    /// A truthy non-string provider: the app looks up its `str()` and finds
    /// nothing; `reason` says so. `text` is the value as JSON.
    Nowhere { text: String, reason: String },
}

/// The judgement of one existing row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowJudgement {
    /// The raw verdict: the first issue's, or `Answered`.
    pub verdict: Verdict,
    /// Every issue, in check order (the first gives the verdict). Later
    /// issues are still listed, so lint and the findings of an answering
    /// step see them all (a wrong-typed field on a row without a key).
    pub issues: Vec<Issue>,
    /// Not wrong to the app, but worth saying (a model keyfall does not
    /// know). Never affects the verdict.
    pub notes: Vec<String>,
    /// Consumers with a truthy provider: where the second hop goes.
    pub next: Option<Next>,
}

impl RowJudgement {
    /// Why the row got its verdict: the first issue's message, or for
    /// `bad_fields` every field issue; empty when answered.
    pub fn reason(&self) -> String {
        match self.verdict {
            Verdict::Answered => String::new(),
            Verdict::BadFields => self
                .issues
                .iter()
                .filter(|i| i.verdict == Verdict::BadFields)
                .map(|i| i.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            _ => self.issues.first().map(|i| i.message.clone()).unwrap_or_default(),
        }
    }

    pub fn has(&self, verdict: Verdict) -> bool {
        self.issues.iter().any(|i| i.verdict == verdict)
    }
}

/// The judgement of a row the session may not view: the database's verdict
/// (`keyfall.row_verdicts`, the same rules as [`judge`]) and, for a consumer
/// that answers, where its second hop goes, from its provider as [`judge`]
/// reads it. Nothing else of the config is known.
pub fn judge_withheld(integration_type: &str, withheld: &super::model::Withheld) -> RowJudgement {
    let verdict = Verdict::parse(&withheld.verdict).unwrap_or(Verdict::InvalidConfig);
    let next = match (&withheld.provider, verdict) {
        (Some(provider), Verdict::Answered | Verdict::BadFields) => {
            let mut config = serde_json::Map::new();
            config.insert("provider".into(), provider.clone());
            judge(integration_type, &Value::Object(config), true).next
        }
        _ => None,
    };
    let problem = match verdict {
        Verdict::Inactive => Problem::Inactive,
        Verdict::InvalidConfig => Problem::NotObject,
        Verdict::NoApiKey | Verdict::NoProvider => Problem::Missing,
        _ => Problem::WrongType,
    };
    let issues = match verdict {
        Verdict::Answered => Vec::new(),
        _ => vec![Issue { verdict, problem, field: None, message: "settings not shown to you".to_string() }],
    };
    RowJudgement { verdict, issues, notes: Vec::new(), next }
}

/// Judge one existing row against its type: the app's `_usable`, plus the
/// registry's field rules (see [`Verdict`] for the exact order). Pure and
/// total: any JSON gives a judgement.
pub fn judge(integration_type: &str, config: &Value, is_active: bool) -> RowJudgement {
    let mut issues = Vec::new();
    let mut notes = Vec::new();
    let mut next = None;
    let issue = |verdict, problem, field, message| Issue { verdict, problem, field, message };
    if let Some(why) = super::json::unreadable(config) {
        let issues = vec![issue(Verdict::Unreadable, Problem::Unreadable, None, format!("config {why}"))];
        return RowJudgement { verdict: Verdict::Unreadable, issues, notes, next };
    }
    if !is_active {
        issues.push(issue(Verdict::Inactive, Problem::Inactive, None, "setting is inactive".to_string()));
    }
    match (config.as_object(), spec(integration_type)) {
        (None, _) => issues.push(issue(
            Verdict::InvalidConfig,
            Problem::NotObject,
            None,
            format!("config is {}, not an object", json_kind(config)),
        )),
        (Some(_), None) => {}
        (Some(map), Some(spec)) => {
            match spec.kind {
                Kind::Provider => match map.get("apiKey") {
                    Some(Value::String(key)) if !is_blank(key) => {}
                    Some(Value::String(key)) if !key.is_empty() => issues.push(issue(
                        Verdict::NoApiKey,
                        Problem::Missing,
                        Some("apiKey"),
                        "apiKey is blank (only whitespace)".to_string(),
                    )),
                    Some(key) if is_truthy(key) => issues.push(issue(
                        Verdict::KeyNotString,
                        Problem::WrongType,
                        Some("apiKey"),
                        format!("apiKey is {}, not a string", json_kind(key)),
                    )),
                    key => {
                        issues.push(issue(Verdict::NoApiKey, Problem::Missing, Some("apiKey"), falsy("apiKey", key)))
                    }
                },
                Kind::Consumer => match map.get("provider") {
                    Some(Value::String(p)) if !p.is_empty() => next = Some(Next::Walk(p.clone())),
                    Some(p) if is_truthy(p) => {
                        // Its text with any secret inside masked (a key
                        // held under `provider` is never quoted back).
                        let text = super::secret::mask_config(p).to_string();
                        next = Some(Next::Nowhere {
                            reason: format!(
                                "provider is {}, not a string: the app looks up its text ({}) as a type and finds none",
                                json_kind(p),
                                super::text::visible_short(&text, 40)
                            ),
                            text,
                        })
                    }
                    p => issues.push(issue(
                        Verdict::NoProvider,
                        Problem::Missing,
                        Some("provider"),
                        falsy("provider", p),
                    )),
                },
            }
            for field in spec.fields {
                if let Err((problem, message)) = check_field(map, field) {
                    issues.push(issue(Verdict::BadFields, problem, Some(field.name), message));
                }
            }
            if let Some(Value::String(model)) = map.get("model")
                && !is_known_model(spec, model)
            {
                notes.push(format!(
                    "model {:?} is not one keyfall knows; the app will send it",
                    super::text::visible_short(&super::secret::shape_masked(model), 60)
                ));
            }
        }
    }
    RowJudgement { verdict: issues.first().map_or(Verdict::Answered, |i| i.verdict), issues, notes, next }
}

/// Whether `model` is one of the type's known models, or a dated snapshot of
/// one (`gpt-4.1-2025-04-14`).
pub fn is_known_model(spec: &TypeSpec, model: &str) -> bool {
    spec.known_models.iter().any(|known| {
        model == *known
            || model.strip_prefix(known).and_then(|rest| rest.strip_prefix('-')).is_some_and(|date| {
                let b = date.as_bytes();
                b.len() == 10
                    && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
            })
    })
}

/// A character Python's `str.strip()` removes (`str.isspace()`): Unicode
/// White_Space plus the four information separators U+001C–U+001F.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Empty, or only characters Python's `str.strip()` removes: what the app's
/// `api_key.strip()` turns into `""`.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(is_python_space)
}

/// Python's `bool()` of a JSON value.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// "apiKey is missing" / "is null" / "is 0" …: a falsy value in words.
fn falsy(name: &str, value: Option<&Value>) -> String {
    match value {
        None => format!("{name} is missing"),
        Some(Value::Null) => format!("{name} is null"),
        Some(Value::String(_)) => format!("{name} is empty"),
        Some(Value::Array(_)) => format!("{name} is an empty array"),
        Some(Value::Object(_)) => format!("{name} is an empty object"),
        Some(Value::Bool(_)) => format!("{name} is false"),
        Some(other) => format!("{name} is {other} (false to the app)"),
    }
}

/// A field's value, treating JSON `null` as absent (Django writes `None`).
fn present<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|v| !v.is_null())
}

/// One registry field's type and range. Presence is not judged here: a
/// missing key or provider is its own verdict, and the key's type too.
fn check_field(map: &Map<String, Value>, field: &Field) -> Result<(), (Problem, String)> {
    use Problem::*;
    let name = field.name;
    let Some(value) = present(map, name) else { return Ok(()) };
    match field.kind {
        FieldKind::Secret => Ok(()),
        FieldKind::Text => match value {
            Value::String(_) => Ok(()),
            other => Err((WrongType, format!("{name} is {}, not a string", json_kind(other)))),
        },
        // A falsy provider is `no_provider`'s business.
        FieldKind::ProviderRef if !is_truthy(value) => Ok(()),
        FieldKind::ProviderRef => match value {
            Value::String(p) if provider_names().any(|n| n == p) => Ok(()),
            Value::String(p) => Err((
                NotAProvider,
                format!(
                    "{name} {:?} is not a provider type ({})",
                    super::text::visible_short(&super::secret::shape_masked(p), 40),
                    provider_names().collect::<Vec<_>>().join(", ")
                ),
            )),
            other => Err((WrongType, format!("{name} is {}, not a string", json_kind(other)))),
        },
        FieldKind::Number { min, max } => match value.as_f64() {
            Some(n) if n >= min && n <= max => Ok(()),
            // A stand-in for a number keyfall cannot hold (`json::read_config`)
            // is not printed as if it were the stored one.
            Some(_) if is_stand_in(map, value) => {
                Err((OutOfRange, format!("{name} is a number beyond what keyfall holds, outside {min}–{max}")))
            }
            Some(n) => Err((OutOfRange, format!("{name} {n} is outside {min}–{max}"))),
            None => Err((WrongType, format!("{name} is {}, not a number", json_kind(value)))),
        },
        FieldKind::Integer { min } => match (value.as_i64(), value.is_u64()) {
            (Some(n), _) if n >= min => Ok(()),
            (Some(_), _) if is_stand_in(map, value) => {
                Err((OutOfRange, format!("{name} is a negative number beyond what keyfall holds, below {min}")))
            }
            (Some(n), _) => Err((OutOfRange, format!("{name} {n} is below {min}"))),
            (None, true) => Ok(()),
            (None, false) => Err((WrongType, format!("{name} is {}, not a whole number", json_kind(value)))),
        },
    }
}

/// Whether `value` in `map` is `json::read_config`'s stand-in for a number
/// beyond what keyfall holds (the map says it was read approximately).
fn is_stand_in(map: &Map<String, Value>, value: &Value) -> bool {
    map.contains_key(super::json::INEXACT_KEY)
        && (value.as_u64() == Some(u64::MAX)
            || value.as_i64() == Some(i64::MIN)
            || value.as_f64().is_some_and(|f| f.abs() == f64::MAX))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_type_has_a_column_of_its_own_and_consumers_name_providers() {
        let columns: std::collections::HashSet<&str> = TYPES.iter().map(|t| t.column).collect();
        assert_eq!(columns.len(), TYPES.len(), "two types share a marker column heading");
        assert!(TYPES.iter().all(|t| t.column.chars().count() == 1), "a column heading is one character");
        assert!(provider_names().count() > 0);
        for t in TYPES.iter().filter(|t| t.kind == Kind::Consumer) {
            assert!(t.fields.iter().any(|f| f.kind == FieldKind::ProviderRef), "{} names no provider", t.name);
        }
        assert_eq!(provider_choices(), "openai or runware");
    }

    /// A provider's specifics are the registry's: every provider has a key
    /// test with a base URL of its own, and a model is given to the provider
    /// whose prefix starts it, whatever the case — and only then.
    #[test]
    fn providers_say_how_their_key_is_tested_and_which_models_are_theirs() {
        for t in &TYPES {
            match t.kind {
                Kind::Provider => {
                    let test = t.test.unwrap_or_else(|| panic!("{} has no key test", t.name));
                    assert!(test.base().starts_with("https://"), "{}: {}", t.name, test.base());
                    assert!(!test.base().ends_with('/'), "{}: the base URL has no trailing slash", t.name);
                }
                Kind::Consumer => {
                    assert!(t.test.is_none(), "{} holds no key to test", t.name);
                    assert!(t.model_prefixes.is_empty(), "{} is no provider to give a model to", t.name);
                }
            }
            for prefix in t.model_prefixes {
                assert_eq!(*prefix, prefix.to_ascii_lowercase(), "{}: prefixes are lowercase", t.name);
                for other in TYPES.iter().filter(|o| o.name != t.name) {
                    assert!(
                        other.model_prefixes.iter().all(|p| !p.starts_with(prefix) && !prefix.starts_with(p)),
                        "{} and {} both claim {prefix}",
                        t.name,
                        other.name
                    );
                }
                assert_eq!(provider_for_model(&format!("{prefix}x")), Some(t.name));
                assert_eq!(provider_for_model(&format!("{}x", prefix.to_ascii_uppercase())), Some(t.name));
            }
        }
        let bases: std::collections::HashSet<&str> = TYPES.iter().filter_map(|t| t.test).map(|k| k.base()).collect();
        assert_eq!(bases.len(), provider_names().count(), "two providers share a base URL");
        // The names the seed's data uses, and one no prefix claims.
        for (model, provider) in [
            ("dall-e-3", Some("openai")),
            ("GPT-Image-1", Some("openai")),
            ("runware:100@1", Some("runware")),
            ("civitai:4384@128713", Some("runware")),
            ("gpt-4o", None),
            ("", None),
        ] {
            assert_eq!(provider_for_model(model), provider, "{model}");
        }
        // Every model a consumer knows tells its provider, so lint can fix a
        // consumer without one from its model.
        for t in TYPES.iter().filter(|t| t.kind == Kind::Consumer) {
            for model in t.known_models {
                assert!(provider_for_model(model).is_some(), "{}: {model} tells no provider", t.name);
            }
        }
    }

    /// The document the SQL loads holds every type and field, with its
    /// range, and its fingerprint follows it.
    #[test]
    fn the_document_holds_every_rule_and_its_fingerprint_follows_it() {
        let doc = document();
        let types = doc["types"].as_array().unwrap();
        assert_eq!(types.len(), TYPES.len());
        for (t, spec) in types.iter().zip(TYPES.iter()) {
            assert_eq!(t["name"], spec.name);
            assert_eq!(t["fields"].as_array().unwrap().len(), spec.fields.len());
        }
        let temperature = &types[0]["fields"][3];
        assert_eq!((temperature["kind"].as_str(), temperature["max"].as_f64()), (Some("number"), Some(2.0)));
        assert_eq!(types[2]["kind"], "consumer");
        let fp = fingerprint();
        assert_eq!(fp.len(), 64);
        assert_eq!(fp, fingerprint(), "the same registry, the same fingerprint");
        assert_ne!(fp, {
            use sha2::Digest;
            let other = serde_json::json!({"types": []}).to_string();
            sha2::Sha256::digest(other.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
        });
    }

    /// The secret shapes are what the database's table accepts (a name
    /// shape is one lowercase ASCII word: a name's words are), and the
    /// document carries them, so a change of shape changes the fingerprint.
    #[test]
    fn the_secret_shapes_are_words_and_prefixes_the_document_carries() {
        let shapes = secret_shapes();
        for w in shapes.name_endings.iter().chain(shapes.name_last_words) {
            assert!(!w.is_empty() && w.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{w:?}");
        }
        assert!(shapes.value_prefixes.iter().all(|p| !p.prefix.is_empty()));
        assert!(shapes.value_markers.iter().all(|m| !m.is_empty()));
        let doc = document();
        let endings = doc["secret_shapes"]["name_endings"].as_array().unwrap();
        assert_eq!(endings.len(), shapes.name_endings.len());
        let prefixes = &doc["secret_shapes"]["value_prefixes"];
        assert_eq!(prefixes[3], serde_json::json!({"prefix": "AKIA", "min_after": 12, "after": "upper_or_digit"}));
        let mut other = doc.clone();
        other["secret_shapes"]["name_endings"].as_array_mut().unwrap().pop();
        assert_ne!(doc.to_string(), other.to_string());
    }

    #[test]
    fn python_whitespace_is_rusts_plus_the_separators() {
        for c in ['\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}', '\u{a0}', '\u{2003}', '\u{3000}', '\u{85}', '\u{2028}'] {
            assert!(is_python_space(c), "{c:?}");
        }
        for c in ['\u{200b}', '\u{feff}', '\u{180e}', 'a'] {
            assert!(!is_python_space(c), "{c:?}");
        }
        assert!(is_blank("") && is_blank(" \t\u{1f}") && !is_blank("\u{200b}"));
    }

    #[test]
    fn truthiness_is_pythons() {
        for v in [json!(null), json!(false), json!(0), json!(0.0), json!(-0.0), json!(""), json!([]), json!({})] {
            assert!(!is_truthy(&v), "{v}");
        }
        for v in [json!(true), json!(1), json!(0.5), json!(" "), json!([0]), json!({"a": null})] {
            assert!(is_truthy(&v), "{v}");
        }
    }

    #[test]
    fn issues_after_the_first_are_kept() {
        let j = judge("openai", &json!({"temperature": "hot"}), false);
        assert_eq!(j.verdict, Verdict::Inactive);
        let verdicts: Vec<Verdict> = j.issues.iter().map(|i| i.verdict).collect();
        assert_eq!(verdicts, vec![Verdict::Inactive, Verdict::NoApiKey, Verdict::BadFields]);
    }

    #[test]
    fn dated_snapshots_are_known_models() {
        let openai = spec("openai").unwrap();
        assert!(is_known_model(openai, "gpt-4.1"));
        assert!(is_known_model(openai, "gpt-4.1-2025-04-14"));
        assert!(!is_known_model(openai, "gpt-4.1-turbo"));
        assert!(!is_known_model(openai, "gpt-9"));
    }
}
