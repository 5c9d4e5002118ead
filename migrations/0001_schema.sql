-- keyfall schema: tenants, users, the fallback chain, AI functions, policy,
-- integration settings and the append-only audit log. Migrations are
-- append-only: change the schema in a new file, never edit this one.

CREATE TABLE accounts (
    id         bigserial PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name       text NOT NULL,
    status     text NOT NULL DEFAULT 'active'
               CHECK (status IN ('active', 'trial', 'suspended', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id           bigserial PRIMARY KEY,
    email        text NOT NULL,
    role         text NOT NULL
                 CHECK (role IN ('developer', 'owner', 'admin', 'editor', 'viewer', 'system_bot')),
    is_superuser boolean NOT NULL DEFAULT false,
    is_active    boolean NOT NULL DEFAULT true,
    account_id   bigint REFERENCES accounts (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_ci ON users (lower(email));
CREATE INDEX users_account ON users (account_id);

-- The system fallback chain, as data. It names slugs, not ids, so a chain
-- entry may point at an account that does not exist (lint L005).
CREATE TABLE fallback_chain (
    position     integer PRIMARY KEY CHECK (position >= 1),
    account_slug text NOT NULL UNIQUE
);
INSERT INTO fallback_chain (position, account_slug)
VALUES (1, 'aws-admin'), (2, 'default-account'), (3, 'default');

CREATE TABLE ai_functions (
    name             text PRIMARY KEY,
    integration_type text NOT NULL
);
INSERT INTO ai_functions (name, integration_type) VALUES
    ('auto_cluster', 'openai'),
    ('generate_ideas', 'openai'),
    ('generate_content', 'openai'),
    ('generate_image_prompts', 'openai'),
    ('generate_images', 'image_generation');

-- Exactly one row: the permission policy in force.
CREATE TABLE policy (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode      text NOT NULL DEFAULT 'system_only'
              CHECK (mode IN ('system_only', 'per_account', 'hybrid_readonly'))
);
INSERT INTO policy (mode) VALUES ('system_only');

-- integration_type is free text on purpose: a type keyfall does not know,
-- written by the Django app, is shown raw rather than rejected.
CREATE TABLE integration_settings (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    integration_type text NOT NULL,
    config           jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active        boolean NOT NULL DEFAULT true,
    version          bigint NOT NULL DEFAULT 1,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text,
    UNIQUE (account_id, integration_type)
);
CREATE INDEX integration_settings_type ON integration_settings (integration_type);

CREATE TABLE audit_log (
    id               bigserial PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor            text NOT NULL,
    action           text NOT NULL,
    table_name       text NOT NULL,
    row_id           bigint,
    account_id       bigint,
    account_slug     text,
    integration_type text,
    before           jsonb,
    after            jsonb,
    txid             bigint NOT NULL DEFAULT txid_current()
);
CREATE INDEX audit_log_setting ON audit_log (account_id, integration_type, id);
CREATE INDEX audit_log_at ON audit_log (at);
