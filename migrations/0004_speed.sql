-- keyfall 0004: speed (issue #10). Idempotent: each section may be re-run.

-- connection set-up (preflight)
-- Everything a command checks before it runs, in one round trip: the
-- migrations applied, the mapping installed, what of the app's tables no
-- longer fits it, and who this login is. `Store::verify` calls it first and
-- falls back to asking step by step (for the exact message) only when
-- something is off.
CREATE OR REPLACE FUNCTION keyfall.keyfall_preflight() RETURNS jsonb
-- PL/pgSQL, so its body is checked when called, not when created: attach
-- runs these migrations in a rolled-back check before sqlx's migration table
-- exists.
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog AS $$
BEGIN
    RETURN jsonb_build_object(
        'migrations', coalesce((SELECT jsonb_agg(jsonb_build_array(m.version, encode(m.checksum, 'hex')) ORDER BY m.version)
                                  FROM keyfall._sqlx_migrations m WHERE m.success), '[]'::jsonb),
        'mapping', (SELECT x.spec FROM keyfall.mapping x LIMIT 1),
        'problems', coalesce((SELECT to_jsonb(keyfall.keyfall_mapping_problems(x.spec)) FROM keyfall.mapping x LIMIT 1),
                             '[]'::jsonb),
        'whoami', keyfall.keyfall_whoami());
END
$$;

-- XL load (audit trigger): secret names without a query per name
-- keyfall_is_secret_key as in 0002, with two exact fast paths for the names
-- nearly every config has (camelCase like apiKey, snake_case like api_key):
-- there the words are plain to see, and the general path's query (a
-- split into a table, ~18 µs) is skipped. Same answers (tests/it/secrets.rs).
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_key(k text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    endings constant text :=
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
$$;
-- resolve (masked reads)
-- Whether a role reads raw secrets (a database superuser, or a member of
-- the role owning keyfall's schema), in PL/pgSQL: its plan is kept for the
-- session. As SQL functions the planner cannot inline, the two questions
-- below were planned again in every query that read the settings view.
CREATE OR REPLACE FUNCTION keyfall.keyfall_role_sees_raw(r name) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = r), false)
        OR pg_catalog.pg_has_role(r, (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'keyfall'),
                                  'MEMBER');
END
$$;

-- The current role: what the views show.
CREATE OR REPLACE FUNCTION keyfall.keyfall_sees_raw() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN keyfall.keyfall_role_sees_raw(current_user);
END
$$;

-- The session's login, asked from inside a SECURITY DEFINER function (where
-- current_user is the owner): what a write's RETURNING may show.
CREATE OR REPLACE FUNCTION keyfall.keyfall_login_sees_raw() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN keyfall.keyfall_role_sees_raw(session_user);
END
$$;

-- reads of the settings view
-- keyfall's view of the settings asks keyfall_sees_raw() once per
-- statement, not once per row. A plain call in the view's CASE ran for
-- every row, SQL or PL/pgSQL alike: about 7 µs a row, 1.8 s of the 2 s a
-- read of 250,000 settings took (lint, export, the report). As an uncorrelated scalar subquery it is an InitPlan, computed
-- once per statement for the role running it: the same answer, since the
-- role cannot change within a statement. keyfall_install_mapping is
-- rewritten where it writes that CASE (nothing to do once it is), and an
-- installed view still asking per row is made again.
DO $$
DECLARE
    def text := pg_get_functiondef('keyfall.keyfall_install_mapping(jsonb)'::regprocedure);
    fixed text := replace(def, 'CASE WHEN keyfall.keyfall_sees_raw() THEN',
                               'CASE WHEN (SELECT keyfall.keyfall_sees_raw()) THEN');
BEGIN
    IF fixed <> def THEN
        EXECUTE fixed;
    END IF;
    -- Before a mapping is installed there is no view (to_regclass: NULL).
    -- pg_get_viewdef leaves the schema out where search_path has it.
    IF coalesce(pg_get_viewdef(to_regclass('keyfall.integration_settings')), '')
           ~ 'WHEN (keyfall\.)?keyfall_sees_raw\(\)'
       AND EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        PERFORM keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping));
    END IF;
END
$$;
