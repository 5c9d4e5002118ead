-- keyfall 0010: keyfall never harms the app it is attached to (issue 19).
--
-- Nothing of keyfall's can fail or block the app's writes or migrations:
-- * The capture on the app's settings table is one generic function
--   (keyfall_capture_settings), the same for every mapping: it reads each
--   changed row whole (to_jsonb of the transition table's row) and
--   interprets it through the mapping installed at run time. It depends on
--   no column: an added, altered, renamed or dropped column, or a renamed
--   table, never makes the app's statement fail. A row the mapping no longer
--   fits is recorded whole (redacted); any error inside is caught, recorded
--   as 'capture_failed' (no contents) and never raised into the app.
-- * keyfall's views over the app's tables are keyfall's to re-create: an
--   event trigger drops them before a DDL statement that names a mapped
--   table (keyfall_ddl_start), another re-creates them after it
--   (keyfall_ddl_end) when the mapping still fits — following a renamed
--   table or column by identity (oid, attnum) — and records what changed
--   ('app_ddl', 'app_changed' rows) when it does not. So no keyfall object
--   is something an app migration must drop first, and what still fits
--   keeps working. A settings table dropped and made again (`migrate app
--   zero`, then back) is attached again as soon as it fits.

-- Why a column type could run code of a role that is not a superuser when
-- keyfall's owner-rights code handles its values (its owner, through
-- domains and arrays, is not a superuser; or it is a composite), or NULL.
CREATE OR REPLACE FUNCTION keyfall.keyfall_untrusted_type(t oid) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    ty record;
BEGIN
    LOOP
        SELECT y.typtype, y.typbasetype, y.typelem, y.typcategory, y.typowner, y.typname
          INTO ty FROM pg_catalog.pg_type y WHERE y.oid = t;
        EXIT WHEN NOT FOUND;
        IF ty.typtype = 'd' THEN
            t := ty.typbasetype;
        ELSIF ty.typcategory = 'A' AND ty.typelem <> 0 THEN
            t := ty.typelem;
        ELSE
            EXIT;
        END IF;
    END LOOP;
    IF ty.typtype = 'c' THEN
        RETURN format('the composite type %s', ty.typname);
    END IF;
    IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = ty.typowner), false) THEN
        RETURN format('type %s is owned by %s, not a superuser', ty.typname,
                      (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = ty.typowner));
    END IF;
    RETURN NULL;
END
$$;

-- 0007's check of every column, through the one rule above.
CREATE OR REPLACE FUNCTION keyfall.keyfall_untrusted_column(rel oid) RETURNS text
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT format('column %I: %s', a.attname, keyfall.keyfall_untrusted_type(a.atttypid))
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
       AND keyfall.keyfall_untrusted_type(a.atttypid) IS NOT NULL
     ORDER BY a.attnum
     LIMIT 1
$$;

-- What does not fit in a mapping, one sentence each (0001's, and): a mapped
-- column of a type keyfall cannot trust is not mapped; settings may have
-- integer (not only bigint) ids — keyfall reads and writes them as bigint.
CREATE OR REPLACE FUNCTION keyfall.keyfall_mapping_problems(m jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    problems text[] := '{}';
    part     text;
    col      record;
    rel      regclass;
    typ      text;
    typ_oid  oid;
    owner    text;
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
    -- One setting per account and type, as the app's model has it: keyfall
    -- creates settings with ON CONFLICT on that pair.
    rel := to_regclass(keyfall.keyfall_qualified(m -> 'settings'));
    IF rel IS NOT NULL AND NOT EXISTS (
        SELECT 1
          FROM pg_index i
         WHERE i.indrelid = rel AND i.indisunique AND i.indnkeyatts = 2 AND i.indpred IS NULL
           AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
                  FROM pg_attribute a
                 WHERE a.attrelid = rel AND a.attnum = ANY (i.indkey::int2[]))
               = (SELECT array_agg(x ORDER BY x)
                    FROM unnest(ARRAY[m -> 'settings' -> 'columns' ->> 'account_id',
                                      m -> 'settings' -> 'columns' ->> 'integration_type']) x)
    ) THEN
        problems := problems || format('%s has no unique constraint on (%I, %I): keyfall needs one setting per account and type',
                                       rel::text, m -> 'settings' -> 'columns' ->> 'account_id',
                                       m -> 'settings' -> 'columns' ->> 'integration_type');
    END IF;
    RETURN problems;
END
$$;

-- Where each mapped table and column is, by identity: renames are followed.
ALTER TABLE keyfall.mapping ADD COLUMN IF NOT EXISTS places jsonb;
-- Why the app's tables no longer fit (NULL: they do), and since when.
ALTER TABLE keyfall.mapping ADD COLUMN IF NOT EXISTS stale text;
ALTER TABLE keyfall.mapping ADD COLUMN IF NOT EXISTS stale_since timestamptz;

-- {"settings": {"oid": …, "columns": {"id": attnum, …}}, "users": …, "accounts": …}
CREATE OR REPLACE FUNCTION keyfall.keyfall_mapping_places(m jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT jsonb_object_agg(part, jsonb_build_object(
               'oid', to_regclass(keyfall.keyfall_qualified(m -> part))::oid,
               'columns', (SELECT coalesce(jsonb_object_agg(c.key, a.attnum), '{}'::jsonb)
                             FROM jsonb_each(m -> part -> 'columns') c
                             JOIN pg_catalog.pg_attribute a
                               ON a.attrelid = to_regclass(keyfall.keyfall_qualified(m -> part))
                              AND jsonb_typeof(c.value) = 'string' AND a.attname = c.value #>> '{}'
                              AND NOT a.attisdropped)))
      FROM unnest(ARRAY['accounts', 'users', 'settings']) AS part
$$;

-- The mapping with every table and column renamed since it was installed
-- put under its current name (a dropped one keeps its old name, which then
-- does not fit).
CREATE OR REPLACE FUNCTION keyfall.keyfall_mapping_followed(m jsonb, places jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    part  text;
    rel   record;
    col   record;
    name  pg_catalog.text;
BEGIN
    IF places IS NULL THEN
        RETURN m;
    END IF;
    FOREACH part IN ARRAY ARRAY['accounts', 'users', 'settings'] LOOP
        SELECT c.relname, n.nspname INTO rel
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = (places -> part ->> 'oid')::oid;
        IF NOT FOUND THEN
            CONTINUE;
        END IF;
        m := jsonb_set(jsonb_set(m, ARRAY[part, 'schema'], to_jsonb(rel.nspname::text)),
                       ARRAY[part, 'table'], to_jsonb(rel.relname::text));
        FOR col IN SELECT c.key, c.value FROM jsonb_each(places -> part -> 'columns') c LOOP
            SELECT a.attname INTO name FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = (places -> part ->> 'oid')::oid AND a.attnum = (col.value #>> '{}')::int2
               AND NOT a.attisdropped;
            IF FOUND THEN
                m := jsonb_set(m, ARRAY[part, 'columns', col.key], to_jsonb(name));
            END IF;
        END LOOP;
    END LOOP;
    RETURN m;
END
$$;

-- A whole number from a JSON value, or NULL (an id that stopped being a
-- number — a uuid after an AlterField — must not fail the app's statement).
CREATE OR REPLACE FUNCTION keyfall.keyfall_json_int8(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN v::bigint END
$$;

-- The audited part of one settings row, read from the whole row `d` through
-- the mapping's columns `c`: the config (redacted), is_active, and the
-- version where the app keeps one.
CREATE OR REPLACE FUNCTION keyfall.keyfall_captured(d jsonb, c jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('config', keyfall.keyfall_redact(d -> (c ->> 'config')),
                              'is_active', d -> (c ->> 'is_active'))
           || CASE WHEN jsonb_typeof(c -> 'version') = 'string'
                   THEN jsonb_build_object('version', d -> (c ->> 'version')) ELSE '{}'::jsonb END
$$;

-- The slugs of these accounts, read through the mapping ({} when the
-- accounts table no longer fits).
CREATE OR REPLACE FUNCTION keyfall.keyfall_slugs(ids bigint[]) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    m      jsonb;
    result jsonb;
BEGIN
    SELECT x.spec INTO m FROM keyfall.mapping x;
    -- By the id column's own index (an integer id compares with bigint).
    EXECUTE format('SELECT coalesce(jsonb_object_agg(a.%I::text, a.%I::text), ''{}''::jsonb) FROM %s a WHERE a.%I = ANY ($1)',
                   m -> 'accounts' -> 'columns' ->> 'id', m -> 'accounts' -> 'columns' ->> 'slug',
                   keyfall.keyfall_qualified(m -> 'accounts'), m -> 'accounts' -> 'columns' ->> 'id')
       INTO result USING ids;
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    RETURN '{}'::jsonb;
END
$$;

-- The capture: one audit row per changed row of the app's settings table,
-- secrets fingerprinted, the verdicts kept, a notice per row (or one for a
-- bulk statement). Runs with the owner's rights (the app's role needs no
-- grant); never raises into the app's statement.
CREATE OR REPLACE FUNCTION keyfall.keyfall_capture_settings() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $f$
DECLARE
    kf_op     text := lower(TG_OP);
    kf_actor  text;
    spec      jsonb;
    c         jsonb;
    k_id      text;
    k_acc     text;
    k_type    text;
    olds      jsonb[];
    news      jsonb[];
    sample    jsonb;
    fits      boolean;
    why       text;
    slugs     jsonb;
    changed   bigint;
    payloads  text[];
    payload   text;
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

-- TRUNCATE and the users' and accounts' notices, never raising either.
CREATE OR REPLACE FUNCTION keyfall.keyfall_settings_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    audit_id bigint;
BEGIN
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM keyfall.mapping m WHERE (m.places -> 'settings' ->> 'oid')::oid = TG_RELID) THEN
            RETURN NULL;
        END IF;
        DELETE FROM keyfall.row_verdicts;
        INSERT INTO keyfall.audit_log (actor, action, table_name)
        VALUES (keyfall.keyfall_actor(), 'truncate', 'integration_settings')
        RETURNING id INTO audit_id;
        PERFORM pg_notify('keyfall_changes', json_build_object(
            'table', 'integration_settings', 'op', 'truncate', 'bulk', -1, 'audit_id', audit_id)::text);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'keyfall: a TRUNCATE of the app''s settings was not recorded (SQLSTATE %)', SQLSTATE;
    END;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION keyfall.keyfall_announce() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
BEGIN
    BEGIN
        PERFORM pg_notify('keyfall_changes', json_build_object('table', TG_ARGV[0], 'op', lower(TG_OP))::text);
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$$;

-- The three views over the app's tables under keyfall's names, and the
-- checked write path through the settings view (its INSTEAD OF trigger),
-- from a mapping that fits. keyfall's own objects only: nothing on the
-- app's tables. Made by attach and, after a change to the app's tables that
-- still fits, by the DDL watcher (keyfall_ddl_end); dropped before such a
-- change (keyfall_ddl_start), so no view of keyfall's is something an app
-- migration must drop first.
CREATE OR REPLACE FUNCTION keyfall.keyfall_create_views(m jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $function$
DECLARE
    a  jsonb := m -> 'accounts' -> 'columns';
    u  jsonb := m -> 'users' -> 'columns';
    s  jsonb := m -> 'settings' -> 'columns';
    version_expr text;
    updated_at_expr text;
    updated_by_expr text;
    created_at_col text := '';
    body text;
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
    new_id bigint;
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
            INSERT INTO %1$s AS s (%3$I, %4$I, %5$I, %6$I %7$s)
            VALUES (NEW.account_id, NEW.integration_type, coalesce(NEW.config, '{}'::jsonb), coalesce(NEW.is_active, true) %8$s)
            ON CONFLICT (%3$I, %4$I) DO NOTHING
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

-- keyfall's triggers on the app's tables, wherever they are now (a renamed
-- table keeps them): every trigger outside keyfall's schema whose function
-- is keyfall's.
CREATE OR REPLACE FUNCTION keyfall.keyfall_drop_app_triggers() RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT tg.tgname, tg.tgrelid::regclass AS rel
               FROM pg_catalog.pg_trigger tg
               JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
               JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
              WHERE p.pronamespace = 'keyfall'::regnamespace AND c.relnamespace <> 'keyfall'::regnamespace
                AND NOT tg.tgisinternal LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', t.tgname, t.rel);
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_drop_app_triggers() FROM PUBLIC;

-- Install a mapping: keyfall's views and write path (keyfall_create_views),
-- the generic capture on the app's settings table and the notices on its
-- users and accounts tables, every row's verdict, and where each mapped
-- table and column is (for following renames).
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

    -- Every row's verdict, from scratch.
    TRUNCATE keyfall.row_verdicts;
    INSERT INTO keyfall.row_verdicts (setting_id, account_id, integration_type, verdict, provider)
    SELECT id, account_id, integration_type, keyfall.keyfall_row_verdict(integration_type, config, is_active),
           keyfall.keyfall_mask(config -> 'provider')
      FROM keyfall.integration_settings;
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

-- Before a DDL statement that names one of the mapped tables: keyfall's
-- views over them go (they would make an ALTER COLUMN TYPE or a DROP
-- COLUMN fail); keyfall_ddl_end makes them again. Waits at most a second
-- for a keyfall reader of a view, then leaves it (the app's statement is
-- never kept waiting longer by keyfall).
CREATE OR REPLACE FUNCTION keyfall.keyfall_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    q      text;
    named  boolean;
    before text := current_setting('lock_timeout');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM keyfall.mapping)
       OR EXISTS (SELECT 1 FROM keyfall.installing i WHERE i.txid = txid_current())
       OR to_regclass('keyfall.integration_settings') IS NULL THEN
        RETURN;
    END IF;
    q := lower(coalesce(current_query(), ''));
    SELECT bool_or(position(lower(x.name) IN q) > 0) INTO named
      FROM keyfall.mapping m,
           LATERAL (SELECT m.spec -> p ->> 'table' AS name FROM unnest(ARRAY['accounts', 'users', 'settings']) p
                    UNION ALL
                    SELECT c.relname::text FROM unnest(ARRAY['accounts', 'users', 'settings']) p
                      JOIN pg_catalog.pg_class c ON c.oid = (m.places -> p ->> 'oid')::oid) x
     WHERE x.name IS NOT NULL;
    IF coalesce(named, false) THEN
        PERFORM set_config('lock_timeout', '1s', true);
        DROP VIEW IF EXISTS keyfall.integration_settings, keyfall.users, keyfall.accounts;
        PERFORM set_config('lock_timeout', before, true);
    END IF;
EXCEPTION WHEN OTHERS THEN
    PERFORM set_config('lock_timeout', before, true);
    RAISE WARNING 'keyfall: could not set its views aside before this change (SQLSTATE %)', SQLSTATE;
END
$$;

-- After a DDL statement: what happened to a mapped table is recorded; the
-- mapping follows renamed tables and columns; keyfall's views are made
-- again where the mapping fits, and where it does not, keyfall records why
-- and every command says so until `keyfall attach` re-maps (keeping the
-- history). A settings table made again (a migration to zero and back) is
-- attached again once it fits. Never raises into the app's statement.
CREATE OR REPLACE FUNCTION keyfall.keyfall_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    m         record;
    followed  jsonb;
    problems  text[];
    touched   jsonb;
    missing   boolean;
BEGIN
    IF EXISTS (SELECT 1 FROM keyfall.installing i WHERE i.txid = txid_current()) THEN
        RETURN;
    END IF;
    SELECT x.spec, x.places, x.stale INTO m FROM keyfall.mapping x;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT jsonb_agg(jsonb_build_object('command', d.command_tag, 'object', d.object_identity))
      INTO touched
      FROM pg_event_trigger_ddl_commands() d
     WHERE d.classid = 'pg_catalog.pg_class'::regclass
       AND d.objid IN (SELECT (m.places -> p ->> 'oid')::oid FROM unnest(ARRAY['accounts', 'users', 'settings']) p);
    missing := to_regclass('keyfall.integration_settings') IS NULL;
    -- Unrelated DDL costs one catalog look-up. Statements that can take a
    -- fitting mapping away without naming its tables (an index or a schema
    -- dropped, a schema renamed) are checked in full.
    IF touched IS NULL AND NOT missing AND m.stale IS NULL
       AND tg_tag NOT IN ('DROP INDEX', 'DROP SCHEMA', 'ALTER SCHEMA') THEN
        RETURN;
    END IF;
    IF touched IS NOT NULL THEN
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        VALUES (keyfall.keyfall_actor(), 'app_ddl', 'keyfall', jsonb_build_object('commands', touched));
    END IF;
    followed := keyfall.keyfall_mapping_followed(m.spec, m.places);
    problems := keyfall.keyfall_mapping_problems(followed);
    IF cardinality(problems) = 0 THEN
        IF to_regclass(keyfall.keyfall_qualified(followed -> 'settings'))::oid
           IS DISTINCT FROM (m.places -> 'settings' ->> 'oid')::oid THEN
            -- A settings table made again: attach it (the capture goes on it).
            PERFORM keyfall.keyfall_install_mapping(followed);
        ELSE
            INSERT INTO keyfall.installing (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
            IF missing OR followed <> m.spec THEN
                PERFORM keyfall.keyfall_create_views(followed);
            END IF;
            UPDATE keyfall.mapping SET spec = followed, places = keyfall.keyfall_mapping_places(followed),
                                       stale = NULL, stale_since = NULL;
            DELETE FROM keyfall.installing WHERE txid = txid_current();
        END IF;
        IF followed <> m.spec OR m.stale IS NOT NULL THEN
            INSERT INTO keyfall.audit_log (actor, action, table_name, after)
            VALUES (keyfall.keyfall_actor(), 'app_followed', 'keyfall',
                    jsonb_build_object('was', m.spec, 'now', followed, 'fitted_again', m.stale IS NOT NULL));
        END IF;
    ELSIF m.stale IS DISTINCT FROM array_to_string(problems, '; ') THEN
        UPDATE keyfall.mapping SET stale = array_to_string(problems, '; '), stale_since = coalesce(stale_since, now());
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        VALUES (keyfall.keyfall_actor(), 'app_changed', 'keyfall', jsonb_build_object('problems', to_jsonb(problems)));
    END IF;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'keyfall: could not follow this change to the app''s tables (SQLSTATE %): `keyfall attach` re-maps', SQLSTATE;
END
$$;

-- Event triggers need a superuser (as 0007's).
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        DROP EVENT TRIGGER IF EXISTS keyfall_ddl_start;
        CREATE EVENT TRIGGER keyfall_ddl_start ON ddl_command_start
            WHEN TAG IN ('ALTER TABLE', 'DROP TABLE')
            EXECUTE FUNCTION keyfall.keyfall_ddl_start();
        DROP EVENT TRIGGER IF EXISTS keyfall_ddl_end;
        CREATE EVENT TRIGGER keyfall_ddl_end ON ddl_command_end
            WHEN TAG IN ('ALTER TABLE', 'DROP TABLE', 'CREATE TABLE', 'CREATE INDEX', 'ALTER INDEX', 'DROP INDEX',
                         'DROP SCHEMA', 'ALTER SCHEMA')
            EXECUTE FUNCTION keyfall.keyfall_ddl_end();
    END IF;
END
$$;

-- The start-up check of every command (one round trip): what the DDL
-- watcher keeps in keyfall.mapping.stale, instead of inspecting the app's
-- tables in every process (~6 ms of server time), whenever the watcher is
-- installed and enabled; without it, the full inspection as before.
CREATE OR REPLACE FUNCTION keyfall.keyfall_preflight() RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
BEGIN
    RETURN jsonb_build_object(
        'migrations', coalesce((SELECT jsonb_agg(jsonb_build_array(m.version, encode(m.checksum, 'hex')) ORDER BY m.version)
                                  FROM keyfall._sqlx_migrations m WHERE m.success), '[]'::jsonb),
        'mapping', (SELECT x.spec FROM keyfall.mapping x LIMIT 1),
        'problems', coalesce((SELECT CASE
                                  WHEN x.places IS NOT NULL AND EXISTS (
                                           SELECT 1 FROM pg_catalog.pg_event_trigger e
                                            WHERE e.evtname = 'keyfall_ddl_end' AND e.evtenabled <> 'D')
                                  THEN coalesce(to_jsonb(string_to_array(x.stale, '; ')), '[]'::jsonb)
                                  ELSE to_jsonb(keyfall.keyfall_mapping_problems(x.spec)) END
                                FROM keyfall.mapping x LIMIT 1), '[]'::jsonb),
        'whoami', keyfall.keyfall_whoami());
END
$$;

SELECT keyfall.keyfall_harden();

-- An installed mapping is made again with the generic capture.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        PERFORM keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping));
    END IF;
END
$$;
-- The trigger function each mapping used to generate is no longer used.
DROP FUNCTION IF EXISTS keyfall.keyfall_settings_audit();
