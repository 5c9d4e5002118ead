-- Raw keys only for those who may (issue 9): a session whose role is
-- neither a database superuser nor a member of the role owning keyfall's
-- schema (an operator role such as keyfall_operator) reads every secret in
-- keyfall's view of the settings masked — the same text keyfall shows,
-- `••••••••` + last four + fingerprint — and gets a raw key only through
-- the checked, audited keyfall_reveal / keyfall_config_for_test (which run
-- as the schema's owner). A masked value written back means "keep the
-- stored one": the write trigger restores it (keyfall_unmask).

-- Whether the current role reads raw secrets.
CREATE FUNCTION keyfall.keyfall_sees_raw() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), false)
        OR pg_catalog.pg_has_role(current_user,
               (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'keyfall'), 'MEMBER')
$$;

-- The same question for the session's login, asked from inside a
-- SECURITY DEFINER function (where current_user is the owner): what a
-- write's RETURNING may show.
CREATE FUNCTION keyfall.keyfall_login_sees_raw() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user), false)
        OR pg_catalog.pg_has_role(session_user,
               (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'keyfall'), 'MEMBER')
$$;

-- One secret string as keyfall shows it (domain::secret::Secret::masked):
-- the mask, the last four for keys of 12 characters or more, the
-- fingerprint. Empty and Python-blank strings stay as they are, so the
-- resolver's verdicts on a masked config are the verdicts on the real one.
CREATE FUNCTION keyfall.keyfall_mask_string(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN s = '' OR keyfall.keyfall_py_blank(s) THEN s
        WHEN s ~ '^••••••••.* #[0-9a-f]{8}$' THEN s
        WHEN char_length(s) >= 12 THEN '••••••••' || right(s, 4) || ' ' || keyfall.keyfall_fingerprint(s)
        ELSE '•••••••• ' || keyfall.keyfall_fingerprint(s)
    END
$$;

-- A config with every secret string masked (by name at any depth or by
-- shape); numbers, booleans and containers keep their type, so a key that
-- is not a string stays not a string. Depth-limited like keyfall_redact.
CREATE FUNCTION keyfall.keyfall_mask_at(doc jsonb, depth integer, secret boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    kind   text := jsonb_typeof(doc);
    result jsonb;
BEGIN
    IF doc IS NULL THEN
        RETURN NULL;
    ELSIF kind IN ('object', 'array') AND depth >= 64 THEN
        RETURN to_jsonb(keyfall.keyfall_mask_string(doc::text));
    ELSIF kind = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key,
                   keyfall.keyfall_mask_at(value, depth + 1, secret OR keyfall.keyfall_is_secret_key(key))), '{}'::jsonb)
          INTO result FROM jsonb_each(doc);
        RETURN result;
    ELSIF kind = 'array' THEN
        SELECT coalesce(jsonb_agg(keyfall.keyfall_mask_at(value, depth + 1, secret) ORDER BY ord), '[]'::jsonb)
          INTO result FROM jsonb_array_elements(doc) WITH ORDINALITY AS e(value, ord);
        RETURN result;
    ELSIF kind = 'string' AND (secret OR keyfall.keyfall_is_secret_value(doc #>> '{}')) THEN
        RETURN to_jsonb(keyfall.keyfall_mask_string(doc #>> '{}'));
    END IF;
    RETURN doc;
END
$$;

CREATE FUNCTION keyfall.keyfall_mask(doc jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT keyfall.keyfall_mask_at(doc, 0, false)
$$;

-- `new` with every masked value that masks the stored value at the same
-- place put back to the stored value; a masked value that matches nothing
-- stored is refused (it would store the mask as a key).
CREATE FUNCTION keyfall.keyfall_unmask(new jsonb, old jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    result jsonb;
    s      text;
BEGIN
    IF new IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(new) = 'string' THEN
        s := new #>> '{}';
        IF s !~ '^••••••••.* #[0-9a-f]{8}$' THEN
            RETURN new;
        END IF;
        IF jsonb_typeof(old) = 'string' AND keyfall.keyfall_mask_string(old #>> '{}') = s THEN
            RETURN old;
        END IF;
        RAISE EXCEPTION 'a masked key that is not the stored one cannot be written (type the key, or leave the stored one)'
            USING ERRCODE = 'data_exception';
    ELSIF jsonb_typeof(new) = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key, keyfall.keyfall_unmask(value,
                   CASE WHEN jsonb_typeof(old) = 'object' THEN old -> key END)), '{}'::jsonb)
          INTO result FROM jsonb_each(new);
        RETURN result;
    ELSIF jsonb_typeof(new) = 'array' THEN
        SELECT coalesce(jsonb_agg(keyfall.keyfall_unmask(value,
                   CASE WHEN jsonb_typeof(old) = 'array' THEN old -> (ord::int - 1) END) ORDER BY ord), '[]'::jsonb)
          INTO result FROM jsonb_array_elements(new) WITH ORDINALITY AS e(value, ord);
        RETURN result;
    END IF;
    RETURN new;
END
$$;

-- The mapping's views and triggers are made again with these rules.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM keyfall.mapping) THEN
        PERFORM keyfall.keyfall_install_mapping((SELECT spec FROM keyfall.mapping));
    END IF;
END
$$;
