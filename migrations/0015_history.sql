-- keyfall 0015: history of everything an answer depends on (issue 23).
--
-- From attach (or `migrate`) on, keyfall can rebuild any past answer:
-- * settings were captured already (0010, keyfall_capture_settings); a
--   captured row now also carries its verdict where redaction would hide
--   it (a key of only whitespace, a key that is not a string, a config
--   nested past redaction's depth): `keyfall_captured`;
-- * the chain, the policy and the function → type table were captured
--   already (0001, keyfall_config_audit: whole rows, no secrets);
-- * the app's users (email, role, active, superuser, account) and accounts
--   (slug, name, status) are captured here, the same way as the settings:
--   one generic statement trigger per event (keyfall_capture_history),
--   reading each changed row whole (to_jsonb) through the mapping at run
--   time, writing one audit row per row whose recorded part changed (a
--   login that only touches last_login writes nothing), never raising into
--   the app's statement. Only those mapped columns are recorded: never a
--   password, never a config.
-- * where history begins is one audit row, 'history_start' (table
--   'keyfall'), written when every capture is first on: by this migration
--   where a mapping is installed ('migrate'), else by the first attach.
-- The rows that mark gaps and starts (table 'keyfall'; capture failures
-- and truncates) are found through one small partial index.

CREATE INDEX IF NOT EXISTS audit_log_marks ON keyfall.audit_log (id)
    WHERE table_name = 'keyfall' OR action IN ('capture_failed', 'capture_refused', 'truncate');

-- The recorded part of one users (`users`) or accounts row `d` (whole,
-- to_jsonb), from the mapped column names: what keyfall's views show of
-- it; `vals` is the value map read backwards (the app's value → keyfall's,
-- keyfall_capture_history builds it once per statement). One expression,
-- so it is inlined where it is used: STABLE, as
-- jsonb_build_object is (an IMMUTABLE wrapper around a STABLE body is
-- never inlined, and a SQL function that is not is planned again in every
-- transaction that calls it).
CREATE OR REPLACE FUNCTION keyfall.keyfall_person(d pg_catalog.jsonb, users pg_catalog.bool, k_a pg_catalog.text,
                                                  k_b pg_catalog.text, k_c pg_catalog.text, k_d pg_catalog.text,
                                                  k_acc pg_catalog.text, vals pg_catalog.jsonb)
RETURNS pg_catalog.jsonb LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN d IS NULL THEN NULL
        WHEN users THEN pg_catalog.jsonb_build_object(
            'email', d OPERATOR(pg_catalog.->>) k_a,
            'role', coalesce(vals OPERATOR(pg_catalog.->>) (d OPERATOR(pg_catalog.->>) k_b), d OPERATOR(pg_catalog.->>) k_b),
            'is_superuser', d OPERATOR(pg_catalog.->) k_c, 'is_active', d OPERATOR(pg_catalog.->) k_d,
            'account_id', d OPERATOR(pg_catalog.->) k_acc)
        ELSE pg_catalog.jsonb_build_object(
            'slug', d OPERATOR(pg_catalog.->>) k_a, 'name', d OPERATOR(pg_catalog.->>) k_c,
            'status', coalesce(vals OPERATOR(pg_catalog.->>) (d OPERATOR(pg_catalog.->>) k_b), d OPERATOR(pg_catalog.->>) k_b))
    END
$$;

-- The capture of the app's users and accounts (TG_ARGV[0]: which). Runs
-- with the owner's rights (the app's role needs no grant); one audit row
-- per row whose recorded part changed — what keyfall's views show of it:
-- a user's email, role, superuser and active flags and account; an
-- account's slug, name and status (mapped values as the views map them) —
-- never raising into the app's statement (a failure is recorded as
-- 'capture_failed', no contents). Kept cheap: the mapped column names are
-- read once per statement, the projection is inline, the actor is asked
-- only when there is something to record, and the full check of the
-- table's column types (0007) runs only where a cheap catalog look-up
-- finds a type that needs it.
CREATE OR REPLACE FUNCTION keyfall.keyfall_capture_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $f$
DECLARE
    part    pg_catalog.text := TG_ARGV[0];
    kf_op   pg_catalog.text := pg_catalog.lower(TG_OP);
    c       pg_catalog.jsonb;
    users   pg_catalog.bool := TG_ARGV[0] = 'users';
    k_id    pg_catalog.text;
    k_acc   pg_catalog.text;
    k_a     pg_catalog.text;
    k_b     pg_catalog.text;
    k_c     pg_catalog.text;
    k_d     pg_catalog.text;
    vals    pg_catalog.jsonb;
    why     pg_catalog.text;
    olds    pg_catalog.jsonb[];
    news    pg_catalog.jsonb[];
    changed pg_catalog.jsonb[];
    po      pg_catalog.jsonb;
    pn      pg_catalog.jsonb;
    who     pg_catalog.text;
BEGIN
    BEGIN
        -- Only the parts of the mapping this capture reads.
        -- The value map ({"developer": ["dev", …], …}) read backwards
        -- ({"dev": "developer", …}: each of the app's values to the first
        -- key in order whose list holds it, as keyfall_value_map's CASE
        -- reads it), so that keyfall_person maps with one operator and
        -- stays inlined.
        SELECT x.spec -> part -> 'columns',
               (SELECT jsonb_object_agg(s.v, s.k)
                  FROM (SELECT DISTINCT ON (a.v #>> '{}') a.v #>> '{}' AS v, e.key AS k
                          FROM jsonb_each(x.spec -> part -> CASE WHEN users THEN 'role_values' ELSE 'status_values' END) e,
                               jsonb_array_elements(CASE WHEN jsonb_typeof(e.value) = 'array' THEN e.value
                                                         ELSE '[]'::jsonb END) a(v)
                         WHERE jsonb_typeof(a.v) = 'string'
                         ORDER BY a.v #>> '{}', e.key) s)
          INTO c, vals
          FROM keyfall.mapping x WHERE (x.places -> part ->> 'oid')::pg_catalog.oid = TG_RELID;
        IF c IS NULL THEN
            RETURN NULL;
        END IF;
        -- A type the app's role owns is not handled with the owner's rights
        -- (0007): the full check where any column's type is not plainly a
        -- superuser's base type.
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                     JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                     JOIN pg_catalog.pg_roles r ON r.oid = t.typowner
                    WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
                      AND (NOT r.rolsuper OR t.typtype IN ('d', 'c') OR t.typcategory = 'A')) THEN
            why := keyfall.keyfall_untrusted_column(TG_RELID);
            IF why IS NOT NULL THEN
                INSERT INTO keyfall.audit_log (actor, action, table_name, after)
                VALUES (keyfall.keyfall_actor(), 'capture_refused', part, jsonb_build_object('op', kf_op, 'why', why));
                RETURN NULL;
            END IF;
        END IF;
        k_id := c ->> 'id';
        IF users THEN
            k_acc := c ->> 'account_id';
            k_a := c ->> 'email';
            k_b := c ->> 'role';
            k_c := c ->> 'is_superuser';
            k_d := c ->> 'is_active';
        ELSE
            k_acc := k_id;
            k_a := c ->> 'slug';
            k_b := c ->> 'status';
            k_c := c ->> 'name';
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            SELECT array_agg(to_jsonb(o)) INTO olds FROM old_rows o;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            SELECT array_agg(to_jsonb(n)) INTO news FROM new_rows n;
        END IF;
        IF coalesce(cardinality(olds), 0) <= 1 AND coalesce(cardinality(news), 0) <= 1 THEN
            -- One row (the usual statement): no query.
            po := keyfall.keyfall_person(olds[1], users, k_a, k_b, k_c, k_d, k_acc, vals);
            pn := keyfall.keyfall_person(news[1], users, k_a, k_b, k_c, k_d, k_acc, vals);
            IF po IS NOT DISTINCT FROM pn THEN
                RETURN NULL;
            END IF;
            changed := ARRAY[jsonb_build_object('id', keyfall.keyfall_json_int8(coalesce(news[1], olds[1]) -> k_id),
                                                'acc', keyfall.keyfall_json_int8(coalesce(news[1], olds[1]) -> k_acc),
                                                'po', po, 'pn', pn)];
        ELSE
            -- Each row's recorded part before and after; only those that differ.
            SELECT array_agg(jsonb_build_object('id', keyfall.keyfall_json_int8(coalesce(p.n, p.o) -> k_id),
                                                'acc', keyfall.keyfall_json_int8(coalesce(p.n, p.o) -> k_acc),
                                                'po', p.po, 'pn', p.pn))
              INTO changed
              FROM (SELECT r.o, r.n, keyfall.keyfall_person(r.o, users, k_a, k_b, k_c, k_d, k_acc, vals) AS po,
                           keyfall.keyfall_person(r.n, users, k_a, k_b, k_c, k_d, k_acc, vals) AS pn
                      FROM (SELECT o, NULL::jsonb AS n FROM unnest(olds) o WHERE news IS NULL
                            UNION ALL
                            SELECT NULL::jsonb, n FROM unnest(news) n WHERE olds IS NULL
                            UNION ALL
                            -- An UPDATE: each new row with the old one of its id.
                            SELECT oo.o, nn.n
                              FROM (SELECT n, n -> k_id AS k FROM unnest(news) n WHERE olds IS NOT NULL) nn
                              FULL JOIN (SELECT o, o -> k_id AS k FROM unnest(olds) o WHERE news IS NOT NULL) oo
                                ON oo.k = nn.k) r) p
             WHERE p.po IS DISTINCT FROM p.pn;
        END IF;
        IF changed IS NULL THEN
            RETURN NULL;
        END IF;
        -- The actor: the app's own statements claim none (keyfall_claimed,
        -- inlined here), so its session user, without a call of
        -- keyfall_actor (SECURITY DEFINER with its own search_path: never
        -- inlined, planned again in every transaction).
        IF keyfall.keyfall_claimed() IS NULL THEN
            who := session_user;
        ELSE
            who := keyfall.keyfall_actor();
        END IF;
        INSERT INTO keyfall.audit_log (actor, action, table_name, row_id, account_id, account_slug, before, after)
        SELECT who, kf_op, part, keyfall.keyfall_json_int8(x -> 'id'), keyfall.keyfall_json_int8(x -> 'acc'),
               CASE WHEN NOT users THEN coalesce(x -> 'pn', x -> 'po') ->> 'slug' END,
               nullif(x -> 'po', 'null'::jsonb), nullif(x -> 'pn', 'null'::jsonb)
          FROM unnest(changed) x;
    EXCEPTION WHEN OTHERS THEN
        BEGIN
            INSERT INTO keyfall.audit_log (actor, action, table_name, after)
            VALUES (session_user::pg_catalog.text, 'capture_failed', part,
                    jsonb_build_object('op', kf_op, 'sqlstate', SQLSTATE));
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'keyfall: a change to the app''s % was not recorded (SQLSTATE %)', part, SQLSTATE;
        END;
    END;
    RETURN NULL;
END
$f$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_capture_history() FROM PUBLIC;

-- The capture on the mapping's users and accounts tables. Named as the
-- settings' triggers are, so keyfall_capture_state (the trigger watcher)
-- records them going off and on; keyfall_drop_app_triggers and detach take
-- them away with the rest. TRUNCATE of users or accounts is not captured
-- (keyfall_announce still announces it): a truncate is a gap.
CREATE OR REPLACE FUNCTION keyfall.keyfall_install_history(m pg_catalog.jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    part pg_catalog.text;
    rel  pg_catalog.text;
BEGIN
    FOREACH part IN ARRAY ARRAY['users', 'accounts'] LOOP
        rel := keyfall.keyfall_qualified(m -> part);
        EXECUTE format('CREATE TRIGGER keyfall_audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_capture_history(%L)', rel, part);
        EXECUTE format('CREATE TRIGGER keyfall_audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows'
                       ' NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_capture_history(%L)',
                       rel, part);
        EXECUTE format('CREATE TRIGGER keyfall_audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_capture_history(%L)', rel, part);
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_install_history(pg_catalog.jsonb) FROM PUBLIC;

-- Where history begins, once: an audit row 'history_start' saying why
-- ('attach', 'migrate'). Later installs leave it.
CREATE OR REPLACE FUNCTION keyfall.keyfall_mark_history_start(why pg_catalog.text) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM keyfall.audit_log l
                    WHERE (l.table_name = 'keyfall' OR l.action IN ('capture_failed', 'capture_refused', 'truncate'))
                      AND l.action = 'history_start') THEN
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        VALUES (keyfall.keyfall_actor(), 'history_start', 'keyfall', jsonb_build_object('why', why));
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_mark_history_start(pg_catalog.text) FROM PUBLIC;

-- The audited part of one settings row (0010's), and its verdict where
-- the redacted config would be judged otherwise: history rebuilds a past
-- answer from the redacted config, and the verdict is what the app saw.
CREATE OR REPLACE FUNCTION keyfall.keyfall_captured(d jsonb, c jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('config', x.redacted, 'is_active', d -> (c ->> 'is_active'))
           || CASE WHEN jsonb_typeof(c -> 'version') = 'string'
                   THEN jsonb_build_object('version', d -> (c ->> 'version')) ELSE '{}'::jsonb END
           || CASE WHEN x.verdict IS DISTINCT FROM keyfall.keyfall_row_verdict(x.kind, x.redacted, x.active)
                   THEN jsonb_build_object('verdict', x.verdict) ELSE '{}'::jsonb END
      FROM (SELECT keyfall.keyfall_redact(d -> (c ->> 'config')) AS redacted, d ->> (c ->> 'integration_type') AS kind,
                   y.active, keyfall.keyfall_row_verdict(d ->> (c ->> 'integration_type'), d -> (c ->> 'config'), y.active) AS verdict
              FROM (SELECT CASE WHEN jsonb_typeof(d -> (c ->> 'is_active')) = 'boolean'
                                THEN (d -> (c ->> 'is_active'))::boolean END AS active) y) x
$$;

CREATE OR REPLACE FUNCTION keyfall.keyfall_install_mapping(m jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    problems pg_catalog.text[];
    settings pg_catalog.text := keyfall.keyfall_qualified(m -> 'settings');
BEGIN
    problems := keyfall.keyfall_mapping_problems(m);
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'the mapping does not fit this database: %', array_to_string(problems, '; ')
            USING ERRCODE = 'undefined_object';
    END IF;
    -- keyfall's own DDL below is not a gap in the log.
    INSERT INTO keyfall.installing (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    PERFORM keyfall.keyfall_drop_app_triggers();
    PERFORM keyfall.keyfall_create_views(m);

    EXECUTE format('CREATE TRIGGER keyfall_audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_capture_settings()', settings);
    EXECUTE format('CREATE TRIGGER keyfall_audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows'
                   ' NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_capture_settings()',
                   settings);
    EXECUTE format('CREATE TRIGGER keyfall_audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_capture_settings()', settings);
    EXECUTE format('CREATE TRIGGER keyfall_audit_truncate AFTER TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_settings_truncate()', settings);
    -- Changes to the app's users and accounts change who may do what:
    -- announced, rows never touched, nothing recorded.
    EXECUTE format('CREATE TRIGGER keyfall_announce AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_announce(%L)',
                   keyfall.keyfall_qualified(m -> 'users'), 'users');
    EXECUTE format('CREATE TRIGGER keyfall_announce AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_announce(%L)',
                   keyfall.keyfall_qualified(m -> 'accounts'), 'accounts');

    -- The history of the users and accounts (0015): what an answer depends on,
    -- recorded by any writer. Named as the settings' capture is, so the
    -- trigger watcher (keyfall_capture_state) records them going off.
    PERFORM keyfall.keyfall_install_history(m);

    -- Every pair's verdict, from scratch: the row the app reads (the
    -- lowest id of its account and type, as Django's .first() on an
    -- unordered queryset takes it; the only row where the pair is unique;
    -- as migration 0013 has it).
    TRUNCATE keyfall.row_verdicts;
    INSERT INTO keyfall.row_verdicts (setting_id, account_id, integration_type, verdict, provider)
    SELECT DISTINCT ON (account_id, integration_type)
           id, account_id, integration_type, keyfall.keyfall_row_verdict(integration_type, config, is_active),
           keyfall.keyfall_mask(config -> 'provider')
      FROM keyfall.integration_settings
     ORDER BY account_id, integration_type, id;
    ANALYZE keyfall.row_verdicts;
    -- keyfall's small tables never reach autovacuum's threshold; without
    -- statistics the planner guesses a thousand chain entries.
    ANALYZE keyfall.fallback_chain;
    ANALYZE keyfall.ai_functions;
    ANALYZE keyfall.policy;

    DELETE FROM keyfall.mapping;
    INSERT INTO keyfall.mapping (spec, places) VALUES (m, keyfall.keyfall_mapping_places(m));
    PERFORM keyfall.keyfall_harden();
    -- Capture that was off (a trigger disabled or dropped by someone) is on
    -- again: the end of the gap is recorded.
    IF EXISTS (SELECT 1 FROM keyfall.capture_state c, jsonb_each(keyfall.keyfall_capture_state()) e(k, v)
                WHERE e.v = 'true' AND coalesce(c.state -> e.k, 'false') = 'false') THEN
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        SELECT keyfall.keyfall_actor(), 'capture_enabled', 'keyfall',
               jsonb_build_object('triggers', jsonb_agg(e.k ORDER BY e.k), 'statement', 'keyfall attach')
          FROM keyfall.capture_state c, jsonb_each(keyfall.keyfall_capture_state()) e(k, v)
         WHERE e.v = 'true' AND coalesce(c.state -> e.k, 'false') = 'false';
    END IF;
    INSERT INTO keyfall.capture_state (state) VALUES (keyfall.keyfall_capture_state())
    ON CONFLICT (singleton) DO UPDATE SET state = EXCLUDED.state;
    -- Where history begins: the first install with every capture on.
    PERFORM keyfall.keyfall_mark_history_start('attach');
    DELETE FROM keyfall.installing WHERE txid = txid_current();
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_install_mapping(jsonb) FROM PUBLIC;

SELECT keyfall.keyfall_harden();

-- An installed mapping gets the history capture now; history begins here.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        -- Same transaction, tables locked: no change slips in between.
        PERFORM keyfall.keyfall_mark_history_start('migrate');
        PERFORM keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping));
    END IF;
END
$$;
