-- A year of history on the XL data set, for `cargo bench --bench history`
-- (issue 23, point 3): about 1,000,000 audit rows, made set-based with
-- generate_series, spread over the last 365 days and in time order:
-- 400,000 changes of tenants' settings (one in twenty leaves a key blank,
-- so the tenant falls back to the chain), 550,000 changes of users (one in
-- ten moves the user to another account), 50,000 changes of accounts'
-- status, and one leaked key, 'sk-bench-leaked-key-0000000000000000',
-- planted in aws-admin's openai setting twice (a quarter of the year, then
-- again) and in two tenants' settings, one of them holding it still.
-- Written straight into the log (the rows stand for changes that came and
-- went); the XL load's own entries are dated a year back first. Skipped
-- once loaded (a 'bench_year' row says so).

SET LOCAL statement_timeout = 0;
-- The log is append-only: its own guard is set aside for this session's
-- bulk dating of the XL load (a bench database only).
SET LOCAL session_replication_role = replica;

CREATE TEMP TABLE bench_clock ON COMMIT DROP AS
SELECT clock_timestamp() - interval '365 days' AS t0, (SELECT max(id) FROM keyfall.audit_log) AS loaded;

UPDATE keyfall.audit_log SET at = (SELECT t0 FROM bench_clock) - interval '1 hour'
 WHERE id <= (SELECT loaded FROM bench_clock);

SET LOCAL session_replication_role = origin;

CREATE TEMP TABLE bench_rows ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY s.id) AS n, s.id, s.account_id, a.slug::text AS slug, s.integration_type::text AS kind
  FROM public.integration_settings s JOIN public.accounts a ON a.id = s.account_id
 WHERE a.slug LIKE 'xl-%';

CREATE TEMP TABLE bench_users ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY u.id) AS n, u.id, u.email::text AS email, u.role::text AS role, u.account_id
  FROM public.users u WHERE u.email LIKE 'user%@xl-%';

CREATE TEMP TABLE bench_accounts ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY a.id) AS n, a.id, a.slug::text AS slug, a.name::text AS name
  FROM public.accounts a WHERE a.slug LIKE 'xl-%';

CREATE TEMP TABLE bench_events ON COMMIT DROP AS
-- Tenants' settings.
SELECT i::float8 / 400000 AS f, 'integration_settings' AS tbl, r.id AS row_id, r.account_id, r.slug, r.kind,
       jsonb_build_object('config', CASE WHEN r.kind = 'image_generation'
                                         THEN jsonb_build_object('provider', 'openai', 'model', 'dall-e-3')
                                         ELSE jsonb_build_object('apiKey', '#' || left(md5((i - 1)::text), 8), 'model', 'gpt-4o-mini') END,
                          'is_active', true) AS before,
       jsonb_build_object('config', CASE WHEN r.kind = 'image_generation'
                                         THEN jsonb_build_object('provider', CASE WHEN i % 2 = 0 THEN 'openai' ELSE 'runware' END,
                                                                 'model', 'dall-e-3')
                                         WHEN i % 20 = 0 THEN jsonb_build_object('apiKey', '', 'model', 'gpt-4o-mini')
                                         ELSE jsonb_build_object('apiKey', '#' || left(md5(i::text), 8), 'model', 'gpt-4o-mini') END,
                          'is_active', true) AS after
  FROM generate_series(1, 400000) AS i
  JOIN bench_rows r ON r.n = 1 + (i::bigint * 7919) % (SELECT count(*) FROM bench_rows)
UNION ALL
-- Users: a role change, or (one in ten) a move to another tenant.
SELECT i::float8 / 550000, 'users', u.id, NULL, NULL, NULL,
       jsonb_build_object('email', u.email, 'role', u.role, 'is_superuser', false, 'is_active', true,
                          'account_id', u.account_id),
       jsonb_build_object('email', u.email, 'role', CASE WHEN u.role = 'viewer' THEN 'editor' ELSE 'viewer' END,
                          'is_superuser', false, 'is_active', true,
                          'account_id', CASE WHEN i % 10 = 0 THEN u.account_id + 1 + i % 97 ELSE u.account_id END)
  FROM generate_series(1, 550000) AS i
  JOIN bench_users u ON u.n = 1 + (i::bigint * 104729) % (SELECT count(*) FROM bench_users)
UNION ALL
-- Accounts: a status change.
SELECT i::float8 / 50000, 'accounts', a.id, NULL, NULL, NULL,
       jsonb_build_object('slug', a.slug, 'name', a.name, 'status', 'active'),
       jsonb_build_object('slug', a.slug, 'name', a.name, 'status', CASE WHEN i % 3 = 0 THEN 'trial' ELSE 'suspended' END)
  FROM generate_series(1, 50000) AS i
  JOIN bench_accounts a ON a.n = 1 + (i::bigint * 31) % (SELECT count(*) FROM bench_accounts)
UNION ALL
-- The leaked key: aws-admin's openai setting (the chain's head), and two
-- tenants'; aws-admin's other settings change a dozen times a year.
SELECT p.f, 'integration_settings', s.id, s.account_id, a.slug::text, s.integration_type::text,
       jsonb_build_object('config', jsonb_build_object('apiKey', p.before, 'model', 'gpt-4o-mini'), 'is_active', true),
       jsonb_build_object('config', jsonb_build_object('apiKey', p.after, 'model', 'gpt-4o-mini'), 'is_active', true)
  FROM (VALUES
        (0.10, 'aws-admin', 'openai', '#aaaaaaaa', 'LEAKED'),
        (0.35, 'aws-admin', 'openai', 'LEAKED', '#bbbbbbbb'),
        (0.55, 'aws-admin', 'openai', '#bbbbbbbb', 'LEAKED'),
        (0.80, 'aws-admin', 'openai', 'LEAKED', 'DEMO'),
        (0.20, 'xl-000100', 'openai', '#cccccccc', 'LEAKED'),
        (0.60, 'xl-000100', 'openai', 'LEAKED', '#dddddddd'),
        (0.40, 'xl-000200', 'runware', '#eeeeeeee', 'LEAKED'),
        (0.70, 'xl-000200', 'runware', 'LEAKED', '#ffffffff')
       ) AS p0(f, slug, kind, b, a)
  CROSS JOIN LATERAL (SELECT p0.f,
                             CASE p0.b WHEN 'LEAKED' THEN keyfall.keyfall_fingerprint('sk-bench-leaked-key-0000000000000000')
                                       WHEN 'DEMO' THEN keyfall.keyfall_fingerprint('sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9')
                                       ELSE p0.b END AS before,
                             CASE p0.a WHEN 'LEAKED' THEN keyfall.keyfall_fingerprint('sk-bench-leaked-key-0000000000000000')
                                       WHEN 'DEMO' THEN keyfall.keyfall_fingerprint('sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9')
                                       ELSE p0.a END AS after) AS p
  JOIN public.accounts a ON a.slug = p0.slug
  JOIN public.integration_settings s ON s.account_id = a.id AND s.integration_type = p0.kind
UNION ALL
SELECT m::float8 / 12 - 0.01, 'integration_settings', s.id, s.account_id, 'aws-admin', 'runware',
       jsonb_build_object('config', jsonb_build_object('apiKey', '#' || left(md5(('rw' || m - 1)::text), 8)), 'is_active', true),
       jsonb_build_object('config', jsonb_build_object('apiKey', '#' || left(md5(('rw' || m)::text), 8)), 'is_active', true)
  FROM generate_series(1, 12) AS m
  JOIN public.accounts a ON a.slug = 'aws-admin'
  JOIN public.integration_settings s ON s.account_id = a.id AND s.integration_type = 'runware';

INSERT INTO keyfall.audit_log (at, actor, action, table_name, row_id, account_id, account_slug, integration_type,
                               before, after)
SELECT (SELECT t0 FROM bench_clock) + e.f * interval '365 days', 'bench@keyfall', 'update', e.tbl, e.row_id,
       e.account_id, e.slug, e.kind, e.before, e.after
  FROM bench_events e
 ORDER BY e.f;

-- A tenant holds the leaked key now: a real write, audited by the trigger.
UPDATE public.integration_settings SET config = jsonb_set(config, '{apiKey}', '"sk-bench-leaked-key-0000000000000000"')
 WHERE integration_type = 'openai' AND account_id = (SELECT id FROM public.accounts WHERE slug = 'xl-000300');

INSERT INTO keyfall.audit_log (actor, action, table_name, after)
VALUES ('bench@keyfall', 'bench_year', 'keyfall', '{"bench": "year"}');

ANALYZE keyfall.audit_log;
