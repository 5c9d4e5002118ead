//! `keyfall get`: one account's own setting of one type, secrets masked; when
//! it has none, which account it inherits from.

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use crate::domain::registry;
use crate::domain::resolve;
use crate::domain::secret::mask_config;
use crate::domain::text::{visible, visible_short};
use crate::store::Store;

use super::{CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, by slug (any case when only one matches).
    pub account: String,
    /// The integration type (openai, runware, image_generation, …).
    #[arg(value_name = "TYPE")]
    pub integration_type: String,
    /// Machine-readable output (see docs/json/get.schema.json).
    #[arg(long)]
    pub json: bool,
    /// The setting as it was at WHEN (ISO time, `3 days ago`, `yesterday
    /// 14:00`, or `#812`), from keyfall's history: keys as fingerprints.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

#[derive(Serialize)]
struct View {
    account: String,
    integration_type: String,
    own: bool,
    is_active: Option<bool>,
    /// The token `set --expect-version` takes: the app's version column,
    /// or (`version_token`) the row's xmin, which is no count.
    version: Option<i64>,
    version_token: Option<bool>,
    /// The app's `updated_at`, else the last audited change; null when
    /// neither is known.
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
    updated_by: Option<String>,
    config: Option<Value>,
    /// When the account has no own setting: who answers in its place.
    inherited_from: Option<String>,
    /// Where the pair has several rows (no unique constraint in the app's
    /// table): which one is shown, the one the app reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    which_row: Option<String>,
    /// Those rows' ids, lowest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    row_ids: Vec<i64>,
}

pub async fn run(store: &Store, args: Args) -> CliResult {
    super::set::check_type(&args.integration_type)?;
    if let Some(at) = args.at.as_deref() {
        return run_at(store, at, &args).await;
    }
    let found = store.setting(&args.account, &args.integration_type).await?;
    if found.setting.as_ref().is_some_and(|s| s.withheld.is_some()) {
        return Err(super::not_shown(store, &found.account).await?);
    }
    let inherited_from = if found.setting.is_none() {
        let data = store.subject(None, None).await?;
        let mut snapshot = data.snapshot;
        snapshot.accounts.insert(found.account.id, found.account.clone());
        resolve::resolve_type(&snapshot, Some(&found.account), &args.integration_type).answered_by
    } else {
        None
    };
    let view = View {
        account: found.account.slug.clone(),
        integration_type: args.integration_type.clone(),
        own: found.setting.is_some(),
        is_active: found.setting.as_ref().map(|s| s.is_active),
        version: found.setting.as_ref().map(|s| s.version),
        version_token: found.setting.as_ref().map(|s| s.version_token),
        updated_at: found.setting.as_ref().and_then(|s| s.updated_at),
        updated_by: found.setting.as_ref().and_then(|s| s.updated_by.clone()),
        config: found.setting.as_ref().map(|s| mask_config(&s.config)),
        inherited_from,
        which_row: (!found.several.is_empty())
            .then(|| resolve::several_rows(&found.account.slug, &args.integration_type, &found.several)),
        row_ids: found.several.clone(),
    };
    if args.json {
        super::print_json(&view)?;
    } else {
        out!("{}", super::out::paint(&render(&view)));
    }
    Ok(Exit::Ok)
}

/// `get --at`: the account's own row then (found by its slug then), or
/// whom it inherited from then.
async fn run_at(store: &Store, at: &str, args: &Args) -> CliResult {
    let slugs = vec![args.account.clone()];
    let past = super::history::past(store, at, None, None, &slugs).await?;
    let Some(account) = past.extra.get(&args.account) else {
        return Err(super::CliError::Usage(format!(
            "no account {:?} at {}",
            visible_short(&args.account, 120),
            past.cut.label()
        )));
    };
    let snapshot = &past.data.snapshot;
    let own = snapshot.settings.get(&(account.id, args.integration_type.clone()));
    if own.is_some_and(|s| s.withheld.is_some() && s.config.is_null()) {
        return Err(super::not_shown(store, account).await?);
    }
    let inherited_from = match own {
        Some(_) => None,
        None => resolve::resolve_type(snapshot, Some(account), &args.integration_type).answered_by,
    };
    let view = View {
        account: account.slug.clone(),
        integration_type: args.integration_type.clone(),
        own: own.is_some(),
        is_active: own.map(|s| s.is_active),
        version: own.map(|s| s.version),
        version_token: own.map(|s| s.version_token),
        updated_at: own.and_then(|s| s.updated_at),
        updated_by: own.and_then(|s| s.updated_by.clone()),
        config: own.map(|s| mask_config(&s.config)),
        inherited_from,
        which_row: snapshot.which_row(account, &args.integration_type),
        row_ids: snapshot.several.get(&(account.id, args.integration_type.clone())).cloned().unwrap_or_default(),
    };
    if args.json {
        super::print_json(&super::history::AsOf::new(&past, &view))?;
    } else {
        out!("{}{}", super::history::header(&past, snapshot.rules.name()), super::out::paint(&render(&view)));
    }
    Ok(Exit::Ok)
}

fn render(v: &View) -> String {
    let mut out = String::new();
    let head = format!("{} · {}", visible(&v.account), visible(&v.integration_type));
    let Some(config) = &v.config else {
        let source = match &v.inherited_from {
            Some(s) => format!("inherits from {}", visible(s)),
            None => "resolves to nothing".to_string(),
        };
        let _ = writeln!(out, "{head} · no own setting · {source}");
        return out;
    };
    let version = match (v.version, v.version_token) {
        (Some(n), Some(true)) => format!(" · row token {n}"),
        (Some(n), _) => format!(" · v{n}"),
        (None, _) => String::new(),
    };
    // What is known of the last change, and nothing made up.
    let when = v.updated_at.map(|t| format!(" {}", t.format("%Y-%m-%d %H:%M:%S UTC")));
    let who = v.updated_by.as_deref().map(|w| format!(" by {}", visible_short(w, 80)));
    let changed = match (when, who) {
        (None, None) => String::new(),
        (when, who) => format!(" · updated{}{}", when.unwrap_or_default(), who.unwrap_or_default()),
    };
    let _ = writeln!(
        out,
        "{head} · own · {}{version}{changed}",
        if v.is_active == Some(true) { "active" } else { "inactive" },
    );
    if let Some(which) = &v.which_row {
        let _ = writeln!(out, "  {}", visible(which));
    }
    let Some(map) = config.as_object() else {
        let _ =
            writeln!(out, "  config is {}: {}", registry::json_kind(config), visible_short(&config.to_string(), 200));
        return out;
    };
    let spec = registry::spec(&v.integration_type);
    // Registry fields first, in registry order; unknown fields after.
    let mut names: Vec<&str> = spec.map(|s| s.fields.iter().map(|f| f.name).collect()).unwrap_or_default();
    names.retain(|n| map.contains_key(*n));
    let mut extra: Vec<&str> = map.keys().map(String::as_str).filter(|k| !names.contains(k)).collect();
    extra.sort();
    let width = names.iter().chain(&extra).map(|n| visible(n).chars().count()).max().unwrap_or(0);
    for name in names.iter().chain(&extra) {
        let value = &map[*name];
        let shown = match value {
            Value::String(s) if s.is_empty() => "\"\" (empty)".to_string(),
            Value::String(s) => visible_short(s, 200),
            other => visible_short(&other.to_string(), 200),
        };
        let unknown = if extra.contains(name) { "   (not in the registry)" } else { "" };
        let _ = writeln!(out, "  {:<width$}  {shown}{unknown}", visible(name));
    }
    out
}
