-- A least-privilege database role for keyfall operators (DESIGN §4): the
-- real boundary is the database, not the UI. Apply once per database as the
-- owner of keyfall's schema, after `keyfall attach` / `keyfall migrate`, e.g.
-- `psql -d keyfall -f assets/least_privilege_role.sql`, then connect keyfall
-- as `keyfall_operator` (give it a password or a certificate as your
-- installation requires). Migrations and attach stay the owner's job.
--
-- The operator works only through keyfall's views: the app's tables are
-- reached through them with the view owner's rights, so the role needs no
-- grant on the app's tables except the settings id sequence (for creating
-- a setting).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'keyfall_operator') THEN
        CREATE ROLE keyfall_operator LOGIN;
    END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA keyfall FROM keyfall_operator;
GRANT USAGE ON SCHEMA keyfall TO keyfall_operator;

-- Read what resolution and permissions need.
GRANT SELECT ON keyfall.accounts, keyfall.users, keyfall.ai_functions, keyfall._sqlx_migrations, keyfall.mapping
    TO keyfall_operator;
-- DML on the settings (through the view) and the chain.
GRANT SELECT, INSERT, UPDATE, DELETE ON keyfall.integration_settings, keyfall.fallback_chain TO keyfall_operator;
GRANT SELECT, UPDATE ON keyfall.policy TO keyfall_operator;
-- The audit log: read and append, never change (the triggers refuse
-- UPDATE, DELETE and TRUNCATE for every role as well).
GRANT SELECT, INSERT ON keyfall.audit_log TO keyfall_operator;
GRANT USAGE ON SEQUENCE keyfall.audit_log_id_seq TO keyfall_operator;
-- New settings take their id from the app's sequence (the demo's here).
DO $$
DECLARE
    seq text := pg_get_serial_sequence(
        (SELECT format('%I.%I', spec -> 'settings' ->> 'schema', spec -> 'settings' ->> 'table') FROM keyfall.mapping),
        (SELECT spec -> 'settings' -> 'columns' ->> 'id' FROM keyfall.mapping));
BEGIN
    IF seq IS NOT NULL THEN
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO keyfall_operator', seq);
    END IF;
END
$$;
