-- The XL data set of DESIGN §10: 100,000 tenant accounts, 1,000,000 users,
-- 250,000 settings — some inactive, some keyless, some malformed — made
-- set-based with generate_series. Idempotent: skipped when already loaded.
-- Runs after demo.sql, inside one transaction, one `-- step:` at a time
-- (keyfall demo shows each step's progress on a terminal).

-- step: 100,000 accounts
INSERT INTO accounts (slug, name, status)
SELECT 'xl-' || lpad(i::text, 6, '0'),
       'XL tenant ' || i,
       CASE WHEN i % 20 = 0 THEN 'suspended' WHEN i % 33 = 0 THEN 'trial' ELSE 'active' END
  FROM generate_series(1, 100000) AS i
 WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE slug = 'xl-100000')
ON CONFLICT (slug) DO NOTHING;

-- step: 1,000,000 users
INSERT INTO users (email, role, is_superuser, is_active, account_id)
SELECT 'user' || n || '@xl-' || lpad((1 + (n - 1) / 10)::text, 6, '0') || '.example',
       (ARRAY['owner', 'admin', 'editor', 'viewer', 'viewer', 'editor', 'viewer', 'editor', 'viewer', 'developer'])[1 + n % 10],
       n % 100000 = 7,
       n % 25 <> 0,
       a.id
  FROM generate_series(1, 1000000) AS n
  JOIN accounts a ON a.slug = 'xl-' || lpad((1 + (n - 1) / 10)::text, 6, '0')
 WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = 'user1000000@xl-100000.example')
ON CONFLICT ((lower(email))) DO NOTHING;

-- step: 250,000 settings (audited)
-- openai for 9 in 10 accounts, runware for 9 in 10, image_generation for 7 in 10.
INSERT INTO integration_settings (account_id, integration_type, config, is_active)
SELECT a.id, t.integration_type,
       CASE
           WHEN i % 100 = 3 THEN '"not an object"'::jsonb
           WHEN i % 100 = 4 AND t.integration_type = 'openai'
               THEN jsonb_build_object('apiKey', 'sk-xl-FAKE-' || md5(i::text), 'temperature', 'warm')
           WHEN i % 50 = 2 AND t.integration_type <> 'image_generation'
               THEN jsonb_build_object('apiKey', '', 'model', 'gpt-4o-mini')
           WHEN t.integration_type = 'openai'
               THEN jsonb_build_object('apiKey', 'sk-xl-FAKE-' || md5(i::text), 'model',
                                       CASE WHEN i % 7 = 0 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END)
           WHEN t.integration_type = 'runware'
               THEN jsonb_build_object('apiKey', 'rw-xl-FAKE-' || md5(i::text), 'model', 'runware:100@1')
           WHEN i % 40 = 5
               THEN jsonb_build_object('model', 'dall-e-3')
           ELSE jsonb_build_object('provider', CASE WHEN i % 2 = 0 THEN 'openai' ELSE 'runware' END,
                                   'model', CASE WHEN i % 2 = 0 THEN 'dall-e-3' ELSE 'runware:100@1' END)
       END,
       i % 50 <> 1
  FROM generate_series(1, 100000) AS i
  JOIN accounts a ON a.slug = 'xl-' || lpad(i::text, 6, '0')
  JOIN (VALUES ('openai', 9), ('runware', 9), ('image_generation', 7)) AS t(integration_type, per_ten)
    ON (i * 7 + length(t.integration_type)) % 10 < t.per_ten
 WHERE NOT EXISTS (
        SELECT 1 FROM integration_settings s JOIN accounts x ON x.id = s.account_id
         WHERE x.slug LIKE 'xl-%')
ON CONFLICT (account_id, integration_type) DO NOTHING;

-- step: statistics
-- Fresh statistics, so the first queries on the new data plan well.
ANALYZE accounts;
ANALYZE users;
ANALYZE integration_settings;
