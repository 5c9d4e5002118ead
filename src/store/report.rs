//! DESIGN §2 set-based: who answers every account × integration type (the
//! fallback report), and the impact preview of a proposed change.
//!
//! One SQL walk (`walk!`, below) answers for the report, `resolve --batch`
//! (`store::answers`) and the impact preview. The report is one query,
//! streamed in its final order (system accounts in chain order, then
//! tenants by slug as bytes): each account's own rows are looked up by
//! index, the system chain's stop per type is computed once
//! (`chain_stops!`), and only a consumer's answer takes the second hop,
//! again from the same account. Row verdicts come from
//! `keyfall.row_verdicts` (kept by the audit trigger), so no query judges
//! 250,000 configs.
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
//! Report parameters: $1 the verdicts that move the walk on and $2 those
//! that fail it (the `[resolution]` rule set), $3 the types reported, $4 the
//! consumer types, $5 the account ids reported (NULL: all).

use std::collections::{HashMap, HashSet};

use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::change::{Answer, ImpactRow, Proposal};
use crate::domain::registry;

// ---------------------------------------------------------------------------
// The walk, written once. The report, `resolve --batch` and the impact
// preview all answer with `walk!`: its CTEs `walk_first` (the first stop),
// `walk_named` (the provider a consumer names and the type it hops to),
// `walk_second` (the second stop) and `walk` (who answers, the provider's
// answerer, where the app raises). The caller writes, before it:
// - `judged` (`judged!()`): every row's stored verdict, whether it stops
//   the walk and whether stopping there fails ($1 the verdicts that move
//   the walk on, $2 those that fail it — the `[resolution]` rule set);
// - `walk_accounts` (id, slug, …: the accounts asked about, in order);
// - `walk_types` (t, consumer: the types asked about);
// - `walk_sys_W` for each world W (t, at, verdict, fails, provider): the
//   chain's stop per type in that world (`chain_stops!()`). The report and
//   the batch have one world (`n`, now); the impact preview two (`b`
//   before the change and `a` after), read before and after it applies the
//   change in its rolled-back transaction, and walks both in one pass.
// A world's columns are prefixed with its name: `W_answered_by`,
// `W_provider`, `W_provider_answered_by`, `W_answer_verdict`, `W_raise_at`,
// `W_raise_type`, `W_raise_verdict`, `W_hop`, and `W1_own`/`W2_own` (the
// stop was the account's own row, not the chain's).

/// Every row's stored verdict (`keyfall.row_verdicts`, kept by the audit
/// trigger, so no query judges 250,000 configs): whether it stops the walk
/// and whether stopping there is the app failing.
macro_rules! judged {
    () => {
        r#"judged AS NOT MATERIALIZED (
    SELECT r.account_id, r.integration_type, r.provider, r.verdict,
           r.verdict <> ALL($1::text[]) AS stops, r.verdict = ANY($2::text[]) AS fails
      FROM row_verdicts r
)"#
    };
}

/// Per type, the system chain's stop: the first chain account whose row
/// stops the walk, with that row — it answers, or (a verdict the rules
/// make fail) the app raises there. $1 and $2 as in `judged!`.
macro_rules! chain_stops {
    () => {
        r#"SELECT DISTINCT ON (r.integration_type) r.integration_type AS t, a.slug AS at, r.verdict,
       r.verdict = ANY($2::text[]) AS fails, r.provider
  FROM fallback_chain c JOIN accounts a ON a.slug = c.account_slug
  JOIN row_verdicts r ON r.account_id = a.id
 WHERE r.verdict <> ALL($1::text[])
 ORDER BY r.integration_type, c.position"#
    };
}

/// One stop of world `$w`, hop `$hop`: the account's own row where it
/// stops (alias `$own`, found or not), else the chain's (its columns
/// `$cs`at, `$cs`verdict, …).
macro_rules! stop {
    ($w:literal, $hop:literal, [$($own:literal),+], [$($cs:literal),+], $slug:literal) => {
        concat!(
            "CASE WHEN ", $($own,)+ ".verdict IS NOT NULL THEN ", $slug, " ELSE ", $($cs,)+ "at END AS ", $w, $hop, "_at, ",
            "COALESCE(", $($own,)+ ".verdict, ", $($cs,)+ "verdict) AS ", $w, $hop, "_verdict, ",
            "COALESCE(", $($own,)+ ".fails, ", $($cs,)+ "fails) AS ", $w, $hop, "_fails, ",
            "CASE WHEN ", $($own,)+ ".verdict IS NOT NULL THEN ", $($own,)+ ".provider ELSE ", $($cs,)+ "provider END AS ", $w, $hop, "_provider, ",
            $($own,)+ ".verdict IS NOT NULL AS ", $w, $hop, "_own"
        )
    };
}

/// The walk (see above). `$order`: the ORDER BY its rows keep ("" for none).
macro_rules! walk {
    ($order:literal; $($w:literal),+) => {
        concat!(
            r#"walk_typed AS MATERIALIZED (
    -- The types asked about, with the chain's stop for each: a few rows."#,
            "\n    SELECT ty.t, ty.consumer",
            $(
                ", ", $w, "_c1.at AS ", $w, "_c1_at, ", $w, "_c1.verdict AS ", $w, "_c1_verdict, ",
                $w, "_c1.fails AS ", $w, "_c1_fails, ", $w, "_c1.provider AS ", $w, "_c1_provider",
            )+
            "\n      FROM walk_types ty",
            $("\n      LEFT JOIN walk_sys_", $w, " ", $w, "_c1 ON ", $w, "_c1.t = ty.t",)+
            r#"
), walk_first AS (
    -- The first stop: the account's own row where it stops, whatever the
    -- account (the app's get_model_config), else the chain's. One index
    -- probe per account for its own rows.
    SELECT a.*, x.*
      FROM walk_accounts a
     CROSS JOIN LATERAL (
        SELECT ty.t, ty.consumer"#,
            $(", ", stop!($w, "1", ["o1"], ["ty.", $w, "_c1_"], "a.slug"),)+
            r#"
          FROM walk_typed ty
          LEFT JOIN (SELECT * FROM judged j WHERE j.account_id = a.id) o1 ON o1.integration_type = ty.t AND o1.stops
        OFFSET 0
     ) x
), walk_named AS (
    -- A consumer that answers names a provider: the type of its second hop
    -- when it is a non-empty string (any other JSON names no type the app
    -- could find), shown as text, "(no provider)" when falsy."#,
            "\n    SELECT f.*",
            $(
                ",\n           CASE WHEN f.", $w, "1_fails IS FALSE AND f.consumer AND jsonb_typeof(f.", $w, "1_provider) = 'string'",
                " AND f.", $w, "1_provider <> '\"\"'::jsonb THEN f.", $w, "1_provider #>> '{}' END AS ", $w, "_hop",
                ",\n           CASE WHEN f.", $w, "1_fails IS FALSE AND f.consumer THEN",
                " CASE WHEN NOT keyfall_py_truthy(f.", $w, "1_provider) THEN '(no provider)'",
                " WHEN jsonb_typeof(f.", $w, "1_provider) = 'string' THEN f.", $w, "1_provider #>> '{}'",
                " ELSE f.", $w, "1_provider::text END END AS ", $w, "_provider",
            )+
            "\n      FROM walk_first f\n     ", $order, "\n    OFFSET 0\n), walk_second AS (",
            "\n    -- The second stop, from the same account: only consumers hop (an",
            "\n    -- index probe for those, nothing for the rest).",
            "\n    SELECT n.*",
            $(", ", stop!($w, "2", [$w, "_o2"], [$w, "_c2."], "n.slug"),)+
            "\n      FROM walk_named n",
            $(
                "\n      LEFT JOIN LATERAL (SELECT x.verdict, x.fails, x.provider FROM judged x",
                " WHERE n.", $w, "_hop IS NOT NULL AND x.account_id = n.id AND x.integration_type = n.", $w, "_hop AND x.stops",
                " OFFSET 0) ", $w, "_o2 ON true",
                "\n      LEFT JOIN LATERAL (SELECT * FROM walk_sys_", $w, " s WHERE n.", $w, "_hop IS NOT NULL AND s.t = n.", $w, "_hop",
                " OFFSET 0) ", $w, "_c2 ON true",
            )+
            "\n), walk AS (",
            "\n    -- Who answers (NULL where nothing does or the app raises), the",
            "\n    -- provider's answerer, and where the app raises: the first stop's",
            "\n    -- row if it fails, else the second's.",
            "\n    SELECT s.*",
            $(
                ",\n           CASE WHEN s.", $w, "1_fails IS FALSE THEN s.", $w, "1_at END AS ", $w, "_answered_by",
                ",\n           CASE WHEN s.", $w, "1_fails IS FALSE THEN s.", $w, "1_verdict END AS ", $w, "_answer_verdict",
                ",\n           CASE WHEN s.", $w, "2_fails IS FALSE THEN s.", $w, "2_at END AS ", $w, "_provider_answered_by",
                ",\n           CASE WHEN s.", $w, "1_fails THEN s.", $w, "1_at WHEN s.", $w, "2_fails THEN s.", $w, "2_at END AS ", $w, "_raise_at",
                ",\n           CASE WHEN s.", $w, "1_fails THEN s.t WHEN s.", $w, "2_fails THEN s.", $w, "_hop END AS ", $w, "_raise_type",
                ",\n           CASE WHEN s.", $w, "1_fails THEN s.", $w, "1_verdict WHEN s.", $w, "2_fails THEN s.", $w, "2_verdict END AS ", $w, "_raise_verdict",
            )+
            "\n      FROM walk_second s\n)\n"
        )
    };
}

/// The report over the accounts of `$accounts` (a table or CTE with id and
/// slug), in the report's order (system accounts in chain order, then the
/// rest by slug as bytes; types within an account are put in order by the
/// reader). $3 the types reported, $4 the consumer types, $5 the account
/// ids reported (NULL: all).
macro_rules! report_sql {
    ($accounts:literal) => {
        concat!(
            judged!(),
            ", walk_sys_n AS MATERIALIZED (\n",
            chain_stops!(),
            r#"
), sys AS MATERIALIZED (
    SELECT c.position, a.id FROM fallback_chain c JOIN accounts a ON a.slug = c.account_slug
), walk_types AS MATERIALIZED (
    SELECT types.t, types.t = ANY($4::text[]) AS consumer FROM unnest($3::text[]) AS types(t)
), walk_accounts AS (
    -- In the report's order, so the rows below come out in it (no sort of
    -- every row: the joins of the walk keep this order).
    SELECT a.id, a.slug, sys.position AS chain_position
      FROM "#,
            $accounts,
            r#" a
      LEFT JOIN sys ON sys.id = a.id
     WHERE ($5::bigint[] IS NULL OR a.id = ANY($5::bigint[]) OR a.id IS NULL)
     ORDER BY sys.position, a.slug COLLATE "C"
), "#,
            walk!(r#"ORDER BY f.chain_position, f.slug COLLATE "C""#; "n"),
            r#"SELECT w.slug AS account, w.id AS account_id, w.chain_position, w.t AS integration_type, w.n_answered_by,
       w.n_provider, w.n_provider_answered_by, w.n_answer_verdict, w.n_raise_at, w.n_raise_type, w.n_raise_verdict
  FROM walk w
 ORDER BY w.chain_position, w.slug COLLATE "C"
"#
        )
    };
}

/// Every account, in the report's order.
const REPORT_SQL: &str = concat!("WITH ", report_sql!("accounts"));

/// The report for some accounts only (and, as '' with no id, for users
/// without an account): the scoped report (`report_for`), `resolve
/// --batch`, and the impact preview's accounts whose own rows change.
const BATCH_SQL: &str = concat!(
    "WITH every_account AS (SELECT id, slug FROM accounts WHERE id = ANY($5::bigint[]) UNION ALL SELECT NULL::bigint, ''), ",
    report_sql!("every_account")
);

/// Per type, the system chain's stop (the walk's `walk_sys_W`). $1 the
/// verdicts that move on, $2 those that fail.
const SYS_SQL: &str = chain_stops!();

/// The impact on every account whose own rows the change leaves as they
/// are, grouped: the walk in two worlds, before ($7, the chain's stops
/// before the change) and after ($8), in one pass. Such an account answers
/// from its own row where that stops the walk ("(own)"), else from the
/// chain's. Only accounts without a stopping row of a type in $6 (those
/// whose chain answer changed or was renewed) can move; $5 the accounts
/// looked at one by one (left out here); $3 the types evaluated (those of
/// $6 and the consumers, which may hop into them); $4 the consumer types;
/// $9 the types whose chain answer stays at the same account while that
/// account's row changes content (`renewed`); $1/$2 the rule set.
const PLAIN_SQL: &str = concat!(
    "WITH ",
    judged!(),
    r#", walk_sys_b AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($7::text::jsonb) AS x(t text, at text, verdict text, fails boolean, provider jsonb)
), walk_sys_a AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($8::text::jsonb) AS x(t text, at text, verdict text, fails boolean, provider jsonb)
), walk_types AS MATERIALIZED (
    SELECT ty.t, ty.t = ANY($4::text[]) AS consumer FROM unnest($3::text[]) AS ty(t)
), walk_accounts AS MATERIALIZED (
    -- Those without a stopping row of some type of $6: every account but
    -- those with one of each (one pass over the rows of those types, one
    -- hash lookup per account; a pair has one verdict row, as the walk
    -- itself assumes).
    SELECT a.id, a.slug
      FROM accounts a
     WHERE a.id <> ALL($5::bigint[])
       AND a.id NOT IN (SELECT j.account_id FROM judged j
                         WHERE j.integration_type = ANY($6::text[]) AND j.stops
                         GROUP BY j.account_id
                        HAVING count(*) = cardinality($6::text[]))
), "#,
    walk!(""; "b", "a"),
    r#", answered AS (
    SELECT w.id, w.slug, w.t,
           CASE WHEN w.b1_own AND w.b_answered_by IS NOT NULL THEN '(own)' ELSE w.b_answered_by END AS b_by,
           w.b_provider,
           CASE WHEN w.b2_own AND w.b_provider_answered_by IS NOT NULL THEN '(own)' ELSE w.b_provider_answered_by END AS b_pby,
           CASE WHEN w.a1_own AND w.a_answered_by IS NOT NULL THEN '(own)' ELSE w.a_answered_by END AS a_by,
           w.a_provider,
           CASE WHEN w.a2_own AND w.a_provider_answered_by IS NOT NULL THEN '(own)' ELSE w.a_provider_answered_by END AS a_pby,
           -- Answering (after) from the chain's row of a renewed type.
           w.a_answered_by IS NOT NULL
           AND ((NOT w.a1_own AND w.t = ANY($9::text[]))
                OR (w.a_hop IS NOT NULL AND NOT w.a2_own AND w.a_hop = ANY($9::text[]))) AS renewed
      FROM walk w
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
"#
);

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

/// The chain's stop for one type (`chain_stops!`): the chain account and
/// its row, answering or (`fails`) where the app raises.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct SysAnswer {
    at: Option<String>,
    verdict: Option<String>,
    fails: Option<bool>,
    provider: Option<Value>,
}

impl SysAnswer {
    /// What the impact compares: the answering account (`None` where
    /// nobody answers or the app raises) and the provider reference it names.
    fn answer(&self) -> (Option<&str>, Option<&Value>) {
        match self.fails {
            Some(false) => (self.at.as_deref(), self.provider.as_ref()),
            _ => (None, None),
        }
    }
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
                .bind(self.rules.moves_on_names())
                .bind(self.rules.fails_names())
                .bind(&types)
                .bind(consumers())
                .bind(None::<Vec<i64>>)
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
        self.walk_for(tx, account_ids, types).await
    }

    /// The walk for these accounts and the stand-in of users without one
    /// (`account` '', no id), on `conn` (a transaction or a snapshot).
    pub(super) async fn walk_for(
        &self,
        conn: &mut sqlx::PgConnection,
        account_ids: &[i64],
        types: &[String],
    ) -> Result<Vec<ReportRow>, StoreError> {
        let rows = sqlx::query(BATCH_SQL)
            .bind(self.rules.moves_on_names())
            .bind(self.rules.fails_names())
            .bind(types)
            .bind(consumers())
            .bind(account_ids)
            .fetch_all(conn)
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
        let mut changed_types: Vec<String> = Vec::new();
        let mut renewed_types: Vec<String> = Vec::new();
        for t in sys_types {
            let (b, a) =
                (sys_before.get(t).cloned().unwrap_or_default(), sys_after.get(t).cloned().unwrap_or_default());
            let (b, a) = (b.answer(), a.answer());
            let renewed_here =
                b.0.is_some() && b.0 == a.0 && renewed.contains(&(b.0.unwrap_or_default().to_string(), t.clone()));
            if b != a || renewed_here {
                changed_types.push(t.clone());
            }
            if renewed_here {
                renewed_types.push(t.clone());
            }
        }
        if !changed_types.is_empty() {
            let consumer_types = consumers();
            let mut evaluated = changed_types.clone();
            evaluated.extend(consumer_types.iter().filter(|c| !changed_types.contains(c)).cloned());
            let rows = sqlx::query(PLAIN_SQL)
                .bind(&moves_on)
                .bind(&fails)
                .bind(&evaluated)
                .bind(&consumer_types)
                .bind(&special)
                .bind(&changed_types)
                .bind(sys_rows(&sys_before))
                .bind(sys_rows(&sys_after))
                .bind(&renewed_types)
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

/// The chain's stop per type, as the walk's `walk_sys_W` reads it.
async fn sys_answers(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    moves_on: &[&str],
    fails: &[&str],
) -> Result<HashMap<String, SysAnswer>, StoreError> {
    let rows = sqlx::query(SYS_SQL).bind(moves_on).bind(fails).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| {
            let answer = SysAnswer {
                at: r.try_get("at")?,
                verdict: r.try_get("verdict")?,
                fails: r.try_get("fails")?,
                provider: r.try_get("provider")?,
            };
            Ok((r.try_get::<String, _>("t")?, answer))
        })
        .collect::<Result<HashMap<_, _>, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// The chain's stops of one world as the walk's `walk_sys_W` (JSON rows).
fn sys_rows(sys: &HashMap<String, SysAnswer>) -> String {
    let rows: Vec<Value> = sys
        .iter()
        .map(|(t, s)| {
            serde_json::json!({ "t": t, "at": s.at, "verdict": s.verdict, "fails": s.fails, "provider": s.provider })
        })
        .collect();
    Value::Array(rows).to_string()
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
