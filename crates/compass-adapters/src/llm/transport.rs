//! The HTTP exchange both remote providers share: one JSON POST with a per-attempt
//! timeout, retries with exponential backoff for the failures worth retrying, and
//! errors that say what to do.
//!
//! - **Retried:** refused or reset connections (before any answer), HTTP 408, 429,
//!   500, 502, 503, 504 and 529 (Anthropic "overloaded"). The wait honours
//!   `Retry-After` (seconds or an HTTP date) and `retry-after-ms`; a provider asking
//!   for more than [`MAX_RETRY_AFTER`] ends the call as unavailable instead of
//!   stalling the investigation.
//! - **Not retried:** a timeout (a hanging provider costs one timeout, not three),
//!   other 4xx (the provider's own `error.message` is kept; 401/403 point at the API
//!   key), an answer cut off mid-body, an answer over [`MAX_REPLY_BYTES`], malformed
//!   JSON (with the start of the body in the message).

use crate::http::{RetryPolicy, backend_message, base_url, root_cause, snippet};
use compass_engine::llm::LlmError;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// The largest reply read from a provider (answers are a few KiB; this bounds a
/// misbehaving server).
pub const MAX_REPLY_BYTES: usize = 8 << 20;

/// The longest `Retry-After` COMPASS waits for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A client for one provider endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    provider: String,
    client: reqwest::Client,
    /// Sent with every request (auth headers are marked sensitive, so `Debug` hides them).
    headers: HeaderMap,
    timeout: Duration,
    retry: RetryPolicy,
}

struct Failure {
    error: LlmError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Transport {
    pub(crate) fn new(
        provider: &str,
        headers: HeaderMap,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, LlmError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("compass/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Config {
                provider: provider.to_string(),
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            provider: provider.to_string(),
            client,
            headers,
            timeout,
            retry,
        })
    }

    /// POST `body` to `url`; the parsed JSON reply.
    pub(crate) async fn post_json(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, LlmError> {
        let mut retries = 0;
        loop {
            let failure = match self.attempt(url, body).await {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            if !failure.retryable || retries >= self.retry.max_retries {
                return Err(failure.error);
            }
            let backoff = self
                .retry
                .initial_backoff
                .saturating_mul(1 << retries.min(16))
                .min(self.retry.max_backoff);
            let wait = match failure.retry_after {
                Some(asked) if asked > MAX_RETRY_AFTER => {
                    return Err(LlmError::Unavailable {
                        provider: self.provider.clone(),
                        detail: format!(
                            "{} (the provider asks to retry after {} s, longer than the {} s \
                             COMPASS waits)",
                            strip_provider(&failure.error),
                            asked.as_secs(),
                            MAX_RETRY_AFTER.as_secs()
                        ),
                    });
                }
                Some(asked) => asked,
                None => backoff,
            };
            tracing::warn!(
                provider = %self.provider,
                error = %failure.error,
                wait_ms = wait.as_millis() as u64,
                "retrying the LLM call"
            );
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    async fn attempt(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Failure> {
        let response = self
            .client
            .post(url.clone())
            .headers(self.headers.clone())
            .timeout(self.timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| self.send_error(url, e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let bytes = self.read_capped(url, response).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| Failure {
                error: self.bad(format!(
                    "{url} answered with malformed JSON ({e}); starts with: {}",
                    snippet(&bytes)
                )),
                retryable: false,
                retry_after: None,
            });
        }
        Err(self.status_error(url, status, &bytes, retry_after))
    }

    async fn read_capped(
        &self,
        url: &Url,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, Failure> {
        let too_big = || Failure {
            error: self.bad(format!(
                "{url} answered with more than {} MiB; refusing to read it",
                MAX_REPLY_BYTES >> 20
            )),
            retryable: false,
            retry_after: None,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_REPLY_BYTES as u64)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_REPLY_BYTES {
                        return Err(too_big());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) if e.is_timeout() => return Err(self.timed_out()),
                Err(e) => {
                    // The provider may already have done (and billed) the work, so a
                    // cut-off answer is not retried.
                    return Err(Failure {
                        error: self.bad(format!(
                            "the answer from {url} was cut off after {} bytes ({})",
                            body.len(),
                            root_cause(&e)
                        )),
                        retryable: false,
                        retry_after: None,
                    });
                }
            }
        }
    }

    fn send_error(&self, url: &Url, e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            return self.timed_out();
        }
        if e.is_builder() {
            return Failure {
                error: LlmError::Config {
                    provider: self.provider.clone(),
                    detail: format!("cannot build the request to {url}: {}", root_cause(&e)),
                },
                retryable: false,
                retry_after: None,
            };
        }
        let hint = if e.is_connect() {
            "; check `base_url` in [llm] and that the server is running"
        } else {
            ""
        };
        Failure {
            error: LlmError::Unavailable {
                provider: self.provider.clone(),
                detail: format!("cannot reach {url} ({}){hint}", root_cause(&e)),
            },
            retryable: true,
            retry_after: None,
        }
    }

    fn status_error(
        &self,
        url: &Url,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Failure {
        let message = backend_message(body)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let code = status.as_u16();
        let provider = self.provider.clone();
        match code {
            408 | 429 | 500 | 502 | 503 | 504 | 529 => Failure {
                error: LlmError::Unavailable {
                    provider,
                    detail: format!("HTTP {code} from {url}{message}"),
                },
                retryable: true,
                retry_after,
            },
            401 | 403 => Failure {
                error: LlmError::Rejected {
                    provider,
                    detail: format!(
                        "HTTP {code}: the provider refused the credentials{message}; check the \
                         API key (`api_key_env` or `api_key_file` in [llm])"
                    ),
                },
                retryable: false,
                retry_after: None,
            },
            404 => Failure {
                error: LlmError::Rejected {
                    provider,
                    detail: format!(
                        "HTTP 404 from {url}{message}; check `base_url` and `model` in [llm]"
                    ),
                },
                retryable: false,
                retry_after: None,
            },
            _ => Failure {
                error: LlmError::Rejected {
                    provider,
                    detail: format!("HTTP {code}{message}"),
                },
                retryable: status.is_server_error(),
                retry_after,
            },
        }
    }

    fn timed_out(&self) -> Failure {
        Failure {
            error: LlmError::Timeout {
                provider: self.provider.clone(),
                after: self.timeout,
            },
            retryable: false,
            retry_after: None,
        }
    }

    pub(crate) fn bad(&self, detail: String) -> LlmError {
        LlmError::BadResponse {
            provider: self.provider.clone(),
            detail,
        }
    }
}

/// The error's text without its `provider: ` prefix.
fn strip_provider(e: &LlmError) -> String {
    match e {
        LlmError::Unavailable { detail, .. }
        | LlmError::Rejected { detail, .. }
        | LlmError::BadResponse { detail, .. }
        | LlmError::Config { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// How long the provider asks to wait: `retry-after-ms`, else `Retry-After` in
/// seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// `{base}/{path}`: the provider endpoint under `base_url` (any path prefix kept).
pub(crate) fn endpoint(provider: &str, base: &str, path: &str) -> Result<Url, LlmError> {
    let config = |detail: String| LlmError::Config {
        provider: provider.to_string(),
        detail,
    };
    base_url(
        base,
        "base_url",
        "http://localhost:11434/v1",
        "put the key in `api_key_env` or `api_key_file`",
    )
    .map_err(config)?
    .join(path)
    .map_err(|e| config(format!("cannot join `{path}` to base_url `{base}`: {e}")))
}

/// A header value holding a secret, marked sensitive (hidden from `Debug`).
pub(crate) fn secret_header(
    provider: &str,
    prefix: &str,
    key: &SecretString,
) -> Result<HeaderValue, LlmError> {
    let mut value =
        HeaderValue::from_str(&format!("{prefix}{}", key.expose_secret())).map_err(|_| {
            LlmError::Config {
                provider: provider.to_string(),
                detail: "the API key holds characters not allowed in an HTTP header".into(),
            }
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// At most 300 characters of a JSON value, for messages.
pub(crate) fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date means now"
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        h.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
