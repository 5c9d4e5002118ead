//! DESIGN §2 set-based: who answers every account × integration type (the
//! fallback report), and the impact preview of a proposed change.
//!
//! The report is one query, streamed in its final order (system accounts in
//! chain order, then tenants by slug as bytes): each account's own rows are
//! looked up by index, the system chain's answer per type is computed once
//! (`sys_answer`), and only a consumer's answer takes the second hop, again
//! from the same account. Row verdicts come from `keyfall.row_verdicts`
//! (kept by the audit trigger), so no query judges 250,000 configs.
//!
//! The impact preview never recomputes the whole report. Inside one
//! transaction that is rolled back, it looks at two kinds of accounts:
//! - the few whose own rows can change — the system chain's accounts (before
//!   and after) and the accounts whose settings the proposal touches — with
//!   the scoped report before and after the change, row by row;
//! - every other account, whose own rows stay as they are: its answer only
//!   moves where it falls back to the chain, so only accounts without a
//!   stopping row of a type whose chain answer changed are looked at, and
//!   they are evaluated against the chain's answer before and after (a few
//!   rows) and counted, grouped, in SQL.
//!
//! A test holds this equal to the straightforward before/after report on
//! random data (`tests/it/impact_scoped.rs`).
//!
//! Report parameters: $1 the types reported, $2 the consumer types, $3 the
//! account ids reported (NULL: all), $4 the verdicts that move the walk on
//! and $5 those that fail it (the `[resolution]` rule set).

use std::collections::{HashMap, HashSet};

use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::change::{Answer, ImpactRow, Proposal};
use crate::domain::registry;

macro_rules! report_sql {
    ($accounts:literal) => {
        concat!(
            r#"
sys AS MATERIALIZED (
    SELECT c.position, a.id, a.slug
      FROM fallback_chain c JOIN accounts a ON a.slug = c.account_slug
), judged AS NOT MATERIALIZED (
    -- Each row's stored verdict: whether it stops the walk, and whether
    -- stopping there is the app failing.
    SELECT r.account_id, r.integration_type, r.provider, r.verdict,
           r.verdict <> ALL($4::text[]) AS stops, r.verdict = ANY($5::text[]) AS fails
      FROM row_verdicts r
), sys_answer AS MATERIALIZED (
    -- Per type, the first chain account whose row stops the walk: it
    -- answers, or (a verdict the rules call a failure) the app raises.
    SELECT DISTINCT ON (j.integration_type)
           j.integration_type,
           CASE WHEN j.fails THEN NULL ELSE sys.slug END AS slug,
           CASE WHEN j.fails THEN NULL ELSE j.provider END AS provider,
           CASE WHEN j.fails THEN NULL ELSE j.verdict END AS verdict,
           -- Where the app raises: the row's account and verdict.
           CASE WHEN j.fails THEN sys.slug END AS raise_at,
           CASE WHEN j.fails THEN j.verdict END AS raise_verdict
      FROM sys CROSS JOIN LATERAL (SELECT * FROM judged j WHERE j.account_id = sys.id) j
     WHERE j.stops
     ORDER BY j.integration_type, sys.position
), typed AS MATERIALIZED (
    -- The reported types with the chain's answer for each: a few rows.
    SELECT types.t, types.t = ANY($2::text[]) AS consumer,
           sa.slug AS sys_slug, sa.provider AS sys_provider, sa.verdict AS sys_verdict,
           sa.raise_at AS sys_raise_at, sa.raise_verdict AS sys_raise_verdict
      FROM unnest($1::text[]) AS types(t)
      LEFT JOIN sys_answer sa ON sa.integration_type = types.t
), reported AS (
    -- In the report's order, so the rows below come out in it (no sort of
    -- every row: the joins below keep this order).
    SELECT a.id, a.slug, sys.position AS chain_position
      FROM "#,
            $accounts,
            r#" a
      LEFT JOIN sys ON sys.id = a.id
     WHERE ($3::bigint[] IS NULL OR a.id = ANY($3::bigint[]) OR a.id IS NULL)
     ORDER BY sys.position, a.slug COLLATE "C"
), first_hop AS (
    -- The account's own row first, whatever the account (the app's
    -- get_model_config); where it moves the walk on, the chain's answer.
    -- One index probe per account for its own rows.
    SELECT a.id, a.slug, a.chain_position, x.*
      FROM reported a
     CROSS JOIN LATERAL (
        SELECT ty.t, ty.consumer,
               CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE a.slug END
                    ELSE ty.sys_slug END AS answered_by,
               CASE WHEN NOT ty.consumer THEN NULL
                    WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE own.provider END
                    ELSE ty.sys_provider END AS provider,
               CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE own.verdict END
                    ELSE ty.sys_verdict END AS answer_verdict,
               CASE WHEN own.stops THEN CASE WHEN own.fails THEN a.slug END
                    ELSE ty.sys_raise_at END AS raise_at,
               CASE WHEN own.stops THEN CASE WHEN own.fails THEN own.verdict END
                    ELSE ty.sys_raise_verdict END AS raise_verdict
          FROM typed ty
          LEFT JOIN (SELECT * FROM judged j WHERE j.account_id = a.id) own ON own.integration_type = ty.t
        OFFSET 0
     ) x
), named AS (
    -- A provider reference: the hop's type when it is a string; any other
    -- JSON (a number, a list) names no type the app could find. A consumer
    -- answering without one (only under rules that let such a row answer)
    -- hops nowhere: "(no provider)".
    SELECT f.*, CASE WHEN jsonb_typeof(f.provider) = 'string' AND f.provider <> '""'::jsonb
                     THEN f.provider #>> '{}' END AS hop_type,
           CASE WHEN NOT f.consumer THEN NULL
                WHEN NOT keyfall_py_truthy(f.provider) THEN '(no provider)'
                WHEN jsonb_typeof(f.provider) = 'string' THEN f.provider #>> '{}'
                ELSE f.provider::text END AS provider_text
      FROM first_hop f
     ORDER BY f.chain_position, f.slug COLLATE "C"
    OFFSET 0
)
SELECT f.slug AS account, f.id AS account_id, f.chain_position, f.t AS integration_type, f.answered_by,
       CASE WHEN f.answered_by IS NOT NULL THEN f.provider_text END AS provider,
       CASE WHEN f.answered_by IS NOT NULL AND f.hop_type IS NOT NULL THEN
            CASE WHEN prov.stops THEN CASE WHEN prov.fails THEN NULL ELSE f.slug END
                 ELSE psa.slug END
       END AS provider_answered_by,
       f.answer_verdict,
       -- Where the app raises (the first hop's row, else the second's): the
       -- account, type and verdict of that row; NULL when nothing raises.
       CASE WHEN f.raise_at IS NOT NULL THEN f.raise_at
            WHEN f.answered_by IS NOT NULL AND f.hop_type IS NOT NULL THEN
                 CASE WHEN prov.stops THEN CASE WHEN prov.fails THEN f.slug END ELSE psa.raise_at END
       END AS raise_at,
       CASE WHEN f.raise_at IS NOT NULL THEN f.t ELSE f.hop_type END AS raise_type,
       CASE WHEN f.raise_at IS NOT NULL THEN f.raise_verdict
            WHEN f.answered_by IS NOT NULL AND f.hop_type IS NOT NULL THEN
                 CASE WHEN prov.stops THEN CASE WHEN prov.fails THEN prov.verdict END ELSE psa.raise_verdict END
       END AS raise_verdict
  FROM named f
  -- Only consumers hop: an index probe for those, nothing for the rest.
  LEFT JOIN LATERAL (SELECT x.stops, x.fails, x.verdict FROM judged x
                      WHERE f.hop_type IS NOT NULL AND x.account_id = f.id AND x.integration_type = f.hop_type
                     OFFSET 0) prov ON true
  LEFT JOIN LATERAL (SELECT s.slug, s.raise_at, s.raise_verdict FROM sys_answer s
                      WHERE f.hop_type IS NOT NULL AND s.integration_type = f.hop_type
                     OFFSET 0) psa ON true
 ORDER BY f.chain_position, f.slug COLLATE "C"
"#
        )
    };
}

/// Every account, in the report's order (types within an account are put
/// in order by the reader).
const REPORT_SQL: &str = concat!("WITH ", report_sql!("accounts"));

/// The report for some accounts only (and, as '' with no id, for users
/// without an account): the scoped report (`report_for`), and the
/// impact preview's accounts whose own rows change.
const BATCH_SQL: &str = concat!(
    "WITH every_account AS (SELECT id, slug FROM accounts WHERE id = ANY($3::bigint[]) UNION ALL SELECT NULL::bigint, ''), ",
    report_sql!("every_account")
);

/// Per type, the system chain's answer (the report's `sys_answer`): the
/// answering chain account (NULL where the app raises) and the provider
/// reference it names. $1 the verdicts that move on, $2 those that fail.
const SYS_SQL: &str = r#"
WITH sys AS (
    SELECT c.position, a.id, a.slug
      FROM fallback_chain c JOIN accounts a ON a.slug = c.account_slug
)
SELECT DISTINCT ON (r.integration_type) r.integration_type,
       CASE WHEN r.verdict = ANY($2::text[]) THEN NULL ELSE sys.slug END AS slug,
       CASE WHEN r.verdict = ANY($2::text[]) THEN NULL ELSE r.provider END AS provider
  FROM sys JOIN row_verdicts r ON r.account_id = sys.id
 WHERE r.verdict <> ALL($1::text[])
 ORDER BY r.integration_type, sys.position
"#;

/// The impact on every account whose own rows the change leaves as they
/// are, grouped. Such an account answers from its own row where that stops
/// the walk ("(own)"), else from the chain's answer, before ($7 `b_*`) or
/// after (`a_*`); `renewed` marks a type whose chain answer stays at the
/// same account while that account's row changes content. Only accounts
/// without a stopping row of a type in $4 (those whose chain answer
/// changed or was renewed) can move; $3 the accounts looked at one by one
/// (left out here); $1 the types evaluated (those of $4 and the consumers,
/// which may hop into them); $2 the consumer types; $5/$6 the rule set.
const PLAIN_SQL: &str = r#"
WITH sysx AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($7::text::jsonb)
        AS x(t text, b_slug text, b_provider jsonb, a_slug text, a_provider jsonb, renewed boolean)
), judged AS NOT MATERIALIZED (
    SELECT r.account_id, r.integration_type, r.provider,
           r.verdict <> ALL($5::text[]) AS stops, r.verdict = ANY($6::text[]) AS fails
      FROM row_verdicts r
), moving AS MATERIALIZED (
    SELECT DISTINCT a.id, a.slug
      FROM accounts a CROSS JOIN unnest($4::text[]) AS d(t)
     WHERE a.id <> ALL($3::bigint[])
       AND NOT EXISTS (SELECT 1 FROM judged j
                        WHERE j.account_id = a.id AND j.integration_type = d.t
                          AND j.integration_type = ANY($4::text[]) AND j.stops)
), named AS MATERIALIZED (
    SELECT f.*,
           CASE WHEN jsonb_typeof(f.b_p) = 'string' AND f.b_p <> '""'::jsonb THEN f.b_p #>> '{}' END AS b_hop,
           CASE WHEN jsonb_typeof(f.a_p) = 'string' AND f.a_p <> '""'::jsonb THEN f.a_p #>> '{}' END AS a_hop,
           CASE WHEN f.t <> ALL($2::text[]) THEN NULL
                WHEN NOT keyfall_py_truthy(f.b_p) THEN '(no provider)'
                WHEN jsonb_typeof(f.b_p) = 'string' THEN f.b_p #>> '{}'
                ELSE f.b_p::text END AS b_text,
           CASE WHEN f.t <> ALL($2::text[]) THEN NULL
                WHEN NOT keyfall_py_truthy(f.a_p) THEN '(no provider)'
                WHEN jsonb_typeof(f.a_p) = 'string' THEN f.a_p #>> '{}'
                ELSE f.a_p::text END AS a_text
      FROM (
        SELECT m.id, m.slug, ty.t,
               CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE '(own)' END ELSE sx.b_slug END AS b_by,
               CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE '(own)' END ELSE sx.a_slug END AS a_by,
               CASE WHEN ty.t = ANY($2::text[]) THEN
                    CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE own.provider END ELSE sx.b_provider END
               END AS b_p,
               CASE WHEN ty.t = ANY($2::text[]) THEN
                    CASE WHEN own.stops THEN CASE WHEN own.fails THEN NULL ELSE own.provider END ELSE sx.a_provider END
               END AS a_p,
               own.stops IS NOT TRUE AND sx.renewed IS TRUE AS first_renewed
          FROM moving m CROSS JOIN unnest($1::text[]) AS ty(t)
          LEFT JOIN sysx sx ON sx.t = ty.t
          LEFT JOIN LATERAL (SELECT j.stops, j.fails, j.provider FROM judged j
                              WHERE j.account_id = m.id AND j.integration_type = ty.t OFFSET 0) own ON true
      ) f
), answered AS (
    SELECT n.id, n.slug, n.t,
           n.b_by, CASE WHEN n.b_by IS NOT NULL THEN n.b_text END AS b_provider,
           CASE WHEN n.b_by IS NOT NULL AND n.b_hop IS NOT NULL THEN
                CASE WHEN bp.stops THEN CASE WHEN bp.fails THEN NULL ELSE '(own)' END ELSE bs.b_slug END
           END AS b_pby,
           n.a_by, CASE WHEN n.a_by IS NOT NULL THEN n.a_text END AS a_provider,
           CASE WHEN n.a_by IS NOT NULL AND n.a_hop IS NOT NULL THEN
                CASE WHEN ap.stops THEN CASE WHEN ap.fails THEN NULL ELSE '(own)' END ELSE hs.a_slug END
           END AS a_pby,
           (n.a_by IS NOT NULL AND n.first_renewed)
           OR (n.a_by IS NOT NULL AND n.a_hop IS NOT NULL AND ap.stops IS NOT TRUE AND hs.renewed IS TRUE) AS renewed
      FROM named n
      LEFT JOIN LATERAL (SELECT x.stops, x.fails FROM judged x
                          WHERE n.b_hop IS NOT NULL AND x.account_id = n.id AND x.integration_type = n.b_hop
                         OFFSET 0) bp ON true
      LEFT JOIN sysx bs ON bs.t = n.b_hop
      LEFT JOIN LATERAL (SELECT x.stops, x.fails FROM judged x
                          WHERE n.a_hop IS NOT NULL AND x.account_id = n.id AND x.integration_type = n.a_hop
                         OFFSET 0) ap ON true
      LEFT JOIN sysx hs ON hs.t = n.a_hop
), compared AS (
    SELECT a.*, (a.b_by, a.b_provider, a.b_pby) IS NOT DISTINCT FROM (a.a_by, a.a_provider, a.a_pby) AS same
      FROM answered a
)
SELECT c.t AS integration_type, c.b_by, c.b_provider, c.b_pby, c.a_by, c.a_provider, c.a_pby,
       c.same AS value_changed, count(*) AS accounts, sum(uc.n)::bigint AS users,
       -- A few of them by name without sorting them all: the first by slug
       -- of each class of id modulo 3 (so the group's first is among them).
       min(c.slug COLLATE "C") FILTER (WHERE c.id % 3 = 0) AS ex0,
       min(c.slug COLLATE "C") FILTER (WHERE c.id % 3 = 1) AS ex1,
       min(c.slug COLLATE "C") FILTER (WHERE c.id % 3 = 2) AS ex2
  FROM compared c
  -- Users per moved account, from the users_account index alone.
 CROSS JOIN LATERAL (SELECT count(*) AS n FROM users u WHERE u.account_id = c.id) uc
 WHERE NOT c.same OR c.renewed
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
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
    /// Where the app's `get_model_config` raises, in one line
    /// (`resolve::raise_reason`): a row whose verdict the rules make fail,
    /// in the first hop or the second. The call then answers nothing at
    /// all; the fields above still say how far the first hop got (the
    /// impact preview compares them), and the outputs show the call's
    /// answer ([`ReportRow::app_answer`]).
    pub raises: Option<String>,
}

impl ReportRow {
    /// The row as the app's call sees it: where it raises, nothing
    /// answers (the first hop's answer, the provider and its verdict are
    /// dropped), as `report --json` and `resolve --batch` print it.
    pub fn app_answer(&self) -> ReportRow {
        let mut row = self.clone();
        if row.raises.is_some() {
            row.answered_by = None;
            row.provider = None;
            row.provider_answered_by = None;
            row.answer_verdict = None;
        }
        row
    }

    /// Answered, and so is the second hop if there is one; nothing raises.
    pub fn is_resolved(&self) -> bool {
        self.raises.is_none()
            && self.answered_by.is_some()
            && (self.provider.is_none() || self.provider_answered_by.is_some())
    }
}

impl Proposal {
    /// The proposal as single changes (a `Many` unpacked).
    fn singles(&self) -> Vec<&Proposal> {
        match self {
            Proposal::Many(all) => all.iter().collect(),
            one => vec![one],
        }
    }
}

/// A group's examples: per class of account id modulo 3, the first slug
/// (bytes) seen.
#[derive(Debug, Default, Clone)]
struct Examples([Option<String>; 3]);

impl Examples {
    fn add(&mut self, id: i64, slug: &str) {
        let class = &mut self.0[id.rem_euclid(3) as usize];
        if class.as_deref().is_none_or(|s| slug.as_bytes() < s.as_bytes()) {
            *class = Some(slug.to_string());
        }
    }

    fn sorted(self) -> Vec<String> {
        let mut out: Vec<String> = self.0.into_iter().flatten().collect();
        out.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        out
    }
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
/// By position, in the order of `report_sql!`'s final SELECT (a lookup by
/// name per column was a tenth of a 300,000-row report's client time).
fn report_row(r: &sqlx::postgres::PgRow) -> Result<ReportRow, sqlx::Error> {
    Ok(ReportRow {
        account: r.try_get(0)?,
        account_id: r.try_get(1)?,
        chain_position: r.try_get(2)?,
        integration_type: r.try_get(3)?,
        answered_by: r.try_get(4)?,
        provider: r.try_get(5)?,
        provider_answered_by: r.try_get(6)?,
        answer_verdict: r.try_get(7)?,
        raises: raises(
            r.try_get(8)?,
            r.try_get(9)?,
            r.try_get(10)?,
            r.try_get::<Option<&str>, _>(4)?,
            r.try_get::<&str, _>(3)?,
        ),
    })
}

/// The report's raise in words: the row (account, type, verdict) it is on;
/// when the first hop answered (`by`), it is in the second.
fn raises(at: Option<&str>, ty: Option<&str>, verdict: Option<&str>, by: Option<&str>, first: &str) -> Option<String> {
    let (at, ty, verdict) = (at?, ty?, verdict?);
    Some(crate::domain::resolve::raise_reason(at, ty, verdict, by.map(|by| (by, first))))
}

fn consumers() -> Vec<String> {
    registry::TYPES.iter().filter(|t| t.kind == registry::Kind::Consumer).map(|t| t.name.to_string()).collect()
}

/// The chain's answer for one type: the answering account (`None` where
/// nobody answers or the app raises) and the provider reference it names.
#[derive(Debug, Clone, Default, PartialEq)]
struct SysAnswer {
    slug: Option<String>,
    provider: Option<Value>,
}

/// One group of an impact: type, before → after, whether only the value changed.
type ImpactKey = (String, Answer, Answer, bool);

/// A report row's answer with the account's own name as "(own)", so such
/// accounts group together and a system account leaving the chain does not
/// "move".
fn labelled(r: &ReportRow) -> Answer {
    let own = |by: &Option<String>| match by {
        Some(s) if !r.account.is_empty() && *s == r.account => Some("(own)".to_string()),
        other => other.clone(),
    };
    Answer {
        answered_by: own(&r.answered_by),
        provider: r.provider.clone(),
        provider_answered_by: own(&r.provider_answered_by),
        new_value: false,
    }
}

/// Whether the answer `r` (unchanged in who answers) comes from a row whose
/// content changes: its first hop's or its provider hop's.
fn answers_from(r: &ReportRow, renewed: &HashSet<(String, String)>) -> bool {
    let first = r.answered_by.as_ref().is_some_and(|by| renewed.contains(&(by.clone(), r.integration_type.clone())));
    let hop = match (&r.provider_answered_by, &r.provider) {
        (Some(by), Some(hop_type)) => renewed.contains(&(by.clone(), hop_type.clone())),
        _ => false,
    };
    first || hop
}

impl Store {
    /// Every account × integration type (the registry's and any found in the
    /// data) with who answers, in one set-based query. System accounts come
    /// first in chain order, then tenants by slug (bytes), then type.
    #[tracing::instrument(skip_all)]
    pub async fn report(&self) -> Result<Vec<ReportRow>, StoreError> {
        let mut rows = Vec::new();
        self.report_each(|r| {
            rows.push(r);
            Ok::<(), StoreError>(())
        })
        .await?;
        Ok(rows)
    }

    /// The report row by row, in the report's order, as the database sends
    /// it: memory stays bounded whatever the number of accounts. An error
    /// of `each` (a closed pipe) stops the query.
    #[tracing::instrument(skip_all)]
    pub async fn report_each<E, F>(&self, mut each: F) -> Result<(), E>
    where
        E: From<StoreError>,
        F: FnMut(ReportRow) -> Result<(), E>,
    {
        let mut types = self.all_types().await?;
        types.sort();
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        analytic(&mut tx).await?;
        // Streamed: the rows go out as fast as the reader takes them
        // (`report --json | less`), so no clock on the statement.
        sqlx::raw_sql("SET LOCAL statement_timeout = 0").execute(&mut *tx).await.map_err(StoreError::from)?;
        // One account's rows at a time, put in type order.
        let mut account: Vec<ReportRow> = Vec::with_capacity(types.len());
        let mut flush = |account: &mut Vec<ReportRow>| -> Result<(), E> {
            account.sort_unstable_by(|a, b| a.integration_type.cmp(&b.integration_type));
            account.drain(..).try_for_each(&mut each)
        };
        {
            let mut rows = sqlx::query(REPORT_SQL)
                .bind(&types)
                .bind(consumers())
                .bind(None::<Vec<i64>>)
                .bind(self.rules.moves_on_names())
                .bind(self.rules.fails_names())
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
                let row = report_row(&row).map_err(StoreError::from)?;
                if account.first().is_some_and(|a| a.account_id != row.account_id) {
                    flush(&mut account)?;
                }
                account.push(row);
            }
        }
        flush(&mut account)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Who answers each type for these accounts (and, with `account ''`,
    /// for a user without one): the report SQL, scoped — set-based, one
    /// query. `resolve --batch` answers from `store::answers` instead; this
    /// is what the tests hold the scoped preview and the batch to.
    #[tracing::instrument(skip_all)]
    pub async fn report_for(&self, account_ids: &[i64], types: &[String]) -> Result<Vec<ReportRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        analytic(&mut tx).await?;
        let rows = self.scoped_report(&mut tx, account_ids, types).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn scoped_report(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        account_ids: &[i64],
        types: &[String],
    ) -> Result<Vec<ReportRow>, StoreError> {
        let rows = sqlx::query(BATCH_SQL)
            .bind(types)
            .bind(consumers())
            .bind(account_ids)
            .bind(self.rules.moves_on_names())
            .bind(self.rules.fails_names())
            .fetch_all(&mut **tx)
            .await?;
        rows.iter().map(report_row).collect::<Result<Vec<_>, sqlx::Error>>().map_err(StoreError::from)
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

    /// Who would resolve differently if `proposal` were applied — and who
    /// keeps the same answering account but now uses a changed value —
    /// grouped by function and by old → new answer, with account and user
    /// counts. Nothing is written: the change is applied as the operator
    /// (the database checks their right as for the real write) inside a
    /// transaction that is rolled back. Scoped: the accounts whose own rows
    /// change are compared row by row; every other account only where it
    /// falls back to a chain answer that changes (see the module comment).
    #[tracing::instrument(skip_all)]
    pub async fn impact(&self, proposal: &Proposal) -> Result<Vec<ImpactRow>, StoreError> {
        let singles = proposal.singles();
        let mut types = self.all_types().await?;
        let mut touched: Vec<(i64, String)> = Vec::new();
        let mut new_chain: Vec<String> = Vec::new();
        for p in &singles {
            match p {
                Proposal::Setting { account_id, integration_type, .. }
                | Proposal::Delete { account_id, integration_type } => {
                    touched.push((*account_id, integration_type.clone()));
                    if !types.contains(integration_type) {
                        types.push(integration_type.clone());
                    }
                }
                Proposal::Chain(slugs) => new_chain.extend(slugs.iter().cloned()),
                Proposal::Many(_) => return Err(StoreError::Invalid("nested proposals are not supported".into())),
            }
        }
        let (moves_on, fails) = (self.rules.moves_on_names(), self.rules.fails_names());
        // Every query below runs on the transaction's connection (a command
        // line has only one).
        let mut tx = self.pool.begin().await?;
        analytic(&mut tx).await?;

        // The accounts looked at one by one: the chain's, before and after,
        // and those whose rows the proposal touches.
        let touched_ids: Vec<i64> = touched.iter().map(|(id, _)| *id).collect();
        let mut special: Vec<i64> = sqlx::query_scalar(
            "SELECT a.id FROM accounts a
              WHERE a.slug = ANY(ARRAY(SELECT account_slug FROM fallback_chain) || $1::text[])",
        )
        .bind(&new_chain)
        .fetch_all(&mut *tx)
        .await?;
        let chain_ids: HashSet<i64> = special.iter().copied().collect();
        special.extend(touched_ids.iter().copied());
        special.sort_unstable();
        special.dedup();

        // Rows whose content the proposal changes and that stay (a setting
        // rewritten differently): whoever answers from them keeps the
        // account and gets the new value. Compared as the operator reads
        // them (a masked key written back is the stored key).
        // Several changes to one setting (a proposal of many) leave what the
        // last one says: only that is compared with the stored row.
        type Last<'p> = ((i64, &'p str), Option<(&'p Value, bool)>);
        let mut last: Vec<Last> = Vec::new();
        for p in &singles {
            let (key, state) = match p {
                Proposal::Setting { account_id, integration_type, config, is_active } => {
                    ((*account_id, integration_type.as_str()), Some((config, *is_active)))
                }
                Proposal::Delete { account_id, integration_type } => ((*account_id, integration_type.as_str()), None),
                _ => continue,
            };
            match last.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = state,
                None => last.push((key, state)),
            }
        }
        let (mut ids, mut kinds, mut configs, mut actives) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((account_id, integration_type), state) in &last {
            if let Some((config, is_active)) = state {
                ids.push(*account_id);
                kinds.push(integration_type.to_string());
                configs.push(config.to_string());
                actives.push(*is_active);
            }
        }
        let renewed: HashSet<(String, String)> = sqlx::query_as::<_, (String, String)>(
            "SELECT a.slug, s.integration_type
               FROM unnest($1::bigint[], $2::text[], $3::text[], $4::boolean[]) AS q(id, t, config, is_active)
               JOIN integration_settings s ON s.account_id = q.id AND s.integration_type = q.t
               JOIN accounts a ON a.id = s.account_id
              WHERE s.config IS DISTINCT FROM q.config::jsonb OR s.is_active IS DISTINCT FROM q.is_active",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&configs)
        .bind(&actives)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();

        let sys_before = sys_answers(&mut tx, &moves_on, &fails).await?;
        let before = self.scoped_report(&mut tx, &special, &types).await?;
        // The preview writes as the operator (then rolls back): the database
        // checks their right exactly as it will for the real write.
        apply(&mut tx, self.operator.as_deref().unwrap_or("keyfall preview"), proposal).await?;
        let sys_after = sys_answers(&mut tx, &moves_on, &fails).await?;
        let after = self.scoped_report(&mut tx, &special, &types).await?;

        let mut groups: HashMap<ImpactKey, (i64, i64, Examples)> = HashMap::new();
        // The accounts looked at one by one, row by row.
        let users: HashMap<Option<i64>, i64> = sqlx::query_as::<_, (Option<i64>, i64)>(
            "SELECT q.id, (SELECT count(*) FROM users u WHERE u.account_id = q.id) FROM unnest($1::bigint[]) AS q(id)
             UNION ALL
             SELECT NULL, count(*) FROM users WHERE account_id IS NULL",
        )
        .bind(&special)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let before_rows: HashMap<(Option<i64>, &str), &ReportRow> =
            before.iter().map(|r| ((r.account_id, r.integration_type.as_str()), r)).collect();
        for a in &after {
            let Some(b) = before_rows.get(&(a.account_id, a.integration_type.as_str())) else { continue };
            let (was, is) = (labelled(b), labelled(a));
            let value_changed = was == is && answers_from(a, &renewed);
            if was == is && !value_changed {
                continue;
            }
            let entry = groups.entry((a.integration_type.clone(), was, is, value_changed)).or_default();
            entry.0 += i64::from(a.account_id.is_some());
            entry.1 += users.get(&a.account_id).copied().unwrap_or(0);
            if let Some(id) = a.account_id {
                entry.2.add(id, &a.account);
            }
        }

        // Every other account: only where the chain's answer changes.
        let mut sys_types: Vec<&String> = sys_before.keys().chain(sys_after.keys()).collect();
        sys_types.sort();
        sys_types.dedup();
        let mut sysx = Vec::new();
        let mut changed_types: Vec<String> = Vec::new();
        for t in sys_types {
            let (b, a) =
                (sys_before.get(t).cloned().unwrap_or_default(), sys_after.get(t).cloned().unwrap_or_default());
            let renewed_here = b.slug.is_some()
                && b.slug == a.slug
                && renewed.contains(&(b.slug.clone().unwrap_or_default(), t.clone()));
            if b != a || renewed_here {
                changed_types.push(t.clone());
            }
            sysx.push(serde_json::json!({
                "t": t, "b_slug": b.slug, "b_provider": b.provider,
                "a_slug": a.slug, "a_provider": a.provider, "renewed": renewed_here,
            }));
        }
        if !changed_types.is_empty() {
            let consumer_types = consumers();
            let mut evaluated = changed_types.clone();
            evaluated.extend(consumer_types.iter().filter(|c| !changed_types.contains(c)).cloned());
            let rows = sqlx::query(PLAIN_SQL)
                .bind(&evaluated)
                .bind(&consumer_types)
                .bind(&special)
                .bind(&changed_types)
                .bind(&moves_on)
                .bind(&fails)
                .bind(Value::Array(sysx).to_string())
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                let answer = |by: &str, provider: &str, pby: &str| -> Result<Answer, sqlx::Error> {
                    Ok(Answer {
                        answered_by: r.try_get(by)?,
                        provider: r.try_get(provider)?,
                        provider_answered_by: r.try_get(pby)?,
                        new_value: false,
                    })
                };
                let key = (
                    r.try_get::<String, _>("integration_type")?,
                    answer("b_by", "b_provider", "b_pby")?,
                    answer("a_by", "a_provider", "a_pby")?,
                    r.try_get::<bool, _>("value_changed")?,
                );
                let entry = groups.entry(key).or_default();
                entry.0 += r.try_get::<i64, _>("accounts")?;
                entry.1 += r.try_get::<i64, _>("users")?;
                for (class, column) in ["ex0", "ex1", "ex2"].into_iter().enumerate() {
                    if let Some(slug) = r.try_get::<Option<String>, _>(column)? {
                        entry.2.add(class as i64, &slug);
                    }
                }
            }
        }
        let functions: Vec<(String, String)> =
            sqlx::query_as("SELECT name, integration_type FROM ai_functions").fetch_all(&mut *tx).await?;
        // Nothing of the preview survives: not the change, not its audit
        // rows, not its notices (NOTIFY is only sent on commit).
        tx.rollback().await?;

        // A single tenant's preview names the tenant rather than "(own)".
        let own_name = match proposal {
            Proposal::Setting { account_id, .. } | Proposal::Delete { account_id, .. }
                if !chain_ids.contains(account_id) =>
            {
                before.iter().find(|r| r.account_id == Some(*account_id)).map(|r| r.account.clone())
            }
            _ => None,
        };
        let mut out: Vec<ImpactRow> = Vec::new();
        for ((integration_type, before, mut after, value_changed), (accounts, users, examples)) in groups {
            after.new_value = value_changed;
            let examples = examples.sorted();
            for (function, _) in functions.iter().filter(|(_, t)| *t == integration_type) {
                let row = ImpactRow {
                    function: function.clone(),
                    integration_type: integration_type.clone(),
                    before: before.clone(),
                    after: after.clone(),
                    accounts,
                    users,
                    value_changed,
                    examples: examples.clone(),
                };
                out.push(match &own_name {
                    Some(slug) => row.naming_own(slug),
                    None => row,
                });
            }
        }
        out.sort_by(|a, b| {
            (&a.function, std::cmp::Reverse(a.users), std::cmp::Reverse(a.accounts), a.value_changed)
                .cmp(&(&b.function, std::cmp::Reverse(b.users), std::cmp::Reverse(b.accounts), b.value_changed))
                .then_with(|| {
                    (a.before.to_string(), a.after.to_string()).cmp(&(b.before.to_string(), b.after.to_string()))
                })
        });
        Ok(out)
    }
}

/// The chain's answer per type, as the report's `sys_answer` computes it.
async fn sys_answers(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    moves_on: &[&str],
    fails: &[&str],
) -> Result<HashMap<String, SysAnswer>, StoreError> {
    let rows: Vec<(String, Option<String>, Option<Value>)> =
        sqlx::query_as(SYS_SQL).bind(moves_on).bind(fails).fetch_all(&mut **tx).await?;
    Ok(rows.into_iter().map(|(t, slug, provider)| (t, SysAnswer { slug, provider })).collect())
}

/// Apply a proposal inside the preview's transaction (rolled back after).
async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: &str,
    proposal: &Proposal,
) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config('keyfall.actor', $1, true)").bind(actor).execute(&mut **tx).await?;
    for proposal in proposal.singles() {
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
            refuse_several(tx, *account_id, integration_type).await?;
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
            refuse_several(tx, *account_id, integration_type).await?;
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

/// A change to a pair with several rows (an app table without a unique
/// (account, type) constraint) is refused as the real write is (issue 19).
async fn refuse_several(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    account_id: i64,
    integration_type: &str,
) -> Result<(), StoreError> {
    let (slug, ids): (Option<String>, Option<Vec<i64>>) = sqlx::query_as(
        "SELECT (SELECT slug FROM accounts WHERE id = $1),
                (SELECT array_agg(id ORDER BY id) FROM integration_settings WHERE account_id = $1 AND integration_type = $2)",
    )
    .bind(account_id)
    .bind(integration_type)
    .fetch_one(&mut **tx)
    .await?;
    match ids {
        Some(ids) if ids.len() > 1 => {
            Err(super::queries::several_rows(&slug.unwrap_or_else(|| account_id.to_string()), integration_type, &ids))
        }
        _ => Ok(()),
    }
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
