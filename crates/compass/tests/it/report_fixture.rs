//! A realistic investigation for the report tests: checkout latency caused by payments'
//! database pool running dry, with a competing bad-deploy hypothesis, a network hypothesis,
//! a disproven CPU hypothesis, and agents that succeeded, degraded and timed out.
//!
//! Used as a module (`mod report_fixture;`) by the `report_*` test files; compiled on its
//! own it only checks that the fixture holds what those tests rely on.

use compass_core::model::*;
use std::collections::BTreeMap;

/// 2026-03-14 09:32:00 UTC, the alert time.
pub const ALERT: EpochMs = 1_773_480_720_000;
const MIN: EpochMs = 60_000;
const SEC: EpochMs = 1_000;

fn query(language: &str, query: &str) -> Locator {
    Locator::Query {
        language: language.into(),
        query: query.into(),
    }
}

fn file(path: &str, first_line: u64, last_line: u64) -> Locator {
    Locator::File {
        path: path.into(),
        first_line,
        last_line,
    }
}

/// One point every 30 s from `start`, following `values`.
fn series(start: EpochMs, values: &[f64]) -> Sample {
    let points = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (start + i as i64 * 30 * SEC, v))
        .collect();
    Sample::Points { points }
}

fn evidence(
    source: &str,
    locator: Locator,
    sample: Sample,
    quality: QualityGrade,
    stance: Stance,
    summary: &str,
) -> Evidence {
    Evidence {
        source: source.into(),
        locator,
        time_range: TimeRange::new(ALERT - 6 * MIN, ALERT + 3 * MIN),
        sample,
        quality,
        stance,
        summary: summary.into(),
    }
}

fn attempt(
    strategy: DisproofStrategy,
    expected: &str,
    observed: &str,
    outcome: DisproofOutcome,
) -> DisproofAttempt {
    DisproofAttempt {
        strategy,
        expected: expected.into(),
        observed: observed.into(),
        outcome,
    }
}

fn pool_hypothesis() -> Hypothesis {
    let pool_in_use = series(
        ALERT - 6 * MIN,
        &[
            14.0, 15.0, 13.0, 16.0, 15.0, 17.0, 18.0, 16.0, 38.0, 50.0, 50.0, 50.0, 50.0, 50.0,
            50.0, 50.0, 50.0, 49.0,
        ],
    );
    let checkout_p99 = series(
        ALERT - 6 * MIN,
        &[
            0.21, 0.22, 0.2, 0.23, 0.22, 0.24, 0.25, 0.23, 0.31, 1.2, 2.1, 2.6, 2.8, 2.7, 2.9, 2.8,
            2.7, 2.8,
        ],
    );
    Hypothesis {
        id: "payments:db_pool_exhaustion:db-pool".into(),
        statement: "The payments service exhausted its PostgreSQL connection pool (50/50 in use), \
                    so checkout requests queued behind payment authorisation."
            .into(),
        root_cause: RootCause {
            service: "payments".into(),
            component: Some("db-pool".into()),
            fault_kind: FaultKind::DbPoolExhaustion,
        },
        category: Category::Database,
        observation_ids: vec!["metrics-1".into(), "logs-1".into(), "traces-1".into()],
        supporting: vec![
            evidence(
                "bundle:logs",
                file("logs/payments.log", 1203, 1288),
                Sample::LogLines {
                    lines: vec![
                        "2026-03-14T09:30:41.118Z ERROR payments HikariPool-1 - Connection is not available, request timed out after 5000ms (total=50, active=50, idle=0, waiting=187)".into(),
                        "2026-03-14T09:30:41.402Z WARN  payments rejected body=\"<script>alert('pwned')</script>\" & retrying".into(),
                        "2026-03-14T09:30:42.007Z ERROR payments POST /authorize 503 after 5012ms".into(),
                    ],
                    template: Some("HikariPool-1 - Connection is not available, request timed out after <*>ms (total=<*>, active=<*>, idle=<*>, waiting=<*>)".into()),
                },
                QualityGrade::Corroborated,
                Stance::Supports,
                "412 \"Connection is not available\" errors in payments from 09:30:41",
            ),
            evidence(
                "bundle:metrics",
                query("promql", "max by (pod) (hikaricp_connections_active{service=\"payments\",pool=\"HikariPool-1\"})"),
                pool_in_use,
                QualityGrade::Direct,
                Stance::Supports,
                "Active pool connections pinned at the maximum (50) from 09:30:00",
            ),
            evidence(
                "bundle:traces",
                query("traceql", "{ resource.service.name = \"checkout\" && duration > 2s } >> { resource.service.name = \"payments\" }"),
                Sample::Spans {
                    spans: vec![
                        "checkout POST /cart/checkout 2.84s".into(),
                        "  payments POST /authorize 2.79s".into(),
                        "    payments pool.acquire 2.71s (error: timeout)".into(),
                    ],
                    path: vec![
                        path_span("checkout", "POST /cart/checkout", 1773480641000, 2840.0, 0, false, false),
                        path_span("payments", "POST /authorize", 1773480641030, 2790.0, 1, false, false),
                        path_span("payments", "pool.acquire", 1773480641060, 2710.0, 2, true, true),
                        path_span("payments", "db.query", 1773480643780, 12.5, 3, false, false),
                    ],
                },
                QualityGrade::Indirect,
                Stance::Supports,
                "94% of slow checkout time is spent in payments waiting for a connection",
            ),
            evidence(
                "bundle:metrics",
                query("promql", "histogram_quantile(0.99, sum by (le) (rate(http_server_duration_seconds_bucket{service=\"checkout\"}[1m])))"),
                checkout_p99,
                QualityGrade::Circumstantial,
                Stance::Supports,
                "checkout p99 latency rose from 0.2 s to 2.8 s right after the pool filled",
            ),
        ],
        contradicting: vec![],
        disproof: vec![
            attempt(DisproofStrategy::Temporal, "pool saturates before checkout latency rises", "pool full at 09:30:00; checkout p99 above 1 s at 09:30:30", DisproofOutcome::Survived),
            attempt(DisproofStrategy::Scope, "only callers of payments are slow", "checkout is slow; search and catalog (no payments calls) are normal", DisproofOutcome::Survived),
            attempt(DisproofStrategy::Threshold, "active connections leave their normal band", "14–18 normally, 50 (the maximum) during the incident", DisproofOutcome::Survived),
        ],
        status: HypothesisStatus::Validated,
        confidence: Confidence {
            value: 0.82,
            reasoning: "Direct metric and corroborated log evidence, onset 2 min before the alert; survived all three disproof checks".into(),
        },
        proposed_by: vec!["metrics-agent".into(), "logs-agent".into()],
        next_checks: vec![
            "Check for long-running transactions holding connections: SELECT pid, state, now() - xact_start FROM pg_stat_activity ORDER BY 3 DESC".into(),
            "Compare the payments pool size with the PostgreSQL max_connections budget".into(),
        ],
        onset: ALERT - 2 * MIN,
    }
}

fn deploy_hypothesis() -> Hypothesis {
    Hypothesis {
        id: "payments:bad_deploy:-".into(),
        statement: "Release payments v2.14.1 (deployed 09:28) introduced a connection leak.".into(),
        root_cause: RootCause { service: "payments".into(), component: None, fault_kind: FaultKind::BadDeploy },
        category: Category::Change,
        observation_ids: vec!["changes-1".into()],
        supporting: vec![evidence(
            "bundle:changes",
            file("changes/deploys.jsonl", 42, 42),
            Sample::Text { text: "{\"service\":\"payments\",\"version\":\"v2.14.1\",\"by\":\"ci\",\"at\":\"2026-03-14T09:28:05Z\"}".into() },
            QualityGrade::Circumstantial,
            Stance::Supports,
            "payments v2.14.1 rolled out 2 min before the pool filled",
        )],
        contradicting: vec![evidence(
            "bundle:metrics",
            query("promql", "sum(rate(hikaricp_connections_created_total{service=\"payments\"}[5m]))"),
            series(ALERT - 6 * MIN, &[0.2, 0.2, 0.3, 0.2, 0.2, 0.3, 0.2, 0.2, 0.3, 0.2, 0.2, 0.2]),
            QualityGrade::Indirect,
            Stance::Contradicts,
            "Connection creation rate did not change after the deploy (no leak signature)",
        )],
        disproof: vec![attempt(
            DisproofStrategy::Temporal,
            "the deploy precedes the saturation",
            "deploy at 09:28:05, saturation at 09:30:00: consistent but not conclusive",
            DisproofOutcome::Inconclusive,
        )],
        status: HypothesisStatus::RequiresHuman,
        confidence: Confidence { value: 0.41, reasoning: "Timing fits, but the connection creation rate shows no leak".into() },
        proposed_by: vec!["changes-agent".into()],
        next_checks: vec!["Diff v2.14.0..v2.14.1 for changes to transaction handling".into()],
        onset: ALERT - 3 * MIN - 55 * SEC,
    }
}

fn network_hypothesis() -> Hypothesis {
    Hypothesis {
        id: "checkout:network_latency:-".into(),
        statement: "Network latency between checkout and payments slowed checkout requests.".into(),
        root_cause: RootCause {
            service: "checkout".into(),
            component: None,
            fault_kind: FaultKind::NetworkLatency,
        },
        category: Category::Network,
        observation_ids: vec!["traces-2".into()],
        supporting: vec![evidence(
            "bundle:traces",
            query(
                "traceql",
                "{ resource.service.name = \"checkout\" && span.net.peer.name = \"payments\" }",
            ),
            Sample::Spans {
                spans: vec!["checkout → payments client span 2.80s, server span 2.79s".into()],
                path: Vec::new(),
            },
            QualityGrade::Weak,
            Stance::Supports,
            "Client spans to payments are slow, but server spans are just as slow",
        )],
        contradicting: vec![],
        disproof: vec![attempt(
            DisproofStrategy::Scope,
            "other callers of the network path are slow too",
            "only payments calls are slow",
            DisproofOutcome::Inconclusive,
        )],
        status: HypothesisStatus::Validated,
        confidence: Confidence {
            value: 0.12,
            reasoning: "Client and server span durations match, leaving no time for the network"
                .into(),
        },
        proposed_by: vec!["traces-agent".into()],
        next_checks: vec![],
        onset: ALERT - MIN - 30 * SEC,
    }
}

fn cpu_hypothesis() -> Hypothesis {
    Hypothesis {
        id: "checkout:cpu_saturation:cpu".into(),
        statement: "CPU saturation in checkout pods slowed request handling.".into(),
        root_cause: RootCause {
            service: "checkout".into(),
            component: Some("cpu".into()),
            fault_kind: FaultKind::CpuSaturation,
        },
        category: Category::Infrastructure,
        observation_ids: vec!["metrics-2".into()],
        supporting: vec![evidence(
            "bundle:metrics",
            query(
                "promql",
                "sum by (pod) (rate(container_cpu_usage_seconds_total{namespace=\"shop\",pod=~\"checkout-.*\"}[1m]))",
            ),
            series(
                ALERT - 6 * MIN,
                &[
                    0.31, 0.33, 0.3, 0.32, 0.35, 0.34, 0.36, 0.38, 0.41, 0.39, 0.37, 0.36,
                ],
            ),
            QualityGrade::Weak,
            Stance::Supports,
            "checkout CPU rose slightly (0.31 → 0.41 cores)",
        )],
        contradicting: vec![],
        disproof: vec![
            attempt(
                DisproofStrategy::Threshold,
                "CPU near the 1-core limit",
                "peak 0.41 cores, 41% of the limit: inside the normal band",
                DisproofOutcome::Disproven,
            ),
            attempt(
                DisproofStrategy::Temporal,
                "CPU rises before latency",
                "CPU rose after latency, following retries",
                DisproofOutcome::Disproven,
            ),
        ],
        status: HypothesisStatus::Disproven,
        confidence: Confidence {
            value: 0.03,
            reasoning: "Disproven by the threshold and temporal checks".into(),
        },
        proposed_by: vec!["metrics-agent".into()],
        next_checks: vec![],
        onset: ALERT - MIN,
    }
}

fn run(
    agent: &str,
    status: AgentStatus,
    duration_ms: u64,
    observations: usize,
    hypotheses: usize,
    error: Option<&str>,
) -> AgentRun {
    AgentRun {
        agent: agent.into(),
        status,
        duration_ms,
        observations,
        hypotheses,
        cost: Cost::default(),
        error: error.map(str::to_string),
    }
}

/// The investigation every report test renders.
pub fn investigation() -> Investigation {
    let mut narrator = run(
        "llm-narrator",
        AgentStatus::TimedOut,
        30_000,
        0,
        0,
        Some("timed out after 30000 ms waiting for the model"),
    );
    narrator.cost = Cost {
        prompt_tokens: 3_480,
        completion_tokens: 512,
        usd: 0.0124,
    };
    let mut changes = run("changes-agent", AgentStatus::Succeeded, 96, 1, 1, None);
    changes.cost = Cost {
        prompt_tokens: 820,
        completion_tokens: 140,
        usd: 0.0031,
    };
    let agents = vec![
        run("metrics-agent", AgentStatus::Succeeded, 1_420, 6, 2, None),
        run("logs-agent", AgentStatus::Succeeded, 2_210, 4, 1, None),
        run(
            "traces-agent",
            AgentStatus::Degraded,
            3_980,
            2,
            1,
            Some("tempo: 2 of 5 trace searches failed: 503 Service Unavailable"),
        ),
        changes,
        narrator,
    ];
    let mut cost = Cost::default();
    for agent in &agents {
        cost.add(&agent.cost);
    }
    Investigation {
        id: "inv-20260314-0932-7f3a".into(),
        incident: Incident {
            id: "am-5c2e91".into(),
            title: "CheckoutLatencyHigh: checkout p99 latency above 2s".into(),
            severity: Severity::Critical,
            start: ALERT,
            affected_services: vec!["checkout".into(), "frontend".into()],
            labels: BTreeMap::from([
                ("alertname".into(), "CheckoutLatencyHigh".into()),
                ("namespace".into(), "shop".into()),
            ]),
            origin: IncidentOrigin::Alertmanager,
        },
        status: InvestigationStatus::Degraded,
        window: TimeRange::new(ALERT - 30 * MIN, ALERT + 10 * MIN),
        observations: vec![],
        hypotheses: vec![
            pool_hypothesis(),
            deploy_hypothesis(),
            network_hypothesis(),
            cpu_hypothesis(),
        ],
        timeline: vec![
            TimelineEntry {
                time: ALERT - 3 * MIN - 55 * SEC,
                label: "deploy payments v2.14.1".into(),
                service: Some("payments".into()),
            },
            TimelineEntry {
                time: ALERT - 80 * SEC,
                label: "first \"Connection is not available\" error".into(),
                service: Some("payments".into()),
            },
            TimelineEntry {
                time: ALERT + 2 * MIN,
                label: "on-call acknowledged <page>".into(),
                service: None,
            },
        ],
        agents,
        cost,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        decisions: vec![],
        elapsed_ms: 31_250,
        llm: None,
    }
}

#[test]
fn fixture_has_what_the_report_tests_rely_on() {
    let inv = investigation();
    assert_eq!(inv.hypotheses.len(), 4);
    assert!(
        inv.hypotheses
            .iter()
            .any(|h| h.status == HypothesisStatus::Disproven)
    );
    let statuses: Vec<_> = inv.agents.iter().map(|a| a.status).collect();
    assert!(statuses.contains(&AgentStatus::Degraded) && statuses.contains(&AgentStatus::TimedOut));
}

fn path_span(
    service: &str,
    operation: &str,
    start: EpochMs,
    duration_ms: f64,
    depth: u32,
    error: bool,
    blamed: bool,
) -> compass_core::model::PathSpan {
    compass_core::model::PathSpan {
        service: service.into(),
        operation: operation.into(),
        start,
        duration_ms,
        depth,
        error,
        blamed,
    }
}
