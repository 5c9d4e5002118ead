-- Secret field names fold case in ASCII only, exactly as
-- domain::secret::is_secret_field does: lower() follows the database
-- collation, under which a look-alike (KELVIN SIGN for K) would be a secret
-- on screen but not in the audit log.
CREATE OR REPLACE FUNCTION keyfall_is_secret_key(k text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT translate(replace(replace(k, '_', ''), '-', ''),
                     'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
           ~ '(apikey|secret|password|token|secretkey)$'
$$;

-- 'infinity' is a valid timestamptz that no client time type can hold:
-- reads clamp it to a finite value rather than fail or panic.
CREATE FUNCTION keyfall_finite(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t = '-infinity' THEN '0001-01-01 00:00:00+00'::timestamptz
                WHEN t = 'infinity' THEN '9999-12-31 00:00:00+00'::timestamptz
                ELSE t END
$$;
