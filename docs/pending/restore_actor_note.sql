-- keyfall, issue 23 point 5 (restore from the past): the audit row of a
-- restore says it is one, and of which moment. keyfall's session claims
-- `dev@… (restored to as of #812)` (or `… as of 2026-12-08 09:14:00 UTC`);
-- keyfall_actor keeps only the notes keyfall itself writes, so this note
-- joins " (overwrite)" and " (revert of #N)" — nothing else is let through.
--
-- NOT A MIGRATION YET: the helper that built restore may not add migration
-- files this session. The lead folds this into the next migration (or the
-- baseline) as is; tests/it/restore.rs applies it to its own databases
-- (idempotent: still right once folded) to prove the note end to end.
CREATE OR REPLACE FUNCTION keyfall.keyfall_actor() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN keyfall.keyfall_claimed() IS NULL THEN session_user::text
        WHEN keyfall.keyfall_may_act_as(keyfall.keyfall_claimed())
             THEN keyfall.keyfall_claimed()
                  || coalesce(substring(current_setting('keyfall.actor', true)
                                        FROM '( \((overwrite|revert of #[0-9]{1,19}|restored to as of (#[0-9]{1,19}|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC))\))$'), '')
        ELSE session_user::text || ' (claimed ' || left(current_setting('keyfall.actor', true), 200) || ')'
    END
$$;

SELECT keyfall.keyfall_harden();
