//! The error generator for drills: realistic IRIS `messages.log` events in four
//! categories (configuration, license, OS resources, journal). Template-based by default
//! (seeded, so a drill is repeatable); with a model configured the model writes the
//! message text, and COMPASS renders the timestamp and process id itself and checks
//! the answer, falling back to a template (saying why) when the answer is unusable.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Utc};
use compass_engine::llm::{ChatMessage, ChatRequest, JsonSchema, LanguageModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::messages::{IrisMessage, parse_line};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Configuration,
    License,
    OsResources,
    Journal,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Configuration,
        Category::License,
        Category::OsResources,
        Category::Journal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Configuration => "configuration",
            Category::License => "license",
            Category::OsResources => "os_resources",
            Category::Journal => "journal",
        }
    }

    /// What the category covers, for the model's prompt and `--help`.
    pub fn describe(self) -> &'static str {
        match self {
            Category::Configuration => {
                "a CPF configuration parameter is too small or invalid (gmheap, locksiz, \
                 globals, routines)"
            }
            Category::License => "license units exhausted, an expired or invalid key",
            Category::OsResources => {
                "the operating system refuses memory, huge pages, processes or disk space"
            }
            Category::Journal => "the journal file system is full or journal writes fail",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == norm || (norm == "os" && *c == Category::OsResources))
            .ok_or_else(|| {
                format!(
                    "unknown error category `{s}`; expected one of configuration, license, \
                     os_resources, journal"
                )
            })
    }
}

/// One event template: severity, component and the text with `{placeholders}`.
struct Template {
    severity: u8,
    component: &'static str,
    text: &'static str,
}

const fn t(severity: u8, component: &'static str, text: &'static str) -> Template {
    Template {
        severity,
        component,
        text,
    }
}

const CONFIGURATION: &[Template] = &[
    t(
        2,
        "Generic.Event",
        "Insufficient generic memory heap (gmheap={kb}KB) to expand the lock table; increase gmheap",
    ),
    t(
        1,
        "Generic.Event",
        "LOCK TABLE FULL: {n} lock requests failed in the last minute; increase locksiz",
    ),
    t(
        2,
        "Utility.Event",
        "Cannot allocate {mb}MB of global buffers requested by the globals parameter; using {half}MB",
    ),
];

const LICENSE: &[Template] = &[
    t(
        2,
        "Utility.Event",
        "License limit exceeded {n} times since last license logging",
    ),
    t(
        1,
        "Utility.Event",
        "LMF Info: license key {key} expires in {days} days",
    ),
    t(
        2,
        "Utility.Event",
        "LMF Error: license key {key} is not valid: license units in use {n} exceed authorized {half}",
    ),
];

const OS_RESOURCES: &[Template] = &[
    t(
        2,
        "Generic.Event",
        "Failed to allocate {mb}MB shared memory using huge pages; {n} huge pages are free",
    ),
    t(
        2,
        "Generic.Event",
        "Could not fork child process for job {pid2}: errno 12 (Cannot allocate memory)",
    ),
    t(
        2,
        "Utility.Event",
        "Free space on database directory {dir} is {pct}% below threshold",
    ),
];

const JOURNAL: &[Template] = &[
    t(
        3,
        "Utility.Event",
        "Error writing to journal file {journal}: No space left on device; journaling is disabled",
    ),
    t(
        2,
        "Utility.Event",
        "Journal file system {jdir} is {pct}% full; journal switch to the alternate directory failed",
    ),
    t(
        1,
        "Utility.Event",
        "Journal daemon falling behind: {n} buffers waiting to be written to {journal}",
    ),
];

fn templates(c: Category) -> &'static [Template] {
    match c {
        Category::Configuration => CONFIGURATION,
        Category::License => LICENSE,
        Category::OsResources => OS_RESOURCES,
        Category::Journal => JOURNAL,
    }
}

/// How a line was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Template,
    Llm,
}

/// One generated event: its `messages.log` line and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillLine {
    pub category: Category,
    pub line: String,
    pub source: Source,
    /// Why the model's answer was not used, when a model was asked and failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// The generator: a seeded random source and the instance's clock offset.
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
    offset: FixedOffset,
}

/// The `messages.log` timestamp of `at` in the instance's local time.
pub fn timestamp(at: DateTime<Utc>, offset: FixedOffset) -> String {
    at.with_timezone(&offset)
        .format("%m/%d/%y-%H:%M:%S:%3f")
        .to_string()
}

impl Generator {
    pub fn new(seed: u64, offset: FixedOffset) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            offset,
        }
    }

    fn render(&mut self, text: &str, at: DateTime<Utc>) -> String {
        let r = &mut self.rng;
        let mb = 256 * r.random_range(2..=16u32);
        let day = at.with_timezone(&self.offset).format("%Y%m%d").to_string();
        let journal = format!("/iris/journal/{day}.{:03}", r.random_range(1..=40u32));
        let vars: [(&str, String); 11] = [
            ("{kb}", (mb * 1024 / 8).to_string()),
            ("{mb}", mb.to_string()),
            ("{half}", (mb / 2).to_string()),
            ("{n}", r.random_range(3..=500u32).to_string()),
            ("{days}", r.random_range(1..=14u32).to_string()),
            ("{key}", "iris.key".to_string()),
            ("{pid2}", r.random_range(2000..=60000u32).to_string()),
            ("{dir}", "/iris/mgr/".to_string()),
            ("{pct}", r.random_range(91..=99u32).to_string()),
            ("{journal}", journal),
            ("{jdir}", "/iris/journal/".to_string()),
        ];
        let mut s = text.to_string();
        for (k, v) in vars {
            s = s.replace(k, &v);
        }
        s
    }

    fn line(&mut self, at: DateTime<Utc>, severity: u8, component: &str, message: &str) -> String {
        let pid = self.rng.random_range(1000..=65000u32);
        format!(
            "{} ({pid}) {severity} [{component}] {message}",
            timestamp(at, self.offset)
        )
    }

    /// A template-written event of `category` at `at`.
    pub fn template(&mut self, category: Category, at: DateTime<Utc>) -> DrillLine {
        let all = templates(category);
        let tpl = &all[self.rng.random_range(0..all.len())];
        let message = self.render(tpl.text, at);
        DrillLine {
            category,
            line: self.line(at, tpl.severity, tpl.component, &message),
            source: Source::Template,
            fallback: None,
        }
    }

    /// A model-written event of `category`; a template one (with the reason) when the
    /// model fails or answers something that is not a usable IRIS event.
    pub async fn llm(
        &mut self,
        model: &dyn LanguageModel,
        category: Category,
        at: DateTime<Utc>,
    ) -> DrillLine {
        let examples: Vec<String> = (0..2).map(|_| self.template(category, at).line).collect();
        let request = ChatRequest {
            messages: vec![
                ChatMessage::system(
                    "You write one realistic InterSystems IRIS messages.log event for an \
                     operations drill. Answer with JSON only.",
                ),
                ChatMessage::user(format!(
                    "Category: {category} ({}).\nExamples of real lines:\n{}\nWrite a \
                     different event of this category: the message text (no timestamp, no \
                     process id), its severity (1 warning, 2 severe, 3 fatal) and its \
                     component (e.g. Generic.Event or Utility.Event).",
                    category.describe(),
                    examples.join("\n")
                )),
            ],
            max_tokens: 160,
            temperature: 0.8,
            schema: Some(event_schema()),
        };
        let reason = match model.complete(&request).await {
            Ok(resp) => match self.accept(&resp.content, at) {
                Ok(line) => {
                    return DrillLine {
                        category,
                        line,
                        source: Source::Llm,
                        fallback: None,
                    };
                }
                Err(why) => format!("the model's answer was refused: {why}"),
            },
            Err(e) => format!("the model failed: {e}"),
        };
        DrillLine {
            fallback: Some(reason),
            ..self.template(category, at)
        }
    }

    /// Checks a model answer and renders it as a line that parses as an IRIS event.
    fn accept(&mut self, answer: &str, at: DateTime<Utc>) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Event {
            message: String,
            severity: u8,
            component: String,
        }
        let e: Event = serde_json::from_str(answer.trim()).map_err(|e| format!("not JSON: {e}"))?;
        let message = e.message.trim();
        if message.is_empty() || message.len() > 300 || message.contains(['\n', '\r']) {
            return Err("the message must be one line of 1 to 300 characters".into());
        }
        if !(1..=3).contains(&e.severity) {
            return Err(format!("severity {} is not 1, 2 or 3", e.severity));
        }
        let component_ok = !e.component.is_empty()
            && e.component.len() <= 40
            && e.component
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
        if !component_ok {
            return Err(format!(
                "component `{}` is not like Generic.Event",
                e.component
            ));
        }
        let line = self.line(at, e.severity, &e.component, message);
        parse_line(&line, 1, self.offset).map_err(|e| e.reason)?;
        Ok(line)
    }
}

fn event_schema() -> JsonSchema {
    JsonSchema {
        name: "iris_event".into(),
        description: "One IRIS messages.log event".into(),
        schema: serde_json::json!({
            "type": "object",
            "properties": {
                "message": {"type": "string", "maxLength": 300},
                "severity": {"type": "integer", "enum": [1, 2, 3]},
                "component": {"type": "string", "maxLength": 40}
            },
            "required": ["message", "severity", "component"]
        }),
    }
}

/// Parses a generated line back (for the drill's own checks and tests).
pub fn parse_generated(line: &str, offset: FixedOffset) -> Result<IrisMessage, String> {
    parse_line(line, 1, offset).map_err(|e| e.reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use compass_engine::llm::{ChatResponse, LlmError};

    fn at() -> DateTime<Utc> {
        "2026-12-07T09:30:01.950Z".parse().unwrap()
    }

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn every_category_yields_parseable_error_events() {
        let mut g = Generator::new(7, utc());
        for c in Category::ALL {
            for _ in 0..20 {
                let d = g.template(c, at());
                let m = parse_generated(&d.line, utc()).unwrap();
                assert!(m.severity >= 1, "{}", d.line);
                assert_eq!(m.ts, at().timestamp_millis());
                assert!(!d.line.contains('{'), "unrendered placeholder: {}", d.line);
                assert_eq!(d.source, Source::Template);
            }
        }
    }

    #[test]
    fn the_seed_makes_drills_repeatable() {
        let run = |seed| {
            let mut g = Generator::new(seed, utc());
            (0..8)
                .map(|i| g.template(Category::ALL[i % 4], at()).line)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn local_time_is_written_in_the_instance_offset() {
        let cet = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(timestamp(at(), cet), "12/07/26-10:30:01:950");
        assert!("os".parse::<Category>().is_ok());
        let e = "disk".parse::<Category>().unwrap_err();
        assert!(e.contains("os_resources"), "{e}");
    }

    struct Scripted(Result<String, LlmError>);

    #[async_trait]
    impl LanguageModel for Scripted {
        fn provider(&self) -> &str {
            "scripted"
        }
        fn model(&self) -> &str {
            "scripted"
        }
        fn count_prompt_tokens(&self, _: &ChatRequest) -> u64 {
            10
        }
        async fn complete(&self, _: &ChatRequest) -> Result<ChatResponse, LlmError> {
            self.0.clone().map(|content| ChatResponse {
                content,
                usage: None,
                model: "scripted".into(),
                finish_reason: Some("stop".into()),
            })
        }
    }

    #[tokio::test]
    async fn a_model_writes_the_text_and_compass_the_format() {
        let mut g = Generator::new(3, utc());
        let m = Scripted(Ok(r#"{"message":"Journal file /j/x.001 cannot be extended: disk quota exceeded","severity":3,"component":"Utility.Event"}"#.into()));
        let d = g.llm(&m, Category::Journal, at()).await;
        assert_eq!(d.source, Source::Llm, "{d:?}");
        let ev = parse_generated(&d.line, utc()).unwrap();
        assert_eq!(ev.severity, 3);
        assert!(ev.message.contains("disk quota"));
    }

    #[tokio::test]
    async fn unusable_answers_fall_back_to_a_template_with_the_reason() {
        let cases = [
            (Ok("not json".to_string()), "not JSON"),
            (
                Ok(r#"{"message":"x","severity":0,"component":"Generic.Event"}"#.into()),
                "severity 0",
            ),
            (
                Ok(r#"{"message":"two\nlines","severity":2,"component":"G"}"#.into()),
                "one line",
            ),
            (
                Ok(r#"{"message":"m","severity":2,"component":"rm -rf /"}"#.into()),
                "component",
            ),
            (
                Err(LlmError::Unavailable {
                    provider: "p".into(),
                    detail: "connection refused".into(),
                }),
                "connection refused",
            ),
        ];
        for (answer, want) in cases {
            let mut g = Generator::new(3, utc());
            let d = g.llm(&Scripted(answer), Category::License, at()).await;
            assert_eq!(d.source, Source::Template);
            let why = d.fallback.unwrap();
            assert!(why.contains(want), "{why}");
            parse_generated(&d.line, utc()).unwrap();
        }
    }
}
