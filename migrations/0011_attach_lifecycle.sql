-- keyfall 0011: attach and detach keep keyfall's history (issue 19).
--
-- Detach removes only what touches the app: the triggers keyfall put on the
-- app's tables (every trigger whose function is keyfall's, on a table
-- outside keyfall's schema), keyfall's event triggers, and the views over
-- the app's tables. keyfall's own data stays: audit log, chain, policy,
-- function map, operators. The mapping moves to keyfall.detached (so no
-- later migration re-installs it: they re-install what keyfall.mapping
-- holds), with when, by whom, and the event triggers to make again.
-- Attaching again resumes: the same audit log, a row at each end of the gap.

CREATE TABLE IF NOT EXISTS keyfall.detached (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    spec           jsonb NOT NULL,
    detached_at    timestamptz NOT NULL DEFAULT now(),
    detached_by    text NOT NULL,
    event_triggers jsonb NOT NULL DEFAULT '[]'::jsonb
);

-- Take keyfall off the app's tables, keeping its data. The caller holds
-- the locks already (Store::detach takes them with a bounded wait).
CREATE OR REPLACE FUNCTION keyfall.keyfall_detach() RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    spec    jsonb;
    evts    jsonb;
    t       record;
    dropped text[] := '{}';
BEGIN
    SELECT m.spec INTO spec FROM keyfall.mapping m;
    IF spec IS NULL THEN
        RETURN;
    END IF;
    -- keyfall's own DDL: not a gap for the watcher (dropped first anyway).
    INSERT INTO keyfall.installing (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    -- The event triggers first, before anything they watch goes: kept as
    -- they are, to be made again by attach.
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'name', e.evtname, 'event', e.evtevent, 'tags', to_jsonb(e.evttags),
               'function', format('%I.%I', fn.nspname, f.proname), 'enabled', e.evtenabled) ORDER BY e.evtname),
               '[]'::jsonb)
      INTO evts
      FROM pg_catalog.pg_event_trigger e
      JOIN pg_catalog.pg_proc f ON f.oid = e.evtfoid
      JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
     WHERE e.evtname LIKE 'keyfall\_%';
    FOR t IN SELECT e.evtname FROM pg_catalog.pg_event_trigger e WHERE e.evtname LIKE 'keyfall\_%' LOOP
        EXECUTE format('DROP EVENT TRIGGER %I', t.evtname);
    END LOOP;
    -- Every trigger of keyfall's on a table that is not keyfall's.
    FOR t IN SELECT tg.tgname, tg.tgrelid::regclass AS rel
               FROM pg_catalog.pg_trigger tg
               JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
               JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
               JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
               JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
              WHERE NOT tg.tgisinternal AND pn.nspname = 'keyfall' AND cn.nspname <> 'keyfall'
              ORDER BY 2, 1 LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
        dropped := dropped || (t.rel::text || '.' || t.tgname);
    END LOOP;
    DROP VIEW IF EXISTS keyfall.integration_settings, keyfall.users, keyfall.accounts;
    -- A copy of the app's data: made again from the app's rows at attach.
    DELETE FROM keyfall.row_verdicts;
    INSERT INTO keyfall.detached (spec, detached_at, detached_by, event_triggers)
    VALUES (spec, now(), keyfall.keyfall_actor(), evts)
    ON CONFLICT (singleton) DO UPDATE
        SET spec = EXCLUDED.spec, detached_at = EXCLUDED.detached_at,
            detached_by = EXCLUDED.detached_by, event_triggers = EXCLUDED.event_triggers;
    DELETE FROM keyfall.mapping;
    INSERT INTO keyfall.audit_log (actor, action, table_name, after)
    VALUES (keyfall.keyfall_actor(), 'detach', 'keyfall',
            jsonb_build_object('settings_table', keyfall.keyfall_qualified(spec -> 'settings'),
                               'triggers', to_jsonb(dropped)));
    DELETE FROM keyfall.installing WHERE txid = txid_current();
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_detach() FROM PUBLIC;

-- Install `m` and, where keyfall was detached, resume: its event triggers
-- made again and the gap recorded ('attach', naming when it began).
CREATE OR REPLACE FUNCTION keyfall.keyfall_attach(m jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    was  keyfall.detached%ROWTYPE;
    e    jsonb;
    tags pg_catalog.text;
BEGIN
    SELECT * INTO was FROM keyfall.detached d;
    PERFORM keyfall.keyfall_install_mapping(m);
    IF was.spec IS NULL THEN
        RETURN;
    END IF;
    -- Event triggers need a superuser: made again where the session is one.
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        FOR e IN SELECT x FROM jsonb_array_elements(was.event_triggers) x LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger t WHERE t.evtname = e ->> 'name');
            CONTINUE WHEN to_regproc(e ->> 'function') IS NULL;
            tags := '';
            IF jsonb_typeof(e -> 'tags') = 'array' AND jsonb_array_length(e -> 'tags') > 0 THEN
                SELECT ' WHEN TAG IN (' || string_agg(quote_literal(v), ', ') || ')' INTO tags
                  FROM jsonb_array_elements_text(e -> 'tags') v;
            END IF;
            -- The function as keyfall_detach wrote it: schema and name,
            -- each quoted by format('%I').
            EXECUTE format('CREATE EVENT TRIGGER %I ON %I%s EXECUTE FUNCTION %s()',
                           e ->> 'name', e ->> 'event', tags, e ->> 'function');
            IF e ->> 'enabled' = 'D' THEN
                EXECUTE format('ALTER EVENT TRIGGER %I DISABLE', e ->> 'name');
            END IF;
        END LOOP;
    END IF;
    INSERT INTO keyfall.audit_log (actor, action, table_name, after)
    VALUES (keyfall.keyfall_actor(), 'attach', 'keyfall',
            jsonb_build_object('detached_at', was.detached_at, 'detached_by', was.detached_by,
                               'settings_table', keyfall.keyfall_qualified(m -> 'settings')));
    DELETE FROM keyfall.detached;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_attach(jsonb) FROM PUBLIC;

-- Lock, in one statement, everything attach or detach changes: the app's
-- tables carrying keyfall's triggers, the tables of the mapping `m` (NULL:
-- none), and keyfall's views over them. The caller bounds the wait
-- (lock_timeout, statement_timeout) and tries again later: keyfall never
-- sits in the lock queue long, where it would hold up the app's traffic.
CREATE OR REPLACE FUNCTION keyfall.keyfall_lock_app(m jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    rels  pg_catalog.text;
    names pg_catalog.text[] := ARRAY['keyfall.integration_settings', 'keyfall.users', 'keyfall.accounts'];
BEGIN
    IF m IS NOT NULL THEN
        names := names || ARRAY[keyfall.keyfall_qualified(m -> 'settings'), keyfall.keyfall_qualified(m -> 'users'),
                                keyfall.keyfall_qualified(m -> 'accounts')];
    END IF;
    SELECT string_agg(x.r::pg_catalog.text, ', ' ORDER BY x.r::pg_catalog.text) INTO rels
      FROM (SELECT tg.tgrelid::regclass AS r
              FROM pg_catalog.pg_trigger tg
              JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
              JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
              JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
              JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
             WHERE NOT tg.tgisinternal AND pn.nspname = 'keyfall' AND cn.nspname <> 'keyfall'
            UNION
            SELECT to_regclass(n.name) FROM unnest(names) n(name)) x
     WHERE x.r IS NOT NULL;
    IF rels IS NOT NULL THEN
        EXECUTE 'LOCK TABLE ' || rels || ' IN ACCESS EXCLUSIVE MODE';
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_lock_app(jsonb) FROM PUBLIC;
