//! Testing a key for real (DESIGN §9): one HTTP call to the provider — OpenAI
//! lists models, Runware runs its authentication task — with a timeout, the
//! base URL overridable by the setting's `base_url`. The key is sent only
//! there, in a header or the request body, and never appears in what this
//! returns: responses are summarised, never echoed (providers quote keys in
//! their error messages). Redirects are not followed: the key goes to the
//! configured host or nowhere, and a redirect is a failure naming where it
//! pointed.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::secret::Secret;

pub const OPENAI_BASE: &str = "https://api.openai.com/v1";
pub const RUNWARE_BASE: &str = "https://api.runware.ai/v1";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub ok: bool,
    /// The host called (never the key).
    pub host: String,
    pub status: Option<u16>,
    pub message: String,
    pub elapsed_ms: u128,
}

/// Test `provider`'s key in `config` (the raw, unmasked config).
pub async fn test(provider: &str, config: &Value, timeout: Duration) -> Outcome {
    let key = config.get("apiKey").and_then(Value::as_str).map(|k| Secret::new(k.trim().to_string()));
    let base = config.get("base_url").and_then(Value::as_str).map(|b| b.trim_end_matches('/').to_string());
    let started = Instant::now();
    let fail = |host: &str, status: Option<u16>, message: String| Outcome {
        ok: false,
        host: host.to_string(),
        status,
        message,
        elapsed_ms: started.elapsed().as_millis(),
    };
    let Some(key) = key.filter(|k| !k.is_blank()) else {
        return fail("", None, "no key to test".into());
    };
    // Never follow a redirect: it would carry the key (the Authorization
    // header on the same host, Runware's body anywhere) to another URL.
    let client = match reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none()).build() {
        Ok(c) => c,
        Err(_) => return fail("", None, "cannot start an HTTP client".into()),
    };
    let (request, host) = match provider {
        "openai" => {
            let base = base.unwrap_or_else(|| OPENAI_BASE.to_string());
            let url = format!("{base}/models");
            (client.get(&url).bearer_auth(key.expose()), host_of(&base))
        }
        "runware" => {
            let base = base.unwrap_or_else(|| RUNWARE_BASE.to_string());
            let body = json!([{ "taskType": "authentication", "apiKey": key.expose(), "taskUUID": uuidish() }]);
            (client.post(&base).json(&body), host_of(&base))
        }
        other => return fail("", None, format!("no connection test for {other:?}")),
    };
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return fail(&host, None, format!("timed out after {} s", timeout.as_secs_f64()));
        }
        Err(e) if e.is_connect() => return fail(&host, None, format!("cannot connect to {host}")),
        Err(e) if e.is_builder() => return fail(&host, None, "the base URL is not valid".into()),
        Err(_) => return fail(&host, None, format!("the request to {host} failed")),
    };
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        let message = redirect_message(status, response.headers().get(reqwest::header::LOCATION), key.expose(), &host);
        return Outcome { ok: false, host, status: Some(status), message, elapsed_ms: started.elapsed().as_millis() };
    }
    let body: Option<Value> = response.json().await.ok();
    let elapsed_ms = started.elapsed().as_millis();
    let outcome =
        |ok: bool, message: String| Outcome { ok, host: host.clone(), status: Some(status), message, elapsed_ms };
    match (status, provider, &body) {
        (401 | 403, _, _) => outcome(false, format!("the provider rejected the key ({status})")),
        (429, _, _) => outcome(false, "rate limited (429): the key works but is throttled".into()),
        (200..=299, _, None) => outcome(false, format!("unexpected response ({status}): not JSON")),
        (200..=299, "openai", Some(b)) => match b.get("data").and_then(Value::as_array) {
            Some(models) => outcome(true, format!("key accepted: {} models listed", models.len())),
            None => outcome(false, format!("unexpected response ({status}): no model list")),
        },
        (200..=299, _, Some(b)) => {
            if b.get("errors").is_some() {
                outcome(false, "the provider rejected the key".into())
            } else {
                outcome(true, "key accepted (authentication task)".into())
            }
        }
        _ => outcome(false, format!("the provider answered {status}")),
    }
}

/// What a redirect is reported as: where it pointed (escapes made visible,
/// shortened, the key blanked out should the server have quoted it), and
/// that it was not followed.
fn redirect_message(status: u16, location: Option<&reqwest::header::HeaderValue>, key: &str, host: &str) -> String {
    match location {
        Some(value) => {
            let raw = String::from_utf8_lossy(value.as_bytes());
            let shown = if key.is_empty() { raw.into_owned() } else { raw.replace(key, "<key>") };
            format!(
                "redirected ({status}) to {}; not followed (the key is only sent to {host})",
                crate::domain::text::visible_short(&shown, 100)
            )
        }
        None => format!("redirected ({status}) without a location; not followed (the key is only sent to {host})"),
    }
}

fn host_of(base: &str) -> String {
    let rest = base.split_once("://").map(|(_, r)| r).unwrap_or(base);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// A request id for Runware's task (uniqueness, not secrecy, is all it needs).
fn uuidish() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let hex = format!("{nanos:032x}");
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}
