//! The resolver as a table: every verdict, both hops, the seed's users.

use chrono::{TimeZone, Utc};
use keyfall::domain::resolve::{Snapshot, Verdict, resolve, resolve_type};
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
        updated_at: Utc.with_ymd_and_hms(2025, 12, 10, 0, 0, 0).unwrap(),
        updated_by: None,
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
    steps.iter().map(|s| (s.account.clone(), s.verdict.clone())).collect()
}

#[test]
fn seed_tenant_falls_back_to_aws_admin() {
    let w = world(vec![], seed_wrong());
    let r = resolve(&w, &user("paid2@paid.com", Some(4)), &function("auto_cluster", "openai"));
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert_eq!(
        verdicts(&r.hop.steps),
        vec![("paid-2".into(), Verdict::NoRow), ("aws-admin".into(), Verdict::Answered)]
    );
    assert!(r.is_resolved());
    let key = r.hop.config.as_ref().unwrap()["apiKey"].as_str().unwrap().to_string();
    assert!(key.starts_with("••••••••3fA9 #"), "{key}");
    assert!(!serde_json::to_string(&r).unwrap().contains("sk-seed"));
}

#[test]
fn seed_wrong_image_config_leaves_generate_images_unresolved() {
    let w = world(vec![], seed_wrong());
    let r = resolve(&w, &user("paid2@paid.com", Some(4)), &function("generate_images", "image_generation"));
    assert_eq!(r.hop.answered_by, None);
    assert!(!r.is_resolved());
    let aws = &r.hop.steps[1];
    assert_eq!(aws.verdict, Verdict::InvalidConfig);
    assert_eq!(aws.detail, "provider is required");
    assert_eq!(r.hop.steps.len(), 4, "walks the whole chain");
}

#[test]
fn consumer_takes_a_second_hop_from_the_users_account() {
    let own_runware = setting(10, 4, "runware", json!({"apiKey": "rw-paid2-own-key-xxxx-9999"}), true);
    let w = world(vec![own_runware], json!({"provider": "runware", "model": "runware:100@1"}));
    let r = resolve(&w, &user("paid2@paid.com", Some(4)), &function("generate_images", "image_generation"));
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
    let r = resolve(&w, &user("x@y.z", None), &function("generate_images", "image_generation"));
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert_eq!(r.hop.hop.as_ref().unwrap().answered_by, None);
    assert!(!r.is_resolved());
}

#[rstest]
#[case::no_row(None, Verdict::NoRow, "no openai setting")]
#[case::inactive(Some((json!({"apiKey": "sk-x-valid-key-000000"}), false)), Verdict::Inactive, "setting is inactive")]
#[case::missing_key(Some((json!({"model": "gpt-4o"}), true)), Verdict::NoApiKey, "apiKey is missing, empty or blank")]
#[case::empty_key(Some((json!({"apiKey": ""}), true)), Verdict::NoApiKey, "apiKey is missing, empty or blank")]
#[case::blank_key(Some((json!({"apiKey": "  \n"}), true)), Verdict::NoApiKey, "apiKey is missing, empty or blank")]
#[case::null_key(Some((json!({"apiKey": null}), true)), Verdict::NoApiKey, "apiKey is missing, empty or blank")]
#[case::string_config(Some((json!("sk-oops"), true)), Verdict::InvalidConfig, "config is a string, not an object")]
#[case::array_config(Some((json!([1, 2]), true)), Verdict::InvalidConfig, "config is an array, not an object")]
#[case::null_config(Some((Value::Null, true)), Verdict::InvalidConfig, "config is null, not an object")]
#[case::numeric_key(Some((json!({"apiKey": 42}), true)), Verdict::InvalidConfig, "apiKey is a whole number, not a string")]
#[case::model_type(Some((json!({"apiKey": "sk-x-valid-key-000000", "model": 4}), true)), Verdict::InvalidConfig, "model is a whole number, not a string")]
#[case::temperature_range(Some((json!({"apiKey": "sk-x-valid-key-000000", "temperature": 3}), true)), Verdict::InvalidConfig, "temperature 3 is outside 0–2")]
#[case::temperature_type(Some((json!({"apiKey": "sk-x-valid-key-000000", "temperature": "warm"}), true)), Verdict::InvalidConfig, "temperature is a string, not a number")]
#[case::max_tokens_zero(Some((json!({"apiKey": "sk-x-valid-key-000000", "max_tokens": 0}), true)), Verdict::InvalidConfig, "max_tokens 0 is below 1")]
#[case::max_tokens_float(Some((json!({"apiKey": "sk-x-valid-key-000000", "max_tokens": 1.5}), true)), Verdict::InvalidConfig, "max_tokens is a number, not a whole number")]
#[case::answered(Some((json!({"apiKey": "sk-x-valid-key-000000", "model": "gpt-4o", "extra": {"kept": true}}), true)), Verdict::Answered, "apiKey ••••••••0000 #")]
fn tenant_row_verdicts(#[case] row: Option<(Value, bool)>, #[case] verdict: Verdict, #[case] detail: &str) {
    let extra = row.map(|(config, active)| setting(10, 4, "openai", config, active)).into_iter().collect();
    let w = world(extra, seed_wrong());
    let r = resolve(&w, &user("paid2@paid.com", Some(4)), &function("auto_cluster", "openai"));
    let first = &r.hop.steps[0];
    assert_eq!(first.account, "paid-2");
    assert_eq!(first.verdict, verdict);
    assert!(first.detail.starts_with(detail), "{:?} does not start with {detail:?}", first.detail);
    // Whatever the tenant's row says, aws-admin stands behind it.
    let expected = if verdict == Verdict::Answered { "paid-2" } else { "aws-admin" };
    assert_eq!(r.hop.answered_by.as_deref(), Some(expected));
}

#[rstest]
#[case::provider_missing(json!({"model": "dall-e-3"}), "provider is required")]
#[case::provider_unknown(json!({"provider": "anthropic"}), "provider \"anthropic\" is not a provider type (openai, runware)")]
#[case::provider_self(json!({"provider": "image_generation"}), "provider \"image_generation\" is not a provider type (openai, runware)")]
#[case::provider_type(json!({"provider": 1}), "provider is a whole number, not a string")]
#[case::style_type(json!({"provider": "openai", "style": ["vivid"]}), "style is an array, not a string")]
fn consumer_invalid_configs(#[case] config: Value, #[case] detail: &str) {
    let w = world(vec![], config);
    let r = resolve(&w, &user("paid2@paid.com", Some(4)), &function("generate_images", "image_generation"));
    assert_eq!(r.hop.steps[1].verdict, Verdict::InvalidConfig);
    assert_eq!(r.hop.steps[1].detail, detail);
}

#[test]
fn consumer_ignores_its_own_api_key() {
    // An image_generation row carrying a key is a lint finding (L001), not
    // a reason to skip it: it still answers through its provider.
    let w = world(vec![], json!({"apiKey": "sk-wrong-place-0000000", "provider": "openai"}));
    let r = resolve(&w, &user("paid2@paid.com", Some(4)), &function("generate_images", "image_generation"));
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert_eq!(r.hop.hop.as_ref().unwrap().answered_by.as_deref(), Some("aws-admin"));
    assert!(r.is_resolved());
}

#[test]
fn system_account_users_walk_the_chain_from_the_top() {
    let w = world(vec![setting(11, 2, "openai", json!({"apiKey": "sk-default-account-000000"}), true)], seed_wrong());
    // A user of default-account (chain 2) still gets aws-admin (chain 1) first.
    let r = resolve(&w, &user("ops@x.com", Some(2)), &function("auto_cluster", "openai"));
    assert_eq!(r.hop.steps[0].account, "aws-admin");
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert_eq!(r.hop.steps.len(), 1, "no duplicate step for the user's own (system) account");
}

#[test]
fn chain_naming_a_missing_account_is_skipped_with_a_reason() {
    let aws = account(1, "aws-admin", AccountStatus::Active);
    let w = Snapshot::new(
        vec![
            ChainEntry { position: 1, slug: "ghost".into(), account: None },
            ChainEntry { position: 2, slug: "aws-admin".into(), account: Some(aws.clone()) },
        ],
        vec![aws],
        vec![setting(1, 1, "openai", json!({"apiKey": "sk-aws-admin-0000000000"}), true)],
    );
    let r = resolve(&w, &user("nobody@x.com", None), &function("auto_cluster", "openai"));
    assert_eq!(r.hop.steps[0].verdict, Verdict::NoRow);
    assert!(r.hop.steps[0].detail.contains("missing account"));
    assert_eq!(r.hop.answered_by.as_deref(), Some("aws-admin"));
    assert!(r.warnings.iter().any(|w| w.code == "no_account"));
}

#[rstest]
#[case::inactive_user(false, AccountStatus::Active, "user_inactive")]
#[case::suspended(true, AccountStatus::Suspended, "account_suspended")]
#[case::cancelled(true, AccountStatus::Cancelled, "account_suspended")]
fn warnings_ride_along(#[case] active: bool, #[case] status: AccountStatus, #[case] code: &str) {
    let mut w = world(vec![], seed_wrong());
    w.accounts.get_mut(&4).unwrap().status = status;
    let mut u = user("paid2@paid.com", Some(4));
    u.is_active = active;
    let r = resolve(&w, &u, &function("auto_cluster", "openai"));
    assert!(r.warnings.iter().any(|w| w.code == code), "{:?}", r.warnings);
    assert!(r.is_resolved(), "warnings do not change the answer");
}

#[test]
fn unknown_types_answer_with_any_object() {
    let w = world(vec![setting(12, 1, "anthropic", json!({"whatever": 1}), true)], seed_wrong());
    let hop = resolve_type(&w, None, "anthropic");
    assert_eq!(hop.answered_by.as_deref(), Some("aws-admin"));
}

#[test]
fn hostile_text_is_made_visible_in_details() {
    let w = world(vec![], json!({"provider": "\u{1b}[2J\u{202e}evil"}));
    let r = resolve(&w, &user("paid2@paid.com", Some(4)), &function("generate_images", "image_generation"));
    let detail = &r.hop.steps[1].detail;
    assert!(!detail.contains('\u{1b}') && !detail.contains('\u{202e}'), "{detail:?}");
    assert!(detail.contains("\\x1b"));
}

mod lint_rules {
    use keyfall::domain::lint::{Finding, LintInput, lint};
    use keyfall::domain::resolve::Snapshot;
    use keyfall::domain::{ChainEntry, Policy};
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
        let l001 = findings.iter().find(|f| f.id == "L001").unwrap();
        assert_eq!(l001.fix.as_ref().unwrap().config.as_ref().unwrap()["provider"], "openai", "gpt-image → openai");
    }

    #[test]
    fn an_unclear_model_asks_for_the_provider() {
        let w = world(vec![], json!({"apiKey": "x", "model": "mystery-model"}));
        let l001 = lint_of(&w).into_iter().find(|f| f.id == "L001").unwrap();
        let fix = l001.fix.unwrap();
        assert_eq!(fix.field.as_deref(), Some("provider"));
        assert_eq!(fix.choices, vec!["openai", "runware"]);
    }
}
