//! Circuit breakers around data sources, with a per-call timeout.
//!
//! Each data source gets one [`CircuitBreaker`] (closed → open → half-open → closed).
//! Backend failures (timeouts, unavailability) count; bad queries and bad data don't.
//! While open, calls fail at once with `SourceError::Unavailable`, so a dead backend
//! costs one timeout per cool-down, not one per query. After the cool-down one trial
//! call is let through (half-open): success closes the breaker, failure reopens it.
//!
//! Time comes from `tokio::time`, so tests can pause and advance it.

use crate::ports::{
    ChangeSource, DataSources, LogQuery, LogSource, MetricsSource, Page, SourceError, SourceResult,
    TraceSource,
};
use async_trait::async_trait;
use compass_core::{CallGraph, ChangeEvent, LogRecord, MetricQuery, Series, Span, TimeRange};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Breaker and timeout settings for one data source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive backend failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before a trial call.
    pub cool_down: Duration,
    /// Timeout of every call to the source.
    pub call_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 1,
            cool_down: Duration::from_secs(30),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// The state a breaker is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
struct State {
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    trial_in_flight: bool,
    last_error: Option<String>,
}

/// One breaker, shared by every caller of a source.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    state: Mutex<State>,
}

impl CircuitBreaker {
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        Self {
            name: name.into(),
            config,
            state: Mutex::new(State {
                consecutive_failures: 0,
                opened_at: None,
                trial_in_flight: false,
                last_error: None,
            }),
        }
    }

    pub fn state(&self) -> BreakerState {
        let s = self.state.lock().expect("breaker lock");
        self.state_of(&s)
    }

    fn state_of(&self, s: &State) -> BreakerState {
        match s.opened_at {
            None => BreakerState::Closed,
            Some(at) if at.elapsed() >= self.config.cool_down => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }

    /// Ask to make a call: `Ok(())` to go ahead, or the error to return at once.
    fn admit(&self) -> SourceResult<()> {
        let mut s = self.state.lock().expect("breaker lock");
        match self.state_of(&s) {
            BreakerState::Closed => Ok(()),
            BreakerState::HalfOpen if !s.trial_in_flight => {
                s.trial_in_flight = true;
                Ok(())
            }
            BreakerState::HalfOpen | BreakerState::Open => Err(SourceError::Unavailable {
                source_name: self.name.clone(),
                detail: format!(
                    "circuit open after {} failure(s); last: {}",
                    s.consecutive_failures,
                    s.last_error.as_deref().unwrap_or("unknown")
                ),
            }),
        }
    }

    fn record<T>(&self, result: &SourceResult<T>) {
        let mut s = self.state.lock().expect("breaker lock");
        s.trial_in_flight = false;
        match result {
            Err(e) if e.is_backend_failure() => {
                s.consecutive_failures += 1;
                s.last_error = Some(e.to_string());
                if s.consecutive_failures >= self.config.failure_threshold {
                    if s.opened_at.is_none() {
                        tracing::warn!(source = %self.name, error = %e, "circuit breaker opened");
                    }
                    s.opened_at = Some(Instant::now());
                }
            }
            _ => {
                if s.opened_at.is_some() {
                    tracing::info!(source = %self.name, "circuit breaker closed");
                }
                s.consecutive_failures = 0;
                s.opened_at = None;
            }
        }
    }

    /// Run one call through the breaker with the per-call timeout. Every call is
    /// counted (`compass_source_calls_total` by source and outcome) and timed
    /// (`compass_source_call_duration_seconds`); the state is exported as
    /// `compass_circuit_breaker_state` (0 closed, 1 half-open, 2 open). The names are
    /// listed with the service's others in the binary's `serve/metrics.rs`. Each call
    /// is also a `source.call` tracing span (source, op, outcome), exported over OTLP
    /// when the service is configured to.
    pub async fn call<T, F>(&self, op: &'static str, fut: F) -> SourceResult<T>
    where
        F: Future<Output = SourceResult<T>>,
    {
        let span = tracing::info_span!("source.call", source = %self.name, op, outcome = tracing::field::Empty);
        tracing::Instrument::instrument(self.call_inner(fut), span.clone())
            .await
            .inspect(|_| {
                span.record("outcome", "ok");
            })
            .inspect_err(|e| {
                span.record("outcome", tracing::field::display(e));
            })
    }

    async fn call_inner<T, F>(&self, fut: F) -> SourceResult<T>
    where
        F: Future<Output = SourceResult<T>>,
    {
        if let Err(e) = self.admit() {
            metrics::counter!("compass_source_calls_total", "source" => self.name.clone(), "outcome" => "breaker_open")
                .increment(1);
            return Err(e);
        }
        let started = std::time::Instant::now();
        // If the caller drops this call (an agent's timeout, a cancelled investigation)
        // before it ends, a half-open trial must not stay "in flight" for ever.
        let mut trial = TrialGuard {
            breaker: self,
            armed: true,
        };
        let result = match tokio::time::timeout(self.config.call_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout {
                source_name: self.name.clone(),
                after_ms: self.config.call_timeout.as_millis() as u64,
            }),
        };
        trial.armed = false;
        self.record(&result);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => match e.kind() {
                crate::ports::ErrorKind::NotFound => "not_found",
                crate::ports::ErrorKind::BadInput => "bad_input",
                crate::ports::ErrorKind::Timeout => "timeout",
                crate::ports::ErrorKind::Unavailable => "unavailable",
            },
        };
        metrics::counter!("compass_source_calls_total", "source" => self.name.clone(), "outcome" => outcome).increment(1);
        metrics::histogram!("compass_source_call_duration_seconds", "source" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
        let state = match self.state() {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        metrics::gauge!("compass_circuit_breaker_state", "source" => self.name.clone()).set(state);
        result
    }
}

/// Clears the half-open trial flag when a call is dropped before it ends.
struct TrialGuard<'a> {
    breaker: &'a CircuitBreaker,
    armed: bool,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Ok(mut s) = self.breaker.state.lock()
        {
            s.trial_in_flight = false;
        }
    }
}

/// A source wrapped in its breaker; implements the same port as the source.
#[derive(Debug)]
pub struct Guarded<S: ?Sized> {
    breaker: Arc<CircuitBreaker>,
    inner: Arc<S>,
}

#[async_trait]
impl MetricsSource for Guarded<dyn MetricsSource> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn query_text(&self, query: &MetricQuery) -> String {
        self.inner.query_text(query)
    }
    async fn query_range(
        &self,
        query: &MetricQuery,
        range: TimeRange,
        step_ms: i64,
    ) -> SourceResult<Vec<Series>> {
        self.breaker
            .call("query_range", self.inner.query_range(query, range, step_ms))
            .await
    }
    async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>> {
        self.breaker
            .call("label_values", self.inner.label_values(label, range))
            .await
    }
}

#[async_trait]
impl LogSource for Guarded<dyn LogSource> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn query_text(&self, query: &LogQuery, service_label: &str) -> String {
        self.inner.query_text(query, service_label)
    }
    async fn fetch_logs(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>> {
        self.breaker
            .call(
                "fetch_logs",
                self.inner.fetch_logs(query, range, cursor, limit),
            )
            .await
    }
}

#[async_trait]
impl TraceSource for Guarded<dyn TraceSource> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn fetch_spans(
        &self,
        range: TimeRange,
        service: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<Span>> {
        self.breaker
            .call(
                "fetch_spans",
                self.inner.fetch_spans(range, service, cursor, limit),
            )
            .await
    }
    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph> {
        self.breaker
            .call("call_graph", self.inner.call_graph(range))
            .await
    }
}

#[async_trait]
impl ChangeSource for Guarded<dyn ChangeSource> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn fetch_changes(&self, range: TimeRange) -> SourceResult<Vec<ChangeEvent>> {
        self.breaker
            .call("fetch_changes", self.inner.fetch_changes(range))
            .await
    }
}

fn guard<S: ?Sized>(inner: &Arc<S>, name: &str, config: BreakerConfig) -> Guarded<S> {
    Guarded {
        breaker: Arc::new(CircuitBreaker::new(name, config)),
        inner: Arc::clone(inner),
    }
}

/// Wrap every source in its own breaker.
pub fn with_breakers(sources: &DataSources, config: BreakerConfig) -> DataSources {
    DataSources {
        metrics: sources
            .metrics
            .as_ref()
            .map(|s| Arc::new(guard(s, s.name(), config)) as Arc<dyn MetricsSource>),
        logs: sources
            .logs
            .as_ref()
            .map(|s| Arc::new(guard(s, s.name(), config)) as Arc<dyn LogSource>),
        traces: sources
            .traces
            .as_ref()
            .map(|s| Arc::new(guard(s, s.name(), config)) as Arc<dyn TraceSource>),
        changes: sources
            .changes
            .as_ref()
            .map(|s| Arc::new(guard(s, s.name(), config)) as Arc<dyn ChangeSource>),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> SourceResult<u32> {
        Err(SourceError::Unavailable {
            source_name: "m".into(),
            detail: "down".into(),
        })
    }

    fn cfg(threshold: u32) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: threshold,
            cool_down: Duration::from_secs(30),
            call_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trial_call_lets_the_next_call_try() {
        let b = CircuitBreaker::new("m", cfg(1));
        assert!(b.call("test", async { unavailable() }).await.is_err());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // The trial call is abandoned by its caller before it answers.
        let abandoned = tokio::time::timeout(
            Duration::from_millis(10),
            b.call("test", std::future::pending::<SourceResult<u32>>()),
        )
        .await;
        assert!(abandoned.is_err());
        // The next call is the trial, not refused as if one were still in flight.
        assert_eq!(b.call("test", async { Ok(7) }).await.unwrap(), 7);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_fails_fast() {
        let b = CircuitBreaker::new("m", cfg(2));
        assert!(b.call("test", async { unavailable() }).await.is_err());
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.call("test", async { unavailable() }).await.is_err());
        assert_eq!(b.state(), BreakerState::Open);
        // While open the inner call is not made at all.
        let called = std::sync::atomic::AtomicBool::new(false);
        let r = b
            .call("test", async {
                called.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(1)
            })
            .await;
        assert!(matches!(r, Err(SourceError::Unavailable { .. })));
        assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_trial_closes_on_success_and_reopens_on_failure() {
        let b = CircuitBreaker::new("m", cfg(1));
        let _ = b.call("test", async { unavailable() }).await;
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let _ = b.call("test", async { unavailable() }).await;
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.call("test", async { Ok(7) }).await, Ok(7));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_counts_as_failure() {
        let b = CircuitBreaker::new("m", cfg(1));
        let r: SourceResult<u32> = b.call("test", std::future::pending()).await;
        assert!(matches!(
            r,
            Err(SourceError::Timeout { after_ms: 5000, .. })
        ));
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn bad_data_does_not_open() {
        let b = CircuitBreaker::new("m", cfg(1));
        let r: SourceResult<u32> = b
            .call("test", async {
                Err(SourceError::BadData {
                    source_name: "m".into(),
                    detail: "x".into(),
                })
            })
            .await;
        assert!(r.is_err());
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
