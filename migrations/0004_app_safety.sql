-- 0004: keyfall never harms the app, checked from outside (issue 19).
--
-- The capture under the isolation levels an app may use. On a settings
-- table without the unique (account, type) pair, the capture judged a
-- touched pair again by reading the app's rows after an advisory lock per
-- pair. That works under READ COMMITTED only: under REPEATABLE READ the
-- second of two concurrent inserting writers does not see the first's row
-- and both rows kept a verdict (two verdicts for one pair, the report and
-- the batch then read either); under SERIALIZABLE those reads tied the
-- app's concurrent writers together, and the second app transaction's
-- COMMIT failed with a serialization failure (even for two different
-- pairs) — a failure keyfall put into the app. Now:
-- * keyfall.row_verdicts holds at most one verdict per (account, type), by
--   a unique index (duplicates left by the old capture are removed first,
--   the lowest id's kept, the row the app reads);
-- * under READ COMMITTED the capture works as before;
-- * under REPEATABLE READ and SERIALIZABLE it reads neither the app's
--   table nor the verdicts for an insert or an update: the new rows'
--   verdicts go in through the pair's unique index (which waits for a
--   concurrent writer of the pair as the app's own unique index would),
--   and a concurrent writer's verdict this transaction cannot see stands;
-- * a verdict keyfall cannot keep is never the loss of the change's audit
--   row (its own block).
-- Known: under REPEATABLE READ or SERIALIZABLE, deleting the row that
-- answers for a pair in a table without the unique pair leaves the pair
-- without a verdict until its next write under READ COMMITTED or `keyfall
-- attach` (judging the next row would read the app's table).

DELETE FROM keyfall.row_verdicts r
 USING keyfall.row_verdicts lower
 WHERE lower.account_id = r.account_id AND lower.integration_type = r.integration_type
   AND lower.setting_id < r.setting_id;
CREATE UNIQUE INDEX IF NOT EXISTS row_verdicts_pair ON keyfall.row_verdicts (account_id, integration_type);

CREATE OR REPLACE FUNCTION keyfall.keyfall_capture_settings() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $f$
DECLARE
    kf_op     pg_catalog.text := lower(TG_OP);
    kf_actor  pg_catalog.text;
    spec      pg_catalog.jsonb;
    c         pg_catalog.jsonb;
    k_id      pg_catalog.text;
    k_acc     pg_catalog.text;
    k_type    pg_catalog.text;
    olds      pg_catalog.jsonb[];
    news      pg_catalog.jsonb[];
    sample    pg_catalog.jsonb;
    fits      pg_catalog.bool;
    why       pg_catalog.text;
    slugs     pg_catalog.jsonb;
    changed   pg_catalog.int8;
    payloads  pg_catalog.text[];
    payload   pg_catalog.text;
    pair_accs pg_catalog.int8[];
    pair_types pg_catalog.text[];
    gone      pg_catalog.int8[];
    loose     pg_catalog.bool;
BEGIN
    BEGIN
        SELECT m.spec INTO spec FROM keyfall.mapping m WHERE (m.places -> 'settings' ->> 'oid')::oid = TG_RELID;
        IF spec IS NULL THEN
            -- Not the mapped table (nothing is attached here now).
            RETURN NULL;
        END IF;
        kf_actor := keyfall.keyfall_actor();
        -- A type the app's role owns could bring a cast of its own: such a
        -- row is not handled with the owner's rights (0004).
        why := keyfall.keyfall_untrusted_column(TG_RELID);
        IF why IS NOT NULL THEN
            INSERT INTO keyfall.audit_log (actor, action, table_name, after)
            VALUES (kf_actor, 'capture_refused', 'integration_settings', jsonb_build_object('op', kf_op, 'why', why));
            RETURN NULL;
        END IF;
        c := spec -> 'settings' -> 'columns';
        k_id := c ->> 'id';
        k_acc := c ->> 'account_id';
        k_type := c ->> 'integration_type';
        -- Each changed row whole, once.
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            SELECT array_agg(to_jsonb(o)) INTO olds FROM old_rows o;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            SELECT array_agg(to_jsonb(n)) INTO news FROM new_rows n;
        END IF;
        sample := coalesce(news[1], olds[1]);
        IF sample IS NULL THEN
            RETURN NULL;
        END IF;
        -- Does the mapping still fit the rows? Every mapped column there.
        fits := sample ? k_id AND sample ? k_acc AND sample ? k_type
                AND sample ? (c ->> 'config') AND sample ? (c ->> 'is_active')
                AND (jsonb_typeof(c -> 'version') IS DISTINCT FROM 'string' OR sample ? (c ->> 'version'));
        SELECT keyfall.keyfall_slugs(array_agg(DISTINCT keyfall.keyfall_json_int8(d -> k_acc)))
          INTO slugs FROM unnest(coalesce(news, olds)) d;

        WITH ins AS (
            INSERT INTO keyfall.audit_log (actor, action, table_name, row_id, account_id, account_slug,
                                           integration_type, before, after)
            SELECT kf_actor, kf_op, 'integration_settings', keyfall.keyfall_json_int8(r.d -> k_id),
                   keyfall.keyfall_json_int8(r.d -> k_acc), slugs ->> (r.d ->> k_acc), r.d ->> k_type,
                   CASE WHEN r.o IS NULL THEN NULL WHEN fits THEN keyfall.keyfall_captured(r.o, c)
                        ELSE jsonb_build_object('row', keyfall.keyfall_redact(r.o)) END,
                   CASE WHEN r.n IS NULL THEN NULL WHEN fits THEN keyfall.keyfall_captured(r.n, c)
                        ELSE jsonb_build_object('row', keyfall.keyfall_redact(r.n)) END
              FROM (SELECT n AS d, NULL::jsonb AS o, n FROM unnest(news) n WHERE olds IS NULL
                    UNION ALL
                    SELECT o AS d, o, NULL::jsonb AS n FROM unnest(olds) o WHERE news IS NULL
                    UNION ALL
                    -- An UPDATE: each new row with the old one of its id.
                    SELECT coalesce(n, o) AS d, o, n
                      FROM (SELECT n FROM unnest(news) n WHERE olds IS NOT NULL) nn
                      FULL JOIN (SELECT o FROM unnest(olds) o WHERE news IS NOT NULL) oo ON oo.o -> k_id = nn.n -> k_id) r
            RETURNING id, row_id, account_id)
        SELECT count(*), array_agg(json_build_object('table', 'integration_settings', 'op', kf_op,
                   'id', row_id, 'account_id', account_id, 'audit_id', id)::text) FILTER (WHERE rn <= 100)
          INTO changed, payloads
          FROM (SELECT *, row_number() OVER () AS rn FROM ins) x;

        -- The verdicts keyfall keeps per row (report, batch), one per
        -- (account, type): the row the app reads. A verdict keyfall cannot
        -- keep never costs the change its audit row (its own block).
        BEGIN
            -- Rows gone (deleted, their id changed, or no longer fitting the
            -- mapping) lose their verdicts; a row updated in place keeps its
            -- own until the upsert below replaces it. No read of the
            -- verdicts when nothing is gone: under SERIALIZABLE a read here
            -- would tie the app's concurrent writers together (0004).
            SELECT array_agg(g) INTO gone
              FROM (SELECT keyfall.keyfall_json_int8(o -> k_id) AS g FROM unnest(olds) o
                    EXCEPT
                    SELECT keyfall.keyfall_json_int8(n -> k_id) FROM unnest(news) n WHERE fits) x
             WHERE g IS NOT NULL;
            IF gone IS NOT NULL THEN
                DELETE FROM keyfall.row_verdicts r WHERE r.setting_id = ANY (gone);
            END IF;
            loose := fits AND NOT keyfall.keyfall_pairs_unique(TG_RELID, k_acc, k_type);
            IF news IS NOT NULL AND fits AND NOT loose THEN
                INSERT INTO keyfall.row_verdicts (setting_id, account_id, integration_type, verdict, provider)
                SELECT keyfall.keyfall_json_int8(d -> k_id), keyfall.keyfall_json_int8(d -> k_acc), d ->> k_type,
                       keyfall.keyfall_row_verdict(d ->> k_type, d -> (c ->> 'config'), (d ->> (c ->> 'is_active'))::boolean),
                       keyfall.keyfall_mask(d -> (c ->> 'config') -> 'provider')
                  FROM unnest(news) d
                 WHERE keyfall.keyfall_json_int8(d -> k_id) IS NOT NULL AND keyfall.keyfall_json_int8(d -> k_acc) IS NOT NULL
                ON CONFLICT (setting_id) DO UPDATE
                   SET account_id = EXCLUDED.account_id, integration_type = EXCLUDED.integration_type,
                       verdict = EXCLUDED.verdict, provider = EXCLUDED.provider;
            END IF;
            -- A table without a unique (account, type) constraint: each
            -- touched pair keeps the verdict of the row the app reads, its
            -- lowest id (a row deleted or moved away hands over to the next).
            IF loose THEN
                SELECT array_agg(p.acc), array_agg(p.typ) INTO pair_accs, pair_types
                  FROM (SELECT DISTINCT keyfall.keyfall_json_int8(d -> k_acc) AS acc, d ->> k_type AS typ
                          FROM unnest(coalesce(news, '{}'::jsonb[]) || coalesce(olds, '{}'::jsonb[])) d) p
                 WHERE p.acc IS NOT NULL AND p.typ IS NOT NULL;
                -- Two transactions adding rows to one pair at once: the
                -- second waits here for the first to end, as the unique
                -- constraint the table lacks would make it wait. The pairs
                -- are taken in one order, so two statements never wait for
                -- each other crosswise; the lock's key is keyfall's (two
                -- int4s, a class of its own) and ends with the transaction.
                PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('keyfall.row_verdicts'), x.k)
                   FROM (SELECT DISTINCT pg_catalog.hashtext(p.acc::pg_catalog.text || '/' || p.typ) AS k
                           FROM unnest(pair_accs, pair_types) AS p(acc, typ)
                          ORDER BY 1) x;
                IF pg_catalog.current_setting('transaction_isolation') = 'read committed' THEN
                    -- Each statement below sees the first's rows committed:
                    -- the pair is judged again from the app's rows.
                    DELETE FROM keyfall.row_verdicts r
                     USING unnest(pair_accs, pair_types) AS p(acc, typ)
                     WHERE r.account_id = p.acc AND r.integration_type = p.typ;
                    EXECUTE format(
                        'INSERT INTO keyfall.row_verdicts (setting_id, account_id, integration_type, verdict, provider)'
                        ' SELECT DISTINCT ON (s.%2$I, s.%3$I) s.%1$I::pg_catalog.int8, s.%2$I::pg_catalog.int8, s.%3$I::pg_catalog.text,'
                        '        keyfall.keyfall_row_verdict(s.%3$I::pg_catalog.text, s.%4$I, s.%5$I),'
                        '        keyfall.keyfall_mask(s.%4$I OPERATOR(pg_catalog.->) ''provider'')'
                        '   FROM %6$s s JOIN unnest($1::pg_catalog.int8[], $2::pg_catalog.text[]) AS p(acc, typ)'
                        '     ON s.%2$I OPERATOR(pg_catalog.=) p.acc AND s.%3$I::pg_catalog.text OPERATOR(pg_catalog.=) p.typ'
                        '  ORDER BY s.%2$I, s.%3$I, s.%1$I'
                        ' ON CONFLICT (setting_id) DO UPDATE'
                        '    SET account_id = EXCLUDED.account_id, integration_type = EXCLUDED.integration_type,'
                        '        verdict = EXCLUDED.verdict, provider = EXCLUDED.provider',
                        k_id, k_acc, k_type, c ->> 'config', c ->> 'is_active', TG_RELID::pg_catalog.regclass)
                    USING pair_accs, pair_types;
                ELSIF news IS NOT NULL THEN
                    -- REPEATABLE READ or SERIALIZABLE: this transaction
                    -- cannot see a concurrent writer's rows, and reading the
                    -- app's table would make the app's commit fail under
                    -- SERIALIZABLE. So no read: each pair's lowest new row
                    -- takes the pair's one verdict (the unique index on the
                    -- pair, 0004) where it is lower than the verdict's row;
                    -- a verdict of a concurrent writer this transaction
                    -- cannot see stands (PostgreSQL says so with a
                    -- serialization failure, caught below).
                    INSERT INTO keyfall.row_verdicts AS rv (setting_id, account_id, integration_type, verdict, provider)
                    SELECT DISTINCT ON (keyfall.keyfall_json_int8(d -> k_acc), d ->> k_type)
                           keyfall.keyfall_json_int8(d -> k_id), keyfall.keyfall_json_int8(d -> k_acc), d ->> k_type,
                           keyfall.keyfall_row_verdict(d ->> k_type, d -> (c ->> 'config'), (d ->> (c ->> 'is_active'))::boolean),
                           keyfall.keyfall_mask(d -> (c ->> 'config') -> 'provider')
                      FROM unnest(news) d
                     WHERE keyfall.keyfall_json_int8(d -> k_id) IS NOT NULL AND keyfall.keyfall_json_int8(d -> k_acc) IS NOT NULL
                     ORDER BY keyfall.keyfall_json_int8(d -> k_acc), d ->> k_type, keyfall.keyfall_json_int8(d -> k_id)
                    ON CONFLICT (account_id, integration_type) DO UPDATE
                       SET setting_id = EXCLUDED.setting_id, verdict = EXCLUDED.verdict, provider = EXCLUDED.provider
                     WHERE EXCLUDED.setting_id OPERATOR(pg_catalog.<=) rv.setting_id;
                END IF;
            END IF;
        EXCEPTION WHEN serialization_failure OR unique_violation THEN
            -- The pair's verdict is a concurrent writer's, committed after
            -- this transaction began: it stands, this change is audited.
            NULL;
        END;

        IF changed <= 100 THEN
            FOREACH payload IN ARRAY coalesce(payloads, '{}'::text[]) LOOP
                PERFORM pg_notify('keyfall_changes', payload);
            END LOOP;
        ELSE
            PERFORM pg_notify('keyfall_changes', json_build_object(
                'table', 'integration_settings', 'op', kf_op, 'bulk', changed)::text);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- Never the app's failure. What keyfall could not record is
        -- recorded as such (no contents: the error could quote a value).
        BEGIN
            INSERT INTO keyfall.audit_log (actor, action, table_name, after)
            VALUES (session_user::text, 'capture_failed', 'integration_settings',
                    jsonb_build_object('op', kf_op, 'sqlstate', SQLSTATE));
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'keyfall: a change to the app''s settings was not recorded (SQLSTATE %)', SQLSTATE;
        END;
    END;
    RETURN NULL;
END
$f$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_capture_settings() FROM PUBLIC;

-- Taking keyfall off the app or putting it on again locks the app's tables
-- and keyfall's views over them in one bounded statement. Locking a view
-- locks what its query reads, with the view owner's rights — the settings
-- view reads pg_catalog.pg_namespace (who may see keys in clear), which
-- only a superuser may lock: where a non-superuser owns keyfall (it
-- attached), every attach after the first and every detach failed with
-- "permission denied for table pg_namespace". The app's tables are locked
-- as before; the views where their owner may lock them, else by the
-- statements that replace them (each bounded by the same lock_timeout).
CREATE OR REPLACE FUNCTION keyfall.keyfall_lock_app(m jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    rels  pg_catalog.text;
    views pg_catalog.text;
    names pg_catalog.text[] := ARRAY[]::pg_catalog.text[];
BEGIN
    IF m IS NOT NULL THEN
        names := ARRAY[keyfall.keyfall_qualified(m -> 'settings'), keyfall.keyfall_qualified(m -> 'users'),
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
    SELECT string_agg(v.r::pg_catalog.text, ', ' ORDER BY v.r::pg_catalog.text) INTO views
      FROM (SELECT to_regclass(n) AS r
              FROM unnest(ARRAY['keyfall.integration_settings', 'keyfall.users', 'keyfall.accounts']) n) v
     WHERE v.r IS NOT NULL;
    IF views IS NOT NULL THEN
        BEGIN
            EXECUTE 'LOCK TABLE ' || views || ' IN ACCESS EXCLUSIVE MODE';
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_lock_app(jsonb) FROM PUBLIC;

-- keyfall's DDL watchers speak to the app's migration only to warn: the
-- NOTICEs of their own DROP VIEW IF EXISTS / CREATE VIEW ("view … does not
-- exist, skipping") no longer reach the client running the migration.
ALTER FUNCTION keyfall.keyfall_ddl_start() SET client_min_messages = warning;
ALTER FUNCTION keyfall.keyfall_ddl_end() SET client_min_messages = warning;
ALTER FUNCTION keyfall.keyfall_watch_ddl() SET client_min_messages = warning;

SELECT keyfall.keyfall_harden();
