-- Odd numbers and deep JSON get the app's verdict (issue 18, point 4).
--
-- The app reads a config with Python's json.loads (psycopg hands Django the
-- jsonb text), so what counts is what Python makes of jsonb's text:
--   * an integer (no fraction: jsonb prints 1e400 as 401 digits) is a
--     Python int of any size: never 0 unless it is 0, and max_tokens has no
--     upper bound (the old one, 2^63-1, was keyfall's, not the app's);
--   * a number with a fraction is a Python float: beyond f64 it is
--     infinity (out of temperature's range), below f64's smallest it is 0.0
--     (1e-400: false, like 0; -1e-400 is -0.0, inside 0..2);
--   * nesting 900 containers deep or more (json.loads raises RecursionError
--     past ~990 in the test app, earlier in a deeper call stack) or an
--     integer of more than 4300 digits (ValueError, Python >= 3.11) makes the
--     app raise while loading the row, active or not: verdict 'unreadable',
--     checked first. Re-runnable (every function CREATE OR REPLACE). Mirrors domain::json::read_config and
--     domain::registry::judge; tests/it/odd_json.rs holds them equal.

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

-- Python's truthiness of a JSON value as the app's json.loads makes it:
-- numbers by their Python value (1e-400 is 0.0, false).
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

-- One registry field's problem: temperature compared as Python's float of
-- it; max_tokens any integer of 1 or more, however many digits.
CREATE OR REPLACE FUNCTION keyfall.keyfall_field_problem(config jsonb, field text, kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN NOT (config ? field) OR jsonb_typeof(config -> field) = 'null' THEN false
        WHEN kind = 'text' THEN jsonb_typeof(config -> field) <> 'string'
        WHEN kind = 'provider' THEN jsonb_typeof(config -> field) <> 'string'
                                 OR (config ->> field) NOT IN ('openai', 'runware')
        WHEN jsonb_typeof(config -> field) <> 'number' THEN kind IN ('temperature', 'positive_int')
        WHEN kind = 'temperature' THEN keyfall.keyfall_py_float(config -> field) NOT BETWEEN 0 AND 2
        WHEN kind = 'positive_int' THEN (config ->> field) !~ '^-?[0-9]+$'
                                 OR (config ->> field)::numeric < 1
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

-- One row's verdict: as 0001's, with 'unreadable' first (the app raises
-- loading the row, before it looks at is_active).
CREATE OR REPLACE FUNCTION keyfall.keyfall_row_verdict(integration_type text, config jsonb, is_active boolean)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN keyfall.keyfall_py_unreadable(config) THEN 'unreadable'
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

-- The stored verdicts of rows these rules now judge differently.
DO $$
BEGIN
    IF to_regclass('keyfall.integration_settings') IS NOT NULL THEN
        UPDATE keyfall.row_verdicts r
           SET verdict = keyfall.keyfall_row_verdict(s.integration_type, s.config, s.is_active)
          FROM keyfall.integration_settings s
         WHERE r.setting_id = s.id
           AND r.verdict IS DISTINCT FROM keyfall.keyfall_row_verdict(s.integration_type, s.config, s.is_active);
    END IF;
END
$$;
