//! No login gains a right through keyfall (issue 18): the functions and
//! triggers that run with the schema owner's rights cannot be borrowed by
//! shadowing names in the caller's temporary schema, nor by a type the
//! app's role owns; the audit log records its own gaps; a raw key is handed
//! over once and recorded as read; `keyfall.actor` holds an identity and
//! nothing else. Each test tries the attack and fails if it works.

use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

use crate::cli::keyfall;
use crate::support::TestDb;

const OPERATOR: &str = "keyfall_operator";
const APP: &str = "keyfall_test_app";

/// The demo database with the least-privilege role applied (mapped to
/// `email`, if any) and an app role owning the app's tables, as Django's
/// role owns its own.
async fn attackable(email: Option<&str>) -> TestDb {
    let db = TestDb::demo().await;
    let mut owner = db.raw().await;
    sqlx::raw_sql(include_str!("../../assets/least_privilege_role.sql")).execute(&mut owner).await.unwrap();
    if let Some(email) = email {
        db.store.operator_add(OPERATOR, email).await.unwrap();
    }
    // Roles are cluster-wide and tests run in parallel: create once, then
    // hand this database's tables to it.
    let _ = owner
        .execute(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP}') THEN CREATE ROLE {APP} LOGIN; END IF; END $$"
        )))
        .await;
    for table in ["integration_settings", "accounts", "users"] {
        owner.execute(sqlx::AssertSqlSafe(format!("ALTER TABLE public.{table} OWNER TO {APP}"))).await.unwrap();
    }
    owner.execute(sqlx::AssertSqlSafe(format!("GRANT CREATE ON SCHEMA public TO {APP}"))).await.unwrap();
    db
}

async fn connect_as(db: &TestDb, role: &str) -> PgConnection {
    db.target.options.clone().username(role).connect().await.expect("connect as role")
}

/// Shadow every type and relation name keyfall's owner-rights code uses
/// in this session's temporary schema, each with a check that records (in
/// a sequence: nextval survives any rollback or caught error) and raises
/// when it runs as anyone but the session's own login.
const SHADOWS: &str = r#"
CREATE TEMP SEQUENCE pwned;
CREATE FUNCTION pg_temp.evil(x anyelement) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> session_user THEN
        PERFORM nextval('pg_temp.pwned');
        RAISE EXCEPTION 'PWNED: running as %', current_user;
    END IF;
    RETURN true;
END $$;
CREATE FUNCTION pg_temp.evil2(a pg_catalog.text, b pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> session_user THEN
        PERFORM nextval('pg_temp.pwned');
        RAISE EXCEPTION 'PWNED: operator as %', current_user;
    END IF;
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.boolean AS pg_catalog.bool CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.bool AS pg_catalog.bool CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.bigint AS pg_catalog.int8 CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.int4 AS pg_catalog.int4 CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.name AS pg_catalog.name CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.regclass AS pg_catalog.regclass CHECK (pg_temp.evil(VALUE));
CREATE OPERATOR pg_temp.= (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, FUNCTION = pg_temp.evil2);
CREATE TEMP TABLE audit_log (id int);
CREATE TEMP TABLE accounts (id int);
CREATE TEMP TABLE users (id int);
CREATE TEMP TABLE integration_settings (id int);
CREATE TEMP TABLE fallback_chain (id int);
CREATE TEMP TABLE policy (id int);
CREATE TEMP TABLE operators (id int);
CREATE TEMP TABLE key_requests (id int);
CREATE TEMP TABLE mapping (id int);
CREATE TEMP TABLE row_verdicts (id int);
CREATE TEMP TABLE installing (id int);
CREATE TEMP TABLE capture_state (id int);
"#;

/// How often `evil` ran with someone else's rights in this session.
async fn pwned(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT is_called FROM pg_temp.pwned").fetch_one(&mut *conn).await.unwrap()
}

/// Call every keyfall function this session may execute, each with NULL
/// arguments of its own (fully qualified) types and with plausible ones;
/// errors are expected (refusals), borrowed rights are not.
async fn call_every_function(conn: &mut PgConnection) -> Vec<String> {
    let calls: Vec<String> = sqlx::query_scalar(
        "SELECT format('SELECT %s(%s)', p.oid::regproc,
                       coalesce(string_agg(format('NULL::%I.%I', tn.nspname, t.typname), ', ' ORDER BY a.ord)
                                FILTER (WHERE a.typ IS NOT NULL), ''))
           FROM pg_catalog.pg_proc p
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           LEFT JOIN LATERAL unnest(p.proargtypes::oid[]) WITH ORDINALITY a(typ, ord) ON true
           LEFT JOIN pg_catalog.pg_type t ON t.oid = a.typ
           LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
          WHERE n.nspname = 'keyfall' AND p.prokind = 'f'
            AND p.prorettype NOT IN ('pg_catalog.trigger'::pg_catalog.regtype, 'pg_catalog.event_trigger'::pg_catalog.regtype)
            AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
          GROUP BY p.oid",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut extra = vec![
        "SELECT keyfall.keyfall_failing_checks('x', 'view_settings', NULL)".to_string(),
        "SELECT keyfall.keyfall_failing_checks('paid2@paid.com', 'modify_settings', 1)".to_string(),
        "SELECT keyfall.keyfall_whoami()".to_string(),
        "SELECT keyfall.keyfall_preflight()".to_string(),
        "SELECT keyfall.keyfall_request_key('aws-admin', 'openai', 'reveal')".to_string(),
        "SELECT keyfall.keyfall_reveal('aws-admin', 'openai')".to_string(),
        "SELECT keyfall.keyfall_request_key('paid-2', 'openai', 'test_connection')".to_string(),
        "SELECT keyfall.keyfall_config_for_test('paid-2', 'openai')".to_string(),
        "SELECT keyfall.keyfall_may_act_as('dev@igny8.com')".to_string(),
        // Through the view's INSTEAD OF trigger, as the mapped operator and
        // as someone else.
        "BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com';
         UPDATE keyfall.integration_settings SET config = config || '{\"model\": \"x\"}'; COMMIT"
            .to_string(),
        "BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com';
         INSERT INTO keyfall.integration_settings (account_id, integration_type, config)
         SELECT id, 'runware', '{\"apiKey\": \"rw-abcdefghijklmnop\"}' FROM keyfall.accounts WHERE slug = 'paid-2'; COMMIT"
            .to_string(),
        "BEGIN; SET LOCAL keyfall.actor = 'dev@igny8.com'; DELETE FROM keyfall.integration_settings; COMMIT".to_string(),
        "BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com'; UPDATE keyfall.fallback_chain SET position = position; COMMIT"
            .to_string(),
        "BEGIN; SET LOCAL keyfall.actor = 'paid2@paid.com'; UPDATE keyfall.policy SET mode = mode; COMMIT".to_string(),
    ];
    let mut all = calls;
    all.append(&mut extra);
    let mut borrowed = Vec::new();
    for call in all {
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(call.clone())).execute(&mut *conn).await
            && e.to_string().contains("PWNED")
        {
            borrowed.push(format!("{call}: {e}"));
        }
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    }
    borrowed
}

#[tokio::test]
async fn every_owner_rights_function_pins_its_search_path_with_pg_temp_last() {
    let db = attackable(None).await;
    let mut owner = db.raw().await;
    // Every SECURITY DEFINER function, every trigger function and event
    // trigger function of keyfall's: search_path set, pg_temp named last.
    let unpinned: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'keyfall'
            AND (p.prosecdef OR p.prorettype IN ('pg_catalog.trigger'::regtype, 'pg_catalog.event_trigger'::regtype))
            AND NOT coalesce('search_path=keyfall, pg_catalog, pg_temp' = ANY (p.proconfig), false)
          ORDER BY 1",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert!(unpinned.is_empty(), "owner-rights functions without pg_temp last: {unpinned:?}");
    // Every function any trigger on the app's tables (or an event trigger)
    // runs is one of those.
    let foreign: Vec<String> = sqlx::query_scalar(
        "SELECT t.tgname || ' → ' || t.tgfoid::regprocedure::text
           FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
          WHERE t.tgname LIKE 'keyfall%'
            AND NOT coalesce('search_path=keyfall, pg_catalog, pg_temp' = ANY (p.proconfig), false)
         UNION ALL
         SELECT e.evtname || ' → ' || e.evtfoid::regprocedure::text
           FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
          WHERE NOT coalesce('search_path=keyfall, pg_catalog, pg_temp' = ANY (p.proconfig), false)",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert!(foreign.is_empty(), "{foreign:?}");
    // EXECUTE on owner-rights functions only where a role calls them.
    let callable: Vec<String> = sqlx::query_scalar(
        "SELECT p.proname::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'keyfall' AND p.prosecdef
            AND pg_catalog.has_function_privilege('keyfall_operator', p.oid, 'EXECUTE')
          ORDER BY 1",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(
        callable,
        [
            "keyfall_failing_checks",
            "keyfall_may_act_as",
            "keyfall_request_key",
            "keyfall_scope",
            "keyfall_take_key",
            "keyfall_whoami"
        ]
    );
    // The event triggers are there to record gaps.
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT evtname::text FROM pg_catalog.pg_event_trigger WHERE evtname LIKE 'keyfall%' ORDER BY 1",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(events, ["keyfall_ddl_end", "keyfall_ddl_start", "keyfall_watch_ddl", "keyfall_watch_drop"]);
}

/// A PL/pgSQL function without a search_path of its own keeps the types of
/// its variables as the first caller's search_path resolved them, for the
/// rest of that session: every such function of keyfall's names them in
/// full, so a login cannot compile one with its own `text` first.
#[tokio::test]
async fn plpgsql_helpers_without_a_search_path_name_their_variables_types_in_full() {
    let db = TestDb::new().await;
    let mut owner = db.raw().await;
    let helpers: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.oid::regprocedure::text, p.prosrc
           FROM pg_catalog.pg_proc p
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_catalog.pg_language l ON l.oid = p.prolang
          WHERE n.nspname = 'keyfall' AND l.lanname = 'plpgsql' AND p.proconfig IS NULL",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert!(!helpers.is_empty());
    let mut loose = Vec::new();
    for (name, source) in &helpers {
        let mut declaring = false;
        for line in source.lines() {
            let trimmed = line.trim();
            match trimmed {
                "DECLARE" => declaring = true,
                "BEGIN" => declaring = false,
                // A declaration starts with its name; other lines continue one.
                _ if declaring && trimmed.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') => {
                    // `name [constant] type ...`: the type is the word after the name.
                    let mut words = trimmed.split_whitespace().skip(1);
                    let mut ty = words.next().unwrap_or("");
                    if ty.eq_ignore_ascii_case("constant") {
                        ty = words.next().unwrap_or("");
                    }
                    let ty = ty.trim_end_matches(';');
                    let qualified = ty.starts_with("pg_catalog.") || ty.starts_with("keyfall.");
                    if !qualified && !ty.eq_ignore_ascii_case("record") {
                        loose.push(format!("{name}: {trimmed}"));
                    }
                }
                _ => {}
            }
        }
    }
    assert!(loose.is_empty(), "variables typed by the caller's search_path: {loose:#?}");
}

#[tokio::test]
async fn shadowed_names_in_pg_temp_never_run_with_the_owners_rights() {
    for email in [None, Some("paid2@paid.com"), Some("dev@igny8.com")] {
        let db = attackable(email).await;
        // The least-privilege login, unmapped, mapped to a tenant, mapped to
        // a developer: every function it may call, every trigger it fires.
        let mut op = connect_as(&db, OPERATOR).await;
        sqlx::raw_sql(SHADOWS).execute(&mut op).await.unwrap();
        let borrowed = call_every_function(&mut op).await;
        assert!(borrowed.is_empty(), "{email:?}: {borrowed:#?}");
        assert!(!pwned(&mut op).await, "{email:?}: code ran with the owner's rights (caught inside)");
        // The app's own role: its writes fire the audit trigger, its DDL the
        // event trigger, with the same shadows in its session.
        let mut app = connect_as(&db, APP).await;
        sqlx::raw_sql(SHADOWS).execute(&mut app).await.unwrap();
        for statement in [
            "UPDATE public.integration_settings SET config = config || '{\"model\": \"gpt-4o\"}'",
            "INSERT INTO public.integration_settings (account_id, integration_type, config, is_active)
             SELECT id, 'image_generation', '{\"provider\": \"openai\"}', true FROM public.accounts WHERE slug = 'paid-2'
             ON CONFLICT DO NOTHING",
            "DELETE FROM public.integration_settings WHERE integration_type = 'image_generation'",
            "UPDATE public.accounts SET name = name",
            "UPDATE public.users SET is_active = is_active",
            "ALTER TABLE public.integration_settings DISABLE TRIGGER keyfall_audit_update",
            "ALTER TABLE public.integration_settings ENABLE TRIGGER keyfall_audit_update",
            "TRUNCATE public.integration_settings CASCADE",
        ] {
            let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut app).await;
            if let Err(e) = &result {
                assert!(!e.to_string().contains("PWNED"), "{statement}: {e}");
            }
            assert!(result.is_ok(), "the app's own statement must succeed with keyfall attached: {statement}: {result:?}");
        }
        assert!(!pwned(&mut app).await, "the app's role borrowed the owner's rights");
        // The writes were audited all the same.
        let mut owner = db.raw().await;
        let audited: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM keyfall.audit_log WHERE db_login = $1 AND table_name = 'integration_settings'",
        )
        .bind(APP)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert!(audited > 0);
    }
}

#[tokio::test]
async fn a_type_the_apps_role_owns_is_never_handled_with_the_owners_rights() {
    let db = attackable(None).await;
    let mut app = connect_as(&db, APP).await;
    // A column of the app's own type with a cast of its own to json and to
    // bigint: whoever handles the value with a cast runs the app's code.
    sqlx::raw_sql(
        r#"
        CREATE TYPE public.mood AS ENUM ('calm', 'angry');
        CREATE SEQUENCE public.mood_ran;
        CREATE FUNCTION public.mood_json(m public.mood) RETURNS json LANGUAGE plpgsql AS $$
        BEGIN
            IF current_user <> session_user THEN PERFORM nextval('public.mood_ran'); END IF;
            RETURN to_json(m::text);
        END $$;
        CREATE CAST (public.mood AS json) WITH FUNCTION public.mood_json(public.mood);
        ALTER TABLE public.integration_settings ADD COLUMN mood public.mood DEFAULT 'calm';
        UPDATE public.integration_settings SET mood = 'angry';
        "#,
    )
    .execute(&mut app)
    .await
    .expect("the app's migration and write succeed with keyfall attached");
    let ran: bool = sqlx::query_scalar("SELECT is_called FROM public.mood_ran").fetch_one(&mut app).await.unwrap();
    assert!(!ran, "the app's cast ran with someone else's rights");
    // The change is recorded, without contents, saying why.
    let mut owner = db.raw().await;
    let why: String = sqlx::query_scalar(
        "SELECT after ->> 'why' FROM keyfall.audit_log WHERE action = 'capture_refused' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert!(why.contains("mood") && why.contains(APP), "{why}");
}

#[tokio::test]
async fn disabling_keyfalls_triggers_is_recorded_and_shown_by_audit() {
    let db = attackable(None).await;
    let mut app = connect_as(&db, APP).await;
    sqlx::raw_sql(
        "ALTER TABLE public.integration_settings DISABLE TRIGGER keyfall_audit_update;
         UPDATE public.integration_settings SET config = config || '{\"model\": \"unseen\"}';
         ALTER TABLE public.integration_settings ENABLE TRIGGER keyfall_audit_update;",
    )
    .execute(&mut app)
    .await
    .unwrap();
    let mut owner = db.raw().await;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, actor, db_login FROM keyfall.audit_log WHERE action LIKE 'capture_%' ORDER BY id",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("capture_disabled".to_string(), APP.to_string(), APP.to_string()),
            ("capture_enabled".to_string(), APP.to_string(), APP.to_string())
        ]
    );
    // Dropping one is a gap too; keyfall's own re-install is not.
    sqlx::raw_sql("DROP TRIGGER keyfall_audit_delete ON public.integration_settings").execute(&mut app).await.unwrap();
    let run = keyfall(&db, &["audit"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("capture disabled") && run.stdout.contains(APP), "{}", run.stdout);
    assert!(run.stdout.contains("keyfall_audit_delete"), "{}", run.stdout);
    // Re-attaching re-creates the dropped trigger: capture is on again,
    // and the log says so once; keyfall dropping and re-creating its own
    // triggers is no gap.
    let last: i64 = sqlx::query_scalar("SELECT max(id) FROM keyfall.audit_log").fetch_one(&mut owner).await.unwrap();
    sqlx::query("SELECT keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping))")
        .execute(&mut owner)
        .await
        .unwrap();
    let since: Vec<(String, String)> =
        sqlx::query_as("SELECT action, after ->> 'triggers' FROM keyfall.audit_log WHERE id > $1 ORDER BY id")
            .bind(last)
            .fetch_all(&mut owner)
            .await
            .unwrap();
    assert_eq!(since.len(), 1, "{since:?}");
    assert_eq!(since[0].0, "capture_enabled");
    assert!(since[0].1.contains("keyfall_audit_delete"), "{since:?}");
}

#[tokio::test]
async fn a_key_is_handed_over_once_even_across_a_rollback() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    sqlx::raw_sql(
        "BEGIN; SET LOCAL keyfall.actor = 'dev@igny8.com';
         SELECT keyfall.keyfall_request_key('aws-admin', 'openai', 'reveal'); COMMIT;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('keyfall.actor', 'dev@igny8.com', true)").execute(&mut *tx).await.unwrap();
    let key: Option<String> =
        sqlx::query_scalar("SELECT keyfall.keyfall_reveal('aws-admin', 'openai')").fetch_one(&mut *tx).await.unwrap();
    assert!(key.is_some_and(|k| k.starts_with("sk-")));
    tx.rollback().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('keyfall.actor', 'dev@igny8.com', true)").execute(&mut *tx).await.unwrap();
    let again = sqlx::query_scalar::<_, Option<String>>("SELECT keyfall.keyfall_reveal('aws-admin', 'openai')")
        .fetch_one(&mut *tx)
        .await;
    assert!(again.is_err(), "a second reveal from one request: {again:?}");
    tx.rollback().await.unwrap();
    let reveals: i64 = sqlx::query_scalar("SELECT count(*) FROM keyfall.audit_log WHERE action = 'reveal'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(reveals, 1);
}

#[tokio::test]
async fn a_key_fetched_for_a_connection_test_is_recorded_as_a_raw_key_read() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    sqlx::raw_sql(
        "BEGIN; SET LOCAL keyfall.actor = 'dev@igny8.com';
         SELECT keyfall.keyfall_request_key('aws-admin', 'openai', 'test_connection'); COMMIT;
         BEGIN; SET LOCAL keyfall.actor = 'dev@igny8.com';
         SELECT keyfall.keyfall_config_for_test('aws-admin', 'openai'); COMMIT;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let (action, purpose): (String, String) = sqlx::query_as(
        "SELECT action, after ->> 'purpose' FROM keyfall.audit_log WHERE account_slug = 'aws-admin' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((action.as_str(), purpose.as_str()), ("reveal", "test_connection"));
    let run = keyfall(&db, &["audit", "--account", "aws-admin", "--type", "openai"], None);
    assert!(run.stdout.contains("raw key read for a connection test"), "{}", run.stdout);
}

#[tokio::test]
async fn keyfall_actor_holds_an_identity_and_keyfalls_own_notes_only() {
    let db = TestDb::demo().await;
    let mut conn = db.raw().await;
    for (claimed, recorded) in [
        ("paid2@paid.com (approved by dev@igny8.com)", "paid2@paid.com"),
        ("paid2@paid.com (overwrite)", "paid2@paid.com (overwrite)"),
        ("paid2@paid.com (revert of #12)", "paid2@paid.com (revert of #12)"),
        ("paid2@paid.com (revert of #12) (approved)", "paid2@paid.com"),
    ] {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SELECT set_config('keyfall.actor', $1, true)").bind(claimed).execute(&mut *tx).await.unwrap();
        sqlx::query(
            "UPDATE public.integration_settings SET config = config || jsonb_build_object('model', $1::text)
              WHERE integration_type = 'openai' AND account_id = (SELECT id FROM public.accounts WHERE slug = 'aws-admin')",
        )
        .bind(claimed)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let actor: String = sqlx::query_scalar("SELECT actor FROM keyfall.audit_log ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(actor, recorded, "claimed {claimed:?}");
    }
}

#[tokio::test]
async fn a_mapped_column_of_a_type_the_apps_role_owns_is_not_mapped() {
    let db = attackable(None).await;
    let mut app = connect_as(&db, APP).await;
    // The app's own migration turns a mapped column into its own type: it
    // passes (keyfall's views step aside), and keyfall stops reading it
    // rather than run that type's casts with its owner's rights.
    sqlx::raw_sql(
        "CREATE TYPE public.kind AS ENUM ('openai', 'runware', 'image_generation');
         ALTER TABLE public.integration_settings ALTER COLUMN integration_type TYPE public.kind
               USING integration_type::public.kind;
         UPDATE public.integration_settings SET is_active = is_active;",
    )
    .execute(&mut app)
    .await
    .expect("the app's migration and write succeed with keyfall attached");
    let run = keyfall(&db, &["report", "--json"], None);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("integration_type") && run.stderr.contains("does not map it"), "{}", run.stderr);
}
