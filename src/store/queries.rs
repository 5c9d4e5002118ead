//! The queries behind each command. What the resolver needs comes back in
//! one round trip, one row of columns and arrays; the report runs the
//! resolution rules set-based for every account at once.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::change::Conflict;
use crate::domain::directory::{AccountRow, SubjectData, UserHit};
use crate::domain::model::{Account, AccountStatus, AiFunction, ChainEntry, Policy, Setting, User, Withheld};
use crate::domain::permissions::UserKind;
use crate::domain::resolve::Snapshot;

/// What `Store::subject` reads, in one round trip: one row, the user, the
/// user's account, the function and the policy as columns, the chain and the
/// settings as one array a column (no JSON built on the server: arrays cost
/// a fraction of `jsonb_build_object`, and sqlx keeps the statement
/// prepared, its plan with it). Every setting is read through keyfall's view,
/// masked as the role must see it; configs travel as text (`parse_config`).
macro_rules! subject_sql {
    () => {
        r#"
WITH u AS (
    -- The exact email first (the app's unique index answers it); only when
    -- no user has it, any case (a scan where the app has no index on
    -- lower(email), as Django's tables have not).
    (SELECT id, email, role, is_superuser, is_active, account_id FROM users WHERE email = $1)
    UNION ALL
    (SELECT id, email, role, is_superuser, is_active, account_id FROM users
      WHERE lower(email) = lower($1) AND NOT EXISTS (SELECT 1 FROM users WHERE email = $1)
      ORDER BY id LIMIT 1)
    LIMIT 1
), ch AS (
    -- A lookup per chain entry (three), whatever the statistics say: a
    -- join planned without them scanned every account on each resolve.
    SELECT array_agg(c.position) AS c_position, array_agg(c.account_slug::text) AS c_slug,
           array_agg(a.id) AS c_id, array_agg(a.slug) AS c_account_slug,
           array_agg(a.name) AS c_account_name, array_agg(a.status::text) AS c_account_status
      FROM (SELECT position, account_slug FROM fallback_chain ORDER BY position) c
      LEFT JOIN LATERAL (SELECT x.id, x.slug, x.name, x.status FROM accounts x
                          WHERE x.slug = c.account_slug LIMIT 1) a ON true
)
SELECT u.id AS u_id, u.email AS u_email, u.role::text AS u_role, u.is_superuser::boolean AS u_superuser,
       u.is_active::boolean AS u_active, u.account_id AS u_account_id,
       ua.id AS ua_id, ua.slug AS ua_slug, ua.name AS ua_name, ua.status::text AS ua_status,
       f.name AS f_name, f.integration_type AS f_type,
       (SELECT mode FROM policy LIMIT 1) AS policy,
       (SELECT keyfall_version_is_token()) AS version_token,
       ch.*, s.*
  FROM ch
  LEFT JOIN u ON true
  LEFT JOIN accounts ua ON ua.id = u.account_id
  LEFT JOIN ai_functions f ON f.name = $2
  CROSS JOIN LATERAL (
      SELECT array_agg(s.id) AS s_id, array_agg(s.account_id::bigint) AS s_account_id,
             array_agg(s.integration_type::text) AS s_type, array_agg(s.config::text) AS s_config,
             array_agg(s.is_active::boolean) AS s_active, array_agg(s.version) AS s_version,
             array_agg(CASE WHEN isfinite(s.updated_at) THEN s.updated_at ELSE keyfall_audited_at(s.id) END) AS s_updated_at, array_agg(s.updated_by::text) AS s_updated_by,
             array_agg(s.withheld_verdict) AS s_withheld, array_agg(s.withheld_provider::text) AS s_withheld_provider
        FROM integration_settings s
       WHERE s.account_id = ANY (array_append(ch.c_id, ua.id))) s
"#
    };
}
const SUBJECT_SQL: &str = subject_sql!();

/// `SUBJECT_SQL` with the start-up check in the same row
/// (`kf_preflight`, what `keyfall_preflight()` answers): a one-shot
/// `resolve` asks both in one statement (`Store::check_with_subject`).
pub(super) const CHECKED_SUBJECT_SQL: &str =
    concat!("SELECT keyfall.keyfall_preflight()::text AS kf_preflight, q.* FROM (", subject_sql!(), ") q");

/// An enumeration from its name in the database; a name keyfall does not
/// know (or none) is the type's `Other` (`#[serde(other)]`).
fn named<T: serde::de::DeserializeOwned>(name: Option<&str>) -> Result<T, StoreError> {
    use serde::de::IntoDeserializer;
    let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = name.unwrap_or("").into_deserializer();
    T::deserialize(name).map_err(|e| StoreError::Database(format!("unexpected data shape: {e}")))
}

/// A config's `jsonb::text` as the app's Python reads it
/// (`json::read_config`): a number beyond f64 or deep nesting gets the
/// app's verdict, never an error.
fn parse_config(text: &str) -> Value {
    crate::domain::json::read_config(text)
}

/// Which audit entries to list (`Store::audit_where`); `None` is "any".
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditFilter<'a> {
    /// The account's slug.
    pub account: Option<&'a str>,
    pub integration_type: Option<&'a str>,
    /// A key's fingerprint (`#1a2b3c4d`) in the entry's before or after.
    pub fingerprint: Option<&'a str>,
    /// Who acted, in any case: the whole actor, or what comes before its
    /// " (…)" — "dev@… (revert of #12)", "dev@… (overwrite)" are dev@…'s;
    /// "postgres (claimed dev@…)" is postgres's, the claim unverified.
    pub actor: Option<&'a str>,
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for AccountRow {
    fn from_row(r: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(AccountRow {
            id: r.try_get("id")?,
            slug: r.try_get("slug")?,
            name: r.try_get("name")?,
            status: r.try_get("status")?,
        })
    }
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for UserHit {
    fn from_row(r: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(UserHit {
            email: r.try_get("email")?,
            role: r.try_get("role")?,
            account: r.try_get("account")?,
            is_active: r.try_get("is_active")?,
        })
    }
}

/// `before` and `after` are read as text and parsed leniently: a number
/// beyond f64 or nesting beyond serde's limit, written by another client,
/// must not make the whole audit unreadable.
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for AuditEntry {
    fn from_row(r: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        let doc = |column: &str| -> Result<Option<Value>, sqlx::Error> {
            Ok(r.try_get::<Option<&str>, _>(column)?.map(audit_document))
        };
        Ok(AuditEntry {
            id: r.try_get("id")?,
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            table_name: r.try_get("table_name")?,
            account: r.try_get("account")?,
            integration_type: r.try_get("integration_type")?,
            before: doc("before_text")?,
            after: doc("after_text")?,
        })
    }
}

/// An audit document from its `jsonb::text`: parsed without failing (a
/// config member nested `MAX_DEPTH` deep is its fingerprint, as the trigger
/// makes it), then redacted by the same rules as the trigger's.
fn audit_document(text: &str) -> Value {
    use crate::domain::{json, secret};
    secret::fingerprint_document(&json::parse_lenient(text, secret::MAX_DEPTH + 1))
}

/// One setting to write with `write_many`. Its `Debug` masks the config's
/// secrets (`mask_config`): a stray `{:?}` cannot leak an imported key.
#[derive(Clone)]
pub struct ImportItem {
    pub account: String,
    pub integration_type: String,
    pub config: Value,
    pub is_active: bool,
    /// The stored version it replaces; 0 for a new setting.
    pub expected_version: i64,
}

impl std::fmt::Debug for ImportItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportItem")
            .field("account", &self.account)
            .field("integration_type", &self.integration_type)
            .field("config", &crate::domain::secret::mask_config(&self.config))
            .field("is_active", &self.is_active)
            .field("expected_version", &self.expected_version)
            .finish()
    }
}

/// What `keyfall lint` reads.
#[derive(Debug)]
pub struct LintData {
    pub snapshot: Snapshot,
    pub policy: Policy,
    /// The accounts of the settings and of the privileged users.
    pub accounts: Vec<Account>,
    pub settings: Vec<Setting>,
    pub privileged: Vec<User>,
}

/// Users who look alike to the permission checks, and how many.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct UserGroup {
    pub role: String,
    pub is_superuser: bool,
    pub is_active: bool,
    pub account_status: Option<String>,
    pub system_account: bool,
    pub no_account: bool,
    pub users: i64,
    /// The first few users' emails (the policy preview names them).
    pub sample: Vec<String>,
}

/// A setting identified for display and writes.
#[derive(Debug, Clone, Serialize)]
pub struct SettingRef {
    pub account: Account,
    /// The row the app reads: where the pair has several rows, the lowest id.
    pub setting: Option<Setting>,
    /// Every row's id where the pair has several (an app table without a
    /// unique (account, type) constraint), lowest first; else empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub several: Vec<i64>,
}

#[derive(Debug, Clone)]
pub enum WriteOutcome {
    Created(Setting),
    Updated(Setting),
    /// The change would leave the setting as it is; nothing was written.
    Unchanged(Setting),
}

impl Store {
    /// The user (by email, any case), the function, the policy, the chain
    /// and every setting of the user's account and the chain's accounts.
    #[tracing::instrument(skip_all)]
    pub async fn subject(&self, email: Option<&str>, function: Option<&str>) -> Result<SubjectData, StoreError> {
        let row = match self.take_prefetched(email, function) {
            Some(row) => row,
            None => sqlx::query(SUBJECT_SQL).bind(email).bind(function).fetch_one(&self.pool).await?,
        };
        let user = match row.try_get::<Option<i64>, _>("u_id")? {
            None => None,
            Some(id) => Some(User {
                id,
                email: row.try_get("u_email")?,
                role: named(row.try_get("u_role")?)?,
                is_superuser: row.try_get("u_superuser")?,
                is_active: row.try_get("u_active")?,
                account_id: row.try_get("u_account_id")?,
            }),
        };
        let function = row
            .try_get::<Option<String>, _>("f_name")?
            .zip(row.try_get::<Option<String>, _>("f_type")?)
            .map(|(name, integration_type)| AiFunction { name, integration_type });
        let policy = match row.try_get::<Option<&str>, _>("policy")? {
            None => Policy::SystemOnly,
            Some(p) => Policy::parse(p).unwrap_or(Policy::SystemOnly),
        };

        // The user's account, then the chain's accounts (a slug without
        // one is `None` in every account column).
        let mut accounts = Vec::new();
        if let Some(id) = row.try_get::<Option<i64>, _>("ua_id")? {
            accounts.push(Account {
                id,
                slug: row.try_get("ua_slug")?,
                name: row.try_get::<Option<String>, _>("ua_name")?.unwrap_or_default(),
                status: named(row.try_get("ua_status")?)?,
            });
        }
        let column = |name: &str| -> Result<Vec<Option<String>>, StoreError> {
            Ok(row.try_get::<Option<Vec<Option<String>>>, _>(name)?.unwrap_or_default())
        };
        let positions = row.try_get::<Option<Vec<i32>>, _>("c_position")?.unwrap_or_default();
        let slugs = row.try_get::<Option<Vec<String>>, _>("c_slug")?.unwrap_or_default();
        let ids = row.try_get::<Option<Vec<Option<i64>>>, _>("c_id")?.unwrap_or_default();
        let (account_slugs, names, statuses) =
            (column("c_account_slug")?, column("c_account_name")?, column("c_account_status")?);
        let mut chain = Vec::with_capacity(positions.len());
        for (i, (position, slug)) in positions.into_iter().zip(slugs).enumerate() {
            let found = match (ids.get(i).copied().flatten(), account_slugs.get(i).cloned().flatten()) {
                (Some(id), Some(slug)) => Some(Account {
                    id,
                    slug,
                    name: names.get(i).cloned().flatten().unwrap_or_default(),
                    status: named(statuses.get(i).and_then(|s| s.as_deref()))?,
                }),
                _ => None,
            };
            accounts.extend(found.clone());
            chain.push(ChainEntry { position, slug, account: found });
        }
        // The server aggregates them in position order; whatever plan it
        // picks, the walk must see that order.
        chain.sort_by_key(|e| e.position);

        // The settings, one array a column.
        let ids = row.try_get::<Option<Vec<i64>>, _>("s_id")?.unwrap_or_default();
        let mut account_ids = row.try_get::<Option<Vec<i64>>, _>("s_account_id")?.unwrap_or_default().into_iter();
        let mut types = row.try_get::<Option<Vec<String>>, _>("s_type")?.unwrap_or_default().into_iter();
        let mut configs = column("s_config")?.into_iter();
        let mut active = row.try_get::<Option<Vec<bool>>, _>("s_active")?.unwrap_or_default().into_iter();
        let mut versions = row.try_get::<Option<Vec<i64>>, _>("s_version")?.unwrap_or_default().into_iter();
        let mut updated_at =
            row.try_get::<Option<Vec<Option<DateTime<Utc>>>>, _>("s_updated_at")?.unwrap_or_default().into_iter();
        let version_token: bool = row.try_get("version_token")?;
        let mut updated_by = column("s_updated_by")?.into_iter();
        let mut withheld_verdicts = column("s_withheld")?.into_iter();
        let mut withheld_providers = column("s_withheld_provider")?.into_iter();
        let mut settings = Vec::with_capacity(ids.len());
        for id in ids {
            let short = || StoreError::Database("unexpected data shape: the settings' columns differ in length".into());
            settings.push(Setting {
                id,
                account_id: account_ids.next().ok_or_else(short)?,
                integration_type: types.next().ok_or_else(short)?,
                // A JSON null config is SQL's 'null'::jsonb, text "null".
                config: parse_config(configs.next().ok_or_else(short)?.as_deref().unwrap_or("null")),
                is_active: active.next().ok_or_else(short)?,
                version: versions.next().ok_or_else(short)?,
                updated_at: updated_at.next().ok_or_else(short)?,
                updated_by: updated_by.next().ok_or_else(short)?,
                version_token,
                withheld: withheld(withheld_verdicts.next().flatten(), withheld_providers.next().flatten()),
            });
        }
        Ok(SubjectData {
            user,
            function,
            policy,
            snapshot: Snapshot { rules: self.rules.clone(), ..Snapshot::new(chain, accounts, settings) },
        })
    }

    /// Whether this session reads the settings (and audit entries) of every
    /// account, and else whether it reads this one's: the database's policy
    /// on reads (`keyfall_reads_all`, `keyfall_readable_accounts`).
    pub async fn reads(&self, account_id: Option<i64>) -> Result<(bool, bool), StoreError> {
        let (all, this): (bool, bool) = sqlx::query_as(
            "SELECT keyfall_reads_all(),
                    CASE WHEN $1::bigint IS NULL THEN keyfall_reads_system()
                         ELSE $1 = ANY (keyfall_readable_accounts()) END",
        )
        .bind(account_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((all, all || this))
    }

    pub async fn account(&self, slug: &str) -> Result<Option<Account>, StoreError> {
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT jsonb_build_object('id', id, 'slug', slug, 'name', name, 'status', status)::text
               FROM accounts WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        // Not found as typed: the one slug equal but for case (`AWS-Admin`
        // → aws-admin), if exactly one. Only on a miss; a scan of the slugs
        // (no index on lower(slug) in the app), bounded by the table.
        let doc = match doc {
            Some(d) => Some(d),
            None => {
                let found: Vec<String> = sqlx::query_scalar(
                    "SELECT jsonb_build_object('id', id, 'slug', slug, 'name', name, 'status', status)::text
                       FROM accounts WHERE lower(slug) = lower($1) LIMIT 2",
                )
                .bind(slug)
                .fetch_all(&self.pool)
                .await?;
                if found.len() == 1 { found.into_iter().next() } else { None }
            }
        };
        doc.map(|d| serde_json::from_str(&d).map_err(|e| StoreError::Database(format!("unexpected data shape: {e}"))))
            .transpose()
    }

    /// The first `limit` accounts in the index's order (slug bytes), plus
    /// the chain's accounts wherever they fall, and whether that is every
    /// account: the console's first frame, before the whole index. The
    /// server keeps only the first `limit` of its scan (a top-N sort in
    /// memory), so this costs a scan, not the transfer of every row.
    #[tracing::instrument(skip_all)]
    pub async fn account_page(&self, limit: i64) -> Result<(Vec<AccountRow>, bool), StoreError> {
        let mut rows: Vec<AccountRow> = sqlx::query_as(
            "(SELECT id, slug, name, status FROM accounts ORDER BY slug COLLATE \"C\", id LIMIT $1)
             UNION
             SELECT id, slug, name, status FROM accounts WHERE slug IN (SELECT account_slug FROM fallback_chain)",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        // Fewer than asked for: there is no more (the chain's accounts are
        // among the first ones or extra).
        let complete = rows.len() < limit as usize;
        rows.sort_unstable_by(|a, b| a.slug.as_bytes().cmp(b.slug.as_bytes()).then(a.id.cmp(&b.id)));
        Ok((rows, complete))
    }

    /// Every account, system or tenant, in slug order (bytewise, as
    /// `COLLATE "C"`): the console's index. Sorted here, not by the server:
    /// at 100,000 accounts the server's sort spills to disk (80 ms against
    /// 15 ms for the scan), the same order costs a few ms in memory.
    #[tracing::instrument(skip_all)]
    pub async fn account_index(&self) -> Result<Vec<AccountRow>, StoreError> {
        let mut rows: Vec<AccountRow> =
            sqlx::query_as("SELECT id, slug, name, status FROM accounts").fetch_all(&self.pool).await?;
        rows.sort_unstable_by(|a, b| a.slug.as_bytes().cmp(b.slug.as_bytes()).then(a.id.cmp(&b.id)));
        Ok(rows)
    }

    /// Every setting of the given accounts (the rows the console shows):
    /// of a pair with several rows, the one the app reads (the lowest id).
    #[tracing::instrument(skip_all)]
    pub async fn settings_of(&self, account_ids: &[i64]) -> Result<Vec<Setting>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (account_id, integration_type)
                    id, account_id, integration_type, config::text AS config_text, is_active, version,
                    CASE WHEN isfinite(updated_at) THEN updated_at ELSE keyfall_audited_at(id) END AS updated_at, updated_by,
                (SELECT keyfall_version_is_token()) AS version_token,
                withheld_verdict, withheld_provider::text AS withheld_provider
               FROM integration_settings WHERE account_id = ANY($1)
              ORDER BY account_id, integration_type, id",
        )
        .bind(account_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(setting_from_row).collect()
    }

    /// Users whose email starts with `query` (any case), then — when that
    /// finds fewer than `limit` — users whose email contains it.
    #[tracing::instrument(skip_all)]
    pub async fn find_users(&self, query: &str, limit: i64) -> Result<Vec<UserHit>, StoreError> {
        let pattern: String = query
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let mut hits: Vec<UserHit> = sqlx::query_as(
            "SELECT u.email, u.role, a.slug AS account, u.is_active
               FROM users u LEFT JOIN accounts a ON a.id = u.account_id
              WHERE lower(u.email) LIKE $1 || '%'
              ORDER BY lower(u.email) LIMIT $2",
        )
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if (hits.len() as i64) < limit && !pattern.is_empty() {
            let more: Vec<UserHit> = sqlx::query_as(
                "SELECT u.email, u.role, a.slug AS account, u.is_active
                   FROM users u LEFT JOIN accounts a ON a.id = u.account_id
                  WHERE lower(u.email) LIKE '%' || $1 || '%' AND lower(u.email) NOT LIKE $1 || '%'
                  ORDER BY lower(u.email) LIMIT $2",
            )
            .bind(&pattern)
            .bind(limit - hits.len() as i64)
            .fetch_all(&self.pool)
            .await?;
            hits.extend(more);
        }
        Ok(hits)
    }

    /// One audit entry by id.
    pub async fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, keyfall_finite(at) AS at, actor, action, table_name, account_slug AS account, integration_type,
                    before::text AS before_text, after::text AS after_text
               FROM audit_log WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Audit entries, newest first: for one account and/or type, or only
    /// those whose before or after holds `fingerprint` (`#1a2b3c4d`).
    pub async fn audit(
        &self,
        account: Option<&str>,
        integration_type: Option<&str>,
        fingerprint: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_where(AuditFilter { account, integration_type, fingerprint, actor: None }, limit).await
    }

    /// Audit entries matching every filter given, newest first.
    #[tracing::instrument(skip_all)]
    pub async fn audit_where(&self, filter: AuditFilter<'_>, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, keyfall_finite(at) AS at, actor, action, table_name, account_slug AS account,
                    integration_type, before::text AS before_text, after::text AS after_text
               FROM audit_log
              WHERE ($1::text IS NULL OR account_slug = $1)
                AND ($2::text IS NULL OR integration_type = $2)
                AND ($3::text IS NULL OR strpos(coalesce(before::text, '') || coalesce(after::text, ''), $3) > 0)
                AND ($5::text IS NULL OR lower(actor) = lower($5)
                     OR left(lower(actor), length($5) + 2) = lower($5) || ' (')
              ORDER BY id DESC LIMIT $4",
        )
        .bind(filter.account)
        .bind(filter.integration_type)
        .bind(filter.fingerprint)
        .bind(limit)
        .bind(filter.actor)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Replace the chain and/or the policy in one audited transaction, only
    /// if both are still what the operator saw (`expected_*`): a change made
    /// meanwhile is a conflict, never silently overwritten.
    #[tracing::instrument(skip_all)]
    pub async fn set_chain_and_policy(
        &self,
        actor: &str,
        chain: Option<&[String]>,
        policy: Option<Policy>,
        expected_chain: &[String],
        expected_policy: Policy,
    ) -> Result<(), StoreError> {
        let mut tx = begin_as(self, actor).await?;
        // Serialise with other chain/policy writers for this transaction.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('keyfall.chain_policy'))").execute(&mut *tx).await?;
        let now_chain: Vec<String> =
            sqlx::query_scalar("SELECT account_slug FROM fallback_chain ORDER BY position").fetch_all(&mut *tx).await?;
        let now_policy: Option<String> =
            sqlx::query_scalar("SELECT mode FROM policy LIMIT 1").fetch_optional(&mut *tx).await?;
        if now_chain != expected_chain || now_policy.as_deref() != Some(expected_policy.as_str()) {
            return Err(StoreError::Invalid(
                "the chain or the policy changed since they were shown: look again before saving".into(),
            ));
        }
        if let Some(slugs) = chain {
            sqlx::query("DELETE FROM fallback_chain").execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO fallback_chain (position, account_slug)
                 SELECT p, s FROM unnest($1::text[]) WITH ORDINALITY AS c(s, p)",
            )
            .bind(slugs)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(p) = policy {
            sqlx::query("UPDATE policy SET mode = $1").bind(p.as_str()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Users grouped by everything the permission checks read, with counts:
    /// how a policy change is previewed for 1,000,000 users.
    pub async fn user_groups(&self) -> Result<Vec<(UserKind, i64, Vec<String>)>, StoreError> {
        let rows: Vec<UserGroup> = sqlx::query_as(
            "SELECT u.role, u.is_superuser, u.is_active, a.status AS account_status,
                    (c.account_slug IS NOT NULL) AS system_account, (u.account_id IS NULL) AS no_account,
                    count(*) AS users,
                    coalesce((array_agg(u.email::text ORDER BY lower(u.email::text))
                              FILTER (WHERE u.email IS NOT NULL))[1:3], '{}'::text[]) AS sample
               FROM users u
               LEFT JOIN accounts a ON a.id = u.account_id
               LEFT JOIN fallback_chain c ON c.account_slug = a.slug
              GROUP BY 1, 2, 3, 4, 5, 6",
        )
        .fetch_all(&self.pool)
        .await?;
        fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
            serde_json::from_value(Value::String(text.to_string()))
        }
        Ok(rows
            .into_iter()
            .map(|g| {
                let kind = UserKind {
                    role: parse(&g.role).unwrap_or(crate::domain::Role::Other),
                    is_superuser: g.is_superuser,
                    is_active: g.is_active,
                    account_status: if g.no_account {
                        None
                    } else {
                        Some(
                            g.account_status
                                .as_deref()
                                .map(|s| parse(s).unwrap_or(AccountStatus::Other))
                                .unwrap_or(AccountStatus::Other),
                        )
                    },
                    system_account: g.system_account,
                };
                (kind, g.users, g.sample)
            })
            .collect())
    }

    /// Everything lint reads over the whole database: the chain snapshot,
    /// every setting with its account, the superusers and developers with
    /// theirs, the policy. (The CLI streams the same reads instead of
    /// gathering them; see `cli::lint`.)
    #[tracing::instrument(skip_all)]
    pub async fn lint_data(&self) -> Result<LintData, StoreError> {
        use futures_util::TryStreamExt;
        let base = self.subject(None, None).await?;
        let mut accounts: Vec<Account> = Vec::new();
        let mut settings = Vec::new();
        let mut rows = self.settings_stream();
        while let Some((account, setting)) = rows.try_next().await? {
            // In account order: one entry per account.
            if accounts.last().is_none_or(|a| a.id != account.id) {
                accounts.push(account);
            }
            settings.push(setting);
        }
        drop(rows);
        let mut known: std::collections::HashSet<i64> = accounts.iter().map(|a| a.id).collect();
        let mut privileged = Vec::new();
        let mut users = self.privileged_users(None);
        while let Some((user, account)) = users.try_next().await? {
            if let Some(account) = account
                && known.insert(account.id)
            {
                accounts.push(account);
            }
            privileged.push(user);
        }
        Ok(LintData { snapshot: base.snapshot, policy: base.policy, accounts, settings, privileged })
    }

    /// Apply several settings' new configs in one audited transaction, each
    /// only if still at its expected version (else nothing is applied).
    #[tracing::instrument(skip_all)]
    pub async fn apply_configs(&self, actor: &str, changes: &[(String, String, i64, Value)]) -> Result<(), StoreError> {
        if let Some((slug, ty, why)) =
            changes.iter().find_map(|(s, t, _, c)| crate::domain::json::inexact(c).map(|why| (s, t, why)))
        {
            // Never write back what keyfall read only approximately.
            return Err(StoreError::Invalid(format!(
                "{} {}: the stored config {why}; change it with psql or the app",
                crate::domain::text::visible_short(slug, 60),
                crate::domain::text::visible_short(ty, 40)
            )));
        }
        let mut tx = begin_as(self, actor).await?;
        for (slug, integration_type, version, config) in changes {
            let account_id = account_id(&mut tx, slug).await?;
            let updated = sqlx::query(if self.touch_updated_at {
                "UPDATE integration_settings SET config = $1::text::jsonb, updated_at = now()
                  WHERE account_id = $2 AND integration_type = $3 AND version = $4
                    AND NOT EXISTS (SELECT 1 FROM integration_settings x WHERE x.account_id = $2
                                       AND x.integration_type = $3 AND x.id <> integration_settings.id)"
            } else {
                "UPDATE integration_settings SET config = $1::text::jsonb
                  WHERE account_id = $2 AND integration_type = $3 AND version = $4
                    AND NOT EXISTS (SELECT 1 FROM integration_settings x WHERE x.account_id = $2
                                       AND x.integration_type = $3 AND x.id <> integration_settings.id)"
            })
            .bind(config.to_string())
            .bind(account_id)
            .bind(integration_type)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                let now = fetch_setting(&mut *tx, slug, account_id, integration_type).await?;
                return Err(conflict(slug, integration_type, *version, now.as_ref()));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Write several settings in one audited transaction: each existing one
    /// only if still at its expected version, each new one only if still
    /// absent (expected version 0). All or nothing.
    #[tracing::instrument(skip_all)]
    pub async fn write_many(&self, actor: &str, items: &[ImportItem]) -> Result<(), StoreError> {
        let mut tx = begin_as(self, actor).await?;
        for item in items {
            let account_id = account_id(&mut tx, &item.account).await?;
            let written = if item.expected_version == 0 {
                sqlx::query(
                    "INSERT INTO integration_settings (account_id, integration_type, config, is_active)
                     VALUES ($1, $2, $3::text::jsonb, $4)",
                )
                .bind(account_id)
                .bind(&item.integration_type)
                .bind(item.config.to_string())
                .bind(item.is_active)
                .execute(&mut *tx)
                .await?
            } else {
                sqlx::query(if self.touch_updated_at {
                    "UPDATE integration_settings SET config = $1::text::jsonb, is_active = $2, updated_at = now()
                      WHERE account_id = $3 AND integration_type = $4 AND version = $5
                        AND NOT EXISTS (SELECT 1 FROM integration_settings x WHERE x.account_id = $3
                                           AND x.integration_type = $4 AND x.id <> integration_settings.id)"
                } else {
                    "UPDATE integration_settings SET config = $1::text::jsonb, is_active = $2
                      WHERE account_id = $3 AND integration_type = $4 AND version = $5
                        AND NOT EXISTS (SELECT 1 FROM integration_settings x WHERE x.account_id = $3
                                           AND x.integration_type = $4 AND x.id <> integration_settings.id)"
                })
                .bind(item.config.to_string())
                .bind(item.is_active)
                .bind(account_id)
                .bind(&item.integration_type)
                .bind(item.expected_version)
                .execute(&mut *tx)
                .await?
            };
            if written.rows_affected() == 0 {
                let now = fetch_setting(&mut *tx, &item.account, account_id, &item.integration_type).await?;
                return Err(conflict(&item.account, &item.integration_type, item.expected_version, now.as_ref()));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every AI function with the integration type it uses.
    pub async fn functions(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT name, integration_type FROM ai_functions ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn function_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT name FROM ai_functions ORDER BY name").fetch_all(&self.pool).await?)
    }

    /// One account's own setting of one type, if it has one.
    pub async fn setting(&self, slug: &str, integration_type: &str) -> Result<SettingRef, StoreError> {
        let account = self.account(slug).await?.ok_or_else(|| unknown_account(slug))?;
        let (setting, several) = fetch_pair(&self.pool, account.id, integration_type, false).await?;
        Ok(SettingRef { account, setting, several })
    }

    /// Apply `change` to one account's setting of one type — creating the
    /// setting when the account has none — in one transaction, as `actor`.
    /// With `expected_version`, a different stored version is a conflict;
    /// without, the version read in this transaction is checked at write.
    #[tracing::instrument(skip_all)]
    pub async fn write_setting(
        &self,
        actor: &str,
        slug: &str,
        integration_type: &str,
        expected_version: Option<i64>,
        change: impl FnOnce(Option<&Setting>) -> (Value, bool),
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = begin_as(self, actor).await?;
        let account_id = account_id(&mut tx, slug).await?;
        // Without an expected version the change applies to whatever is
        // stored when it commits: the row is locked for this transaction
        // (and a first creation serialised), so concurrent writers wait
        // for each other instead of failing with conflicts.
        let current = if expected_version.is_none() {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2, 0))")
                .bind(account_id)
                .bind(integration_type)
                .execute(&mut *tx)
                .await?;
            fetch_setting_locked(&mut tx, slug, account_id, integration_type).await?
        } else {
            fetch_setting(&mut *tx, slug, account_id, integration_type).await?
        };
        let conflict = |cur: Option<&Setting>, expected: i64| conflict(slug, integration_type, expected, cur);
        if let (Some(expected), Some(cur)) = (expected_version, current.as_ref())
            && cur.version != expected
        {
            return Err(conflict(Some(cur), expected));
        }
        if let (Some(expected), None) = (expected_version, current.as_ref())
            && expected != 0
        {
            return Err(conflict(None, expected));
        }
        let (config, is_active) = change(current.as_ref());
        if let Some(why) = crate::domain::json::inexact(&config) {
            // Never write back what keyfall read only approximately.
            return Err(StoreError::Invalid(format!(
                "{} {}: the stored config {why}; change it with psql or the app",
                crate::domain::text::visible_short(slug, 60),
                crate::domain::text::visible_short(integration_type, 40)
            )));
        }
        let config_text = config.to_string();
        let outcome = match current {
            Some(cur) if cur.config == config && cur.is_active == is_active => WriteOutcome::Unchanged(cur),
            Some(cur) => {
                let updated: Option<i64> = sqlx::query_scalar(if self.touch_updated_at {
                    "UPDATE integration_settings SET config = $1::text::jsonb, is_active = $2, updated_at = now()
                      WHERE id = $3 AND version = $4 RETURNING id"
                } else {
                    "UPDATE integration_settings SET config = $1::text::jsonb, is_active = $2
                      WHERE id = $3 AND version = $4 RETURNING id"
                })
                .bind(&config_text)
                .bind(is_active)
                .bind(cur.id)
                .bind(cur.version)
                .fetch_optional(&mut *tx)
                .await?;
                if updated.is_none() {
                    let now = fetch_setting(&mut *tx, slug, account_id, integration_type).await?;
                    return Err(conflict(now.as_ref(), cur.version));
                }
                let saved = fetch_setting(&mut *tx, slug, account_id, integration_type).await?;
                WriteOutcome::Updated(saved.ok_or_else(|| StoreError::Database("setting vanished".into()))?)
            }
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO integration_settings (account_id, integration_type, config, is_active)
                     VALUES ($1, $2, $3::text::jsonb, $4)",
                )
                .bind(account_id)
                .bind(integration_type)
                .bind(&config_text)
                .bind(is_active)
                .execute(&mut *tx)
                .await?;
                let saved = fetch_setting(&mut *tx, slug, account_id, integration_type).await?;
                if inserted.rows_affected() == 0 {
                    return Err(conflict(saved.as_ref(), 0));
                }
                WriteOutcome::Created(saved.ok_or_else(|| StoreError::Database("setting vanished".into()))?)
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Delete one account's setting of one type, as `actor`, if it is still
    /// at `expected_version` (else a conflict).
    #[tracing::instrument(skip_all)]
    pub async fn delete_setting(
        &self,
        actor: &str,
        slug: &str,
        integration_type: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let mut tx = begin_as(self, actor).await?;
        let account_id = account_id(&mut tx, slug).await?;
        let deleted = sqlx::query(
            "DELETE FROM integration_settings WHERE account_id = $1 AND integration_type = $2 AND version = $3
                AND NOT EXISTS (SELECT 1 FROM integration_settings x WHERE x.account_id = $1
                                   AND x.integration_type = $2 AND x.id <> integration_settings.id)",
        )
        .bind(account_id)
        .bind(integration_type)
        .bind(expected_version)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 0 {
            let now = fetch_setting(&mut *tx, slug, account_id, integration_type).await?;
            return Err(conflict(slug, integration_type, expected_version, now.as_ref()));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Record that `actor` revealed a setting's key, and return the key. The
    /// audit row and the read are one transaction: no reveal goes
    /// unrecorded.
    #[tracing::instrument(skip_all)]
    pub async fn reveal(
        &self,
        actor: &str,
        slug: &str,
        integration_type: &str,
    ) -> Result<Option<crate::domain::Secret>, StoreError> {
        // The database checks the operator's right and records the reveal
        // (keyfall.keyfall_reveal), in one transaction with the read.
        self.request_key(actor, slug, integration_type, "reveal").await?;
        let mut tx = begin_as(self, actor).await?;
        let key: Option<String> = sqlx::query_scalar("SELECT keyfall_reveal($1, $2)")
            .bind(slug)
            .bind(integration_type)
            .fetch_one(&mut *tx)
            .await?;
        let Some(key) = key else { return Ok(None) };
        let secret = crate::domain::Secret::new(key);
        tx.commit().await?;
        Ok(Some(secret))
    }

    /// Step one of reading a raw key: the database checks the right and
    /// records the read, committed before the key is handed over.
    async fn request_key(
        &self,
        actor: &str,
        slug: &str,
        integration_type: &str,
        purpose: &str,
    ) -> Result<(), StoreError> {
        let mut tx = begin_as(self, actor).await?;
        sqlx::query("SELECT keyfall_request_key($1, $2, $3)")
            .bind(slug)
            .bind(integration_type)
            .bind(purpose)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The config of `slug`'s setting of `integration_type` with its raw
    /// key, for a connection test: the database checks the operator's right
    /// to test it and records the read (`keyfall_config_for_test`).
    #[tracing::instrument(skip_all)]
    pub async fn config_for_test(
        &self,
        actor: &str,
        slug: &str,
        integration_type: &str,
    ) -> Result<Option<Value>, StoreError> {
        self.request_key(actor, slug, integration_type, "test_connection").await?;
        let mut tx = begin_as(self, actor).await?;
        let config: Option<String> = sqlx::query_scalar("SELECT keyfall_config_for_test($1, $2)::text")
            .bind(slug)
            .bind(integration_type)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(config.map(|c| parse_config(&c)))
    }

    /// Load the seed's scenario (idempotent: present rows are left alone).
    pub async fn load_demo(&self) -> Result<(), StoreError> {
        self.run_script("keyfall demo", include_str!("../../assets/demo.sql"), &mut |_, _, _| {}).await
    }

    /// Add the XL data set of DESIGN §10 (idempotent). `on_step(i, n, what)`
    /// hears of each of its steps as it starts (the CLI shows them).
    pub async fn load_demo_xl(&self, on_step: &mut dyn FnMut(usize, usize, &str)) -> Result<(), StoreError> {
        self.run_script("keyfall demo --scale xl", include_str!("../../assets/demo_xl.sql"), on_step).await
    }

    /// Run a data script of the same kind (the benches' 10× XL set):
    /// against the demo tables, `-- step:` by step, audited as `actor`.
    pub async fn load_script(&self, actor: &str, script: &'static str) -> Result<(), StoreError> {
        self.run_script(actor, script, &mut |_, _, _| {}).await
    }

    /// Run a demo data script against the demo app's own tables (`public`),
    /// one `-- step: what` at a time, in one transaction.
    async fn run_script(
        &self,
        actor: &str,
        script: &'static str,
        on_step: &mut dyn FnMut(usize, usize, &str),
    ) -> Result<(), StoreError> {
        let mut tx = begin_as(self, actor).await?;
        // A bulk load is long work, not a hung write: no statement timeout
        // (the XL set takes ~60 s, more on a busy machine).
        sqlx::raw_sql("SET LOCAL search_path = public; SET LOCAL statement_timeout = 0").execute(&mut *tx).await?;
        let steps = script_steps(script);
        for (i, (what, sql)) in steps.iter().enumerate() {
            on_step(i + 1, steps.len(), what);
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        }
        on_step(steps.len() + 1, steps.len(), "committing");
        tx.commit().await?;
        Ok(())
    }
}

/// A data script cut at its `-- step: what` lines: (what, the SQL up to the
/// next step). A script without steps is one step.
fn script_steps(script: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut steps = Vec::new();
    let mut rest = script;
    let mut what = "loading";
    while let Some(at) = rest.find("\n-- step: ") {
        let (before, after) = rest.split_at(at + 1);
        if has_sql(before) {
            steps.push((what, before));
        }
        let line_end = after.find('\n').unwrap_or(after.len());
        what = after["-- step: ".len()..line_end].trim();
        rest = &after[line_end..];
    }
    if has_sql(rest) {
        steps.push((what, rest));
    }
    steps
}

fn has_sql(text: &str) -> bool {
    text.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
}

/// The one wording for an account that does not exist.
fn unknown_account(slug: &str) -> StoreError {
    StoreError::NotFound(format!("unknown account {:?}", crate::domain::text::visible_short(slug, 80)))
}

/// A transaction whose writes the audit trigger attributes to `actor`.
async fn begin_as<'a>(store: &'a Store, actor: &str) -> Result<sqlx::Transaction<'a, sqlx::Postgres>, StoreError> {
    let mut tx = store.pool.begin().await?;
    sqlx::query("SELECT set_config('keyfall.actor', $1, true)").bind(actor).execute(&mut *tx).await?;
    // A write waits at most this long for a row another session holds (an
    // open psql transaction, a preview): it fails instead of hanging.
    sqlx::raw_sql("SET LOCAL lock_timeout = '5s'; SET LOCAL statement_timeout = '30s'").execute(&mut *tx).await?;
    Ok(tx)
}

async fn account_id(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, slug: &str) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT id FROM accounts WHERE slug = $1")
        .bind(slug)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| unknown_account(slug))
}

/// The conflict error for a setting found at another version than expected.
fn conflict(slug: &str, integration_type: &str, expected: i64, now: Option<&Setting>) -> StoreError {
    StoreError::Conflict(Box::new(Conflict {
        account: slug.to_string(),
        integration_type: integration_type.to_string(),
        expected_version: expected,
        current_version: now.map(|s| s.version),
        updated_by: now.and_then(|s| s.updated_by.clone()),
        updated_at: now.and_then(|s| s.updated_at),
        version_token: now.is_some_and(|s| s.version_token),
    }))
}

/// The setting of one account and type, for a write: where the pair has
/// several rows (an app table without a unique (account, type)
/// constraint) the write would be ambiguous, and is refused naming them.
async fn fetch_setting<'e, E>(
    executor: E,
    slug: &str,
    account_id: i64,
    integration_type: &str,
) -> Result<Option<Setting>, StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let (setting, several) = fetch_pair(executor, account_id, integration_type, false).await?;
    if !several.is_empty() {
        return Err(several_rows(slug, integration_type, &several));
    }
    Ok(setting)
}

/// `fetch_setting`, locking the row until the transaction ends.
async fn fetch_setting_locked(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    slug: &str,
    account_id: i64,
    integration_type: &str,
) -> Result<Option<Setting>, StoreError> {
    let (setting, several) = fetch_pair(&mut **tx, account_id, integration_type, true).await?;
    if !several.is_empty() {
        return Err(several_rows(slug, integration_type, &several));
    }
    Ok(setting)
}

/// The row of one account and type the app reads — the lowest id, as
/// Django's `.first()` on an unordered queryset takes it — and, where the
/// pair has several rows, every id (lowest first; else empty). `lock`: the
/// row is locked until the transaction ends.
async fn fetch_pair<'e, E>(
    executor: E,
    account_id: i64,
    integration_type: &str,
    lock: bool,
) -> Result<(Option<Setting>, Vec<i64>), StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    const READ: &str = "SELECT id, account_id, integration_type, config::text AS config_text, is_active, version,
                CASE WHEN isfinite(updated_at) THEN updated_at ELSE keyfall_audited_at(id) END AS updated_at, updated_by,
                (SELECT keyfall_version_is_token()) AS version_token,
                withheld_verdict, withheld_provider::text AS withheld_provider,
                (SELECT array_agg(x.id ORDER BY x.id) FROM integration_settings x
                  WHERE x.account_id = $1 AND x.integration_type = $2) AS pair_ids
           FROM integration_settings WHERE account_id = $1 AND integration_type = $2
          ORDER BY id LIMIT 1";
    const READ_LOCKED: &str = "SELECT id, account_id, integration_type, config::text AS config_text, is_active, version,
                CASE WHEN isfinite(updated_at) THEN updated_at ELSE keyfall_audited_at(id) END AS updated_at, updated_by,
                (SELECT keyfall_version_is_token()) AS version_token,
                withheld_verdict, withheld_provider::text AS withheld_provider,
                (SELECT array_agg(x.id ORDER BY x.id) FROM integration_settings x
                  WHERE x.account_id = $1 AND x.integration_type = $2) AS pair_ids
           FROM integration_settings WHERE account_id = $1 AND integration_type = $2
          ORDER BY id LIMIT 1
            FOR UPDATE";
    let row = sqlx::query(if lock { READ_LOCKED } else { READ })
        .bind(account_id)
        .bind(integration_type)
        .fetch_optional(executor)
        .await?;
    let Some(row) = row else { return Ok((None, Vec::new())) };
    let ids: Vec<i64> = row.try_get::<Option<Vec<i64>>, _>("pair_ids")?.unwrap_or_default();
    let several = if ids.len() > 1 { ids } else { Vec::new() };
    Ok((Some(setting_from_row(&row)?), several))
}

/// The refusal of a write to a pair with several rows (`ids`, lowest first).
pub(super) fn several_rows(slug: &str, integration_type: &str, ids: &[i64]) -> StoreError {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    StoreError::Invalid(format!(
        "({}, {}) has {} rows (ids {}): the app reads the lowest id, {}; keyfall writes only to a pair with one row — remove the others with psql or the app first",
        crate::domain::text::visible_short(slug, 60),
        crate::domain::text::visible_short(integration_type, 40),
        ids.len(),
        list.join(", "),
        ids.first().copied().unwrap_or_default()
    ))
}

pub(super) fn setting_from_row(r: &sqlx::postgres::PgRow) -> Result<Setting, StoreError> {
    Ok(Setting {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        integration_type: r.try_get("integration_type")?,
        // NULL where the row is withheld from this session.
        config: parse_config(r.try_get::<Option<&str>, _>("config_text")?.unwrap_or("null")),
        is_active: r.try_get("is_active")?,
        version: r.try_get("version")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
        version_token: r.try_get("version_token")?,
        withheld: withheld(r.try_get("withheld_verdict")?, r.try_get("withheld_provider")?),
    })
}

/// The view's word on a row this session may not view: its verdict and, for
/// a consumer, its provider (JSON text); `None` for a row it may view.
pub(super) fn withheld(verdict: Option<String>, provider: Option<String>) -> Option<Withheld> {
    verdict.map(|verdict| Withheld { verdict, provider: provider.map(|p| parse_config(&p)) })
}
