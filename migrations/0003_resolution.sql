-- The resolution rules, set-based (DESIGN §2), for the fallback report and
-- the impact preview. Mirrors domain::registry::judge step for step; the
-- report-equivalence property test holds the two together. A change to the
-- registry's field rules needs a new migration replacing this function.

-- A value counts as present unless it is missing or JSON null.
CREATE FUNCTION keyfall_field_problem(config jsonb, field text, kind text, required boolean)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN NOT (config ? field) OR jsonb_typeof(config -> field) = 'null' THEN required
        WHEN kind = 'text' THEN jsonb_typeof(config -> field) <> 'string'
        WHEN kind = 'provider' THEN jsonb_typeof(config -> field) <> 'string'
                                 OR (config ->> field) NOT IN ('openai', 'runware')
        WHEN kind = 'temperature' THEN jsonb_typeof(config -> field) <> 'number'
                                 OR (config ->> field)::numeric NOT BETWEEN 0 AND 2
        WHEN kind = 'positive_int' THEN jsonb_typeof(config -> field) <> 'number'
                                 OR (config ->> field) !~ '^-?[0-9]+$'
                                 OR (config ->> field)::numeric NOT BETWEEN 1 AND 9223372036854775807
        ELSE false
    END
$$;

-- 'answered', 'inactive', 'no_api_key' or 'invalid_config' for one row.
CREATE FUNCTION keyfall_row_verdict(integration_type text, config jsonb, is_active boolean)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN NOT is_active THEN 'inactive'
        WHEN jsonb_typeof(config) IS DISTINCT FROM 'object' THEN 'invalid_config'
        WHEN integration_type IN ('openai', 'runware')
             AND config ? 'apiKey' AND jsonb_typeof(config -> 'apiKey') NOT IN ('string', 'null')
             THEN 'invalid_config'
        WHEN integration_type IN ('openai', 'runware')
             AND btrim(coalesce(config ->> 'apiKey', ''), E' \t\n\r\x0b\x0c') = ''
             THEN 'no_api_key'
        WHEN integration_type = 'openai' AND (
                keyfall_field_problem(config, 'model', 'text', false)
             OR keyfall_field_problem(config, 'base_url', 'text', false)
             OR keyfall_field_problem(config, 'temperature', 'temperature', false)
             OR keyfall_field_problem(config, 'max_tokens', 'positive_int', false))
             THEN 'invalid_config'
        WHEN integration_type = 'runware' AND (
                keyfall_field_problem(config, 'model', 'text', false)
             OR keyfall_field_problem(config, 'base_url', 'text', false))
             THEN 'invalid_config'
        WHEN integration_type = 'image_generation' AND (
                keyfall_field_problem(config, 'provider', 'provider', true)
             OR keyfall_field_problem(config, 'model', 'text', false)
             OR keyfall_field_problem(config, 'image_size', 'text', false)
             OR keyfall_field_problem(config, 'quality', 'text', false)
             OR keyfall_field_problem(config, 'style', 'text', false))
             THEN 'invalid_config'
        ELSE 'answered'
    END
$$;
