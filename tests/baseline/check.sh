#!/bin/bash
# Are two sets of migrations the same schema? Used to fold migrations into
# migrations/0001_baseline.sql (the procedure: tests/baseline/README.md).
#
#   tests/baseline/check.sh OLD_DIR NEW_DIR
#
# Applies OLD_DIR/*.sql and NEW_DIR/*.sql (each file in one transaction,
# search_path=keyfall, as keyfall's migrator does) to scratch databases and
# compares, for each case: a new database; keyfall's first layout moved in;
# keyfall's demo tables attached; Django-shaped tables attached (then written
# to, a column added and one renamed); NEW applied a second time (a lost
# record: it must be re-runnable); a detached database with NEW re-applied.
# Compared: pg_dump -s of the whole database (schemas, views, triggers,
# grants, event triggers), every function's pg_get_functiondef, the event
# triggers, and every row of keyfall's tables (times, txids and oids left
# out). Exit 1 on any difference. Needs psql and pg_dump; PGHOST/PGUSER as
# for psql (default 127.0.0.1, postgres). Scratch databases: keyfall_fold_*.
set -euo pipefail
OLD=$(cd "$1" && pwd); NEW=$(cd "$2" && pwd)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres} PGOPTIONS="-c client_min_messages=warning"
OUT=$(mktemp -d)
psql() { command psql -q -X -v ON_ERROR_STOP=1 "$@"; }

fresh() { dropdb --if-exists "$1" >/dev/null 2>&1 || true; createdb "$1"; }
migrate() { # DB DIR
  psql -d "$1" -c 'CREATE SCHEMA IF NOT EXISTS keyfall'
  for f in $(ls "$2"/*.sql | sort); do
    PGOPTIONS="$PGOPTIONS -c search_path=keyfall" psql -1 -d "$1" -f "$f" >/dev/null
  done
}
legacy() { # keyfall's first layout, as tests/it/attach.rs makes it
  local F=$REPO/tests/fixtures/legacy
  for s in 0001_schema 0002_audit_triggers 0003_resolution 0004_verdict_column 0005_console_indexes 0006_hardening; do
    psql -d "$1" -f "$F/$s.sql" >/dev/null
  done
  psql -d "$1" -c "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
      installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL,
      execution_time bigint NOT NULL)"
  psql -d "$1" -f "$F/demo.sql" >/dev/null
  psql -d "$1" -c "UPDATE integration_settings SET config = config || '{\"note\": \"token=sk-abcdefghijklmnopqrstuvwxyz123456\"}'
      WHERE integration_type = 'openai'; UPDATE policy SET mode = 'hybrid_readonly'; DELETE FROM fallback_chain WHERE account_slug = 'default';"
}
DEMO='{"accounts":{"schema":"public","table":"accounts","columns":{"id":"id","slug":"slug","name":"name","status":"status"},"status_values":{}},"users":{"schema":"public","table":"users","columns":{"id":"id","email":"email","role":"role","is_superuser":"is_superuser","is_active":"is_active","account_id":"account_id"},"role_values":{}},"settings":{"schema":"public","table":"integration_settings","columns":{"id":"id","account_id":"account_id","integration_type":"integration_type","config":"config","is_active":"is_active","version":"version","updated_at":"updated_at","updated_by":"updated_by"}}}'
DJANGO='{"accounts":{"schema":"public","table":"igny8_account","columns":{"id":"id","slug":"slug","name":"name","status":"status"},"status_values":{}},"users":{"schema":"public","table":"igny8_users","columns":{"id":"id","email":"email","role":"role","is_superuser":"is_superuser","is_active":"is_active","account_id":"account_id"},"role_values":{}},"settings":{"schema":"public","table":"igny8_integration_settings","columns":{"id":"id","account_id":"account_id","integration_type":"integration_type","config":"config","is_active":"is_active","updated_at":"updated_at","created_at":"created_at"}}}'
demo() {
  psql -d "$1" -f "$REPO/assets/demo_schema.sql" >/dev/null
  psql -d "$1" -f "$REPO/assets/demo.sql" >/dev/null
  psql -d "$1" -c "SELECT keyfall.keyfall_attach('$DEMO'::jsonb)" >/dev/null
  psql -d "$1" -c "UPDATE public.integration_settings SET config = config || '{\"model\":\"gpt-4.1\",\"apiKey\":\"sk-test-abcdefghijklmnop1234\"}' WHERE integration_type = 'openai';
      UPDATE public.users SET role = 'admin' WHERE id = (SELECT min(id) FROM public.users);
      DELETE FROM public.integration_settings WHERE id = (SELECT max(id) FROM public.integration_settings);"
}
django() {
  psql -d "$1" >/dev/null <<'SQL'
CREATE TABLE igny8_account (id bigserial PRIMARY KEY, slug varchar(255) NOT NULL UNIQUE, name varchar(255) NOT NULL, status varchar(20) NOT NULL);
CREATE INDEX igny8_account_slug_like ON igny8_account (slug varchar_pattern_ops);
CREATE TABLE igny8_users (id bigserial PRIMARY KEY, password varchar(128) NOT NULL, email varchar(254) NOT NULL UNIQUE, role varchar(20) NOT NULL,
  is_superuser boolean NOT NULL, is_active boolean NOT NULL, account_id bigint REFERENCES igny8_account (id) DEFERRABLE INITIALLY DEFERRED, last_login timestamptz);
CREATE INDEX igny8_users_email_like ON igny8_users (email varchar_pattern_ops);
CREATE TABLE igny8_integration_settings (id bigserial PRIMARY KEY, integration_type varchar(50) NOT NULL, config jsonb NOT NULL, is_active boolean NOT NULL,
  created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, account_id bigint NOT NULL REFERENCES igny8_account (id) DEFERRABLE INITIALLY DEFERRED);
INSERT INTO igny8_account (slug, name, status) VALUES ('aws-admin', 'AWS Admin', 'active'), ('paid-1', 'Paid', 'active'), ('trial-1', 'Trial', 'trial');
INSERT INTO igny8_users (password, email, role, is_superuser, is_active, account_id) VALUES ('x', 'dev@igny8.com', 'developer', false, true, 1), ('y', 'own@paid.com', 'owner', false, true, 2);
INSERT INTO igny8_integration_settings (integration_type, config, is_active, created_at, updated_at, account_id) VALUES
  ('openai', '{"apiKey":"sk-aaaaaaaaaaaaaaaaaaaaaaaa","model":"gpt-4o"}', true, now(), now(), 1),
  ('openai', '{"apiKey":" "}', true, now(), now(), 2),
  ('openai', '{"apiKey":"sk-bbbbbbbbbbbbbbbbbbbbbbbbbb"}', true, now(), now(), 2),
  ('image_generation', '{"provider":"runware"}', true, now(), now(), 3);
SQL
  psql -d "$1" -c "SELECT keyfall.keyfall_attach('$DJANGO'::jsonb)" >/dev/null
  psql -d "$1" -c "UPDATE igny8_integration_settings SET config = config || '{\"temperature\": 3}' WHERE id = 1;
      UPDATE igny8_users SET last_login = now(); UPDATE igny8_users SET role = 'admin' WHERE id = 2;
      ALTER TABLE igny8_integration_settings ADD COLUMN note text; ALTER TABLE igny8_users RENAME COLUMN role TO kind;"
}
detach() { psql -d "$1" -c "SELECT keyfall.keyfall_lock_app(NULL); SELECT keyfall.keyfall_detach()" >/dev/null; }
snap() {
  pg_dump -s "$1" | grep -v '^\\\(un\)\?restrict ' > "$OUT/$1.schema"
  psql -At -d "$1" -c "SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY n.nspname, p.oid::regprocedure::text" > "$OUT/$1.functions"
  psql -At -d "$1" -c "SELECT evtname, evtevent, evtenabled, evtfoid::regprocedure, evttags FROM pg_event_trigger ORDER BY 1" > "$OUT/$1.events"
  : > "$OUT/$1.rows"
  for t in $(psql -At -d "$1" -c "SELECT relname FROM pg_class WHERE relnamespace = 'keyfall'::regnamespace AND relkind = 'r' AND relname <> '_sqlx_migrations' ORDER BY 1"); do
    echo "== $t" >> "$OUT/$1.rows"
    psql -At -d "$1" -c "SELECT to_jsonb(x) - 'at' - 'installed_at' - 'txid' - 'added_at' - 'detached_at' - 'places' - 'stale_since' FROM keyfall.$t x ORDER BY 1" >> "$OUT/$1.rows"
  done
}
failed=0
compare() { # CASE
  snap keyfall_fold_old; snap keyfall_fold_new
  local line="$1:"
  for k in schema functions events rows; do
    if cmp -s "$OUT/keyfall_fold_old.$k" "$OUT/keyfall_fold_new.$k"; then
      line+=" $k identical ($(wc -l < "$OUT/keyfall_fold_new.$k") lines);"
    else
      line+=" $k DIFFERENT;"; failed=1
      diff "$OUT/keyfall_fold_old.$k" "$OUT/keyfall_fold_new.$k" | head -40 >&2 || true
    fi
  done
  echo "$line functions: $(psql -At -d keyfall_fold_new -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'keyfall'::regnamespace")"
}
run_case() { # CASE PRE POST
  for side in old new; do
    fresh keyfall_fold_$side
    [ -n "$2" ] && $2 keyfall_fold_$side
    if [ $side = old ]; then migrate keyfall_fold_$side "$OLD"; else migrate keyfall_fold_$side "$NEW"; fi
    [ -n "$3" ] && $3 keyfall_fold_$side
  done
  compare "$1"
}
run_case "new database" "" ""
migrate keyfall_fold_new "$NEW"; compare "new database, NEW applied twice"
run_case "first layout moved in" legacy ""
run_case "demo tables attached" "" demo
migrate keyfall_fold_new "$NEW"; compare "demo tables attached, NEW applied again"
detach keyfall_fold_old; detach keyfall_fold_new; migrate keyfall_fold_new "$NEW"; compare "demo detached, NEW applied again"
run_case "Django-shaped tables attached, changed" "" django
migrate keyfall_fold_new "$NEW"; compare "Django-shaped attached, NEW applied again"
dropdb keyfall_fold_old; dropdb keyfall_fold_new; rm -rf "$OUT"
[ $failed = 0 ] && echo "the same schema" || { echo "DIFFERENT"; exit 1; }
