-- Honest rows (issue 19): when a setting last changed, and what its version
-- is. Reads only; nothing here runs on the app's tables. Re-runnable (OR
-- REPLACE): `migrate` applies it again to an install that lost its record.

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
