//! Who answers, for many accounts at once, without the report's per-row SQL:
//! `resolve --batch`'s engine. The system chain answers the same for every
//! account that falls back, so it is worked out once (`ChainAnswers`); per
//! account only its own rows' stored verdicts are read (one index probe
//! each, `keyfall.row_verdicts`) and combined by the report's rules in Rust.
//! The rules are the report SQL's, clause for clause (`report.rs`), and the
//! property test holds the two equal on random data under three rule sets.
//! A batch reads everything in one read-only snapshot (`Store::snapshot`).

use std::collections::HashMap;

use sqlx::Row;

use super::{ReportRow, Store, StoreError};
use crate::domain::registry;

/// One setting row as the report reads it: its stored verdict, and its
/// `provider` as the report names it (the text shown, the type hopped to).
#[derive(Debug, Clone)]
struct RowVerdict {
    verdict: String,
    /// The provider as the report shows it (`(no provider)` when falsy).
    provider_text: Option<String>,
    /// The type a consumer's second hop looks up (a non-empty string only).
    hop_type: Option<String>,
}

/// The per-row facts, computed by the same SQL expressions the report uses
/// on the same values (so a provider of any JSON shape reads the same).
const ROWS_SQL: &str = "
SELECT account_id, integration_type, verdict,
       CASE WHEN jsonb_typeof(provider) = 'string' AND provider <> '\"\"'::jsonb THEN provider #>> '{}' END AS hop_type,
       CASE WHEN NOT keyfall_py_truthy(provider) THEN '(no provider)'
            WHEN jsonb_typeof(provider) = 'string' THEN provider #>> '{}'
            ELSE provider::text END AS provider_text
  FROM row_verdicts WHERE account_id = ANY($1::bigint[])";

/// What the system chain answers per type (the report's `sys_answer`).
#[derive(Debug, Clone, Default)]
pub struct ChainAnswers {
    /// Per type: the first chain account whose row stops the walk, with
    /// that row (which may be one the app raises on: `fails`).
    by_type: HashMap<String, (String, RowVerdict)>,
    moves_on: Vec<String>,
    fails: Vec<String>,
}

impl ChainAnswers {
    fn stops(&self, v: &RowVerdict) -> bool {
        !self.moves_on.contains(&v.verdict)
    }

    fn fails(&self, v: &RowVerdict) -> bool {
        self.fails.contains(&v.verdict)
    }

    /// The chain's stop for `t`: who, and the row (answering or raising).
    fn stop(&self, t: &str) -> Option<(&str, &RowVerdict)> {
        self.by_type.get(t).map(|(slug, row)| (slug.as_str(), row))
    }
}

/// The rows of some accounts, by (account id, type).
pub struct AccountRows(HashMap<(i64, String), RowVerdict>);

impl Store {
    /// One read-only snapshot for many answers: every query of a batch sees
    /// the same chain, users and settings (REPEATABLE READ).
    pub async fn snapshot(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        Ok(tx)
    }

    /// The system chain's answer for every type, read once per run.
    pub async fn chain_answers(&self, conn: &mut sqlx::PgConnection) -> Result<ChainAnswers, StoreError> {
        let chain: Vec<(i64, String)> = sqlx::query_as(
            "SELECT a.id, a.slug FROM fallback_chain c JOIN accounts a ON a.slug = c.account_slug ORDER BY c.position",
        )
        .fetch_all(&mut *conn)
        .await?;
        let ids: Vec<i64> = chain.iter().map(|(id, _)| *id).collect();
        let rows = self.account_rows(conn, &ids).await?;
        let mut answers = ChainAnswers {
            by_type: HashMap::new(),
            moves_on: self.rules.moves_on_names().into_iter().map(str::to_string).collect(),
            fails: self.rules.fails_names().into_iter().map(str::to_string).collect(),
        };
        let mut types: Vec<&String> = rows.0.keys().map(|(_, t)| t).collect();
        types.sort();
        types.dedup();
        for t in types {
            let first = chain.iter().find_map(|(id, slug)| {
                rows.0.get(&(*id, t.clone())).filter(|r| answers.stops(r)).map(|r| (slug.clone(), r.clone()))
            });
            if let Some(stop) = first {
                answers.by_type.insert(t.clone(), stop);
            }
        }
        Ok(answers)
    }

    /// Users by email, exact first, then any case: (asked, the account's id
    /// and slug) for those that exist (`None`: a user without an account).
    #[allow(clippy::type_complexity)]
    pub async fn users_with_accounts(
        &self,
        conn: &mut sqlx::PgConnection,
        emails: &[String],
    ) -> Result<Vec<(String, Option<(i64, String)>)>, StoreError> {
        let rows: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT q.e, a.id, a.slug
               FROM unnest($1::text[]) AS q(e)
               JOIN LATERAL (
                    (SELECT u.account_id FROM users u WHERE u.email = q.e)
                    UNION ALL
                    (SELECT u.account_id FROM users u WHERE lower(u.email) = lower(q.e)
                       AND NOT EXISTS (SELECT 1 FROM users x WHERE x.email = q.e) ORDER BY u.id LIMIT 1)
                    LIMIT 1) u ON true
               LEFT JOIN accounts a ON a.id = u.account_id",
        )
        .bind(emails)
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|(e, id, slug)| (e, id.zip(slug))).collect())
    }

    /// Every row of these accounts, with its verdict: one index probe each.
    pub async fn account_rows(
        &self,
        conn: &mut sqlx::PgConnection,
        account_ids: &[i64],
    ) -> Result<AccountRows, StoreError> {
        let rows = sqlx::query(ROWS_SQL).bind(account_ids).fetch_all(conn).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(
                (r.try_get::<i64, _>("account_id")?, r.try_get::<String, _>("integration_type")?),
                RowVerdict {
                    verdict: r.try_get("verdict")?,
                    provider_text: r.try_get("provider_text")?,
                    hop_type: r.try_get("hop_type")?,
                },
            );
        }
        Ok(AccountRows(out))
    }
}

/// Who answers `t` for the account (`None`: a user without one), by the
/// report's rules: the account's own row first, whatever the account; where
/// it moves the walk on, the chain's; a consumer's provider looked up again
/// from the same account. A stop on a row the rules make fail is where the
/// app raises (`raises`), in either hop. `account` is (id, slug).
pub fn answer(chain: &ChainAnswers, rows: &AccountRows, account: Option<(i64, &str)>, t: &str) -> ReportRow {
    let own_row = |ty: &str| account.and_then(|(id, _)| rows.0.get(&(id, ty.to_string())));
    let slug = account.map(|(_, s)| s).unwrap_or("");
    // Where a walk for `ty` stops: (who, the row), answering or raising.
    let stop = |ty: &str| -> Option<(&str, &RowVerdict)> {
        match own_row(ty) {
            Some(own) if chain.stops(own) => Some((slug, own)),
            _ => chain.stop(ty),
        }
    };
    let consumer = registry::spec(t).is_some_and(|s| s.kind == registry::Kind::Consumer);
    let raise = |(at, row): (&str, &RowVerdict), ty: &str, via: Option<(&str, &str)>| {
        crate::domain::resolve::raise_reason(at, ty, &row.verdict, via)
    };
    let mut out = ReportRow {
        account: slug.to_string(),
        account_id: account.map(|(id, _)| id),
        chain_position: None,
        integration_type: t.to_string(),
        answered_by: None,
        provider: None,
        provider_answered_by: None,
        answer_verdict: None,
        raises: None,
    };
    match stop(t) {
        None => {}
        Some(first) if chain.fails(first.1) => out.raises = Some(raise(first, t, None)),
        Some((by, row)) => {
            out.answered_by = Some(by.to_string());
            out.answer_verdict = Some(row.verdict.clone());
            if consumer {
                out.provider = row.provider_text.clone();
                if let Some(hop) = row.hop_type.as_deref() {
                    match stop(hop) {
                        None => {}
                        Some(second) if chain.fails(second.1) => out.raises = Some(raise(second, hop, Some((by, t)))),
                        Some((at, _)) => out.provider_answered_by = Some(at.to_string()),
                    }
                }
            }
        }
    }
    out
}
