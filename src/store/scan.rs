//! Reads for lint, export and import that touch only what the command is
//! about: one account's rows by index, the accounts an import names, or —
//! for a whole-database run — every setting as a stream in (account, type)
//! order, so the caller handles each row as it comes and memory stays
//! bounded whatever the number of settings.

use futures_util::stream::{BoxStream, StreamExt};
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::model::{Account, AccountStatus, Setting, User};

fn account_from_row(r: &sqlx::postgres::PgRow) -> Result<Account, StoreError> {
    let status: String = r.try_get("account_status")?;
    Ok(Account {
        id: r.try_get("account_id")?,
        slug: r.try_get("account_slug")?,
        name: r.try_get("account_name")?,
        status: serde_json::from_value(Value::String(status)).unwrap_or(AccountStatus::Other),
    })
}

fn setting_from_row(r: &sqlx::postgres::PgRow) -> Result<Setting, StoreError> {
    super::queries::setting_from_row(r)
}

impl Store {
    /// Every setting with its account, ordered by account id then type (the
    /// order `lint` and `export` have always reported in), as the rows
    /// arrive: nothing is gathered. A setting whose account is gone is not
    /// there (as before: the account index had no slug for it).
    pub fn settings_stream(&self) -> BoxStream<'_, Result<(Account, Setting), StoreError>> {
        sqlx::query(
            "SELECT s.id, s.account_id, s.integration_type, s.config::text AS config_text, s.is_active, s.version,
                    CASE WHEN isfinite(s.updated_at) THEN s.updated_at ELSE keyfall_audited_at(s.id) END AS updated_at, s.updated_by,
                    (SELECT keyfall_version_is_token()) AS version_token,
                    s.withheld_verdict, s.withheld_provider::text AS withheld_provider,
                    a.slug AS account_slug, a.name AS account_name, a.status AS account_status
               FROM integration_settings s JOIN accounts a ON a.id = s.account_id
              ORDER BY s.account_id, s.integration_type",
        )
        .fetch(&self.pool)
        .map(|row| {
            let row = row?;
            Ok((account_from_row(&row)?, setting_from_row(&row)?))
        })
        .boxed()
    }

    /// The next `accounts` accounts holding settings after account id
    /// `after`, each with all its settings in type order: one page of the
    /// console's lint, which judges an account at a time. A page with fewer
    /// accounts than asked is the last.
    #[tracing::instrument(skip_all)]
    pub async fn settings_page(&self, after: i64, accounts: i64) -> Result<Vec<(Account, Vec<Setting>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id, s.account_id, s.integration_type, s.config::text AS config_text, s.is_active, s.version,
                    CASE WHEN isfinite(s.updated_at) THEN s.updated_at ELSE keyfall_audited_at(s.id) END AS updated_at, s.updated_by,
                    (SELECT keyfall_version_is_token()) AS version_token,
                    s.withheld_verdict, s.withheld_provider::text AS withheld_provider,
                    a.slug AS account_slug, a.name AS account_name, a.status AS account_status
               FROM integration_settings s JOIN accounts a ON a.id = s.account_id
              WHERE s.account_id IN (SELECT DISTINCT p.account_id
                                       FROM integration_settings p JOIN accounts pa ON pa.id = p.account_id
                                      WHERE p.account_id > $1 ORDER BY p.account_id LIMIT $2)
              ORDER BY s.account_id, s.integration_type",
        )
        .bind(after)
        .bind(accounts)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(Account, Vec<Setting>)> = Vec::new();
        for row in &rows {
            let setting = setting_from_row(row)?;
            match out.last_mut() {
                Some((account, settings)) if account.id == setting.account_id => settings.push(setting),
                _ => out.push((account_from_row(row)?, vec![setting])),
            }
        }
        Ok(out)
    }

    /// How many settings lint reads (those with an account): the console's
    /// progress.
    pub async fn settings_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM integration_settings s JOIN accounts a ON a.id = s.account_id")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The accounts named by `slugs` (those that exist) and all their
    /// settings in (account id, type) order: what an import compares with.
    #[tracing::instrument(skip_all)]
    pub async fn accounts_with_settings(&self, slugs: &[String]) -> Result<(Vec<Account>, Vec<Setting>), StoreError> {
        let accounts = sqlx::query(
            "SELECT id AS account_id, slug AS account_slug, name AS account_name, status AS account_status
               FROM accounts WHERE slug = ANY($1) ORDER BY id",
        )
        .bind(slugs)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(account_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
        let settings = if ids.is_empty() {
            Vec::new()
        } else {
            sqlx::query(
                "SELECT id, account_id, integration_type, config::text AS config_text, is_active, version,
                        CASE WHEN isfinite(updated_at) THEN updated_at ELSE keyfall_audited_at(id) END AS updated_at, updated_by,
                (SELECT keyfall_version_is_token()) AS version_token,
                        withheld_verdict, withheld_provider::text AS withheld_provider
                   FROM integration_settings WHERE account_id = ANY($1)
                  ORDER BY account_id, integration_type",
            )
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(setting_from_row)
            .collect::<Result<Vec<_>, _>>()?
        };
        Ok((accounts, settings))
    }

    /// One account (by slug) and its own settings in type order; None when
    /// there is no such account. Two index lookups.
    #[tracing::instrument(skip_all)]
    pub async fn account_with_settings(&self, slug: &str) -> Result<Option<(Account, Vec<Setting>)>, StoreError> {
        let (mut accounts, settings) = self.accounts_with_settings(&[slug.to_string()]).await?;
        Ok(accounts.pop().map(|a| (a, settings)))
    }

    /// The superusers and developers lint judges (L007) — of one account,
    /// or all of them — by email (any case), each with their account when
    /// it exists, as the rows arrive. A user the domain cannot read is left
    /// out, as it always was.
    pub fn privileged_users(
        &self,
        account_id: Option<i64>,
    ) -> BoxStream<'_, Result<(User, Option<Account>), StoreError>> {
        let query = match account_id {
            // By the index on the users' account: the account's users only.
            Some(id) => sqlx::query(
                "SELECT jsonb_build_object('id', u.id, 'email', u.email, 'role', u.role,
                                           'is_superuser', u.is_superuser, 'is_active', u.is_active,
                                           'account_id', u.account_id)::text AS doc,
                        a.id AS account_id, a.slug AS account_slug, a.name AS account_name, a.status AS account_status
                   FROM users u LEFT JOIN accounts a ON a.id = u.account_id
                  WHERE u.account_id = $1 AND (u.is_superuser OR u.role = 'developer')
                  ORDER BY lower(u.email)",
            )
            .bind(id),
            None => sqlx::query(
                "SELECT jsonb_build_object('id', u.id, 'email', u.email, 'role', u.role,
                                           'is_superuser', u.is_superuser, 'is_active', u.is_active,
                                           'account_id', u.account_id)::text AS doc,
                        a.id AS account_id, a.slug AS account_slug, a.name AS account_name, a.status AS account_status
                   FROM users u LEFT JOIN accounts a ON a.id = u.account_id
                  WHERE u.is_superuser OR u.role = 'developer'
                  ORDER BY lower(u.email)",
            ),
        };
        query
            .fetch(&self.pool)
            .filter_map(|row| async move {
                let row = match row {
                    Ok(row) => row,
                    Err(e) => return Some(Err(e.into())),
                };
                let read = || -> Result<Option<(User, Option<Account>)>, StoreError> {
                    let Ok(user) = serde_json::from_str::<User>(row.try_get("doc")?) else { return Ok(None) };
                    let account = match row.try_get::<Option<i64>, _>("account_id")? {
                        Some(_) => Some(account_from_row(&row)?),
                        None => None,
                    };
                    Ok(Some((user, account)))
                };
                read().transpose()
            })
            .boxed()
    }
}
