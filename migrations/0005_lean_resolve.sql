-- keyfall 0005: one resolve's read, leaner (issue #10). Idempotent: may be re-run.

-- reads of the settings view
-- The view asks once per statement whether the current role reads raw
-- secrets (0004). It asked through keyfall_sees_raw(): two PL/pgSQL calls
-- and a query run through SPI, ~60 µs of every read of the view — a fifth
-- of one resolve's time on the server. The same question is now asked in
-- the statement's own plan, one catalog lookup kept with a prepared
-- statement's plan: is the current role a member of the role owning
-- keyfall's schema. A superuser is a member of every role
-- (is_member_of_role), so this is keyfall_role_sees_raw(current_user)
-- exactly; a schema not found masks. keyfall_install_mapping is rewritten
-- where it writes that CASE (nothing to do once it is), and an installed
-- view still calling keyfall_sees_raw() is made again.
DO $$
DECLARE
    def text := pg_get_functiondef('keyfall.keyfall_install_mapping(jsonb)'::regprocedure);
    fixed text := replace(def, 'CASE WHEN (SELECT keyfall.keyfall_sees_raw()) THEN',
                               'CASE WHEN (SELECT pg_catalog.pg_has_role(n.nspowner, ''''MEMBER'''')'
                               || ' FROM pg_catalog.pg_namespace n WHERE n.nspname = ''''keyfall'''') THEN');
BEGIN
    IF fixed <> def THEN
        EXECUTE fixed;
    END IF;
    IF coalesce(pg_get_viewdef(to_regclass('keyfall.integration_settings')), '') ~ 'keyfall_sees_raw\(\)'
       AND EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        PERFORM keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping));
    END IF;
END
$$;
