//! DESIGN §2 set-based: who answers every account × integration type, and
//! the impact preview — the same report before and after a proposed change
//! applied inside a transaction that is then rolled back.
//!
//! The report is a macro so one text serves both; the preview adds a
//! pseudo-account for users without one. The system chain answers
//! the same for every account, so it is computed once per type
//! (`sys_answer`); an account's own row is looked at first, whatever the
//! account (as the app's `get_model_config` does); a consumer's provider is
//! resolved again from the same account. Row verdicts come from `keyfall_row_verdict`, computed on
//! the app's rows as they are (keyfall adds no column to the app's table).
//! Parameters: $1 the types reported, $2 the consumer types, $3 the account
//! ids reported (NULL: all), $4 a type whose own answering setting takes an
//! account out of the report (NULL: none), $5 the verdicts that move the
//! walk on and $6 those that fail it (the `[resolution]` rule set).

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::registry;

macro_rules! report_sql {
    ($accounts:literal) => {
        concat!(
            r#"
sys AS (
    SELECT c.position, a.id, a.slug
      FROM fallback_chain c JOIN accounts a ON a.slug = c.account_slug
), judged AS NOT MATERIALIZED (
    -- Each row's stored verdict (keyfall.row_verdicts, kept by the audit
    -- trigger): whether it stops the walk, and whether stopping there is
    -- the app failing.
    SELECT r.account_id, r.integration_type, r.provider, r.verdict,
           r.verdict <> ALL($5::text[]) AS stops, r.verdict = ANY($6::text[]) AS fails
      FROM row_verdicts r
), sys_answer AS MATERIALIZED (
    -- Per type, the first chain account whose row stops the walk: it
    -- answers, or (a verdict the rules call a failure) the app raises.
    SELECT DISTINCT ON (j.integration_type)
           j.integration_type,
           CASE WHEN j.fails THEN NULL ELSE sys.slug END AS slug,
           CASE WHEN j.fails THEN NULL ELSE j.provider END AS provider,
           CASE WHEN j.fails THEN NULL ELSE j.verdict END AS verdict
      FROM sys CROSS JOIN LATERAL (SELECT * FROM judged j WHERE j.account_id = sys.id) j
     WHERE j.stops
     ORDER BY j.integration_type, sys.position
), first_hop AS (
    -- The account's own row first, whatever the account (the app's
    -- get_model_config); where it moves the walk on, the chain's answer.
    -- The chain's answers are two or three rows: looked up, not joined.
    SELECT a.id, a.slug, (SELECT sys.position FROM sys WHERE sys.id = a.id) AS chain_position, types.t,
           CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE a.slug END
                ELSE (SELECT sa.slug FROM sys_answer sa WHERE sa.integration_type = types.t) END AS answered_by,
           CASE WHEN types.t = ANY($2::text[]) THEN
                CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE own.provider END
                     ELSE (SELECT sa.provider FROM sys_answer sa WHERE sa.integration_type = types.t) END
           END AS provider,
           CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE own.verdict END
                ELSE (SELECT sa.verdict FROM sys_answer sa WHERE sa.integration_type = types.t) END AS answer_verdict
      FROM "#,
            $accounts,
            r#" a
      CROSS JOIN unnest($1::text[]) AS types(t)
      LEFT JOIN judged own ON own.account_id = a.id AND own.integration_type = types.t
     WHERE ($3::bigint[] IS NULL OR a.id = ANY($3::bigint[]) OR a.id IS NULL)
       AND ($4::text IS NULL OR a.id IS NULL OR a.id IN (SELECT id FROM sys)
            OR NOT EXISTS (SELECT 1 FROM row_verdicts x
                            WHERE x.account_id = a.id AND x.integration_type = $4::text
                              AND x.verdict <> ALL($5::text[])))
), named AS (
    -- A provider reference: the hop's type when it is a string; any other
    -- JSON (a number, a list) names no type the app could find. A consumer
    -- answering without one (only under rules that let such a row answer)
    -- hops nowhere: "(no provider)".
    SELECT f.*, CASE WHEN jsonb_typeof(f.provider) = 'string' AND f.provider <> '""'::jsonb
                     THEN f.provider #>> '{}' END AS hop_type,
           CASE WHEN f.t <> ALL($2::text[]) THEN NULL
                WHEN NOT keyfall_py_truthy(f.provider) THEN '(no provider)'
                WHEN jsonb_typeof(f.provider) = 'string' THEN f.provider #>> '{}'
                ELSE f.provider::text END AS provider_text
      FROM first_hop f
)
SELECT f.slug AS account, f.id AS account_id, f.chain_position, f.t AS integration_type, f.answered_by,
       CASE WHEN f.answered_by IS NOT NULL THEN f.provider_text END AS provider,
       CASE WHEN f.answered_by IS NOT NULL AND f.hop_type IS NOT NULL THEN
            CASE WHEN prov.stops THEN CASE WHEN prov.fails THEN NULL ELSE f.slug END
                 ELSE (SELECT psa.slug FROM sys_answer psa WHERE psa.integration_type = f.hop_type) END
       END AS provider_answered_by,
       f.answer_verdict
  FROM named f
  -- Only consumers hop: an index probe for those, nothing for the rest.
  LEFT JOIN LATERAL (SELECT * FROM judged x WHERE x.account_id = f.id AND x.integration_type = f.hop_type OFFSET 0) prov
         ON f.hop_type IS NOT NULL
"#
        )
    };
}

/// Unordered: the caller sorts (PostgreSQL's sort of 300,000 rows cost more
/// than the whole rest of the query).
const REPORT_SQL: &str = concat!("WITH ", report_sql!("accounts"));

/// The impact preview runs inside one transaction that is rolled back: the
/// report before, the proposal applied, the report after, the difference.
/// Users without an account walk the chain from the top; they stand in as
/// the pseudo-account with slug '' (and no id).
const IMPACT_TABLES: &str = "
CREATE TEMP TABLE kf_before (account text, account_id bigint, chain_position integer, integration_type text,
                             answered_by text, provider text, provider_answered_by text,
                             answer_verdict text) ON COMMIT DROP;
CREATE TEMP TABLE kf_after (LIKE kf_before) ON COMMIT DROP;";

macro_rules! impact_report {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " WITH every_account AS (SELECT id, slug FROM accounts UNION ALL SELECT NULL::bigint, ''), ",
            report_sql!("every_account")
        )
    };
}

/// The report for some accounts only (and, as '' with no id, for users
/// without an account): what `resolve --batch` answers from.
const BATCH_SQL: &str = concat!(
    "WITH every_account AS (SELECT id, slug FROM accounts WHERE id = ANY($3::bigint[]) UNION ALL SELECT NULL::bigint, ''), ",
    report_sql!("every_account")
);

const IMPACT_BEFORE: &str = impact_report!("kf_before");
const IMPACT_AFTER: &str = impact_report!("kf_after");

const IMPACT_DIFF: &str = r#"
WITH labelled AS (
    -- An account answering for itself is "(own)", so such accounts group
    -- together and a system account leaving the chain does not "move".
    SELECT b.account, b.account_id, b.integration_type,
           CASE WHEN b.answered_by = b.account THEN '(own)' ELSE b.answered_by END AS before_by,
           b.provider AS before_provider,
           CASE WHEN b.provider_answered_by = b.account THEN '(own)' ELSE b.provider_answered_by END
               AS before_provider_by,
           CASE WHEN a.answered_by = a.account THEN '(own)' ELSE a.answered_by END AS after_by,
           a.provider AS after_provider,
           CASE WHEN a.provider_answered_by = a.account THEN '(own)' ELSE a.provider_answered_by END
               AS after_provider_by
      FROM kf_before b
      JOIN kf_after a ON a.account = b.account AND a.integration_type = b.integration_type
), changed AS (
    SELECT * FROM labelled
     WHERE (before_by, before_provider, before_provider_by)
           IS DISTINCT FROM (after_by, after_provider, after_provider_by)
)
, user_counts AS (
    -- Users per moved account (0 for users without an account), from the
    -- users_account index alone.
    SELECT c.key, count(u.account_id) AS users
      FROM (SELECT DISTINCT coalesce(account_id, 0) AS key FROM changed WHERE account_id IS NOT NULL) c
      LEFT JOIN users u ON u.account_id = c.key
     GROUP BY c.key
    UNION ALL
    SELECT 0, count(*) FROM users WHERE account_id IS NULL
)
SELECT f.name AS function, c.integration_type,
       c.before_by, c.before_provider, c.before_provider_by,
       c.after_by, c.after_provider, c.after_provider_by,
       count(*) FILTER (WHERE c.account <> '') AS accounts, coalesce(sum(uc.users), 0)::bigint AS users
  FROM changed c
  JOIN ai_functions f ON f.integration_type = c.integration_type
  JOIN user_counts uc ON uc.key = coalesce(c.account_id, 0)
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
 ORDER BY 1, users DESC
"#;

/// One account × type of the fallback report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub account: String,
    /// The account's id (`None` for the stand-in of users without one).
    #[serde(skip)]
    pub account_id: Option<i64>,
    /// Position in the system chain, if a system account.
    pub chain_position: Option<i32>,
    pub integration_type: String,
    pub answered_by: Option<String>,
    /// For consumer types: the provider the answer names…
    pub provider: Option<String>,
    /// …and who answers for that provider.
    pub provider_answered_by: Option<String>,
    /// The answering row's verdict: `answered`, or (answering all the same,
    /// as the app does) `bad_fields` and the like — keyfall's findings.
    pub answer_verdict: Option<String>,
}

/// A change to preview. Its `Debug` masks keys.
#[derive(Clone, PartialEq)]
pub enum Proposal {
    /// One account's setting of one type becomes this (created if absent).
    Setting { account_id: i64, integration_type: String, config: Value, is_active: bool },
    /// One account's setting of one type is deleted.
    Delete { account_id: i64, integration_type: String },
    /// The system chain becomes these slugs, in order.
    Chain(Vec<String>),
    /// Several settings change at once (a lint fix, an import).
    Many(Vec<Proposal>),
}

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::domain::secret::mask_config;
        match self {
            Proposal::Setting { account_id, integration_type, config, is_active } => f
                .debug_struct("Setting")
                .field("account_id", account_id)
                .field("integration_type", integration_type)
                .field("config", &mask_config(config))
                .field("is_active", is_active)
                .finish(),
            Proposal::Delete { account_id, integration_type } => f
                .debug_struct("Delete")
                .field("account_id", account_id)
                .field("integration_type", integration_type)
                .finish(),
            Proposal::Chain(slugs) => f.debug_tuple("Chain").field(slugs).finish(),
            Proposal::Many(all) => f.debug_tuple("Many").field(all).finish(),
        }
    }
}

/// Who answers, as one comparable value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub answered_by: Option<String>,
    pub provider: Option<String>,
    pub provider_answered_by: Option<String>,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::domain::text::visible_short;
        match (&self.answered_by, &self.provider) {
            (None, _) => f.write_str("nothing"),
            (Some(by), None) => f.write_str(&visible_short(by, 40)),
            (Some(by), Some(p)) => write!(
                f,
                "{} → {}@{}",
                visible_short(by, 40),
                visible_short(p, 20),
                visible_short(self.provider_answered_by.as_deref().unwrap_or("nothing"), 40)
            ),
        }
    }
}

/// Accounts and users of one function that move from `before` to `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpactRow {
    pub function: String,
    pub integration_type: String,
    pub before: Answer,
    pub after: Answer,
    pub accounts: i64,
    pub users: i64,
}

impl ImpactRow {
    /// Replace the "(own)" label by the account's slug.
    fn naming_own(mut self, slug: &str) -> ImpactRow {
        for answer in [&mut self.before, &mut self.after] {
            for field in [&mut answer.answered_by, &mut answer.provider_answered_by] {
                if field.as_deref() == Some("(own)") {
                    *field = Some(slug.to_string());
                }
            }
        }
        self
    }
}

/// One row of the report query.
fn report_row(r: &sqlx::postgres::PgRow) -> Result<ReportRow, sqlx::Error> {
    Ok(ReportRow {
        account: r.try_get("account")?,
        account_id: r.try_get("account_id")?,
        chain_position: r.try_get("chain_position")?,
        integration_type: r.try_get("integration_type")?,
        answered_by: r.try_get("answered_by")?,
        provider: r.try_get("provider")?,
        provider_answered_by: r.try_get("provider_answered_by")?,
        answer_verdict: r.try_get("answer_verdict")?,
    })
}

fn consumers() -> Vec<String> {
    registry::TYPES.iter().filter(|t| t.kind == registry::Kind::Consumer).map(|t| t.name.to_string()).collect()
}

impl Store {
    /// Every account × integration type (the registry's and any found in the
    /// data) with who answers, in one set-based query. System accounts come
    /// first in chain order, then tenants by slug.
    #[tracing::instrument(skip_all)]
    pub async fn report(&self) -> Result<Vec<ReportRow>, StoreError> {
        let types = self.all_types().await?;
        let mut tx = self.pool.begin().await?;
        analytic(&mut tx).await?;
        let rows = sqlx::query(REPORT_SQL)
            .bind(&types)
            .bind(consumers())
            .bind(None::<Vec<i64>>)
            .bind(None::<String>)
            .bind(self.rules.moves_on_names())
            .bind(self.rules.fails_names())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut report = rows
            .into_iter()
            .map(|r| report_row(&r))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)?;
        // System accounts first in chain order, then tenants by slug (bytes,
        // as C collation would), then type.
        report.sort_unstable_by(|a, b| {
            (a.chain_position.unwrap_or(i32::MAX), &a.account, &a.integration_type).cmp(&(
                b.chain_position.unwrap_or(i32::MAX),
                &b.account,
                &b.integration_type,
            ))
        });
        Ok(report)
    }

    /// Who answers each type for these accounts (and, with `account ''`,
    /// for a user without one): the report, scoped — set-based, one query.
    #[tracing::instrument(skip_all)]
    pub async fn report_for(&self, account_ids: &[i64], types: &[String]) -> Result<Vec<ReportRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        analytic(&mut tx).await?;
        let rows = sqlx::query(BATCH_SQL)
            .bind(types)
            .bind(consumers())
            .bind(account_ids)
            .bind(None::<String>)
            .bind(self.rules.moves_on_names())
            .bind(self.rules.fails_names())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.into_iter().map(|r| report_row(&r)).collect::<Result<Vec<_>, sqlx::Error>>().map_err(StoreError::from)
    }

    /// Users by email, exact first, then any case: (asked, found email,
    /// account id) for those that exist.
    pub async fn users_by_email(&self, emails: &[String]) -> Result<Vec<(String, Option<i64>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT q.e, (SELECT u.account_id FROM users u WHERE u.email = q.e
                           UNION ALL
                          (SELECT u.account_id FROM users u WHERE lower(u.email) = lower(q.e)
                            AND NOT EXISTS (SELECT 1 FROM users x WHERE x.email = q.e) ORDER BY u.id LIMIT 1)
                          LIMIT 1)
               FROM unnest($1::text[]) AS q(e)
              WHERE EXISTS (SELECT 1 FROM users u WHERE u.email = q.e)
                 OR EXISTS (SELECT 1 FROM users u WHERE lower(u.email) = lower(q.e))",
        )
        .bind(emails)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The registry's types plus any found in the data (a loose index scan
    /// of keyfall's verdict table: the app's table has no index for it).
    async fn all_types(&self) -> Result<Vec<String>, StoreError> {
        let found: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE found AS (
                 SELECT min(integration_type) AS t FROM row_verdicts
                 UNION ALL
                 SELECT (SELECT min(integration_type) FROM row_verdicts WHERE integration_type > found.t)
                   FROM found WHERE found.t IS NOT NULL
             ) SELECT t FROM found WHERE t IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut types: Vec<String> = registry::type_names().map(str::to_string).collect();
        types.extend(found.into_iter().filter(|t| registry::spec(t).is_none()));
        Ok(types)
    }

    /// Who would resolve differently if `proposal` were applied, grouped by
    /// function and by old → new answer, with account and user counts.
    /// Nothing is written. A tenant's change is previewed for that tenant
    /// only (nothing else can move); a system account's for every account,
    /// restricted to the types the change can reach.
    #[tracing::instrument(skip_all)]
    pub async fn impact(&self, proposal: &Proposal) -> Result<Vec<ImpactRow>, StoreError> {
        let (account_id, integration_type) = match proposal {
            Proposal::Setting { account_id, integration_type, .. }
            | Proposal::Delete { account_id, integration_type } => (Some(*account_id), Some(integration_type.clone())),
            Proposal::Chain(_) | Proposal::Many(_) => (None, None),
        };
        let types: Vec<String> = match integration_type.as_deref() {
            None => self.all_types().await?,
            // A provider's change also moves every consumer's second hop.
            Some(t) if registry::spec(t).is_some_and(|s| s.kind == registry::Kind::Provider) => {
                std::iter::once(t.to_string()).chain(consumers()).collect()
            }
            Some(t) => vec![t.to_string()],
        };
        // Who can move at all: a tenant's change moves only that tenant; a
        // system account's moves only accounts without their own answering
        // setting of the type (which answer before any system account, for
        // the type and for a consumer's second hop alike), plus the system
        // accounts and users without an account.
        let (scope, unless_own): (Option<Vec<i64>>, Option<String>) = match account_id {
            Some(id) if !self.is_system_account(id).await? => (Some(vec![id]), None),
            Some(_) => (None, integration_type.clone()),
            None => (None, None),
        };
        let mut tx = self.pool.begin().await?;
        analytic(&mut tx).await?;
        sqlx::raw_sql(IMPACT_TABLES).execute(&mut *tx).await?;
        let (moves_on, fails) = (self.rules.moves_on_names(), self.rules.fails_names());
        let report = |sql| {
            sqlx::query(sql)
                .bind(&types)
                .bind(consumers())
                .bind(&scope)
                .bind(&unless_own)
                .bind(moves_on.clone())
                .bind(fails.clone())
        };
        report(IMPACT_BEFORE).execute(&mut *tx).await?;
        // The preview writes as the operator (then rolls back): the database
        // checks their right exactly as it will for the real write.
        apply(&mut tx, self.operator.as_deref().unwrap_or("keyfall preview"), proposal).await?;
        report(IMPACT_AFTER).execute(&mut *tx).await?;
        // Temporary tables have no statistics until analysed; without them
        // the difference is planned as a nested loop over 200,000 rows.
        sqlx::raw_sql("ANALYZE kf_before; ANALYZE kf_after").execute(&mut *tx).await?;
        let rows = sqlx::query(IMPACT_DIFF).fetch_all(&mut *tx).await?;
        // A single tenant's preview names the tenant rather than "(own)".
        let own_name = match (&scope, proposal) {
            (Some(ids), Proposal::Setting { account_id, .. } | Proposal::Delete { account_id, .. })
                if ids.len() == 1 =>
            {
                self.account_slug(*account_id).await?
            }
            _ => None,
        };
        // Nothing of the preview survives: not the change, not its audit
        // rows, not its notices (NOTIFY is only sent on commit).
        tx.rollback().await?;
        rows.into_iter()
            .map(|r| {
                Ok(ImpactRow {
                    function: r.try_get("function")?,
                    integration_type: r.try_get("integration_type")?,
                    before: Answer {
                        answered_by: r.try_get("before_by")?,
                        provider: r.try_get("before_provider")?,
                        provider_answered_by: r.try_get("before_provider_by")?,
                    },
                    after: Answer {
                        answered_by: r.try_get("after_by")?,
                        provider: r.try_get("after_provider")?,
                        provider_answered_by: r.try_get("after_provider_by")?,
                    },
                    accounts: r.try_get("accounts")?,
                    users: r.try_get("users")?,
                })
            })
            .collect::<Result<Vec<ImpactRow>, sqlx::Error>>()
            .map_err(StoreError::from)
            .map(|rows| match &own_name {
                Some(slug) => rows.into_iter().map(|r| r.naming_own(slug)).collect(),
                None => rows,
            })
    }

    async fn account_slug(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT slug FROM accounts WHERE id = $1").bind(id).fetch_optional(&self.pool).await?)
    }

    async fn is_system_account(&self, account_id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM fallback_chain c JOIN accounts a ON a.slug = c.account_slug WHERE a.id = $1)",
        )
        .bind(account_id)
        .fetch_one(&self.pool)
        .await?)
    }
}

/// Apply a proposal inside the preview's transaction (rolled back after).
async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: &str,
    proposal: &Proposal,
) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config('keyfall.actor', $1, true)").bind(actor).execute(&mut **tx).await?;
    let single: Vec<&Proposal> = match proposal {
        Proposal::Many(all) => all.iter().collect(),
        one => vec![one],
    };
    for proposal in single {
        apply_one(tx, proposal).await?;
    }
    Ok(())
}

async fn apply_one(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, proposal: &Proposal) -> Result<(), StoreError> {
    match proposal {
        Proposal::Many(_) => {
            return Err(StoreError::Invalid("nested proposals are not supported".into()));
        }
        Proposal::Setting { account_id, integration_type, config, is_active } => {
            // Through the view, so the database checks the operator's right
            // as for the real write (the preview needs the same right).
            let updated = sqlx::query(
                "UPDATE integration_settings SET config = $3::text::jsonb, is_active = $4
                  WHERE account_id = $1 AND integration_type = $2",
            )
            .bind(account_id)
            .bind(integration_type)
            .bind(config.to_string())
            .bind(is_active)
            .execute(&mut **tx)
            .await?;
            if updated.rows_affected() == 0 {
                sqlx::query(
                    "INSERT INTO integration_settings (account_id, integration_type, config, is_active)
                     VALUES ($1, $2, $3::text::jsonb, $4)",
                )
                .bind(account_id)
                .bind(integration_type)
                .bind(config.to_string())
                .bind(is_active)
                .execute(&mut **tx)
                .await?;
            }
        }
        Proposal::Delete { account_id, integration_type } => {
            sqlx::query("DELETE FROM integration_settings WHERE account_id = $1 AND integration_type = $2")
                .bind(account_id)
                .bind(integration_type)
                .execute(&mut **tx)
                .await?;
        }
        Proposal::Chain(slugs) => {
            sqlx::query("DELETE FROM fallback_chain").execute(&mut **tx).await?;
            sqlx::query(
                "INSERT INTO fallback_chain (position, account_slug)
                 SELECT p, s FROM unnest($1::text[]) WITH ORDINALITY AS c(s, p)",
            )
            .bind(slugs)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Settings for the big set-based queries, for this transaction only: JIT
/// costs more than it saves here (~0.4 s at XL), the sorts want memory, a
/// custom plan lets "$3 IS NULL" fold away, and a runaway plan fails in a
/// minute rather than hang a preview.
async fn analytic(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; SET LOCAL plan_cache_mode = force_custom_plan;
         SET LOCAL statement_timeout = '60s'",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
