-- keyfall 0017: lean start (issue 19, point 8) and one verdict per pair.
--
-- A settings table without a unique (account, integration_type) constraint
-- (0013): the capture re-judges every pair a statement touches, keeping
-- the verdict of the row the app reads (the lowest id). Two transactions
-- inserting rows for the same pair at the same time each judged the pair
-- without seeing the other's uncommitted row, and both verdicts stayed
-- (two rows of keyfall.row_verdicts for one pair: the report and
-- `resolve --batch` would read either). The capture now takes a
-- transaction-level advisory lock per touched pair before re-judging it:
-- the second writer waits for the first to commit or roll back — exactly
-- where a unique index on the pair would have made it wait — and judges
-- with the first's rows in view. Only tables without the unique pair take
-- the lock; a table with it is untouched.
--
-- keyfall_capture_settings is 0013's in full, with only that lock added.

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
BEGIN
    BEGIN
        SELECT m.spec INTO spec FROM keyfall.mapping m WHERE (m.places -> 'settings' ->> 'oid')::oid = TG_RELID;
        IF spec IS NULL THEN
            -- Not the mapped table (nothing is attached here now).
            RETURN NULL;
        END IF;
        kf_actor := keyfall.keyfall_actor();
        -- A type the app's role owns could bring a cast of its own: such a
        -- row is not handled with the owner's rights (0007).
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

        -- The verdicts keyfall keeps per row (report, batch), where the
        -- mapping fits; a row that no longer fits loses its verdict until
        -- `keyfall attach` re-maps.
        IF olds IS NOT NULL THEN
            DELETE FROM keyfall.row_verdicts r
             WHERE r.setting_id = ANY (ARRAY(SELECT keyfall.keyfall_json_int8(o -> k_id) FROM unnest(olds) o));
        END IF;
        IF news IS NOT NULL AND fits THEN
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
        IF fits AND NOT keyfall.keyfall_pairs_unique(TG_RELID, k_acc, k_type) THEN
            SELECT array_agg(p.acc), array_agg(p.typ) INTO pair_accs, pair_types
              FROM (SELECT DISTINCT keyfall.keyfall_json_int8(d -> k_acc) AS acc, d ->> k_type AS typ
                      FROM unnest(coalesce(news, '{}'::jsonb[]) || coalesce(olds, '{}'::jsonb[])) d) p
             WHERE p.acc IS NOT NULL AND p.typ IS NOT NULL;
            -- Two transactions adding rows to one pair at once would each
            -- judge it without the other's row and both verdicts would stay:
            -- the second waits here for the first to end, as the unique
            -- constraint the table lacks would make it wait, then judges the
            -- pair with the first's rows committed (each statement below
            -- sees them). The pairs are taken in one order, so two statements
            -- never wait for each other crosswise; the lock's key is keyfall's
            -- (two int4s, a class of its own) and ends with the transaction.
            PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('keyfall.row_verdicts'), x.k)
               FROM (SELECT DISTINCT pg_catalog.hashtext(p.acc::pg_catalog.text || '/' || p.typ) AS k
                       FROM unnest(pair_accs, pair_types) AS p(acc, typ)
                      ORDER BY 1) x;
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
        END IF;

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

SELECT keyfall.keyfall_harden();
