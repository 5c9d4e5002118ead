-- As fast on the app's tables as on keyfall's own (issue 19, point 8).
-- Nothing here touches the app's tables: no index, no trigger. Re-runnable
-- (OR REPLACE): `migrate` applies it again to an install that lost its
-- record.
--
-- Every check the database makes for a write (keyfall_failing_checks, the
-- chain and policy guard, the read scope) first finds the operator's app
-- user: the one user whose email equals the operator's in any case. On
-- keyfall's demo tables an index on lower(email) answers that; on Django's
-- tables (an index on email, none on lower(email)) it was a scan of every
-- user per check, 0.5-1 s at XL. keyfall_user_by_email answers from the
-- app's own index on email when it is in byte order (Django's `_like`
-- index, varchar_pattern_ops, or any btree under the C collation): it walks
-- the email character by character, keeping only the prefixes some stored
-- email has, each extended by every character whose lower() is the
-- operator's character there — a few index probes a character, whatever
-- the number of users.

-- How the any-case lookup may use the app's users table: 'pattern' (a
-- btree on the email column with text/varchar_pattern_ops), 'c' (a btree
-- with the default operator class in the C or POSIX collation), or NULL (a
-- plain query: an index on lower(email) answers it, else a scan). The walk
-- needs lower() to map one character to one character: libc's, in UTF8.
CREATE OR REPLACE FUNCTION keyfall.keyfall_email_walk() RETURNS pg_catalog.text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
    WITH m AS (
        SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(m.spec -> 'users' ->> 'schema') OPERATOR(pg_catalog.||) '.'
                                      OPERATOR(pg_catalog.||) pg_catalog.quote_ident(m.spec -> 'users' ->> 'table')) AS rel,
               m.spec -> 'users' -> 'columns' ->> 'email' AS col
          FROM keyfall.mapping m LIMIT 1
    ), col AS (
        SELECT m.rel, a.attnum, a.attcollation
          FROM m JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) m.rel
                                               AND a.attname OPERATOR(pg_catalog.=) m.col::pg_catalog.name
         WHERE NOT a.attisdropped
    ), one_to_one AS (
        -- libc's lower() maps each character to one character (ICU's may not).
        SELECT pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.=) 'UTF8'
               AND CASE WHEN col.attcollation OPERATOR(pg_catalog.=) 100
                        THEN (SELECT d.datlocprovider OPERATOR(pg_catalog.=) 'c' FROM pg_catalog.pg_database d
                               WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                        ELSE (SELECT c.collprovider OPERATOR(pg_catalog.=) 'c' FROM pg_catalog.pg_collation c
                               WHERE c.oid OPERATOR(pg_catalog.=) col.attcollation) END AS ok
          FROM col
    ), idx AS (
        SELECT oc.opcname, oc.opcdefault, i.indcollation[0] AS coll
          FROM col
          JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) col.rel
          JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
          JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) ic.relam
          JOIN pg_catalog.pg_opclass oc ON oc.oid OPERATOR(pg_catalog.=) i.indclass[0]
         WHERE am.amname OPERATOR(pg_catalog.=) 'btree' AND i.indisvalid AND i.indpred IS NULL
           AND i.indkey[0] OPERATOR(pg_catalog.=) col.attnum
    )
    SELECT CASE
        WHEN NOT coalesce((SELECT bool_and(o.ok) FROM one_to_one o), false) THEN NULL
        WHEN EXISTS (SELECT 1 FROM idx WHERE idx.opcname IN ('text_pattern_ops', 'varchar_pattern_ops')) THEN 'pattern'
        WHEN EXISTS (SELECT 1 FROM idx
                      WHERE idx.opcdefault AND idx.opcname IN ('text_ops', 'varchar_ops')
                        AND (idx.coll IN (950, 951)
                             OR (idx.coll OPERATOR(pg_catalog.=) 100
                                 AND (SELECT d.datcollate IN ('C', 'POSIX') FROM pg_catalog.pg_database d
                                       WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))))
             THEN 'c'
    END
$$;

-- The string right after every string that starts with `s`, in byte order
-- (its last character's successor); NULL when there is none.
CREATE OR REPLACE FUNCTION keyfall.keyfall_prefix_end(s pg_catalog.text) RETURNS pg_catalog.text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = keyfall, pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN s OPERATOR(pg_catalog.=) '' THEN NULL
        WHEN pg_catalog.ascii(pg_catalog.right(s, 1)) OPERATOR(pg_catalog.>=) 1114111 THEN NULL
        ELSE pg_catalog.left(s, -1) OPERATOR(pg_catalog.||) pg_catalog.chr(
                 CASE WHEN pg_catalog.ascii(pg_catalog.right(s, 1)) OPERATOR(pg_catalog.=) 55295 THEN 57344
                      ELSE pg_catalog.ascii(pg_catalog.right(s, 1)) OPERATOR(pg_catalog.+) 1 END)
    END
$$;

-- The id of the one user whose email is `email` in any case; NULL when
-- there is none, or several (two emails that differ only in case are
-- nobody: no login may act as an ambiguous name).
CREATE OR REPLACE FUNCTION keyfall.keyfall_user_by_email(email pg_catalog.text) RETURNS pg_catalog.int8
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    want    pg_catalog.text := pg_catalog.lower(keyfall_user_by_email.email);
    walk    pg_catalog.text;
    lowered pg_catalog.text[];
    live    pg_catalog.text[] := ARRAY[''];
    grown   pg_catalog.text[];
    p       pg_catalog.text;
    t       pg_catalog.text;
    lo      pg_catalog.text;
    hi      pg_catalog.text;
    found   pg_catalog.text;
    ch      pg_catalog.text;
    ids     pg_catalog.int8[];
BEGIN
    IF want IS NULL OR want = '' THEN
        RETURN NULL;
    END IF;
    walk := keyfall.keyfall_email_walk();
    -- The walk's bounds need a character above every stored one.
    IF walk IS NULL OR pg_catalog.strpos(keyfall_user_by_email.email, pg_catalog.chr(1114111)) > 0
       OR pg_catalog.char_length(want) > 400 THEN
        SELECT pg_catalog.array_agg(x.id) INTO ids
          FROM (SELECT u.id FROM keyfall.users u WHERE pg_catalog.lower(u.email) = want LIMIT 2) x;
        RETURN CASE WHEN pg_catalog.cardinality(ids) = 1 THEN ids[1] END;
    END IF;
    -- lower() of every ASCII character, by code.
    SELECT pg_catalog.array_agg(pg_catalog.lower(pg_catalog.chr(k)) ORDER BY k) INTO lowered
      FROM pg_catalog.generate_series(1, 127) AS k;
    FOR i IN 1 .. pg_catalog.char_length(want) LOOP
        t := pg_catalog.substr(want, i, 1);
        grown := '{}';
        FOREACH p IN ARRAY live LOOP
            -- The ASCII characters whose lower() is t, where an email
            -- continues p with one.
            IF walk = 'pattern' THEN
                grown := grown || ARRAY(
                    SELECT p || pg_catalog.chr(a.k::pg_catalog.int4)
                      FROM pg_catalog.unnest(lowered) WITH ORDINALITY AS a(l, k)
                     WHERE a.l = t
                       AND EXISTS (SELECT 1 FROM keyfall.users u
                                    WHERE u.email ~>=~ (p || pg_catalog.chr(a.k::pg_catalog.int4))
                                      AND u.email ~<~ (p || pg_catalog.chr(a.k::pg_catalog.int4 + 1))));
            ELSE
                grown := grown || ARRAY(
                    SELECT p || pg_catalog.chr(a.k::pg_catalog.int4)
                      FROM pg_catalog.unnest(lowered) WITH ORDINALITY AS a(l, k)
                     WHERE a.l = t
                       AND EXISTS (SELECT 1 FROM keyfall.users u
                                    WHERE u.email >= (p || pg_catalog.chr(a.k::pg_catalog.int4))
                                      AND u.email < (p || pg_catalog.chr(a.k::pg_catalog.int4 + 1))));
            END IF;
            -- The other characters that follow p in some email, one index
            -- probe each (none, for emails in ASCII): those whose lower() is t.
            lo := p || pg_catalog.chr(128);
            hi := coalesce(keyfall.keyfall_prefix_end(p), pg_catalog.chr(1114111));
            LOOP
                IF walk = 'pattern' THEN
                    SELECT u.email INTO found FROM keyfall.users u
                     WHERE u.email ~>=~ lo AND u.email ~<~ hi ORDER BY u.email USING ~<~ LIMIT 1;
                ELSE
                    SELECT u.email INTO found FROM keyfall.users u
                     WHERE u.email >= lo AND u.email < hi ORDER BY u.email LIMIT 1;
                END IF;
                EXIT WHEN found IS NULL;
                ch := pg_catalog.substr(found, i, 1);
                IF pg_catalog.lower(ch) = t THEN
                    grown := grown || (p || ch);
                END IF;
                lo := keyfall.keyfall_prefix_end(p || ch);
                EXIT WHEN lo IS NULL;
                found := NULL;
            END LOOP;
        END LOOP;
        live := grown;
        EXIT WHEN pg_catalog.cardinality(live) = 0;
    END LOOP;
    IF pg_catalog.cardinality(live) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT pg_catalog.array_agg(x.id) INTO ids
      FROM (SELECT u.id FROM keyfall.users u
             WHERE u.email = ANY (live) AND pg_catalog.lower(u.email) = want LIMIT 2) x;
    RETURN CASE WHEN pg_catalog.cardinality(ids) = 1 THEN ids[1] END;
END
$$;

-- The permission checks (DESIGN §4; as in 0001), the operator's user found
-- by keyfall_user_by_email: the same user, without a scan.
CREATE OR REPLACE FUNCTION keyfall.keyfall_failing_checks(email text, action text, account_id bigint) RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    u        record;
    acc      record;
    mode     pg_catalog.text;
    target_system pg_catalog.bool;
    active   pg_catalog.bool := false;
    tenant   pg_catalog.bool := false;
    sysdev   pg_catalog.bool := false;
    owner    pg_catalog.bool := false;
    failing  pg_catalog.text[] := '{}';
BEGIN
    -- The one user with this email in any case; two that differ only in
    -- case (a case-sensitive app allows it) are nobody: no login may act
    -- as an ambiguous name.
    SELECT * INTO u FROM keyfall.users x
     WHERE x.id = keyfall.keyfall_user_by_email(keyfall_failing_checks.email);
    SELECT p.mode INTO mode FROM keyfall.policy p LIMIT 1;
    mode := coalesce(mode, 'system_only');
    target_system := keyfall_failing_checks.account_id IS NULL OR EXISTS (
        SELECT 1 FROM keyfall.accounts a JOIN keyfall.fallback_chain c ON c.account_slug = a.slug
         WHERE a.id = keyfall_failing_checks.account_id);
    IF u.id IS NOT NULL THEN
        active := u.is_active;
        SELECT a.id, a.slug, a.status INTO acc FROM keyfall.accounts a WHERE a.id = u.account_id;
        tenant := acc.id IS NOT NULL AND acc.status IN ('active', 'trial');
        sysdev := u.is_superuser OR u.role IN ('developer', 'system_bot')
                  OR (acc.id IS NOT NULL AND EXISTS (SELECT 1 FROM keyfall.fallback_chain c
                                                      WHERE c.account_slug = acc.slug));
        owner := acc.id IS NOT NULL AND acc.id = keyfall_failing_checks.account_id
                 AND NOT target_system AND u.role IN ('owner', 'admin');
    END IF;
    IF NOT active THEN
        failing := failing || 'IsAuthenticatedAndActive'::text;
    END IF;
    IF action = 'task_progress' THEN
        RETURN failing;
    END IF;
    IF NOT tenant THEN
        failing := failing || 'HasTenantAccess'::text;
    END IF;
    IF action IN ('view_settings', 'modify_settings') AND mode = 'per_account' AND NOT target_system THEN
        IF NOT (sysdev OR owner) THEN
            failing := failing || 'IsSystemAccountOrDeveloper or IsAccountOwnerOrAdmin'::text;
        END IF;
    ELSIF action = 'view_settings' AND mode = 'hybrid_readonly' AND target_system THEN
        NULL;
    ELSIF NOT sysdev THEN
        failing := failing || 'IsSystemAccountOrDeveloper'::text;
    END IF;
    RETURN failing;
END
$$;

-- The chain and the policy are for active superusers and developers (as in
-- 0001), the operator's user found by keyfall_user_by_email.
CREATE OR REPLACE FUNCTION keyfall.keyfall_guard_admin() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    who pg_catalog.text;
    ok  pg_catalog.bool;
BEGIN
    -- Migrations and the schema owner's maintenance run without an operator.
    IF keyfall.keyfall_claimed() IS NULL AND keyfall.keyfall_login_is_superuser() THEN
        RETURN NULL;
    END IF;
    who := keyfall.keyfall_operator();
    SELECT u.is_active AND (u.is_superuser OR u.role = 'developer') INTO ok
      FROM keyfall.users u WHERE u.id = keyfall.keyfall_user_by_email(who);
    IF NOT coalesce(ok, false) THEN
        RAISE EXCEPTION 'denied by the database: the chain and the policy are for active superusers and developers; % is not one', left(who, 200)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;

-- What a login may read (as in 0007), the operator's own account found by
-- keyfall_user_by_email (an ambiguous email is nobody there too: its
-- checks fail, so the account it would name was never readable).
CREATE OR REPLACE FUNCTION keyfall.keyfall_scope() RETURNS keyfall.read_scope
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = keyfall, pg_catalog, pg_temp AS $$
DECLARE
    emails  pg_catalog.text[];
    e       pg_catalog.text;
    own     pg_catalog.int8;
    result  keyfall.read_scope := ROW(false, '{}'::pg_catalog.int8[], false);
BEGIN
    IF keyfall.keyfall_login_is_superuser() THEN
        RETURN ROW(true, '{}'::pg_catalog.int8[], true);
    END IF;
    IF keyfall.keyfall_claimed() IS NOT NULL AND keyfall.keyfall_may_act_as(keyfall.keyfall_claimed()) THEN
        emails := ARRAY[lower(keyfall.keyfall_claimed())];
    ELSE
        SELECT array_agg(o.email) INTO emails FROM keyfall.operators o WHERE o.login = session_user;
    END IF;
    FOREACH e IN ARRAY coalesce(emails, '{}'::pg_catalog.text[]) LOOP
        IF cardinality(keyfall.keyfall_failing_checks(e, 'view_settings', -1)) = 0 THEN
            RETURN ROW(true, '{}'::pg_catalog.int8[], true);
        END IF;
        IF cardinality(keyfall.keyfall_failing_checks(e, 'view_settings', NULL)) = 0 THEN
            result.system := true;
        END IF;
        own := NULL;
        SELECT u.account_id INTO own FROM keyfall.users u WHERE u.id = keyfall.keyfall_user_by_email(e);
        IF own IS NOT NULL AND cardinality(keyfall.keyfall_failing_checks(e, 'view_settings', own)) = 0 THEN
            result.accounts := result.accounts || own;
        END IF;
    END LOOP;
    IF result.system THEN
        SELECT result.accounts || coalesce(array_agg(a.id), '{}'::pg_catalog.int8[]) INTO result.accounts
          FROM keyfall.fallback_chain c JOIN keyfall.accounts a ON a.slug = c.account_slug;
    END IF;
    RETURN result;
END
$$;

REVOKE EXECUTE ON FUNCTION keyfall.keyfall_email_walk() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION keyfall.keyfall_user_by_email(pg_catalog.text) FROM PUBLIC;
SELECT keyfall.keyfall_harden();
