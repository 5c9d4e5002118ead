-- The secret shapes as registry data (issue 21, point 1). The shapes a
-- secret is known by — the endings of a secret name's words, the last words
-- that are secret only there, the prefixes of a key, the markers a key
-- holds — are written once, in src/domain/registry.rs (`SECRET_SHAPES`),
-- and loaded here with the rest of the registry (the same document, the
-- same fingerprint: a change of shapes is a registry to load again).
-- keyfall_is_secret_key and keyfall_is_key_shaped (the baseline's section 2)
-- are written again from this table at each load, as keyfall_row_verdict
-- is from the type tables: the capture trigger redacts every app write
-- through them, so they stay constant expressions (a regular expression
-- compiled once per session; a SQL function PostgreSQL inlines) rather
-- than functions reading a table per key or per value. What is code stays
-- code, in the baseline's functions: how a name is cut into words, the
-- `Bearer` form, JWTs, high entropy, URL credentials, assignments, JSON text.
--
-- Re-runnable: the table IF NOT EXISTS, every function OR REPLACE, and the
-- two secret functions written again from the table where it holds shapes
-- (before the first load it holds none, and the baseline's stand).

CREATE TABLE IF NOT EXISTS keyfall.registry_secret_shapes (
    kind      text NOT NULL CHECK (kind IN ('name_ending', 'name_last_word', 'value_prefix', 'value_marker')),
    shape     text NOT NULL CHECK (shape <> ''),
    -- 'value_prefix': how many characters must follow the prefix, and
    -- which ('any', or 'upper_or_digit': ASCII uppercase letters and digits).
    min_after integer CHECK (min_after >= 0),
    after     text CHECK (after IN ('any', 'upper_or_digit')),
    position  integer NOT NULL,
    PRIMARY KEY (kind, shape),
    -- A name's words are ASCII letters and digits, lowercased: a name shape
    -- is one such word (so it is also safe inside a regular expression).
    CHECK (kind NOT IN ('name_ending', 'name_last_word') OR shape ~ '^[a-z0-9]+$'),
    CHECK ((kind = 'value_prefix') = (min_after IS NOT NULL AND after IS NOT NULL))
);

-- The body of keyfall_is_secret_key for the shapes in the table
-- (domain::secret::is_secret_field): the baseline's three paths (camelCase,
-- snake_case, the general one) with the shapes' regular expressions as
-- literals quoted from the table (format's %L).
CREATE OR REPLACE FUNCTION keyfall.keyfall_secret_key_sql() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    endings pg_catalog.text := (SELECT string_agg(s.shape, '|' ORDER BY s.position)
                                  FROM keyfall.registry_secret_shapes s WHERE s.kind = 'name_ending');
    lasts   pg_catalog.text := (SELECT string_agg(s.shape, '|' ORDER BY s.position)
                                  FROM keyfall.registry_secret_shapes s WHERE s.kind = 'name_last_word');
    spaced  pg_catalog.text;
    snake   pg_catalog.text;
BEGIN
    IF endings IS NULL AND lasts IS NULL THEN
        RETURN E'\nBEGIN\n    RETURN false;\nEND\n';
    END IF;
    -- Words one space apart: a word ending so, or the last word one of these.
    -- (format's %L of a NULL is the word NULL: each part only with shapes.)
    spaced := concat_ws(' OR ',
                        CASE WHEN endings IS NOT NULL THEN format('words ~ %L', '(' || endings || ')( |$)') END,
                        CASE WHEN lasts IS NOT NULL THEN format('words ~ %L', '(^| )(' || lasts || ')$') END);
    -- snake_case of lowercase letters: the words are the runs between `_`.
    snake := concat_ws(' OR ',
                       CASE WHEN endings IS NOT NULL THEN format('k ~ %L', '(' || endings || ')(_|$)') END,
                       CASE WHEN lasts IS NOT NULL THEN format('k ~ %L', '(^|_)(' || lasts || ')_*$') END);
    RETURN format($body$
DECLARE
    words pg_catalog.text;
BEGIN
    -- Only saves time: a secret word's ending is somewhere in the name.
    IF k IS NULL OR k !~* %L THEN
        RETURN false;
    END IF;
    -- camelCase, each hump an uppercase letter and lowercase ones (`apiKey`,
    -- `accessTokenSecret`): the words are split at each uppercase letter.
    IF k ~ '^[a-z]+([A-Z][a-z]+)*$' THEN
        words := lower(regexp_replace(k, '([A-Z])', ' \1', 'g'));
        RETURN %s;
    END IF;
    -- snake_case of lowercase letters (`api_key`).
    IF k ~ '^[a-z_]+$' THEN
        RETURN %s;
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
    RETURN %s;
END
$body$, '(' || concat_ws('|', endings, lasts) || ')', spaced, snake, spaced);
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_secret_key_sql() FROM PUBLIC;

-- The body of keyfall_is_key_shaped for the shapes in the table
-- (domain::secret::is_key_shaped): a JWT, a registry prefix followed by
-- enough characters, `Bearer` and a token, a registry marker, or high
-- entropy. One SQL expression, inlined into its callers. The length guards
-- only save time: the shortest key by a registry shape (or `Bearer` and 8
-- characters, 15), and a JWT's 7 characters.
CREATE OR REPLACE FUNCTION keyfall.keyfall_key_shaped_sql() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    shapes   pg_catalog.text;
    shortest pg_catalog.int4;
BEGIN
    SELECT string_agg(CASE
               WHEN s.kind = 'value_prefix' AND s.after = 'upper_or_digit' THEN
                   format(E'(starts_with(t, %L) AND length(t) >= %s\n                AND substr(t, %s, %s) ~ ''^[A-Z0-9]*$'')',
                          s.shape, length(s.shape) + s.min_after, length(s.shape) + 1, s.min_after)
               WHEN s.kind = 'value_prefix' THEN
                   format('(starts_with(t, %L) AND length(t) >= %s)', s.shape, length(s.shape) + s.min_after)
               ELSE format('strpos(t, %L) > 0', s.shape)
           END, E'\n            OR ' ORDER BY s.kind DESC, s.position),
           least(15, min(CASE WHEN s.kind = 'value_prefix' THEN length(s.shape) + s.min_after
                              ELSE length(s.shape) END))
      INTO shapes, shortest
      FROM keyfall.registry_secret_shapes s
     WHERE s.kind IN ('value_prefix', 'value_marker');
    RETURN format($body$
    SELECT length(t) >= %s AND (
           (strpos(t, 'eyJ') > 0 AND t ~ '(^|[^A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.')
        OR (length(t) >= %s AND (
               %s
            OR t ~ '^[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[^ \t\n\r\f]{8,}$'))
        OR (length(t) >= 32
            AND t ~ '^[A-Za-z0-9+/=_-]+$'
            AND t ~ '[A-Za-z]' AND t ~ '[0-9]'
            AND t !~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
            AND regexp_count(t, '[a-z](?=[A-Z0-9])|[A-Z](?=[a-z0-9])|[0-9](?=[A-Za-z])') >= 8))
$body$, least(7, coalesce(shortest, 15)), coalesce(shortest, 15), coalesce(shapes, 'false'));
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_key_shaped_sql() FROM PUBLIC;

-- Write keyfall_is_secret_key and keyfall_is_key_shaped for the shapes in
-- the table. Replacing them makes every session plan again the statements
-- that use them (the audit trigger's redaction, the masked view).
CREATE OR REPLACE FUNCTION keyfall.keyfall_write_secret_shapes() RETURNS void
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_key(k pg_catalog.text)'
                   ' RETURNS pg_catalog.bool LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS %L',
                   keyfall.keyfall_secret_key_sql());
    EXECUTE format('CREATE OR REPLACE FUNCTION keyfall.keyfall_is_key_shaped(t pg_catalog.text)'
                   ' RETURNS pg_catalog.bool LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                   keyfall.keyfall_key_shaped_sql());
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_write_secret_shapes() FROM PUBLIC;

-- The secret shapes of a registry document, as the table holds them, in
-- the table's order (to tell whether a load changes them).
CREATE OR REPLACE FUNCTION keyfall.keyfall_secret_shapes_loaded() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT jsonb_agg(jsonb_build_array(s.kind, s.shape, s.min_after, s.after) ORDER BY s.kind, s.position)
      FROM keyfall.registry_secret_shapes s
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_secret_shapes_loaded() FROM PUBLIC;

-- Load the registry document `doc` (domain::registry::document) whose
-- fingerprint is `fp`, unless it is the one loaded: the tables replaced,
-- and every stored verdict judged again where it changes, all in the
-- caller's transaction. True when it loaded. Concurrent loaders queue on
-- registry_state's lock; the second finds the fingerprint in place.
-- A document with `secret_shapes` replaces the shapes too; where they
-- change, the two secret functions are written again, each stored
-- provider (row_verdicts.provider) is masked again from its setting, and
-- audit rows written before a shape was known are redacted by it
-- (keyfall_redact_history, which records how many).
CREATE OR REPLACE FUNCTION keyfall.keyfall_load_registry(doc jsonb, fp text) RETURNS boolean
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    shapes_before pg_catalog.jsonb;
    shapes_changed pg_catalog.bool := false;
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
    IF doc ? 'secret_shapes' THEN
        shapes_before := keyfall.keyfall_secret_shapes_loaded();
        DELETE FROM keyfall.registry_secret_shapes;
        INSERT INTO keyfall.registry_secret_shapes (kind, shape, min_after, after, position)
        SELECT l.kind, e.value #>> '{}', NULL, NULL, e.ordinality::pg_catalog.int4
          FROM (VALUES ('name_ending', 'name_endings'), ('name_last_word', 'name_last_words'),
                       ('value_marker', 'value_markers')) AS l(kind, list),
               jsonb_array_elements(doc -> 'secret_shapes' -> l.list) WITH ORDINALITY e;
        INSERT INTO keyfall.registry_secret_shapes (kind, shape, min_after, after, position)
        SELECT 'value_prefix', e.value ->> 'prefix', (e.value ->> 'min_after')::pg_catalog.int4, e.value ->> 'after',
               e.ordinality::pg_catalog.int4
          FROM jsonb_array_elements(doc -> 'secret_shapes' -> 'value_prefixes') WITH ORDINALITY e;
        shapes_changed := keyfall.keyfall_secret_shapes_loaded() IS DISTINCT FROM shapes_before;
        IF shapes_changed THEN
            PERFORM keyfall.keyfall_write_secret_shapes();
        END IF;
    END IF;
    INSERT INTO keyfall.registry_state (fingerprint, document, providers, loaded_at)
    VALUES (fp, doc,
            ARRAY(SELECT r.name FROM keyfall.registry_types r WHERE r.kind = 'provider' ORDER BY r.position),
            now())
    ON CONFLICT (singleton) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, document = EXCLUDED.document, providers = EXCLUDED.providers,
            loaded_at = EXCLUDED.loaded_at;
    PERFORM keyfall.keyfall_write_row_verdict();
    -- The stored verdicts, by the rules just loaded, and the stored
    -- providers by the shapes just loaded (where a mapping is installed;
    -- detached, there are none).
    IF to_regclass('keyfall.integration_settings') IS NOT NULL AND EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        UPDATE keyfall.row_verdicts r
           SET verdict = keyfall.keyfall_row_verdict(s.integration_type, s.config, s.is_active)
          FROM keyfall.integration_settings s
         WHERE r.setting_id = s.id
           AND r.verdict IS DISTINCT FROM keyfall.keyfall_row_verdict(s.integration_type, s.config, s.is_active);
        IF shapes_changed THEN
            UPDATE keyfall.row_verdicts r
               SET provider = keyfall.keyfall_mask(s.config -> 'provider')
              FROM keyfall.integration_settings s
             WHERE r.setting_id = s.id
               AND r.provider IS DISTINCT FROM keyfall.keyfall_mask(s.config -> 'provider');
        END IF;
        ANALYZE keyfall.row_verdicts;
    END IF;
    -- Audit rows written under other shapes (not on the first load of
    -- shapes: until then the baseline's, the same as this keyfall's).
    IF shapes_changed AND shapes_before IS NOT NULL THEN
        PERFORM keyfall.keyfall_redact_history();
    END IF;
    RETURN true;
END
$$;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_load_registry(jsonb, text) FROM PUBLIC;

-- The secret functions as the shapes in the table say (before any load:
-- none in the table, the baseline's stand; applied again over a loaded
-- registry, the registry's again).
SELECT keyfall.keyfall_write_secret_shapes() WHERE EXISTS (SELECT 1 FROM keyfall.registry_secret_shapes);

SELECT keyfall.keyfall_harden();
