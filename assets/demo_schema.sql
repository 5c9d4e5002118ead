-- keyfall's demo "app": the accounts, users and integration settings tables
-- of the seed, in `public`, as an app of its own would have them. keyfall
-- reads them through the default mapping like any app's tables; `keyfall
-- detach` leaves them (and their rows) as they are. Idempotent.

CREATE TABLE IF NOT EXISTS public.accounts (
    id         bigserial PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name       text NOT NULL,
    status     text NOT NULL DEFAULT 'active'
               CHECK (status IN ('active', 'trial', 'suspended', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.users (
    id           bigserial PRIMARY KEY,
    email        text NOT NULL,
    role         text NOT NULL
                 CHECK (role IN ('developer', 'owner', 'admin', 'editor', 'viewer', 'system_bot')),
    is_superuser boolean NOT NULL DEFAULT false,
    is_active    boolean NOT NULL DEFAULT true,
    account_id   bigint REFERENCES public.accounts (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_ci ON public.users (lower(email));
-- keyfall looks a user up by the exact email first, as an app's unique
-- email index (Django's EmailField(unique=True)) allows.
CREATE INDEX IF NOT EXISTS users_email ON public.users (email);
CREATE INDEX IF NOT EXISTS users_account ON public.users (account_id);
-- The console's user picker searches by email prefix whatever the collation.
CREATE INDEX IF NOT EXISTS users_email_prefix ON public.users (lower(email) text_pattern_ops);

-- integration_type is free text on purpose: a type keyfall does not know is
-- shown raw rather than rejected. `version` is this app's optimistic lock.
CREATE TABLE IF NOT EXISTS public.integration_settings (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES public.accounts (id) ON DELETE CASCADE,
    integration_type text NOT NULL,
    config           jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active        boolean NOT NULL DEFAULT true,
    version          bigint NOT NULL DEFAULT 1,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text,
    UNIQUE (account_id, integration_type)
);
CREATE INDEX IF NOT EXISTS integration_settings_type ON public.integration_settings (integration_type);

-- The demo app bumps its version on every write, by any client, and stamps
-- who wrote (keyfall's operator, else the database role).
CREATE OR REPLACE FUNCTION public.demo_settings_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        NEW.version := OLD.version + 1;
    END IF;
    NEW.updated_at := clock_timestamp();
    NEW.updated_by := coalesce(nullif(current_setting('keyfall.actor', true), ''), session_user::text);
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS demo_settings_stamp ON public.integration_settings;
CREATE TRIGGER demo_settings_stamp BEFORE INSERT OR UPDATE ON public.integration_settings
    FOR EACH ROW EXECUTE FUNCTION public.demo_settings_stamp();
