-- The seed's scenario (integration-settings-analysis.txt), wrong config
-- included: aws-admin's image_generation has an empty apiKey and no
-- provider. Every key here is fake and says so. Idempotent: rows already
-- present are left alone, so a second run writes nothing.

INSERT INTO public.accounts (slug, name, status) VALUES
    ('aws-admin',       'AWS Admin',        'active'),
    ('default-account', 'Default Account',  'active'),
    ('default',         'Default',          'active'),
    ('paid-2',          'Paid 2',           'active'),
    ('acme-studio',     'Acme Studio',      'active'),
    ('globex',          'Globex',           'suspended'),
    ('initech-trial',   'Initech (trial)',  'trial'),
    ('umbrella',        'Umbrella Corp',    'cancelled')
ON CONFLICT (slug) DO NOTHING;

INSERT INTO public.users (email, role, is_superuser, is_active, account_id)
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
  LEFT JOIN public.accounts a ON a.slug = u.slug
ON CONFLICT ((lower(email))) DO NOTHING;

INSERT INTO public.integration_settings (account_id, integration_type, config, is_active)
SELECT a.id, s.integration_type, s.config::jsonb, s.is_active
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
  JOIN public.accounts a ON a.slug = s.slug
ON CONFLICT (account_id, integration_type) DO NOTHING;
