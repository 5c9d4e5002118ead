-- keyfall's baseline: every object keyfall keeps in a database, each defined
-- once, in its final form, to be read top to bottom. It replaces the
-- pre-release migrations 0001-0015: their end state, schema and seed rows,
-- is exactly this file's, on a new database, a first layout moved in, and
-- the demo's and Django's tables attached (tests/baseline/check.sh; how to
-- fold a migration in: tests/baseline/README.md).
--
-- Everything is in the schema `keyfall` (DESIGN §5), so keyfall can share a
-- database with the app it describes. The app's accounts, users and
-- settings tables are NOT created here: they are the app's, named by a
-- mapping (keyfall_install_mapping, section 6) that builds views over them
-- in this schema and puts keyfall's capture triggers on them. keyfall's
-- connections run with `search_path = keyfall`, so every query reads the
-- mapped views under keyfall's own names.
--
-- Sections: 1 schema & tables; 2 secrets; 3 verdicts; 4 resolve;
-- 5 permissions and owner rights; 6 mapping install (the code generator);
-- 7 history capture; 8 hardening.
--
-- Rules every function here follows (tests/it/owner_rights.rs checks them):
-- * Every function that runs with the schema owner's rights (SECURITY
--   DEFINER, the triggers on the app's tables, the event triggers) pins
--   search_path = keyfall, pg_catalog, pg_temp. PostgreSQL searches the
--   caller's temporary schema FIRST for relation and type names unless
--   pg_temp is named; named last, a temporary `text` domain or `audit_log`
--   table can no longer stand in for keyfall's (functions and operators
--   are never looked up in pg_temp). keyfall_harden() (section 8) applies
--   this to every such function, the ones keyfall_install_mapping
--   generates included, and takes EXECUTE from PUBLIC where no role needs it.
-- * PL/pgSQL compiles a function once per session, resolving the types of
--   its variables under the search_path of that first call, and keeps the
--   result. A login could call one of keyfall's helpers itself with a
--   temporary `text` domain in place (or read the masked view, which calls
--   them), and the owner-rights code calling the helper later in that
--   session would run the domain's check as the owner. The helpers without
--   a search_path of their own therefore name every variable's type in
--   full (pg_catalog.text).
-- * Nothing keyfall runs inside the app's statements raises into them.
-- * This file is re-runnable: `keyfall migrate` applies it again to an
--   install that lost its record (every object IF NOT EXISTS or OR
--   REPLACE, seed rows only into a table made here, event triggers only
--   where keyfall is attached and has none). A later migration keeps that.
--
-- From the first release on, migrations are append-only: a released file
-- never changes (migrations/RELEASED pins their checksums), a change is a
-- new file that may CREATE OR REPLACE a function in full, and no migration
-- edits a function's source text (replace() on pg_get_functiondef).
-- tests/it/baseline.rs refuses all three.


-- ===========================================================================
-- 1. Schema and tables
-- ===========================================================================

-- A database of keyfall's first layout (everything in `public`, migration
-- history in public._sqlx_migrations) moves into this schema, keeping the
-- chain, the policy, the functions and the whole audit log (redacted by
-- today's rules at the end of this file).
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
        -- Its audit log is redacted by today's rules (section 8).
        PERFORM set_config('keyfall.moved_first_layout', 'on', true);
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

-- The four tables of the first layout, made here unless they were moved in
-- above (with their seed rows: the chain, the function map, the policy).
DO $tables$
BEGIN
    -- The system fallback chain, as data. It names slugs, not ids, so a
    -- chain entry may point at an account that does not exist (lint L005).
    IF to_regclass('keyfall.fallback_chain') IS NULL THEN
        CREATE TABLE keyfall.fallback_chain (
            position     integer PRIMARY KEY CHECK (position >= 1),
            account_slug text NOT NULL UNIQUE
        );
        INSERT INTO keyfall.fallback_chain (position, account_slug)
        VALUES (1, 'aws-admin'), (2, 'default-account'), (3, 'default');
    END IF;
    -- Which integration type each of the app's AI functions uses.
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
    -- Every change to a setting, the chain, the policy, the function map,
    -- the operators, the app's users and accounts (section 7), and the
    -- gaps. Append-only (section 5); configs are stored redacted.
    -- `db_login` is the database login of every row, set by the database:
    -- next to the operator keyfall names, it cannot be claimed.
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
            txid             bigint NOT NULL DEFAULT txid_current(),
            db_login         text DEFAULT session_user
        );
    END IF;
END
$tables$;

-- A moved audit log of the first layout gets the login column.
ALTER TABLE keyfall.audit_log ADD COLUMN IF NOT EXISTS db_login text;
ALTER TABLE keyfall.audit_log ALTER COLUMN db_login SET DEFAULT session_user;
-- A setting's history; `keyfall audit --since`; `keyfall audit --account
-- SLUG` filters by slug; the last writer of a row (shown where the app's
-- table has no updated_by) is found by row id.
CREATE INDEX IF NOT EXISTS audit_log_setting ON keyfall.audit_log (account_id, integration_type, id);
CREATE INDEX IF NOT EXISTS audit_log_at ON keyfall.audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_slug ON keyfall.audit_log (account_slug, integration_type, id);
CREATE INDEX IF NOT EXISTS audit_log_row ON keyfall.audit_log (table_name, row_id, id);
-- The rows that mark gaps and starts (table 'keyfall'; capture failures
-- and truncates) are found through one small partial index.
CREATE INDEX IF NOT EXISTS audit_log_marks ON keyfall.audit_log (id)
    WHERE table_name = 'keyfall' OR action IN ('capture_failed', 'capture_refused', 'truncate');

-- The settings entries' fingerprints (a redacted document keeps a key only
-- as `#` and 8 hex digits), so `keyfall key-history` finds the rows that
-- ever held a key through one GIN lookup instead of reading every entry.
CREATE OR REPLACE FUNCTION keyfall.keyfall_audit_fingerprints(b pg_catalog.jsonb, a pg_catalog.jsonb)
RETURNS pg_catalog.text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT coalesce(pg_catalog.array_agg(DISTINCT m[1]), '{}'::pg_catalog.text[])
      FROM pg_catalog.regexp_matches(coalesce(b::pg_catalog.text, '') OPERATOR(pg_catalog.||) ' '
                                     OPERATOR(pg_catalog.||) coalesce(a::pg_catalog.text, ''),
                                     '(#[0-9a-f]{8})', 'g') AS m
$$;

CREATE INDEX IF NOT EXISTS audit_log_fingerprints ON keyfall.audit_log
    USING gin (keyfall.keyfall_audit_fingerprints(before, after))
    WHERE table_name = 'integration_settings';

-- Each app setting's verdict (keyfall_row_verdict), kept by the capture
-- trigger on every write by any client and refilled whenever a mapping is
-- installed: the report and the impact preview join it instead of judging
-- 250,000 configs per query. One verdict per (account, type): of a pair
-- with several rows, the lowest id's, the row the app's `.first()` reads.
-- keyfall's own table; the app's stay untouched.
CREATE TABLE IF NOT EXISTS keyfall.row_verdicts (
    setting_id       bigint PRIMARY KEY,
    account_id       bigint NOT NULL,
    integration_type text NOT NULL,
    verdict          text NOT NULL,
    provider         jsonb
);
CREATE INDEX IF NOT EXISTS row_verdicts_account ON keyfall.row_verdicts (account_id, integration_type);
CREATE INDEX IF NOT EXISTS row_verdicts_type ON keyfall.row_verdicts (integration_type);

-- The mapping in force: which app tables and columns keyfall reads (DESIGN
-- §5). Written by keyfall_install_mapping only. `places`: where each mapped
-- table and column is, by identity, so renames are followed
-- ({"settings": {"oid": …, "columns": {"id": attnum, …}}, …}); `stale`:
-- why the app's tables no longer fit (NULL: they do), and since when.
CREATE TABLE IF NOT EXISTS keyfall.mapping (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    spec         jsonb NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now(),
    places       jsonb,
    stale        text,
    stale_since  timestamptz
);

-- Which app users a database login may act as (DESIGN §4): the operator
-- map, kept by `keyfall operator add/remove` (the schema owner's job).
CREATE TABLE IF NOT EXISTS keyfall.operators (
    login    text NOT NULL,
    email    text NOT NULL CHECK (email = lower(email)),
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (login, email)
);

-- A raw key leaves the database in two steps, so its record cannot be
-- rolled back with it: keyfall_request_key checks the right and writes the
-- audit row (the caller commits); keyfall_reveal / keyfall_config_for_test
-- then hand the key over only against a request committed earlier (by this
-- login, for this operator and setting, within a minute, used once).
-- "Once" survives a rollback of the hand-over: each request has its own
-- sequence (`use_seq`), and nextval is never rolled back.
CREATE TABLE IF NOT EXISTS keyfall.key_requests (
    id               bigserial PRIMARY KEY,
    login            text NOT NULL DEFAULT session_user,
    actor            text NOT NULL,
    slug             text NOT NULL,
    integration_type text NOT NULL,
    purpose          text NOT NULL CHECK (purpose IN ('reveal', 'test_connection')),
    txid             bigint NOT NULL DEFAULT txid_current(),
    at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    used             boolean NOT NULL DEFAULT false,
    use_seq          text
);

-- What the DDL watcher last saw of keyfall's triggers on the app's tables
-- (keyfall_capture_state), so a change is recorded once.
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

-- Set by `keyfall detach`: the mapping moves here (so nothing re-installs
-- it), with when, by whom, and the event triggers to make again on attach.
CREATE TABLE IF NOT EXISTS keyfall.detached (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    spec           jsonb NOT NULL,
    detached_at    timestamptz NOT NULL DEFAULT now(),
    detached_by    text NOT NULL,
    event_triggers jsonb NOT NULL DEFAULT '[]'::jsonb
);

-- What one session may read (keyfall_scope, section 5).
DO $$
BEGIN
    IF to_regtype('keyfall.read_scope') IS NULL THEN
        CREATE TYPE keyfall.read_scope AS (see_all boolean, accounts bigint[], system boolean);
    END IF;
END
$$;


-- The integration-type registry as data (src/domain/registry.rs `TYPES` is
-- the only place a type, a field or a range is written): keyfall writes it
-- here at `migrate` and `attach` (keyfall_load_registry, section 3), with
-- the registry's fingerprint, and the row rules read it.
CREATE TABLE IF NOT EXISTS keyfall.registry_types (
    name       text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('provider', 'consumer')),
    -- The prefix a well-formed key starts with (informational).
    key_prefix text,
    position   integer NOT NULL
);

CREATE TABLE IF NOT EXISTS keyfall.registry_fields (
    type     text NOT NULL REFERENCES keyfall.registry_types (name) ON DELETE CASCADE,
    field    text NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('secret', 'text', 'provider_ref', 'number', 'integer')),
    required boolean NOT NULL,
    -- 'number': an inclusive range, compared as Python's float of the
    -- value; 'integer': the least value (max NULL).
    min      numeric,
    max      numeric,
    position integer NOT NULL,
    PRIMARY KEY (type, field)
);

-- The registry loaded: its fingerprint (sha256 of the document keyfall
-- serialises, domain::registry::fingerprint), the document itself, and the
-- provider type names (what a consumer's provider must be one of), kept
-- here so a row's check reads one row.
CREATE TABLE IF NOT EXISTS keyfall.registry_state (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    fingerprint text NOT NULL,
    document    jsonb NOT NULL,
    providers   text[] NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

-- ===========================================================================
-- 2. Secrets
-- ===========================================================================
-- Secrets by name and by shape (DESIGN §11), redaction that cannot overflow
-- on deep JSON, and masked reads. Each function mirrors one in
-- src/domain/secret.rs (the rules are documented there);
-- tests/it/secrets.rs runs one table of cases through both and holds them
-- equal. A value holding a secret part (a URL with `api_key=`, a DSN with a
-- password, JSON in a string) is a secret whole: masked and fingerprinted
-- as one string.

-- domain::secret::is_secret_field: the name cut into words (at every
-- character that is not an ASCII letter or digit, between a lowercase and
-- an uppercase letter, between a letter and a digit), ASCII-lowercased; a
-- word ending in one of the secret endings (`pwd` too) makes the field
-- secret, and so does a last word `pass`. Two exact fast paths for the
-- names nearly every config has (camelCase like apiKey, snake_case like
-- api_key) skip the general path's query (a split into a table, ~18 µs):
-- the audit trigger asks this of every key it writes.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_key(k text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    endings constant pg_catalog.text :=
        '(key|keys|secret|secrets|token|password|passwords|passwd|passphrase|authorization|credential|credentials|private|pwd)$';
    words pg_catalog.text;
BEGIN
    -- Only saves time: a secret word's ending is somewhere in the name.
    IF k IS NULL OR k !~* '(key|secret|token|pass|authorization|credential|private|pwd)' THEN
        RETURN false;
    END IF;
    -- camelCase, each hump an uppercase letter and lowercase ones (`apiKey`,
    -- `accessTokenSecret`): the words are split at each uppercase letter.
    IF k ~ '^[a-z]+([A-Z][a-z]+)*$' THEN
        words := lower(regexp_replace(k, '([A-Z])', ' \1', 'g'));
        RETURN words ~ replace(endings, '$', '( |$)') OR words ~ '(^| )pass$';
    END IF;
    -- snake_case of lowercase letters (`api_key`): the words are split at `_`.
    IF k ~ '^[a-z_]+$' THEN
        RETURN k ~ replace(endings, '$', '(_|$)') OR k ~ '(^|_)pass_*$';
    END IF;
    -- The general case: the words, lowercased, one space between.
    words := btrim(regexp_replace(
                 translate(
                     regexp_replace(regexp_replace(regexp_replace(k,
                         '([a-z])([A-Z])', '\1 \2', 'g'),
                         '([A-Za-z])([0-9])', '\1 \2', 'g'),
                         '([0-9])([A-Za-z])', '\1 \2', 'g'),
                     'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                 '[^a-z0-9]+', ' ', 'g'));
    RETURN words ~ replace(endings, '$', '( |$)') OR words ~ '(^| )pass$';
END
$$;

-- domain::secret::is_fingerprint: '#' and 8 lowercase hex digits. Left as
-- they are, so redacting twice changes nothing.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_fingerprint(v text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v ~ '^#[0-9a-f]{8}$'
$$;

-- Mirrors domain::secret::fingerprint: '#' + 8 hex of SHA-256.
CREATE OR REPLACE FUNCTION keyfall.keyfall_fingerprint(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '#' || left(encode(sha256(convert_to(v, 'UTF8')), 'hex'), 8)
$$;

-- domain::secret::is_key_shaped: a string that is a key by itself. (Only
-- saves time: the shortest shape is a JWT's 7 characters; the prefixes and
-- PEM need 11.)
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_key_shaped(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT length(t) >= 7 AND (
           (strpos(t, 'eyJ') > 0 AND t ~ '(^|[^A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.')
        OR (length(t) >= 11 AND (
               t ~ '^(sk-|sk_|rw-).{8}'
            OR t ~ '^(AKIA|ASIA)[A-Z0-9]{12}'
            OR t ~ '^[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[^ \t\n\r\f]{8,}$'
            OR strpos(t, '-----BEGIN ') > 0))
        OR (length(t) >= 32
            AND t ~ '^[A-Za-z0-9+/=_-]+$'
            AND t ~ '[A-Za-z]' AND t ~ '[0-9]'
            AND t !~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
            AND regexp_count(t, '[a-z](?=[A-Z0-9])|[A-Z](?=[a-z0-9])|[0-9](?=[A-Za-z])') >= 8))
$$;

-- domain::secret::is_secret_value: key-shaped, URL credentials, a secret
-- assignment, or JSON text holding a secret — judged with space, tab, LF,
-- CR and FF trimmed. The rules that need a loop (URL credentials, an
-- assignment, JSON text) are keyfall_has_secret_part, asked only of values
-- holding `://`, `=` or starting like JSON.
CREATE OR REPLACE FUNCTION keyfall.keyfall_has_secret_part(t text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    m         pg_catalog.text[];
    piece     pg_catalog.text;
    authority pg_catalog.text;
    userinfo  pg_catalog.text;
BEGIN
    -- URL credentials: the userinfo of each authority after `://` (only
    -- where one holds an `@`).
    IF t ~ '://[^/?# \t\n\r\f]*@' THEN
        FOR m IN SELECT regexp_matches(t, '://([^/?# \t\n\r\f]*)', 'g') LOOP
            authority := m[1];
            IF strpos(authority, '@') > 0 THEN
                userinfo := left(authority, length(authority) - strpos(reverse(authority), '@'));
                IF strpos(userinfo, ':') > 0 THEN
                    IF substr(userinfo, strpos(userinfo, ':') + 1) <> '' THEN
                        RETURN true;
                    END IF;
                ELSIF keyfall.keyfall_is_key_shaped(userinfo) THEN
                    RETURN true;
                END IF;
            END IF;
        END LOOP;
    END IF;
    -- A secret assignment: NAME=VALUE between separators.
    IF strpos(t, '=') > 0 THEN
        FOR piece IN SELECT regexp_split_to_table(t, '[&;#?,"'' \t\n\r\f]') LOOP
            IF strpos(piece, '=') > 0 AND substr(piece, strpos(piece, '=') + 1) <> ''
               AND (keyfall.keyfall_is_secret_key(split_part(piece, '=', 1))
                    OR keyfall.keyfall_is_key_shaped(substr(piece, strpos(piece, '=') + 1))) THEN
                RETURN true;
            END IF;
        END LOOP;
    END IF;
    -- JSON text: each string literal, a name before `:` or a value.
    IF left(t, 1) IN ('{', '[') AND strpos(t, '"') > 0 THEN
        FOR m IN SELECT regexp_matches(t, '"((?:[^"\\]|\\.)*)"([ \t\n\r]*:)?', 'g') LOOP
            piece := regexp_replace(m[1], '\\(.)', '\1', 'g');
            IF (m[2] IS NOT NULL AND keyfall.keyfall_is_secret_key(piece))
               OR keyfall.keyfall_is_secret_value(piece) THEN
                RETURN true;
            END IF;
        END LOOP;
    END IF;
    RETURN false;
END
$$;

-- One expression: most values (no `=`, not JSON text, no `@` in a URL's
-- authority) are judged by keyfall_is_key_shaped alone, inlined here.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_value(v text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t pg_catalog.text := btrim(v, E' \t\n\r\f');
BEGIN
    RETURN coalesce(t <> '' AND (
        keyfall.keyfall_is_key_shaped(t)
        OR ((strpos(t, '=') > 0 OR left(t, 1) IN ('{', '[') OR (strpos(t, '://') > 0 AND t ~ '://[^/?# \t\n\r\f]*@'))
            AND keyfall.keyfall_has_secret_part(t))), false);
END
$$;

-- domain::secret's redaction of one scalar: `secret` says a field on the
-- way down was secret-named. Secret leaves (non-empty, non-null scalars
-- under such a field, strings shaped like a secret anywhere) become
-- fingerprints; empty strings, nulls and fingerprints stay.
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

-- domain::secret's redaction walk. An object or array at depth 64
-- (domain::secret::MAX_DEPTH; the document is depth 0) becomes the
-- fingerprint of its text, so the recursion never goes deeper than that
-- (and scalars are redacted without recursing at all).
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

-- A copy of a JSON document with every secret value replaced by its
-- fingerprint, at any depth (the audit trigger's redaction).
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact(doc jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT keyfall.keyfall_redact_at(doc, 0, false)
$$;

-- domain::secret::fingerprint_document: an audit `before`/`after` document
-- redacted member by member, each at depth 0 under its own name — what the
-- trigger makes of the config it puts there, so a row it wrote is
-- unchanged by this.
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact_document(doc jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_typeof(doc) = 'object' THEN
            (SELECT coalesce(jsonb_object_agg(e.key,
                        keyfall.keyfall_redact_at(e.value, 0, keyfall.keyfall_is_secret_key(e.key))), '{}'::jsonb)
               FROM jsonb_each(doc) AS e)
        ELSE keyfall.keyfall_redact(doc)
    END
$$;

-- Audit rows written by an older keyfall (a first-layout audit log moved in,
-- section 1) may hold secrets in clear: each such row's before/after is
-- redacted as the capture would write it now, and one audit row says how
-- many ("redact", table audit_log). The log is append-only by trigger; the
-- schema's owner lifts that trigger for this one UPDATE, in this
-- transaction, and puts it back. Only the owner may (ALTER TABLE); nobody
-- else may run this at all. Returns the number of rows redacted;
-- redacting again finds none.
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact_history() RETURNS bigint
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    n pg_catalog.int8;
BEGIN
    ALTER TABLE keyfall.audit_log DISABLE TRIGGER audit_log_append_only;
    -- Each document redacted once (rows without one are not looked at).
    UPDATE keyfall.audit_log l
       SET before = r.before, after = r.after
      FROM (SELECT x.id,
                   keyfall.keyfall_redact_document(x.before) AS before,
                   keyfall.keyfall_redact_document(x.after) AS after
              FROM keyfall.audit_log x
             WHERE x.before IS NOT NULL OR x.after IS NOT NULL) r
     WHERE l.id = r.id
       AND (l.before IS DISTINCT FROM r.before OR l.after IS DISTINCT FROM r.after);
    GET DIAGNOSTICS n = ROW_COUNT;
    ALTER TABLE keyfall.audit_log ENABLE TRIGGER audit_log_append_only;
    IF n > 0 THEN
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        VALUES (keyfall.keyfall_actor(), 'redact', 'audit_log',
                jsonb_build_object('redacted', format('redacted %s rows: secret shapes widened', n), 'rows', n));
    END IF;
    -- The second hop's provider, kept per row for the report, masked as the
    -- view now masks it.
    UPDATE keyfall.row_verdicts r
       SET provider = keyfall.keyfall_mask(r.provider)
     WHERE r.provider IS DISTINCT FROM keyfall.keyfall_mask(r.provider);
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_redact_history() FROM PUBLIC;

-- Raw keys only for those who may (issue 9): a session whose role is
-- neither a database superuser nor a member of the role owning keyfall's
-- schema (an operator role such as keyfall_operator) reads every secret in
-- keyfall's view of the settings masked — the same text keyfall shows,
-- `••••••••` + last four + fingerprint — and gets a raw key only through
-- the checked, audited keyfall_reveal / keyfall_config_for_test (which run
-- as the schema's owner). A masked value written back means "keep the
-- stored one": the write trigger restores it (keyfall_unmask).

-- Whether a role reads raw secrets (a database superuser, or a member of
-- the role owning keyfall's schema), in PL/pgSQL: its plan is kept for the
-- session. (keyfall's view of the settings asks the same question for the
-- current role in its own plan, once per statement: see
-- keyfall_create_views.)
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

-- The current role: what the views show.
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

-- The session's login, asked from inside a SECURITY DEFINER function (where
-- current_user is the owner): what a write's RETURNING may show.
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

-- Blank as Python's str.strip() sees it (section 3 uses it too): the
-- characters str.isspace() calls whitespace (Unicode White_Space plus
-- U+001C..U+001F). Mirrors domain::registry::is_blank.
CREATE OR REPLACE FUNCTION keyfall.keyfall_py_blank(s text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT btrim(s, E' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f' || chr(133) || chr(160) || chr(5760)
                    || chr(8192) || chr(8193) || chr(8194) || chr(8195) || chr(8196) || chr(8197)
                    || chr(8198) || chr(8199) || chr(8200) || chr(8201) || chr(8202)
                    || chr(8232) || chr(8233) || chr(8239) || chr(8287) || chr(12288)) = ''
$$;

-- One secret string as keyfall shows it (domain::secret::Secret::masked):
-- the mask, the last four for keys of 12 characters or more, the
-- fingerprint. Empty and Python-blank strings stay as they are, so the
-- resolver's verdicts on a masked config are the verdicts on the real one.
CREATE OR REPLACE FUNCTION keyfall.keyfall_mask_string(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN s = '' OR keyfall.keyfall_py_blank(s) THEN s
        WHEN s ~ '^••••••••.* #[0-9a-f]{8}$' THEN s
        WHEN char_length(s) >= 12 THEN '••••••••' || right(s, 4) || ' ' || keyfall.keyfall_fingerprint(s)
        ELSE '•••••••• ' || keyfall.keyfall_fingerprint(s)
    END
$$;

-- A config with every secret string masked (by name at any depth or by
-- shape); numbers, booleans and containers keep their type, so a key that
-- is not a string stays not a string. Depth-limited like keyfall_redact.
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

CREATE OR REPLACE FUNCTION keyfall.keyfall_mask(doc jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT keyfall.keyfall_mask_at(doc, 0, false)
$$;

-- `new` with every masked value that masks the stored value at the same
-- place put back to the stored value; a masked value that matches nothing
-- stored is refused (it would store the mask as a key).
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


-- ===========================================================================
-- 3. Verdicts
-- ===========================================================================
-- One row's verdict as the app would reach it (DESIGN §2). The app reads a
-- config with Python's json.loads (psycopg hands Django the jsonb text), so
-- what counts is what Python makes of jsonb's text:
--   * an integer (no fraction: jsonb prints 1e400 as 401 digits) is a
--     Python int of any size: never 0 unless it is 0, and max_tokens has no
--     upper bound;
--   * a number with a fraction is a Python float: beyond f64 it is
--     infinity (out of temperature's range), below f64's smallest it is 0.0
--     (1e-400: false, like 0; -1e-400 is -0.0, inside 0..2);
--   * nesting 900 containers deep or more (json.loads raises RecursionError
--     past ~990 in the test app, earlier in a deeper call stack) or an
--     integer of more than 4300 digits (ValueError, Python >= 3.11) makes the
--     app raise while loading the row, active or not: verdict 'unreadable',
--     checked first.
-- Mirrors domain::json::read_config and domain::registry::judge;
-- tests/it/odd_json.rs and the report-equivalence property test hold them
-- equal.

-- Python's float() of a jsonb number (NULL for anything else). Integers
-- come out as float8 too: only their sign and how they compare with small
-- bounds matter here, and those are exact.
CREATE OR REPLACE FUNCTION keyfall.keyfall_py_float(v jsonb) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN n IS NULL THEN NULL
        WHEN n = 0 OR abs(n) BETWEEN 1e-300 AND 1e300 THEN n::float8
        -- 2^1024 - 2^970: from here on the nearest float is infinity.
        WHEN abs(n) > 1e300 AND abs(n) < power(2::numeric, 1024) - power(2::numeric, 970) THEN n::float8
        WHEN n > 1e300 THEN 'Infinity'::float8
        WHEN n < -1e300 THEN '-Infinity'::float8
        -- 2^-1075 (= 5^1075 / 10^1075) and below round to zero; above it,
        -- float8's input keeps the subnormal.
        WHEN abs(n) > power(5::numeric, 1075) * 1e-1075 THEN n::float8
        ELSE 0::float8
    END
    FROM (SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN (v::text)::numeric END AS n) x
$$;

-- Python's truthiness of a JSON value as the app's json.loads makes it: the
-- app tests `if not value`. A missing value (SQL NULL) is falsy; numbers
-- count by their Python value (1e-400 is 0.0, false).
CREATE OR REPLACE FUNCTION keyfall.keyfall_py_truthy(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'boolean' THEN v = 'true'::jsonb
        WHEN 'number' THEN keyfall.keyfall_py_float(v) <> 0
        WHEN 'string' THEN v #>> '{}' <> ''
        WHEN 'array' THEN jsonb_array_length(v) > 0
        WHEN 'object' THEN v <> '{}'::jsonb
        ELSE false
    END
$$;

-- Whether the app's json.loads raises reading this config: nested 900
-- containers deep or more (a container at level 899; the walk goes no
-- deeper, so a 10,000-deep row costs no stack), else an integer of more
-- than 4300 digits anywhere (only walked once the first is known false).
-- domain::json::APP_MAX_DEPTH and APP_MAX_INT_DIGITS.
CREATE OR REPLACE FUNCTION keyfall.keyfall_py_unreadable(config jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_typeof(config) NOT IN ('object', 'array') THEN
            jsonb_typeof(config) = 'number' AND abs((config::text)::numeric) >= 1e4300
            AND scale((config::text)::numeric) = 0
        WHEN jsonb_path_exists(config, 'strict $.**{899} ? (@.type() == "object" || @.type() == "array")') THEN true
        ELSE EXISTS (
            SELECT 1
              FROM jsonb_path_query(config, 'strict $.** ? (@.type() == "number" && @.abs() >= 1e4300)') big
             WHERE scale((big #>> '{}')::numeric) = 0)
    END
$$;

-- One registry field's problem, if any: a wrong type, out of range, a
-- provider reference naming no provider type. Absent or null is fine.
-- `kind`, `min`, `max` are the field's row of registry_fields; `providers`
-- registry_state.providers. Pure (inlined into the caller's query).
CREATE OR REPLACE FUNCTION keyfall.keyfall_field_problem(config pg_catalog.jsonb, field pg_catalog.text,
                                                         kind pg_catalog.text, lo pg_catalog.numeric,
                                                         hi pg_catalog.numeric, providers pg_catalog.text[])
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN NOT (config ? field) OR jsonb_typeof(config -> field) = 'null' THEN false
        WHEN kind = 'text' THEN jsonb_typeof(config -> field) <> 'string'
        -- A falsy provider is no_provider's business (checked before).
        WHEN kind = 'provider_ref' THEN jsonb_typeof(config -> field) <> 'string'
                                     OR (config ->> field) <> ALL (coalesce(providers, '{}'::text[]))
        WHEN kind NOT IN ('number', 'integer') THEN false
        WHEN jsonb_typeof(config -> field) <> 'number' THEN true
        WHEN kind = 'number' THEN keyfall.keyfall_py_float(config -> field) NOT BETWEEN lo::float8 AND hi::float8
        ELSE (config ->> field) !~ '^-?[0-9]+$' OR (config ->> field)::numeric < lo
    END
$$;

-- The rules of one row (domain::registry::judge; the order of the checks
-- is documented on its `Verdict`), given what the registry says of its
-- type: `kind` 'provider', 'consumer' or 'unknown' (a type it does not hold,
-- which answers with any active object), and whether any of the type's
-- fields has a problem (`bad_fields`, evaluated only when reached). Pure.
CREATE OR REPLACE FUNCTION keyfall.keyfall_judge(config pg_catalog.jsonb, is_active pg_catalog.bool,
                                                 kind pg_catalog.text, bad_fields pg_catalog.bool)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN keyfall.keyfall_py_unreadable(config) THEN 'unreadable'
        WHEN NOT is_active THEN 'inactive'
        WHEN jsonb_typeof(config) IS DISTINCT FROM 'object' THEN 'invalid_config'
        WHEN kind = 'provider' AND NOT keyfall.keyfall_py_truthy(config -> 'apiKey') THEN 'no_api_key'
        WHEN kind = 'provider' AND jsonb_typeof(config -> 'apiKey') <> 'string' THEN 'key_not_string'
        WHEN kind = 'provider' AND keyfall.keyfall_py_blank(config ->> 'apiKey') THEN 'no_api_key'
        WHEN kind = 'consumer' AND NOT keyfall.keyfall_py_truthy(config -> 'provider') THEN 'no_provider'
        WHEN bad_fields THEN 'bad_fields'
        ELSE 'answered'
    END
$$;

-- One row's verdict. keyfall_load_registry writes this function from the
-- registry tables each time it loads a registry (keyfall_registry_verdict_sql
-- below): one branch per type, calling keyfall_judge with the type's kind
-- and keyfall_field_problem once per field with the field's row as
-- arguments. It stays a plain SQL expression that PostgreSQL inlines into
-- the statement calling it (the capture trigger, the refills): a function
-- that looked the type up in the tables on every row measured 5-14 times
-- slower over 250,000 rows. Before any registry is loaded it knows no type.
CREATE OR REPLACE FUNCTION keyfall.keyfall_row_verdict(integration_type pg_catalog.text, config pg_catalog.jsonb,
                                                       is_active pg_catalog.bool)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT keyfall.keyfall_judge($2, $3, 'unknown', false)
$$;

-- The body of keyfall_row_verdict for the registry in the tables: every
-- value in it is a literal quoted from a table row (format's %L).
CREATE OR REPLACE FUNCTION keyfall.keyfall_registry_verdict_sql() RETURNS text
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT coalesce(
        E'\n    SELECT CASE $1' || string_agg(
            format(E'\n        WHEN %L THEN keyfall.keyfall_judge($2, $3, %L,\n            %s)', t.name, t.kind,
                   coalesce((SELECT string_agg(format('keyfall.keyfall_field_problem($2, %L, %L, %L::pg_catalog.numeric,'
                                                      ' %L::pg_catalog.numeric, %L::pg_catalog.text[])',
                                                      f.field, f.kind, f.min, f.max,
                                                      CASE WHEN f.kind = 'provider_ref' THEN s.providers END),
                                               E'\n            OR ' ORDER BY f.position)
                               FROM keyfall.registry_fields f
                              WHERE f.type = t.name AND f.kind <> 'secret'), 'false')),
            '' ORDER BY t.position) || E'\n        ELSE keyfall.keyfall_judge($2, $3, ''unknown'', false)\n    END\n',
        E'\n    SELECT keyfall.keyfall_judge($2, $3, ''unknown'', false)\n')
      FROM keyfall.registry_types t
      LEFT JOIN keyfall.registry_state s ON true
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_registry_verdict_sql() FROM PUBLIC;

-- Write keyfall_row_verdict for the registry in the tables. Replacing it
-- makes every session plan again the statements that inlined it.
CREATE OR REPLACE FUNCTION keyfall.keyfall_write_row_verdict() RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION keyfall.keyfall_row_verdict(integration_type pg_catalog.text,'
                   ' config pg_catalog.jsonb, is_active pg_catalog.bool)'
                   ' RETURNS pg_catalog.text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                   keyfall.keyfall_registry_verdict_sql());
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_write_row_verdict() FROM PUBLIC;

-- Load the registry document `doc` (domain::registry::document) whose
-- fingerprint is `fp`, unless it is the one loaded: the tables replaced,
-- and every stored verdict judged again where it changes, all in the
-- caller's transaction. True when it loaded. Concurrent loaders queue on
-- registry_state's lock; the second finds the fingerprint in place.
CREATE OR REPLACE FUNCTION keyfall.keyfall_load_registry(doc jsonb, fp text) RETURNS boolean
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
BEGIN
    IF (SELECT s.fingerprint FROM keyfall.registry_state s) IS NOT DISTINCT FROM fp THEN
        RETURN false;
    END IF;
    LOCK TABLE keyfall.registry_state IN SHARE ROW EXCLUSIVE MODE;
    IF (SELECT s.fingerprint FROM keyfall.registry_state s) IS NOT DISTINCT FROM fp THEN
        RETURN false;
    END IF;
    DELETE FROM keyfall.registry_fields;
    DELETE FROM keyfall.registry_types;
    INSERT INTO keyfall.registry_types (name, kind, key_prefix, position)
    SELECT t.value ->> 'name', t.value ->> 'kind', t.value ->> 'key_prefix', t.ordinality::pg_catalog.int4
      FROM jsonb_array_elements(doc -> 'types') WITH ORDINALITY t;
    INSERT INTO keyfall.registry_fields (type, field, kind, required, min, max, position)
    SELECT t.value ->> 'name', f.value ->> 'name', f.value ->> 'kind', (f.value ->> 'required')::boolean,
           (f.value ->> 'min')::pg_catalog.numeric, (f.value ->> 'max')::pg_catalog.numeric,
           f.ordinality::pg_catalog.int4
      FROM jsonb_array_elements(doc -> 'types') t, jsonb_array_elements(t.value -> 'fields') WITH ORDINALITY f;
    INSERT INTO keyfall.registry_state (fingerprint, document, providers, loaded_at)
    VALUES (fp, doc,
            ARRAY(SELECT r.name FROM keyfall.registry_types r WHERE r.kind = 'provider' ORDER BY r.position),
            now())
    ON CONFLICT (singleton) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, document = EXCLUDED.document, providers = EXCLUDED.providers,
            loaded_at = EXCLUDED.loaded_at;
    PERFORM keyfall.keyfall_write_row_verdict();
    -- The stored verdicts, by the rules just loaded (where a mapping is
    -- installed; detached, there are none).
    IF to_regclass('keyfall.integration_settings') IS NOT NULL AND EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        UPDATE keyfall.row_verdicts r
           SET verdict = keyfall.keyfall_row_verdict(s.integration_type, s.config, s.is_active)
          FROM keyfall.integration_settings s
         WHERE r.setting_id = s.id
           AND r.verdict IS DISTINCT FROM keyfall.keyfall_row_verdict(s.integration_type, s.config, s.is_active);
        ANALYZE keyfall.row_verdicts;
    END IF;
    RETURN true;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_load_registry(jsonb, text) FROM PUBLIC;


-- ===========================================================================
-- 4. Resolve
-- ===========================================================================
-- What readers of the mapped views need beyond the rows: honest times and
-- versions. Reads only; nothing here runs on the app's tables.

-- 'infinity' is a valid timestamptz that no client time type can hold:
-- reads clamp it to a finite value rather than fail.
CREATE OR REPLACE FUNCTION keyfall.keyfall_finite(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t IS NULL OR t = '-infinity' THEN '0001-01-01 00:00:00+00'::timestamptz
                WHEN t = 'infinity' THEN '9999-12-31 00:00:00+00'::timestamptz
                ELSE t END
$$;

-- When the setting last changed, where the app's table has no (finite)
-- updated_at: the time of the row's last audited change, NULL when there is
-- none (never a made-up 0001-01-01). Readers call it only for such rows:
-- `CASE WHEN isfinite(updated_at) THEN updated_at ELSE
-- keyfall_audited_at(id) END`. The audit log is read as the caller, under
-- its row-level security: a row the session may not view has no audited
-- time either.
CREATE OR REPLACE FUNCTION keyfall.keyfall_audited_at(setting_id bigint) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT l.at FROM keyfall.audit_log l
     WHERE l.table_name OPERATOR(pg_catalog.=) 'integration_settings'
       AND l.row_id OPERATOR(pg_catalog.=) setting_id
     ORDER BY l.id DESC LIMIT 1
$$;

-- Whether a setting's `version` is a row token (the view exposes xmin where
-- the app's table has no version column, as keyfall_install_mapping
-- decides): a token that changes on every write, not a count, so nobody may
-- promise its next value.
CREATE OR REPLACE FUNCTION keyfall.keyfall_version_is_token() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT pg_catalog.jsonb_typeof(m.spec -> 'settings' -> 'columns' -> 'version') IS DISTINCT FROM 'string'
                       FROM keyfall.mapping m), true)
$$;


-- ===========================================================================
-- 5. Permissions and owner rights
-- ===========================================================================
-- Who is writing: keyfall names its operator with SET LOCAL keyfall.actor;
-- any other client (the Django app, psql) is its database role. The
-- database checks every write through keyfall against the permission rules
-- of DESIGN §4, and what a login may read follows the same rules.

-- Whether the session's login is a database superuser.
CREATE OR REPLACE FUNCTION keyfall.keyfall_login_is_superuser() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user), false)
$$;

-- May this session's login act as the app user `email`? A superuser may
-- act as anyone (the audit log records the login all the same).
-- ($1, not the parameter's name: inside the query `email` would be the
-- column.)
CREATE OR REPLACE FUNCTION keyfall.keyfall_may_act_as(email text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT keyfall.keyfall_login_is_superuser()
        OR EXISTS (SELECT 1 FROM keyfall.operators o WHERE o.login = session_user AND o.email = lower($1))
$$;

-- Who keyfall's session says it is (`SET LOCAL keyfall.actor`), without a
-- trailing note such as " (overwrite)".
CREATE OR REPLACE FUNCTION keyfall.keyfall_claimed() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT nullif(split_part(coalesce(current_setting('keyfall.actor', true), ''), ' (', 1), '')
$$;

-- The actor the audit log records: the claimed operator (when the login may
-- act as them) with one of keyfall's own notes (" (overwrite)",
-- " (revert of #N)", " (restored to as of #N)" or "… as of <UTC time>"),
-- nothing else; else the login itself, with the
-- refused claim shown. Any client (the Django app, psql) that claims
-- nothing is its database role.
CREATE OR REPLACE FUNCTION keyfall.keyfall_actor() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN keyfall.keyfall_claimed() IS NULL THEN session_user::text
        WHEN keyfall.keyfall_may_act_as(keyfall.keyfall_claimed())
             THEN keyfall.keyfall_claimed()
                  || coalesce(substring(current_setting('keyfall.actor', true)
                                        FROM '( \((overwrite|revert of #[0-9]{1,19}|restored to as of (#[0-9]{1,19}|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC))\))$'), '')
        ELSE session_user::text || ' (claimed ' || left(current_setting('keyfall.actor', true), 200) || ')'
    END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_actor() FROM PUBLIC;

-- Finding the operator's app user fast on the app's own tables (issue 19,
-- point 8). Every check the database makes for a write (the permission
-- checks, the chain and policy guard, the read scope) first finds the
-- operator's app user: the one user whose email equals the operator's in
-- any case. On keyfall's demo tables an index on lower(email) answers that;
-- on Django's tables (an index on email, none on lower(email)) it was a
-- scan of every user per check, 0.5-1 s at XL. keyfall_user_by_email
-- answers from the app's own index on email when it is in byte order
-- (Django's `_like` index, varchar_pattern_ops, or any btree under the C
-- collation): it walks the email character by character, keeping only the
-- prefixes some stored email has, each extended by every character whose
-- lower() is the operator's character there — a few index probes a
-- character, whatever the number of users.

-- How the any-case lookup may use the app's users table: 'pattern' (a
-- btree on the email column with text/varchar_pattern_ops), 'c' (a btree
-- with the default operator class in the C or POSIX collation), or NULL (a
-- plain query: an index on lower(email) answers it, else a scan). The walk
-- needs lower() to map one character to one character: libc's, in UTF8.
CREATE OR REPLACE FUNCTION keyfall.keyfall_email_walk() RETURNS pg_catalog.text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
    WITH m AS (
        SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(m.spec -> 'users' ->> 'schema') OPERATOR(pg_catalog.||) '.'
                                      OPERATOR(pg_catalog.||) pg_catalog.quote_ident(m.spec -> 'users' ->> 'table')) AS rel,
               m.spec -> 'users' -> 'columns' ->> 'email' AS col
          FROM keyfall.mapping m LIMIT 1
    ), col AS (
        SELECT m.rel, a.attnum, a.attcollation
          FROM m JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) m.rel
                                               AND a.attname OPERATOR(pg_catalog.=) m.col::pg_catalog.name
         WHERE NOT a.attisdropped
    ), one_to_one AS (
        -- libc's lower() maps each character to one character (ICU's may not).
        SELECT pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.=) 'UTF8'
               AND CASE WHEN col.attcollation OPERATOR(pg_catalog.=) 100
                        THEN (SELECT d.datlocprovider OPERATOR(pg_catalog.=) 'c' FROM pg_catalog.pg_database d
                               WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                        ELSE (SELECT c.collprovider OPERATOR(pg_catalog.=) 'c' FROM pg_catalog.pg_collation c
                               WHERE c.oid OPERATOR(pg_catalog.=) col.attcollation) END AS ok
          FROM col
    ), idx AS (
        SELECT oc.opcname, oc.opcdefault, i.indcollation[0] AS coll
          FROM col
          JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) col.rel
          JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
          JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) ic.relam
          JOIN pg_catalog.pg_opclass oc ON oc.oid OPERATOR(pg_catalog.=) i.indclass[0]
         WHERE am.amname OPERATOR(pg_catalog.=) 'btree' AND i.indisvalid AND i.indpred IS NULL
           AND i.indkey[0] OPERATOR(pg_catalog.=) col.attnum
    )
    SELECT CASE
        WHEN NOT coalesce((SELECT bool_and(o.ok) FROM one_to_one o), false) THEN NULL
        WHEN EXISTS (SELECT 1 FROM idx WHERE idx.opcname IN ('text_pattern_ops', 'varchar_pattern_ops')) THEN 'pattern'
        WHEN EXISTS (SELECT 1 FROM idx
                      WHERE idx.opcdefault AND idx.opcname IN ('text_ops', 'varchar_ops')
                        AND (idx.coll IN (950, 951)
                             OR (idx.coll OPERATOR(pg_catalog.=) 100
                                 AND (SELECT d.datcollate IN ('C', 'POSIX') FROM pg_catalog.pg_database d
                                       WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))))
             THEN 'c'
    END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_email_walk() FROM PUBLIC;

-- The string right after every string that starts with `s`, in byte order
-- (its last character's successor); NULL when there is none.
CREATE OR REPLACE FUNCTION keyfall.keyfall_prefix_end(s pg_catalog.text) RETURNS pg_catalog.text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN s OPERATOR(pg_catalog.=) '' THEN NULL
        WHEN pg_catalog.ascii(pg_catalog.right(s, 1)) OPERATOR(pg_catalog.>=) 1114111 THEN NULL
        ELSE pg_catalog.left(s, -1) OPERATOR(pg_catalog.||) pg_catalog.chr(
                 CASE WHEN pg_catalog.ascii(pg_catalog.right(s, 1)) OPERATOR(pg_catalog.=) 55295 THEN 57344
                      ELSE pg_catalog.ascii(pg_catalog.right(s, 1)) OPERATOR(pg_catalog.+) 1 END)
    END
$$;

-- The id of the one user whose email is `email` in any case; NULL when
-- there is none, or several (two emails that differ only in case are
-- nobody: no login may act as an ambiguous name).
CREATE OR REPLACE FUNCTION keyfall.keyfall_user_by_email(email pg_catalog.text) RETURNS pg_catalog.int8
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    want    pg_catalog.text := pg_catalog.lower(keyfall_user_by_email.email);
    walk    pg_catalog.text;
    lowered pg_catalog.text[];
    live    pg_catalog.text[] := ARRAY[''];
    grown   pg_catalog.text[];
    p       pg_catalog.text;
    t       pg_catalog.text;
    lo      pg_catalog.text;
    hi      pg_catalog.text;
    found   pg_catalog.text;
    ch      pg_catalog.text;
    ids     pg_catalog.int8[];
BEGIN
    IF want IS NULL OR want = '' THEN
        RETURN NULL;
    END IF;
    walk := keyfall.keyfall_email_walk();
    -- The walk's bounds need a character above every stored one.
    IF walk IS NULL OR pg_catalog.strpos(keyfall_user_by_email.email, pg_catalog.chr(1114111)) > 0
       OR pg_catalog.char_length(want) > 400 THEN
        SELECT pg_catalog.array_agg(x.id) INTO ids
          FROM (SELECT u.id FROM keyfall.users u WHERE pg_catalog.lower(u.email) = want LIMIT 2) x;
        RETURN CASE WHEN pg_catalog.cardinality(ids) = 1 THEN ids[1] END;
    END IF;
    -- lower() of every ASCII character, by code.
    SELECT pg_catalog.array_agg(pg_catalog.lower(pg_catalog.chr(k)) ORDER BY k) INTO lowered
      FROM pg_catalog.generate_series(1, 127) AS k;
    FOR i IN 1 .. pg_catalog.char_length(want) LOOP
        t := pg_catalog.substr(want, i, 1);
        grown := '{}';
        FOREACH p IN ARRAY live LOOP
            -- The ASCII characters whose lower() is t, where an email
            -- continues p with one.
            IF walk = 'pattern' THEN
                grown := grown || ARRAY(
                    SELECT p || pg_catalog.chr(a.k::pg_catalog.int4)
                      FROM pg_catalog.unnest(lowered) WITH ORDINALITY AS a(l, k)
                     WHERE a.l = t
                       AND EXISTS (SELECT 1 FROM keyfall.users u
                                    WHERE u.email ~>=~ (p || pg_catalog.chr(a.k::pg_catalog.int4))
                                      AND u.email ~<~ (p || pg_catalog.chr(a.k::pg_catalog.int4 + 1))));
            ELSE
                grown := grown || ARRAY(
                    SELECT p || pg_catalog.chr(a.k::pg_catalog.int4)
                      FROM pg_catalog.unnest(lowered) WITH ORDINALITY AS a(l, k)
                     WHERE a.l = t
                       AND EXISTS (SELECT 1 FROM keyfall.users u
                                    WHERE u.email >= (p || pg_catalog.chr(a.k::pg_catalog.int4))
                                      AND u.email < (p || pg_catalog.chr(a.k::pg_catalog.int4 + 1))));
            END IF;
            -- The other characters that follow p in some email, one index
            -- probe each (none, for emails in ASCII): those whose lower() is t.
            lo := p || pg_catalog.chr(128);
            hi := coalesce(keyfall.keyfall_prefix_end(p), pg_catalog.chr(1114111));
            LOOP
                IF walk = 'pattern' THEN
                    SELECT u.email INTO found FROM keyfall.users u
                     WHERE u.email ~>=~ lo AND u.email ~<~ hi ORDER BY u.email USING ~<~ LIMIT 1;
                ELSE
                    SELECT u.email INTO found FROM keyfall.users u
                     WHERE u.email >= lo AND u.email < hi ORDER BY u.email LIMIT 1;
                END IF;
                EXIT WHEN found IS NULL;
                ch := pg_catalog.substr(found, i, 1);
                IF pg_catalog.lower(ch) = t THEN
                    grown := grown || (p || ch);
                END IF;
                lo := keyfall.keyfall_prefix_end(p || ch);
                EXIT WHEN lo IS NULL;
                found := NULL;
            END LOOP;
        END LOOP;
        live := grown;
        EXIT WHEN pg_catalog.cardinality(live) = 0;
    END LOOP;
    IF pg_catalog.cardinality(live) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT pg_catalog.array_agg(x.id) INTO ids
      FROM (SELECT u.id FROM keyfall.users u
             WHERE u.email = ANY (live) AND pg_catalog.lower(u.email) = want LIMIT 2) x;
    RETURN CASE WHEN pg_catalog.cardinality(ids) = 1 THEN ids[1] END;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_user_by_email(text) FROM PUBLIC;

-- The permission rules of DESIGN §4 (domain::permissions::evaluate), for
-- the checks the database makes at each write: the names of the checks
-- that fail for `email` doing `action` on the settings of `account_id`
-- (NULL: the system settings) under the policy in force; empty when
-- allowed. The operator's user is found by keyfall_user_by_email. A
-- property test holds this equal to the Rust evaluator.
CREATE OR REPLACE FUNCTION keyfall.keyfall_failing_checks(email text, action text, account_id bigint) RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    u        record;
    acc      record;
    mode     pg_catalog.text;
    target_system pg_catalog.bool;
    active   pg_catalog.bool := false;
    tenant   pg_catalog.bool := false;
    sysdev   pg_catalog.bool := false;
    owner    pg_catalog.bool := false;
    failing  pg_catalog.text[] := '{}';
BEGIN
    -- The one user with this email in any case; two that differ only in
    -- case (a case-sensitive app allows it) are nobody: no login may act
    -- as an ambiguous name.
    SELECT * INTO u FROM keyfall.users x
     WHERE x.id = keyfall.keyfall_user_by_email(keyfall_failing_checks.email);
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
CREATE OR REPLACE FUNCTION keyfall.keyfall_operator() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_operator() FROM PUBLIC;

-- Refuse, with the failing checks, unless the session's operator may do
-- `action` on the settings of `account_id` under the policy in force now.
CREATE OR REPLACE FUNCTION keyfall.keyfall_authorize(action text, account_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_authorize(text,bigint) FROM PUBLIC;

-- The chain and the policy are for active superusers and developers (as
-- the seed's Django admin): checked here for every writer through keyfall
-- and any other role without ownership; the operator's user found by
-- keyfall_user_by_email.
CREATE OR REPLACE FUNCTION keyfall.keyfall_guard_admin() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    who pg_catalog.text;
    ok  pg_catalog.bool;
BEGIN
    -- Migrations and the schema owner's maintenance run without an operator.
    IF keyfall.keyfall_claimed() IS NULL AND keyfall.keyfall_login_is_superuser() THEN
        RETURN NULL;
    END IF;
    who := keyfall.keyfall_operator();
    SELECT u.is_active AND (u.is_superuser OR u.role = 'developer') INTO ok
      FROM keyfall.users u WHERE u.id = keyfall.keyfall_user_by_email(who);
    IF NOT coalesce(ok, false) THEN
        RAISE EXCEPTION 'denied by the database: the chain and the policy are for active superusers and developers; % is not one', left(who, 200)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_guard_admin() FROM PUBLIC;

CREATE OR REPLACE TRIGGER fallback_chain_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON keyfall.fallback_chain
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_guard_admin();
CREATE OR REPLACE TRIGGER policy_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON keyfall.policy
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_guard_admin();

-- Reads follow the policy, in the database (DESIGN §4). What a login may
-- read through keyfall — settings (even masked), the audit log — is what
-- `can … view_settings` allows its operator for that account under the
-- policy in force: keyfall_failing_checks decides, asked once per
-- statement for three targets (any tenant: -1, which is no account; the
-- system accounts: NULL; the operator's own account, found by
-- keyfall_user_by_email: an ambiguous email is nobody there too). The
-- operator is the one the session names (keyfall.actor) when the login may
-- act as them, else every user the login is mapped to (it may act as
-- each). A database superuser, or a member of the role owning this
-- schema, reads everything, as it could read the app's tables anyway.
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
        SELECT u.account_id INTO own FROM keyfall.users u WHERE u.id = keyfall.keyfall_user_by_email(e);
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

-- The chain, the policy, the function map and the operators change who
-- resolves where, so they are audited and announced too (whole rows; they
-- hold no secrets).
CREATE OR REPLACE FUNCTION keyfall.keyfall_config_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_config_audit() FROM PUBLIC;

CREATE OR REPLACE TRIGGER fallback_chain_audit AFTER INSERT OR UPDATE OR DELETE ON keyfall.fallback_chain
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();
CREATE OR REPLACE TRIGGER policy_audit AFTER INSERT OR UPDATE OR DELETE ON keyfall.policy
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();
CREATE OR REPLACE TRIGGER ai_functions_audit AFTER INSERT OR UPDATE OR DELETE ON keyfall.ai_functions
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();
CREATE OR REPLACE TRIGGER operators_audit AFTER INSERT OR UPDATE OR DELETE ON keyfall.operators
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_config_audit();

-- The audit log is append-only, for every role including the owner.
CREATE OR REPLACE FUNCTION keyfall.keyfall_audit_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_audit_append_only() FROM PUBLIC;

CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON keyfall.audit_log
    FOR EACH ROW EXECUTE FUNCTION keyfall.keyfall_audit_append_only();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON keyfall.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall.keyfall_audit_append_only();

-- Raw keys (the table key_requests, section 1): the request is written and
-- committed first, with its audit row; the key is handed over once. Either
-- purpose hands the raw key to the client, so both are recorded as the
-- read of a raw key ('reveal'), with what it was for.
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

-- Use a committed request, once: the setting's raw config, or an error. Of
-- a pair with several rows, the lowest id's, the one the app uses.
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

CREATE OR REPLACE FUNCTION keyfall.keyfall_reveal(slug text, integration_type text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT keyfall.keyfall_take_key($1, $2, 'reveal') ->> 'apiKey'
$$;

-- A setting's config with its raw key, for a connection test (after a
-- committed keyfall_request_key(…, 'test_connection')).
CREATE OR REPLACE FUNCTION keyfall.keyfall_config_for_test(slug text, integration_type text) RETURNS jsonb
LANGUAGE sql VOLATILE AS $$
    SELECT keyfall.keyfall_take_key($1, $2, 'test_connection')
$$;

-- Who this session is, for keyfall's start: the login, whether it is a
-- database superuser, and the app users it may act as.
CREATE OR REPLACE FUNCTION keyfall.keyfall_whoami() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'login', session_user::text,
        'superuser', keyfall.keyfall_login_is_superuser(),
        'emails', coalesce((SELECT jsonb_agg(o.email ORDER BY o.email) FROM keyfall.operators o
                             WHERE o.login = session_user), '[]'::jsonb))
$$;

-- Values of a type the app's role owns (its own enum, composite, or a cast
-- it defined) are never handled with the owner's rights: the capture
-- records such a change without contents.
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

-- Whether the relation has a column of such a type: the column's name and
-- why, or NULL.
CREATE OR REPLACE FUNCTION keyfall.keyfall_untrusted_column(rel oid) RETURNS text
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT format('column %I: %s', a.attname, keyfall.keyfall_untrusted_type(a.atttypid))
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
       AND keyfall.keyfall_untrusted_type(a.atttypid) IS NOT NULL
     ORDER BY a.attnum
     LIMIT 1
$$;


-- ===========================================================================
-- 6. Mapping install (the code generator)
-- ===========================================================================
-- keyfall never harms the app it is attached to (issue 19). Nothing of
-- keyfall's can fail or block the app's writes or migrations:
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
-- * A settings table without a unique (account, integration_type)
--   constraint is attached and read the way the app reads it: its
--   get_model_config takes `.filter(account=…, integration_type=…).first()`,
--   and Django's .first() on an unordered queryset orders by the primary
--   key: the row with the lowest id answers for its pair. keyfall's own
--   write path never adds a second row to a pair (INSERT … WHERE NOT
--   EXISTS), and keyfall refuses to write to a pair that has several.
-- The only SQL keyfall generates is in keyfall_create_views (the views and
-- the write path's INSTEAD OF trigger function, keyfall_settings_write),
-- written here in its final form.

-- A mapped table as `schema.table`, quoted.
CREATE OR REPLACE FUNCTION keyfall.keyfall_qualified(t jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('%I.%I', t ->> 'schema', t ->> 'table')
$$;

-- A CASE mapping an app column's values onto keyfall's names (statuses,
-- roles); values not listed pass through as they are.
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

-- A whole number from a JSON value, or NULL (an id that stopped being a
-- number — a uuid after an AlterField — must not fail the app's statement).
CREATE OR REPLACE FUNCTION keyfall.keyfall_json_int8(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN v::bigint END
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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_pairs_unique(oid,text,text) FROM PUBLIC;

-- What does not fit in a mapping (DESIGN §5), one sentence each; empty when
-- it fits. `m` is the mapping as keyfall's config makes it (store::mapping).
-- A mapped column of a type keyfall cannot trust is not mapped; settings
-- may have integer (not only bigint) ids — keyfall reads and writes them as
-- bigint; a settings table without a unique (account, type) constraint
-- fits (keyfall_pairs_unique).
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

-- Where each mapped table and column is, by identity (keyfall.mapping.places).
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

-- The audited part of one settings row, read from the whole row `d`
-- through the mapping's columns `c`: the config (redacted), is_active, the
-- version where the app keeps one, and the row's verdict where the
-- redacted config would be judged otherwise (a key of only whitespace, a
-- key that is not a string, a config nested past redaction's depth):
-- history rebuilds a past answer from the redacted config, and the verdict
-- is what the app saw.
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

-- The capture: one audit row per changed row of the app's settings table,
-- secrets fingerprinted, the verdicts kept — one per (account, type), the
-- row the app reads — a notice per row (or one for a bulk statement). Runs
-- with the owner's rights (the app's role needs no grant); never raises
-- into the app's statement. On a settings table without a unique
-- (account, type) pair, it takes a transaction-level advisory lock per
-- touched pair before judging it again: a second writer inserting rows for
-- the same pair waits for the first (where a unique index would have made
-- it wait) and judges with the first's rows in view, so each pair keeps
-- one verdict.
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

-- TRUNCATE fires no row triggers: it is audited (one row, no contents) and
-- announced as a bulk change here, and the verdicts go with the rows.
-- Never raises into the app's statement.
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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_settings_truncate() FROM PUBLIC;

-- A change to the app's users or accounts, announced (no contents), never
-- raising.
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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_announce() FROM PUBLIC;

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
-- the generic capture on the app's settings table, the history capture on
-- its users and accounts tables (section 7), every row's verdict, and
-- where each mapped table and column is (for following renames).
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

-- Attach and detach keep keyfall's history (issue 19). Detach removes only
-- what touches the app: the triggers keyfall put on the app's tables (every
-- trigger whose function is keyfall's, on a table outside keyfall's
-- schema), keyfall's event triggers, and the views over the app's tables.
-- keyfall's own data stays: audit log, chain, policy, function map,
-- operators. The mapping moves to keyfall.detached, with when, by whom, and
-- the event triggers to make again. Attaching again resumes: the same audit
-- log, a row at each end of the gap.

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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_ddl_start() FROM PUBLIC;

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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_ddl_end() FROM PUBLIC;

-- The log admits its gaps. Statements that disable, enable, drop or
-- (re)create keyfall's triggers on the app's tables, by any role, leave a
-- row: 'capture_disabled' (with what is off) or 'capture_enabled'. The
-- functions never raise into the statement they watch.
CREATE OR REPLACE FUNCTION keyfall.keyfall_capture_state() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_object_agg(c.oid::regclass::text || '.' || t.tgname,
                                     t.tgenabled <> 'D' ORDER BY c.oid::regclass::text, t.tgname), '{}'::jsonb)
      FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
     WHERE t.tgname IN ('keyfall_audit_insert', 'keyfall_audit_update', 'keyfall_audit_delete',
                        'keyfall_audit_truncate', 'keyfall_announce')
$$;

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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_watch_ddl() FROM PUBLIC;

-- Event triggers need a superuser. Installed when the migration runs as one
-- (the usual case: attach needs one too); otherwise keyfall says so where
-- the gap matters (`keyfall audit`). Not where keyfall is detached: detach
-- took them away, and attach makes them again.
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND NOT EXISTS (SELECT 1 FROM keyfall.detached)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e
                        WHERE e.evtname IN ('keyfall_watch_ddl', 'keyfall_watch_drop', 'keyfall_ddl_start',
                                            'keyfall_ddl_end')) THEN
        CREATE EVENT TRIGGER keyfall_watch_ddl ON ddl_command_end
            WHEN TAG IN ('ALTER TABLE', 'CREATE TRIGGER', 'DROP TRIGGER', 'DROP TABLE', 'ALTER TRIGGER')
            EXECUTE FUNCTION keyfall.keyfall_watch_ddl();
        CREATE EVENT TRIGGER keyfall_watch_drop ON sql_drop
            EXECUTE FUNCTION keyfall.keyfall_watch_ddl();
        CREATE EVENT TRIGGER keyfall_ddl_start ON ddl_command_start
            WHEN TAG IN ('ALTER TABLE', 'DROP TABLE')
            EXECUTE FUNCTION keyfall.keyfall_ddl_start();
        CREATE EVENT TRIGGER keyfall_ddl_end ON ddl_command_end
            WHEN TAG IN ('ALTER TABLE', 'DROP TABLE', 'CREATE TABLE', 'CREATE INDEX', 'ALTER INDEX', 'DROP INDEX',
                         'DROP SCHEMA', 'ALTER SCHEMA')
            EXECUTE FUNCTION keyfall.keyfall_ddl_end();
    END IF;
END
$$;

-- Everything a command checks before it runs, in one round trip: the
-- migrations applied, the mapping installed, what of the app's tables no
-- longer fits it (what the DDL watcher keeps in keyfall.mapping.stale,
-- instead of inspecting the app's tables in every process, ~6 ms of server
-- time, whenever the watcher is installed and enabled; without it, the full
-- inspection), the registry's fingerprint ('' where none is loaded, NULL
-- where this login may not read it: keyfall then takes the registry as
-- current), and who this login is. `Store::check` calls it first and
-- falls back to asking step by step (for the exact message) only when
-- something is off. PL/pgSQL, so its body is checked when called, not when
-- created: attach runs the migrations in a rolled-back check before sqlx's
-- migration table exists.
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
        'registry', CASE WHEN has_table_privilege('keyfall.registry_state', 'SELECT')
                         THEN coalesce((SELECT s.fingerprint FROM keyfall.registry_state s), '') END,
        'whoami', keyfall.keyfall_whoami());
END
$$;


-- ===========================================================================
-- 7. History capture
-- ===========================================================================
-- History of everything an answer depends on (issue 23). From attach on,
-- keyfall can rebuild any past answer:
-- * settings are captured by keyfall_capture_settings (section 6), each
--   captured row carrying its verdict where redaction would hide it;
-- * the chain, the policy and the function map by keyfall_config_audit
--   (section 5: whole rows, no secrets);
-- * the app's users (email, role, active, superuser, account) and accounts
--   (slug, name, status) here, the same way as the settings: one generic
--   statement trigger per event (keyfall_capture_history), reading each
--   changed row whole (to_jsonb) through the mapping at run time, writing
--   one audit row per row whose recorded part changed (a login that only
--   touches last_login writes nothing), never raising into the app's
--   statement. Only those mapped columns are recorded: never a password,
--   never a config.
-- * where history begins is one audit row, 'history_start' (table
--   'keyfall'), written by the first attach.

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
-- table's column types (keyfall_untrusted_column) runs only where a cheap
-- catalog look-up finds a type that needs it.
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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_install_history(jsonb) FROM PUBLIC;

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
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_mark_history_start(text) FROM PUBLIC;


-- ===========================================================================
-- 8. Hardening
-- ===========================================================================

-- Every function with the owner's rights pins its search path with
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

-- keyfall_row_verdict as the registry in the tables says (before any load:
-- no type known; run again over a loaded registry, the registry's again).
SELECT keyfall.keyfall_write_row_verdict();

SELECT keyfall.keyfall_harden();

-- A moved audit log of the first layout (section 1) is redacted as the
-- capture now would.
SELECT keyfall.keyfall_redact_history() WHERE current_setting('keyfall.moved_first_layout', true) = 'on';
