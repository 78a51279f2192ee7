//! Redaction of secrets and personal data from text before it leaves the machine (the
//! LLM layer sends nothing it has not passed through a [`Redactor`]).
//!
//! Rules run in a fixed order, most specific first, and each replaced item becomes
//! `[REDACTED:<kind>]` while the text around it (a key name, a URL's user, the word
//! `Bearer`) stays readable. [`Redacted::counts`] says how many items of each kind were
//! replaced, so a report can show that redaction happened. Kinds: `private_key`,
//! `url_password`, `bearer_token`, `api_key`, `secret_value`, `email`, `ip`, and the
//! names of custom patterns.

use regex::{Captures, Regex};
use std::collections::BTreeMap;

/// Which optional rules run, and extra patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactionConfig {
    pub emails: bool,
    pub ips: bool,
    /// (name, regex): every match becomes `[REDACTED:<name>]`.
    pub custom: Vec<(String, String)>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            emails: true,
            ips: true,
            custom: Vec::new(),
        }
    }
}

/// Text after redaction, with how many items of each kind were replaced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redacted {
    pub text: String,
    pub counts: BTreeMap<String, usize>,
}

impl Redacted {
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }
}

/// How a rule rewrites one match: keep capture group `keep` (if any) before the marker.
#[derive(Debug, Clone)]
struct Rule {
    kind: String,
    regex: Regex,
    /// Capture groups kept verbatim before the marker (e.g. the key name).
    keep_prefix: Option<usize>,
    /// Capture group kept verbatim after the marker (e.g. the URL's `@`).
    keep_suffix: Option<usize>,
}

/// Compiled redaction rules.
#[derive(Debug, Clone)]
pub struct Redactor {
    rules: Vec<Rule>,
}

fn rule(kind: &str, pattern: &str, keep_prefix: Option<usize>, keep_suffix: Option<usize>) -> Rule {
    Rule {
        kind: kind.to_string(),
        regex: Regex::new(pattern).expect("built-in redaction pattern compiles"),
        keep_prefix,
        keep_suffix,
    }
}

impl Redactor {
    /// Build the rules; a custom pattern that does not compile is an error naming it.
    pub fn new(config: &RedactionConfig) -> Result<Self, String> {
        let mut rules = vec![
            rule(
                "private_key",
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
                None,
                None,
            ),
            // scheme://user:password@host: keep the scheme and user.
            rule(
                "url_password",
                r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(@)",
                Some(1),
                Some(2),
            ),
            rule(
                "bearer_token",
                r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*",
                Some(1),
                None,
            ),
            // Provider key formats: OpenAI / Anthropic `sk-`, Groq `gsk_`, AWS access
            // key ids, GitHub tokens, Slack tokens, Google API keys.
            rule(
                "api_key",
                r"\b(?:sk-(?:ant-)?[A-Za-z0-9_\-]{20,}|gsk_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35})\b",
                None,
                None,
            ),
            // key = value / key: value / "key": "value" for secret-looking key names.
            rule(
                "secret_value",
                r#"(?i)(\b(?:api[_-]?key|apikey|secret|client[_-]?secret|access[_-]?token|auth[_-]?token|token|password|passwd|pwd)\b["']?\s*[:=]\s*["']?)[^\s"',;&}]{3,}"#,
                Some(1),
                None,
            ),
        ];
        if config.emails {
            rules.push(rule(
                "email",
                r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b",
                None,
                None,
            ));
        }
        if config.ips {
            rules.push(rule(
                "ip",
                r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
                None,
                None,
            ));
        }
        for (name, pattern) in &config.custom {
            let regex = Regex::new(pattern)
                .map_err(|e| format!("redaction pattern `{name}` does not compile: {e}"))?;
            rules.push(Rule {
                kind: name.clone(),
                regex,
                keep_prefix: None,
                keep_suffix: None,
            });
        }
        Ok(Self { rules })
    }

    /// Replace every secret and personal datum in `text`.
    pub fn redact(&self, text: &str) -> Redacted {
        let mut out = Redacted {
            text: text.to_string(),
            counts: BTreeMap::new(),
        };
        for r in &self.rules {
            let mut n = 0;
            let replaced = r.regex.replace_all(&out.text, |c: &Captures| {
                // Leave markers of earlier rules alone.
                if c[0].contains("[REDACTED:") {
                    return c[0].to_string();
                }
                n += 1;
                let keep = |g: Option<usize>| {
                    g.and_then(|i| c.get(i))
                        .map_or("", |m| m.as_str())
                        .to_string()
                };
                format!(
                    "{}[REDACTED:{}]{}",
                    keep(r.keep_prefix),
                    r.kind,
                    keep(r.keep_suffix)
                )
            });
            if n > 0 {
                out.text = replaced.into_owned();
                *out.counts.entry(r.kind.clone()).or_default() += n;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
