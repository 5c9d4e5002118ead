-- A least-privilege database role for keyfall operators (DESIGN §4): the
-- real boundary is the database, not the UI. Apply once per database as its
-- owner, e.g. `psql -d keyfall -f assets/least_privilege_role.sql`, then
-- connect keyfall as `keyfall_operator` (give it a password or a
-- certificate as your installation requires). Migrations must then be
-- applied by the owner (`keyfall migrate` as the owner); keyfall skips
-- migrating when the schema is already current.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keyfall_operator') THEN
        CREATE ROLE keyfall_operator LOGIN;
    END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM keyfall_operator;
GRANT USAGE ON SCHEMA public TO keyfall_operator;

-- Read what resolution and permissions need.
GRANT SELECT ON accounts, users, ai_functions, _sqlx_migrations TO keyfall_operator;
-- DML on the settings tables.
GRANT SELECT, INSERT, UPDATE, DELETE ON integration_settings, fallback_chain TO keyfall_operator;
GRANT SELECT, UPDATE ON policy TO keyfall_operator;
-- The audit log: read and append, never change (the triggers refuse
-- UPDATE, DELETE and TRUNCATE for every role as well).
GRANT SELECT, INSERT ON audit_log TO keyfall_operator;
GRANT USAGE ON SEQUENCE integration_settings_id_seq, audit_log_id_seq TO keyfall_operator;
