//! `keyfall resolve --batch`: many answers per call. Pairs come on stdin as
//! JSON lines (`{"user": …, "function": …}`) or CSV (`user,function`, an
//! optional header); one JSON line goes out per pair, in input order. Each
//! chunk costs two queries in one snapshot: its users, then the walk — the
//! report's own SQL — for its accounts and types (`store::answers`, held
//! equal to the resolver by the property test); a million pairs are a few
//! hundred queries, not a million processes.
//! A pair where the app raises says so in `raises` (its answer fields null),
//! apart from one that nothing answers.
//! Exit: 0 all resolved, 1 some unresolved or raising, 2 some input lines were bad.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use serde_json::{Value, json};

use crate::store::Store;

use super::{CliError, CliResult, Exit};

/// Pairs per set-based round.
const CHUNK: usize = 5_000;

pub async fn run(store: &Store, at: Option<&str>) -> CliResult {
    if let Some(at) = at {
        return run_at(store, at).await;
    }
    let functions: HashMap<String, String> = store.functions().await?.into_iter().collect();
    // One snapshot for the whole run: every chunk sees the same chain and
    // settings.
    let mut snapshot = store.snapshot().await?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut bad, mut unresolved) = (false, false);
    let mut line_no = 0usize;
    loop {
        let mut chunk: Vec<Result<(String, String), String>> = Vec::with_capacity(CHUNK);
        for line in lines.by_ref() {
            line_no += 1;
            let line = line.map_err(|e| CliError::Usage(format!("stdin: {e}")))?;
            let trimmed = line.trim();
            if trimmed.is_empty() || (line_no == 1 && trimmed.eq_ignore_ascii_case("user,function")) {
                continue;
            }
            chunk.push(parse_pair(trimmed).map_err(|e| format!("line {line_no}: {e}")));
            if chunk.len() == CHUNK {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        let emails: Vec<String> = chunk.iter().filter_map(|p| p.as_ref().ok().map(|(u, _)| u.clone())).collect();
        let found: HashMap<String, Option<(i64, String)>> =
            store.users_with_accounts(&mut snapshot, &emails).await?.into_iter().collect();
        let mut ids: Vec<i64> = found.values().flatten().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut types: Vec<String> =
            chunk.iter().filter_map(|p| p.as_ref().ok().and_then(|(_, f)| functions.get(f).cloned())).collect();
        types.sort_unstable();
        types.dedup();
        let answers = store.answers(&mut snapshot, &ids, &types).await?;
        for pair in &chunk {
            let line = match pair {
                Err(e) => {
                    bad = true;
                    json!({ "error": e })
                }
                Ok((user, function)) => match (found.get(user), functions.get(function)) {
                    (None, _) => {
                        bad = true;
                        json!({ "user": user, "function": function, "error": "unknown user" })
                    }
                    (_, None) => {
                        bad = true;
                        json!({ "user": user, "function": function, "error": "unknown function" })
                    }
                    (Some(account), Some(ty)) => {
                        let r = answers.answer(account.as_ref().map(|(id, s)| (*id, s.as_str())), ty);
                        let resolved = r.is_resolved();
                        unresolved |= !resolved;
                        // Where the app raises, its call answers nothing.
                        let r = r.app_answer();
                        // Keys in the order serde_json has always printed them.
                        let line = Line {
                            answer_verdict: r.answer_verdict.as_deref(),
                            answered_by: r.answered_by.as_deref(),
                            function,
                            integration_type: ty,
                            provider: r.provider.as_deref(),
                            provider_answered_by: r.provider_answered_by.as_deref(),
                            raises: r.raises.as_deref(),
                            resolved,
                            user,
                        };
                        if let Err(e) =
                            serde_json::to_writer(&mut out, &super::Versioned(&line)).map_err(std::io::Error::from)
                        {
                            return Ok(stopped(&e));
                        }
                        if let Err(e) = writeln!(out) {
                            return Ok(stopped(&e));
                        }
                        continue;
                    }
                },
            };
            let line = serde_json::to_string(&super::Versioned(&line)).unwrap_or_default();
            if let Err(e) = writeln!(out, "{line}") {
                return Ok(stopped(&e));
            }
        }
        if let Err(e) = out.flush() {
            return Ok(stopped(&e));
        }
    }
    Ok(ended(bad, unresolved))
}

/// `resolve --batch --at WHEN`: each pair answered by the resolver over
/// the world as it was (one history read per distinct user and function,
/// not set-based), in the same line format; the first line says the moment.
async fn run_at(store: &Store, at: &str) -> CliResult {
    let moment = crate::domain::history::parse_moment(at, chrono::Utc::now()).map_err(CliError::Usage)?;
    let cut = store.cut(moment).await?;
    let window = store.history_window().await?;
    window.vouch(&cut).map_err(|e| CliError::Store(crate::store::StoreError::NotFound(e)))?;
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // The moment and where history begins go to stderr, once; every line
    // on stdout is one answer (the resolve-batch shape) carrying its
    // moment, so a line read alone still says when it was true.
    eprintln!(
        "keyfall: as of {} · {} · judged under {} rules",
        cut.label(),
        window.since(),
        super::history::TODAYS_RULES
    );
    let as_of = json!(cut);
    let (mut bad, mut unresolved) = (false, false);
    let mut cache: HashMap<(String, String), crate::store::history::Past> = HashMap::new();
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| CliError::Usage(format!("stdin: {e}")))?;
        let trimmed = line.trim();
        if trimmed.is_empty() || (i == 0 && trimmed.eq_ignore_ascii_case("user,function")) {
            continue;
        }
        let value = match parse_pair(trimmed) {
            Err(e) => {
                bad = true;
                json!({ "error": format!("line {}: {e}", i + 1) })
            }
            Ok((user, function)) => {
                let past = match cache.entry((user.clone(), function.clone())) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(store.past(cut, Some(&user), Some(&function), &[]).await?)
                    }
                };
                match (&past.data.user, &past.data.function) {
                    (None, _) => {
                        bad = true;
                        json!({ "user": user, "function": function, "error": "unknown user" })
                    }
                    (_, None) => {
                        bad = true;
                        json!({ "user": user, "function": function, "error": "unknown function" })
                    }
                    (Some(u), Some(f)) => {
                        let snapshot = &past.data.snapshot;
                        let account = u.account_id.and_then(|id| snapshot.accounts.get(&id));
                        let r = super::history::report_row(snapshot, account, &f.integration_type);
                        let resolved = r.is_resolved();
                        unresolved |= !resolved;
                        let r = r.app_answer();
                        serde_json::to_value(Line {
                            answer_verdict: r.answer_verdict.as_deref(),
                            answered_by: r.answered_by.as_deref(),
                            function: &function,
                            integration_type: &f.integration_type,
                            provider: r.provider.as_deref(),
                            provider_answered_by: r.provider_answered_by.as_deref(),
                            raises: r.raises.as_deref(),
                            resolved,
                            user: &user,
                        })
                        .unwrap_or(Value::Null)
                    }
                }
            }
        };
        let mut value = value;
        if let Value::Object(fields) = &mut value {
            fields.insert("as_of".into(), as_of.clone());
        }
        let line = serde_json::to_string(&super::Versioned(&value)).unwrap_or_default();
        if let Err(e) = writeln!(out, "{line}") {
            return Ok(stopped(&e));
        }
    }
    if let Err(e) = out.flush() {
        return Ok(stopped(&e));
    }
    Ok(ended(bad, unresolved))
}

/// How a batch ended: a bad line is a usage error, an unresolved pair a
/// negative answer.
fn ended(bad: bool, unresolved: bool) -> Exit {
    if bad {
        Exit::Usage
    } else if unresolved {
        Exit::Negative
    } else {
        Exit::Ok
    }
}

/// Writing failed: the reader went away (nothing more to say, exit 0), or
/// something else went wrong, which `out` reports when the command ends.
fn stopped(e: &std::io::Error) -> Exit {
    super::out::note(e);
    Exit::Ok
}

/// One answer line (fields in the order of the keys printed).
#[derive(serde::Serialize)]
struct Line<'a> {
    answer_verdict: Option<&'a str>,
    answered_by: Option<&'a str>,
    function: &'a str,
    integration_type: &'a str,
    provider: Option<&'a str>,
    provider_answered_by: Option<&'a str>,
    /// Where the app's get_model_config raises (the call then answers
    /// nothing); null when it does not.
    raises: Option<&'a str>,
    resolved: bool,
    user: &'a str,
}

/// One input line: JSON `{"user","function"}` or `user,function`.
fn parse_pair(line: &str) -> Result<(String, String), String> {
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        return match (field("user"), field("function")) {
            (Some(u), Some(f)) => Ok((u, f)),
            _ => Err("expected {\"user\": …, \"function\": …}".into()),
        };
    }
    match line.split_once(',') {
        Some((u, f)) => Ok((u.trim().trim_matches('"').to_string(), f.trim().trim_matches('"').to_string())),
        None => Err("expected user,function".into()),
    }
}
