//! From `messages.log` to proposed remediation: the error patterns of the recent
//! window (mined with the template miner, compared with what the log held before),
//! ranked, each routed to an agent that turns it into a command for a human to approve.
//! Every finding cites the lines it rests on.

use std::time::Duration;

use compass_core::model::EpochMs;
use regex::Regex;
use serde::Serialize;

use super::cpf::Cpf;
use super::messages::{IrisMessage, mine};
use super::os;
use crate::action::{Action, Command, Priority, RestartMode};
use crate::router::{Agent, Route, Router, Rule};

/// The CPF `[config]` parameters the config agent knows how to grow.
const GROWABLE: [&str; 4] = ["gmheap", "locksiz", "jrnbufs", "routines"];

/// An error pattern of the recent window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub template: String,
    /// The worst severity in the window (1 warning, 2 severe, 3 fatal).
    pub severity: u8,
    /// Occurrences in the window.
    pub count: u64,
    /// Occurrences before the window (0: the pattern is new).
    pub before: u64,
    pub first_ts: EpochMs,
    pub last_ts: EpochMs,
    /// Line numbers of the first occurrences in the window (at most five).
    pub lines: Vec<u64>,
    /// The first message of the window, component included.
    pub sample: String,
}

/// The IRIS routing rules, most specific first.
pub fn rules() -> Vec<Rule> {
    let r = |name, pattern: &str, agent| Rule {
        name,
        pattern: Regex::new(pattern).expect("a valid routing rule"),
        agent,
    };
    vec![
        r(
            "cpf-parameter",
            r"(?i)\b(gmheap|locksiz|jrnbufs|routines)\b",
            Agent::Config,
        ),
        r(
            "shared-memory",
            r"(?i)huge pages|shared memory|global buffers",
            Agent::Os,
        ),
        r(
            "journal-space",
            r"(?i)journal.*(no space|full|fail|disabled)",
            Agent::Command,
        ),
        r("license", r"(?i)licen[cs]e|\bLMF\b", Agent::Human),
        r(
            "host-resources",
            r"(?i)cannot allocate memory|could not fork|free space|disk",
            Agent::Human,
        ),
    ]
}

/// The error patterns (severity 1 and up) of the window that starts at `since`
/// (default: `window` before the last event), worst first, then new before recurring,
/// then the most frequent.
pub fn diagnose(log: &[IrisMessage], since: Option<EpochMs>, window: Duration) -> Vec<Finding> {
    let Some(last) = log.iter().map(|m| m.ts).max() else {
        return Vec::new();
    };
    let since = since.unwrap_or(last - window.as_millis() as i64);
    let (patterns, ids) = mine(log);
    let mut found: Vec<Option<Finding>> = vec![None; patterns.len()];
    let mut before = vec![0u64; patterns.len()];
    for (m, &id) in log.iter().zip(&ids) {
        if m.ts < since {
            before[id] += 1;
            continue;
        }
        if m.severity == 0 {
            continue;
        }
        let f = found[id].get_or_insert_with(|| Finding {
            template: patterns[id].template.clone(),
            severity: 0,
            count: 0,
            before: 0,
            first_ts: m.ts,
            last_ts: m.ts,
            lines: Vec::new(),
            sample: match &m.component {
                Some(c) => format!("[{c}] {}", m.message),
                None => m.message.clone(),
            },
        });
        f.severity = f.severity.max(m.severity);
        f.count += 1;
        f.first_ts = f.first_ts.min(m.ts);
        f.last_ts = f.last_ts.max(m.ts);
        if f.lines.len() < 5 {
            f.lines.push(m.line);
        }
    }
    let mut out: Vec<Finding> = found
        .into_iter()
        .enumerate()
        .filter_map(|(id, f)| {
            f.map(|mut f| {
                f.before = before[id];
                f
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then((a.before > 0).cmp(&(b.before > 0)))
            .then(b.count.cmp(&a.count))
            .then(a.lines.cmp(&b.lines))
    });
    out
}

/// What the agents need to know about the instance.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub cpf_path: String,
    pub cpf: Option<Cpf>,
    /// The instance's service name for the control program.
    pub service: String,
    pub page_kb: u64,
    /// The allowlisted program (and arguments) that switches journaling to the
    /// alternate directory, when one is configured.
    pub journal_command: Option<(String, Vec<String>)>,
    pub log: &'a [IrisMessage],
    pub incident: Option<String>,
}

/// A finding, the route it took and what the agent proposes.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub finding: Finding,
    pub route: Route,
    /// The command to plan and approve; `None` when a human must act.
    pub command: Option<Command>,
    /// What the proposal does or what the human should look at.
    pub advice: String,
}

fn evidence(f: &Finding) -> String {
    let lines: Vec<String> = f.lines.iter().map(u64::to_string).collect();
    format!(
        "messages.log line{} {}: {}",
        if lines.len() == 1 { "" } else { "s" },
        lines.join(", "),
        first_line(&f.sample)
    )
}

fn first_line(s: &str) -> &str {
    s.split('\n').next().unwrap_or(s)
}

/// The agent's remedy for a finding; `Err` when the agent has nothing to offer.
fn remedy(
    agent: Agent,
    f: &Finding,
    ctx: &Context,
    id: &str,
) -> Result<(Option<Command>, String), String> {
    let cmd = |action: Action, why: String| Command {
        id: id.to_string(),
        incident: ctx.incident.clone(),
        priority: if f.severity >= 3 {
            Priority::Critical
        } else {
            Priority::High
        },
        action,
        reason: format!("{why} ({})", evidence(f)),
        validate: None,
    };
    match agent {
        Agent::Config => {
            let text = f.sample.to_ascii_lowercase();
            let key = GROWABLE
                .into_iter()
                .find(|k| {
                    text.split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| w == *k)
                })
                .ok_or("the message names no CPF parameter the config agent can grow")?;
            let cpf = ctx.cpf.as_ref().ok_or("no CPF file was given")?;
            let current = cpf
                .get("config", key)
                .ok_or_else(|| format!("{} has no [config] {key}", ctx.cpf_path))?;
            let n: u64 = current
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!("[config] {key}={current} is not a positive number to grow")
                })?;
            let value = (n * 2).to_string();
            let why = format!("double [config] {key} from {n} to {value}");
            Ok((
                Some(cmd(
                    Action::EditConfig {
                        file: ctx.cpf_path.clone(),
                        section: "config".into(),
                        key: key.to_string(),
                        value,
                    },
                    why.clone(),
                )),
                why,
            ))
        }
        Agent::Os => {
            let cpf = ctx.cpf.as_ref().ok_or("no CPF file was given")?;
            let need = os::huge_pages(cpf, ctx.log, ctx.page_kb)?;
            let mut c = os::command(id, ctx.incident.clone(), &need);
            c.reason = format!("{} ({})", c.reason, evidence(f));
            let why = format!("reserve {} huge pages", need.pages);
            Ok((Some(c), why))
        }
        Agent::Command => {
            let (program, args) = ctx
                .journal_command
                .clone()
                .ok_or("no journal switch command is configured")?;
            let why = "switch journaling to the alternate directory".to_string();
            Ok((
                Some(cmd(Action::RunCommand { program, args }, why.clone())),
                why,
            ))
        }
        Agent::Restart => {
            let why = format!("restart {} gracefully", ctx.service);
            Ok((
                Some(cmd(
                    Action::RestartService {
                        service: ctx.service.clone(),
                        mode: RestartMode::Graceful,
                    },
                    why.clone(),
                )),
                why,
            ))
        }
        Agent::Scale => Err("an IRIS instance has no workload to scale".into()),
        Agent::Human => Ok((
            None,
            format!(
                "no safe automatic remedy; a human should look at {}",
                evidence(f)
            ),
        )),
    }
}

/// Routes the `top` worst findings and asks their agents for a remedy. A route whose
/// agent cannot help falls to a human, with the reason.
pub async fn propose(
    findings: &[Finding],
    ctx: &Context<'_>,
    router: &Router,
    top: usize,
) -> Vec<Proposal> {
    let prefix = ctx.incident.clone().unwrap_or_else(|| "iris".into());
    let mut out = Vec::new();
    for (i, f) in findings.iter().take(top).enumerate() {
        let id = format!("{prefix}-fix-{}", i + 1);
        let route = router
            .route(&f.sample, |a| remedy(a, f, ctx, &id).is_ok())
            .await;
        let (command, advice) = match remedy(route.agent, f, ctx, &id) {
            Ok(r) => r,
            Err(why) => (
                None,
                format!(
                    "the {} agent cannot help: {why}; a human should look at {}",
                    route.agent,
                    evidence(f)
                ),
            ),
        };
        out.push(Proposal {
            finding: f.clone(),
            route,
            command,
            advice,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::messages::parse;
    use crate::router::RoutedBy;
    use chrono::FixedOffset;

    const LOG: &str = "\
12/07/26-08:00:00:000 (100) 0 [Generic.Event] Allocated 749MB shared memory
12/07/26-08:10:00:000 (101) 1 [Utility.Event] LMF Info: license key iris.key expires in 9 days
12/07/26-09:20:00:000 (102) 1 [Utility.Event] LMF Info: license key iris.key expires in 8 days
12/07/26-09:21:00:000 (103) 2 [Generic.Event] Insufficient generic memory heap (gmheap=37568KB) to expand the lock table; increase gmheap
12/07/26-09:21:30:000 (104) 2 [Generic.Event] Insufficient generic memory heap (gmheap=37568KB) to expand the lock table; increase gmheap
12/07/26-09:22:00:000 (105) 0 [Generic.Event] Journal file /iris/journal/20261207.002 opened
";

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn the_recent_errors_are_found_worst_and_new_first_with_their_lines() {
        let log = parse(LOG, utc());
        let f = diagnose(&log.messages, None, Duration::from_secs(15 * 60));
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].sample.contains("gmheap"));
        assert_eq!((f[0].severity, f[0].count, f[0].before), (2, 2, 0));
        assert_eq!(f[0].lines, [4, 5]);
        assert!(f[1].template.contains("LMF Info"));
        assert_eq!(f[1].before, 1, "the license warning recurs");
        assert!(diagnose(&[], None, Duration::from_secs(60)).is_empty());
    }

    #[tokio::test]
    async fn rules_route_findings_to_agents_that_build_commands() {
        let log = parse(LOG, utc());
        let cpf = Cpf::parse(
            "[config]\nglobals=0,0,512,0,0,0\ngmheap=37568\n",
            "iris.cpf",
        )
        .unwrap();
        let ctx = Context {
            cpf_path: "/iris/iris.cpf".into(),
            cpf: Some(cpf),
            service: "IRIS".into(),
            page_kb: 2048,
            journal_command: None,
            log: &log.messages,
            incident: Some("inc-7".into()),
        };
        let f = diagnose(&log.messages, None, Duration::from_secs(15 * 60));
        let p = propose(&f, &ctx, &Router::new(rules()), 3).await;
        assert_eq!(p[0].route.agent, Agent::Config);
        let c = p[0].command.as_ref().unwrap();
        assert_eq!(c.id, "inc-7-fix-1");
        assert_eq!(
            c.action,
            Action::EditConfig {
                file: "/iris/iris.cpf".into(),
                section: "config".into(),
                key: "gmheap".into(),
                value: "75136".into()
            }
        );
        assert!(c.reason.contains("lines 4, 5"), "{}", c.reason);
        assert_eq!(p[1].route.agent, Agent::Human);
        assert_eq!(
            p[1].route.by,
            RoutedBy::Rule {
                rule: "license".into()
            }
        );
        assert!(p[1].command.is_none());
    }

    #[tokio::test]
    async fn an_agent_that_cannot_help_hands_over_to_a_human_with_the_reason() {
        let log = parse(
            "12/07/26-09:21:00:000 (1) 3 [Utility.Event] Error writing to journal file /j/1: No space left on device; journaling is disabled\n\
             12/07/26-09:21:05:000 (2) 2 [Generic.Event] Failed to allocate 2048MB shared memory using huge pages; 10 huge pages are free\n",
            utc(),
        );
        let ctx = Context {
            cpf_path: "/iris/iris.cpf".into(),
            cpf: Some(Cpf::parse("[config]\nglobals=0,0,512,0,0,0\n", "x").unwrap()),
            service: "IRIS".into(),
            page_kb: 2048,
            journal_command: None,
            log: &log.messages,
            incident: None,
        };
        let f = diagnose(&log.messages, None, Duration::from_secs(60));
        let p = propose(&f, &ctx, &Router::new(rules()), 3).await;
        assert_eq!(p[0].route.agent, Agent::Command);
        assert!(p[0].command.is_none());
        assert!(
            p[0].advice.contains("no journal switch command"),
            "{}",
            p[0].advice
        );
        assert_eq!(p[1].route.agent, Agent::Os);
        let c = p[1].command.as_ref().unwrap();
        assert_eq!(c.id, "iris-fix-2");
        assert!(matches!(c.action, Action::SetKernelParam { .. }));
    }
}
