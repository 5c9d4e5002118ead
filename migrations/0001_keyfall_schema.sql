-- keyfall's own objects, all in the schema `keyfall` (DESIGN §5), so keyfall
-- can share a database with the app it describes. The app's accounts, users
-- and settings tables are NOT created here: they are the app's, named by a
-- mapping (keyfall_install_mapping below) that builds views over them in
-- this schema and puts the audit triggers on the settings table. keyfall's
-- connections run with `search_path = keyfall`, so every query reads the
-- mapped views under keyfall's own names.
--
-- Migrations are append-only: change the schema in a new file. This file
-- also moves a database of keyfall's first layout (everything in `public`,
-- migration history in public._sqlx_migrations) into this one, keeping the
-- chain, the policy, the functions and the whole audit log.

DO $legacy$
BEGIN
    IF to_regclass('public._sqlx_migrations') IS NOT NULL
       AND to_regclass('public.audit_log') IS NOT NULL
       AND to_regclass('public.fallback_chain') IS NOT NULL THEN
        -- The old functions, with everything that used them: the triggers
        -- on the demo tables, the generated verdict column.
        DROP FUNCTION IF EXISTS public.keyfall_settings_audit() CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_settings_stamp() CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_config_audit() CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_audit_append_only() CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_row_verdict(text, jsonb, boolean) CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_field_problem(jsonb, text, text, boolean) CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_redact(jsonb) CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_is_secret_key(text) CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_fingerprint(text) CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_actor() CASCADE;
        DROP FUNCTION IF EXISTS public.keyfall_finite(timestamptz) CASCADE;
        -- keyfall's tables move, rows, sequences and indexes with them.
        ALTER TABLE public.fallback_chain SET SCHEMA keyfall;
        ALTER TABLE public.ai_functions SET SCHEMA keyfall;
        ALTER TABLE public.policy SET SCHEMA keyfall;
        ALTER TABLE public.audit_log SET SCHEMA keyfall;
        DROP TABLE public._sqlx_migrations;
        -- The demo tables stay in public as keyfall's demo "app"; their
        -- version stamp is the demo app's own trigger, as in a fresh demo.
        IF to_regclass('public.integration_settings') IS NOT NULL THEN
            EXECUTE $stamp$
                CREATE OR REPLACE FUNCTION public.demo_settings_stamp() RETURNS trigger
                LANGUAGE plpgsql AS $f$
                BEGIN
                    IF TG_OP = 'UPDATE' THEN
                        NEW.version := OLD.version + 1;
                    END IF;
                    NEW.updated_at := clock_timestamp();
                    NEW.updated_by := coalesce(nullif(current_setting('keyfall.actor', true), ''), session_user::text);
                    RETURN NEW;
                END
                $f$;
                DROP TRIGGER IF EXISTS demo_settings_stamp ON public.integration_settings;
                CREATE TRIGGER demo_settings_stamp BEFORE INSERT OR UPDATE ON public.integration_settings
                    FOR EACH ROW EXECUTE FUNCTION public.demo_settings_stamp();
            $stamp$;
        END IF;
    END IF;
END
$legacy$;

-- The system fallback chain, as data. It names slugs, not ids, so a chain
-- entry may point at an account that does not exist (lint L005).
DO $tables$
BEGIN
    IF to_regclass('keyfall.fallback_chain') IS NULL THEN
        CREATE TABLE keyfall.fallback_chain (
            position     integer PRIMARY KEY CHECK (position >= 1),
            account_slug text NOT NULL UNIQUE
        );
        INSERT INTO keyfall.fallback_chain (position, account_slug)
        VALUES (1, 'aws-admin'), (2, 'default-account'), (3, 'default');
    END IF;
    IF to_regclass('keyfall.ai_functions') IS NULL THEN
        CREATE TABLE keyfall.ai_functions (
            name             text PRIMARY KEY,
            integration_type text NOT NULL
        );
        INSERT INTO keyfall.ai_functions (name, integration_type) VALUES
            ('auto_cluster', 'openai'),
            ('generate_ideas', 'openai'),
            ('generate_content', 'openai'),
            ('generate_image_prompts', 'openai'),
            ('generate_images', 'image_generation');
    END IF;
    -- Exactly one row: the permission policy in force.
    IF to_regclass('keyfall.policy') IS NULL THEN
        CREATE TABLE keyfall.policy (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            mode      text NOT NULL DEFAULT 'system_only'
                      CHECK (mode IN ('system_only', 'per_account', 'hybrid_readonly'))
        );
        INSERT INTO keyfall.policy (mode) VALUES ('system_only');
    END IF;
    IF to_regclass('keyfall.audit_log') IS NULL THEN
        CREATE TABLE keyfall.audit_log (
            id               bigserial PRIMARY KEY,
            at               timestamptz NOT NULL DEFAULT clock_timestamp(),
            actor            text NOT NULL,
            action           text NOT NULL,
            table_name       text NOT NULL,
            row_id           bigint,
            account_id       bigint,
            account_slug     text,
            integration_type text,
            before           jsonb,
            after            jsonb,
            txid             bigint NOT NULL DEFAULT txid_current()
        );
        CREATE INDEX audit_log_setting ON keyfall.audit_log (account_id, integration_type, id);
        CREATE INDEX audit_log_at ON keyfall.audit_log (at);
    END IF;
END
$tables$;

-- `keyfall audit --account SLUG` filters by slug; the last writer of a row
-- (shown where the app's table has no updated_by) is found by row id.
-- The database login of every audit row, set by the database: next to the
-- operator keyfall names, it cannot be claimed.
ALTER TABLE keyfall.audit_log ADD COLUMN IF NOT EXISTS db_login text;
ALTER TABLE keyfall.audit_log ALTER COLUMN db_login SET DEFAULT session_user;
CREATE INDEX IF NOT EXISTS audit_log_slug ON keyfall.audit_log (account_slug, integration_type, id);
CREATE INDEX IF NOT EXISTS audit_log_row ON keyfall.audit_log (table_name, row_id, id);

-- Each app setting's verdict (keyfall_row_verdict), kept by the audit
-- trigger on every write by any client and refilled whenever a mapping is
-- installed: the report and the impact preview join it instead of judging
-- 250,000 configs per query. keyfall's own table; the app's stay untouched.
CREATE TABLE keyfall.row_verdicts (
    setting_id       bigint PRIMARY KEY,
    account_id       bigint NOT NULL,
    integration_type text NOT NULL,
    verdict          text NOT NULL,
    provider         jsonb
);
CREATE INDEX row_verdicts_account ON keyfall.row_verdicts (account_id, integration_type);
CREATE INDEX row_verdicts_type ON keyfall.row_verdicts (integration_type);

-- The mapping in force: which app tables and columns keyfall reads (DESIGN
-- §5). Written by keyfall_install_mapping only.
CREATE TABLE keyfall.mapping (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    spec         jsonb NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now()
);

-- Secret field names fold case in ASCII only, exactly as
-- domain::secret::is_secret_field does.
CREATE FUNCTION keyfall.keyfall_is_secret_key(k text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT translate(replace(replace(k, '_', ''), '-', ''),
                     'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
           ~ '(apikey|secret|password|token|secretkey)$'
$$;

-- Mirrors domain::secret::fingerprint: '#' + 8 hex of SHA-256.
CREATE FUNCTION keyfall.keyfall_fingerprint(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '#' || left(encode(sha256(convert_to(v, 'UTF8')), 'hex'), 8)
$$;

-- A copy of a JSON document with every secret value replaced by its
-- fingerprint, at any depth. Empty strings and nulls stay as they are.
CREATE FUNCTION keyfall.keyfall_redact(doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    result jsonb;
BEGIN
    IF doc IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(doc) = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key,
                   CASE
                       WHEN NOT keyfall.keyfall_is_secret_key(key) THEN keyfall.keyfall_redact(value)
                       WHEN jsonb_typeof(value) = 'null' THEN value
                       WHEN jsonb_typeof(value) = 'string' AND value #>> '{}' = '' THEN value
                       WHEN jsonb_typeof(value) = 'string' THEN to_jsonb(keyfall.keyfall_fingerprint(value #>> '{}'))
                       ELSE to_jsonb(keyfall.keyfall_fingerprint(value::text))
                   END), '{}'::jsonb)
          INTO result
          FROM jsonb_each(doc);
        RETURN result;
    ELSIF jsonb_typeof(doc) = 'array' THEN
        SELECT coalesce(jsonb_agg(keyfall.keyfall_redact(value) ORDER BY ord), '[]'::jsonb)
          INTO result
          FROM jsonb_array_elements(doc) WITH ORDINALITY AS e(value, ord);
        RETURN result;
    ELSE
        RETURN doc;
    END IF;
END
$$;

-- Who is writing: keyfall names its operator with SET LOCAL keyfall.actor;
-- any other client (the Django app, psql) is its database role.
-- Which app users a database login may act as (DESIGN §4): the operator
-- map, kept by `keyfall operator add/remove` (the schema owner's job).
CREATE TABLE keyfall.operators (
    login    text NOT NULL,
    email    text NOT NULL CHECK (email = lower(email)),
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (login, email)
);

-- Whether the session's login is a database superuser.
CREATE FUNCTION keyfall.keyfall_login_is_superuser() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user), false)
$$;

-- May this session's login act as the app user `email`? A superuser may
-- act as anyone (the audit log records the login all the same).
-- ($1, not the parameter's name: inside the query `email` would be the
-- column.)
CREATE FUNCTION keyfall.keyfall_may_act_as(email text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
    SELECT keyfall.keyfall_login_is_superuser()
        OR EXISTS (SELECT 1 FROM keyfall.operators o WHERE o.login = session_user AND o.email = lower($1))
$$;

-- Who keyfall's session says it is (`SET LOCAL keyfall.actor`), without a
-- trailing note such as " (overwrite)".
CREATE FUNCTION keyfall.keyfall_claimed() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT nullif(split_part(coalesce(current_setting('keyfall.actor', true), ''), ' (', 1), '')
$$;

-- The actor the audit log records: the claimed operator when the login may
-- act as them, else the login itself, with the refused claim shown. Any
-- client (the Django app, psql) that claims nothing is its database role.
CREATE FUNCTION keyfall.keyfall_actor() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
    SELECT CASE
        WHEN keyfall.keyfall_claimed() IS NULL THEN session_user::text
        WHEN keyfall.keyfall_may_act_as(keyfall.keyfall_claimed())
             THEN current_setting('keyfall.actor', true)
        ELSE session_user::text || ' (claimed ' || left(current_setting('keyfall.actor', true), 200) || ')'
    END
$$;

-- 'infinity' is a valid timestamptz that no client time type can hold:
-- reads clamp it to a finite value rather than fail.
CREATE FUNCTION keyfall.keyfall_finite(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t IS NULL OR t = '-infinity' THEN '0001-01-01 00:00:00+00'::timestamptz
                WHEN t = 'infinity' THEN '9999-12-31 00:00:00+00'::timestamptz
                ELSE t END
$$;

-- The chain, the policy and the function map change who resolves where, so
-- they are audited and announced too (whole rows; they hold no secrets).
CREATE FUNCTION keyfall.keyfall_config_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
DECLARE
    audit_id bigint;
BEGIN
    INSERT INTO keyfall.audit_log (actor, action, table_name, before, after)
    VALUES (keyfall.keyfall_actor(), lower(TG_OP), TG_TABLE_NAME,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END)
    RETURNING id INTO audit_id;
    PERFORM pg_notify('keyfall_changes', json_build_object(
        'table', TG_TABLE_NAME, 'op', lower(TG_OP), 'audit_id', audit_id)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER fallback_chain_audit AFTER INSERT OR UPDATE OR DELETE ON keyfall.fallback_chain
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();
CREATE TRIGGER policy_audit AFTER INSERT OR UPDATE OR DELETE ON keyfall.policy
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();
CREATE TRIGGER ai_functions_audit AFTER INSERT OR UPDATE OR DELETE ON keyfall.ai_functions
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();
CREATE TRIGGER operators_audit AFTER INSERT OR UPDATE OR DELETE ON keyfall.operators
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();

-- The audit log is append-only, for every role including the owner.
CREATE FUNCTION keyfall.keyfall_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON keyfall.audit_log
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON keyfall.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_audit_append_only();

-- Python's truthiness of a JSON value as the app's json.loads makes it: the
-- app tests `if not value`. A missing value (SQL NULL) is falsy.
CREATE FUNCTION keyfall.keyfall_py_truthy(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'boolean' THEN v = 'true'::jsonb
        WHEN 'number' THEN (v::text)::numeric <> 0
        WHEN 'string' THEN v #>> '{}' <> ''
        WHEN 'array' THEN jsonb_array_length(v) > 0
        WHEN 'object' THEN v <> '{}'::jsonb
        ELSE false
    END
$$;

-- Blank as Python's str.strip() sees it: the characters str.isspace() calls
-- whitespace (Unicode White_Space plus U+001C..U+001F). Mirrors
-- domain::registry::is_blank.
CREATE FUNCTION keyfall.keyfall_py_blank(s text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT btrim(s, E' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f' || chr(133) || chr(160) || chr(5760)
                    || chr(8192) || chr(8193) || chr(8194) || chr(8195) || chr(8196) || chr(8197)
                    || chr(8198) || chr(8199) || chr(8200) || chr(8201) || chr(8202)
                    || chr(8232) || chr(8233) || chr(8239) || chr(8287) || chr(12288)) = ''
$$;

-- One registry field's problem, if any (a wrong type, out of range, a
-- provider reference naming no provider type). Absent or null is fine.
CREATE FUNCTION keyfall.keyfall_field_problem(config jsonb, field text, kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN NOT (config ? field) OR jsonb_typeof(config -> field) = 'null' THEN false
        WHEN kind = 'text' THEN jsonb_typeof(config -> field) <> 'string'
        WHEN kind = 'provider' THEN jsonb_typeof(config -> field) <> 'string'
                                 OR (config ->> field) NOT IN ('openai', 'runware')
        WHEN jsonb_typeof(config -> field) <> 'number' THEN kind IN ('temperature', 'positive_int')
        WHEN kind = 'temperature' THEN (config ->> field)::numeric NOT BETWEEN 0 AND 2
        WHEN kind = 'positive_int' THEN (config ->> field) !~ '^-?[0-9]+$'
                                 OR (config ->> field)::numeric NOT BETWEEN 1 AND 9223372036854775807
        ELSE false
    END
$$;

-- One row's verdict (DESIGN §2), set-based twin of domain::registry's row
-- judgement; the report-equivalence property test holds the two together.
-- First match wins: inactive → invalid_config (not an object) → providers:
-- no_api_key (apiKey Python-falsy, or a string blank to str.strip()),
-- key_not_string (truthy, not a string: the app's .strip() raises) →
-- consumers: no_provider (provider Python-falsy) → bad_fields (a registry
-- field wrong-typed or out of range, an unknown provider) → answered. Which
-- verdicts move the walk on, fail it, or answer is the caller's [resolution]
-- rule set, bound as parameters.
CREATE FUNCTION keyfall.keyfall_row_verdict(integration_type text, config jsonb, is_active boolean)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN NOT is_active THEN 'inactive'
        WHEN jsonb_typeof(config) IS DISTINCT FROM 'object' THEN 'invalid_config'
        WHEN integration_type IN ('openai', 'runware')
             AND NOT keyfall.keyfall_py_truthy(config -> 'apiKey') THEN 'no_api_key'
        WHEN integration_type IN ('openai', 'runware')
             AND jsonb_typeof(config -> 'apiKey') <> 'string' THEN 'key_not_string'
        WHEN integration_type IN ('openai', 'runware')
             AND keyfall.keyfall_py_blank(config ->> 'apiKey') THEN 'no_api_key'
        WHEN integration_type = 'image_generation'
             AND NOT keyfall.keyfall_py_truthy(config -> 'provider') THEN 'no_provider'
        WHEN integration_type = 'openai' AND (
                keyfall.keyfall_field_problem(config, 'model', 'text')
             OR keyfall.keyfall_field_problem(config, 'base_url', 'text')
             OR keyfall.keyfall_field_problem(config, 'temperature', 'temperature')
             OR keyfall.keyfall_field_problem(config, 'max_tokens', 'positive_int'))
             THEN 'bad_fields'
        WHEN integration_type = 'runware' AND (
                keyfall.keyfall_field_problem(config, 'model', 'text')
             OR keyfall.keyfall_field_problem(config, 'base_url', 'text'))
             THEN 'bad_fields'
        WHEN integration_type = 'image_generation' AND (
                keyfall.keyfall_field_problem(config, 'provider', 'provider')
             OR keyfall.keyfall_field_problem(config, 'model', 'text')
             OR keyfall.keyfall_field_problem(config, 'image_size', 'text')
             OR keyfall.keyfall_field_problem(config, 'quality', 'text')
             OR keyfall.keyfall_field_problem(config, 'style', 'text'))
             THEN 'bad_fields'
        ELSE 'answered'
    END
$$;

-- A mapped table as `schema.table`, quoted.
CREATE FUNCTION keyfall.keyfall_qualified(t jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('%I.%I', t ->> 'schema', t ->> 'table')
$$;

-- What does not fit in a mapping (DESIGN §5), one sentence each; empty when
-- it fits. `m` is the mapping as keyfall's config makes it (store::mapping).
CREATE FUNCTION keyfall.keyfall_mapping_problems(m jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog AS $$
DECLARE
    problems text[] := '{}';
    part     text;
    col      record;
    rel      regclass;
    typ      text;
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
            SELECT format_type(a.atttypid, NULL) INTO typ
              FROM pg_attribute a
             WHERE a.attrelid = rel AND a.attname = col.name AND a.attnum > 0 AND NOT a.attisdropped;
            IF typ IS NULL THEN
                problems := problems || format('%s: column %I (for %s) does not exist in %s',
                                               part, col.name, col.role, rel::text);
            ELSIF col.role = 'config' AND typ <> 'jsonb' THEN
                problems := problems || format('%s.%I is %s; keyfall needs jsonb (Django''s JSONField on PostgreSQL)',
                                               rel::text, col.name, typ);
            ELSIF col.role IN ('is_active', 'is_superuser') AND typ <> 'boolean' THEN
                problems := problems || format('%s.%I is %s, not boolean', rel::text, col.name, typ);
            ELSIF part = 'settings' AND col.role = 'account_id' AND typ <> 'bigint' THEN
                problems := problems || format('%s.%I is %s; keyfall writes settings and needs bigint ids (Django''s BigAutoField)',
                                               rel::text, col.name, typ);
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

-- A CASE mapping an app column's values onto keyfall's names (statuses,
-- roles); values not listed pass through as they are.
CREATE FUNCTION keyfall.keyfall_value_map(expr text, vals jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out  text := '';
    item record;
BEGIN
    FOR item IN SELECT key, value FROM jsonb_each(coalesce(vals, '{}'::jsonb)) ORDER BY key LOOP
        out := out || format(' WHEN %s = ANY (%L::text[]) THEN %L',
                             expr, ARRAY(SELECT jsonb_array_elements_text(item.value)), item.key);
    END LOOP;
    IF out = '' THEN
        RETURN expr;
    END IF;
    RETURN 'CASE' || out || ' ELSE ' || expr || ' END';
END
$$;

-- Remove what a mapping put on the app's tables: the audit triggers on the
-- settings table and the announcing ones on users and accounts. Nothing
-- else of keyfall's touches the app's tables.
CREATE FUNCTION keyfall.keyfall_drop_app_triggers() RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog AS $$
DECLARE
    spec jsonb;
    rel  regclass;
    part text;
BEGIN
    SELECT m.spec INTO spec FROM keyfall.mapping m;
    IF spec IS NULL THEN
        RETURN;
    END IF;
    rel := to_regclass(keyfall.keyfall_qualified(spec -> 'settings'));
    IF rel IS NOT NULL THEN
        EXECUTE format('DROP TRIGGER IF EXISTS keyfall_audit_insert ON %s', rel);
        EXECUTE format('DROP TRIGGER IF EXISTS keyfall_audit_update ON %s', rel);
        EXECUTE format('DROP TRIGGER IF EXISTS keyfall_audit_delete ON %s', rel);
        EXECUTE format('DROP TRIGGER IF EXISTS keyfall_audit_truncate ON %s', rel);
    END IF;
    FOREACH part IN ARRAY ARRAY['users', 'accounts'] LOOP
        rel := to_regclass(keyfall.keyfall_qualified(spec -> part));
        IF rel IS NOT NULL THEN
            EXECUTE format('DROP TRIGGER IF EXISTS keyfall_announce ON %s', rel);
        END IF;
    END LOOP;
END
$$;

-- A change to the app's users or accounts, announced (no contents).
CREATE FUNCTION keyfall.keyfall_announce() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
BEGIN
    PERFORM pg_notify('keyfall_changes', json_build_object('table', TG_ARGV[0], 'op', lower(TG_OP))::text);
    RETURN NULL;
END
$$;

-- TRUNCATE fires no row triggers: it is audited (one row, no contents) and
-- announced as a bulk change here, and the verdicts go with the rows.
CREATE FUNCTION keyfall.keyfall_settings_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
DECLARE
    audit_id bigint;
BEGIN
    DELETE FROM keyfall.row_verdicts;
    INSERT INTO keyfall.audit_log (actor, action, table_name)
    VALUES (keyfall.keyfall_actor(), 'truncate', 'integration_settings')
    RETURNING id INTO audit_id;
    PERFORM pg_notify('keyfall_changes', json_build_object(
        'table', 'integration_settings', 'op', 'truncate', 'bulk', -1, 'audit_id', audit_id)::text);
    RETURN NULL;
END
$$;

-- Install a mapping: views `keyfall.accounts`, `keyfall.users`,
-- `keyfall.integration_settings` over the app's tables under keyfall's
-- names, and the audit triggers on the app's settings table. Identifiers are
-- quoted by format('%I'); nothing from the mapping is spliced unquoted.
CREATE FUNCTION keyfall.keyfall_install_mapping(m jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog AS $$
DECLARE
    problems text[];
    a  jsonb := m -> 'accounts' -> 'columns';
    u  jsonb := m -> 'users' -> 'columns';
    s  jsonb := m -> 'settings' -> 'columns';
    version_expr text;
    version_audit text := '';
    version_audit_old text := '';
    updated_at_expr text;
    updated_by_expr text;
    created_at_col text := '';
    body text;
BEGIN
    problems := keyfall.keyfall_mapping_problems(m);
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'the mapping does not fit this database: %', array_to_string(problems, '; ')
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM keyfall.keyfall_drop_app_triggers();
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
        version_audit := format(', ''version'', n.%I', s ->> 'version');
        version_audit_old := format(', ''version'', o.%I', s ->> 'version');
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
    EXECUTE format(
        'CREATE VIEW keyfall.integration_settings AS SELECT s.%I::bigint AS id, s.%I AS account_id,'
        ' s.%I AS integration_type,'
        ' CASE WHEN keyfall.keyfall_sees_raw() THEN s.%I ELSE keyfall.keyfall_mask(s.%I) END AS config,'
        ' s.%I AS is_active, %s AS version, %s AS updated_at, %s AS updated_by%s FROM %s s',
        s ->> 'id', s ->> 'account_id', s ->> 'integration_type', s ->> 'config', s ->> 'config', s ->> 'is_active',
        version_expr, updated_at_expr, updated_by_expr, created_at_col,
        keyfall.keyfall_qualified(m -> 'settings'));
    -- Django's auto_now fields have no database default: rows keyfall
    -- creates get them here.
    IF jsonb_typeof(s -> 'updated_at') = 'string' THEN
        ALTER VIEW keyfall.integration_settings ALTER COLUMN updated_at SET DEFAULT now();
    END IF;
    IF created_at_col <> '' THEN
        ALTER VIEW keyfall.integration_settings ALTER COLUMN created_at SET DEFAULT now();
    END IF;

    -- The audit trigger of this table: statement-level with transition
    -- tables, one audit row per changed row, secrets fingerprinted here.
    -- SECURITY DEFINER: the app's own role writes the audit log through it
    -- without any grant on keyfall's schema; the actor is still the
    -- session's (keyfall_actor reads session_user).
    body := format($body$
CREATE OR REPLACE FUNCTION keyfall.keyfall_settings_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $f$
DECLARE
    kf_op       text := lower(TG_OP);
    kf_changed  bigint;
    kf_payloads text[];
    kf_payload  text;
BEGIN
    -- Only on the mapped table: nobody may fire this elsewhere.
    IF TG_RELID <> %8$L::regclass THEN
        RAISE EXCEPTION 'keyfall_settings_audit fires on %8$s only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        WITH ins AS (
            INSERT INTO keyfall.audit_log (actor, action, table_name, row_id, account_id, account_slug,
                                           integration_type, before, after)
            SELECT keyfall.keyfall_actor(), kf_op, 'integration_settings', n.%1$I, n.%2$I, a.slug, n.%3$I, NULL,
                   jsonb_build_object('config', keyfall.keyfall_redact(n.%4$I), 'is_active', n.%5$I %6$s)
              FROM new_rows n LEFT JOIN keyfall.accounts a ON a.id = n.%2$I
            RETURNING id, row_id, account_id
        )
        SELECT count(*), array_agg(json_build_object('table', 'integration_settings', 'op', kf_op,
                   'id', row_id, 'account_id', account_id, 'audit_id', id)::text) FILTER (WHERE rn <= 100)
          INTO kf_changed, kf_payloads
          FROM (SELECT *, row_number() OVER () AS rn FROM ins) x;
        INSERT INTO keyfall.row_verdicts (setting_id, account_id, integration_type, verdict, provider)
        SELECT n.%1$I, n.%2$I, n.%3$I, keyfall.keyfall_row_verdict(n.%3$I, n.%4$I, n.%5$I), keyfall.keyfall_mask(n.%4$I -> 'provider')
          FROM new_rows n
        ON CONFLICT (setting_id) DO UPDATE
           SET account_id = EXCLUDED.account_id, integration_type = EXCLUDED.integration_type,
               verdict = EXCLUDED.verdict, provider = EXCLUDED.provider;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH ins AS (
            INSERT INTO keyfall.audit_log (actor, action, table_name, row_id, account_id, account_slug,
                                           integration_type, before, after)
            SELECT keyfall.keyfall_actor(), kf_op, 'integration_settings', n.%1$I, n.%2$I, a.slug, n.%3$I,
                   jsonb_build_object('config', keyfall.keyfall_redact(o.%4$I), 'is_active', o.%5$I %7$s),
                   jsonb_build_object('config', keyfall.keyfall_redact(n.%4$I), 'is_active', n.%5$I %6$s)
              FROM new_rows n JOIN old_rows o ON o.%1$I = n.%1$I
              LEFT JOIN keyfall.accounts a ON a.id = n.%2$I
            RETURNING id, row_id, account_id
        )
        SELECT count(*), array_agg(json_build_object('table', 'integration_settings', 'op', kf_op,
                   'id', row_id, 'account_id', account_id, 'audit_id', id)::text) FILTER (WHERE rn <= 100)
          INTO kf_changed, kf_payloads
          FROM (SELECT *, row_number() OVER () AS rn FROM ins) x;
        DELETE FROM keyfall.row_verdicts r
         USING old_rows o
         WHERE r.setting_id = o.%1$I AND NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.%1$I = o.%1$I);
        INSERT INTO keyfall.row_verdicts (setting_id, account_id, integration_type, verdict, provider)
        SELECT n.%1$I, n.%2$I, n.%3$I, keyfall.keyfall_row_verdict(n.%3$I, n.%4$I, n.%5$I), keyfall.keyfall_mask(n.%4$I -> 'provider')
          FROM new_rows n
        ON CONFLICT (setting_id) DO UPDATE
           SET account_id = EXCLUDED.account_id, integration_type = EXCLUDED.integration_type,
               verdict = EXCLUDED.verdict, provider = EXCLUDED.provider;
    ELSE
        WITH ins AS (
            INSERT INTO keyfall.audit_log (actor, action, table_name, row_id, account_id, account_slug,
                                           integration_type, before, after)
            SELECT keyfall.keyfall_actor(), kf_op, 'integration_settings', o.%1$I, o.%2$I, a.slug, o.%3$I,
                   jsonb_build_object('config', keyfall.keyfall_redact(o.%4$I), 'is_active', o.%5$I %7$s),
                   NULL
              FROM old_rows o LEFT JOIN keyfall.accounts a ON a.id = o.%2$I
            RETURNING id, row_id, account_id
        )
        SELECT count(*), array_agg(json_build_object('table', 'integration_settings', 'op', kf_op,
                   'id', row_id, 'account_id', account_id, 'audit_id', id)::text) FILTER (WHERE rn <= 100)
          INTO kf_changed, kf_payloads
          FROM (SELECT *, row_number() OVER () AS rn FROM ins) x;
        DELETE FROM keyfall.row_verdicts r USING old_rows o WHERE r.setting_id = o.%1$I;
    END IF;
    IF kf_changed <= 100 THEN
        FOREACH kf_payload IN ARRAY coalesce(kf_payloads, '{}'::text[]) LOOP
            PERFORM pg_notify('keyfall_changes', kf_payload);
        END LOOP;
    ELSE
        PERFORM pg_notify('keyfall_changes', json_build_object(
            'table', 'integration_settings', 'op', kf_op, 'bulk', kf_changed)::text);
    END IF;
    RETURN NULL;
END
$f$
$body$, s ->> 'id', s ->> 'account_id', s ->> 'integration_type', s ->> 'config', s ->> 'is_active',
        version_audit, version_audit_old, keyfall.keyfall_qualified(m -> 'settings'));
    EXECUTE body;
    EXECUTE format('CREATE TRIGGER keyfall_audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_settings_audit()',
                   keyfall.keyfall_qualified(m -> 'settings'));
    EXECUTE format('CREATE TRIGGER keyfall_audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows'
                   ' NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_settings_audit()',
                   keyfall.keyfall_qualified(m -> 'settings'));
    EXECUTE format('CREATE TRIGGER keyfall_audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_settings_audit()',
                   keyfall.keyfall_qualified(m -> 'settings'));
    EXECUTE format('CREATE TRIGGER keyfall_audit_truncate AFTER TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_settings_truncate()',
                   keyfall.keyfall_qualified(m -> 'settings'));

    -- Changes to the app's users and accounts change who may do what (and
    -- which accounts exist): announced like settings changes, rows never
    -- touched, nothing recorded.
    EXECUTE format('CREATE TRIGGER keyfall_announce AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_announce(%L)',
                   keyfall.keyfall_qualified(m -> 'users'), 'users');
    EXECUTE format('CREATE TRIGGER keyfall_announce AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_announce(%L)',
                   keyfall.keyfall_qualified(m -> 'accounts'), 'accounts');

    -- Writes through keyfall's view go through this function: it asks the
    -- database's own copy of the permission rules, for the operator the
    -- login may act as, at the moment of the write; then writes the app's
    -- row, only if it is still at the version keyfall read (a concurrent
    -- writer makes it match nothing: a conflict, never an overwrite).
    body := format($body$
CREATE OR REPLACE FUNCTION keyfall.keyfall_settings_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $f$
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
    -- Trigger functions run with the owner's rights: nobody may call them
    -- or put them on objects of their own.
    REVOKE EXECUTE ON FUNCTION keyfall.keyfall_settings_write() FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION keyfall.keyfall_settings_audit() FROM PUBLIC;

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
    INSERT INTO keyfall.mapping (spec) VALUES (m);
END
$$;

-- Installing and removing a mapping is the schema owner's job: no operator
-- role may run them.
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_install_mapping(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_drop_app_triggers() FROM PUBLIC;

-- The permission rules of DESIGN §4 (domain::permissions::evaluate), for
-- the checks the database makes at each write: the names of the checks
-- that fail for `email` doing `action` on the settings of `account_id`
-- (NULL: the system settings) under the policy in force; empty when
-- allowed. A property test holds this equal to the Rust evaluator.
CREATE FUNCTION keyfall.keyfall_failing_checks(email text, action text, account_id bigint) RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
DECLARE
    u        record;
    acc      record;
    mode     text;
    target_system boolean;
    active   boolean := false;
    tenant   boolean := false;
    sysdev   boolean := false;
    owner    boolean := false;
    failing  text[] := '{}';
BEGIN
    -- The one user with this email in any case; two that differ only in
    -- case (a case-sensitive app allows it) are nobody: no login may act
    -- as an ambiguous name.
    SELECT * INTO u FROM keyfall.users x
     WHERE lower(x.email) = lower(keyfall_failing_checks.email)
       AND (SELECT count(*) FROM keyfall.users y WHERE lower(y.email) = lower(keyfall_failing_checks.email)) = 1;
    SELECT p.mode INTO mode FROM keyfall.policy p LIMIT 1;
    mode := coalesce(mode, 'system_only');
    target_system := keyfall_failing_checks.account_id IS NULL OR EXISTS (
        SELECT 1 FROM keyfall.accounts a JOIN keyfall.fallback_chain c ON c.account_slug = a.slug
         WHERE a.id = keyfall_failing_checks.account_id);
    IF u.id IS NOT NULL THEN
        active := u.is_active;
        SELECT a.id, a.slug, a.status INTO acc FROM keyfall.accounts a WHERE a.id = u.account_id;
        tenant := acc.id IS NOT NULL AND acc.status IN ('active', 'trial');
        sysdev := u.is_superuser OR u.role IN ('developer', 'system_bot')
                  OR (acc.id IS NOT NULL AND EXISTS (SELECT 1 FROM keyfall.fallback_chain c
                                                      WHERE c.account_slug = acc.slug));
        owner := acc.id IS NOT NULL AND acc.id = keyfall_failing_checks.account_id
                 AND NOT target_system AND u.role IN ('owner', 'admin');
    END IF;
    IF NOT active THEN
        failing := failing || 'IsAuthenticatedAndActive'::text;
    END IF;
    IF action = 'task_progress' THEN
        RETURN failing;
    END IF;
    IF NOT tenant THEN
        failing := failing || 'HasTenantAccess'::text;
    END IF;
    IF action IN ('view_settings', 'modify_settings') AND mode = 'per_account' AND NOT target_system THEN
        IF NOT (sysdev OR owner) THEN
            failing := failing || 'IsSystemAccountOrDeveloper or IsAccountOwnerOrAdmin'::text;
        END IF;
    ELSIF action = 'view_settings' AND mode = 'hybrid_readonly' AND target_system THEN
        NULL;
    ELSIF NOT sysdev THEN
        failing := failing || 'IsSystemAccountOrDeveloper'::text;
    END IF;
    RETURN failing;
END
$$;

-- The operator this session may act as, or an error: keyfall's writes
-- name their operator, and the login must be allowed to act as them.
CREATE FUNCTION keyfall.keyfall_operator() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
DECLARE
    claimed text := keyfall.keyfall_claimed();
BEGIN
    IF claimed IS NULL THEN
        RAISE EXCEPTION 'no operator: a write through keyfall names the app user it acts as'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT keyfall.keyfall_may_act_as(claimed) THEN
        RAISE EXCEPTION 'login % may not act as %: a database superuser maps it with keyfall operator add % %',
            session_user, left(claimed, 200), session_user, left(claimed, 200)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN claimed;
END
$$;

-- Refuse, with the failing checks, unless the session's operator may do
-- `action` on the settings of `account_id` under the policy in force now.
CREATE FUNCTION keyfall.keyfall_authorize(action text, account_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
DECLARE
    who     text := keyfall.keyfall_operator();
    failing text[] := keyfall.keyfall_failing_checks(who, action, account_id);
    slug    text;
BEGIN
    IF cardinality(failing) > 0 THEN
        SELECT a.slug INTO slug FROM keyfall.accounts a WHERE a.id = keyfall_authorize.account_id;
        RAISE EXCEPTION 'denied by the database: % may not % of %: % fails',
            left(who, 200), replace(action, '_settings', ' the settings'), coalesce(slug, 'the system accounts'),
            array_to_string(failing, ', ')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- The chain and the policy are for active superusers and developers (as
-- the seed's Django admin): checked here for every writer through keyfall
-- and any other role without ownership.
CREATE FUNCTION keyfall.keyfall_guard_admin() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
DECLARE
    who text;
    ok  boolean;
BEGIN
    -- Migrations and the schema owner's maintenance run without an operator.
    IF keyfall.keyfall_claimed() IS NULL AND keyfall.keyfall_login_is_superuser() THEN
        RETURN NULL;
    END IF;
    who := keyfall.keyfall_operator();
    IF (SELECT count(*) FROM keyfall.users u WHERE lower(u.email) = lower(who)) = 1 THEN
        SELECT u.is_active AND (u.is_superuser OR u.role = 'developer') INTO ok
          FROM keyfall.users u WHERE lower(u.email) = lower(who);
    END IF;
    IF NOT coalesce(ok, false) THEN
        RAISE EXCEPTION 'denied by the database: the chain and the policy are for active superusers and developers; % is not one', left(who, 200)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER fallback_chain_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON keyfall.fallback_chain
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_guard_admin();
CREATE TRIGGER policy_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON keyfall.policy
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_guard_admin();

-- A raw key leaves the database in two steps, so its record cannot be
-- rolled back with it: keyfall_request_key checks the right and writes the
-- audit row (the caller commits); keyfall_reveal / keyfall_config_for_test
-- then hand the key over only against a request committed earlier (by this
-- login, for this operator and setting, within a minute, used once).
CREATE TABLE keyfall.key_requests (
    id               bigserial PRIMARY KEY,
    login            text NOT NULL DEFAULT session_user,
    actor            text NOT NULL,
    slug             text NOT NULL,
    integration_type text NOT NULL,
    purpose          text NOT NULL CHECK (purpose IN ('reveal', 'test_connection')),
    txid             bigint NOT NULL DEFAULT txid_current(),
    at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    used             boolean NOT NULL DEFAULT false
);

CREATE FUNCTION keyfall.keyfall_request_key(slug text, integration_type text, purpose text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
DECLARE
    acc_id bigint;
    cfg    jsonb;
BEGIN
    IF purpose NOT IN ('reveal', 'test_connection') THEN
        RAISE EXCEPTION 'unknown purpose %', left(purpose, 40) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT a.id INTO acc_id FROM keyfall.accounts a WHERE a.slug = keyfall_request_key.slug;
    IF acc_id IS NULL THEN
        RETURN;
    END IF;
    -- Revealing needs the right to modify that setting (DESIGN §6); a test
    -- the right to test its connection.
    PERFORM keyfall.keyfall_authorize(CASE WHEN purpose = 'reveal' THEN 'modify_settings' ELSE 'test_connection' END,
                                      acc_id);
    SELECT s.config INTO cfg FROM keyfall.integration_settings s
     WHERE s.account_id = acc_id AND s.integration_type = keyfall_request_key.integration_type;
    IF cfg IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO keyfall.audit_log (actor, action, table_name, account_id, account_slug, integration_type, after)
    VALUES (keyfall.keyfall_actor(), purpose, 'integration_settings', acc_id, keyfall_request_key.slug,
            keyfall_request_key.integration_type,
            jsonb_build_object('apiKey', CASE WHEN jsonb_typeof(cfg -> 'apiKey') = 'string'
                                              THEN keyfall.keyfall_fingerprint(cfg ->> 'apiKey') END));
    INSERT INTO keyfall.key_requests (actor, slug, integration_type, purpose)
    VALUES (keyfall.keyfall_operator(), keyfall_request_key.slug, keyfall_request_key.integration_type, purpose);
END
$$;

-- Use a committed request: the setting's raw config, or NULL.
CREATE FUNCTION keyfall.keyfall_take_key(slug text, integration_type text, purpose text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
DECLARE
    acc_id bigint;
    req_id bigint;
    cfg    jsonb;
BEGIN
    SELECT a.id INTO acc_id FROM keyfall.accounts a WHERE a.slug = keyfall_take_key.slug;
    IF acc_id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM keyfall.keyfall_authorize(CASE WHEN purpose = 'reveal' THEN 'modify_settings' ELSE 'test_connection' END,
                                      acc_id);
    SELECT r.id INTO req_id FROM keyfall.key_requests r
     WHERE r.login = session_user AND r.actor = keyfall.keyfall_operator() AND r.slug = keyfall_take_key.slug
       AND r.integration_type = keyfall_take_key.integration_type AND r.purpose = keyfall_take_key.purpose
       AND NOT r.used AND r.txid <> txid_current() AND r.at > clock_timestamp() - interval '1 minute'
     ORDER BY r.id DESC LIMIT 1
       FOR UPDATE SKIP LOCKED;
    IF req_id IS NULL THEN
        RAISE EXCEPTION 'no recorded request for this key: call keyfall_request_key and commit first (the record must not be rolled back with the key)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE keyfall.key_requests SET used = true WHERE id = req_id;
    SELECT s.config INTO cfg FROM keyfall.integration_settings s
     WHERE s.account_id = acc_id AND s.integration_type = keyfall_take_key.integration_type;
    RETURN cfg;
END
$$;

CREATE FUNCTION keyfall.keyfall_reveal(slug text, integration_type text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT keyfall.keyfall_take_key($1, $2, 'reveal') ->> 'apiKey'
$$;

-- Who this session is, for keyfall's start: the login, whether it is a
-- database superuser, and the app users it may act as.
CREATE FUNCTION keyfall.keyfall_whoami() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog AS $$
    SELECT jsonb_build_object(
        'login', session_user::text,
        'superuser', keyfall.keyfall_login_is_superuser(),
        'emails', coalesce((SELECT jsonb_agg(o.email ORDER BY o.email) FROM keyfall.operators o
                             WHERE o.login = session_user), '[]'::jsonb))
$$;

-- A setting's config with its raw key, for a connection test (after a
-- committed keyfall_request_key(…, 'test_connection')).
CREATE FUNCTION keyfall.keyfall_config_for_test(slug text, integration_type text) RETURNS jsonb
LANGUAGE sql VOLATILE AS $$
    SELECT keyfall.keyfall_take_key($1, $2, 'test_connection')
$$;

-- Trigger functions run with the owner's rights: nobody may call them or
-- put them on objects of their own (a temporary view firing the write
-- trigger with a made-up OLD, a temporary table forging audit rows).
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_config_audit() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_settings_truncate() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_announce() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_guard_admin() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_audit_append_only() FROM PUBLIC;
