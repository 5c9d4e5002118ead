//! The impact preview takes shortcuts (the accounts whose rows change row
//! by row, every other account only where the chain's answer changes,
//! counted in SQL). Held here to the straightforward way on random data:
//! the whole report before, the change applied for real, the whole report
//! after, the difference grouped by hand.

use std::collections::{HashMap, HashSet};

use keyfall::domain::change::{Answer, ImpactRow, Proposal};
use keyfall::domain::resolve::Rules;
use keyfall::store::{ReportRow, Store};
use proptest::prelude::*;
use serde_json::Value;

use crate::support::TestDb;

/// Configs that exercise each way a row stops, fails or moves the walk on,
/// and each kind of provider reference.
const CONFIGS: &[&str] = &[
    r#"{"apiKey": "sk-valid-key-000000000001", "model": "gpt-4o-mini"}"#,
    r#"{"apiKey": "sk-valid-key-000000000001", "model": "gpt-4o"}"#,
    r#"{"apiKey": "rw-valid-key-000000000002"}"#,
    r#"{"apiKey": " "}"#,
    r#"{"apiKey": 5}"#,
    r#"{"apiKey": "sk-valid-key-000000000003", "temperature": 3}"#,
    r#""a string""#,
    r#"{"provider": "openai", "model": "dall-e-3"}"#,
    r#"{"provider": "openai", "model": "dall-e-2"}"#,
    r#"{"provider": "runware"}"#,
    r#"{"provider": "anthropic"}"#,
    r#"{"provider": 1}"#,
    r#"{"provider": ""}"#,
    r#"{"provider": "custom_type"}"#,
    r#"{"provider": "image_generation"}"#,
    r#"{"model": "dall-e-3"}"#,
    r#"{}"#,
];

const TYPES: &[&str] = &["openai", "runware", "image_generation", "custom_type"];

#[derive(Debug, Clone)]
struct World {
    accounts: usize,
    chain: Vec<usize>,
    /// (account, type, config, active)
    settings: Vec<(usize, usize, usize, bool)>,
    /// Users per account; the last entry: users without an account.
    users: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Change {
    Set { account: usize, kind: usize, config: usize, active: bool },
    Delete { account: usize, kind: usize },
    Chain(Vec<usize>),
}

fn world() -> impl Strategy<Value = World> {
    (1usize..7).prop_flat_map(|n| {
        let chain = proptest::collection::vec(0..n, 0..4);
        let settings =
            proptest::collection::vec((0..n, 0..TYPES.len(), 0..CONFIGS.len(), proptest::bool::weighted(0.85)), 0..18);
        let users = proptest::collection::vec(0usize..4, n + 1);
        (Just(n), chain, settings, users).prop_map(|(accounts, mut chain, settings, users)| {
            let mut seen = HashSet::new();
            chain.retain(|i| seen.insert(*i));
            World { accounts, chain, settings, users }
        })
    })
}

fn change(accounts: usize) -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (0..accounts, 0..TYPES.len(), 0..CONFIGS.len(), proptest::bool::weighted(0.85))
            .prop_map(|(account, kind, config, active)| Change::Set { account, kind, config, active }),
        1 => (0..accounts, 0..TYPES.len()).prop_map(|(account, kind)| Change::Delete { account, kind }),
        1 => proptest::collection::vec(0..accounts, 0..4).prop_map(|mut c| {
            let mut seen = HashSet::new();
            c.retain(|i| seen.insert(*i));
            Change::Chain(c)
        }),
    ]
}

fn case() -> impl Strategy<Value = (World, Vec<Change>)> {
    world().prop_flat_map(|w| {
        let n = w.accounts;
        (Just(w), proptest::collection::vec(change(n), 1..3))
    })
}

/// Load the world (ids of accounts a0…; an operator who may change
/// anything, in an account of their own outside the chain).
async fn load(db: &TestDb, w: &World) -> HashMap<String, i64> {
    let mut conn = db.raw().await;
    let mut slugs: Vec<String> = (0..w.accounts).map(|i| format!("a{i}")).collect();
    slugs.push("zz-ops".into());
    let chain: Vec<String> = w.chain.iter().map(|i| slugs[*i].clone()).collect();
    let settings: Vec<_> = w.settings.iter().map(|&(a, t, c, active)| (a, TYPES[t], CONFIGS[c], active)).collect();
    let (ids, _) = crate::support::load_world(&mut conn, &slugs, &chain, &settings).await;
    sqlx::raw_sql(
        "INSERT INTO keyfall.ai_functions (name, integration_type)
         VALUES ('f_runware', 'runware'), ('f_custom', 'custom_type') ON CONFLICT DO NOTHING;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for (i, &n) in w.users.iter().enumerate() {
        let account = (i < w.accounts).then(|| ids[&slugs[i]]);
        for u in 0..n {
            sqlx::query("INSERT INTO users (email, role, account_id) VALUES ($1, 'viewer', $2)")
                .bind(format!("u{u}@a{i}.test"))
                .bind(account)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    sqlx::query(
        "INSERT INTO users (email, role, is_superuser, account_id) VALUES ('op@ops.test', 'developer', true, $1)",
    )
    .bind(ids["zz-ops"])
    .execute(&mut conn)
    .await
    .unwrap();
    ids
}

fn proposal(changes: &[Change], ids: &HashMap<String, i64>) -> Proposal {
    let one = |c: &Change| match c {
        Change::Set { account, kind, config, active } => Proposal::Setting {
            account_id: ids[&format!("a{account}")],
            integration_type: TYPES[*kind].into(),
            config: serde_json::from_str(CONFIGS[*config]).unwrap(),
            is_active: *active,
        },
        Change::Delete { account, kind } => {
            Proposal::Delete { account_id: ids[&format!("a{account}")], integration_type: TYPES[*kind].into() }
        }
        Change::Chain(c) => Proposal::Chain(c.iter().map(|i| format!("a{i}")).collect()),
    };
    match changes {
        [single] => one(single),
        many => Proposal::Many(many.iter().map(one).collect()),
    }
}

/// Apply the changes for real, as psql would.
async fn apply(db: &TestDb, changes: &[Change], ids: &HashMap<String, i64>) {
    let mut conn = db.raw().await;
    for c in changes {
        match c {
            Change::Set { account, kind, config, active } => {
                sqlx::query(
                    "INSERT INTO integration_settings (account_id, integration_type, config, is_active)
                     VALUES ($1, $2, $3::text::jsonb, $4)
                     ON CONFLICT (account_id, integration_type)
                     DO UPDATE SET config = EXCLUDED.config, is_active = EXCLUDED.is_active",
                )
                .bind(ids[&format!("a{account}")])
                .bind(TYPES[*kind])
                .bind(CONFIGS[*config])
                .bind(*active)
                .execute(&mut conn)
                .await
                .unwrap();
            }
            Change::Delete { account, kind } => {
                sqlx::query("DELETE FROM integration_settings WHERE account_id = $1 AND integration_type = $2")
                    .bind(ids[&format!("a{account}")])
                    .bind(TYPES[*kind])
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Change::Chain(c) => {
                let slugs: Vec<String> = c.iter().map(|i| format!("a{i}")).collect();
                sqlx::raw_sql("DELETE FROM keyfall.fallback_chain").execute(&mut conn).await.unwrap();
                sqlx::query(
                    "INSERT INTO keyfall.fallback_chain (position, account_slug)
                     SELECT p, s FROM unnest($1::text[]) WITH ORDINALITY AS c(s, p)",
                )
                .bind(&slugs)
                .execute(&mut conn)
                .await
                .unwrap();
            }
        }
    }
}

/// Every setting's content, by (account slug, type).
async fn contents(db: &TestDb) -> HashMap<(String, String), String> {
    let mut conn = db.raw().await;
    sqlx::query_as::<_, (String, String, String)>(
        "SELECT a.slug, s.integration_type, s.config::text || s.is_active::text
           FROM integration_settings s JOIN accounts a ON a.id = s.account_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|(a, t, c)| ((a, t), c))
    .collect()
}

/// The whole report — every account, and users without one — over every
/// type of the world (a type no row has any more still has its rows).
async fn everyone(store: &Store, ids: &HashMap<String, i64>) -> Vec<ReportRow> {
    let all: Vec<i64> = ids.values().copied().collect();
    let types: Vec<String> = TYPES.iter().map(|t| t.to_string()).collect();
    store.report_for(&all, &types).await.unwrap()
}

/// The impact the slow way: every account's answer before and after.
async fn straightforward(
    db: &TestDb,
    store: &Store,
    w: &World,
    changes: &[Change],
    ids: &HashMap<String, i64>,
) -> Vec<ImpactRow> {
    let chain_before: Vec<String> = w.chain.iter().map(|i| format!("a{i}")).collect();
    let before = everyone(store, ids).await;
    let content_before = contents(db).await;
    apply(db, changes, ids).await;
    let after = everyone(store, ids).await;
    let content_after = contents(db).await;
    let renewed: HashSet<(String, String)> = content_before
        .iter()
        .filter(|(k, v)| content_after.get(*k).is_some_and(|a| a != *v))
        .map(|(k, _)| k.clone())
        .collect();
    let users = |account: &str| -> i64 {
        if account.is_empty() {
            w.users[w.accounts] as i64
        } else if account == "zz-ops" {
            1 // the operator
        } else {
            let i: usize = account[1..].parse().unwrap();
            w.users[i] as i64
        }
    };
    let label = |r: &ReportRow| {
        let own = |by: &Option<String>| match by {
            Some(s) if *s == r.account => Some("(own)".to_string()),
            other => other.clone(),
        };
        Answer {
            answered_by: own(&r.answered_by),
            provider: r.provider.clone(),
            provider_answered_by: own(&r.provider_answered_by),
            new_value: false,
        }
    };
    let before_rows: HashMap<(&str, &str), &ReportRow> =
        before.iter().map(|r| ((r.account.as_str(), r.integration_type.as_str()), r)).collect();
    // (type, before, after, value changed) → (accounts, users, account slugs)
    type Groups = HashMap<(String, Answer, Answer, bool), (i64, i64, Vec<(i64, String)>)>;
    let mut groups = Groups::new();
    for a in &after {
        // A type no row had before (the change brings it): nobody answered.
        let was = before_rows
            .get(&(a.account.as_str(), a.integration_type.as_str()))
            .map(|b| label(b))
            .unwrap_or(Answer { answered_by: None, provider: None, provider_answered_by: None, new_value: false });
        let is = label(a);
        let from_changed = a
            .answered_by
            .as_ref()
            .is_some_and(|by| renewed.contains(&(by.clone(), a.integration_type.clone())))
            || matches!((&a.provider_answered_by, &a.provider), (Some(by), Some(p)) if renewed.contains(&(by.clone(), p.clone())));
        let value_changed = was == is && from_changed;
        if was == is && !value_changed {
            continue;
        }
        let g = groups.entry((a.integration_type.clone(), was, is, value_changed)).or_default();
        g.0 += i64::from(!a.account.is_empty());
        g.1 += users(&a.account);
        if let Some(id) = a.account_id {
            g.2.push((id, a.account.clone()));
        }
    }
    // A tenant's single change names the tenant rather than "(own)".
    let own_name = match changes {
        [Change::Set { account, .. } | Change::Delete { account, .. }]
            if !chain_before.contains(&format!("a{account}")) =>
        {
            Some(format!("a{account}"))
        }
        _ => None,
    };
    let functions: Vec<(String, String)> = sqlx::query_as("SELECT name, integration_type FROM keyfall.ai_functions")
        .fetch_all(&mut db.raw().await)
        .await
        .unwrap();
    let mut out = Vec::new();
    for ((t, before, mut after, value_changed), (accounts, users, mut examples)) in groups {
        after.new_value = value_changed;
        // Per class of id modulo 3, the first slug (bytes); those, in order.
        examples.sort_unstable_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
        let mut firsts: Vec<String> = (0..3)
            .filter_map(|class| examples.iter().find(|(id, _)| id.rem_euclid(3) == class).map(|(_, s)| s.clone()))
            .collect();
        firsts.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let examples = firsts;
        for (function, _) in functions.iter().filter(|(_, ft)| *ft == t) {
            let mut row = ImpactRow {
                function: function.clone(),
                integration_type: t.clone(),
                before: before.clone(),
                after: after.clone(),
                accounts,
                users,
                value_changed,
                examples: examples.clone(),
            };
            if let Some(slug) = &own_name {
                for answer in [&mut row.before, &mut row.after] {
                    for field in [&mut answer.answered_by, &mut answer.provider_answered_by] {
                        if field.as_deref() == Some("(own)") {
                            *field = Some(slug.clone());
                        }
                    }
                }
            }
            out.push(row);
        }
    }
    out
}

fn sorted(mut rows: Vec<ImpactRow>) -> Vec<String> {
    let mut out: Vec<String> = rows.drain(..).map(|r| format!("{r:?}")).collect();
    out.sort();
    out
}

/// A case the property found (shrunk): two changes to one setting in one
/// proposal, the last putting back what was stored. The preview must
/// compare what the last change leaves, not the first.
#[test]
fn two_changes_to_one_setting_are_previewed_as_the_last_leaves_it() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(TestDb::new());
    let w = World {
        accounts: 1,
        chain: vec![0],
        settings: vec![
            (0, 0, 7, false),
            (0, 2, 16, true),
            (0, 3, 8, true),
            (0, 2, 7, true),
            (0, 0, 3, false),
            (0, 1, 1, true),
            (0, 3, 4, true),
            (0, 0, 12, true),
            (0, 3, 4, true),
            (0, 3, 13, true),
            (0, 3, 2, true),
            (0, 0, 1, true),
        ],
        users: vec![0, 0],
    };
    let changes = vec![
        Change::Set { account: 0, kind: 2, config: 0, active: false },
        Change::Set { account: 0, kind: 2, config: 7, active: true },
    ];
    let store = db.store.clone().with_rules(Rules::default()).with_operator(Some("op@ops.test".into()));
    let ids = rt.block_on(load(&db, &w));
    let proposal = proposal(&changes, &ids);
    let fast = rt.block_on(store.impact(&proposal)).unwrap();
    let slow = rt.block_on(straightforward(&db, &store, &w, &changes, &ids));
    assert_eq!(sorted(fast), sorted(slow));
    drop(rt);
}

#[test]
fn scoped_impact_equals_the_whole_report_before_and_after() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(TestDb::new());
    let rule_sets = [Rules::default(), Rules::strict()];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(case(), 0..rule_sets.len()), |((w, changes), r)| {
            let store = db.store.clone().with_rules(rule_sets[r].clone()).with_operator(Some("op@ops.test".into()));
            let ids = rt.block_on(load(&db, &w));
            let proposal = proposal(&changes, &ids);
            let fast = rt.block_on(store.impact(&proposal)).unwrap();
            // The preview wrote nothing: the slow way starts from the same data.
            let slow = rt.block_on(straightforward(&db, &store, &w, &changes, &ids));
            prop_assert_eq!(sorted(fast), sorted(slow), "{:?} in {:?}", changes, w);
            Ok(())
        })
        .unwrap();
    drop(rt);
}

#[tokio::test]
async fn a_system_key_change_counts_who_now_uses_the_new_value() {
    let db = TestDb::demo().await;
    let aws = db.store.account("aws-admin").await.unwrap().unwrap();
    let stored = db.store.setting("aws-admin", "openai").await.unwrap().setting.unwrap();
    let mut config = stored.config.clone();
    config["apiKey"] = Value::String("sk-rotated-key-000000000000".into());
    let rows = db
        .store
        .impact(&Proposal::Setting { account_id: aws.id, integration_type: "openai".into(), config, is_active: true })
        .await
        .unwrap();
    // Nobody changes answering account; everyone answered by aws-admin's
    // key (aws-admin itself as "(own)") now uses the new one.
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.value_changed && r.before.answered_by == r.after.answered_by), "{rows:#?}");
    let auto: Vec<_> = rows.iter().filter(|r| r.function == "auto_cluster").collect();
    let tenants = auto.iter().find(|r| r.before.answered_by.as_deref() == Some("aws-admin")).unwrap();
    assert_eq!(tenants.after.to_string(), "aws-admin (new value)");
    assert!(tenants.accounts >= 4, "{tenants:?}");
    // The same content again is no change at all.
    let same = db
        .store
        .impact(&Proposal::Setting {
            account_id: aws.id,
            integration_type: "openai".into(),
            config: stored.config.clone(),
            is_active: stored.is_active,
        })
        .await
        .unwrap();
    assert_eq!(same, vec![]);
}

#[tokio::test]
async fn deleting_an_override_previews_who_falls_back() {
    let db = TestDb::demo().await;
    let acme = db.store.account("acme-studio").await.unwrap().unwrap();
    let rows =
        db.store.impact(&Proposal::Delete { account_id: acme.id, integration_type: "openai".into() }).await.unwrap();
    let auto = rows.iter().find(|r| r.function == "auto_cluster").unwrap();
    assert_eq!((auto.before.to_string().as_str(), auto.after.to_string().as_str()), ("acme-studio", "aws-admin"));
    assert_eq!(auto.accounts, 1);
    assert_eq!(auto.examples, ["acme-studio"], "the one account is named");
    assert!(!auto.value_changed);
}

#[tokio::test]
async fn set_dry_run_shows_the_change_and_its_impact_and_writes_nothing() {
    use crate::cli::keyfall;
    let db = TestDb::demo().await;
    let key = "sk-dry-run-canary-0000000000000";
    let dry = keyfall(&db, &["--as", "dev@igny8.com", "set", "aws-admin", "openai", "apiKey", "--dry-run"], Some(key));
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let fingerprint = keyfall::domain::secret::fingerprint(key);
    assert!(dry.stdout.contains("config.apiKey:") && dry.stdout.contains(&fingerprint), "{}", dry.stdout);
    assert!(dry.stdout.contains("aws-admin: answering account unchanged; "), "{}", dry.stdout);
    assert!(dry.stdout.contains("users now use the new value"), "{}", dry.stdout);
    // Who: the first three accounts by name, then how many more.
    assert!(
        dry.stdout.lines().any(|l| l.contains("answering account unchanged; ")
            && l.contains(" accounts (")
            && l.contains(" more), ")),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("not applied"), "{}", dry.stdout);
    assert!(!dry.stdout.contains(key) && !dry.stderr.contains(key), "the key never shows");
    let stored = db.store.setting("aws-admin", "openai").await.unwrap().setting.unwrap();
    assert_eq!(stored.config["apiKey"], "sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9", "nothing written");
    let mut conn = db.raw().await;
    let audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE actor <> 'keyfall demo' AND action <> 'history_start'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(audit, 0, "nothing audited");

    // A tenant's new override: field by field, and who moves.
    let own = keyfall(&db, &["--as", "dev@igny8.com", "set", "paid-2", "openai", "model", "--dry-run"], Some("gpt-4o"));
    assert_eq!(own.code, 0, "{}", own.stderr);
    assert!(own.stdout.contains("paid-2 openai (new) (dry run)"), "{}", own.stdout);
    assert!(own.stdout.contains("config.model: — → gpt-4o"), "{}", own.stdout);
    // A row without a key moves the walk on: nobody resolves differently.
    assert!(own.stdout.contains("nobody resolves differently"), "{}", own.stdout);
}

#[tokio::test]
async fn report_json_streams_what_the_report_holds_byte_for_byte() {
    use crate::cli::keyfall;
    let db = TestDb::demo().await;
    let run = keyfall(&db, &["report", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = db.store.report().await.unwrap();
    // Each row as `--json` carries it: its format version first.
    let versioned: Vec<_> = rows.iter().map(keyfall::cli::Versioned).collect();
    assert_eq!(run.stdout, format!("{}\n", serde_json::to_string_pretty(&versioned).unwrap()));
    let order: Vec<(&str, &str)> = rows.iter().map(|r| (r.account.as_str(), r.integration_type.as_str())).collect();
    assert_eq!(
        &order[..4],
        &[
            ("aws-admin", "image_generation"),
            ("aws-admin", "openai"),
            ("aws-admin", "runware"),
            ("default-account", "image_generation")
        ]
    );
    let tenants: Vec<&str> = rows.iter().filter(|r| r.chain_position.is_none()).map(|r| r.account.as_str()).collect();
    let mut sorted = tenants.clone();
    sorted.sort();
    assert_eq!(tenants, sorted, "tenants by slug");
}
