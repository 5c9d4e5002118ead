//! `--at WHEN` for resolve, can and get (issue 23): the world as it was at
//! a moment, rebuilt from the audit log (`store::history`), run through
//! the same resolver and permission checks as now — today's rules, said so
//! in every answer, with where history begins.

use serde::Serialize;

use crate::domain::history::{self, Cut, Window};
use crate::store::Store;
use crate::store::history::Past;

use super::CliError;

/// The world at `at` for one question (see `Store::past`).
pub async fn past(
    store: &Store,
    at: &str,
    email: Option<&str>,
    function: Option<&str>,
    slugs: &[String],
) -> Result<Past, CliError> {
    let moment = history::parse_moment(at, chrono::Utc::now()).map_err(CliError::Usage)?;
    let cut = store.cut(moment).await?;
    Ok(store.past(cut, email, function, slugs).await?)
}

/// What every `--at` answer says first: the moment, the history it rests
/// on, and that today's rules judged it.
pub fn header(past: &Past, rules: &str) -> String {
    format!(
        "as of {} · {} · judged under today's rules ({})\n",
        past.cut.label(),
        past.window.since(),
        crate::domain::text::visible(rules)
    )
}

/// The JSON twin of [`header`], wrapped around an answer.
#[derive(Serialize)]
pub struct AsOf<'a, T: Serialize> {
    pub as_of: &'a Cut,
    pub history: &'a Window,
    pub rules: &'static str,
    #[serde(flatten)]
    pub answer: T,
}

pub const TODAYS_RULES: &str = "today's";

impl<'a, T: Serialize> AsOf<'a, T> {
    pub fn new(past: &'a Past, answer: T) -> Self {
        AsOf { as_of: &past.cut, history: &past.window, rules: TODAYS_RULES, answer }
    }
}

/// One report row from the resolver's walk (what the report SQL computes
/// set-based now), for `report --at` and `resolve --batch --at`.
pub fn report_row(
    snapshot: &crate::domain::resolve::Snapshot,
    account: Option<&crate::domain::Account>,
    integration_type: &str,
) -> crate::store::ReportRow {
    use crate::domain::registry;
    let hop = crate::domain::resolve::resolve_type(snapshot, account, integration_type);
    // The answering row's own verdict (`bad_fields` answers too).
    let answer_verdict = hop.answered_by.as_ref().and_then(|by| {
        let id = snapshot.chain.iter().find(|e| &e.slug == by).and_then(|e| e.account.as_ref()).map(|a| a.id);
        let id = id.or_else(|| account.filter(|a| &a.slug == by).map(|a| a.id))?;
        let s = snapshot.settings.get(&(id, integration_type.to_string()))?;
        Some(match &s.withheld {
            Some(w) => registry::judge_withheld(integration_type, w).verdict.as_str().to_string(),
            None => registry::judge(integration_type, &s.config, s.is_active).verdict.as_str().to_string(),
        })
    });
    crate::store::ReportRow {
        account: account.map(|a| a.slug.clone()).unwrap_or_default(),
        account_id: account.map(|a| a.id),
        chain_position: account.and_then(|a| crate::domain::model::chain_position(&snapshot.chain, a.id)),
        integration_type: integration_type.to_string(),
        answered_by: hop.answered_by.clone(),
        provider: hop.hop.as_ref().map(|h| h.integration_type.clone()),
        provider_answered_by: hop.hop.as_ref().and_then(|h| h.answered_by.clone()),
        answer_verdict,
        raises: hop.raises(),
    }
}
