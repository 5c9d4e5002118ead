//! Candidates for "did you mean …": names near a mistyped one, read through
//! the index on the name, never by scanning the table (at XL: 100,000
//! accounts, 1,000,000 users). The candidates are the names beside the
//! typed one in index order and those sharing its first two characters —
//! at most 300 rows, an index range scan each. A typo in the first
//! character finds only what sorts beside it: the price of not scanning.

use super::{Store, StoreError};

/// How many names each side of the typed one (and after its prefix) are read.
const NEIGHBOURS: i64 = 100;

impl Store {
    /// Account slugs near `slug` in the index's order.
    pub async fn slug_candidates(&self, slug: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "(SELECT slug FROM accounts WHERE slug >= $1 ORDER BY slug LIMIT $3)
             UNION
             (SELECT slug FROM accounts WHERE slug < $1 ORDER BY slug DESC LIMIT $3)
             UNION
             (SELECT slug FROM accounts WHERE slug >= $2 ORDER BY slug LIMIT $3)",
        )
        .bind(slug.to_lowercase())
        .bind(slug.to_lowercase().chars().take(2).collect::<String>())
        .bind(NEIGHBOURS)
        .fetch_all(&self.pool)
        .await?)
    }

    /// User emails near `email` in the index's order.
    pub async fn email_candidates(&self, email: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "(SELECT email FROM users WHERE email >= $1 ORDER BY email LIMIT $3)
             UNION
             (SELECT email FROM users WHERE email < $1 ORDER BY email DESC LIMIT $3)
             UNION
             (SELECT email FROM users WHERE email >= $2 ORDER BY email LIMIT $3)",
        )
        .bind(email.to_lowercase())
        .bind(email.to_lowercase().chars().take(2).collect::<String>())
        .bind(NEIGHBOURS)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// What shell completion may ask for from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completable {
    Slug,
    Email,
    Function,
}

/// The most names one completion offers.
const COMPLETIONS: i64 = 200;

impl Store {
    /// Names starting with `prefix` (slugs and emails in any case), for
    /// shell completion: one index range scan from the prefix on, cut where
    /// the names stop starting with it, at most 200.
    pub async fn completions(&self, kind: Completable, prefix: &str) -> Result<Vec<String>, StoreError> {
        let sql = match kind {
            Completable::Slug => "SELECT slug FROM accounts WHERE slug >= $1 ORDER BY slug LIMIT $2",
            Completable::Email => "SELECT email FROM users WHERE email >= $1 ORDER BY email LIMIT $2",
            Completable::Function => "SELECT name FROM ai_functions WHERE name >= $1 ORDER BY name LIMIT $2",
        };
        let prefix = if kind == Completable::Function { prefix.to_string() } else { prefix.to_lowercase() };
        let names: Vec<String> = sqlx::query_scalar(sql).bind(&prefix).bind(COMPLETIONS).fetch_all(&self.pool).await?;
        Ok(names.into_iter().filter(|n| n.to_lowercase().starts_with(&prefix.to_lowercase())).collect())
    }
}
