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
    RAISE WARNING 'keyfall: could not record a change to its triggers: %', SQLERRM;
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

-- The mapping's views and triggers, generated with pinned search paths and
-- the untrusted-type guard; keyfall's own DDL marked (keyfall.installing).
CREATE OR REPLACE FUNCTION keyfall.keyfall_install_mapping(m jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'keyfall', 'pg_catalog', 'pg_temp'
AS $function$
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
    -- keyfall's own DDL below is not a gap in the log.
    INSERT INTO keyfall.installing (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
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
    -- Reads follow the policy (keyfall_scope): a row of an account the
    -- session's operator may not view keeps its place — that it exists and
    -- whether it answers (withheld_verdict, withheld_provider) are what
    -- every resolve trace needs — but its config and who changed it are
    -- not shown.
    EXECUTE format(
        'CREATE VIEW keyfall.integration_settings AS SELECT s.%I::bigint AS id, s.%I AS account_id,'
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

    -- The audit trigger of this table: statement-level with transition
    -- tables, one audit row per changed row, secrets fingerprinted here.
    -- SECURITY DEFINER: the app's own role writes the audit log through it
    -- without any grant on keyfall's schema; the actor is still the
    -- session's (keyfall_actor reads session_user).
    body := format($body$
CREATE OR REPLACE FUNCTION keyfall.keyfall_settings_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $f$
DECLARE
    kf_op       text := lower(TG_OP);
    kf_actor    text := keyfall.keyfall_actor();
    kf_untrusted text;
    kf_changed  bigint;
    kf_payloads text[];
    kf_payload  text;
BEGIN
    -- Only on the mapped table: nobody may fire this elsewhere.
    IF TG_RELID <> %8$L::regclass THEN
        RAISE EXCEPTION 'keyfall_settings_audit fires on %8$s only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- This runs with the schema owner's rights on values of the app's
    -- column types: a type the app's role owns could bring a cast or an
    -- operator of its own (code that would run as the owner). Such a row
    -- is recorded without contents, and keyfall says why.
    kf_untrusted := keyfall.keyfall_untrusted_column(TG_RELID);
    IF kf_untrusted IS NOT NULL THEN
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        VALUES (kf_actor, 'capture_refused', 'integration_settings',
                jsonb_build_object('op', kf_op, 'why', kf_untrusted));
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        WITH ins AS (
            INSERT INTO keyfall.audit_log (actor, action, table_name, row_id, account_id, account_slug,
                                           integration_type, before, after)
            SELECT kf_actor, kf_op, 'integration_settings', n.%1$I, n.%2$I, a.slug, n.%3$I, NULL,
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
            SELECT kf_actor, kf_op, 'integration_settings', n.%1$I, n.%2$I, a.slug, n.%3$I,
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
            SELECT kf_actor, kf_op, 'integration_settings', o.%1$I, o.%2$I, a.slug, o.%3$I,
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
    -- Owner rights pinned on what was just generated; the triggers' state
    -- as keyfall left it.
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
$function$

;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_install_mapping(jsonb) FROM PUBLIC;

SELECT keyfall.keyfall_harden();

-- An installed mapping is made again with the code above.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        PERFORM keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping));
    END IF;
END
$$;
