-- keyfall 0007: no login gains a right through keyfall (issue 18).
--
-- 1. Owner rights that cannot be borrowed. Every function that runs with
--    the schema owner's rights (SECURITY DEFINER, the triggers on the app's
--    tables, the event trigger) pins search_path = keyfall, pg_catalog,
--    pg_temp. PostgreSQL searches the caller's temporary schema FIRST for
--    relation and type names unless pg_temp is named; named last, a
--    temporary `text` domain or `audit_log` table can no longer stand in
--    for keyfall's (functions and operators are never looked up in
--    pg_temp). keyfall_harden() applies this to every such function, the
--    ones keyfall_install_mapping generates included, and takes EXECUTE
--    from PUBLIC where no role needs it; tests/it/owner_rights.rs reads the
--    catalog and fails on any owner-rights function without it.
-- 2. Values of a type the app's role owns (its own enum, composite, or a
--    cast it defined) are never handled with the owner's rights: the audit
--    trigger records such a change without contents (keyfall_untrusted_column).
-- 3. The log admits its gaps: disabling, dropping or re-creating keyfall's
--    triggers on the app's tables is recorded by an event trigger
--    (keyfall_watch_ddl), as 'capture_disabled' / 'capture_enabled' rows.
-- 4. A key request is single-use even across a rollback (a sequence per
--    request: nextval is never rolled back); a key handed over for a
--    connection test is recorded as the raw-key read it is ('reveal' with
--    purpose 'test_connection'); keyfall.actor keeps an operator's identity
--    and only the notes keyfall itself writes (" (overwrite)",
--    " (revert of #N)"), nothing else.

-- 4. The actor: the claimed operator (when the login may act as them) with
-- one of keyfall's own notes, else the login with the refused claim shown.
CREATE OR REPLACE FUNCTION keyfall.keyfall_actor() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN keyfall.keyfall_claimed() IS NULL THEN session_user::text
        WHEN keyfall.keyfall_may_act_as(keyfall.keyfall_claimed())
             THEN keyfall.keyfall_claimed()
                  || coalesce(substring(current_setting('keyfall.actor', true)
                                        FROM '( \((overwrite|revert of #[0-9]{1,19})\))$'), '')
        ELSE session_user::text || ' (claimed ' || left(current_setting('keyfall.actor', true), 200) || ')'
    END
$$;

-- 2. Whether the relation has a column whose type (through domains and
-- arrays) is owned by a role that is not a superuser, or is a composite:
-- the column's name and why, or NULL. Such a type may bring casts (to json,
-- to bigint) and operators written by that role; keyfall's owner-rights
-- code must not run them.
CREATE OR REPLACE FUNCTION keyfall.keyfall_untrusted_column(rel oid) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    col record;
    t   oid;
    ty  record;
BEGIN
    FOR col IN SELECT a.attname, a.atttypid FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped LOOP
        t := col.atttypid;
        LOOP
            SELECT y.typtype, y.typbasetype, y.typelem, y.typcategory, y.typowner, y.typrelid, y.typname
              INTO ty FROM pg_catalog.pg_type y WHERE y.oid = t;
            EXIT WHEN ty.typtype IS NULL;
            IF ty.typtype = 'd' THEN
                t := ty.typbasetype;          -- a domain: its checks run on writes only
            ELSIF ty.typcategory = 'A' AND ty.typelem <> 0 THEN
                t := ty.typelem;              -- an array: its elements
            ELSE
                EXIT;
            END IF;
        END LOOP;
        IF ty.typtype = 'c' THEN
            RETURN format('column %I is of the composite type %s', col.attname, ty.typname);
        END IF;
        IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = ty.typowner), false) THEN
            RETURN format('column %I is of type %s, owned by %s, not a superuser', col.attname, ty.typname,
                          (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = ty.typowner));
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- 4. Raw keys: the request is written and committed first (with its audit
-- row); the key is handed over once. "Once" survives a rollback of the
-- hand-over: each request has its own sequence, and nextval is never
-- rolled back.
ALTER TABLE keyfall.key_requests ADD COLUMN IF NOT EXISTS use_seq text;

CREATE OR REPLACE FUNCTION keyfall.keyfall_request_key(slug text, integration_type text, purpose text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    acc_id bigint;
    cfg    jsonb;
    req_id bigint;
    stale  record;
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
    -- Either purpose hands the raw key to the client: both are recorded
    -- as the read of a raw key ('reveal'), with what it was for.
    INSERT INTO keyfall.audit_log (actor, action, table_name, account_id, account_slug, integration_type, after)
    VALUES (keyfall.keyfall_actor(), 'reveal', 'integration_settings', acc_id, keyfall_request_key.slug,
            keyfall_request_key.integration_type,
            jsonb_build_object('apiKey', CASE WHEN jsonb_typeof(cfg -> 'apiKey') = 'string'
                                              THEN keyfall.keyfall_fingerprint(cfg ->> 'apiKey') END,
                               'purpose', purpose));
    INSERT INTO keyfall.key_requests (actor, slug, integration_type, purpose)
    VALUES (keyfall.keyfall_operator(), keyfall_request_key.slug, keyfall_request_key.integration_type, purpose)
    RETURNING id INTO req_id;
    EXECUTE format('CREATE SEQUENCE keyfall.%I MAXVALUE 2 NO CYCLE', 'key_request_' || req_id);
    UPDATE keyfall.key_requests SET use_seq = 'key_request_' || req_id WHERE id = req_id;
    -- Requests past their minute can never be used: their sequences go.
    FOR stale IN SELECT r.id, r.use_seq FROM keyfall.key_requests r
                  WHERE r.use_seq IS NOT NULL AND r.at < clock_timestamp() - interval '2 minutes' LOOP
        EXECUTE format('DROP SEQUENCE IF EXISTS keyfall.%I', stale.use_seq);
        UPDATE keyfall.key_requests SET use_seq = NULL, used = true WHERE id = stale.id;
    END LOOP;
END
$$;

-- Use a committed request, once: the setting's raw config, or an error.
CREATE OR REPLACE FUNCTION keyfall.keyfall_take_key(slug text, integration_type text, purpose text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    acc_id bigint;
    req    record;
    cfg    jsonb;
    n      bigint;
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
            SELECT s.config INTO cfg FROM keyfall.integration_settings s
             WHERE s.account_id = acc_id AND s.integration_type = keyfall_take_key.integration_type;
            RETURN cfg;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no recorded request for this key: call keyfall_request_key and commit first (the record must not be rolled back with the key; a request is used once)'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- 3. The log admits its gaps. Statements that disable, enable, drop or
-- (re)create keyfall's triggers on the app's tables, by any role, leave a
-- row: 'capture_disabled' (with what is off) or 'capture_enabled'. The
-- function never raises into the statement it watches.
CREATE OR REPLACE FUNCTION keyfall.keyfall_capture_state() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_object_agg(c.oid::regclass::text || '.' || t.tgname,
                                     t.tgenabled <> 'D' ORDER BY c.oid::regclass::text, t.tgname), '{}'::jsonb)
      FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
     WHERE t.tgname IN ('keyfall_audit_insert', 'keyfall_audit_update', 'keyfall_audit_delete',
                        'keyfall_audit_truncate', 'keyfall_announce')
$$;

CREATE TABLE IF NOT EXISTS keyfall.capture_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    state     jsonb NOT NULL
);
-- keyfall's own re-installs (attach, migrate) drop and re-create its
-- triggers: the transaction doing so is marked here (only the schema's
-- owner can write this table; a setting anyone can SET would let the app's
-- role hide a gap).
CREATE TABLE IF NOT EXISTS keyfall.installing (
    txid bigint PRIMARY KEY
);

CREATE OR REPLACE FUNCTION keyfall.keyfall_watch_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    was     jsonb;
    now_    jsonb;
    off     text[];
    back    text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        RETURN;
    END IF;
    -- keyfall's own re-install: it records the state (and any gap it
    -- closes) itself when done.
    IF EXISTS (SELECT 1 FROM keyfall.installing i WHERE i.txid = txid_current()) THEN
        RETURN;
    END IF;
    now_ := keyfall.keyfall_capture_state();
    SELECT c.state INTO was FROM keyfall.capture_state c;
    IF was IS NULL OR was = now_ THEN
        INSERT INTO keyfall.capture_state (state) VALUES (now_)
        ON CONFLICT (singleton) DO UPDATE SET state = EXCLUDED.state;
        RETURN;
    END IF;
    -- A trigger that was on and is now off or gone; one that is on again.
    SELECT array_agg(k ORDER BY k) INTO off FROM jsonb_each(was) e(k, v)
     WHERE v = 'true' AND coalesce(now_ -> k, 'false') = 'false';
    SELECT array_agg(k ORDER BY k) INTO back FROM jsonb_each(now_) e(k, v)
     WHERE v = 'true' AND coalesce(was -> k, 'false') = 'false';
    IF off IS NOT NULL THEN
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        VALUES (keyfall.keyfall_actor(), 'capture_disabled', 'keyfall',
                jsonb_build_object('triggers', to_jsonb(off), 'statement', left(tg_tag, 60)));
    END IF;
    IF back IS NOT NULL THEN
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        VALUES (keyfall.keyfall_actor(), 'capture_enabled', 'keyfall',
                jsonb_build_object('triggers', to_jsonb(back), 'statement', left(tg_tag, 60)));
    END IF;
    INSERT INTO keyfall.capture_state (state) VALUES (now_)
    ON CONFLICT (singleton) DO UPDATE SET state = EXCLUDED.state;
    PERFORM pg_notify('keyfall_changes', json_build_object('table', 'keyfall', 'op', 'capture')::text);
EXCEPTION WHEN OTHERS THEN
    -- Never the app's failure: the statement goes on; the server log says why.
    RAISE WARNING 'keyfall: could not record a change to its triggers (SQLSTATE %)', SQLSTATE;
END
$$;

-- Event triggers need a superuser. Installed when the migration runs as one
-- (the usual case: attach needs one too); otherwise keyfall says so where
-- the gap matters (`keyfall audit`).
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        DROP EVENT TRIGGER IF EXISTS keyfall_watch_ddl;
        CREATE EVENT TRIGGER keyfall_watch_ddl ON ddl_command_end
            WHEN TAG IN ('ALTER TABLE', 'CREATE TRIGGER', 'DROP TRIGGER', 'DROP TABLE', 'ALTER TRIGGER')
            EXECUTE FUNCTION keyfall.keyfall_watch_ddl();
        DROP EVENT TRIGGER IF EXISTS keyfall_watch_drop;
        CREATE EVENT TRIGGER keyfall_watch_drop ON sql_drop
            EXECUTE FUNCTION keyfall.keyfall_watch_ddl();
    END IF;
END
$$;

-- 1b. PL/pgSQL compiles a function once per session, resolving the types
-- of its variables under the search_path of that first call, and keeps
-- the result. A login could call one of keyfall's helpers itself with a
-- temporary `text` domain in place (or read the masked view, which calls
-- them), and the owner-rights code calling the helper later in that
-- session would run the domain's check as the owner. The helpers without
-- a search_path of their own therefore name every variable's type in
-- full (pg_catalog.text); tests/it/owner_rights.rs checks every DECLARE.
-- These are their 0002-0004 bodies, unchanged but for that.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_key(k text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
DECLARE
    endings constant pg_catalog.text :=
        '(key|keys|secret|secrets|token|password|passwords|passwd|passphrase|authorization|credential|credentials|private)$';
BEGIN
    -- Only saves time: a secret word's ending is somewhere in the name.
    IF k IS NULL OR k !~* '(key|secret|token|passw|passphrase|authorization|credential|private)' THEN
        RETURN false;
    END IF;
    -- camelCase, each hump an uppercase letter and lowercase ones (`apiKey`,
    -- `accessTokenSecret`): the words are split at each uppercase letter.
    IF k ~ '^[a-z]+([A-Z][a-z]+)*$' THEN
        RETURN lower(regexp_replace(k, '([A-Z])', ' \1', 'g')) ~ replace(endings, '$', '( |$)');
    END IF;
    -- snake_case of lowercase letters (`api_key`): the words are split at `_`.
    IF k ~ '^[a-z_]+$' THEN
        RETURN k ~ replace(endings, '$', '(_|$)');
    END IF;
    RETURN EXISTS (
        SELECT 1
          FROM regexp_split_to_table(
                   translate(
                       regexp_replace(regexp_replace(regexp_replace(k,
                           '([a-z])([A-Z])', '\1 \2', 'g'),
                           '([A-Za-z])([0-9])', '\1 \2', 'g'),
                           '([0-9])([A-Za-z])', '\1 \2', 'g'),
                       'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                   '[^a-z0-9]+') AS w
         WHERE w ~ '(key|keys|secret|secrets|token|password|passwords|passwd|passphrase|authorization|credential|credentials|private)$'
    );
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_value(v text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
DECLARE
    t pg_catalog.text := btrim(v, E' \t\n\r\f');
BEGIN
    -- Only saves time: the shortest shape is sk- and 8 more characters.
    IF t IS NULL OR length(t) < 11 THEN
        RETURN false;
    END IF;
    RETURN t ~ '^(sk-|sk_|rw-).{8}'
        OR t ~ '^(AKIA|ASIA)[A-Z0-9]{12}'
        OR t ~ '^[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[^ \t\n\r\f]{8,}$'
        OR strpos(t, '-----BEGIN ') > 0
        OR (length(t) >= 32
            AND t ~ '^[A-Za-z0-9+/=_-]+$'
            AND t ~ '[A-Za-z]' AND t ~ '[0-9]'
            AND t !~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
            AND regexp_count(t, '[a-z](?=[A-Z0-9])|[A-Z](?=[a-z0-9])|[0-9](?=[A-Za-z])') >= 8);
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_login_sees_raw()
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    RETURN keyfall.keyfall_role_sees_raw(session_user);
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_mask_at(doc jsonb, depth integer, secret boolean)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
DECLARE
    kind   pg_catalog.text := jsonb_typeof(doc);
    result pg_catalog.jsonb;
BEGIN
    IF doc IS NULL THEN
        RETURN NULL;
    ELSIF kind IN ('object', 'array') AND depth >= 64 THEN
        RETURN to_jsonb(keyfall.keyfall_mask_string(doc::text));
    ELSIF kind = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key,
                   keyfall.keyfall_mask_at(value, depth + 1, secret OR keyfall.keyfall_is_secret_key(key))), '{}'::jsonb)
          INTO result FROM jsonb_each(doc);
        RETURN result;
    ELSIF kind = 'array' THEN
        SELECT coalesce(jsonb_agg(keyfall.keyfall_mask_at(value, depth + 1, secret) ORDER BY ord), '[]'::jsonb)
          INTO result FROM jsonb_array_elements(doc) WITH ORDINALITY AS e(value, ord);
        RETURN result;
    ELSIF kind = 'string' AND (secret OR keyfall.keyfall_is_secret_value(doc #>> '{}')) THEN
        RETURN to_jsonb(keyfall.keyfall_mask_string(doc #>> '{}'));
    END IF;
    RETURN doc;
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact_at(doc jsonb, depth integer, secret boolean)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
DECLARE
    kind   pg_catalog.text := jsonb_typeof(doc);
    result pg_catalog.jsonb;
BEGIN
    IF doc IS NULL THEN
        RETURN NULL;
    ELSIF kind IN ('object', 'array') AND depth >= 64 THEN
        RETURN to_jsonb(keyfall.keyfall_fingerprint(doc::text));
    ELSIF kind = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key,
                   CASE WHEN jsonb_typeof(value) IN ('object', 'array')
                        THEN keyfall.keyfall_redact_at(value, depth + 1, secret OR keyfall.keyfall_is_secret_key(key))
                        ELSE keyfall.keyfall_redact_scalar(value, secret OR keyfall.keyfall_is_secret_key(key))
                   END), '{}'::jsonb)
          INTO result
          FROM jsonb_each(doc);
        RETURN result;
    ELSIF kind = 'array' THEN
        SELECT coalesce(jsonb_agg(
                   CASE WHEN jsonb_typeof(value) IN ('object', 'array')
                        THEN keyfall.keyfall_redact_at(value, depth + 1, secret)
                        ELSE keyfall.keyfall_redact_scalar(value, secret)
                   END ORDER BY ord), '[]'::jsonb)
          INTO result
          FROM jsonb_array_elements(doc) WITH ORDINALITY AS e(value, ord);
        RETURN result;
    END IF;
    RETURN keyfall.keyfall_redact_scalar(doc, secret);
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact_scalar(v jsonb, secret boolean)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
DECLARE
    kind pg_catalog.text := jsonb_typeof(v);
    s    pg_catalog.text;
BEGIN
    IF kind IS NULL OR kind = 'null' THEN
        RETURN v;
    ELSIF kind = 'string' THEN
        s := v #>> '{}';
        IF s = '' OR s ~ '^#[0-9a-f]{8}$' THEN
            RETURN v;
        ELSIF secret OR keyfall.keyfall_is_secret_value(s) THEN
            RETURN to_jsonb(keyfall.keyfall_fingerprint(s));
        END IF;
        RETURN v;
    ELSIF secret THEN
        RETURN to_jsonb(keyfall.keyfall_fingerprint(v::text));
    END IF;
    RETURN v;
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_role_sees_raw(r name)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    RETURN coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = r), false)
        OR pg_catalog.pg_has_role(r, (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'keyfall'),
                                  'MEMBER');
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_sees_raw()
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    RETURN keyfall.keyfall_role_sees_raw(current_user);
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_unmask(new jsonb, old jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    result pg_catalog.jsonb;
    s      pg_catalog.text;
BEGIN
    IF new IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(new) = 'string' THEN
        s := new #>> '{}';
        IF s !~ '^••••••••.* #[0-9a-f]{8}$' THEN
            RETURN new;
        END IF;
        IF jsonb_typeof(old) = 'string' AND keyfall.keyfall_mask_string(old #>> '{}') = s THEN
            RETURN old;
        END IF;
        RAISE EXCEPTION 'a masked key that is not the stored one cannot be written (type the key, or leave the stored one)'
            USING ERRCODE = 'data_exception';
    ELSIF jsonb_typeof(new) = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key, keyfall.keyfall_unmask(value,
                   CASE WHEN jsonb_typeof(old) = 'object' THEN old -> key END)), '{}'::jsonb)
          INTO result FROM jsonb_each(new);
        RETURN result;
    ELSIF jsonb_typeof(new) = 'array' THEN
        SELECT coalesce(jsonb_agg(keyfall.keyfall_unmask(value,
                   CASE WHEN jsonb_typeof(old) = 'array' THEN old -> (ord::int - 1) END) ORDER BY ord), '[]'::jsonb)
          INTO result FROM jsonb_array_elements(new) WITH ORDINALITY AS e(value, ord);
        RETURN result;
    END IF;
    RETURN new;
END
$function$

;
CREATE OR REPLACE FUNCTION keyfall.keyfall_value_map(expr text, vals jsonb)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    out  pg_catalog.text := '';
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
$function$

;

-- 1. Every function with the owner's rights pins its search path with
-- pg_temp last, and EXECUTE goes only where a role needs it. Idempotent;
-- keyfall_install_mapping calls it for the functions it generates.
CREATE OR REPLACE FUNCTION keyfall.keyfall_harden() RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS sig, p.prosecdef, p.proname
               FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'keyfall'
                AND (p.prosecdef OR p.proconfig IS NOT NULL
                     OR p.prorettype IN ('pg_catalog.trigger'::regtype, 'pg_catalog.event_trigger'::regtype)) LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = keyfall, pg_catalog, pg_temp', f.sig);
        -- Owner-rights functions no role calls directly: triggers, the
        -- event trigger, the internals the checked functions use.
        IF f.prosecdef AND f.proname NOT IN ('keyfall_whoami', 'keyfall_request_key', 'keyfall_take_key',
                                              'keyfall_failing_checks', 'keyfall_may_act_as', 'keyfall_scope') THEN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f.sig);
        END IF;
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_harden() FROM PUBLIC;

-- 5. Reads follow the policy, in the database (DESIGN §4). What a login
-- may read through keyfall — settings (even masked), the audit log — is
-- what `can … view_settings` allows its operator for that account under
-- the policy in force: keyfall_failing_checks decides, asked once per
-- statement for three targets (any tenant: -1, which is no account; the
-- system accounts: NULL; the operator's own account). The operator is the
-- one the session names (keyfall.actor) when the login may act as them,
-- else every user the login is mapped to (it may act as each). A database
-- superuser, or a member of the role owning this schema, reads everything,
-- as it could read the app's tables anyway.
DO $$
BEGIN
    IF to_regtype('keyfall.read_scope') IS NULL THEN
        CREATE TYPE keyfall.read_scope AS (see_all boolean, accounts bigint[], system boolean);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION keyfall.keyfall_scope() RETURNS keyfall.read_scope
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    emails  pg_catalog.text[];
    e       pg_catalog.text;
    own     pg_catalog.int8;
    result  keyfall.read_scope := ROW(false, '{}'::pg_catalog.int8[], false);
BEGIN
    IF keyfall.keyfall_login_is_superuser() THEN
        RETURN ROW(true, '{}'::pg_catalog.int8[], true);
    END IF;
    IF keyfall.keyfall_claimed() IS NOT NULL AND keyfall.keyfall_may_act_as(keyfall.keyfall_claimed()) THEN
        emails := ARRAY[lower(keyfall.keyfall_claimed())];
    ELSE
        SELECT array_agg(o.email) INTO emails FROM keyfall.operators o WHERE o.login = session_user;
    END IF;
    FOREACH e IN ARRAY coalesce(emails, '{}'::pg_catalog.text[]) LOOP
        IF cardinality(keyfall.keyfall_failing_checks(e, 'view_settings', -1)) = 0 THEN
            RETURN ROW(true, '{}'::pg_catalog.int8[], true);
        END IF;
        IF cardinality(keyfall.keyfall_failing_checks(e, 'view_settings', NULL)) = 0 THEN
            result.system := true;
        END IF;
        own := NULL;
        SELECT u.account_id INTO own FROM keyfall.users u WHERE lower(u.email) = e LIMIT 1;
        IF own IS NOT NULL AND cardinality(keyfall.keyfall_failing_checks(e, 'view_settings', own)) = 0 THEN
            result.accounts := result.accounts || own;
        END IF;
    END LOOP;
    IF result.system THEN
        SELECT result.accounts || coalesce(array_agg(a.id), '{}'::pg_catalog.int8[]) INTO result.accounts
          FROM keyfall.fallback_chain c JOIN keyfall.accounts a ON a.slug = c.account_slug;
    END IF;
    RETURN result;
END
$$;

-- Whether this session reads every account's settings: the current role
-- owns keyfall (or is a superuser), or its operator may view any account.
CREATE OR REPLACE FUNCTION keyfall.keyfall_reads_all() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT pg_catalog.pg_has_role(n.nspowner, 'MEMBER') FROM pg_catalog.pg_namespace n
                      WHERE n.nspname = 'keyfall'), false)
        OR (keyfall.keyfall_scope()).see_all
$$;

-- The accounts whose settings it reads otherwise (its own, the system's).
CREATE OR REPLACE FUNCTION keyfall.keyfall_readable_accounts() RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    SELECT (keyfall.keyfall_scope()).accounts
$$;

-- Whether it reads the system's settings (and so the log of the chain,
-- the policy and the function map).
CREATE OR REPLACE FUNCTION keyfall.keyfall_reads_system() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (keyfall.keyfall_scope()).system
$$;

-- The audit log holds configs (redacted): its rows follow the same rule,
-- by row-level security (the owner, who writes it, is not bound). Entries
-- without an account (chain, policy, functions, operators, capture) are
-- the system's.
ALTER TABLE keyfall.audit_log ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_log_read ON keyfall.audit_log;
CREATE POLICY audit_log_read ON keyfall.audit_log FOR SELECT
    USING ((SELECT keyfall.keyfall_reads_all())
           OR account_id = ANY ((SELECT keyfall.keyfall_readable_accounts())::pg_catalog.int8[])
           OR (account_id IS NULL AND (SELECT keyfall.keyfall_reads_system())));

REVOKE EXECUTE ON FUNCTION keyfall.keyfall_install_mapping(jsonb) FROM PUBLIC;

SELECT keyfall.keyfall_harden();

-- The mapping's views and triggers are made again, pinned, with the reads
-- policy and the generic capture, by migration 0010 (keyfall_install_mapping).
