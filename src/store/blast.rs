//! The blast radius of a key (issue 23), read from the audit log: every
//! settings row that held a fingerprint and when (`domain::history::held`),
//! and how many users each account had at a moment, for the timeline of who
//! resolved to it (`cli::blast` walks the world of `Store::world_at`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::history::{self, Cut, Held, RowChange};
use crate::domain::json::read_config;

/// One settings row that held the key, with when.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyRow {
    pub setting_id: i64,
    pub account_id: i64,
    /// The account's slug as the log (or, for a row never changed since
    /// history began, the account now) names it.
    pub account: String,
    pub integration_type: String,
    pub held: Vec<Held>,
}

impl Store {
    /// Every settings row that held the key of fingerprint `fp`: those the
    /// log saw holding it (its entries' before or after), and those that
    /// hold it now.
    pub async fn key_rows(&self, fp: &str) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, keyfall_finite(at) AS at, row_id, account_id, account_slug, integration_type,
                    before::text AS before, after::text AS after
               FROM audit_log
              WHERE table_name = 'integration_settings' AND action IN ('insert', 'update', 'delete')
                AND row_id IN (SELECT l.row_id FROM audit_log l
                                WHERE l.table_name = 'integration_settings' AND l.action IN ('insert', 'update', 'delete')
                                  AND strpos(coalesce(l.before::text, '') || coalesce(l.after::text, ''), $1) > 0)
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
        // Rows holding it now (a row unchanged since history began is in
        // no entry): the fingerprint of every string in the config.
        let now = sqlx::query(
            "SELECT s.id, s.account_id::bigint AS account_id, a.slug::text AS slug, s.integration_type::text AS kind,
                    s.config::text AS config
               FROM integration_settings s LEFT JOIN accounts a ON a.id = s.account_id
              WHERE EXISTS (SELECT 1 FROM jsonb_path_query(s.config, 'strict $.**') v
                             WHERE jsonb_typeof(v) = 'string'
                               AND (v #>> '{}' = $1 OR right(v #>> '{}', 9) = $1 OR keyfall_fingerprint(v #>> '{}') = $1))",
        )
        .bind(fp)
        .fetch_all(&self.pool)
        .await?;
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

    /// How many users each account had at `cut` (`None`: users without an
    /// account): the counts now, with every recorded change after undone.
    pub async fn user_counts_at(&self, cut: &Cut) -> Result<HashMap<Option<i64>, i64>, StoreError> {
        let mut counts: HashMap<Option<i64>, i64> =
            sqlx::query_as::<_, (Option<i64>, i64)>("SELECT account_id::bigint, count(*) FROM users GROUP BY 1")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        let moves: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT before::text, after::text FROM audit_log
              WHERE table_name = 'users' AND action IN ('insert', 'update', 'delete')
                AND (CASE WHEN $1::bigint IS NULL THEN at > $2 ELSE id >= $1 END)
                AND before -> 'account_id' IS DISTINCT FROM after -> 'account_id'",
        )
        .bind(cut.entry)
        .bind(cut.at)
        .fetch_all(&self.pool)
        .await?;
        let account = |t: &str| read_config(t).get("account_id").and_then(serde_json::Value::as_i64);
        for (before, after) in moves {
            if let Some(a) = after {
                *counts.entry(account(&a)).or_default() -= 1;
            }
            if let Some(b) = before {
                *counts.entry(account(&b)).or_default() += 1;
            }
        }
        Ok(counts)
    }
}

/// When a stretch began, as a cut just after the entry that began it
/// (`None`: history's start).
pub fn cut_after(entry: Option<i64>, at: Option<DateTime<Utc>>, start: &history::Start) -> Cut {
    match (entry, at) {
        (Some(id), Some(at)) => Cut { at, entry: Some(id + 1) },
        _ => Cut { at: start.at, entry: Some(start.id + 1) },
    }
}
