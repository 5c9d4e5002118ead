//! Who answers, for many accounts at once: `resolve --batch`'s engine. Per
//! chunk of pairs, the users (one lateral index probe each), then the walk
//! (`report.rs`, `walk!` — the report's and the impact preview's own SQL)
//! for the chunk's accounts and types, the stand-in of users without an
//! account included. A batch reads everything in one read-only snapshot
//! (`Store::snapshot`), so every chunk sees the same chain and settings.

use std::collections::HashMap;

use super::{ReportRow, Store, StoreError};

/// The walk's answers for some accounts, by (account id, type); `None`
/// for a user without an account.
pub struct Answers(HashMap<(Option<i64>, String), ReportRow>);

impl Answers {
    /// Who answers `t` for the account (`None`: a user without one). A
    /// pair the walk was not asked about answers nothing.
    pub fn answer(&self, account: Option<(i64, &str)>, t: &str) -> ReportRow {
        let id = account.map(|(id, _)| id);
        self.0.get(&(id, t.to_string())).cloned().unwrap_or_else(|| ReportRow {
            account: account.map(|(_, slug)| slug).unwrap_or("").to_string(),
            account_id: id,
            chain_position: None,
            integration_type: t.to_string(),
            answered_by: None,
            provider: None,
            provider_answered_by: None,
            answer_verdict: None,
            raises: None,
        })
    }
}

impl Store {
    /// One read-only snapshot for many answers: every query of a batch sees
    /// the same chain, users and settings (REPEATABLE READ). No JIT (it
    /// costs more than it saves on these queries) and a plan per call.
    pub async fn snapshot(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;
             SET LOCAL jit = off; SET LOCAL plan_cache_mode = force_custom_plan",
        )
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    /// Who answers each of `types` for these accounts and for a user
    /// without one: the walk, set-based, one query.
    pub async fn answers(
        &self,
        conn: &mut sqlx::PgConnection,
        account_ids: &[i64],
        types: &[String],
    ) -> Result<Answers, StoreError> {
        let rows = self.walk_for(conn, account_ids, types).await?;
        Ok(Answers(rows.into_iter().map(|r| ((r.account_id, r.integration_type.clone()), r)).collect()))
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
}
