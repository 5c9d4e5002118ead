-- keyfall 0018: the blast radius of a key, fast over a year of history
-- (issue 23, point 3).
--
-- `keyfall key-history` first finds the settings rows whose recorded
-- documents ever held a fingerprint. Over a million audit rows a text
-- search reads every one; this index holds, for each settings entry, the
-- fingerprints its before and after documents name (redacted documents
-- keep a key only as its fingerprint, `#` and 8 hex digits), so the rows
-- that held a key are found through one GIN lookup.

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

SELECT keyfall.keyfall_harden();
