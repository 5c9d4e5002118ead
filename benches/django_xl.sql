-- The benches' XL data set in a Django-made schema (tests/django, created
-- by `kf.py migrate`): the seed of assets/demo.sql and the XL rows of
-- assets/demo_xl.sql, the same shapes and counts — 8 system accounts and
-- 11 users, then 100,000 tenant accounts, 1,000,000 users and 250,000
-- settings — written into igny8_account, igny8_user and
-- igny8_integration_settings. Django's columns have no database defaults
-- (its defaults and auto_now live in Python), so every column is given;
-- status and role are varchar. Idempotent: rows already present are left
-- alone and the XL part is skipped once loaded, as demo_xl.sql is. Runs
-- inside one transaction, before keyfall is attached (so no audit rows).

-- The seed (assets/demo.sql), wrong config included: aws-admin's
-- image_generation has an empty apiKey and no provider.
INSERT INTO public.igny8_account (slug, name, status) VALUES
    ('aws-admin',       'AWS Admin',        'active'),
    ('default-account', 'Default Account',  'active'),
    ('default',         'Default',          'active'),
    ('paid-2',          'Paid 2',           'active'),
    ('acme-studio',     'Acme Studio',      'active'),
    ('globex',          'Globex',           'suspended'),
    ('initech-trial',   'Initech (trial)',  'trial'),
    ('umbrella',        'Umbrella Corp',    'cancelled')
ON CONFLICT (slug) DO NOTHING;

INSERT INTO public.igny8_user (email, role, is_superuser, is_active, account_id)
SELECT u.email, u.role, u.is_superuser, u.is_active, a.id
  FROM (VALUES
    ('dev@igny8.com',        'developer',  true,  true,  'aws-admin'),
    ('bot@igny8.com',        'system_bot', false, true,  'aws-admin'),
    ('ops@igny8.com',        'developer',  false, true,  NULL),
    ('paid2@paid.com',       'owner',      false, true,  'paid-2'),
    ('editor2@paid.com',     'editor',     false, true,  'paid-2'),
    ('former@paid.com',      'admin',      false, false, 'paid-2'),
    ('owner@acme.example',   'owner',      false, true,  'acme-studio'),
    ('viewer@acme.example',  'viewer',     false, true,  'acme-studio'),
    ('owner@globex.example', 'owner',      false, true,  'globex'),
    ('pm@initech.example',   'admin',      false, true,  'initech-trial'),
    ('nobody@example.com',   'viewer',     false, true,  NULL)
  ) AS u(email, role, is_superuser, is_active, slug)
  LEFT JOIN public.igny8_account a ON a.slug = u.slug
ON CONFLICT (email) DO NOTHING;

INSERT INTO public.igny8_integration_settings (account_id, integration_type, config, is_active, created_at, updated_at)
SELECT a.id, s.integration_type, s.config::jsonb, s.is_active, now(), now()
  FROM (VALUES
    ('aws-admin', 'openai',
     '{"apiKey": "sk-demo-FAKE-aws-admin-openai-not-a-real-key-3fA9", "model": "gpt-4o-mini", "temperature": 0.7, "max_tokens": 4096}',
     true),
    ('aws-admin', 'runware',
     '{"apiKey": "rw-demo-FAKE-aws-admin-runware-not-a-real-key-8c2E", "model": "runware:100@1"}',
     true),
    -- The seed's wrong config: its own (empty) apiKey, no provider.
    ('aws-admin', 'image_generation',
     '{"apiKey": "", "model": "dall-e-3", "image_size": "1024x1024", "quality": "standard"}',
     true),
    ('acme-studio', 'openai',
     '{"apiKey": "sk-demo-FAKE-acme-studio-own-key-not-real-77Qx", "model": "gpt-4o"}',
     true),
    ('globex', 'openai',
     '{"apiKey": "sk-demo-FAKE-globex-suspended-not-real-0000", "model": "gpt-4o-mini"}',
     true),
    ('initech-trial', 'runware',
     '{"apiKey": "rw-demo-FAKE-initech-inactive-not-real-1111", "model": "runware:101@1"}',
     false)
  ) AS s(slug, integration_type, config, is_active)
  JOIN public.igny8_account a ON a.slug = s.slug
ON CONFLICT (account_id, integration_type) DO NOTHING;

-- XL (assets/demo_xl.sql): 100,000 tenant accounts, 1,000,000 users,
-- 250,000 settings — some inactive, some keyless, some malformed.

INSERT INTO public.igny8_account (slug, name, status)
SELECT 'xl-' || lpad(i::text, 6, '0'),
       'XL tenant ' || i,
       CASE WHEN i % 20 = 0 THEN 'suspended' WHEN i % 33 = 0 THEN 'trial' ELSE 'active' END
  FROM generate_series(1, 100000) AS i
 WHERE NOT EXISTS (SELECT 1 FROM public.igny8_account WHERE slug = 'xl-100000')
ON CONFLICT (slug) DO NOTHING;

INSERT INTO public.igny8_user (email, role, is_superuser, is_active, account_id)
SELECT 'user' || n || '@xl-' || lpad((1 + (n - 1) / 10)::text, 6, '0') || '.example',
       (ARRAY['owner', 'admin', 'editor', 'viewer', 'viewer', 'editor', 'viewer', 'editor', 'viewer', 'developer'])[1 + n % 10],
       n % 100000 = 7,
       n % 25 <> 0,
       a.id
  FROM generate_series(1, 1000000) AS n
  JOIN public.igny8_account a ON a.slug = 'xl-' || lpad((1 + (n - 1) / 10)::text, 6, '0')
 WHERE NOT EXISTS (SELECT 1 FROM public.igny8_user WHERE email = 'user1000000@xl-100000.example')
ON CONFLICT (email) DO NOTHING;

-- openai for 9 in 10 accounts, runware for 9 in 10, image_generation for 7 in 10.
INSERT INTO public.igny8_integration_settings (account_id, integration_type, config, is_active, created_at, updated_at)
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
       i % 50 <> 1,
       now(),
       now()
  FROM generate_series(1, 100000) AS i
  JOIN public.igny8_account a ON a.slug = 'xl-' || lpad(i::text, 6, '0')
  JOIN (VALUES ('openai', 9), ('runware', 9), ('image_generation', 7)) AS t(integration_type, per_ten)
    ON (i * 7 + length(t.integration_type)) % 10 < t.per_ten
 WHERE NOT EXISTS (
        SELECT 1 FROM public.igny8_integration_settings s JOIN public.igny8_account x ON x.id = s.account_id
         WHERE x.slug LIKE 'xl-%')
ON CONFLICT (account_id, integration_type) DO NOTHING;

-- Fresh statistics, so the first queries on the new data plan well.
ANALYZE public.igny8_account;
ANALYZE public.igny8_user;
ANALYZE public.igny8_integration_settings;
