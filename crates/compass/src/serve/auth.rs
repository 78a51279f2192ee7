//! Who is calling: API tokens and webhook secrets.
//!
//! Tokens are 32 random bytes shown once at creation (`cps_` + hex); the store keeps
//! only their SHA-256 (a fast hash is right for high-entropy secrets: there is nothing
//! to brute-force). A request authenticates with `Authorization: Bearer <token>`, or,
//! from the web UI, with the `compass_token` cookie (HttpOnly, SameSite=Strict); a
//! mutating request carried by the cookie must also send `X-Compass-UI: 1`, which a
//! cross-site form cannot, so the cookie cannot be used for CSRF.
//!
//! Webhooks authenticate with the configured shared secret (`Authorization: Bearer`,
//! or `X-Compass-Secret`) or an HMAC-SHA256 of the body (`X-Compass-Signature:
//! sha256=<hex>`), compared in constant time; without a configured secret they need
//! a responder token like any other mutating call.

use super::api::AppError;
use super::{AuthMode, ServeState};
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, Method, request::Parts};
use compass_engine::store::Role;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

/// The UI's session cookie.
pub(super) const COOKIE: &str = "compass_token";

/// A new random token (`cps_` and 64 hex digits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes)
        .expect("the operating system provides random bytes");
    format!("cps_{}", hex::encode(bytes))
}

/// The hex SHA-256 the store keeps for a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (the audit log's actor).
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// `Ok` when the caller's role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), AppError> {
        if self.role >= needed {
            return Ok(());
        }
        Err(AppError::forbidden(format!(
            "this needs the {} role; token `{}` has {}",
            needed.as_str(),
            self.name,
            self.role.as_str()
        )))
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The caller a request's token names.
pub(super) async fn authenticate(
    state: &ServeState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Caller, AppError> {
    if state.auth == AuthMode::Open {
        return Ok(anonymous());
    }
    let token = match bearer(headers) {
        Some(t) => t.to_string(),
        None => {
            let Some(t) = cookie_token(headers) else {
                return Err(AppError::unauthorized(
                    "no API token: send `Authorization: Bearer <token>` (create one with `compass token create`)",
                ));
            };
            let safe = matches!(*method, Method::GET | Method::HEAD);
            if !safe && headers.get("x-compass-ui").is_none() {
                return Err(AppError::forbidden(
                    "a cookie-authenticated change must send `X-Compass-UI: 1`",
                ));
            }
            t
        }
    };
    caller_for_token(state, &token).await
}

/// The caller an API token names (the MCP stdio server checks its token once, here).
pub(super) async fn caller_for_token(state: &ServeState, token: &str) -> Result<Caller, AppError> {
    match state.store.token_by_hash(&hash_token(token)).await? {
        Some(t) => Ok(Caller {
            name: t.name,
            role: t.role,
        }),
        None => Err(AppError::unauthorized(
            "the API token is unknown or revoked",
        )),
    }
}

/// The anonymous admin of an open (`--no-auth`) replica.
pub(super) fn anonymous() -> Caller {
    Caller {
        name: "anonymous".into(),
        role: Role::Admin,
    }
}

impl FromRequestParts<ServeState> for Caller {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &ServeState) -> Result<Self, AppError> {
        authenticate(state, &parts.method, &parts.headers).await
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare digests, so neither the content nor the length leaks through timing.
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Check a webhook call: the shared secret, its HMAC over `body`, or a responder token.
pub(super) async fn webhook_caller(
    state: &ServeState,
    headers: &HeaderMap,
    body: &[u8],
    receiver: &str,
) -> Result<Caller, AppError> {
    let caller = Caller {
        name: format!("webhook:{receiver}"),
        role: Role::Responder,
    };
    if state.auth == AuthMode::Open {
        return Ok(caller);
    }
    let Some(secret) = &state.serve.webhook_secret else {
        let token_caller = authenticate(state, &Method::POST, headers).await?;
        token_caller.require(Role::Responder)?;
        return Ok(Caller {
            name: format!("{}:{receiver}", token_caller.name),
            ..token_caller
        });
    };
    let secret = secret.expose_secret().as_bytes();
    if let Some(sig) = headers
        .get("x-compass-signature")
        .and_then(|v| v.to_str().ok())
    {
        let hex_sig = sig.trim().strip_prefix("sha256=").unwrap_or(sig.trim());
        let Ok(given) = hex::decode(hex_sig) else {
            return Err(AppError::unauthorized(
                "X-Compass-Signature is not `sha256=<hex>`",
            ));
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(body);
        return match mac.verify_slice(&given) {
            Ok(()) => Ok(caller),
            Err(_) => Err(AppError::unauthorized(
                "the webhook signature does not match the body",
            )),
        };
    }
    let given = bearer(headers).or_else(|| {
        headers
            .get("x-compass-secret")
            .and_then(|v| v.to_str().ok())
    });
    match given {
        Some(g) if constant_time_eq(g.trim().as_bytes(), secret) => Ok(caller),
        Some(_) => Err(AppError::unauthorized("wrong webhook secret")),
        None => Err(AppError::unauthorized(
            "this webhook needs the shared secret (`Authorization: Bearer <secret>` or `X-Compass-Secret`) or an `X-Compass-Signature: sha256=<hmac>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("cps_") && a.len() == 68, "{a}");
        assert_eq!(hash_token(&a), hash_token(&format!(" {a}\n")));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 64);
    }

    #[test]
    fn roles_include_the_ones_below() {
        let approver = Caller {
            name: "alice".into(),
            role: Role::Approver,
        };
        assert!(approver.require(Role::Responder).is_ok());
        let e = approver.require(Role::Admin).unwrap_err();
        assert!(
            e.message
                .contains("needs the admin role; token `alice` has approver"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            "theme=dark; compass_token=cps_abc; x=1".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("cps_abc"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
