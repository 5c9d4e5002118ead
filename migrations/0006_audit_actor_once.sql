-- keyfall 0006: the settings audit trigger asks who the actor is once per
-- statement (issue #10). Idempotent: may be re-run.

-- keyfall_actor() is a SQL function with its own search_path (SET): it is
-- never inlined, and each call sets and restores search_path. Called for
-- every row of the audit INSERT, it changed search_path between the
-- redaction's PL/pgSQL expressions, whose cached plans were then made
-- again for every row: 29 s of a 250,000-row load (keyfall demo --scale xl)
-- against 4.4 s for the redaction alone. The actor cannot change within a
-- statement (session_user and keyfall.actor as the statement left them), so
-- the trigger reads it once into kf_actor. keyfall_install_mapping is
-- rewritten where it writes the trigger (nothing to do once it is), and an
-- installed trigger still asking per row is made again.
DO $$
DECLARE
    def text := pg_get_functiondef('keyfall.keyfall_install_mapping(jsonb)'::regprocedure);
BEGIN
    IF position('SELECT keyfall.keyfall_actor(), kf_op,' IN def) > 0 THEN
        EXECUTE replace(
            replace(def, 'SELECT keyfall.keyfall_actor(), kf_op,', 'SELECT kf_actor, kf_op,'),
            'kf_op       text := lower(TG_OP);',
            'kf_op       text := lower(TG_OP);' || chr(10) || '    kf_actor    text := keyfall.keyfall_actor();');
    END IF;
    -- Before a mapping is installed there is no trigger function (NULL).
    IF position('keyfall.keyfall_actor(), kf_op'
                IN pg_get_functiondef(to_regprocedure('keyfall.keyfall_settings_audit()'))) > 0
       AND EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        PERFORM keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping));
    END IF;
END
$$;
