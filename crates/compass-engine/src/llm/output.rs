//! The structured answers the LLM steps ask for, their JSON schemas, and their
//! validation. An answer is first parsed into the typed structs here (shape and types),
//! then checked against the investigation (value ranges, that cited observation ids
//! exist, that a named service is one the investigation saw). Every problem is listed
//! with its JSON path, so the repair prompt can say exactly what to fix.

use compass_core::FaultKind;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

use super::JsonSchema;

/// Most hypotheses one answer may propose.
pub const MAX_PROPOSED_HYPOTHESES: usize = 5;
/// Most follow-up queries one answer may ask for.
pub const MAX_PROPOSED_QUERIES: usize = 3;
/// Longest hypothesis statement, characters.
pub const MAX_STATEMENT_CHARS: usize = 300;
/// Longest summary, characters.
pub const MAX_SUMMARY_CHARS: usize = 1500;

/// A root cause the model proposes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedHypothesis {
    pub statement: String,
    pub service: String,
    #[serde(default)]
    pub component: Option<String>,
    pub fault_kind: FaultKind,
    pub confidence: f64,
    /// Ids of the observations that support it (at least one).
    pub evidence: Vec<String>,
}

/// A follow-up query the model asks for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedQuery {
    /// `promql` or `logql`.
    pub language: String,
    pub query: String,
    pub reason: String,
}

/// The answer of the hypotheses and follow-up steps.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposals {
    pub hypotheses: Vec<ProposedHypothesis>,
    #[serde(default)]
    pub queries: Vec<ProposedQuery>,
}

/// The answer of the summary step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub summary: String,
}

/// What an answer may refer to.
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    pub observation_ids: BTreeSet<String>,
    pub services: BTreeSet<String>,
}

/// Why an answer cannot be used: every problem, each with its JSON path.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub Vec<String>);

/// How many problems a message lists (the rest are counted).
const SHOWN_PROBLEMS: usize = 8;

impl std::fmt::Display for Invalid {
    /// Each distinct problem once, at most [`SHOWN_PROBLEMS`] of them: a model that
    /// repeats one mistake fifty times gets a short repair prompt and a short report.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut seen = std::collections::BTreeSet::new();
        let distinct: Vec<&str> = self
            .0
            .iter()
            .map(String::as_str)
            .filter(|p| seen.insert(*p))
            .collect();
        let shown = distinct.len().min(SHOWN_PROBLEMS);
        f.write_str(&distinct[..shown].join("; "))?;
        if distinct.len() > shown {
            write!(f, "; (+{} more)", distinct.len() - shown)?;
        }
        Ok(())
    }
}

fn fault_kinds() -> Vec<&'static str> {
    FaultKind::ALL.iter().map(|k| k.as_str()).collect()
}

/// The schema of [`Proposals`]; `with_queries` adds the follow-up queries.
pub fn proposals_schema(with_queries: bool) -> JsonSchema {
    let hypothesis = json!({
        "type": "object",
        "properties": {
            "statement": {"type": "string", "maxLength": MAX_STATEMENT_CHARS},
            "service": {"type": "string"},
            "component": {"type": "string"},
            "fault_kind": {"type": "string", "enum": fault_kinds()},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "evidence": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 8}
        },
        "required": ["statement", "service", "fault_kind", "confidence", "evidence"],
        "additionalProperties": false
    });
    let mut properties = json!({
        "hypotheses": {"type": "array", "items": hypothesis, "maxItems": MAX_PROPOSED_HYPOTHESES}
    });
    let mut required = vec!["hypotheses"];
    if with_queries {
        properties["queries"] = json!({
            "type": "array",
            "maxItems": MAX_PROPOSED_QUERIES,
            "items": {
                "type": "object",
                "properties": {
                    "language": {"type": "string", "enum": ["promql", "logql"]},
                    "query": {"type": "string", "maxLength": 400},
                    "reason": {"type": "string", "maxLength": 200}
                },
                "required": ["language", "query", "reason"],
                "additionalProperties": false
            }
        });
        required.push("queries");
    }
    JsonSchema {
        name: "propose_hypotheses".into(),
        description: "Root-cause hypotheses tied to observation ids, and follow-up queries.".into(),
        schema: json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false
        }),
    }
}

/// The schema of [`Summary`].
pub fn summary_schema() -> JsonSchema {
    JsonSchema {
        name: "write_summary".into(),
        description: "A short summary of the investigation for the on-call engineer.".into(),
        schema: json!({
            "type": "object",
            "properties": {"summary": {"type": "string", "maxLength": MAX_SUMMARY_CHARS}},
            "required": ["summary"],
            "additionalProperties": false
        }),
    }
}

/// The JSON value in a model's answer: the whole text, or the first `{...}` block in
/// it (small models wrap JSON in prose or code fences).
fn json_value(text: &str) -> Result<Value, Invalid> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        return Ok(v);
    }
    if let (Some(a), Some(b)) = (trimmed.find('{'), trimmed.rfind('}'))
        && a < b
        && let Ok(v) = serde_json::from_str::<Value>(&trimmed[a..=b])
    {
        return Ok(v);
    }
    let excerpt: String = trimmed.chars().take(120).collect();
    Err(Invalid(vec![format!(
        "the answer is not one JSON object (it starts `{excerpt}`)"
    )]))
}

fn typed<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, Invalid> {
    serde_json::from_value(v).map_err(|e| Invalid(vec![format!("wrong shape: {e}")]))
}

/// Parse and check a [`Proposals`] answer.
pub fn parse_proposals(
    text: &str,
    ctx: &ValidationContext,
    with_queries: bool,
) -> Result<Proposals, Invalid> {
    let p: Proposals = typed(json_value(text)?)?;
    let mut problems = Vec::new();
    if p.hypotheses.len() > MAX_PROPOSED_HYPOTHESES {
        problems.push(format!(
            "hypotheses: {} items, at most {MAX_PROPOSED_HYPOTHESES} allowed",
            p.hypotheses.len()
        ));
    }
    for (i, h) in p.hypotheses.iter().enumerate() {
        let at = format!("hypotheses[{i}]");
        let chars = h.statement.chars().count();
        if h.statement.trim().is_empty() {
            problems.push(format!("{at}.statement is empty"));
        } else if chars > MAX_STATEMENT_CHARS {
            problems.push(format!(
                "{at}.statement has {chars} characters, at most {MAX_STATEMENT_CHARS}"
            ));
        }
        if !(0.0..=1.0).contains(&h.confidence) {
            problems.push(format!(
                "{at}.confidence is {}, must be between 0 and 1",
                h.confidence
            ));
        }
        if h.fault_kind == FaultKind::Unknown {
            problems.push(format!(
                "{at}.fault_kind `unknown` is not allowed; use one of {}",
                fault_kinds().join(", ")
            ));
        }
        if !ctx.services.contains(&h.service) {
            problems.push(format!(
                "{at}.service `{}` is not a service of this investigation",
                h.service
            ));
        }
        if h.evidence.is_empty() {
            problems.push(format!("{at}.evidence is empty: cite observation ids"));
        }
        for id in &h.evidence {
            if !ctx.observation_ids.contains(id) {
                problems.push(format!("{at}.evidence: no observation has id `{id}`"));
            }
        }
    }
    if !with_queries && !p.queries.is_empty() {
        problems.push("queries: not asked for in this step".into());
    }
    if p.queries.len() > MAX_PROPOSED_QUERIES {
        problems.push(format!(
            "queries: {} items, at most {MAX_PROPOSED_QUERIES} allowed",
            p.queries.len()
        ));
    }
    for (i, q) in p.queries.iter().enumerate() {
        if q.language != "promql" && q.language != "logql" {
            problems.push(format!(
                "queries[{i}].language `{}` must be `promql` or `logql`",
                q.language
            ));
        }
        if q.query.trim().is_empty() {
            problems.push(format!("queries[{i}].query is empty"));
        }
    }
    if problems.is_empty() {
        Ok(p)
    } else {
        Err(Invalid(problems))
    }
}

/// Parse and check a [`Summary`] answer.
pub fn parse_summary(text: &str) -> Result<Summary, Invalid> {
    let s: Summary = typed(json_value(text)?)?;
    let chars = s.summary.chars().count();
    if s.summary.trim().is_empty() {
        Err(Invalid(vec!["summary is empty".into()]))
    } else if chars > MAX_SUMMARY_CHARS {
        Err(Invalid(vec![format!(
            "summary has {chars} characters, at most {MAX_SUMMARY_CHARS}"
        )]))
    } else {
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_listed_once_and_capped() {
        let mut problems: Vec<String> = vec!["a".into(); 5];
        problems.extend((0..10).map(|i| format!("p{i}")));
        let text = Invalid(problems).to_string();
        assert_eq!(text, "a; p0; p1; p2; p3; p4; p5; p6; (+3 more)");
    }

    fn ctx() -> ValidationContext {
        ValidationContext {
            observation_ids: ["metrics-1", "logs-2"].map(String::from).into(),
            services: ["cart", "db"].map(String::from).into(),
        }
    }

    #[test]
    fn a_valid_answer_parses_even_inside_prose() {
        let text = r#"Here you go:
```json
{"hypotheses":[{"statement":"db pool exhausted","service":"db","fault_kind":"db_pool_exhaustion","confidence":0.6,"evidence":["metrics-1"]}],
 "queries":[{"language":"promql","query":"rate(x_total{service=\"db\"}[5m])","reason":"check"}]}
```"#;
        let p = parse_proposals(text, &ctx(), true).unwrap();
        assert_eq!(p.hypotheses[0].fault_kind, FaultKind::DbPoolExhaustion);
        assert_eq!(p.queries.len(), 1);
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let text = r#"{"hypotheses":[{"statement":"","service":"ghost","fault_kind":"memory_leak","confidence":1.5,"evidence":["metrics-9"]}]}"#;
        let e = parse_proposals(text, &ctx(), true).unwrap_err();
        let all = e.to_string();
        assert!(all.contains("hypotheses[0].statement is empty"), "{all}");
        assert!(all.contains("confidence is 1.5"), "{all}");
        assert!(all.contains("service `ghost`"), "{all}");
        assert!(all.contains("no observation has id `metrics-9`"), "{all}");
        assert_eq!(e.0.len(), 4);
    }

    #[test]
    fn wrong_shapes_and_non_json_are_rejected() {
        for bad in [
            "not json at all",
            r#"{"hypotheses": "none"}"#,
            r#"{"hypotheses": [], "extra": 1}"#,
            r#"{"hypotheses":[{"statement":"x","service":"db","fault_kind":"gremlins","confidence":0.5,"evidence":["metrics-1"]}]}"#,
            r#"{"hypotheses":[{"statement":"x","service":"db""#,
        ] {
            assert!(parse_proposals(bad, &ctx(), true).is_err(), "{bad}");
        }
        let q =
            r#"{"hypotheses":[],"queries":[{"language":"sql","query":"select 1","reason":"r"}]}"#;
        assert!(parse_proposals(q, &ctx(), true).is_err());
        let q = r#"{"hypotheses":[],"queries":[{"language":"promql","query":"up","reason":"r"}]}"#;
        assert!(parse_proposals(q, &ctx(), false).is_err());
    }

    #[test]
    fn summaries_are_bounded() {
        assert_eq!(
            parse_summary(r#"{"summary":"db pool"}"#).unwrap().summary,
            "db pool"
        );
        assert!(parse_summary(r#"{"summary":"  "}"#).is_err());
        let long = format!(r#"{{"summary":"{}"}}"#, "a".repeat(MAX_SUMMARY_CHARS + 1));
        assert!(parse_summary(&long).is_err());
    }

    #[test]
    fn schemas_name_every_fault_kind_but_unknown() {
        let s = proposals_schema(true).schema.to_string();
        for k in FaultKind::ALL {
            assert!(s.contains(k.as_str()));
        }
        assert!(!s.contains("\"unknown\""));
        assert!(
            !proposals_schema(false)
                .schema
                .to_string()
                .contains("queries")
        );
    }
}
