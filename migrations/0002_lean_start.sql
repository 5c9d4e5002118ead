-- A lean start (issue 19 point 8): what a fresh session pays on the server
-- for a one-shot command's first statement (the start-up check, and for
-- `resolve` its subject in the same statement). Most of it is first-use
-- work in a new backend — each relation, index and catalog opened cold,
-- each function body parsed — and stays. One part is avoidable: PostgreSQL
-- loads the PL/pgSQL library into a backend (plpgsql.so and its
-- initialisation) as soon as it starts a plan that names a PL/pgSQL
-- function without a SET clause of its own, called or not, and compiles a
-- PL/pgSQL function at its first call. The start-up check was one
-- (called: loaded and compiled), and keyfall's view of the settings named
-- another through a SQL helper the planner inlines: the mask (keyfall_mask
-- → keyfall_mask_at, in a branch the schema's owner, who reads raw configs,
-- never takes). So every command's first statement loaded PL/pgSQL.
--
-- Here both are SQL functions with a pinned search_path, as every keyfall
-- function with settings of its own has. A function with a SET clause is
-- never inlined, and the language behind it is looked up when it is first
-- called, not when a plan naming it starts (so is keyfall_scope, the read
-- scope behind the view: SECURITY DEFINER, it has one already). PL/pgSQL
-- is loaded only for what needs it: a role that reads masked configs or
-- whose read scope is asked, a mapping no DDL watcher vouches for. What
-- each answers is unchanged: the same reads, the same rights.

-- keyfall_preflight's body is checked when it is called, not when it is
-- created: attach applies the migrations in a rolled-back check before
-- sqlx's migration table exists (as pg_dump restores functions).
SET LOCAL check_function_bodies = off;

-- Everything a command checks before it runs, in one round trip: the
-- migrations applied, the mapping installed, what of the app's tables no
-- longer fits it (what the DDL watcher keeps in keyfall.mapping.stale
-- whenever its event trigger is installed and enabled; without it, the full
-- inspection, keyfall_mapping_problems, a few ms of server time), the
-- registry's fingerprint ('' where none is loaded, NULL where this login
-- may not read it: keyfall then takes the registry as current), and who
-- this login is. `Store::check` calls it first and falls back to asking
-- step by step (for the exact message) only when something is off. One
-- SQL statement, parsed and planned at each call (once a process).
CREATE OR REPLACE FUNCTION keyfall.keyfall_preflight() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
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
        'whoami', keyfall.keyfall_whoami())
$$;

-- A config with every secret string masked (the baseline's section 2).
-- Called once per masked row: the SET clause costs a few microseconds a
-- call against tens for the masking itself.
CREATE OR REPLACE FUNCTION keyfall.keyfall_mask(doc jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT keyfall.keyfall_mask_at(doc, 0, false)
$$;

SELECT keyfall.keyfall_harden();
