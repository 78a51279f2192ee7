//! The HTTP client every live backend (Prometheus, Loki, Tempo, Jaeger) talks through.
//!
//! One [`HttpClient`] per configured source: base URL, authentication (bearer token or
//! basic), extra headers (e.g. `X-Scope-OrgID` for multi-tenant Loki/Tempo), TLS
//! options, a timeout per attempt, and retries with exponential backoff and jitter for
//! the failures worth retrying (connection refused or reset, 429, 502, 503, 504). Every
//! backend call here is a read, so retrying is safe; a timeout is *not* retried, so a
//! hanging backend costs one timeout per call (and the circuit breaker around the port
//! makes that one per cool-down).
//!
//! Errors become [`SourceError`]s that say what to do: wrong URL, wrong credentials,
//! a rejected query (with the backend's own message), a malformed response.

use compass_engine::ports::{SourceError, SourceResult};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::time::Duration;

/// How to authenticate to a backend.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Bearer(SecretString),
    Basic {
        username: String,
        password: SecretString,
    },
}

/// TLS options for `https://` URLs.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra PEM CA certificate to trust (private CAs).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (testing only; `compass config check` warns).
    pub insecure_skip_verify: bool,
}

/// Retry policy for failures worth retrying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retries).
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The longest a call can take: every attempt timing out plus every backoff.
    pub fn worst_case(&self, per_attempt: Duration) -> Duration {
        per_attempt * (self.max_retries + 1) + self.max_backoff * self.max_retries
    }
}

/// Everything needed to talk to one backend.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub base_url: String,
    pub auth: Auth,
    pub headers: Vec<(String, String)>,
    pub tls: TlsOptions,
    /// Timeout of one attempt (connect + response).
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl HttpConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            auth: Auth::None,
            headers: Vec::new(),
            tls: TlsOptions::default(),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// A configured HTTP client for one named source.
#[derive(Debug, Clone)]
pub struct HttpClient {
    name: String,
    base: Url,
    client: reqwest::Client,
    auth: Auth,
    headers: Vec<(String, String)>,
    timeout: Duration,
    retry: RetryPolicy,
}

/// One failed attempt: the error and whether another attempt may succeed.
struct Attempt {
    error: SourceError,
    retryable: bool,
}

impl HttpClient {
    /// Build a client; fails on a malformed URL or an unreadable CA file.
    pub fn new(name: &str, config: &HttpConfig) -> SourceResult<Self> {
        let bad = |detail: String| SourceError::BadData {
            source_name: name.to_string(),
            detail,
        };
        for (k, v) in &config.headers {
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(format!("header name `{k}` is not a valid HTTP header name")))?;
            reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| bad(format!("the value of header `{k}` is not valid in HTTP")))?;
        }
        let base = base_url(
            &config.base_url,
            "url",
            "http://prometheus:9090",
            "put credentials in the source's `auth` (basic or bearer token) so they never \
             appear in messages or recordings",
        )
        .map_err(bad)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("compass/", env!("CARGO_PKG_VERSION")));
        if config.tls.insecure_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(ca) = &config.tls.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| bad(format!("cannot read the CA file {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                bad(format!(
                    "the CA file {} is not a PEM certificate: {e}",
                    ca.display()
                ))
            })?;
            builder = builder.tls_certs_merge([cert]);
        }
        let client = builder
            .build()
            .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            name: name.to_string(),
            base,
            client,
            auth: config.auth.clone(),
            headers: config.headers.clone(),
            timeout: config.timeout,
            retry: config.retry,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL (with a trailing slash).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// GET `path` (relative to the base URL) with query parameters; parse JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> SourceResult<T> {
        let body = self.request(Method::GET, path, query).await?;
        self.parse_json(path, &body)
    }

    /// POST `path` with a form body (Prometheus accepts long queries this way); parse JSON.
    pub async fn post_form_json<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
    ) -> SourceResult<T> {
        let body = self.request(Method::POST, path, form).await?;
        self.parse_json(path, &body)
    }

    /// GET `path` and return the body as text (health endpoints).
    pub async fn get_text(&self, path: &str) -> SourceResult<String> {
        let body = self.request(Method::GET, path, &[]).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    fn parse_json<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> SourceResult<T> {
        serde_json::from_slice(body).map_err(|e| SourceError::BadData {
            source_name: self.name.clone(),
            detail: format!(
                "{} returned a malformed response ({e}); starts with: {}",
                self.url_for_display(path),
                snippet(body)
            ),
        })
    }

    fn url_for_display(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> SourceResult<Vec<u8>> {
        use backon::{ExponentialBuilder, Retryable};
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.initial_backoff)
            .with_max_delay(self.retry.max_backoff)
            .with_max_times(self.retry.max_retries as usize)
            .with_jitter();
        let attempt = || self.attempt(method.clone(), path, params);
        attempt
            .retry(backoff)
            .when(|a: &Attempt| a.retryable)
            .notify(|a: &Attempt, after: Duration| {
                tracing::warn!(source = %self.name, error = %a.error, ?after, "retrying");
            })
            .await
            .map_err(|a| a.error)
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<u8>, Attempt> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Attempt {
                error: SourceError::BadData {
                    source_name: self.name.clone(),
                    detail: format!("cannot build a URL from path `{path}`: {e}"),
                },
                retryable: false,
            })?;
        let mut req = self
            .client
            .request(method.clone(), url)
            .timeout(self.timeout);
        req = if method == Method::POST {
            req.form(params)
        } else {
            req.query(params)
        };
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token.expose_secret()),
            Auth::Basic { username, password } => {
                req.basic_auth(username, Some(password.expose_secret()))
            }
        };
        let display = self.url_for_display(path);
        let response = req
            .send()
            .await
            .map_err(|e| self.transport_error(&display, e))?;
        let status = response.status();
        let body = self.read_capped(&display, response).await?;
        if status.is_success() {
            return Ok(body);
        }
        Err(self.status_error(&display, status, &body))
    }

    /// Read a body of at most [`MAX_BODY_BYTES`], so an answer too big to analyse
    /// fails cleanly instead of exhausting memory.
    async fn read_capped(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, Attempt> {
        let too_big = || Attempt {
            error: SourceError::QueryRejected {
                source_name: self.name.clone(),
                detail: format!(
                    "{url} answered with more than {} MiB; narrow the query (scope, mapping) \
                     or the time range",
                    MAX_BODY_BYTES >> 20
                ),
            },
            retryable: false,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, url: &str, e: reqwest::Error) -> Attempt {
        let source_name = self.name.clone();
        if e.is_builder() {
            // The request itself could not be made: retrying cannot help.
            return Attempt {
                error: SourceError::BadData {
                    source_name,
                    detail: format!("cannot build the request to {url}: {}", root_cause(&e)),
                },
                retryable: false,
            };
        }
        if e.is_connect() {
            // Refused or reset connections are retried; a connect that timed out (a
            // black-holed address) is not, so it costs one connect timeout.
            return Attempt {
                error: SourceError::Unavailable {
                    source_name,
                    detail: format!(
                        "cannot connect to {url} ({}); check the source's url and that the backend is running",
                        root_cause(&e)
                    ),
                },
                retryable: !e.is_timeout(),
            };
        }
        if e.is_timeout() {
            return Attempt {
                error: SourceError::Timeout {
                    source_name,
                    after_ms: self.timeout.as_millis() as u64,
                },
                retryable: false,
            };
        }
        // The connection broke mid-request (reset, closed without an answer).
        Attempt {
            error: SourceError::Unavailable {
                source_name,
                detail: format!("request to {url} failed: {}", root_cause(&e)),
            },
            retryable: true,
        }
    }

    fn status_error(&self, url: &str, status: StatusCode, body: &[u8]) -> Attempt {
        let source_name = self.name.clone();
        let message = backend_message(body);
        let (error, retryable) = match status.as_u16() {
            401 | 403 => (
                SourceError::Unavailable {
                    source_name,
                    detail: format!(
                        "{url} refused the credentials (HTTP {}){}; check the source's auth settings",
                        status.as_u16(),
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                },
                false,
            ),
            404 => (
                SourceError::NotFound {
                    source_name,
                    detail: format!(
                        "{url} does not exist (HTTP 404); check the source's url and kind"
                    ),
                },
                false,
            ),
            400 | 422 => (
                SourceError::QueryRejected {
                    source_name,
                    detail: message.unwrap_or_else(|| format!("HTTP {status} from {url}")),
                },
                false,
            ),
            429 | 502..=504 => (
                SourceError::Unavailable {
                    source_name,
                    detail: format!(
                        "HTTP {status} from {url}{}",
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                },
                true,
            ),
            _ => (
                SourceError::Unavailable {
                    source_name,
                    detail: format!(
                        "HTTP {status} from {url}{}",
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                },
                status.is_server_error(),
            ),
        };
        Attempt { error, retryable }
    }
}

/// A base URL that API paths are joined onto: `http(s)://`, no credentials in it, and
/// ending in `/` so any path prefix is kept. Errors name `field`, show an `example`,
/// and never echo a password; `credentials_hint` says where credentials go instead.
pub(crate) fn base_url(
    raw: &str,
    field: &str,
    example: &str,
    credentials_hint: &str,
) -> Result<Url, String> {
    let shown = redact_userinfo(raw.trim());
    let mut base = Url::parse(raw.trim()).map_err(|e| {
        format!("{field} `{shown}` is not a valid URL ({e}); expected e.g. {example}")
    })?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!(
            "{field} `{shown}` must start with http:// or https://"
        ));
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(format!(
            "the {field} holds a user name or password; {credentials_hint}"
        ));
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

/// The largest response body read from a backend.
pub const MAX_BODY_BYTES: usize = 256 << 20;

/// `url` with any `user:password@` replaced by `***@`, for messages.
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at))
            if at > scheme_end + 3 && !url[scheme_end + 3..at].contains('/') =>
        {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// The server's own error message: Prometheus/Loki JSON `error`/`message`/`msg`;
/// an `error` object as OpenAI and Anthropic send it (`{"error": {"message", "type"}}`,
/// shown as `message (type)`); or the start of a text body.
pub(crate) fn backend_message(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
        for key in ["error", "message", "msg"] {
            if let Some(m) = error.get(key).and_then(|m| m.as_str()) {
                let kind = error
                    .get("type")
                    .or_else(|| error.get("code"))
                    .and_then(|t| t.as_str())
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                return Some(format!("{m}{kind}"));
            }
        }
    }
    Some(snippet(body))
}

/// The first 200 characters of a body, on one line.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = one_line.chars().take(200).collect();
    if one_line.chars().count() > 200 {
        s.push('…');
    }
    if s.is_empty() {
        "(empty body)".to_string()
    } else {
        s
    }
}

/// The innermost error's message (reqwest's outer message is generic).
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_message_prefers_the_json_error() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            backend_message(body).as_deref(),
            Some("parse error at char 5")
        );
        assert_eq!(
            backend_message(b"too many\n outstanding requests").as_deref(),
            Some("too many outstanding requests")
        );
        assert_eq!(backend_message(b""), None);
        let openai = br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        assert_eq!(
            backend_message(openai).as_deref(),
            Some("Incorrect API key provided (invalid_request_error)")
        );
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            backend_message(anthropic).as_deref(),
            Some("Overloaded (overloaded_error)")
        );
        assert_eq!(
            backend_message(b"<html>bad gateway</html>").as_deref(),
            Some("<html>bad gateway</html>")
        );
    }

    #[test]
    fn a_url_without_a_scheme_is_refused_with_an_example() {
        let err = HttpClient::new("prom", &HttpConfig::new("prometheus:9090")).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        let err = HttpClient::new("prom", &HttpConfig::new("not a url")).unwrap_err();
        assert!(err.to_string().contains("not a valid URL"), "{err}");
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_never_echoed() {
        let err = HttpClient::new("p", &HttpConfig::new("http://admin:hunter2@h:9090"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`auth`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = HttpClient::new("p", &HttpConfig::new("ftp://admin:hunter2@h"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("ftp://***@h"), "{err}");
    }

    #[test]
    fn invalid_headers_are_refused_when_the_client_is_built() {
        let mut c = HttpConfig::new("http://h:1");
        c.headers = vec![("X Bad".into(), "v".into())];
        let err = HttpClient::new("p", &c).unwrap_err().to_string();
        assert!(
            err.contains("`X Bad` is not a valid HTTP header name"),
            "{err}"
        );
    }

    #[test]
    fn a_base_path_prefix_is_kept() {
        let c = HttpClient::new("p", &HttpConfig::new("http://h:1/prom")).unwrap();
        assert_eq!(
            c.base_url().join("api/v1/labels").unwrap().as_str(),
            "http://h:1/prom/api/v1/labels"
        );
    }

    #[test]
    fn worst_case_counts_every_attempt_and_backoff() {
        let r = RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        assert_eq!(
            r.worst_case(Duration::from_secs(5)),
            Duration::from_secs(17)
        );
    }
}
