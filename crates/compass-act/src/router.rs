//! The router: which agent handles a problem (an error message COMPASS found) or a
//! command. Rules decide by default: the first rule whose pattern matches names the
//! agent. With a model configured the model may suggest an agent first; its answer is
//! used only when it names a known agent, and the rule route is the fallback (the
//! reason is kept) when it fails, answers something else, or the suggested agent has
//! nothing to offer for the problem.

use std::fmt;
use std::str::FromStr;

use compass_engine::llm::{ChatMessage, ChatRequest, JsonSchema, LanguageModel};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::action::Action;

/// The agents that carry out remediation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agent {
    /// Edits the configuration file (the CPF manager).
    Config,
    /// Kernel parameters such as huge pages (the OS agent).
    Os,
    /// Graceful or forced restart, then the start-up watch.
    Restart,
    /// Scales a workload.
    Scale,
    /// Runs an allowlisted program.
    Command,
    /// No automatic remedy: a human must act (the advice says what to look at).
    Human,
}

impl Agent {
    pub const ALL: [Agent; 6] = [
        Agent::Config,
        Agent::Os,
        Agent::Restart,
        Agent::Scale,
        Agent::Command,
        Agent::Human,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Config => "config",
            Agent::Os => "os",
            Agent::Restart => "restart",
            Agent::Scale => "scale",
            Agent::Command => "command",
            Agent::Human => "human",
        }
    }

    /// The agent that carries out a command.
    pub fn for_action(a: &Action) -> Agent {
        match a {
            Action::EditConfig { .. } => Agent::Config,
            Action::SetKernelParam { .. } => Agent::Os,
            Action::RestartService { .. } => Agent::Restart,
            Action::ScaleWorkload { .. } => Agent::Scale,
            Action::RunCommand { .. } => Agent::Command,
        }
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Agent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Agent::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| format!("`{s}` is not an agent"))
    }
}

/// A routing rule: a pattern over the problem text and the agent it names.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: &'static str,
    pub pattern: Regex,
    pub agent: Agent,
}

/// Who chose the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum RoutedBy {
    Rule {
        rule: String,
    },
    /// No rule matched.
    Default,
    Model {
        model: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub agent: Agent,
    #[serde(flatten)]
    pub by: RoutedBy,
    /// Why the model's suggestion was not taken, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

pub struct Router {
    rules: Vec<Rule>,
    model: Option<std::sync::Arc<dyn LanguageModel>>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("rules", &self.rules.len())
            .field("model", &self.model.as_ref().map(|m| m.model().to_string()))
            .finish()
    }
}

impl Router {
    pub fn new(rules: Vec<Rule>) -> Self {
        Router { rules, model: None }
    }

    pub fn with_model(mut self, model: std::sync::Arc<dyn LanguageModel>) -> Self {
        self.model = Some(model);
        self
    }

    /// The rule route: the first matching rule, else `Human`.
    pub fn by_rules(&self, text: &str) -> Route {
        match self.rules.iter().find(|r| r.pattern.is_match(text)) {
            Some(r) => Route {
                agent: r.agent,
                by: RoutedBy::Rule {
                    rule: r.name.to_string(),
                },
                fallback: None,
            },
            None => Route {
                agent: Agent::Human,
                by: RoutedBy::Default,
                fallback: None,
            },
        }
    }

    /// Routes a problem: the model's suggestion when configured and `usable` accepts
    /// it, else the rules.
    pub async fn route(&self, text: &str, usable: impl Fn(Agent) -> bool) -> Route {
        let rules = self.by_rules(text);
        let Some(model) = &self.model else {
            return rules;
        };
        let why = match ask(model.as_ref(), text).await {
            Ok(a) if usable(a) => {
                return Route {
                    agent: a,
                    by: RoutedBy::Model {
                        model: model.model().to_string(),
                    },
                    fallback: None,
                };
            }
            Ok(a) => format!("the model suggested the {a} agent, which has no remedy for this"),
            Err(e) => e,
        };
        Route {
            fallback: Some(why),
            ..rules
        }
    }
}

async fn ask(model: &dyn LanguageModel, text: &str) -> Result<Agent, String> {
    let agents: Vec<&str> = Agent::ALL.iter().map(|a| a.as_str()).collect();
    let request = ChatRequest {
        messages: vec![
            ChatMessage::system(
                "You route an InterSystems IRIS operations problem to the agent that can fix \
                 it. Agents: config (edit a CPF parameter), os (kernel settings such as huge \
                 pages), restart (restart the instance), scale (add replicas), command (run an \
                 allowlisted maintenance program), human (nothing safe to automate). Answer \
                 with JSON only.",
            ),
            ChatMessage::user(format!("Problem: {text}")),
        ],
        max_tokens: 40,
        temperature: 0.0,
        schema: Some(JsonSchema {
            name: "route".into(),
            description: "The agent that handles the problem".into(),
            schema: serde_json::json!({
                "type": "object",
                "properties": {"agent": {"type": "string", "enum": agents}},
                "required": ["agent"]
            }),
        }),
    };
    let resp = model
        .complete(&request)
        .await
        .map_err(|e| format!("the model failed: {e}"))?;
    #[derive(Deserialize)]
    struct A {
        agent: String,
    }
    let a: A = serde_json::from_str(resp.content.trim())
        .map_err(|e| format!("the model's answer is not {{\"agent\": …}}: {e}"))?;
    a.agent
        .parse()
        .map_err(|e| format!("the model's answer was refused: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use compass_engine::llm::{ChatResponse, LlmError};
    use std::sync::Arc;

    fn router() -> Router {
        Router::new(vec![
            Rule {
                name: "heap",
                pattern: Regex::new("(?i)gmheap").unwrap(),
                agent: Agent::Config,
            },
            Rule {
                name: "pages",
                pattern: Regex::new("(?i)huge pages").unwrap(),
                agent: Agent::Os,
            },
        ])
    }

    struct Says(&'static str);

    #[async_trait]
    impl LanguageModel for Says {
        fn provider(&self) -> &str {
            "scripted"
        }
        fn model(&self) -> &str {
            "scripted-1"
        }
        fn count_prompt_tokens(&self, _: &ChatRequest) -> u64 {
            1
        }
        async fn complete(&self, _: &ChatRequest) -> Result<ChatResponse, LlmError> {
            if self.0.is_empty() {
                return Err(LlmError::Timeout {
                    provider: "scripted".into(),
                    after: std::time::Duration::from_secs(3),
                });
            }
            Ok(ChatResponse {
                content: self.0.into(),
                usage: None,
                model: "scripted-1".into(),
                finish_reason: None,
            })
        }
    }

    #[tokio::test]
    async fn rules_route_first_match_else_human() {
        let r = router();
        let a = r.route("Insufficient gmheap", |_| true).await;
        assert_eq!(a.agent, Agent::Config);
        assert_eq!(
            a.by,
            RoutedBy::Rule {
                rule: "heap".into()
            }
        );
        let b = r.route("License limit exceeded", |_| true).await;
        assert_eq!((b.agent, b.by), (Agent::Human, RoutedBy::Default));
        assert_eq!(
            Agent::for_action(&Action::SetKernelParam {
                param: "vm.nr_hugepages".into(),
                value: "1".into()
            }),
            Agent::Os
        );
    }

    #[tokio::test]
    async fn a_model_suggests_and_rules_are_the_fallback() {
        let r = router().with_model(Arc::new(Says(r#"{"agent":"os"}"#)));
        let a = r.route("Insufficient gmheap", |_| true).await;
        assert_eq!(a.agent, Agent::Os);
        assert!(matches!(a.by, RoutedBy::Model { .. }));

        let a = r.route("Insufficient gmheap", |ag| ag != Agent::Os).await;
        assert_eq!(a.agent, Agent::Config, "unusable suggestion: rules decide");
        assert!(a.fallback.unwrap().contains("no remedy"));

        for (answer, want) in [
            (r#"{"agent":"reboot-the-world"}"#, "not an agent"),
            ("sure, use os", "not {\"agent\""),
            ("", "timed out"),
        ] {
            let r = router().with_model(Arc::new(Says(answer)));
            let a = r.route("huge pages", |_| true).await;
            assert_eq!(a.agent, Agent::Os);
            assert!(matches!(a.by, RoutedBy::Rule { .. }));
            let why = a.fallback.unwrap();
            assert!(why.contains(want), "{why}");
        }
    }
}
