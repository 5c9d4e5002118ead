-- keyfall 0013: the apps that exist (issue 19, point 5): a settings table
-- without a unique (account, integration_type) constraint.
--
-- Such a table is attached and read the way the app reads it: its
-- get_model_config takes `IntegrationSettings.objects.filter(account=…,
-- integration_type=…).first()`, and Django's .first() on an unordered
-- queryset orders by the primary key: the row with the lowest id answers
-- for its pair, whatever the others hold. keyfall.row_verdicts keeps one
-- verdict per pair, that row's (attach judges DISTINCT ON the pair; the
-- capture re-judges every pair a statement touches when the table has no
-- unique constraint on the pair), so the report, `resolve --batch` and the
-- impact preview, which read it, answer as the resolver does. keyfall's
-- own write path never adds a second row to a pair (INSERT … WHERE NOT
-- EXISTS), and keyfall refuses to write to a pair that has several (the
-- store names the ids).
--
-- Each function below is 0010's in full, with only what this needs.

-- Whether the table `rel` has a unique index on exactly its columns `acc`
-- and `typ` (no predicate): one setting per account and type.
CREATE OR REPLACE FUNCTION keyfall.keyfall_pairs_unique(rel pg_catalog.oid, acc pg_catalog.text, typ pg_catalog.text)
RETURNS pg_catalog.bool
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1
          FROM pg_catalog.pg_index i
         WHERE i.indrelid OPERATOR(pg_catalog.=) rel AND i.indisunique AND i.indnkeyatts OPERATOR(pg_catalog.=) 2
           AND i.indpred IS NULL
           AND (SELECT array_agg(a.attname::pg_catalog.text ORDER BY a.attname::pg_catalog.text)
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid OPERATOR(pg_catalog.=) rel
                   AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[]))
               OPERATOR(pg_catalog.=) (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[acc, typ]) x))
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_pairs_unique(pg_catalog.oid, pg_catalog.text, pg_catalog.text) FROM PUBLIC;

-- What does not fit in a mapping, one sentence each (0010's, less one): a
-- settings table without a unique (account, type) constraint fits — it is
-- read the way the app reads it (keyfall_pairs_unique below).
CREATE OR REPLACE FUNCTION keyfall.keyfall_mapping_problems(m jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    problems pg_catalog.text[] := '{}';
    part     pg_catalog.text;
    col      record;
    rel      pg_catalog.regclass;
    typ      pg_catalog.text;
    typ_oid  pg_catalog.oid;
    owner    pg_catalog.text;
BEGIN
    FOREACH part IN ARRAY ARRAY['accounts', 'users', 'settings'] LOOP
        rel := to_regclass(keyfall.keyfall_qualified(m -> part));
        IF rel IS NULL THEN
            problems := problems || format('%s table %s does not exist', part, keyfall.keyfall_qualified(m -> part));
            CONTINUE;
        END IF;
        FOR col IN
            SELECT key AS role, value #>> '{}' AS name
              FROM jsonb_each(m -> part -> 'columns')
             WHERE jsonb_typeof(value) = 'string'
        LOOP
            typ := NULL;
            SELECT format_type(a.atttypid, NULL), a.atttypid INTO typ, typ_oid
              FROM pg_attribute a
             WHERE a.attrelid = rel AND a.attname = col.name AND a.attnum > 0 AND NOT a.attisdropped;
            IF typ IS NOT NULL THEN
                owner := keyfall.keyfall_untrusted_type(typ_oid);
            END IF;
            IF typ IS NULL THEN
                problems := problems || format('%s: column %I (for %s) does not exist in %s',
                                               part, col.name, col.role, rel::text);
            ELSIF owner IS NOT NULL THEN
                problems := problems || format('%s.%I is of type %s (%s): keyfall reads it with its schema owner''s rights and '
                                               'would run that type''s casts, so it does not map it',
                                               rel::text, col.name, typ, owner);
            ELSIF col.role = 'config' AND typ <> 'jsonb' THEN
                problems := problems || format('%s.%I is %s; keyfall needs jsonb (Django''s JSONField on PostgreSQL)',
                                               rel::text, col.name, typ);
            ELSIF col.role IN ('is_active', 'is_superuser') AND typ <> 'boolean' THEN
                problems := problems || format('%s.%I is %s, not boolean', rel::text, col.name, typ);
            ELSIF col.role IN ('id', 'account_id', 'version') AND typ NOT IN ('bigint', 'integer', 'smallint') THEN
                problems := problems || format('%s.%I is %s, not an integer', rel::text, col.name, typ);
            ELSIF col.role IN ('updated_at', 'created_at') AND typ <> 'timestamp with time zone' THEN
                problems := problems || format('%s.%I is %s, not timestamptz (Django with USE_TZ)',
                                               rel::text, col.name, typ);
            END IF;
        END LOOP;
    END LOOP;
    RETURN problems;
END
$$;

-- The capture (0010's): one audit row per changed row of the app's
-- settings table, secrets fingerprinted, the verdicts kept — one per
-- (account, type), the row the app reads — a notice per row (or one for a
-- bulk statement). Runs with the owner's rights (the app's role needs no
-- grant); never raises into the app's statement.
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

CREATE OR REPLACE FUNCTION keyfall.keyfall_create_views(m jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $function$
DECLARE
    a  pg_catalog.jsonb := m -> 'accounts' -> 'columns';
    u  pg_catalog.jsonb := m -> 'users' -> 'columns';
    s  pg_catalog.jsonb := m -> 'settings' -> 'columns';
    version_expr pg_catalog.text;
    updated_at_expr pg_catalog.text;
    updated_by_expr pg_catalog.text;
    created_at_col pg_catalog.text := '';
    body pg_catalog.text;
BEGIN
    DROP VIEW IF EXISTS keyfall.integration_settings, keyfall.users, keyfall.accounts;

    EXECUTE format(
        'CREATE VIEW keyfall.accounts AS SELECT a.%I::bigint AS id, a.%I::text AS slug, a.%I::text AS name, %s AS status FROM %s a',
        a ->> 'id', a ->> 'slug', a ->> 'name',
        keyfall.keyfall_value_map(format('a.%I::text', a ->> 'status'), m -> 'accounts' -> 'status_values'),
        keyfall.keyfall_qualified(m -> 'accounts'));
    EXECUTE format(
        'CREATE VIEW keyfall.users AS SELECT u.%I::bigint AS id, u.%I::text AS email, %s AS role,'
        ' u.%I AS is_superuser, u.%I AS is_active, u.%I::bigint AS account_id FROM %s u',
        u ->> 'id', u ->> 'email',
        keyfall.keyfall_value_map(format('u.%I::text', u ->> 'role'), m -> 'users' -> 'role_values'),
        u ->> 'is_superuser', u ->> 'is_active', u ->> 'account_id',
        keyfall.keyfall_qualified(m -> 'users'));

    -- The optimistic-lock token: the app's version column, else the row's
    -- xmin, which PostgreSQL changes on every update by any client.
    IF s ? 'version' AND jsonb_typeof(s -> 'version') = 'string' THEN
        version_expr := format('s.%I::bigint', s ->> 'version');
    ELSE
        version_expr := '(s.xmin::text)::bigint';
    END IF;
    IF jsonb_typeof(s -> 'updated_at') = 'string' THEN
        updated_at_expr := format('s.%I', s ->> 'updated_at');
    ELSE
        updated_at_expr := 'NULL::timestamptz';
    END IF;
    IF jsonb_typeof(s -> 'updated_by') = 'string' THEN
        updated_by_expr := format('s.%I::text', s ->> 'updated_by');
    ELSE
        updated_by_expr := format('(SELECT l.actor FROM keyfall.audit_log l WHERE l.table_name = ''integration_settings'''
                                  ' AND l.row_id = s.%I ORDER BY l.id DESC LIMIT 1)', s ->> 'id');
    END IF;
    IF jsonb_typeof(s -> 'created_at') = 'string' THEN
        created_at_col := format(', s.%I AS created_at', s ->> 'created_at');
    END IF;
    -- Reads follow the policy (keyfall_scope): a row of an account the
    -- session's operator may not view keeps its place — that it exists and
    -- whether it answers (withheld_verdict, withheld_provider) are what
    -- every resolve trace needs — but its config and who changed it are
    -- not shown.
    EXECUTE format(
        'CREATE VIEW keyfall.integration_settings AS SELECT s.%I::bigint AS id, s.%I::bigint AS account_id,'
        ' s.%I AS integration_type,'
        ' CASE WHEN NOT v.shown THEN NULL'
        '      WHEN (SELECT pg_catalog.pg_has_role(n.nspowner, ''MEMBER'') FROM pg_catalog.pg_namespace n WHERE n.nspname = ''keyfall'') THEN s.%I'
        '      ELSE keyfall.keyfall_mask(s.%I) END AS config,'
        ' s.%I AS is_active, %s AS version, %s AS updated_at, CASE WHEN v.shown THEN %s END AS updated_by%s,'
        ' v.shown AS shown,'
        ' CASE WHEN NOT v.shown THEN (SELECT rv.verdict FROM keyfall.row_verdicts rv WHERE rv.setting_id = s.%I) END AS withheld_verdict,'
        ' CASE WHEN NOT v.shown THEN (SELECT rv.provider FROM keyfall.row_verdicts rv WHERE rv.setting_id = s.%I) END AS withheld_provider'
        ' FROM %s s CROSS JOIN LATERAL (SELECT (SELECT keyfall.keyfall_reads_all())'
        '   OR s.%I::bigint = ANY ((SELECT keyfall.keyfall_readable_accounts())::pg_catalog.int8[]) AS shown) v',
        s ->> 'id', s ->> 'account_id', s ->> 'integration_type', s ->> 'config', s ->> 'config', s ->> 'is_active',
        version_expr, updated_at_expr, updated_by_expr, created_at_col, s ->> 'id', s ->> 'id',
        keyfall.keyfall_qualified(m -> 'settings'), s ->> 'account_id');
    -- Django's auto_now fields have no database default: rows keyfall
    -- creates get them here.
    IF jsonb_typeof(s -> 'updated_at') = 'string' THEN
        ALTER VIEW keyfall.integration_settings ALTER COLUMN updated_at SET DEFAULT now();
    END IF;
    IF created_at_col <> '' THEN
        ALTER VIEW keyfall.integration_settings ALTER COLUMN created_at SET DEFAULT now();
    END IF;

    -- Writes through keyfall's view go through this function: it asks the
    -- database's own copy of the permission rules, for the operator the
    -- login may act as, at the moment of the write; then writes the app's
    -- row, only if it is still at the version keyfall read (a concurrent
    -- writer makes it match nothing: a conflict, never an overwrite).
    body := format($body$
CREATE OR REPLACE FUNCTION keyfall.keyfall_settings_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $f$
DECLARE
    new_id pg_catalog.int8;
BEGIN
    -- Only on keyfall's own view: an OLD made up by someone's own view
    -- must never reach the app's table.
    IF TG_RELID <> 'keyfall.integration_settings'::regclass THEN
        RAISE EXCEPTION 'keyfall_settings_write fires on keyfall.integration_settings only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM keyfall.keyfall_authorize('modify_settings', NEW.account_id);
        NEW.config := keyfall.keyfall_unmask(NEW.config, NULL);
        BEGIN
            -- Only where the pair has no row yet: a table without a
            -- unique (account, type) constraint gets no second row from
            -- keyfall (and one with it no error from a race).
            INSERT INTO %1$s AS s (%3$I, %4$I, %5$I, %6$I %7$s)
            SELECT NEW.account_id, NEW.integration_type, coalesce(NEW.config, '{}'::jsonb), coalesce(NEW.is_active, true) %8$s
             WHERE NOT EXISTS (SELECT 1 FROM %1$s AS x WHERE x.%3$I = NEW.account_id AND x.%4$I = NEW.integration_type)
            ON CONFLICT DO NOTHING
            RETURNING s.%2$I INTO new_id;
        EXCEPTION WHEN OTHERS THEN
            -- The message only: a DETAIL ("failing row contains …") would quote the key.
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END;
        IF new_id IS NULL THEN
            RETURN NULL;
        END IF;
        NEW.id := new_id;
        -- What RETURNING shows is what the session may read.
        IF NOT keyfall.keyfall_login_sees_raw() THEN
            NEW.config := keyfall.keyfall_mask(NEW.config);
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM keyfall.keyfall_authorize('modify_settings', OLD.account_id);
        IF NEW.account_id IS DISTINCT FROM OLD.account_id THEN
            PERFORM keyfall.keyfall_authorize('modify_settings', NEW.account_id);
        END IF;
        -- A session reading masked keys writes them back masked: the
        -- stored key stays.
        NEW.config := keyfall.keyfall_unmask(NEW.config, (SELECT x.%5$I FROM %1$s AS x WHERE x.%2$I = OLD.id));
        BEGIN
            UPDATE %1$s AS s SET %3$I = NEW.account_id, %4$I = NEW.integration_type, %5$I = NEW.config,
                   %6$I = NEW.is_active %9$s
             WHERE s.%2$I = OLD.id AND %10$s = OLD.version;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        IF NOT keyfall.keyfall_login_sees_raw() THEN
            NEW.config := keyfall.keyfall_mask(NEW.config);
        END IF;
        RETURN NEW;
    ELSE
        PERFORM keyfall.keyfall_authorize('modify_settings', OLD.account_id);
        DELETE FROM %1$s AS s WHERE s.%2$I = OLD.id AND %10$s = OLD.version;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        RETURN OLD;
    END IF;
END
$f$
$body$, keyfall.keyfall_qualified(m -> 'settings'), s ->> 'id', s ->> 'account_id', s ->> 'integration_type',
        s ->> 'config', s ->> 'is_active',
        concat_ws(', ', '', CASE WHEN jsonb_typeof(s -> 'updated_at') = 'string' THEN quote_ident(s ->> 'updated_at') END,
                            CASE WHEN created_at_col <> '' THEN quote_ident(s ->> 'created_at') END),
        concat_ws(', ', '', CASE WHEN jsonb_typeof(s -> 'updated_at') = 'string' THEN 'now()' END,
                            CASE WHEN created_at_col <> '' THEN 'now()' END),
        CASE WHEN jsonb_typeof(s -> 'updated_at') = 'string' THEN format(', %I = now()', s ->> 'updated_at') ELSE '' END,
        version_expr);
    EXECUTE body;
    CREATE TRIGGER keyfall_settings_write INSTEAD OF INSERT OR UPDATE OR DELETE ON keyfall.integration_settings
        FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_settings_write();
    REVOKE EXECUTE ON FUNCTION keyfall.keyfall_settings_write() FROM PUBLIC;
END
$function$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_create_views(jsonb) FROM PUBLIC;

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

    -- Every pair's verdict, from scratch: the row the app reads (the
    -- lowest id of its account and type, as Django's .first() on an
    -- unordered queryset takes it; the only row where the pair is unique).
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
    DELETE FROM keyfall.installing WHERE txid = txid_current();
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_install_mapping(jsonb) FROM PUBLIC;

-- The key a reveal or a connection test hands over (0007's): of a pair
-- with several rows, the lowest id's, the one the app uses.
CREATE OR REPLACE FUNCTION keyfall.keyfall_take_key(slug text, integration_type text, purpose text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    acc_id pg_catalog.int8;
    req    record;
    cfg    pg_catalog.jsonb;
    n      pg_catalog.int8;
BEGIN
    SELECT a.id INTO acc_id FROM keyfall.accounts a WHERE a.slug = keyfall_take_key.slug;
    IF acc_id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM keyfall.keyfall_authorize(CASE WHEN purpose = 'reveal' THEN 'modify_settings' ELSE 'test_connection' END,
                                      acc_id);
    FOR req IN SELECT r.id, r.use_seq FROM keyfall.key_requests r
                WHERE r.login = session_user AND r.actor = keyfall.keyfall_operator() AND r.slug = keyfall_take_key.slug
                  AND r.integration_type = keyfall_take_key.integration_type AND r.purpose = keyfall_take_key.purpose
                  AND NOT r.used AND r.use_seq IS NOT NULL AND r.txid <> txid_current()
                  AND r.at > clock_timestamp() - interval '1 minute'
                ORDER BY r.id DESC LOOP
        -- nextval survives a rollback: the first taker gets 1, anyone after
        -- (this transaction rolled back or not) finds the request spent.
        BEGIN
            n := nextval(format('keyfall.%I', req.use_seq));
        EXCEPTION WHEN OTHERS THEN
            n := NULL;  -- spent (past MAXVALUE) or gone
        END;
        IF n = 1 THEN
            UPDATE keyfall.key_requests SET used = true WHERE id = req.id;
            -- The row the app reads: the lowest id of the pair.
            SELECT s.config INTO cfg FROM keyfall.integration_settings s
             WHERE s.account_id = acc_id AND s.integration_type = keyfall_take_key.integration_type
             ORDER BY s.id LIMIT 1;
            RETURN cfg;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no recorded request for this key: call keyfall_request_key and commit first (the record must not be rolled back with the key; a request is used once)'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

SELECT keyfall.keyfall_harden();

-- An installed mapping is made again: the write path without ON CONFLICT's
-- target, one verdict per pair.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        PERFORM keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping));
    END IF;
END
$$;
