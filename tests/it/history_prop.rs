//! Issue 23, exactness: random timed sequences of writes — settings, chain,
//! policy, users, accounts (status and slug) — through keyfall's store and
//! through a plain connection (psql's way), with the resolver's inputs
//! snapshotted at random moments; afterwards every `--at` world of those
//! moments (by time and by audit entry) must give the resolver the same
//! answer, and the permission checks the same decisions, as the snapshot.

use keyfall::domain::directory::SubjectData;
use keyfall::domain::history::Cut;
use keyfall::domain::model::chain_position;
use keyfall::domain::permissions::{self, Subject, Target};
use keyfall::domain::resolve::{Hop, resolve};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::TestDb;

const ACCOUNTS: [&str; 6] = ["aws-admin", "default-account", "default", "paid-2", "acme-studio", "globex"];
const USERS: [&str; 5] =
    ["paid2@paid.com", "dev@igny8.com", "ops@igny8.com", "owner@acme.example", "owner@globex.example"];
const FUNCTIONS: [&str; 2] = ["auto_cluster", "generate_images"];
const KINDS: [&str; 3] = ["openai", "runware", "image_generation"];
const ROLES: [&str; 4] = ["owner", "developer", "viewer", "admin"];
const STATUSES: [&str; 4] = ["active", "suspended", "trial", "cancelled"];
const POLICIES: [&str; 3] = ["system_only", "per_account", "hybrid_readonly"];
/// Configs: usable keys, a blank one, whitespace (redacted to a
/// fingerprint: the recorded verdict must carry it), a key that is a
/// number, bad fields, not an object, consumers' providers.
const CONFIGS: [&str; 10] = [
    r#"{"apiKey": "sk-hist-AAAA1111bbbb2222cccc", "model": "gpt-4o-mini"}"#,
    r#"{"apiKey": "rw-hist-ZZZZ9999yyyy8888xxxx"}"#,
    r#"{"apiKey": ""}"#,
    r#"{"apiKey": "   "}"#,
    r#"{"apiKey": 42}"#,
    r#"{"apiKey": "sk-hist-BBBB1111bbbb2222cccc", "temperature": 7}"#,
    r#""not an object""#,
    r#"{"provider": "runware", "model": "runware:100@1"}"#,
    r#"{"provider": "openai"}"#,
    r#"{"provider": ""}"#,
];

/// Who writes a setting.
#[derive(Debug, Clone, Copy)]
enum By {
    Keyfall,
    Psql,
    /// The Django ORM, this way (`kf.py serve`'s `how`).
    Orm(&'static str),
}

/// The ORM's ways to write: a setting (created where missing), a delete,
/// a user or account update.
const SETTING_HOWS: &[&str] = &["save", "update", "bulk_update", "update_or_create"];
const DELETE_HOWS: &[&str] = &["queryset", "instance"];
const ROW_HOWS: &[&str] = &["update", "save", "save_fields"];

fn by() -> impl Strategy<Value = By> {
    prop_oneof![Just(By::Keyfall), Just(By::Psql), proptest::sample::select(SETTING_HOWS).prop_map(By::Orm),]
}

/// `None`: psql's way; else the ORM's, this way.
fn psql_or_orm(hows: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![Just(None), proptest::sample::select(hows).prop_map(Some)]
}

#[derive(Debug, Clone)]
enum Op {
    /// Upsert one setting; `by` picks the writer.
    Setting {
        by: By,
        account: usize,
        kind: usize,
        config: usize,
        active: bool,
    },
    Delete {
        orm: Option<&'static str>,
        account: usize,
        kind: usize,
    },
    Chain {
        keyfall: bool,
        order: Vec<usize>,
    },
    Policy {
        keyfall: bool,
        policy: usize,
    },
    User {
        orm: Option<&'static str>,
        user: usize,
        account: Option<usize>,
        role: usize,
        active: bool,
        superuser: bool,
    },
    Status {
        orm: Option<&'static str>,
        account: usize,
        status: usize,
    },
    /// Rename an account's slug (to `slug-rN`) or back.
    Rename {
        orm: Option<&'static str>,
        account: usize,
        renamed: bool,
    },
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    let n = ACCOUNTS.len();
    prop_oneof![
        4 => (by(), 0..n, 0..KINDS.len(), 0..CONFIGS.len(), proptest::bool::weighted(0.8))
            .prop_map(|(by, account, kind, config, active)| Op::Setting { by, account, kind, config, active }),
        1 => (psql_or_orm(DELETE_HOWS), 0..n, 0..KINDS.len()).prop_map(|(orm, account, kind)| Op::Delete { orm, account, kind }),
        1 => (any::<bool>(), proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 1..4).prop_shuffle())
            .prop_map(|(keyfall, order)| Op::Chain { keyfall, order }),
        1 => (any::<bool>(), 0..POLICIES.len()).prop_map(|(keyfall, policy)| Op::Policy { keyfall, policy }),
        2 => (psql_or_orm(ROW_HOWS), 0..USERS.len(), proptest::option::weighted(0.8, 0..n), 0..ROLES.len(), proptest::bool::weighted(0.8), any::<bool>())
            .prop_map(|(orm, user, account, role, active, superuser)| Op::User { orm, user, account, role, active, superuser }),
        1 => (psql_or_orm(ROW_HOWS), 0..n, 0..STATUSES.len()).prop_map(|(orm, account, status)| Op::Status { orm, account, status }),
        1 => (psql_or_orm(ROW_HOWS), 0..n, any::<bool>()).prop_map(|(orm, account, renamed)| Op::Rename { orm, account, renamed }),
        3 => Just(Op::Snapshot),
    ]
}

/// What an answer is, beyond how keys are shown (a past key shows as its
/// fingerprint only): who answers at each hop, every step's account and
/// verdict, whether the app raises, the warnings.
fn shape(h: &Hop) -> Value {
    json!({
        "type": h.integration_type,
        "answered_by": h.answered_by,
        "steps": h.steps.iter().map(|s| json!([s.account, s.position, s.verdict.as_str()])).collect::<Vec<_>>(),
        "raises": h.error.is_some(),
        "hop": h.hop.as_ref().map(|n| shape(n)),
    })
}

/// The answers and checks one world gives every user × function.
fn answers(data: &[(String, SubjectData)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (what, d) in data {
        let Some(user) = &d.user else {
            out.push(json!([what, "no user"]));
            continue;
        };
        let Some(function) = &d.function else {
            out.push(json!([what, "no function"]));
            continue;
        };
        let r = resolve(&d.snapshot, user, function);
        let account = d.user_account();
        let subject = Subject {
            user,
            account,
            account_chain_position: account.and_then(|a| chain_position(&d.snapshot.chain, a.id)),
        };
        let head = d.snapshot.chain.first().map(|e| e.slug.clone()).unwrap_or_default();
        let p = permissions::evaluate_all(&subject, d.policy, &Target::System { slug: &head });
        let allowed: Vec<(String, bool)> = p.actions.iter().map(|(k, v)| (k.to_string(), v.allowed)).collect();
        let warnings: Vec<&str> = r.warnings.iter().map(|w| w.code).collect();
        out.push(json!([what, shape(&r.hop), warnings, d.policy.as_str(), account.map(|a| &a.slug), allowed]));
    }
    out
}

/// The app's own role: not a superuser, granted what a Django app needs on
/// its tables (the demo's) and nothing of keyfall's.
const APP: &str = "keyfall_django_app";

/// The Django ORM as a writer: one `kf.py serve` process for the whole
/// test, logged in as the app's role, fed one JSON op per line and
/// answering each once it is committed.
struct Orm {
    child: std::sync::Mutex<std::process::Child>,
    io: std::sync::Mutex<(std::process::ChildStdin, std::sync::mpsc::Receiver<String>)>,
}

impl Orm {
    async fn start(db: &TestDb) -> Orm {
        use std::process::Stdio;
        let mut admin = db.raw().await;
        // Roles are cluster-wide and tests run in parallel: made once, the
        // loser of a race retries.
        for _ in 0..3 {
            let made = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP}') THEN CREATE ROLE {APP} LOGIN; END IF; END $$"
            )))
            .execute(&mut admin)
            .await;
            if made.is_ok() {
                break;
            }
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "GRANT USAGE ON SCHEMA public TO {APP};
             GRANT SELECT, INSERT, UPDATE, DELETE ON public.accounts, public.users, public.integration_settings TO {APP};
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {APP};"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        let app = keyfall::store::Target {
            options: db.target.options.clone().username(APP),
            source: keyfall::store::Source::Configured,
            connect_timeout: None,
        };
        let mut child = crate::django::kf_command(&app, &["serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kf.py serve");
        let stdin = child.stdin.take().expect("kf.py's stdin");
        let stdout = child.stdout.take().expect("kf.py's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Orm { child: std::sync::Mutex::new(child), io: std::sync::Mutex::new((stdin, rx)) }
    }

    /// One ORM write, committed when this returns.
    fn write(&self, op: Value) {
        use std::io::Write;
        let mut io = self.io.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        writeln!(io.0, "{op}").and_then(|_| io.0.flush()).unwrap_or_else(|e| panic!("kf.py serve is gone ({e}): {op}"));
        let answer =
            io.1.recv_timeout(crate::support::HUNG).unwrap_or_else(|e| panic!("kf.py serve: no answer ({e}) to {op}"));
        let answer: Value =
            serde_json::from_str(&answer).unwrap_or_else(|e| panic!("kf.py serve: not JSON ({e}): {answer}"));
        assert_eq!(answer, json!({"ok": true}), "the ORM write {op}");
    }
}

impl Drop for Orm {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How many audit rows the app's role wrote in each of the app's tables:
/// the ORM really wrote, and was recorded.
async fn orm_audited(conn: &mut sqlx::PgConnection) -> std::collections::HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT table_name, count(*) FROM keyfall.audit_log WHERE db_login = $1 GROUP BY 1",
    )
    .bind(APP)
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn assert_orm_wrote_every_app_table(audited: &std::collections::HashMap<String, i64>) {
    for table in ["integration_settings", "users", "accounts"] {
        assert!(audited.get(table).is_some_and(|n| *n > 0), "no ORM write to {table} was recorded: {audited:?}");
    }
}

async fn apply(db: &TestDb, conn: &mut sqlx::PgConnection, orm: &Orm, ids: &[i64], op: &Op) {
    let slug_of = |id: i64| sqlx::query_scalar::<_, String>("SELECT slug FROM accounts WHERE id = $1").bind(id);
    match op {
        Op::Setting { by: By::Orm(how), account, kind, config, active } => {
            orm.write(json!({"op": "setting", "how": how, "account_id": ids[*account], "type": KINDS[*kind],
                             "config": CONFIGS[*config], "active": active}));
        }
        Op::Setting { by, account, kind, config, active } => {
            let value: Value = serde_json::from_str(CONFIGS[*config]).unwrap();
            let written = if matches!(by, By::Keyfall) {
                let slug = slug_of(ids[*account]).fetch_one(&mut *conn).await.unwrap();
                let (v, a) = (value.clone(), *active);
                db.store.write_setting("dev@igny8.com", &slug, KINDS[*kind], None, move |_| (v, a)).await.is_ok()
            } else {
                false
            };
            if !written {
                sqlx::query(
                    "INSERT INTO integration_settings (account_id, integration_type, config, is_active)
                     VALUES ($1, $2, $3::text::jsonb, $4)
                     ON CONFLICT (account_id, integration_type) DO UPDATE SET config = EXCLUDED.config, is_active = EXCLUDED.is_active",
                )
                .bind(ids[*account])
                .bind(KINDS[*kind])
                .bind(CONFIGS[*config])
                .bind(active)
                .execute(&mut *conn)
                .await
                .unwrap();
            }
        }
        Op::Delete { orm: Some(how), account, kind } => {
            orm.write(json!({"op": "delete", "how": how, "account_id": ids[*account], "type": KINDS[*kind]}));
        }
        Op::Delete { orm: None, account, kind } => {
            sqlx::query("DELETE FROM integration_settings WHERE account_id = $1 AND integration_type = $2")
                .bind(ids[*account])
                .bind(KINDS[*kind])
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Op::Chain { keyfall, order } => {
            let mut slugs = Vec::new();
            for i in order {
                slugs.push(slug_of(ids[*i]).fetch_one(&mut *conn).await.unwrap());
            }
            let via_keyfall = *keyfall && {
                let now = db.store.subject(None, None).await.unwrap();
                let chain: Vec<String> = now.snapshot.chain.iter().map(|e| e.slug.clone()).collect();
                db.store.set_chain_and_policy("dev@igny8.com", Some(&slugs), None, &chain, now.policy).await.is_ok()
            };
            if !via_keyfall {
                sqlx::query("DELETE FROM keyfall.fallback_chain").execute(&mut *conn).await.unwrap();
                sqlx::query(
                    "INSERT INTO keyfall.fallback_chain (position, account_slug)
                     SELECT p, s FROM unnest($1::text[]) WITH ORDINALITY AS c(s, p)",
                )
                .bind(&slugs)
                .execute(&mut *conn)
                .await
                .unwrap();
            }
        }
        Op::Policy { keyfall, policy } => {
            let p = keyfall::domain::Policy::parse(POLICIES[*policy]).unwrap();
            let via_keyfall = *keyfall && {
                let now = db.store.subject(None, None).await.unwrap();
                let chain: Vec<String> = now.snapshot.chain.iter().map(|e| e.slug.clone()).collect();
                db.store.set_chain_and_policy("dev@igny8.com", None, Some(p), &chain, now.policy).await.is_ok()
            };
            if !via_keyfall {
                sqlx::query("UPDATE keyfall.policy SET mode = $1")
                    .bind(POLICIES[*policy])
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
        }
        Op::User { orm: how, user, account, role, active, superuser } => {
            // dev@igny8.com stays a superuser developer: keyfall's writes act as it.
            if *user == 1 {
                return;
            }
            if let Some(how) = how {
                orm.write(
                    json!({"op": "user", "how": how, "email": USERS[*user], "account_id": account.map(|a| ids[a]),
                                 "role": ROLES[*role], "active": active, "superuser": superuser}),
                );
                return;
            }
            sqlx::query(
                "UPDATE users SET account_id = $2, role = $3, is_active = $4, is_superuser = $5 WHERE email = $1",
            )
            .bind(USERS[*user])
            .bind(account.map(|a| ids[a]))
            .bind(ROLES[*role])
            .bind(active)
            .bind(superuser)
            .execute(&mut *conn)
            .await
            .unwrap();
        }
        Op::Status { orm: how, account, status } => {
            // aws-admin stays active: dev@igny8.com's writes need its tenant access.
            if *account == 0 {
                return;
            }
            if let Some(how) = how {
                orm.write(
                    json!({"op": "account", "how": how, "account_id": ids[*account], "status": STATUSES[*status]}),
                );
                return;
            }
            sqlx::query("UPDATE accounts SET status = $2 WHERE id = $1")
                .bind(ids[*account])
                .bind(STATUSES[*status])
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Op::Rename { orm: how, account, renamed } => {
            let slug = if *renamed { format!("{}-r", ACCOUNTS[*account]) } else { ACCOUNTS[*account].to_string() };
            if let Some(how) = how {
                orm.write(json!({"op": "account", "how": how, "account_id": ids[*account], "slug": slug}));
                return;
            }
            sqlx::query("UPDATE accounts SET slug = $2 WHERE id = $1")
                .bind(ids[*account])
                .bind(slug)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Op::Snapshot => {}
    }
}

#[test]
fn past_answers_equal_the_resolver_then() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(TestDb::demo());
    let conn = tokio::sync::Mutex::new(rt.block_on(db.raw()));
    let orm = rt.block_on(Orm::start(&db));
    let ids: Vec<i64> = rt.block_on(async {
        let mut conn = conn.lock().await;
        let mut ids = Vec::new();
        for slug in ACCOUNTS {
            let id: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE slug = $1")
                .bind(slug)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            ids.push(id);
        }
        ids
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    // Moments whose answers differ from the world's at the end of their
    // case: the past really was rebuilt, not read from the present.
    let differed = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&orm_first(proptest::collection::vec(op(), 4..24)), |ops| {
            let moments = rt.block_on(async {
                let mut conn = conn.lock().await;
                let mut moments: Vec<(Cut, Cut, Vec<Value>)> = Vec::new();
                for op in ops.iter().chain([&Op::Snapshot]) {
                    if !matches!(op, Op::Snapshot) {
                        apply(&db, &mut conn, &orm, &ids, op).await;
                        continue;
                    }
                    let (at, next): (chrono::DateTime<chrono::Utc>, i64) = sqlx::query_as(
                        "SELECT clock_timestamp(), (SELECT coalesce(max(id), 0) + 1 FROM keyfall.audit_log)",
                    )
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                    let mut data = Vec::new();
                    for u in USERS {
                        for f in FUNCTIONS {
                            data.push((format!("{u} {f}"), db.store.subject(Some(u), Some(f)).await.unwrap()));
                        }
                    }
                    moments.push((Cut { at, entry: None }, Cut { at, entry: Some(next) }, answers(&data)));
                }
                moments
            });
            let last = &moments.last().expect("the closing snapshot").2;
            let changed = moments.iter().filter(|m| &m.2 != last).count();
            differed.fetch_add(changed, std::sync::atomic::Ordering::Relaxed);
            for (by_time, by_entry, expected) in &moments {
                for cut in [by_time, by_entry] {
                    let got = rt.block_on(async {
                        let mut data = Vec::new();
                        for u in USERS {
                            for f in FUNCTIONS {
                                let past = db.store.past(*cut, Some(u), Some(f), &[]).await.unwrap();
                                data.push((format!("{u} {f}"), past.data));
                            }
                        }
                        answers(&data)
                    });
                    for (g, e) in got.iter().zip(expected) {
                        prop_assert_eq!(g, e, "at {:?} after {:?}", cut, ops);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(differed.into_inner() > 0, "no moment's world differed from the present: the test proves nothing");
    assert_orm_wrote_every_app_table(&rt.block_on(async { orm_audited(&mut *conn.lock().await).await }));
}

/// Writes that move a key's blast radius: most go to the chain's accounts
/// (whose rows every fallback walks), with the planted key, a blank key or
/// a consumer naming openai; the rest are any write.
/// Every case starts with the ORM writing each app table: a setting, a
/// user and an account, each twice with opposite values so one of the two
/// is a change whatever the world held (the assertion that the ORM's writes
/// were recorded must not rest on the dice).
fn orm_first(rest: impl Strategy<Value = Vec<Op>>) -> impl Strategy<Value = Vec<Op>> {
    let n = ACCOUNTS.len();
    let setting = (proptest::sample::select(SETTING_HOWS), 0..n, 0..KINDS.len(), 0..CONFIGS.len());
    let user = (proptest::sample::select(ROW_HOWS), (0..USERS.len()).prop_filter("dev@ stays", |u| *u != 1), 0..n);
    let account = (proptest::sample::select(ROW_HOWS), 0..n);
    (setting, user, account, rest).prop_map(|((sh, sa, kind, config), (uh, user, ua), (ah, account), mut rest)| {
        let first = [
            Op::Setting { by: By::Orm(sh), account: sa, kind, config, active: true },
            Op::Setting { by: By::Orm(sh), account: sa, kind, config, active: false },
            Op::User { orm: Some(uh), user, account: Some(ua), role: 0, active: true, superuser: false },
            Op::User { orm: Some(uh), user, account: Some(ua), role: 0, active: false, superuser: false },
            Op::Rename { orm: Some(ah), account, renamed: true },
            Op::Rename { orm: Some(ah), account, renamed: false },
        ];
        rest.splice(0..0, first);
        rest
    })
}

fn blast_op() -> impl Strategy<Value = Op> {
    let config =
        prop_oneof![3 => Just(0usize), 2 => Just(2usize), 2 => Just(8usize), 1 => Just(7usize), 2 => 0..CONFIGS.len()];
    let account = prop_oneof![3 => 0..3usize, 1 => 0..ACCOUNTS.len()];
    prop_oneof![
        5 => (by(), account, 0..KINDS.len(), config, proptest::bool::weighted(0.85))
            .prop_map(|(by, account, kind, config, active)| Op::Setting { by, account, kind, config, active }),
        4 => op(),
    ]
}

/// The world one moment, read directly (as the snapshot is taken): the
/// last audit entry written by then, the resolver's inputs and each
/// account's user count.
struct Moment {
    entry: i64,
    world: keyfall::domain::history::World,
    users: std::collections::HashMap<Option<i64>, i64>,
}

async fn moment(db: &TestDb, conn: &mut sqlx::PgConnection) -> Moment {
    let (at, entry): (chrono::DateTime<chrono::Utc>, i64) =
        sqlx::query_as("SELECT clock_timestamp(), (SELECT coalesce(max(id), 0) FROM keyfall.audit_log)")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    // The present (no recorded change lies after it).
    let world = db.store.world_at(Cut { at, entry: Some(entry + 1) }).await.unwrap();
    let users = sqlx::query_as::<_, (Option<i64>, i64)>("SELECT account_id::bigint, count(*) FROM users GROUP BY 1")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    Moment { entry, world, users }
}

/// The key-history of `fp` against the snapshots: at every moment, each
/// row holding the key is inside one of its stretches, and inside a
/// stretch the interval of that moment says exactly who resolved to the
/// row — the brute force: every account walked anew on the snapshot.
/// Adjacent intervals differ (identical ones are merged). Returns how many
/// (moment, row) pairs were compared.
fn hold_to_brute_force(history: &keyfall::domain::blast::KeyHistory, moments: &[Moment]) -> usize {
    use keyfall::domain::blast::{NO_ACCOUNT, Target, who_resolves};
    let fp = &history.fingerprint;
    let mut compared = 0;
    for m in moments {
        for s in m.world.snapshot.settings.values() {
            if keyfall::domain::history::holds_key(&s.config, fp).is_some() {
                let inside = history.stretches.iter().any(|st| {
                    st.setting_id == s.id
                        && st.held.from_entry.is_none_or(|f| f <= m.entry)
                        && st.held.to_entry.is_none_or(|t| m.entry < t)
                });
                assert!(inside, "row {} holds {fp} after #{} but no stretch says so: {history:#?}", s.id, m.entry);
            }
        }
    }
    for st in &history.stretches {
        let row = history.rows.iter().find(|r| r.setting_id == st.setting_id).unwrap();
        let target = Target {
            setting_id: row.setting_id,
            account_id: row.account_id,
            integration_type: row.integration_type.clone(),
        };
        // The answer of each vouched interval, accumulated from the diffs.
        // (from entry, to entry, (accounts, users, users without an
        // account, functions)).
        type Answer = (Vec<String>, i64, Option<i64>, Vec<String>);
        let mut answers: Vec<(Option<i64>, Option<i64>, Answer)> = Vec::new();
        let mut set: Vec<String> = Vec::new();
        let mut first = true;
        for i in &st.intervals {
            if i.cannot_vouch.is_some() {
                continue;
            }
            if first {
                set = i.joined.clone();
                first = false;
            } else {
                for l in &i.left {
                    let at = set.iter().position(|s| s == l).unwrap_or_else(|| panic!("{l} left but was not there"));
                    set.remove(at);
                }
                set.extend(i.joined.iter().cloned());
            }
            set.sort();
            assert_eq!(set.len(), i.accounts, "{st:#?}");
            assert_eq!(set.iter().filter(|s| *s != NO_ACCOUNT).count(), i.tenants, "{st:#?}");
            let answer = (set.clone(), i.users, i.users_without_account, i.functions.clone());
            if let Some(last) = answers.last() {
                assert_ne!(last.2, answer, "adjacent intervals with the same answer: {st:#?}");
                assert_eq!(last.1, i.from_entry, "intervals not adjacent: {st:#?}");
            }
            answers.push((i.from_entry, i.to_entry, answer));
        }
        for m in moments {
            let Some((_, _, answer)) = answers
                .iter()
                .find(|(from, to, _)| from.is_none_or(|f| f <= m.entry) && to.is_none_or(|t| m.entry < t))
            else {
                continue;
            };
            let (accounts, users, functions) = who_resolves(&m.world.snapshot, &m.world.functions, &m.users, &target);
            let without = accounts.contains_key(&None).then(|| m.users.get(&None).copied().unwrap_or(0));
            let mut accounts: Vec<String> = accounts.into_values().collect();
            accounts.sort();
            assert_eq!(
                answer,
                &(accounts, users, without, functions),
                "row {} after #{}: the timeline (left) and the brute force (right) differ",
                st.setting_id,
                m.entry
            );
            compared += 1;
        }
    }
    compared
}

#[test]
fn the_blast_radius_equals_a_brute_force_replay() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(TestDb::demo());
    let conn = tokio::sync::Mutex::new(rt.block_on(db.raw()));
    let orm = rt.block_on(Orm::start(&db));
    let ids: Vec<i64> = rt.block_on(async {
        let mut conn = conn.lock().await;
        let mut ids = Vec::new();
        for slug in ACCOUNTS {
            ids.push(
                sqlx::query_scalar("SELECT id FROM accounts WHERE slug = $1")
                    .bind(slug)
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap(),
            );
        }
        ids
    });
    // The demo's aws-admin key (held since before history began) and the
    // key the random writes put in and take out of rows.
    let fps = [
        keyfall::domain::secret::fingerprint("sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9"),
        keyfall::domain::secret::fingerprint("sk-hist-AAAA1111bbbb2222cccc"),
    ];
    let mut moments = vec![rt.block_on(async { moment(&db, &mut *conn.lock().await).await })];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        // More locally: PROPTEST_CASES=60.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(12),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let compared = std::sync::atomic::AtomicUsize::new(0);
    let intervals = std::sync::atomic::AtomicUsize::new(0);
    let moments = std::sync::Mutex::new(&mut moments);
    runner
        .run(&orm_first(proptest::collection::vec(blast_op(), 4..24)), |ops| {
            let mut moments = moments.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            rt.block_on(async {
                let mut conn = conn.lock().await;
                for op in &ops {
                    apply(&db, &mut conn, &orm, &ids, op).await;
                    // Every moment: a snapshot after each write.
                    moments.push(moment(&db, &mut conn).await);
                }
            });
            for fp in &fps {
                let history = rt.block_on(db.store.key_history(fp)).unwrap();
                let n: usize = history.stretches.iter().map(|s| s.intervals.len()).sum();
                intervals.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                compared.fetch_add(hold_to_brute_force(&history, &moments), std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    assert!(compared.into_inner() > 100, "too few moments compared: the test proves little");
    assert!(intervals.into_inner() > 3, "no stretch was split: the test proves little");
    assert_orm_wrote_every_app_table(&rt.block_on(async { orm_audited(&mut *conn.lock().await).await }));
}
