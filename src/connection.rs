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
//!
//! Before anything is sent, the endpoint is checked (`check_endpoint`):
//! plain http, a URL carrying credentials, and a host that is — or
//! resolves to — a loopback, link-local, private or unspecified address
//! are refused unless the operator allowed it (`Insecure`). A host name is
//! resolved first and every address checked; the request then goes to
//! exactly those addresses (pinned in the client), so a second lookup cannot
//! point it elsewhere. A URL is only ever shown as its origin
//! (`scheme://host:port`): never its credentials, path or query.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::registry::{self, KeyTest};
use crate::domain::secret::Secret;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub ok: bool,
    /// The host called (never the key, never credentials from the URL).
    pub host: String,
    pub status: Option<u16>,
    pub message: String,
    pub elapsed_ms: u128,
    /// Nothing was sent: the endpoint needs the operator's confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Sent to an endpoint that needed confirmation, and why it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<String>,
}

/// An endpoint the key is not sent to without the operator's word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `scheme://host[:port]`: never the URL's credentials, path or query.
    pub endpoint: String,
    /// Why, in words: "plain http on a loopback address".
    pub reason: String,
}

impl Refusal {
    /// "http://127.0.0.1:18555 is plain http on a loopback address: the key
    /// would be sent there".
    pub fn message(&self) -> String {
        format!(
            "{} is {}: the key would be sent there",
            crate::domain::text::visible_short(&self.endpoint, 100),
            self.reason
        )
    }
}

/// What the operator allowed beyond a secure endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insecure {
    /// Refuse plain http, URL credentials and non-public addresses (the default).
    Refuse,
    /// Send anyway, wherever it points (`--allow-insecure-endpoint`).
    Allow,
    /// Send anyway to this endpoint for these reasons (the console's
    /// confirmation); checked again just before sending, an endpoint that
    /// changed meanwhile is refused, to be asked about again.
    Confirmed(Refusal),
}

impl Outcome {
    /// Nothing sent: the endpoint needs the operator's confirmation.
    pub fn refused(refusal: Refusal) -> Outcome {
        Outcome {
            ok: false,
            host: String::new(),
            status: None,
            message: refusal.message(),
            elapsed_ms: 0,
            refused: Some(refusal),
            insecure: None,
        }
    }
}

/// Where a test's request goes, checked.
struct Endpoint {
    /// The host as shown (`host[:port]`, no credentials).
    host: String,
    /// The addresses a host name resolved to: the only ones the client uses.
    pin: Option<(String, Vec<SocketAddr>)>,
    refusal: Option<Refusal>,
}

/// The class of an address the key must not go to unconfirmed, if any.
pub fn address_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_link_local() {
                Some(if v4.octets() == [169, 254, 169, 254] {
                    "a link-local address (where cloud metadata services answer)"
                } else {
                    "a link-local address"
                })
            } else if v4.is_private() {
                Some("a private address")
            } else if a == 0 {
                Some("an unspecified address (0.0.0.0: this machine)")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_class(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address (::, this machine)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private address")
            } else {
                None
            }
        }
    }
}

/// Why `url` (resolved to `addresses`; `named` when its host is a name)
/// needs the operator's confirmation, if it does. Pure: the tests' table.
pub fn refusal(url: &Url, addresses: &[IpAddr], named: bool) -> Option<Refusal> {
    let mut reason = String::new();
    if url.scheme() == "http" {
        reason.push_str("plain http");
    }
    if let Some((ip, class)) = addresses.iter().find_map(|ip| address_class(*ip).map(|c| (ip, c))) {
        if !reason.is_empty() {
            reason.push(' ');
        }
        reason.push_str("on ");
        reason.push_str(class);
        if named {
            reason.push_str(&format!(" ({} → {ip})", url.host_str().unwrap_or_default()));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        if !reason.is_empty() {
            reason.push_str(", and ");
        }
        reason.push_str("a URL with credentials in it (not shown)");
    }
    (!reason.is_empty()).then(|| Refusal { endpoint: url.origin().ascii_serialization(), reason })
}

/// Parse and check the endpoint; resolve a host name (within `timeout`).
/// An Err is a failure to report (not a URL, nothing resolves).
async fn check_endpoint(base: &str, timeout: Duration) -> Result<Endpoint, String> {
    let url = Url::parse(base).map_err(|_| "the base URL is not valid".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the base URL is not http or https".into());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let host_name = url.host_str().ok_or_else(|| "the base URL has no host".to_string())?.to_string();
    let host = match url.port() {
        Some(p) => format!("{host_name}:{p}"),
        None => host_name.clone(),
    };
    // An address literal is checked as it is; a name is resolved first.
    let literal = host_name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    let (addresses, pin) = match literal {
        Some(ip) => (vec![ip], None),
        None => {
            let lookup = tokio::net::lookup_host((host_name.as_str(), port));
            let shown = crate::domain::text::visible_short(&host_name, 60);
            let found: Vec<SocketAddr> = match tokio::time::timeout(timeout, lookup).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(_)) => Vec::new(),
                Err(_) => return Err(format!("resolving {shown} timed out")),
            };
            if found.is_empty() {
                return Err(format!("cannot resolve {shown}"));
            }
            (found.iter().map(SocketAddr::ip).collect(), Some((host_name.clone(), found)))
        }
    };
    let named = pin.is_some();
    Ok(Endpoint { host, pin, refusal: refusal(&url, &addresses, named) })
}

/// Whether `provider`'s test with `config` would be refused, without
/// sending anything or needing the key (a masked config will do: `base_url`
/// is not a secret). None when it would not be, or cannot be told yet.
/// Only a configured `base_url` is looked at: the registry's defaults are
/// the providers' public https endpoints (the test checks them anyway).
pub async fn would_refuse(provider: &str, config: &Value, timeout: Duration) -> Option<Refusal> {
    registry::spec(provider).and_then(|t| t.test)?;
    let base = base_of(config)?;
    check_endpoint(&base, timeout).await.ok()?.refusal
}

fn base_of(config: &Value) -> Option<String> {
    config.get("base_url").and_then(Value::as_str).map(|b| b.trim_end_matches('/').to_string())
}

/// Test `provider`'s key in `config` (the raw, unmasked config), unless
/// its endpoint needs a confirmation `insecure` does not give: then nothing
/// is sent and the outcome says why (`refused`).
pub async fn test(provider: &str, config: &Value, timeout: Duration, insecure: &Insecure) -> Outcome {
    let key = config.get("apiKey").and_then(Value::as_str).map(|k| Secret::new(k.trim().to_string()));
    let base = base_of(config);
    let started = Instant::now();
    let fail = |host: &str, status: Option<u16>, message: String| Outcome {
        ok: false,
        host: host.to_string(),
        status,
        message,
        elapsed_ms: started.elapsed().as_millis(),
        refused: None,
        insecure: None,
    };
    let Some(key) = key.filter(|k| !k.is_blank()) else {
        return fail("", None, "no key to test".into());
    };
    let Some(test) = registry::spec(provider).and_then(|t| t.test) else {
        return fail("", None, format!("no connection test for {provider:?}"));
    };
    let base = base.unwrap_or_else(|| test.base().to_string());
    let endpoint = match check_endpoint(&base, timeout).await {
        Ok(e) => e,
        Err(message) => return fail("", None, message),
    };
    let host = endpoint.host.clone();
    let allowed = match (&endpoint.refusal, insecure) {
        (None, _) | (Some(_), Insecure::Allow) => true,
        (Some(r), Insecure::Confirmed(c)) => r == c,
        (Some(_), Insecure::Refuse) => false,
    };
    if !allowed {
        let refusal = endpoint.refusal.clone();
        let message = refusal.as_ref().map(Refusal::message).unwrap_or_default();
        return Outcome { refused: refusal, ..fail(&host, None, message) };
    }
    let insecure_reason = endpoint.refusal.as_ref().map(|r| r.reason.clone());
    // Never follow a redirect: it would carry the key (the Authorization
    // header on the same host, an authentication task's body anywhere) to
    // another URL. A resolved name goes to the addresses checked, only.
    let mut builder = reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none());
    if let Some((name, addresses)) = &endpoint.pin {
        builder = builder.resolve_to_addrs(name, addresses);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(_) => return fail("", None, "cannot start an HTTP client".into()),
    };
    let request = match test {
        KeyTest::ListModels { .. } => client.get(format!("{base}/models")).bearer_auth(key.expose()),
        KeyTest::AuthTask { .. } => {
            let body = json!([{ "taskType": "authentication", "apiKey": key.expose(), "taskUUID": uuidish() }]);
            client.post(&base).json(&body)
        }
    };
    let with_reason = |o: Outcome| Outcome { insecure: insecure_reason.clone(), ..o };
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return with_reason(fail(&host, None, format!("timed out after {}", seconds(timeout))));
        }
        Err(e) if e.is_connect() => return with_reason(fail(&host, None, format!("cannot connect to {host}"))),
        Err(e) if e.is_builder() => return with_reason(fail(&host, None, "the base URL is not valid".into())),
        Err(_) => return with_reason(fail(&host, None, format!("the request to {host} failed"))),
    };
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        let location = response.headers().get(reqwest::header::LOCATION);
        let message = redirect_message(status, location, &base, key.expose(), &host);
        return with_reason(fail(&host, Some(status), message));
    }
    let body: Option<Value> = response.json().await.ok();
    let elapsed_ms = started.elapsed().as_millis();
    let outcome = |ok: bool, message: String| Outcome {
        ok,
        host: host.clone(),
        status: Some(status),
        message,
        elapsed_ms,
        refused: None,
        insecure: insecure_reason.clone(),
    };
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

/// "30 s", "0.5 s": a bound as the screen and the CLI say it.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s} s") }
}

/// What a redirect is reported as: where it pointed (credentials in it
/// dropped, escapes made visible, shortened, the key blanked out should the
/// server have quoted it), and that it was not followed.
fn redirect_message(
    status: u16,
    location: Option<&reqwest::header::HeaderValue>,
    base: &str,
    key: &str,
    host: &str,
) -> String {
    match location {
        Some(value) => {
            let raw = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let raw = without_credentials(base, &raw);
            let shown = if key.is_empty() { raw } else { raw.replace(key, "<key>") };
            format!(
                "redirected ({status}) to {}; not followed (the key is only sent to {host})",
                crate::domain::text::visible_short(&shown, 100)
            )
        }
        None => format!("redirected ({status}) without a location; not followed (the key is only sent to {host})"),
    }
}

/// A location as it reads, less any `user:password@` in it; one that does
/// not parse as a URL is shown only if it carries no `@`.
fn without_credentials(base: &str, location: &str) -> String {
    let joined = Url::parse(base).and_then(|b| b.join(location)).or_else(|_| Url::parse(location));
    match joined {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Ok(_) => location.to_string(),
        Err(_) if location.contains('@') => "(a location that is not a URL)".to_string(),
        Err(_) => location.to_string(),
    }
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
            let outcome = test(ty, &config, Duration::from_millis(100), &Insecure::Allow).await;
            assert!(!outcome.ok && outcome.status.is_none() && outcome.host.is_empty(), "{outcome:?}");
            assert_eq!(outcome.message, format!("no connection test for {ty:?}"));
        }
    }

    #[test]
    fn addresses_the_key_is_not_sent_to_unasked() {
        let class = |s: &str| address_class(s.parse().unwrap());
        for (ip, expected) in [
            ("127.0.0.1", Some("loopback")),
            ("127.255.0.9", Some("loopback")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("169.254.169.254", Some("cloud metadata")),
            ("169.254.0.1", Some("link-local")),
            ("fe80::1", Some("link-local")),
            ("febf::1", Some("link-local")),
            ("10.0.0.1", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("fc00::1", Some("private")),
            ("fd12:3456::1", Some("private")),
            ("::ffff:10.1.2.3", Some("private")),
            ("0.0.0.0", Some("unspecified")),
            ("::", Some("unspecified")),
            ("100.64.0.1", Some("carrier-grade NAT")),
            ("172.15.255.255", None),
            ("172.32.0.1", None),
            ("11.0.0.1", None),
            ("192.169.0.1", None),
            ("169.255.0.1", None),
            ("8.8.8.8", None),
            ("2606:4700::1111", None),
            ("fec0::1", None),
        ] {
            match (class(ip), expected) {
                (Some(c), Some(e)) => assert!(c.contains(e), "{ip}: {c}"),
                (got, expected) => assert_eq!(got, expected, "{ip}"),
            }
        }
    }

    #[test]
    fn a_refusal_names_the_origin_and_why_never_the_credentials() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let url = Url::parse("http://127.0.0.1:18555/v1?x=1").unwrap();
        let r = refusal(&url, &[ip("127.0.0.1")], false).unwrap();
        assert_eq!(
            r.message(),
            "http://127.0.0.1:18555 is plain http on a loopback address: the key would be sent there"
        );
        let url = Url::parse("https://internal.example/v1").unwrap();
        let r = refusal(&url, &[ip("8.8.8.8"), ip("10.1.2.3")], true).unwrap();
        assert_eq!(
            r.message(),
            "https://internal.example is on a private address (internal.example → 10.1.2.3): the key would be sent there",
            "every address is checked"
        );
        let url = Url::parse("https://ops:hunter2@api.example.com/v1").unwrap();
        let r = refusal(&url, &[ip("8.8.8.8")], true).unwrap();
        assert!(!r.message().contains("hunter2") && !r.message().contains("ops"), "{r:?}");
        assert!(r.message().starts_with("https://api.example.com is a URL with credentials"), "{r:?}");
        let url = Url::parse("http://api.example.com/v1").unwrap();
        let r = refusal(&url, &[ip("8.8.8.8")], true).unwrap();
        assert_eq!(r.message(), "http://api.example.com is plain http: the key would be sent there");
        let url = Url::parse("https://api.example.com/v1").unwrap();
        assert_eq!(refusal(&url, &[ip("8.8.8.8"), ip("2606:4700::1111")], true), None);
        let url = Url::parse("http://[::1]:8080").unwrap();
        assert_eq!(refusal(&url, &[ip("::1")], false).unwrap().endpoint, "http://[::1]:8080");
    }

    /// An address written another way is still that address.
    #[tokio::test]
    async fn address_literals_in_any_spelling_are_checked() {
        for base in ["https://2130706433:9", "https://0x7f.1:9", "https://[::ffff:7f00:1]:9", "https://127.1:9"] {
            let endpoint = check_endpoint(base, Duration::from_secs(1)).await.expect(base);
            let refusal = endpoint.refusal.expect(base);
            assert!(refusal.reason.contains("loopback"), "{base}: {refusal:?}");
            assert!(endpoint.pin.is_none(), "a literal needs no lookup");
        }
        let endpoint = check_endpoint("https://[fe80::1]:9", Duration::from_secs(1)).await.unwrap();
        assert!(endpoint.refusal.unwrap().reason.contains("link-local"));
        assert!(check_endpoint("ftp://example.com", Duration::from_secs(1)).await.is_err());
        assert!(check_endpoint("not a url", Duration::from_secs(1)).await.is_err());
    }

    #[test]
    fn a_redirect_location_loses_its_credentials() {
        let base = "https://api.example.com/v1";
        assert_eq!(without_credentials(base, "https://u:pw@evil.example/x"), "https://evil.example/x");
        assert_eq!(without_credentials(base, "/v2/models"), "/v2/models");
        assert_eq!(without_credentials(base, "//u:pw@evil.example/x"), "https://evil.example/x");
        assert!(!without_credentials(base, "http://[bad u:pw@x").contains("pw"));
    }

    #[test]
    fn bounds_read_in_seconds() {
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
    }
}
