//! Testing a key for real (DESIGN §9): one HTTP call to the provider, with a
//! timeout. Which call, and its default base URL, is the registry's
//! (`TypeSpec::test`: list the models, or run an authentication task); how
//! each is spoken is here. The base URL is overridable by the setting's
//! `base_url`. The key is sent only
//! there, in a header or the request body, and never appears in what this
//! returns: responses are summarised, never echoed (providers quote keys in
//! their error messages). Redirects are not followed: the key goes to the
//! configured host or nowhere, and a redirect is a failure naming where it
//! pointed.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::registry::{self, KeyTest};
use crate::domain::secret::Secret;

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
    // header on the same host, an authentication task's body anywhere) to
    // another URL.
    let client = match reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none()).build() {
        Ok(c) => c,
        Err(_) => return fail("", None, "cannot start an HTTP client".into()),
    };
    let Some(test) = registry::spec(provider).and_then(|t| t.test) else {
        return fail("", None, format!("no connection test for {provider:?}"));
    };
    let base = base.unwrap_or_else(|| test.base().to_string());
    let host = host_of(&base);
    let request = match test {
        KeyTest::ListModels { .. } => client.get(format!("{base}/models")).bearer_auth(key.expose()),
        KeyTest::AuthTask { .. } => {
            let body = json!([{ "taskType": "authentication", "apiKey": key.expose(), "taskUUID": uuidish() }]);
            client.post(&base).json(&body)
        }
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
    match (status, test, &body) {
        (401 | 403, _, _) => outcome(false, format!("the provider rejected the key ({status})")),
        (429, _, _) => outcome(false, "rate limited (429): the key works but is throttled".into()),
        (200..=299, _, None) => outcome(false, format!("unexpected response ({status}): not JSON")),
        (200..=299, KeyTest::ListModels { .. }, Some(b)) => match b.get("data").and_then(Value::as_array) {
            Some(models) => outcome(true, format!("key accepted: {} models listed", models.len())),
            None => outcome(false, format!("unexpected response ({status}): no model list")),
        },
        (200..=299, KeyTest::AuthTask { .. }, Some(b)) => {
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

/// A request id for an authentication task (uniqueness, not secrecy, is all it needs).
fn uuidish() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let hex = format!("{nanos:032x}");
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A type the registry gives no key test is refused before any call,
    /// however it is configured.
    #[tokio::test]
    async fn a_type_without_a_key_test_is_not_called() {
        let config = json!({"apiKey": "sk-0123456789abcdef", "base_url": "http://127.0.0.1:9"});
        for ty in ["image_generation", "anthropic"] {
            let outcome = test(ty, &config, Duration::from_millis(100)).await;
            assert!(!outcome.ok && outcome.status.is_none() && outcome.host.is_empty(), "{outcome:?}");
            assert_eq!(outcome.message, format!("no connection test for {ty:?}"));
        }
    }
}
