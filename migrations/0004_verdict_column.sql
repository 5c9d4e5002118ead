-- Each row's verdict, kept with the row: the report and the impact preview
-- then filter on a column instead of re-judging 250,000 configs per query.
-- Any writer (the Django app, psql) gets it computed by PostgreSQL. When
-- keyfall_row_verdict changes, a later migration must drop and re-add this
-- column so stored verdicts are recomputed.
ALTER TABLE integration_settings
    ADD COLUMN verdict text NOT NULL
    GENERATED ALWAYS AS (keyfall_row_verdict(integration_type, config, is_active)) STORED;
ANALYZE fallback_chain;
