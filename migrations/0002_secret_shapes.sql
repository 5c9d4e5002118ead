-- Secrets by shape, not only by name (DESIGN §11), and redaction that
-- cannot overflow on deep JSON. Each function mirrors one in
-- src/domain/secret.rs; tests/it/secrets.rs runs one table of cases through
-- both and holds them equal. The rules are documented there.

-- domain::secret::is_secret_field: the name cut into words (at every
-- character that is not an ASCII letter or digit, between a lowercase and
-- an uppercase letter, between a letter and a digit), ASCII-lowercased; a
-- word ending in one of the secret endings makes the field secret.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_key(k text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    -- Only saves time: a secret word's ending is somewhere in the name.
    IF k IS NULL OR k !~* '(key|secret|token|passw|passphrase|authorization|credential|private)' THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        SELECT 1
          FROM regexp_split_to_table(
                   translate(
                       regexp_replace(regexp_replace(regexp_replace(k,
                           '([a-z])([A-Z])', '\1 \2', 'g'),
                           '([A-Za-z])([0-9])', '\1 \2', 'g'),
                           '([0-9])([A-Za-z])', '\1 \2', 'g'),
                       'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                   '[^a-z0-9]+') AS w
         WHERE w ~ '(key|keys|secret|secrets|token|password|passwords|passwd|passphrase|authorization|credential|credentials|private)$'
    );
END
$$;

-- domain::secret::is_fingerprint: '#' and 8 lowercase hex digits. Left as
-- they are, so redacting twice changes nothing.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_fingerprint(v text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v ~ '^#[0-9a-f]{8}$'
$$;

-- domain::secret::is_secret_value (and is_high_entropy): a string shaped
-- like a key, judged with space, tab, LF, CR and FF trimmed.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_value(v text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t text := btrim(v, E' \t\n\r\f');
BEGIN
    -- Only saves time: the shortest shape is sk- and 8 more characters.
    IF t IS NULL OR length(t) < 11 THEN
        RETURN false;
    END IF;
    RETURN t ~ '^(sk-|sk_|rw-).{8}'
        OR t ~ '^(AKIA|ASIA)[A-Z0-9]{12}'
        OR t ~ '^[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[^ \t\n\r\f]{8,}$'
        OR strpos(t, '-----BEGIN ') > 0
        OR (length(t) >= 32
            AND t ~ '^[A-Za-z0-9+/=_-]+$'
            AND t ~ '[A-Za-z]' AND t ~ '[0-9]'
            AND t !~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
            AND regexp_count(t, '[a-z](?=[A-Z0-9])|[A-Z](?=[a-z0-9])|[0-9](?=[A-Za-z])') >= 8);
END
$$;

-- domain::secret's redaction of one scalar: `secret` says a field on the
-- way down was secret-named. Secret leaves (non-empty, non-null scalars
-- under such a field, strings shaped like a secret anywhere) become
-- fingerprints; empty strings, nulls and fingerprints stay.
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact_scalar(v jsonb, secret boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    kind text := jsonb_typeof(v);
    s    text;
BEGIN
    IF kind IS NULL OR kind = 'null' THEN
        RETURN v;
    ELSIF kind = 'string' THEN
        s := v #>> '{}';
        IF s = '' OR s ~ '^#[0-9a-f]{8}$' THEN
            RETURN v;
        ELSIF secret OR keyfall.keyfall_is_secret_value(s) THEN
            RETURN to_jsonb(keyfall.keyfall_fingerprint(s));
        END IF;
        RETURN v;
    ELSIF secret THEN
        RETURN to_jsonb(keyfall.keyfall_fingerprint(v::text));
    END IF;
    RETURN v;
END
$$;

-- domain::secret's redaction walk. An object or array at depth 64
-- (domain::secret::MAX_DEPTH; the document is depth 0) becomes the
-- fingerprint of its text, so the recursion never goes deeper than that
-- (and scalars are redacted without recursing at all).
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact_at(doc jsonb, depth integer, secret boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    kind   text := jsonb_typeof(doc);
    result jsonb;
BEGIN
    IF doc IS NULL THEN
        RETURN NULL;
    ELSIF kind IN ('object', 'array') AND depth >= 64 THEN
        RETURN to_jsonb(keyfall.keyfall_fingerprint(doc::text));
    ELSIF kind = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key,
                   CASE WHEN jsonb_typeof(value) IN ('object', 'array')
                        THEN keyfall.keyfall_redact_at(value, depth + 1, secret OR keyfall.keyfall_is_secret_key(key))
                        ELSE keyfall.keyfall_redact_scalar(value, secret OR keyfall.keyfall_is_secret_key(key))
                   END), '{}'::jsonb)
          INTO result
          FROM jsonb_each(doc);
        RETURN result;
    ELSIF kind = 'array' THEN
        SELECT coalesce(jsonb_agg(
                   CASE WHEN jsonb_typeof(value) IN ('object', 'array')
                        THEN keyfall.keyfall_redact_at(value, depth + 1, secret)
                        ELSE keyfall.keyfall_redact_scalar(value, secret)
                   END ORDER BY ord), '[]'::jsonb)
          INTO result
          FROM jsonb_array_elements(doc) WITH ORDINALITY AS e(value, ord);
        RETURN result;
    END IF;
    RETURN keyfall.keyfall_redact_scalar(doc, secret);
END
$$;

-- The audit trigger's redaction (its signature unchanged, so the trigger
-- functions installed by keyfall_install_mapping use this body from now on).
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact(doc jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT keyfall.keyfall_redact_at(doc, 0, false)
$$;
