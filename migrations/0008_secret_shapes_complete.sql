-- keyfall 0008: secrets by shape, complete (issue 18). Idempotent: may be re-run.
--
-- The shapes 0002 missed: JWTs, keys in a URL's query, fragment or
-- userinfo, DSN and connection-string passwords, JSON held inside strings
-- at any depth, and the short names `pwd` and `pass`. Each function mirrors
-- one in src/domain/secret.rs (the rules are documented there);
-- tests/it/secrets.rs holds the two equal. A value holding a secret part
-- (a URL with `api_key=`, a DSN with a password, JSON in a string) is a
-- secret whole: masked and fingerprinted as one string. The view, the
-- audit trigger and the masked reads call these functions by name, so they
-- follow at once; audit rows written before are redacted here
-- (keyfall_redact_history), and the log says so.

-- domain::secret::is_secret_field: a word of the name ends with a secret
-- ending (now `pwd` too), or the name's last word is `pass`.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_key(k text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    endings constant pg_catalog.text :=
        '(key|keys|secret|secrets|token|password|passwords|passwd|passphrase|authorization|credential|credentials|private|pwd)$';
    words pg_catalog.text;
BEGIN
    -- Only saves time: a secret word's ending is somewhere in the name.
    IF k IS NULL OR k !~* '(key|secret|token|pass|authorization|credential|private|pwd)' THEN
        RETURN false;
    END IF;
    -- camelCase, each hump an uppercase letter and lowercase ones (`apiKey`,
    -- `accessTokenSecret`): the words are split at each uppercase letter.
    IF k ~ '^[a-z]+([A-Z][a-z]+)*$' THEN
        words := lower(regexp_replace(k, '([A-Z])', ' \1', 'g'));
        RETURN words ~ replace(endings, '$', '( |$)') OR words ~ '(^| )pass$';
    END IF;
    -- snake_case of lowercase letters (`api_key`): the words are split at `_`.
    IF k ~ '^[a-z_]+$' THEN
        RETURN k ~ replace(endings, '$', '(_|$)') OR k ~ '(^|_)pass_*$';
    END IF;
    -- The general case: the words, lowercased, one space between.
    words := btrim(regexp_replace(
                 translate(
                     regexp_replace(regexp_replace(regexp_replace(k,
                         '([a-z])([A-Z])', '\1 \2', 'g'),
                         '([A-Za-z])([0-9])', '\1 \2', 'g'),
                         '([0-9])([A-Za-z])', '\1 \2', 'g'),
                     'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                 '[^a-z0-9]+', ' ', 'g'));
    RETURN words ~ replace(endings, '$', '( |$)') OR words ~ '(^| )pass$';
END
$$;

-- domain::secret::is_key_shaped: a string that is a key by itself. (Only
-- saves time: the shortest shape is a JWT's 7 characters; the prefixes and
-- PEM need 11.)
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_key_shaped(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT length(t) >= 7 AND (
           (strpos(t, 'eyJ') > 0 AND t ~ '(^|[^A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.')
        OR (length(t) >= 11 AND (
               t ~ '^(sk-|sk_|rw-).{8}'
            OR t ~ '^(AKIA|ASIA)[A-Z0-9]{12}'
            OR t ~ '^[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[^ \t\n\r\f]{8,}$'
            OR strpos(t, '-----BEGIN ') > 0))
        OR (length(t) >= 32
            AND t ~ '^[A-Za-z0-9+/=_-]+$'
            AND t ~ '[A-Za-z]' AND t ~ '[0-9]'
            AND t !~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
            AND regexp_count(t, '[a-z](?=[A-Z0-9])|[A-Z](?=[a-z0-9])|[0-9](?=[A-Za-z])') >= 8))
$$;

-- domain::secret::is_secret_value: key-shaped, URL credentials, a secret
-- assignment, or JSON text holding a secret — judged with space, tab, LF,
-- CR and FF trimmed. The rules that need a loop (URL credentials, an
-- assignment, JSON text) are keyfall_has_secret_part, asked only of values
-- holding `://`, `=` or starting like JSON.
CREATE OR REPLACE FUNCTION keyfall.keyfall_has_secret_part(t text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    m         pg_catalog.text[];
    piece     pg_catalog.text;
    authority pg_catalog.text;
    userinfo  pg_catalog.text;
BEGIN
    -- URL credentials: the userinfo of each authority after `://` (only
    -- where one holds an `@`).
    IF t ~ '://[^/?# \t\n\r\f]*@' THEN
        FOR m IN SELECT regexp_matches(t, '://([^/?# \t\n\r\f]*)', 'g') LOOP
            authority := m[1];
            IF strpos(authority, '@') > 0 THEN
                userinfo := left(authority, length(authority) - strpos(reverse(authority), '@'));
                IF strpos(userinfo, ':') > 0 THEN
                    IF substr(userinfo, strpos(userinfo, ':') + 1) <> '' THEN
                        RETURN true;
                    END IF;
                ELSIF keyfall.keyfall_is_key_shaped(userinfo) THEN
                    RETURN true;
                END IF;
            END IF;
        END LOOP;
    END IF;
    -- A secret assignment: NAME=VALUE between separators.
    IF strpos(t, '=') > 0 THEN
        FOR piece IN SELECT regexp_split_to_table(t, '[&;#?,"'' \t\n\r\f]') LOOP
            IF strpos(piece, '=') > 0 AND substr(piece, strpos(piece, '=') + 1) <> ''
               AND (keyfall.keyfall_is_secret_key(split_part(piece, '=', 1))
                    OR keyfall.keyfall_is_key_shaped(substr(piece, strpos(piece, '=') + 1))) THEN
                RETURN true;
            END IF;
        END LOOP;
    END IF;
    -- JSON text: each string literal, a name before `:` or a value.
    IF left(t, 1) IN ('{', '[') AND strpos(t, '"') > 0 THEN
        FOR m IN SELECT regexp_matches(t, '"((?:[^"\\]|\\.)*)"([ \t\n\r]*:)?', 'g') LOOP
            piece := regexp_replace(m[1], '\\(.)', '\1', 'g');
            IF (m[2] IS NOT NULL AND keyfall.keyfall_is_secret_key(piece))
               OR keyfall.keyfall_is_secret_value(piece) THEN
                RETURN true;
            END IF;
        END LOOP;
    END IF;
    RETURN false;
END
$$;

-- One expression: most values (no `=`, not JSON text, no `@` in a URL's
-- authority) are judged by keyfall_is_key_shaped alone, inlined here.
CREATE OR REPLACE FUNCTION keyfall.keyfall_is_secret_value(v text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t pg_catalog.text := btrim(v, E' \t\n\r\f');
BEGIN
    RETURN coalesce(t <> '' AND (
        keyfall.keyfall_is_key_shaped(t)
        OR ((strpos(t, '=') > 0 OR left(t, 1) IN ('{', '[') OR (strpos(t, '://') > 0 AND t ~ '://[^/?# \t\n\r\f]*@'))
            AND keyfall.keyfall_has_secret_part(t))), false);
END
$$;

-- domain::secret::fingerprint_document: an audit `before`/`after` document
-- redacted member by member, each at depth 0 under its own name — what the
-- trigger makes of the config it puts there, so a row it wrote is
-- unchanged by this.
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact_document(doc jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_typeof(doc) = 'object' THEN
            (SELECT coalesce(jsonb_object_agg(e.key,
                        keyfall.keyfall_redact_at(e.value, 0, keyfall.keyfall_is_secret_key(e.key))), '{}'::jsonb)
               FROM jsonb_each(doc) AS e)
        ELSE keyfall.keyfall_redact(doc)
    END
$$;

-- Audit rows written before these shapes were known hold them in clear:
-- each such row's before/after is redacted as the trigger now would, and
-- one audit row says how many ("redact", table audit_log). The log is
-- append-only by trigger; the schema's owner lifts that trigger for this
-- one UPDATE, in this transaction, and puts it back. Only the owner may
-- (ALTER TABLE); nobody else may run this at all. Returns the number of
-- rows redacted; redacting again finds none.
CREATE OR REPLACE FUNCTION keyfall.keyfall_redact_history() RETURNS bigint
LANGUAGE plpgsql SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    n pg_catalog.int8;
BEGIN
    ALTER TABLE keyfall.audit_log DISABLE TRIGGER audit_log_append_only;
    -- Each document redacted once (rows without one are not looked at).
    UPDATE keyfall.audit_log l
       SET before = r.before, after = r.after
      FROM (SELECT x.id,
                   keyfall.keyfall_redact_document(x.before) AS before,
                   keyfall.keyfall_redact_document(x.after) AS after
              FROM keyfall.audit_log x
             WHERE x.before IS NOT NULL OR x.after IS NOT NULL) r
     WHERE l.id = r.id
       AND (l.before IS DISTINCT FROM r.before OR l.after IS DISTINCT FROM r.after);
    GET DIAGNOSTICS n = ROW_COUNT;
    ALTER TABLE keyfall.audit_log ENABLE TRIGGER audit_log_append_only;
    IF n > 0 THEN
        INSERT INTO keyfall.audit_log (actor, action, table_name, after)
        VALUES (keyfall.keyfall_actor(), 'redact', 'audit_log',
                jsonb_build_object('redacted', format('redacted %s rows: secret shapes widened', n), 'rows', n));
    END IF;
    -- The second hop's provider, kept per row for the report, masked as the
    -- view now masks it.
    UPDATE keyfall.row_verdicts r
       SET provider = keyfall.keyfall_mask(r.provider)
     WHERE r.provider IS DISTINCT FROM keyfall.keyfall_mask(r.provider);
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION keyfall.keyfall_redact_history() FROM PUBLIC;

SELECT keyfall.keyfall_redact_history();
