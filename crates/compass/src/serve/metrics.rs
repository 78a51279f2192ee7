//! The names of every metric `compass serve` exports on `/metrics`, in one place
//! (conventions 7). The Grafana dashboard and the alert rules in `deploy/` use these
//! names; a test checks that every metric they mention is listed in [`ALL`].

/// Investigations finished, by `status` (completed, degraded, budget_exhausted,
/// deadline_exceeded, failed, cancelled).
pub const INVESTIGATIONS: &str = "compass_investigations_total";
/// Wall time of an investigation, seconds, by `status`.
pub const INVESTIGATION_SECONDS: &str = "compass_investigation_duration_seconds";
/// Agent runs, by `agent` and `status` (ok, degraded, failed, timed_out, cancelled).
pub const AGENT_RUNS: &str = "compass_agent_runs_total";
/// Agent wall time, seconds, by `agent`.
pub const AGENT_SECONDS: &str = "compass_agent_duration_seconds";
/// Data-source calls, by `source` and `outcome` (ok, or the error kind).
pub const SOURCE_CALLS: &str = "compass_source_calls_total";
/// Data-source call latency, seconds, by `source`.
pub const SOURCE_CALL_SECONDS: &str = "compass_source_call_duration_seconds";
/// Circuit-breaker state by `source`: 0 closed, 1 half-open, 2 open.
pub const BREAKER_STATE: &str = "compass_circuit_breaker_state";
/// LLM calls, by `step` and `outcome` (emitted by the engine's analyst).
pub const LLM_CALLS: &str = "compass_llm_calls_total";
/// LLM prompt tokens charged.
pub const LLM_PROMPT_TOKENS: &str = "compass_llm_prompt_tokens_total";
/// LLM completion tokens charged.
pub const LLM_COMPLETION_TOKENS: &str = "compass_llm_completion_tokens_total";
/// LLM spend, millionths of a US dollar.
pub const LLM_COST_MICRO_USD: &str = "compass_llm_cost_micro_usd_total";
/// Daily LLM budget thresholds crossed, by `threshold` (50, 80, 100).
pub const LLM_BUDGET_ALERTS: &str = "compass_llm_daily_budget_alerts_total";
/// Investigations waiting for a worker (whole queue, all replicas).
pub const QUEUE_DEPTH: &str = "compass_queue_depth";
/// Investigations this replica holds a lease on right now.
pub const LEASES_ACTIVE: &str = "compass_leases_active";
/// Jobs this replica took over after another holder's lease expired.
pub const LEASE_TAKEOVERS: &str = "compass_lease_takeovers_total";
/// Jobs whose lease this replica lost while running them (the result was discarded).
pub const LEASES_LOST: &str = "compass_leases_lost_total";
/// Alerts received on a webhook, by `receiver` (alertmanager, generic) and `outcome`
/// (opened, deduplicated, resolved, ignored, rejected).
pub const WEBHOOK_ALERTS: &str = "compass_webhook_alerts_total";
/// HTTP requests served, by `route` and `status` class (2xx, 4xx, 5xx).
pub const HTTP_REQUESTS: &str = "compass_http_requests_total";
/// HTTP request latency, seconds, by `route`.
pub const HTTP_SECONDS: &str = "compass_http_request_duration_seconds";
/// MCP tool calls, by `tool` and `outcome` (ok, error).
pub const MCP_TOOL_CALLS: &str = "compass_mcp_tool_calls_total";
/// Always 1, with the `version` label.
pub const BUILD_INFO: &str = "compass_build_info";

/// Every exported metric name (histograms export `_bucket`, `_sum` and `_count`).
pub const ALL: &[&str] = &[
    INVESTIGATIONS,
    INVESTIGATION_SECONDS,
    AGENT_RUNS,
    AGENT_SECONDS,
    SOURCE_CALLS,
    SOURCE_CALL_SECONDS,
    BREAKER_STATE,
    LLM_CALLS,
    LLM_PROMPT_TOKENS,
    LLM_COMPLETION_TOKENS,
    LLM_COST_MICRO_USD,
    LLM_BUDGET_ALERTS,
    QUEUE_DEPTH,
    LEASES_ACTIVE,
    LEASE_TAKEOVERS,
    LEASES_LOST,
    WEBHOOK_ALERTS,
    HTTP_REQUESTS,
    HTTP_SECONDS,
    MCP_TOOL_CALLS,
    BUILD_INFO,
];
