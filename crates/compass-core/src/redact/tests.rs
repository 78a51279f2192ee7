//! A corpus of secrets (each must go, counted by kind) and near-misses (each must stay).

use super::*;

fn redactor() -> Redactor {
    Redactor::new(&RedactionConfig::default()).unwrap()
}

/// (input, expected output, expected kind)
const SECRETS: &[(&str, &str, &str)] = &[
    (
        "connect to postgres://app:s3cr3t-P4ss@db.internal:5432/shop failed",
        "connect to postgres://app:[REDACTED:url_password]@db.internal:5432/shop failed",
        "url_password",
    ),
    (
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123",
        "Authorization: Bearer [REDACTED:bearer_token]",
        "bearer_token",
    ),
    (
        "using key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345 for openai",
        "using key [REDACTED:api_key] for openai",
        "api_key",
    ),
    (
        "anthropic key sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "anthropic key [REDACTED:api_key]",
        "api_key",
    ),
    (
        "aws AKIAIOSFODNN7EXAMPLE in env",
        "aws [REDACTED:api_key] in env",
        "api_key",
    ),
    (
        "token ghp_0123456789abcdefghijABCDEFGHIJ012345 pushed",
        "token [REDACTED:api_key] pushed",
        "api_key",
    ),
    (
        "db password=hunter2; retrying",
        "db password=[REDACTED:secret_value]; retrying",
        "secret_value",
    ),
    (
        r#"{"api_key": "abcd-1234-efgh", "user": "x"}"#,
        r#"{"api_key": "[REDACTED:secret_value]", "user": "x"}"#,
        "secret_value",
    ),
    (
        "mail from jane.doe@example.co.uk bounced",
        "mail from [REDACTED:email] bounced",
        "email",
    ),
    (
        "upstream 10.0.3.17:8080 refused",
        "upstream [REDACTED:ip]:8080 refused",
        "ip",
    ),
];

#[test]
fn every_secret_in_the_corpus_is_replaced_and_counted() {
    let r = redactor();
    for (input, expected, kind) in SECRETS {
        let out = r.redact(input);
        assert_eq!(out.text, *expected, "{input}");
        assert_eq!(out.counts.get(*kind), Some(&1), "{input}: {:?}", out.counts);
        assert_eq!(out.total(), 1, "{input}: {:?}", out.counts);
    }
}

#[test]
fn a_private_key_block_is_replaced_whole() {
    let text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc/def+==\n-----END RSA PRIVATE KEY-----\nend";
    let out = redactor().redact(text);
    assert_eq!(out.text, "key:\n[REDACTED:private_key]\nend");
    assert_eq!(out.total(), 1);
}

#[test]
fn near_misses_are_left_alone() {
    let r = redactor();
    for text in [
        "GET /cart/4821 200 12ms",
        "version 1.2.3 deployed",
        "the password policy requires rotation",
        "sk-short is not a key",
        "user@localhost logged in",
        "Bearer auth failed",
        "token bucket refilled",
        "999.1.1.1 is not an address",
        "https://example.com/path@v2",
    ] {
        let out = r.redact(text);
        assert_eq!(out.text, text, "{text}: {:?}", out.counts);
        assert_eq!(out.total(), 0, "{text}");
    }
}

#[test]
fn several_kinds_in_one_text_are_counted_separately() {
    let text =
        "alice@example.com from 192.168.1.5 and bob@example.org from 192.168.1.6, password: x9y8z7";
    let out = redactor().redact(text);
    assert_eq!(out.counts.get("email"), Some(&2));
    assert_eq!(out.counts.get("ip"), Some(&2));
    assert_eq!(out.counts.get("secret_value"), Some(&1));
    assert!(
        !out.text.contains("alice") && !out.text.contains("x9y8z7"),
        "{}",
        out.text
    );
}

#[test]
fn emails_and_ips_can_be_kept_and_custom_patterns_added() {
    let config = RedactionConfig {
        emails: false,
        ips: false,
        custom: vec![("customer_id".into(), r"\bcust-\d{6}\b".into())],
    };
    let out = Redactor::new(&config)
        .unwrap()
        .redact("cust-123456 at 10.1.2.3 mailed ops@example.com");
    assert_eq!(
        out.text,
        "[REDACTED:customer_id] at 10.1.2.3 mailed ops@example.com"
    );
    assert_eq!(out.total(), 1);
    let err = Redactor::new(&RedactionConfig {
        custom: vec![("bad".into(), "(unclosed".into())],
        ..RedactionConfig::default()
    })
    .unwrap_err();
    assert!(err.contains("`bad`"), "{err}");
}
