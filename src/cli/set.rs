//! `keyfall set ACCOUNT TYPE FIELD`: change one field as the operator, with
//! the operator's permissions enforced and the version checked. A plain
//! value (a model name, a number) may follow on the command line
//! (`set aws-admin openai model gpt-4o`); a secret is read from stdin or a
//! hidden prompt only — on the command line `ps` and the shell history keep
//! it, so a key there is refused, never echoed. `--dry-run` previews the
//! edit and its impact.

use std::io::IsTerminal;

use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::domain::Setting;
use crate::domain::change::Proposal;
use crate::domain::permissions::Action;
use crate::domain::registry::{self, FieldKind};
use crate::domain::secret::{Secret, is_secret_field, is_secret_value, mask_config, shape_masked};
use crate::domain::text::{visible, visible_short};
use crate::store::{SettingRef, Store, WriteOutcome};

use super::{CliError, CliResult, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, by slug (any case when only one matches).
    pub account: String,
    /// The integration type.
    #[arg(value_name = "TYPE", value_parser = super::type_parser())]
    pub integration_type: String,
    /// A config field (e.g. apiKey, model, provider), or `is_active`.
    pub field: String,
    /// The new value of a plain field (a model name, a number, true/false);
    /// without it, stdin or a prompt. Never a key: keys come from stdin or
    /// the hidden prompt only.
    #[arg(value_name = "VALUE")]
    pub value: Option<String>,
    /// Remove the field instead of setting it (nothing is read).
    #[arg(long)]
    pub unset: bool,
    /// Fail with a conflict unless the stored version is this one.
    #[arg(long, value_name = "N")]
    pub expect_version: Option<i64>,
    /// Show what the edit changes (field before → after, keys as
    /// fingerprints) and its impact, and write nothing. The database still
    /// checks the operator's right, as for the real write.
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable output: the outcome (with the new version), or with
    /// `--dry-run` the changes and the impact.
    #[arg(long)]
    pub json: bool,
}

/// Known types only for writes; unknown ones are for reading.
pub fn check_type(integration_type: &str) -> Result<(), CliError> {
    if registry::spec(integration_type).is_some() {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "unknown integration type {:?}{} (known: {})",
        visible_short(integration_type, 60),
        super::suggest::did_you_mean(integration_type, registry::type_names()),
        registry::type_names().collect::<Vec<_>>().join(", ")
    )))
}

/// The parsed new value of the field.
enum NewValue {
    Field(Value),
    Active(bool),
    Unset,
}

pub async fn run(store: &Store, config: &Config, args: Args) -> CliResult {
    check_type(&args.integration_type)?;
    let spec = registry::spec(&args.integration_type).expect("checked above");
    if args.field.is_empty() || args.field.chars().any(char::is_control) {
        return Err(CliError::Usage("field name must be non-empty text without control characters".into()));
    }
    let operator = config.operator.as_deref().ok_or_else(|| {
        CliError::Usage("set needs an operator: --as EMAIL (or `operator` in the config file)".into())
    })?;
    authorize(store, operator, &args.account).await?;
    // The slug as stored (`AWS-Admin` names aws-admin): the write looks it
    // up as given.
    let mut args = args;
    if let Some(account) = store.account(&args.account).await? {
        args.account = account.slug;
    }

    // A field the type does not know but one it knows is a typo away
    // from ("modle") is refused: it would be stored beside the real one.
    if args.field != "is_active" && spec.field(&args.field).is_none() {
        let hint = super::suggest::did_you_mean(&args.field, spec.fields.iter().map(|f| f.name));
        if !hint.is_empty() {
            return Err(CliError::Usage(format!(
                "unknown field {:?} for {}{hint}",
                visible_short(&args.field, 60),
                spec.name
            )));
        }
    }
    let field_kind = spec.field(&args.field).map(|f| f.kind);
    let secret = field_kind == Some(FieldKind::Secret) || is_secret_field(&args.field);
    let new = if args.unset {
        if args.value.is_some() {
            return Err(CliError::Usage("--unset takes no value".into()));
        }
        if args.field == "is_active" {
            return Err(CliError::Usage("is_active cannot be unset; set it to true or false".into()));
        }
        NewValue::Unset
    } else {
        let raw = match &args.value {
            Some(value) => argv_value(&args, secret, value)?,
            None => read_value(&args.field, secret)?,
        };
        parse_value(&args.field, field_kind, secret, &raw, spec.key_prefix)?
    };

    // A stored config that is not an object (or that could not be read) is
    // never silently replaced: that would lose whatever it holds.
    let stored = store.setting(&args.account, &args.integration_type).await?;
    if let Some(s) = &stored.setting
        && !s.config.is_object()
    {
        return Err(CliError::Usage(format!(
            "{} {}: the stored config is {}, not an object; refusing to overwrite it (see `keyfall get`)",
            visible(&args.account),
            args.integration_type,
            crate::domain::registry::json_kind(&s.config)
        )));
    }
    if args.dry_run {
        return dry_run(store, &args, stored, &new).await;
    }
    // Without --expect-version the field is applied to whatever is stored
    // at commit (the store locks the row): concurrent sets never conflict.
    let expected = args.expect_version;
    let field = args.field.clone();
    let outcome = store
        .write_setting(operator, &args.account, &args.integration_type, expected, |current| {
            edited(current, &field, &new)
        })
        .await?;
    let shown_field = visible(&args.field);
    let (word, s) = match &outcome {
        WriteOutcome::Created(s) => ("created", s),
        WriteOutcome::Updated(s) => ("saved", s),
        WriteOutcome::Unchanged(s) => ("unchanged", s),
    };
    let value = match s.config.get(args.field.as_str()) {
        _ if args.field == "is_active" => s.is_active.to_string(),
        None => "(unset)".to_string(),
        Some(Value::String(v)) if secret => Secret::new(v.clone()).masked(),
        Some(v) if secret => Secret::new(v.to_string()).masked(),
        // A value stored before (unchanged) is shown masked by shape too.
        Some(Value::String(v)) => visible_short(&shape_masked(v), 120),
        Some(v) => visible_short(&mask_config(v).to_string(), 120),
    };
    if args.json {
        // The stored value as JSON; a key as its mask, never itself.
        let stored = match s.config.get(args.field.as_str()) {
            _ if args.field == "is_active" => Value::Bool(s.is_active),
            Some(_) if secret => Value::String(value),
            Some(v) => mask_config(v),
            None => Value::Null,
        };
        super::print_json(&json!({
            "account": args.account,
            "integration_type": args.integration_type,
            "field": args.field,
            "outcome": word,
            "value": stored,
            "is_active": s.is_active,
            "version": s.version,
            "operator": operator,
        }))?;
        return Ok(Exit::Ok);
    }
    outln!(
        "{word} {} {} {shown_field} = {value} (v{}, as {})",
        visible(&args.account),
        args.integration_type,
        s.version,
        visible(operator)
    );
    Ok(Exit::Ok)
}

/// The setting after the edit: (config, is_active).
fn edited(current: Option<&Setting>, field: &str, new: &NewValue) -> (Value, bool) {
    let mut map = match current.map(|s| &s.config) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let mut is_active = current.map(|s| s.is_active).unwrap_or(true);
    match new {
        NewValue::Field(v) => {
            map.insert(field.to_string(), v.clone());
        }
        NewValue::Active(a) => is_active = *a,
        NewValue::Unset => {
            map.remove(field);
        }
    }
    (Value::Object(map), is_active)
}

/// `set --dry-run`: the field's change as the diff of the setting (keys as
/// fingerprints), then the impact — scoped to the accounts the edit can
/// move — computed by writing as the operator in a transaction that is
/// rolled back, so the database checks the right as for the real write.
async fn dry_run(store: &Store, args: &Args, stored: SettingRef, new: &NewValue) -> CliResult {
    use crate::domain::secret::fingerprint_config;
    let current = stored.setting.as_ref();
    if let (Some(expected), Some(s)) = (args.expect_version, current)
        && s.version != expected
    {
        return Err(CliError::Negative(format!(
            "conflict: {} {} is at v{}, not v{expected} (nothing written)",
            visible(&args.account),
            args.integration_type,
            s.version
        )));
    }
    let (config, is_active) = edited(current, &args.field, new);
    let before = current.map(|s| json!({"config": fingerprint_config(&s.config), "is_active": s.is_active}));
    let after = json!({"config": fingerprint_config(&config), "is_active": is_active});
    if args.json {
        let changes = crate::domain::diff::changes(before.as_ref(), Some(&after));
        let impact = store
            .impact(&Proposal::Setting {
                account_id: stored.account.id,
                integration_type: args.integration_type.clone(),
                config,
                is_active,
            })
            .await?;
        super::print_json(&json!({
            "account": args.account,
            "integration_type": args.integration_type,
            "field": args.field,
            "dry_run": true,
            "version": current.map(|s| s.version),
            "changes": changes,
            "impact": impact,
        }))?;
        return Ok(Exit::Ok);
    }
    outln!(
        "{} {}{} (dry run):",
        visible(&args.account),
        args.integration_type,
        match current {
            None => " (new)".to_string(),
            Some(s) => format!(" v{}", s.version),
        }
    );
    let changes = super::changes_text(before.as_ref(), Some(&after));
    if changes.is_empty() {
        outln!("{}", crate::preview::no_change().text());
    }
    out!("{changes}");
    if super::out::closed() {
        // `set --dry-run … | head -1`: nobody reads the impact.
        return Ok(Exit::Ok);
    }
    let proposal = Proposal::Setting {
        account_id: stored.account.id,
        integration_type: args.integration_type.clone(),
        config,
        is_active,
    };
    out!("{}", super::admin::render_impact(&store.impact(&proposal).await?));
    outln!("not applied (dry run)");
    Ok(Exit::Ok)
}

/// The operator must exist and be allowed `modify_settings` on this account
/// under the policy in force — the same rule the console enforces.
pub async fn authorize(store: &Store, operator: &str, slug: &str) -> Result<(), CliError> {
    authorize_action(store, operator, slug, Action::ModifySettings).await
}

/// The operator must exist and be allowed `action` on this account.
pub async fn authorize_action(store: &Store, operator: &str, slug: &str, action: Action) -> Result<(), CliError> {
    let data = store.subject(Some(operator), None).await?;
    let user = data.user.clone().ok_or_else(|| {
        CliError::Usage(format!("unknown operator {:?} (--as must name a keyfall user)", visible_short(operator, 80)))
    })?;
    let account = store.account(slug).await?.ok_or_else(|| super::unknown_account(slug))?;
    let permissions = super::can::evaluate(&data, &user, Some(&account), data.policy);
    let decision = &permissions.actions[action.as_str()];
    if decision.allowed {
        return Ok(());
    }
    let failing: Vec<String> = decision.failing().map(|c| format!("{} ({})", c.name, c.reason)).collect();
    // A denial is exit 4 on every path, whoever checks it.
    Err(CliError::Store(crate::store::StoreError::Refused(format!(
        "denied: {} may not {} {}'s settings under policy {}: {}",
        visible(operator),
        match action {
            Action::ModifySettings => "modify",
            Action::ViewSettings => "view",
            Action::TestConnection => "test the connection of",
            Action::TaskProgress => "see task progress of",
        },
        visible(slug),
        data.policy.as_str(),
        failing.join("; ")
    ))))
}

/// A value given on the command line: a plain one is taken; a secret field's
/// value, or anything shaped like a key, is refused without quoting it —
/// the shell history already holds it.
fn argv_value(args: &Args, secret: bool, value: &str) -> Result<String, CliError> {
    let keyish = is_secret_value(value) || is_secret_value(&crate::domain::secret::clean_pasted_secret(value).0);
    if secret || keyish {
        let what = if secret {
            format!("{} is a secret field", visible(&args.field))
        } else {
            "the value is shaped like a key or token".to_string()
        };
        return Err(CliError::Usage(format!(
            "{what}: secrets are never taken from the command line, and this one is now in your shell history (remove \
             it there; rotate the key if others can read it). Nothing written; set it with `keyfall set {} {} {}` and \
             paste it at the hidden prompt, or pipe it on stdin",
            visible_short(&args.account, 60),
            args.integration_type,
            if secret {
                visible_short(&args.field, 40)
            } else {
                registry::spec(&args.integration_type)
                    .and_then(|s| s.fields.iter().find(|f| f.kind == FieldKind::Secret))
                    .map_or("apiKey", |f| f.name)
                    .to_string()
            }
        )));
    }
    Ok(value.to_string())
}

fn read_value(field: &str, secret: bool) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let prompt = format!("{} (input hidden: {}): ", visible(field), if secret { "yes" } else { "no" });
        if secret {
            return rpassword::prompt_password(prompt)
                .map_err(|e| CliError::Usage(format!("cannot read the value: {e}")));
        }
        eprint!("{prompt}");
        let mut line = String::new();
        stdin.read_line(&mut line).map_err(|e| CliError::Usage(format!("cannot read the value: {e}")))?;
        return Ok(line);
    }
    // Refused, never cut: more than the limit, more than one line, or bytes
    // that are not UTF-8 write nothing (and the value is never echoed).
    let text = super::input::stdin_whole(&format!("{}: the value", visible(field)))?;
    let lines = text.trim_end_matches(['\n', '\r']).split('\n').filter(|l| !l.trim().is_empty()).count();
    if lines > 1 {
        return Err(CliError::Usage(format!(
            "{}: stdin holds {lines} lines, one value is one line; nothing written",
            visible(field)
        )));
    }
    Ok(text)
}

fn parse_value(
    field: &str,
    kind: Option<FieldKind>,
    secret: bool,
    raw: &str,
    key_prefix: Option<&str>,
) -> Result<NewValue, CliError> {
    if secret {
        let (key, trimmed) = crate::domain::secret::clean_pasted_secret(raw);
        if !trimmed.is_empty() {
            eprintln!("keyfall: trimmed {} from the pasted value", trimmed.join(" and "));
        }
        if key.is_empty() {
            return Err(CliError::Usage(format!("{}: empty value (use --unset to remove it)", visible(field))));
        }
        if key.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'') {
            eprintln!("keyfall: warning: the key contains whitespace or quotes inside it (lint L008)");
        }
        if let Some(prefix) = key_prefix
            && !key.starts_with(prefix)
        {
            eprintln!("keyfall: warning: this provider's keys usually start with {prefix:?}");
        }
        let masked = Secret::new(key.clone()).masked();
        eprintln!("keyfall: new {}: {masked}", visible(field));
        return Ok(NewValue::Field(Value::String(key)));
    }
    // A key pasted into the wrong field would be stored, shown and audited
    // in clear: refused, and never quoted (nor anything else rejected).
    // Judged as given and as it would be stored (a key pasted in quotes).
    // Every shape `is_secret_value` knows: keys, JWTs, URLs and connection
    // strings with credentials, JSON text holding a key.
    if is_secret_value(raw) || is_secret_value(&crate::domain::secret::clean_pasted_secret(raw).0) {
        return Err(CliError::Usage(format!(
            "{}: the value is shaped like a key or token, and {} is not a secret field; refusing to store it in clear \
             (a key goes in the secret field, e.g. apiKey)",
            visible(field),
            visible(field)
        )));
    }
    // The same cleaning as a key's, reported the same way: a model pasted
    // as "gpt-4o" is stored as gpt-4o.
    let (value, trimmed) = crate::domain::secret::clean_pasted_secret(raw);
    if !trimmed.is_empty() {
        eprintln!("keyfall: trimmed {} from the value", trimmed.join(" and "));
    }
    let value = value.as_str();
    if value.is_empty() {
        return Err(CliError::Usage(format!("{}: empty value (use --unset to remove it)", visible(field))));
    }
    if field == "is_active" {
        return match value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(NewValue::Active(true)),
            "false" | "no" | "off" | "0" => Ok(NewValue::Active(false)),
            _ => Err(CliError::Usage("is_active takes true or false".into())),
        };
    }
    let value = value.trim();
    // Errors say what is wrong, never what was given.
    let bad = |what: String| CliError::Usage(format!("{}: {what}", visible(field)));
    Ok(NewValue::Field(match kind {
        Some(FieldKind::Number { min, max }) => {
            let n: f64 = value.parse().map_err(|_| bad("not a number".into()))?;
            if !(min..=max).contains(&n) {
                return Err(bad(format!("outside {min}–{max}")));
            }
            serde_json::Number::from_f64(n).map(Value::Number).ok_or_else(|| bad("not a finite number".into()))?
        }
        Some(FieldKind::Integer { min }) => {
            let n: i64 = value.parse().map_err(|_| bad("not a whole number".into()))?;
            if n < min {
                return Err(bad(format!("below {min}")));
            }
            Value::from(n)
        }
        Some(FieldKind::ProviderRef) => {
            if !registry::provider_names().any(|p| p == value) {
                return Err(bad(format!(
                    "not a provider type (one of {})",
                    registry::provider_names().collect::<Vec<_>>().join(", ")
                )));
            }
            Value::String(value.to_string())
        }
        _ => Value::String(value.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use crate::domain::secret::clean_pasted_secret;

    #[test]
    fn paste_cleaning_reports_what_it_removed() {
        assert_eq!(clean_pasted_secret("sk-abc\n"), ("sk-abc".to_string(), vec!["a line break"]));
        assert_eq!(clean_pasted_secret("  sk-abc  "), ("sk-abc".to_string(), vec!["surrounding whitespace"]));
        assert_eq!(clean_pasted_secret("\"sk-abc\"\n").0, "sk-abc");
        assert_eq!(clean_pasted_secret("sk-abc"), ("sk-abc".to_string(), vec![]));
    }
}
