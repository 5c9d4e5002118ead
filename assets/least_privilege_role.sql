-- A least-privilege database role for keyfall operators (DESIGN §4): the
-- real boundary is the database, not the UI. Apply once per database as the
-- owner of keyfall's schema, after `keyfall attach` / `keyfall migrate`, e.g.
-- `psql -d keyfall -f assets/least_privilege_role.sql`, then connect keyfall
-- as `keyfall_operator` (give it a password or a certificate as your
-- installation requires). Migrations and attach stay the owner's job.
--
-- The operator works only through keyfall's views and checked functions:
-- it needs no grant on the app's tables at all.
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
GRANT SELECT ON keyfall.accounts, keyfall.users, keyfall.ai_functions, keyfall._sqlx_migrations, keyfall.mapping,
    keyfall.row_verdicts, keyfall.registry_state, keyfall.registry_types, keyfall.registry_fields
    TO keyfall_operator;
-- DML on the settings (through the view) and the chain.
GRANT SELECT, INSERT, UPDATE, DELETE ON keyfall.integration_settings, keyfall.fallback_chain TO keyfall_operator;
GRANT SELECT, UPDATE ON keyfall.policy TO keyfall_operator;
-- The audit log: read only. Its rows are written by the database itself
-- (the audit triggers, the checked reveal), never by an operator role, so
-- none can be forged; the triggers refuse UPDATE, DELETE and TRUNCATE for
-- every role as well.
GRANT SELECT ON keyfall.audit_log TO keyfall_operator;
-- Who may do what is decided by the database at each write (the settings
-- view's INSTEAD OF trigger, the chain and policy guards, keyfall_reveal),
-- for the app user this login is mapped to: `keyfall operator add
-- keyfall_operator EMAIL`, run by the schema owner.
