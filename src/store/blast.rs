//! The blast radius of a key (issue 23), read from the audit log: every
//! settings row that held a fingerprint and when (`domain::history::held`),
//! and `Store::key_history`, the one entry point for the timeline of who
//! resolved to it (the world rebuilt once, then replayed forward by
//! `domain::blast::Replay`); `cli::blast` and the console render it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::blast::{self, Event, KeyHistory, KeyRow, Mark, Point, Replay, Stretch, Target, Vouched};
use crate::domain::history::{self, Cut, RowChange, Window};
use crate::domain::json::read_config;
use crate::domain::model::{Account, Setting};

impl Store {
    /// Every settings row that held the key of fingerprint `fp`: those the
    /// log saw holding it (its entries' before or after, through the
    /// fingerprint index, audit_log_fingerprints), and those that hold it now. `since`: the
    /// entry after which the log misses nothing (history's start or the end
    /// of its latest gap); a row with an entry after it is as its last entry
    /// says, so only the others have their present config read (`None`:
    /// every row's).
    pub async fn key_rows(&self, fp: &str, since: Option<i64>) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, keyfall_finite(at) AS at, row_id, account_id, account_slug, integration_type,
                    before::text AS before, after::text AS after
               FROM audit_log
              WHERE table_name = 'integration_settings' AND action IN ('insert', 'update', 'delete')
                AND row_id IN (SELECT l.row_id FROM audit_log l
                                WHERE l.table_name = 'integration_settings'
                                  AND keyfall_audit_fingerprints(l.before, l.after) @> ARRAY[$1::text])
              ORDER BY id",
        )
        .bind(fp)
        .fetch_all(&self.pool)
        .await?;
        let mut by_row: HashMap<i64, (i64, String, String, Vec<RowChange>)> = HashMap::new();
        for r in rows {
            let Some(row_id) = r.try_get::<Option<i64>, _>("row_id")? else { continue };
            let doc = |name: &str| -> Result<Option<String>, StoreError> {
                Ok(r.try_get::<Option<String>, _>(name)?.and_then(|t| history::holds_key(&read_config(&t), fp)))
            };
            let change =
                RowChange { id: r.try_get("id")?, at: r.try_get("at")?, before: doc("before")?, after: doc("after")? };
            let entry = by_row.entry(row_id).or_insert_with(|| (0, String::new(), String::new(), Vec::new()));
            entry.0 = r.try_get::<Option<i64>, _>("account_id")?.unwrap_or(entry.0);
            if let Some(slug) = r.try_get::<Option<String>, _>("account_slug")? {
                entry.1 = slug;
            }
            if let Some(t) = r.try_get::<Option<String>, _>("integration_type")? {
                entry.2 = t;
            }
            entry.3.push(change);
        }
        // Rows holding it now that the log does not tell of (a row unchanged
        // since history began is in no entry): the fingerprint of every
        // string in the config.
        // First which rows those are (none, where every row has changed since
        // history began), so the costly test runs on those only.
        let unknown: Option<Vec<i64>> = match since {
            None => None,
            Some(since) => Some(
                sqlx::query_scalar(
                    "SELECT s.id FROM integration_settings s
                      WHERE NOT EXISTS (SELECT 1 FROM audit_log l
                                         WHERE l.table_name = 'integration_settings' AND l.row_id = s.id
                                           AND l.id > $1 AND l.action IN ('insert', 'update', 'delete'))",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?,
            ),
        };
        let now = match &unknown {
            Some(ids) if ids.is_empty() => Vec::new(),
            _ => {
                sqlx::query(
                    "SELECT s.id, s.account_id::bigint AS account_id, a.slug::text AS slug,
                            s.integration_type::text AS kind, s.config::text AS config
                       FROM integration_settings s LEFT JOIN accounts a ON a.id = s.account_id
                      WHERE ($2::bigint[] IS NULL OR s.id = ANY ($2))
                        AND EXISTS (SELECT 1 FROM jsonb_path_query(s.config, 'strict $.**') v
                                     WHERE jsonb_typeof(v) = 'string'
                                       AND (v #>> '{}' = $1 OR right(v #>> '{}', 9) = $1
                                            OR keyfall_fingerprint(v #>> '{}') = $1))",
                )
                .bind(fp)
                .bind(&unknown)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut holding: HashMap<i64, String> = HashMap::new();
        for r in now {
            let id: i64 = r.try_get("id")?;
            let config = read_config(r.try_get::<Option<&str>, _>("config")?.unwrap_or("null"));
            let Some(field) = history::holds_key(&config, fp) else { continue };
            holding.insert(id, format!("config.{field}"));
            let entry = by_row.entry(id).or_insert_with(|| (0, String::new(), String::new(), Vec::new()));
            entry.0 = r.try_get("account_id")?;
            if entry.1.is_empty() {
                entry.1 = r.try_get::<Option<String>, _>("slug")?.unwrap_or_default();
            }
            entry.2 = r.try_get("kind")?;
        }
        let mut out: Vec<KeyRow> = by_row
            .into_iter()
            .map(|(id, (account_id, account, kind, changes))| KeyRow {
                setting_id: id,
                account_id,
                account,
                integration_type: kind,
                held: history::held(&changes, holding.get(&id).map(String::as_str)),
            })
            .filter(|r| !r.held.is_empty())
            .collect();
        out.sort_by(|a, b| (a.held[0].from, a.setting_id).cmp(&(b.held[0].from, b.setting_id)));
        Ok(out)
    }

    /// The blast radius of the key of fingerprint `fp`: every row that held
    /// it, and for each stretch, from change to change, which accounts and
    /// how many users resolved to it, for which functions. The world is
    /// rebuilt once, at the earliest moment needed (in SQL: each row's
    /// first recorded change after it), then replayed forward over the
    /// changes an answer depends on (`domain::blast::Replay`).
    pub async fn key_history(&self, fp: &str) -> Result<KeyHistory, StoreError> {
        let window = self.history_window().await?;
        let vouched = self.vouched(&window).await?;
        let rows = self.key_rows(fp, vouched.as_ref().map(|v| v.entry)).await?;
        let unknown = match (&window.start, window.gaps.iter().find(|g| g.to.is_none())) {
            (None, _) => "no history recorded yet".to_string(),
            (_, Some(open)) => format!("history has a gap: {}", open.describe()),
            _ => String::new(),
        };
        let mut points: Vec<Vec<Point>> = vec![Vec::new(); rows.len()];
        if let Some(v) = &vouched
            && !rows.is_empty()
        {
            // From the earliest stretch's start (or where history vouches) to
            // the latest stretch's end.
            let stretches = rows.iter().flat_map(|r| r.held.iter());
            let begin =
                stretches.clone().map(|h| h.from_entry.unwrap_or(v.entry).max(v.entry)).min().unwrap_or(v.entry);
            let end = if stretches.clone().any(|h| h.to_entry.is_none()) {
                None
            } else {
                stretches.filter_map(|h| h.to_entry).max()
            };
            if end.is_none_or(|e| e > v.entry) {
                let targets: Vec<Target> = rows
                    .iter()
                    .map(|r| Target {
                        setting_id: r.setting_id,
                        account_id: r.account_id,
                        integration_type: r.integration_type.clone(),
                    })
                    .collect();
                points = self.replay(begin, end, targets).await?;
            }
        }
        let mut stretches = Vec::new();
        for (row, points) in rows.iter().zip(&points) {
            for held in &row.held {
                let intervals = blast::intervals(
                    (held.from_entry, held.from),
                    (held.to_entry, held.to),
                    points,
                    vouched.as_ref(),
                    &unknown,
                );
                let first = intervals.iter().find(|i| i.cannot_vouch.is_none());
                let gaps = window
                    .gaps
                    .iter()
                    .filter(|g| {
                        let after_start = held.from.is_none_or(|f| g.to.is_none_or(|t| t >= f));
                        let before_end = held.to.is_none_or(|t| g.from <= t);
                        after_start && before_end
                    })
                    .map(|g| g.describe())
                    .collect();
                stretches.push(Stretch {
                    account: row.account.clone(),
                    integration_type: row.integration_type.clone(),
                    setting_id: row.setting_id,
                    held: held.clone(),
                    accounts: first.map(|i| i.joined.clone()),
                    users: first.map(|i| i.users),
                    functions: first.map(|i| i.functions.clone()),
                    unknown: match first {
                        Some(_) => None,
                        None => intervals.first().and_then(|i| i.cannot_vouch.clone()),
                    },
                    gaps,
                    intervals,
                });
            }
        }
        Ok(KeyHistory { fingerprint: fp.to_string(), history: window, rows, stretches })
    }

    /// Where history vouches from: just after history's start or the end
    /// of its latest gap (the past is rebuilt from the present backwards,
    /// and cannot cross what went unrecorded). `None` with no history or a
    /// gap still open.
    async fn vouched(&self, window: &Window) -> Result<Option<Vouched>, StoreError> {
        let Some(start) = &window.start else { return Ok(None) };
        if window.gaps.iter().any(|g| g.to_id.is_none()) {
            return Ok(None);
        }
        let latest = window.gaps.iter().filter(|g| g.to_id.is_some_and(|t| t > start.id)).max_by_key(|g| g.to_id);
        Ok(Some(match latest {
            Some(g) => Vouched {
                entry: g.to_id.unwrap_or(start.id),
                at: g.to.unwrap_or(start.at),
                start_entry: start.id,
                start_at: start.at,
                why_gap: Some(format!(
                    "history has a gap after it ({}): keyfall rebuilds the past from the present backwards",
                    g.describe()
                )),
            },
            None => Vouched { entry: start.id, at: start.at, start_entry: start.id, start_at: start.at, why_gap: None },
        }))
    }

    /// Replay the world from just after entry `begin` to entry `end`
    /// (`None`: now), tracking who resolves to each of `targets`.
    async fn replay(&self, begin: i64, end: Option<i64>, targets: Vec<Target>) -> Result<Vec<Vec<Point>>, StoreError> {
        let at: DateTime<Utc> = sqlx::query_scalar(
            "SELECT coalesce((SELECT keyfall_finite(at) FROM audit_log WHERE id = $1), clock_timestamp())",
        )
        .bind(begin)
        .fetch_one(&self.pool)
        .await?;
        let cut = Cut { at, entry: Some(begin + 1) };
        let (chain, _, functions) = self.small_tables(&cut).await?;

        // Settings then: those unchanged since as they are now, the others as
        // their first change after `begin` found them.
        let now = sqlx::query(
            "SELECT s.id, s.account_id::bigint AS account_id, s.integration_type::text AS integration_type,
                    s.config::text AS config, s.is_active::boolean AS is_active,
                    s.withheld_verdict, s.withheld_provider::text AS withheld_provider
               FROM integration_settings s
              WHERE NOT EXISTS (SELECT 1 FROM audit_log l
                                 WHERE l.table_name = 'integration_settings' AND l.row_id = s.id AND l.id > $1
                                   AND l.action IN ('insert', 'update', 'delete'))",
        )
        .bind(begin)
        .fetch_all(&self.pool)
        .await?;
        let mut settings = Vec::with_capacity(now.len());
        for r in now {
            settings.push(Setting {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                integration_type: r.try_get("integration_type")?,
                config: read_config(r.try_get::<Option<&str>, _>("config")?.unwrap_or("null")),
                is_active: r.try_get("is_active")?,
                version: 0,
                updated_at: None,
                updated_by: None,
                version_token: false,
                withheld: super::queries::withheld(r.try_get("withheld_verdict")?, r.try_get("withheld_provider")?),
            });
        }
        let then = sqlx::query(
            "SELECT DISTINCT ON (row_id) row_id, account_id, integration_type, before::text AS before
               FROM audit_log
              WHERE table_name = 'integration_settings' AND action IN ('insert', 'update', 'delete') AND id > $1
              ORDER BY row_id, id",
        )
        .bind(begin)
        .fetch_all(&self.pool)
        .await?;
        for r in then {
            let (Some(id), Some(account), Some(kind), Some(doc)) = (
                r.try_get::<Option<i64>, _>("row_id")?,
                r.try_get::<Option<i64>, _>("account_id")?,
                r.try_get::<Option<String>, _>("integration_type")?,
                r.try_get::<Option<String>, _>("before")?,
            ) else {
                continue;
            };
            settings.push(history::setting_from(id, account, &kind, &read_config(&doc)).map_err(|why| {
                StoreError::NotFound(format!("keyfall does not know the world at {}: {why}", cut.label()))
            })?);
        }

        // Accounts then, the same way.
        let now: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT a.id, a.slug::text, coalesce(a.name::text, ''), a.status::text FROM accounts a
              WHERE NOT EXISTS (SELECT 1 FROM audit_log l
                                 WHERE l.table_name = 'accounts' AND l.row_id = a.id AND l.id > $1
                                   AND l.action IN ('insert', 'update', 'delete'))",
        )
        .bind(begin)
        .fetch_all(&self.pool)
        .await?;
        let mut accounts: Vec<Account> = now
            .into_iter()
            .filter_map(|(id, slug, name, status)| {
                history::account_from(id, &serde_json::json!({"slug": slug, "name": name, "status": status}))
            })
            .collect();
        let then: Vec<(Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT DISTINCT ON (row_id) row_id, before::text
               FROM audit_log
              WHERE table_name = 'accounts' AND action IN ('insert', 'update', 'delete') AND id > $1
              ORDER BY row_id, id",
        )
        .bind(begin)
        .fetch_all(&self.pool)
        .await?;
        accounts.extend(then.into_iter().filter_map(|(id, doc)| history::account_from(id?, &read_config(&doc?))));

        // Users per account then: now, with every recorded move since undone.
        let users: HashMap<Option<i64>, i64> = sqlx::query_as::<_, (Option<i64>, i64)>(
            "SELECT account, sum(n)::bigint FROM (
                 SELECT account_id::bigint AS account, count(*) AS n FROM users GROUP BY 1
                 UNION ALL
                 SELECT (after ->> 'account_id')::bigint, -count(*) FROM audit_log
                  WHERE table_name = 'users' AND action IN ('insert', 'update') AND id > $1
                    AND before -> 'account_id' IS DISTINCT FROM after -> 'account_id' GROUP BY 1
                 UNION ALL
                 SELECT (before ->> 'account_id')::bigint, count(*) FROM audit_log
                  WHERE table_name = 'users' AND action IN ('update', 'delete') AND id > $1
                    AND before -> 'account_id' IS DISTINCT FROM after -> 'account_id' GROUP BY 1
             ) c GROUP BY 1",
        )
        .bind(begin)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();

        // The tracked rows' types and accounts (`REPLAY_CHANGES`).
        let replay_types: std::collections::BTreeSet<String> =
            targets.iter().map(|t| t.integration_type.clone()).collect();
        let mut owners: Vec<i64> = targets.iter().map(|t| t.account_id).collect();
        owners.sort_unstable();
        owners.dedup();

        let mut replay = Replay::new(
            self.rules.clone(),
            chain.into_iter().collect(),
            accounts,
            settings,
            functions,
            users,
            targets,
            Mark { entry: begin, at },
        );

        // Forward, over the changes an answer depends on: settings, the
        // chain, the function map, accounts' slugs, users' accounts — less
        // the settings changes that cannot move any answer (`REPLAY_CHANGES`).
        let omega: Vec<String> = replay_types.into_iter().collect();
        let moves_on: Vec<&str> = self.rules.moves_on_names();
        // Its own read transaction: no JIT (~7 s of compiling on a year's
        // log, more than the query saves), room for its sorts, and a plan for
        // these values (as measured).
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql(
            "SET TRANSACTION READ ONLY; SET LOCAL jit = off; SET LOCAL work_mem = '64MB';
             SET LOCAL plan_cache_mode = force_custom_plan",
        )
        .execute(&mut *tx)
        .await?;
        let mut changes = sqlx::query(REPLAY_CHANGES)
            .bind(begin)
            .bind(end)
            .bind(&omega)
            .bind(&moves_on)
            .bind(&owners)
            .fetch(&mut *tx);
        while let Some(r) = changes.try_next().await? {
            let mark = Mark { entry: r.try_get("id")?, at: r.try_get("at")? };
            let row_id: Option<i64> = r.try_get("row_id")?;
            let before = r.try_get::<Option<String>, _>("before")?.map(|t| read_config(&t));
            let after = r.try_get::<Option<String>, _>("after")?.map(|t| read_config(&t));
            let table: String = r.try_get("table_name")?;
            let event = match table.as_str() {
                "integration_settings" => {
                    let (Some(id), Some(account), Some(kind)) = (
                        row_id,
                        r.try_get::<Option<i64>, _>("account_id")?,
                        r.try_get::<Option<String>, _>("integration_type")?,
                    ) else {
                        continue;
                    };
                    let after = match &after {
                        Some(doc) => Some(history::setting_from(id, account, &kind, doc).map_err(|why| {
                            StoreError::NotFound(format!("the change #{} could not be replayed: {why}", mark.entry))
                        })?),
                        None => None,
                    };
                    Event::Setting { id, after }
                }
                "fallback_chain" => {
                    let position = |d: &Value| d.get("position").and_then(Value::as_i64);
                    Event::Chain {
                        before: before.as_ref().and_then(position),
                        after: after.as_ref().and_then(|d| {
                            Some((position(d)?, d.get("account_slug").and_then(Value::as_str)?.to_string()))
                        }),
                    }
                }
                "ai_functions" => {
                    let text = |d: &Value, k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
                    Event::Function {
                        before: before.as_ref().and_then(|d| text(d, "name")),
                        after: after.as_ref().and_then(|d| Some((text(d, "name")?, text(d, "integration_type")?))),
                    }
                }
                "accounts" => match row_id {
                    Some(id) => Event::Account { id, after: after.as_ref().and_then(|d| history::account_from(id, d)) },
                    None => Event::Nothing,
                },
                "users" => {
                    let account = |d: &Value| d.get("account_id").and_then(Value::as_i64);
                    Event::User { before: before.as_ref().map(account), after: after.as_ref().map(account) }
                }
                _ => Event::Nothing,
            };
            replay.apply(mark, event);
        }
        drop(changes);
        tx.commit().await?;
        Ok(replay.finish())
    }
}

/// The changes the replay applies after entry `$1` up to `$2` (`NULL`:
/// now), in the log's order: the chain, the function map, accounts'
/// slugs, users' moves — and of the settings changes, only those that can
/// move an answer (issue 23: a year holds ~400,000, the replay needs
/// thousands). `$3`: the tracked rows' types, `$4`: the verdicts that
/// move on (`Rules`), `$5`: the tracked rows' accounts.
///
/// A walk from an account lands on another account's row of type T (its
/// first hop of a function of type T, or a second hop to T) only by
/// leaving the account for T: the walk is its own row first, then the
/// chain. So an account is *sealed* while, for every tracked type, it has
/// a row and every row it has of that type stops the walk (answers or
/// raises): its walks never land on another account's tracked row,
/// whatever its other rows say (a function type it lacks included). Each row's versions are ranges of
/// entries (`int8range`, the first from `$1`, rows unchanged since read as
/// they are now), judged by `keyfall_row_verdict` as the resolver judges
/// them; an account's *open* entries are the `int8multirange` where, for
/// some type, it has no row or a row that moves on. A settings change is
/// kept when it is not a plain update of the same (account, type), when
/// its account is tracked or ever in the chain (its rows are walked by
/// everyone), or when its account is open anywhere from the row's previous
/// change to its next: so while an account is open its rows are exact, and
/// while it is sealed the replay holds, for each of its rows, a version
/// from within that sealed stretch — sealed too, landing nowhere else. The
/// property test `the_blast_radius_equals_a_brute_force_replay` holds it
/// to the brute force.
///
/// Its cost is the verdicts: so only versions of the tracked types are
/// judged, and a row's `before` only at its first change (the only one
/// `versions` reads); rows unchanged since are found by a hash anti-join
/// on `ch` (the same changes) rather than one index probe each, and the
/// kept entries are fetched by id, not by a merge over the whole log.
const REPLAY_CHANGES: &str = "
WITH omega AS (SELECT DISTINCT unnest($3::text[]) AS t),
chain_slugs AS (
    SELECT account_slug::text AS slug FROM fallback_chain
    UNION
    SELECT s.slug FROM audit_log l, LATERAL (VALUES (l.before ->> 'account_slug'), (l.after ->> 'account_slug')) s(slug)
     WHERE l.table_name = 'fallback_chain' AND l.id > $1 AND s.slug IS NOT NULL
),
kept_accounts AS (
    SELECT unnest($5::bigint[]) AS id
    UNION
    SELECT a.id::bigint FROM accounts a WHERE a.slug::text IN (SELECT slug FROM chain_slugs)
    UNION
    SELECT l.row_id FROM audit_log l
     WHERE l.table_name = 'accounts' AND l.id > $1
       AND (l.before ->> 'slug' IN (SELECT slug FROM chain_slugs) OR l.after ->> 'slug' IN (SELECT slug FROM chain_slugs))
),
ch AS MATERIALIZED (
    SELECT l.id, l.action, l.row_id, l.account_id, l.integration_type,
           lag(l.id) OVER w AS prev_id, lead(l.id) OVER w AS next_id,
           lag(l.account_id) OVER w AS prev_account, lag(l.integration_type) OVER w AS prev_type,
           CASE WHEN lag(l.id) OVER w IS NULL AND l.integration_type = ANY ($3::text[])
                     AND l.before ? 'config' AND NOT l.before ? 'verdict'
                THEN keyfall_row_verdict(l.integration_type, l.before -> 'config',
                                         CASE WHEN jsonb_typeof(l.before -> 'is_active') = 'boolean'
                                              THEN (l.before ->> 'is_active')::boolean ELSE false END) <> ALL ($4::text[])
                ELSE false END AS before_stops,
           CASE WHEN l.integration_type = ANY ($3::text[]) AND l.after ? 'config' AND NOT l.after ? 'verdict'
                THEN keyfall_row_verdict(l.integration_type, l.after -> 'config',
                                         CASE WHEN jsonb_typeof(l.after -> 'is_active') = 'boolean'
                                              THEN (l.after ->> 'is_active')::boolean ELSE false END) <> ALL ($4::text[])
                ELSE false END AS after_stops,
           l.before IS NOT NULL AS had_before, l.after IS NOT NULL AS has_after
      FROM audit_log l
     WHERE l.table_name = 'integration_settings' AND l.action IN ('insert', 'update', 'delete') AND l.id > $1
    WINDOW w AS (PARTITION BY l.row_id ORDER BY l.id)
),
candidates AS (SELECT DISTINCT account_id FROM ch WHERE account_id IS NOT NULL),
versions AS (
    SELECT account_id, integration_type AS t, int8range($1, id) AS r, before_stops AS stops
      FROM ch WHERE prev_id IS NULL AND had_before AND integration_type = ANY ($3::text[])
    UNION ALL
    SELECT account_id, integration_type, int8range(id, next_id), after_stops
      FROM ch WHERE has_after AND integration_type = ANY ($3::text[])
    UNION ALL
    SELECT s.account_id::bigint, s.integration_type::text, int8range($1, NULL),
           s.withheld_verdict IS NULL
           AND keyfall_row_verdict(s.integration_type::text, s.config, coalesce(s.is_active::boolean, false))
               <> ALL ($4::text[])
      FROM integration_settings s
     WHERE s.integration_type::text = ANY ($3::text[])
       AND s.account_id::bigint IN (SELECT account_id FROM candidates)
       AND NOT EXISTS (SELECT 1 FROM ch WHERE ch.row_id = s.id)
),
pair_open AS (
    SELECT c.account_id,
           (int8multirange(int8range($1, NULL)) - coalesce(range_agg(v.r), '{}'::int8multirange))
           + coalesce(range_agg(v.r) FILTER (WHERE v.stops IS NOT TRUE), '{}'::int8multirange) AS open
      FROM candidates c CROSS JOIN omega o
      LEFT JOIN versions v ON v.account_id = c.account_id AND v.t = o.t
     GROUP BY c.account_id, o.t
),
account_open AS (SELECT account_id, range_agg(open) AS open FROM pair_open GROUP BY account_id),
kept AS (
    SELECT c.id FROM ch c LEFT JOIN account_open o ON o.account_id = c.account_id
     WHERE ($2::bigint IS NULL OR c.id <= $2)
       AND (c.action <> 'update' OR c.account_id IS NULL OR c.integration_type IS NULL
            OR (c.prev_id IS NOT NULL
                AND (c.prev_account IS DISTINCT FROM c.account_id OR c.prev_type IS DISTINCT FROM c.integration_type))
            OR c.account_id IN (SELECT id FROM kept_accounts)
            OR o.open IS NULL
            OR o.open && int8range(coalesce(c.prev_id, $1), c.next_id, '[]'))
    UNION ALL
    SELECT l.id FROM audit_log l
     WHERE l.id > $1 AND ($2::bigint IS NULL OR l.id <= $2) AND l.action IN ('insert', 'update', 'delete')
       AND (l.table_name IN ('fallback_chain', 'ai_functions')
            OR (l.table_name = 'users' AND l.before -> 'account_id' IS DISTINCT FROM l.after -> 'account_id')
            OR (l.table_name = 'accounts' AND l.before ->> 'slug' IS DISTINCT FROM l.after ->> 'slug'))
)
SELECT l.id, keyfall_finite(l.at) AS at, l.table_name, l.row_id, l.account_id, l.integration_type,
       l.before::text AS before, l.after::text AS after
  FROM audit_log l
 WHERE l.id = ANY (ARRAY(SELECT id FROM kept))
 ORDER BY l.id";
