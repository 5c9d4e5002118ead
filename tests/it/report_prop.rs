//! The set-based report (SQL) and the pure resolver must agree on who
//! answers, for every account and type, on random data (DESIGN §2).

use keyfall::domain::resolve::{Rules, Snapshot, resolve_type};
use keyfall::domain::{Account, AccountStatus, ChainEntry, Setting};
use proptest::prelude::*;
use serde_json::Value;

use crate::support::TestDb;

/// Configs that exercise every branch of the rules, for any type.
const CONFIGS: &[&str] = &[
    r#"{"apiKey": "sk-valid-key-000000000001", "model": "gpt-4o-mini"}"#,
    r#"{"apiKey": "rw-valid-key-000000000002"}"#,
    r#"{"apiKey": ""}"#,
    r#"{"apiKey": " \t\n "}"#,
    r#"{"apiKey": null, "model": "x"}"#,
    r#"{"model": "gpt-4o"}"#,
    r#"{"apiKey": 5}"#,
    r#"{"apiKey": "sk-valid-key-000000000003", "temperature": 3}"#,
    r#"{"apiKey": "sk-valid-key-000000000004", "temperature": "warm"}"#,
    r#"{"apiKey": "sk-valid-key-000000000005", "temperature": 1.5, "max_tokens": 100}"#,
    r#"{"apiKey": "sk-valid-key-000000000006", "max_tokens": 0}"#,
    r#"{"apiKey": "sk-valid-key-000000000007", "max_tokens": 1.5}"#,
    r#"{"apiKey": "sk-valid-key-000000000008", "model": 4}"#,
    r#"{"apiKey": "sk-valid-key-000000000009", "base_url": null}"#,
    r#"{"apiKey": "\u00a0\u2003"}"#,
    r#"{"apiKey": "\u001c"}"#,
    r#"{"apiKey": "\u200b"}"#,
    r#"{"apiKey": " sk-spaced-key-0000000010 "}"#,
    r#"{"apiKey": 0}"#,
    r#"{"apiKey": false}"#,
    r#"{"apiKey": []}"#,
    r#"{"apiKey": {}}"#,
    r#"{"apiKey": true}"#,
    r#"{"apiKey": ["sk-in-a-list-0000000011"]}"#,
    r#"{"apiKey": 0.0}"#,
    r#""a string""#,
    r#"[1, 2]"#,
    r#"null"#,
    r#"{"provider": "openai", "model": "dall-e-3"}"#,
    r#"{"provider": "runware"}"#,
    r#"{"provider": "anthropic"}"#,
    r#"{"provider": 1}"#,
    r#"{"provider": null, "model": "dall-e-3"}"#,
    r#"{"provider": ""}"#,
    r#"{"provider": "  "}"#,
    r#"{"provider": " openai"}"#,
    r#"{"provider": 0}"#,
    r#"{"provider": "custom_type"}"#,
    r#"{"provider": "image_generation"}"#,
    r#"{"apiKey": "", "model": "dall-e-3"}"#,
    r#"{"provider": "openai", "style": ["vivid"]}"#,
    r#"{"provider": "runware", "apiKey": "sk-wrong-place-00000000"}"#,
    r#"{}"#,
];

/// The registry's types and one it does not know.
fn types() -> Vec<&'static str> {
    keyfall::domain::registry::type_names().chain(["custom_type"]).collect()
}

#[derive(Debug, Clone)]
struct World {
    accounts: usize,
    /// Chain entries: an account index, or None for a slug with no account.
    chain: Vec<Option<usize>>,
    /// (account, type, config, active)
    settings: Vec<(usize, usize, usize, bool)>,
}

fn world(types: Vec<&'static str>, configs: Vec<&'static str>) -> impl Strategy<Value = World> {
    (1usize..7).prop_flat_map(move |n| {
        let chain = proptest::collection::vec(proptest::option::weighted(0.85, 0..n), 0..4);
        let settings =
            proptest::collection::vec((0..n, 0..types.len(), 0..configs.len(), proptest::bool::weighted(0.85)), 0..18);
        let (types, configs) = (types.clone(), configs.clone());
        // Often, a consumer naming runware and a runware row the app raises
        // on: random rows alone seldom put a raise in the second hop.
        let planted = proptest::option::weighted(0.5, (0..n, 0..n));
        (Just(n), chain, settings, planted).prop_map(move |(accounts, mut chain, mut settings, planted)| {
            if let Some((consumer, provider)) = planted {
                let config = |c: &str| configs.iter().position(|x| *x == c).unwrap();
                let ty = |t: &str| types.iter().position(|x| *x == t).unwrap();
                settings.push((consumer, ty("image_generation"), config(r#"{"provider": "runware"}"#), true));
                settings.push((provider, ty("runware"), config(r#"{"apiKey": 5}"#), true));
            }
            let mut seen = Vec::new();
            chain.retain(|e| match e {
                Some(i) if seen.contains(i) => false,
                Some(i) => {
                    seen.push(*i);
                    true
                }
                None => true,
            });
            World { accounts, chain, settings }
        })
    })
}

async fn load(db: &TestDb, w: &World, types: &[&'static str], configs: &[&'static str]) -> Snapshot {
    let mut conn = db.raw().await;
    let slugs: Vec<String> = (0..w.accounts).map(|i| format!("a{i}")).collect();
    let chain_slugs: Vec<String> = w
        .chain
        .iter()
        .enumerate()
        .map(|(pos, e)| e.map(|i| slugs[i].clone()).unwrap_or_else(|| format!("ghost-{pos}")))
        .collect();
    let wanted: Vec<_> = w.settings.iter().map(|&(a, t, c, active)| (a, types[t], configs[c], active)).collect();
    let (ids, written) = crate::support::load_world(&mut conn, &slugs, &chain_slugs, &wanted).await;
    let settings: Vec<Setting> = written
        .into_iter()
        .map(|(id, a, t, c, active)| Setting {
            id,
            account_id: ids[&slugs[a]],
            integration_type: t.to_string(),
            config: serde_json::from_str::<Value>(c).unwrap(),
            is_active: active,
            version: 1,
            updated_at: Some(chrono::Utc::now()),
            version_token: false,
            updated_by: None,
            withheld: None,
        })
        .collect();
    let accounts: Vec<Account> = slugs
        .iter()
        .map(|s| Account { id: ids[s], slug: s.clone(), name: s.clone(), status: AccountStatus::Active })
        .collect();
    let chain = chain_slugs
        .iter()
        .enumerate()
        .map(|(i, s)| ChainEntry {
            position: i as i32 + 1,
            slug: s.clone(),
            account: accounts.iter().find(|a| &a.slug == s).cloned(),
        })
        .collect();
    Snapshot::new(chain, accounts, settings)
}

fn rule_sets() -> Vec<Rules> {
    vec![
        Rules::default(),
        Rules::strict(),
        // An app that uses inactive rows and does not guard .strip().
        Rules::new("lenient", &["invalid_config", "no_api_key", "no_provider"], &[]).unwrap(),
    ]
}

#[test]
fn report_sql_equals_pure_resolver() {
    report_equals_resolver_and_batch(&[], 64);
}

/// The report, the pure resolver and resolve --batch's engine agree on
/// `cases` random worlds of the registry's types (and one unknown), with
/// `extra` configs beside `CONFIGS` (a test provider's own).
pub(crate) fn report_equals_resolver_and_batch(extra: &[&'static str], cases: u32) {
    let types = types();
    let configs: Vec<&'static str> = CONFIGS.iter().copied().chain(extra.iter().copied()).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(TestDb::new());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    // Raises seen in the first hop and in the second, across all cases.
    let raised = [std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)];
    runner
        .run(&(world(types.clone(), configs.clone()), 0..rule_sets().len()), |(w, r)| {
            let rules = rule_sets().swap_remove(r);
            let snapshot = Snapshot { rules: rules.clone(), ..rt.block_on(load(&db, &w, &types, &configs)) };
            let store = db.store.clone().with_rules(rules);
            let report = rt.block_on(store.report()).unwrap();
            for row in &report {
                let account = snapshot.accounts.values().find(|a| a.slug == row.account).unwrap();
                let hop = resolve_type(&snapshot, Some(account), &row.integration_type);
                let pure = (
                    hop.answered_by.clone(),
                    hop.hop.as_ref().map(|h| h.integration_type.clone()),
                    hop.hop.as_ref().and_then(|h| h.answered_by.clone()),
                );
                let sql = (row.answered_by.clone(), row.provider.clone(), row.provider_answered_by.clone());
                prop_assert_eq!(&sql, &pure, "account {} type {} in {:?}", row.account, row.integration_type, w);
                // Where the app raises (either hop): the same row, verdict
                // and words, and a raise is never "resolved".
                prop_assert_eq!(
                    &row.raises,
                    &hop.raises(),
                    "raises, account {} type {} in {:?}",
                    row.account,
                    row.integration_type,
                    w
                );
                prop_assert_eq!(
                    row.is_resolved(),
                    hop.is_resolved(),
                    "resolved, {} {}",
                    row.account,
                    row.integration_type
                );
                if row.raises.is_some() {
                    raised[usize::from(hop.error.is_none())].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                // The report's ⚠ is the answering row's verdict, as Rust judges it.
                if let Some(by) = &hop.answered_by {
                    let acc = snapshot.accounts.values().find(|a| &a.slug == by).unwrap();
                    let s = &snapshot.settings[&(acc.id, row.integration_type.clone())];
                    let verdict = keyfall::domain::registry::judge(&s.integration_type, &s.config, s.is_active).verdict;
                    prop_assert_eq!(
                        row.answer_verdict.as_deref(),
                        Some(verdict.as_str()),
                        "answering verdict for {} {} in {:?}",
                        row.account,
                        row.integration_type,
                        w
                    );
                }
            }
            // resolve --batch's engine (the walk for some accounts, in one
            // snapshot) answers as the report does, account by account.
            let ids: Vec<i64> = snapshot.accounts.keys().copied().collect();
            let mut asked: Vec<String> = report.iter().map(|r| r.integration_type.clone()).collect();
            asked.extend(types.iter().map(|t| t.to_string()));
            asked.sort();
            asked.dedup();
            let answers = rt.block_on(async {
                let mut tx = store.snapshot().await.unwrap();
                store.answers(&mut tx, &ids, &asked).await.unwrap()
            });
            for row in &report {
                let fast = answers.answer(row.account_id.map(|id| (id, row.account.as_str())), &row.integration_type);
                let fast =
                    (&fast.answered_by, &fast.provider, &fast.provider_answered_by, &fast.answer_verdict, &fast.raises);
                let sql =
                    (&row.answered_by, &row.provider, &row.provider_answered_by, &row.answer_verdict, &row.raises);
                prop_assert_eq!(
                    fast,
                    sql,
                    "batch engine, account {} type {} in {:?}",
                    row.account,
                    row.integration_type,
                    w
                );
            }
            // A user without an account walks the chain from the top.
            for &t in &types {
                let fast = answers.answer(None, t);
                let hop = resolve_type(&snapshot, None, t);
                let pure = (
                    hop.answered_by.clone(),
                    hop.hop.as_ref().map(|h| h.integration_type.clone()),
                    hop.hop.as_ref().and_then(|h| h.answered_by.clone()),
                );
                prop_assert_eq!(&fast.raises, &hop.raises(), "batch engine, no account, type {} in {:?}", t, w);
                prop_assert_eq!(
                    (fast.answered_by, fast.provider, fast.provider_answered_by),
                    pure,
                    "batch engine, no account, type {} in {:?}",
                    t,
                    w
                );
            }
            let types_in_report = report.iter().filter(|r| r.account == "a0").count();
            let expected_types = keyfall::domain::registry::TYPES.len()
                + usize::from(w.settings.iter().any(|s| types[s.1] == "custom_type"));
            prop_assert_eq!(types_in_report, expected_types);
            Ok(())
        })
        .unwrap();
    let raised = raised.map(|n| n.into_inner());
    assert!(raised.iter().all(|&n| n > 0), "raises in both hops were compared: {raised:?}");
    drop(rt);
}
