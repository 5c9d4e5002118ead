//! The resolver as a table: every verdict, both hops, the seed's users.

use chrono::{TimeZone, Utc};
use keyfall::domain::resolve::{Rules, Snapshot, Verdict, resolve, resolve_type};
use keyfall::domain::{Account, AccountStatus, AiFunction, ChainEntry, Role, Setting, User};
use rstest::rstest;
use serde_json::{Value, json};

fn account(id: i64, slug: &str, status: AccountStatus) -> Account {
    Account { id, slug: slug.into(), name: slug.into(), status }
}

fn setting(id: i64, account_id: i64, ty: &str, config: Value, active: bool) -> Setting {
    Setting {
        id,
        account_id,
        integration_type: ty.into(),
        config,
        is_active: active,
        version: 1,
        updated_at: Some(Utc.with_ymd_and_hms(2025, 12, 10, 0, 0, 0).unwrap()),
        version_token: false,
        updated_by: None,
        withheld: None,
    }
}

fn user(email: &str, account_id: Option<i64>) -> User {
    User { id: 1, email: email.into(), role: Role::Owner, is_superuser: false, is_active: true, account_id }
}

fn function(name: &str, ty: &str) -> AiFunction {
    AiFunction { name: name.into(), integration_type: ty.into() }
}

/// aws-admin(1), default-account(2), default(3) in the chain; paid-2(4) a
/// tenant. `extra` settings are added to the seed's own.
fn world(extra: Vec<Setting>, seed_image: Value) -> Snapshot {
    let accounts = vec![
        account(1, "aws-admin", AccountStatus::Active),
        account(2, "default-account", AccountStatus::Active),
        account(3, "default", AccountStatus::Active),
        account(4, "paid-2", AccountStatus::Active),
    ];
    let chain = accounts[..3]
        .iter()
        .enumerate()
        .map(|(i, a)| ChainEntry { position: i as i32 + 1, slug: a.slug.clone(), account: Some(a.clone()) })
        .collect();
    let mut settings = vec![
        setting(1, 1, "openai", json!({"apiKey": "sk-seed-aws-admin-0000-3fA9", "model": "gpt-4o-mini"}), true),
        setting(2, 1, "runware", json!({"apiKey": "rw-seed-aws-admin-0000-8c2E"}), true),
        setting(3, 1, "image_generation", seed_image, true),
    ];
    settings.extend(extra);
    Snapshot::new(chain, accounts, settings)
}

fn seed_wrong() -> Value {
    json!({"apiKey": "", "model": "dall-e-3"})
}

fn verdicts(steps: &[keyfall::domain::Step]) -> Vec<(String, Verdict)> {
    steps.iter().map(|s| (s.account.clone(), s.verdict)).collect()
}

fn paid2() -> User {
    user("paid2@paid.com", Some(4))
}

fn images() -> AiFunction {
    function("generate_images", "image_generation")
}

fn chat() -> AiFunction {
    function("auto_cluster", "openai")
}

const KEY: &str = "sk-x-valid-key-000000";

#[test]
fn seed_tenant_falls_back_to_aws_admin() {
    let w = world(vec![], seed_wrong());
    let r = resolve(&w, &paid2(), &chat());
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert_eq!(
        verdicts(&r.hop.steps),
        vec![("paid-2".into(), Verdict::NoRow), ("aws-admin".into(), Verdict::Answered)]
    );
    assert!(r.is_resolved());
    assert_eq!(r.rules, "get_model_config (seed)");
    let key = r.hop.config.as_ref().unwrap()["apiKey"].as_str().unwrap().to_string();
    assert!(key.starts_with("••••••••3fA9 #"), "{key}");
    let json = serde_json::to_value(&r).unwrap();
    assert!(!json.to_string().contains("sk-seed"));
    assert_eq!(json["rules"], "get_model_config (seed)");
    assert!(json["error"].is_null());
    assert!(json["steps"][1].get("findings").is_none(), "no findings, no key: {json}");
}

#[test]
fn seed_wrong_image_config_leaves_generate_images_unresolved() {
    let w = world(vec![], seed_wrong());
    let r = resolve(&w, &paid2(), &images());
    assert_eq!(r.hop.answered_by, None);
    assert!(!r.is_resolved());
    let aws = &r.hop.steps[1];
    assert_eq!(aws.verdict, Verdict::NoProvider);
    assert_eq!(aws.detail, "provider is missing");
    assert_eq!(r.hop.steps.len(), 4, "walks the whole chain");
    assert_eq!(r.hop.error, None, "nothing raises: the app returns None");
    let reason = r.hop.reason.as_deref().unwrap();
    assert!(reason.contains("aws-admin no_provider (provider is missing)"), "{reason}");
}

#[test]
fn consumer_takes_a_second_hop_from_the_users_account() {
    let own_runware = setting(10, 4, "runware", json!({"apiKey": "rw-paid2-own-key-xxxx-9999"}), true);
    let w = world(vec![own_runware], json!({"provider": "runware", "model": "runware:100@1"}));
    let r = resolve(&w, &paid2(), &images());
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    let hop = r.hop.hop.as_ref().expect("second hop");
    assert_eq!(hop.integration_type, "runware");
    assert_eq!(hop.answered_by.as_deref(), Some("paid-2"), "the hop starts again at the user's account");
    assert!(hop.hop.is_none(), "providers do not hop again");
    assert!(r.is_resolved());
}

#[test]
fn unresolved_second_hop_makes_the_resolution_unresolved() {
    let w = Snapshot::new(
        vec![ChainEntry {
            position: 1,
            slug: "aws-admin".into(),
            account: Some(account(1, "aws-admin", AccountStatus::Active)),
        }],
        vec![account(1, "aws-admin", AccountStatus::Active)],
        vec![setting(3, 1, "image_generation", json!({"provider": "openai"}), true)],
    );
    let r = resolve(&w, &user("x@y.z", None), &images());
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    let hop = r.hop.hop.as_ref().unwrap();
    assert_eq!(hop.answered_by, None);
    assert_eq!(hop.reason.as_deref(), Some("no account has a 'openai' setting"));
    assert!(!r.is_resolved());
    assert_eq!(r.hop.unresolved_reason().as_deref(), Some("second hop (openai): no account has a 'openai' setting"));
}

/// The tenant's own openai row, judged as the app's `_usable` does. Rows
/// that move on leave aws-admin to answer.
#[rstest]
#[case::no_row(None, Verdict::NoRow, "no openai setting")]
#[case::inactive(Some((json!({"apiKey": KEY}), false)), Verdict::Inactive, "setting is inactive")]
#[case::missing_key(Some((json!({"model": "gpt-4o"}), true)), Verdict::NoApiKey, "apiKey is missing")]
#[case::empty_key(Some((json!({"apiKey": ""}), true)), Verdict::NoApiKey, "apiKey is empty")]
#[case::blank_key(Some((json!({"apiKey": "  \n"}), true)), Verdict::NoApiKey, "apiKey is blank")]
#[case::null_key(Some((json!({"apiKey": null}), true)), Verdict::NoApiKey, "apiKey is null")]
#[case::nbsp_key(Some((json!({"apiKey": "\u{a0}"}), true)), Verdict::NoApiKey, "apiKey is blank")]
#[case::em_space_key(Some((json!({"apiKey": "\u{2003}\u{2003}"}), true)), Verdict::NoApiKey, "apiKey is blank")]
#[case::ideographic_space_key(Some((json!({"apiKey": "\u{3000}"}), true)), Verdict::NoApiKey, "apiKey is blank")]
#[case::file_separator_key(Some((json!({"apiKey": "\u{1c}"}), true)), Verdict::NoApiKey, "apiKey is blank")]
#[case::unit_separator_key(Some((json!({"apiKey": "\u{1f}"}), true)), Verdict::NoApiKey, "apiKey is blank")]
#[case::zero_key(Some((json!({"apiKey": 0}), true)), Verdict::NoApiKey, "apiKey is 0")]
#[case::zero_float_key(Some((json!({"apiKey": 0.0}), true)), Verdict::NoApiKey, "apiKey is 0.0")]
#[case::false_key(Some((json!({"apiKey": false}), true)), Verdict::NoApiKey, "apiKey is false")]
#[case::empty_array_key(Some((json!({"apiKey": []}), true)), Verdict::NoApiKey, "apiKey is an empty array")]
#[case::empty_object_key(Some((json!({"apiKey": {}}), true)), Verdict::NoApiKey, "apiKey is an empty object")]
#[case::string_config(Some((json!("sk-oops"), true)), Verdict::InvalidConfig, "config is a string, not an object")]
#[case::array_config(Some((json!([1, 2]), true)), Verdict::InvalidConfig, "config is an array, not an object")]
#[case::null_config(Some((Value::Null, true)), Verdict::InvalidConfig, "config is null, not an object")]
#[case::inactive_before_invalid(Some((json!("x"), false)), Verdict::Inactive, "setting is inactive")]
#[case::zero_width_space_key(Some((json!({"apiKey": "\u{200b}"}), true)), Verdict::Answered, "apiKey •••••••• #")]
#[case::bom_key(Some((json!({"apiKey": "\u{feff}"}), true)), Verdict::Answered, "apiKey •••••••• #")]
#[case::answered(Some((json!({"apiKey": KEY, "model": "gpt-4o", "extra": {"kept": true}}), true)), Verdict::Answered, "apiKey ••••••••0000 #")]
fn tenant_row_verdicts(#[case] row: Option<(Value, bool)>, #[case] verdict: Verdict, #[case] detail: &str) {
    let extra = row.map(|(config, active)| setting(10, 4, "openai", config, active)).into_iter().collect();
    let w = world(extra, seed_wrong());
    let r = resolve(&w, &paid2(), &chat());
    let first = &r.hop.steps[0];
    assert_eq!((first.account.as_str(), first.position), ("paid-2", 0));
    assert_eq!(first.verdict, verdict);
    assert!(first.detail.starts_with(detail), "{:?} does not start with {detail:?}", first.detail);
    // Whatever the tenant's row says, aws-admin stands behind it.
    let expected = if verdict == Verdict::Answered { "paid-2" } else { "aws-admin" };
    assert_eq!(r.hop.answered_by.as_deref(), Some(expected));
    assert!(r.is_resolved());
    assert!(first.findings.is_empty(), "{:?}", first.findings);
}

/// Wrong-typed and out-of-range fields do not stop the app: the row answers
/// and the step says what keyfall sees.
#[rstest]
#[case::model_type(json!({"model": 4}), "model is a whole number, not a string; the app will send it")]
#[case::temperature_range(json!({"temperature": 3}), "temperature 3 is outside 0–2; the app will send it")]
#[case::temperature_negative(json!({"temperature": -1}), "temperature -1 is outside 0–2; the app will send it")]
#[case::temperature_hot(json!({"temperature": "hot"}), "temperature is a string, not a number; the app will send it")]
#[case::max_tokens_zero(json!({"max_tokens": 0}), "max_tokens 0 is below 1; the app will send it")]
#[case::max_tokens_text(json!({"max_tokens": "12"}), "max_tokens is a string, not a whole number; the app will send it")]
#[case::max_tokens_float(json!({"max_tokens": 1.5}), "max_tokens is a number, not a whole number; the app will send it")]
#[case::unknown_model(json!({"model": "gpt-9"}), "model \"gpt-9\" is not one keyfall knows; the app will send it")]
fn wrong_fields_answer_with_findings(#[case] fields: Value, #[case] finding: &str) {
    let mut config = json!({"apiKey": KEY});
    config.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let w = world(vec![setting(10, 4, "openai", config, true)], seed_wrong());
    let r = resolve(&w, &paid2(), &chat());
    assert_eq!(r.hop.answered_by.as_deref(), Some("paid-2"));
    assert_eq!(r.hop.steps[0].verdict, Verdict::Answered);
    assert_eq!(r.hop.steps[0].findings, vec![finding.to_string()]);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["steps"][0]["findings"][0], finding);
}

#[test]
fn in_range_fields_and_nulls_have_no_findings() {
    let config = json!({"apiKey": KEY, "model": "gpt-4.1", "temperature": 2, "max_tokens": 1, "base_url": null});
    let w = world(vec![setting(10, 4, "openai", config, true)], seed_wrong());
    let r = resolve(&w, &paid2(), &chat());
    assert_eq!(r.hop.answered_by.as_deref(), Some("paid-2"));
    assert!(r.hop.steps[0].findings.is_empty(), "{:?}", r.hop.steps[0].findings);
}

/// A truthy key that is not a string: the app's `api_key.strip()` raises,
/// so the walk stops there and no later account is asked.
#[rstest]
#[case::number(json!(123), "a whole number")]
#[case::float(json!(1.5), "a number")]
#[case::boolean(json!(true), "a boolean")]
#[case::array(json!(["a"]), "an array")]
#[case::object(json!({"k": "v"}), "an object")]
fn a_key_that_is_not_a_string_fails_the_walk(#[case] key: Value, #[case] kind: &str) {
    let w = world(vec![setting(10, 4, "openai", json!({"apiKey": key}), true)], seed_wrong());
    let r = resolve(&w, &paid2(), &chat());
    assert_eq!(verdicts(&r.hop.steps), vec![("paid-2".into(), Verdict::KeyNotString)]);
    assert_eq!(r.hop.steps[0].detail, format!("apiKey is {kind}, not a string"));
    assert_eq!(
        r.hop.error.as_deref(),
        Some(
            format!(
                "the app's get_model_config raises here: apiKey is {kind}, not a string (AttributeError on .strip())"
            )
            .as_str()
        )
    );
    assert_eq!(r.hop.answered_by, None);
    assert!(!r.is_resolved());
    assert_eq!(r.hop.unresolved_reason(), r.hop.error);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["error"].as_str().unwrap().contains("AttributeError"));
}

#[test]
fn a_failing_second_hop_fails_the_resolution() {
    let w = world(
        vec![setting(10, 4, "openai", json!({"apiKey": 7}), true)],
        json!({"provider": "openai", "model": "dall-e-3"}),
    );
    let r = resolve(&w, &paid2(), &images());
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    let hop = r.hop.hop.as_ref().unwrap();
    assert_eq!(verdicts(&hop.steps), vec![("paid-2".into(), Verdict::KeyNotString)]);
    assert!(!r.is_resolved());
    assert!(r.hop.failure().unwrap().contains("AttributeError"));
}

/// A consumer whose provider is missing or falsy is passed over.
#[rstest]
#[case::missing(json!({"model": "dall-e-3"}), "provider is missing")]
#[case::empty(json!({"provider": ""}), "provider is empty")]
#[case::null(json!({"provider": null}), "provider is null")]
#[case::zero(json!({"provider": 0}), "provider is 0 (false to the app)")]
#[case::falsy_bool(json!({"provider": false}), "provider is false")]
#[case::seed(seed_wrong(), "provider is missing")]
fn a_consumer_without_a_provider_moves_on(#[case] config: Value, #[case] detail: &str) {
    let w = world(vec![], config);
    let r = resolve(&w, &paid2(), &images());
    assert_eq!(r.hop.steps[1].verdict, Verdict::NoProvider);
    assert_eq!(r.hop.steps[1].detail, detail);
    assert_eq!(r.hop.steps.len(), 4, "the walk goes on");
    assert!(!r.is_resolved());
}

/// A consumer naming something that is not a provider type still answers:
/// the app walks whatever string it names, and finds nothing.
#[rstest]
#[case::dalle("dalle", "no account has a 'dalle' setting; 'dalle' is not a provider type")]
#[case::blank("  ", "no account has a '  ' setting; '  ' is not a provider type")]
#[case::padded(" openai", "no account has a ' openai' setting; ' openai' is not a provider type")]
#[case::capitalised("Runware", "no account has a 'Runware' setting; 'Runware' is not a provider type")]
fn a_provider_that_is_not_a_provider_type_answers_then_finds_nothing(#[case] provider: &str, #[case] reason: &str) {
    let w = world(vec![], json!({"provider": provider, "model": "dall-e-3"}));
    let r = resolve(&w, &paid2(), &images());
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    let aws = &r.hop.steps[1];
    assert_eq!(aws.verdict, Verdict::Answered);
    assert_eq!(aws.findings, vec![format!("provider {provider:?} is not a provider type (openai, runware)")]);
    let hop = r.hop.hop.as_ref().expect("second hop");
    assert_eq!(hop.integration_type, provider);
    assert_eq!(hop.answered_by, None);
    assert!(hop.steps.iter().all(|s| s.verdict == Verdict::NoRow) && hop.steps.len() == 4);
    assert_eq!(hop.reason.as_deref(), Some(reason));
    assert!(!r.is_resolved());
}

#[rstest]
#[case::number(json!(5), "a whole number")]
#[case::boolean(json!(true), "a boolean")]
#[case::array(json!(["x"]), "an array")]
fn a_provider_that_is_not_a_string_answers_with_an_empty_hop(#[case] provider: Value, #[case] kind: &str) {
    let w = world(vec![], json!({"provider": provider}));
    let r = resolve(&w, &paid2(), &images());
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert_eq!(r.hop.steps[1].findings, vec![format!("provider is {kind}, not a string")]);
    assert_eq!(r.hop.steps[1].detail, format!("provider={provider}"));
    let hop = r.hop.hop.as_ref().unwrap();
    assert_eq!(hop.integration_type, provider.to_string(), "the text the app looks up");
    assert!(hop.steps.is_empty());
    assert_eq!(hop.answered_by, None);
    let reason = hop.reason.as_deref().unwrap();
    assert!(reason.starts_with(&format!("provider is {kind}, not a string: the app looks up")), "{reason}");
    assert!(!r.is_resolved());
}

#[test]
fn a_consumer_naming_itself_is_walked_literally() {
    // `_walk("image_generation", …)` finds the row itself, judged as a
    // consumer: the app calls that resolved. Lint L002 reports it.
    let w = world(vec![], json!({"provider": "image_generation"}));
    let r = resolve(&w, &paid2(), &images());
    let hop = r.hop.hop.as_ref().unwrap();
    assert_eq!(hop.answered_by.as_deref(), Some("aws-admin"));
    assert!(hop.hop.is_none(), "one extra hop only");
}

#[rstest]
#[case::style_type(json!({"provider": "openai", "style": ["vivid"]}), "style is an array, not a string; the app will send it")]
#[case::size_type(json!({"provider": "openai", "image_size": 1024}), "image_size is a whole number, not a string; the app will send it")]
fn a_consumer_with_wrong_fields_answers(#[case] config: Value, #[case] finding: &str) {
    let w = world(vec![], config);
    let r = resolve(&w, &paid2(), &images());
    assert_eq!(r.hop.steps[1].verdict, Verdict::Answered);
    assert!(r.hop.steps[1].findings.iter().any(|f| f == finding), "{:?}", r.hop.steps[1].findings);
    assert!(r.is_resolved());
}

#[test]
fn consumer_ignores_its_own_api_key() {
    // An image_generation row carrying a key is a lint finding (L001), not
    // a reason to skip it: it still answers through its provider.
    let w = world(vec![], json!({"apiKey": "sk-wrong-place-0000000", "provider": "openai"}));
    let r = resolve(&w, &paid2(), &images());
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert_eq!(r.hop.hop.as_ref().unwrap().answered_by.as_deref(), Some("aws-admin"));
    assert!(r.is_resolved());
}

#[test]
fn system_account_users_start_at_their_own_account() {
    let w = world(vec![setting(11, 2, "openai", json!({"apiKey": "sk-default-account-000000"}), true)], seed_wrong());
    // A user of default-account (chain 2) is answered by default-account,
    // ahead of aws-admin (chain 1): the app asks the user's account first.
    let r = resolve(&w, &user("ops@x.com", Some(2)), &chat());
    assert_eq!((r.hop.steps[0].account.as_str(), r.hop.steps[0].position), ("default-account", 0));
    assert_eq!(r.hop.answered_by.as_deref(), Some("default-account"));
}

#[test]
fn a_system_account_user_walks_the_chain_without_a_second_visit() {
    let w = world(
        vec![
            setting(1, 1, "openai", json!({"apiKey": "sk-seed-aws-admin-0000-3fA9"}), false),
            setting(12, 3, "openai", json!({"apiKey": "sk-default-0000000000"}), true),
        ],
        seed_wrong(),
    );
    let r = resolve(&w, &user("dev@igny8.com", Some(1)), &chat());
    let walked: Vec<(&str, i32, Verdict)> =
        r.hop.steps.iter().map(|s| (s.account.as_str(), s.position, s.verdict)).collect();
    assert_eq!(
        walked,
        vec![
            ("aws-admin", 0, Verdict::Inactive),
            ("default-account", 2, Verdict::NoRow),
            ("default", 3, Verdict::Answered)
        ]
    );
    assert_eq!(r.hop.answered_by.as_deref(), Some("default"));
}

#[test]
fn chain_naming_a_missing_account_is_no_account() {
    let aws = account(1, "aws-admin", AccountStatus::Active);
    let w = Snapshot::new(
        vec![
            ChainEntry { position: 1, slug: "ghost".into(), account: None },
            ChainEntry { position: 2, slug: "aws-admin".into(), account: Some(aws.clone()) },
        ],
        vec![aws],
        vec![setting(1, 1, "openai", json!({"apiKey": "sk-aws-admin-0000000000"}), true)],
    );
    let r = resolve(&w, &user("nobody@x.com", None), &chat());
    assert_eq!(r.hop.steps[0].verdict, Verdict::NoAccount);
    assert_eq!(serde_json::to_value(&r.hop.steps[0]).unwrap()["verdict"], "no_account");
    assert!(r.hop.steps[0].detail.contains("missing account"));
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert!(r.warnings.iter().any(|w| w.code == "no_account"));
}

#[rstest]
#[case::inactive_user(false, AccountStatus::Active, "user_inactive")]
#[case::suspended(true, AccountStatus::Suspended, "account_suspended")]
#[case::cancelled(true, AccountStatus::Cancelled, "account_cancelled")]
fn warnings_ride_along(#[case] active: bool, #[case] status: AccountStatus, #[case] code: &str) {
    let mut w = world(vec![], seed_wrong());
    w.accounts.get_mut(&4).unwrap().status = status;
    let mut u = paid2();
    u.is_active = active;
    let r = resolve(&w, &u, &chat());
    assert!(r.warnings.iter().any(|w| w.code == code), "{:?}", r.warnings);
    assert!(r.is_resolved(), "warnings do not change the answer");
}

#[test]
fn unknown_types_answer_with_any_object() {
    let w = world(
        vec![
            setting(12, 1, "anthropic", json!({"whatever": 1}), true),
            setting(13, 4, "anthropic", json!(["not", "an", "object"]), true),
        ],
        seed_wrong(),
    );
    let hop = resolve_type(&w, w.accounts.get(&4), "anthropic");
    assert_eq!(
        verdicts(&hop.steps),
        vec![("paid-2".into(), Verdict::InvalidConfig), ("aws-admin".into(), Verdict::Answered)]
    );
}

#[test]
fn hostile_text_is_made_visible_in_details() {
    let w = world(vec![], json!({"provider": "\u{1b}[2J\u{202e}evil"}));
    let r = resolve(&w, &paid2(), &images());
    let finding = &r.hop.steps[1].findings[0];
    let reason = r.hop.hop.as_ref().unwrap().reason.clone().unwrap();
    for text in [finding, &reason] {
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'), "{text:?}");
        assert!(text.contains("\\x1b"), "{text:?}");
    }
}

mod rules {
    use super::*;

    #[test]
    fn the_default_is_the_seeds_get_model_config() {
        let rules = Rules::default();
        assert_eq!(rules.name(), "get_model_config (seed)");
        assert_eq!(
            rules.moves_on_names(),
            vec!["no_row", "no_account", "inactive", "invalid_config", "no_api_key", "no_provider"]
        );
        assert_eq!(rules.fails_names(), vec!["unreadable", "key_not_string"]);
        // What the store and config hand back in is accepted as it is.
        let again = Rules::new(rules.name(), &rules.moves_on_names(), &rules.fails_names()).unwrap();
        assert_eq!(again, rules);
    }

    #[test]
    fn strict_rules_move_on_over_bad_fields() {
        let mut w =
            world(vec![setting(10, 4, "openai", json!({"apiKey": KEY, "temperature": "hot"}), true)], seed_wrong());
        w.rules = Rules::strict();
        let r = resolve(&w, &paid2(), &chat());
        assert_eq!(r.hop.steps[0].verdict, Verdict::BadFields);
        assert_eq!(r.hop.steps[0].detail, "temperature is a string, not a number");
        assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
        assert_eq!(r.rules, Rules::strict().name());
        assert!(Rules::strict().moves_on_names().contains(&"bad_fields"));
    }

    #[test]
    fn a_verdict_the_rules_make_answer_answers_with_a_finding() {
        let mut w = world(vec![setting(10, 4, "openai", json!({"apiKey": KEY}), false)], seed_wrong());
        w.rules = Rules::new("answers inactive", &["invalid_config", "no_api_key", "no_provider"], &["key_not_string"])
            .unwrap();
        let r = resolve(&w, &paid2(), &chat());
        assert_eq!(r.hop.steps[0].verdict, Verdict::Answered);
        assert_eq!(r.hop.steps[0].findings, vec!["setting is inactive".to_string()]);
        assert_eq!(r.hop.answered_by.as_deref(), Some("paid-2"));
        assert_eq!(r.rules, "answers inactive");
    }

    #[test]
    fn a_verdict_the_rules_make_fail_stops_the_walk() {
        let mut w = world(vec![setting(10, 4, "openai", json!({"model": "gpt-4o"}), true)], seed_wrong());
        w.rules = Rules::new("raises on no key", &["inactive"], &["no_api_key"]).unwrap();
        let r = resolve(&w, &paid2(), &chat());
        assert_eq!(verdicts(&r.hop.steps), vec![("paid-2".into(), Verdict::NoApiKey)]);
        assert_eq!(r.hop.error.as_deref(), Some("the app's get_model_config raises here: apiKey is missing"));
        assert!(!r.is_resolved());
    }

    #[test]
    fn a_consumer_answering_without_a_provider_has_an_empty_hop() {
        let mut w = world(vec![], seed_wrong());
        w.rules = Rules::new("answers no_provider", &["inactive"], &[]).unwrap();
        let r = resolve(&w, &paid2(), &images());
        assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
        assert_eq!(r.hop.steps[1].findings, vec!["provider is missing".to_string()]);
        let hop = r.hop.hop.as_ref().unwrap();
        assert!(hop.steps.is_empty() && hop.answered_by.is_none() && hop.reason.is_some());
        assert!(!r.is_resolved());
    }

    #[rstest]
    #[case::unknown(&["inactive", "stale"], &[], "unknown verdict \"stale\"")]
    #[case::both(&["inactive"], &["inactive"], "inactive is in both moves_on and fails")]
    #[case::answered_moves_on(&["answered"], &[], "answered cannot be in moves_on")]
    #[case::answered_fails(&[], &["answered"], "answered cannot be in fails")]
    #[case::no_row_fails(&[], &["no_row"], "no_row cannot be in fails")]
    fn bad_rule_sets_are_refused(#[case] moves_on: &[&str], #[case] fails: &[&str], #[case] error: &str) {
        let e = Rules::new("mine", moves_on, fails).unwrap_err();
        assert!(e.starts_with(error), "{e:?} does not start with {error:?}");
    }

    #[test]
    fn an_empty_name_is_refused() {
        assert!(Rules::new("  ", &[], &[]).is_err());
    }
}

mod lint_rules {
    use keyfall::domain::lint::{Finding, LintInput, Severity, lint};
    use keyfall::domain::resolve::Snapshot;
    use keyfall::domain::{ChainEntry, Policy};
    use rstest::rstest;
    use serde_json::json;

    use super::{setting, world};

    fn lint_of(w: &Snapshot) -> Vec<Finding> {
        let accounts: Vec<_> = w.accounts.values().cloned().collect();
        let settings: Vec<_> = w.settings.values().cloned().collect();
        lint(&LintInput {
            snapshot: w,
            accounts: &accounts,
            settings: &settings,
            privileged: &[],
            policy: Policy::SystemOnly,
        })
    }

    fn of<'a>(findings: &'a [Finding], id: &str, account: &str, ty: &str) -> Vec<&'a Finding> {
        findings
            .iter()
            .filter(|f| {
                f.id == id && f.account.as_deref() == Some(account) && f.integration_type.as_deref() == Some(ty)
            })
            .collect()
    }

    #[test]
    fn each_rule_fires_on_its_case() {
        let mut w = world(
            vec![
                setting(20, 4, "openai", json!({"apiKey": "sk-pasted-with-newline-0000\n", "model": "gpt-9"}), true),
                setting(21, 4, "runware", json!({"model": "runware:100@1"}), true),
                setting(22, 4, "image_generation", json!({"provider": "openai", "quality": 3}), true),
            ],
            json!({"apiKey": "", "model": "gpt-image-1"}),
        );
        w.chain.push(ChainEntry { position: 4, slug: "ghost".into(), account: None });
        let findings = lint_of(&w);
        let found: Vec<&str> = findings.iter().map(|f| f.id).collect();
        for id in ["L001", "L003", "L004", "L005", "L006", "L008", "L009"] {
            assert!(found.contains(&id), "{id} missing from {found:?}");
        }
        let json = serde_json::to_string(&findings).unwrap();
        assert!(!json.contains("sk-pasted-with-newline"), "lint --json prints no key: {json}");
        assert!(!format!("{findings:?}").contains("sk-pasted-with-newline"), "nor does Debug");
        let l008 = findings.iter().find(|f| f.id == "L008").unwrap();
        let fixed = l008.fix.as_ref().unwrap().config.as_ref().unwrap();
        assert_eq!(fixed["apiKey"], "sk-pasted-with-newline-0000", "the fix trims the paste");
        // The seed's wrong config: an empty apiKey and no provider.
        let l001 = of(&findings, "L001", "aws-admin", "image_generation");
        assert_eq!(l001.len(), 1, "{l001:?}");
        assert_eq!(l001[0].severity, Severity::Error);
        assert!(l001[0].message.contains("names no provider"), "{}", l001[0].message);
        let fix = l001[0].fix.as_ref().unwrap().config.as_ref().unwrap();
        assert_eq!(fix["provider"], "openai", "gpt-image → openai");
        assert!(fix.get("apiKey").is_none());
        // A wrong-typed field on a row that answers is a warning.
        let l009 = of(&findings, "L009", "paid-2", "image_generation");
        assert_eq!(l009[0].severity, Severity::Warning);
        assert!(l009[0].message.contains("quality is a whole number, not a string"), "{}", l009[0].message);
    }

    #[test]
    fn an_unclear_model_asks_for_the_provider() {
        let w = world(vec![], json!({"apiKey": "x", "model": "mystery-model"}));
        let l001 = lint_of(&w).into_iter().find(|f| f.id == "L001").unwrap();
        assert!(l001.message.contains("carries its own apiKey"));
        let fix = l001.fix.unwrap();
        assert_eq!(fix.field.as_deref(), Some("provider"));
        assert_eq!(fix.choices, vec!["openai", "runware"]);
    }

    #[rstest]
    #[case::null(json!(null))]
    #[case::empty(json!(""))]
    #[case::blank(json!("  "))]
    fn an_empty_api_key_on_a_consumer_is_a_leftover(#[case] key: serde_json::Value) {
        let w = world(vec![], json!({"provider": "openai", "apiKey": key}));
        let findings = lint_of(&w);
        let l001 = of(&findings, "L001", "aws-admin", "image_generation");
        assert_eq!(l001.len(), 1);
        assert_eq!(l001[0].severity, Severity::Warning);
        assert!(!l001[0].message.contains("carries"), "{}", l001[0].message);
        let fix = l001[0].fix.as_ref().unwrap().config.as_ref().unwrap();
        assert_eq!(fix, &json!({"provider": "openai"}));
    }

    #[test]
    fn a_leftover_next_to_a_wrong_provider_only_goes() {
        let w = world(vec![], json!({"provider": "dalle", "apiKey": null, "model": "dall-e-3"}));
        let findings = lint_of(&w);
        let l001 = of(&findings, "L001", "aws-admin", "image_generation");
        let fix = l001[0].fix.as_ref().unwrap().config.as_ref().unwrap();
        assert_eq!(fix, &json!({"provider": "dalle", "model": "dall-e-3"}), "the provider is L002's to fix");
        assert_eq!(of(&findings, "L002", "aws-admin", "image_generation").len(), 1);
    }

    #[rstest]
    #[case::missing(json!({"model": "dall-e-3"}))]
    #[case::empty(json!({"provider": "", "model": "dall-e-3"}))]
    #[case::null(json!({"provider": null, "model": "dall-e-3"}))]
    fn an_active_consumer_without_a_provider_is_an_error(#[case] config: serde_json::Value) {
        let w = world(vec![], config);
        let findings = lint_of(&w);
        let l002 = of(&findings, "L002", "aws-admin", "image_generation");
        assert_eq!(l002.len(), 1, "{findings:?}");
        assert_eq!(l002[0].severity, Severity::Error);
        assert!(l002[0].message.contains("names no provider"), "{}", l002[0].message);
        assert_eq!(l002[0].fix.as_ref().unwrap().config.as_ref().unwrap()["provider"], "openai");
    }

    #[test]
    fn an_inactive_consumer_without_a_provider_is_not_an_error() {
        let mut w = world(vec![], json!({"model": "dall-e-3"}));
        w.settings.get_mut(&(1, "image_generation".to_string())).unwrap().is_active = false;
        assert!(of(&lint_of(&w), "L002", "aws-admin", "image_generation").is_empty());
    }

    #[rstest]
    #[case::padded(" openai", Some("openai"))]
    #[case::capitalised("Runware", Some("runware"))]
    #[case::other("dalle", None)]
    fn a_provider_that_is_not_a_provider_type_is_an_error(#[case] provider: &str, #[case] fixed: Option<&str>) {
        let w = world(vec![], json!({"provider": provider}));
        let findings = lint_of(&w);
        let l002 = of(&findings, "L002", "aws-admin", "image_generation");
        assert_eq!(l002.len(), 1, "{findings:?}");
        let fix = l002[0].fix.as_ref().and_then(|f| f.config.as_ref()).map(|c| c["provider"].as_str().unwrap());
        assert_eq!(fix, fixed);
    }

    #[test]
    fn a_provider_that_is_not_a_string_is_an_error() {
        let w = world(vec![], json!({"provider": 5}));
        let findings = lint_of(&w);
        let l002 = of(&findings, "L002", "aws-admin", "image_generation");
        assert_eq!(l002.len(), 1, "{findings:?}");
        assert!(l002[0].message.contains("not a string"));
        assert!(of(&findings, "L009", "aws-admin", "image_generation").is_empty(), "not reported twice");
    }

    #[test]
    fn wrong_fields_are_reported_even_without_a_key() {
        let w = world(
            vec![setting(20, 4, "openai", json!({"temperature": "hot", "max_tokens": 0}), true)],
            super::seed_wrong(),
        );
        let findings = lint_of(&w);
        assert_eq!(of(&findings, "L003", "paid-2", "openai").len(), 1);
        let l009 = of(&findings, "L009", "paid-2", "openai");
        assert_eq!(l009.len(), 1);
        assert_eq!(l009[0].severity, Severity::Warning);
        assert!(l009[0].message.contains("temperature is a string") && l009[0].message.contains("max_tokens 0"));
    }

    #[test]
    fn a_config_that_is_not_an_object_and_a_key_that_is_not_a_string_are_errors() {
        let w = world(
            vec![
                setting(20, 4, "openai", json!({"apiKey": 123}), true),
                setting(21, 4, "runware", json!(["rw-in-a-list"]), true),
            ],
            super::seed_wrong(),
        );
        let findings = lint_of(&w);
        let key = of(&findings, "L009", "paid-2", "openai");
        assert_eq!((key.len(), key[0].severity), (1, Severity::Error));
        assert!(key[0].message.contains("AttributeError"), "{}", key[0].message);
        let not_object = of(&findings, "L009", "paid-2", "runware");
        assert_eq!((not_object.len(), not_object[0].severity), (1, Severity::Error));
    }

    #[rstest]
    #[case::spaces("   ", false)]
    #[case::nbsp("\u{a0}", false)]
    #[case::quotes("\"\"", true)]
    #[case::quoted_spaces("\" \"", true)]
    fn the_trim_fix_never_empties_a_key(#[case] key: &str, #[case] flagged: bool) {
        let w = world(vec![setting(20, 4, "openai", json!({"apiKey": key}), true)], super::seed_wrong());
        let findings = lint_of(&w);
        let l008 = of(&findings, "L008", "paid-2", "openai");
        assert_eq!(l008.len(), usize::from(flagged), "{findings:?}");
        assert!(l008.iter().all(|f| f.fix.is_none()), "{l008:?}");
    }

    #[rstest]
    #[case::gpt_4_1("gpt-4.1", false)]
    #[case::dated("gpt-4.1-2025-04-14", false)]
    #[case::mini("gpt-4.1-mini", false)]
    #[case::unknown("gpt-9", true)]
    fn known_models_are_not_reported(#[case] model: &str, #[case] reported: bool) {
        let w = world(
            vec![setting(20, 4, "openai", json!({"apiKey": "sk-own-0000000000000", "model": model}), true)],
            super::seed_wrong(),
        );
        assert_eq!(!of(&lint_of(&w), "L004", "paid-2", "openai").is_empty(), reported);
    }
}
