-- keyfall 0004: speed (issue #10). Idempotent: each section may be re-run.

-- connection set-up (preflight)
-- Everything a command checks before it runs, in one round trip: the
-- migrations applied, the mapping installed, what of the app's tables no
-- longer fits it, and who this login is. `Store::verify` calls it first and
-- falls back to asking step by step (for the exact message) only when
-- something is off.
CREATE OR REPLACE FUNCTION keyfall.keyfall_preflight() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog AS $$
    SELECT jsonb_build_object(
        'migrations', coalesce((SELECT jsonb_agg(jsonb_build_array(m.version, encode(m.checksum, 'hex')) ORDER BY m.version)
                                  FROM keyfall._sqlx_migrations m WHERE m.success), '[]'::jsonb),
        'mapping', (SELECT x.spec FROM keyfall.mapping x LIMIT 1),
        'problems', coalesce((SELECT to_jsonb(keyfall.keyfall_mapping_problems(x.spec)) FROM keyfall.mapping x LIMIT 1),
                             '[]'::jsonb),
        'whoami', keyfall.keyfall_whoami())
$$;
