-- keyfall 0016: the registry is data (issue 21, point 1).
--
-- The row rules the SQL applies (which types are providers, which are
-- consumers, each type's fields, their kinds and ranges, which names a
-- consumer may give as its provider) were literals in keyfall_row_verdict
-- and keyfall_field_problem (0001, 0009). They now live only in the Rust
-- registry (src/domain/registry.rs, `TYPES`); keyfall writes it into the
-- tables below at `migrate` and at `attach` (keyfall_load_registry, one
-- transaction, with the registry's fingerprint), and the functions read
-- the tables. When the fingerprint changes, the stored verdicts
-- (keyfall.row_verdicts) are judged again in the same transaction.
--
-- Self-contained; re-runnable (IF NOT EXISTS, CREATE OR REPLACE). Defines
-- the tables registry_types, registry_fields, registry_state and the
-- functions keyfall_judge (the order of the checks), keyfall_registry_verdict_sql
-- and keyfall_load_registry; redefines keyfall_row_verdict (written again
-- from the tables by every load), keyfall_field_problem (new signature: the
-- field's kind, range and the provider names are arguments; 0001/0009's
-- 3-argument one, with the provider list, is dropped) and
-- keyfall_preflight (it also returns the registry's fingerprint).
--
-- Until keyfall_load_registry first runs (right after the migrations, in
-- `keyfall migrate` / `attach` / `demo`), the tables are empty and every
-- type is judged as one the registry does not know; keyfall takes a
-- database whose fingerprint is not its own as one to migrate, and the
-- load judges the stored verdicts again.

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

-- 0001-0009's field check, whose provider list was a literal.
DROP FUNCTION IF EXISTS keyfall.keyfall_field_problem(jsonb, text, text);

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

-- 0010's start-up check, with the registry's fingerprint: '' where none
-- is loaded, NULL where this login may not read it (keyfall then takes the
-- registry as current: it cannot load one anyway).
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

-- Run again over a loaded registry (an install that lost its record of
-- this migration), the verdict function is the registry's again.
SELECT keyfall.keyfall_write_row_verdict();

SELECT keyfall.keyfall_harden();
