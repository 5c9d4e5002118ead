-- Audit and change events for writes from ANY client (keyfall, psql, the
-- Django app). Secrets are fingerprinted here, in SQL, so a plaintext key
-- never reaches audit_log. keyfall names its actor with
-- `SET LOCAL keyfall.actor = ...`; other writers are recorded as their
-- database role.

-- Mirrors domain::secret::is_secret_field.
CREATE FUNCTION keyfall_is_secret_key(k text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(replace(replace(k, '_', ''), '-', '')) ~ '(apikey|secret|password|token|secretkey)$'
$$;

-- Mirrors domain::secret::fingerprint: '#' + 8 hex of SHA-256.
CREATE FUNCTION keyfall_fingerprint(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '#' || left(encode(sha256(convert_to(v, 'UTF8')), 'hex'), 8)
$$;

-- A copy of a JSON document with every secret value replaced by its
-- fingerprint, at any depth. Empty strings and nulls stay as they are.
CREATE FUNCTION keyfall_redact(doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    result jsonb;
BEGIN
    IF doc IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(doc) = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key,
                   CASE
                       WHEN NOT keyfall_is_secret_key(key) THEN keyfall_redact(value)
                       WHEN jsonb_typeof(value) = 'null' THEN value
                       WHEN jsonb_typeof(value) = 'string' AND value #>> '{}' = '' THEN value
                       WHEN jsonb_typeof(value) = 'string' THEN to_jsonb(keyfall_fingerprint(value #>> '{}'))
                       ELSE to_jsonb(keyfall_fingerprint(value::text))
                   END), '{}'::jsonb)
          INTO result
          FROM jsonb_each(doc);
        RETURN result;
    ELSIF jsonb_typeof(doc) = 'array' THEN
        SELECT coalesce(jsonb_agg(keyfall_redact(value) ORDER BY ord), '[]'::jsonb)
          INTO result
          FROM jsonb_array_elements(doc) WITH ORDINALITY AS e(value, ord);
        RETURN result;
    ELSE
        RETURN doc;
    END IF;
END
$$;

CREATE FUNCTION keyfall_actor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('keyfall.actor', true), ''), session_user::text)
$$;

-- Every writer bumps the version, so a stale keyfall edit always conflicts,
-- even against a writer that knows nothing of optimistic locking.
CREATE FUNCTION keyfall_settings_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        NEW.version := OLD.version + 1;
    END IF;
    NEW.updated_at := clock_timestamp();
    NEW.updated_by := keyfall_actor();
    RETURN NEW;
END
$$;

CREATE TRIGGER integration_settings_stamp
    BEFORE INSERT OR UPDATE ON integration_settings
    FOR EACH ROW EXECUTE FUNCTION keyfall_settings_stamp();

-- Statement-level with transition tables: a bulk load writes its audit rows
-- set-based, one per changed row. Small statements send one NOTIFY per row
-- (ids only); large ones send a single bulk notice.
CREATE FUNCTION keyfall_settings_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    op       text := lower(TG_OP);
    changed  bigint;
    payloads text[];
    payload  text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH ins AS (
            INSERT INTO audit_log (actor, action, table_name, row_id, account_id, account_slug,
                                   integration_type, before, after)
            SELECT keyfall_actor(), op, 'integration_settings', n.id, n.account_id, a.slug,
                   n.integration_type, NULL,
                   jsonb_build_object('config', keyfall_redact(n.config), 'is_active', n.is_active,
                                      'version', n.version)
              FROM new_rows n LEFT JOIN accounts a ON a.id = n.account_id
            RETURNING id, row_id, account_id
        )
        SELECT count(*), array_agg(json_build_object('table', 'integration_settings', 'op', op,
                   'id', row_id, 'account_id', account_id, 'audit_id', id)::text) FILTER (WHERE rn <= 100)
          INTO changed, payloads
          FROM (SELECT *, row_number() OVER () AS rn FROM ins) x;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH ins AS (
            INSERT INTO audit_log (actor, action, table_name, row_id, account_id, account_slug,
                                   integration_type, before, after)
            SELECT keyfall_actor(), op, 'integration_settings', n.id, n.account_id, a.slug,
                   n.integration_type,
                   jsonb_build_object('config', keyfall_redact(o.config), 'is_active', o.is_active,
                                      'version', o.version),
                   jsonb_build_object('config', keyfall_redact(n.config), 'is_active', n.is_active,
                                      'version', n.version)
              FROM new_rows n JOIN old_rows o ON o.id = n.id
              LEFT JOIN accounts a ON a.id = n.account_id
            RETURNING id, row_id, account_id
        )
        SELECT count(*), array_agg(json_build_object('table', 'integration_settings', 'op', op,
                   'id', row_id, 'account_id', account_id, 'audit_id', id)::text) FILTER (WHERE rn <= 100)
          INTO changed, payloads
          FROM (SELECT *, row_number() OVER () AS rn FROM ins) x;
    ELSE
        WITH ins AS (
            INSERT INTO audit_log (actor, action, table_name, row_id, account_id, account_slug,
                                   integration_type, before, after)
            SELECT keyfall_actor(), op, 'integration_settings', o.id, o.account_id, a.slug,
                   o.integration_type,
                   jsonb_build_object('config', keyfall_redact(o.config), 'is_active', o.is_active,
                                      'version', o.version),
                   NULL
              FROM old_rows o LEFT JOIN accounts a ON a.id = o.account_id
            RETURNING id, row_id, account_id
        )
        SELECT count(*), array_agg(json_build_object('table', 'integration_settings', 'op', op,
                   'id', row_id, 'account_id', account_id, 'audit_id', id)::text) FILTER (WHERE rn <= 100)
          INTO changed, payloads
          FROM (SELECT *, row_number() OVER () AS rn FROM ins) x;
    END IF;
    IF changed <= 100 THEN
        FOREACH payload IN ARRAY coalesce(payloads, '{}'::text[]) LOOP
            PERFORM pg_notify('keyfall_changes', payload);
        END LOOP;
    ELSE
        PERFORM pg_notify('keyfall_changes', json_build_object(
            'table', 'integration_settings', 'op', op, 'bulk', changed)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER integration_settings_audit_insert
    AFTER INSERT ON integration_settings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall_settings_audit();
CREATE TRIGGER integration_settings_audit_update
    AFTER UPDATE ON integration_settings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall_settings_audit();
CREATE TRIGGER integration_settings_audit_delete
    AFTER DELETE ON integration_settings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall_settings_audit();

-- The chain, the policy and the function map change who resolves where, so
-- they are audited and announced too (whole rows; they hold no secrets).
CREATE FUNCTION keyfall_config_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    audit_id bigint;
BEGIN
    INSERT INTO audit_log (actor, action, table_name, before, after)
    VALUES (keyfall_actor(), lower(TG_OP), TG_TABLE_NAME,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END)
    RETURNING id INTO audit_id;
    PERFORM pg_notify('keyfall_changes', json_build_object(
        'table', TG_TABLE_NAME, 'op', lower(TG_OP), 'audit_id', audit_id)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER fallback_chain_audit AFTER INSERT OR UPDATE OR DELETE ON fallback_chain
    FOR EACH ROW EXECUTE FUNCTION keyfall_config_audit();
CREATE TRIGGER policy_audit AFTER INSERT OR UPDATE OR DELETE ON policy
    FOR EACH ROW EXECUTE FUNCTION keyfall_config_audit();
CREATE TRIGGER ai_functions_audit AFTER INSERT OR UPDATE OR DELETE ON ai_functions
    FOR EACH ROW EXECUTE FUNCTION keyfall_config_audit();

-- The audit log is append-only, for every role including the owner.
CREATE FUNCTION keyfall_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION keyfall_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION keyfall_audit_append_only();
