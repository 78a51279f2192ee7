//! `metrics.om`: OpenMetrics text derived from the state, one family after another, each
//! series contiguous and in time order, Unix-second timestamps every 15 s, `# EOF` last.
//!
//! Request counts are integers drawn once per pod and step (randomised rounding from a
//! counter-based hash, so every family sees the same counts); counters accumulate them
//! and never decrease, except the CPU counter of a pod whose container was OOM-killed.

use crate::Progress;
use crate::SimError;
use crate::bundle::{Output, push_num};
use crate::noise::{hash, unit};
use crate::plan::{Plan, STEP_S};
use crate::state::State;
use crate::topology::Topology;

/// Upper bounds of the latency histogram buckets, seconds (Prometheus defaults).
const BUCKETS: [(f64, &str); 11] = [
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.025, "0.025"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1.0"),
    (2.5, "2.5"),
    (5.0, "5.0"),
    (10.0, "10.0"),
];

const METRICS_TAG: u64 = 0x3E7_2105;

/// Writes `metrics.om`; returns the number of samples.
pub(crate) fn write(
    out: &mut Output,
    seed: u64,
    topo: &Topology,
    plan: &Plan,
    state: &State,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, SimError> {
    let mut w = Writer {
        out,
        buf: Vec::with_capacity(1 << 16),
        samples: 0,
    };
    let ctx = Ctx::new(seed, topo, plan, state);
    let families: [(&str, &str, &str, Family); 10] = [
        (
            "http_server_requests",
            "counter",
            "Requests served.",
            Family::Requests,
        ),
        (
            "http_server_request_duration_seconds",
            "histogram",
            "Server-side request latency.",
            Family::Latency,
        ),
        (
            "http_client_request_duration_seconds",
            "summary",
            "Client-side call latency per callee.",
            Family::Client,
        ),
        (
            "container_cpu_usage_seconds",
            "counter",
            "CPU seconds used by the container.",
            Family::Cpu,
        ),
        (
            "container_memory_working_set_bytes",
            "gauge",
            "Working-set memory of the container.",
            Family::Memory,
        ),
        (
            "kube_pod_container_resource_limits",
            "gauge",
            "Container resource limits.",
            Family::Limits,
        ),
        (
            "kube_pod_container_status_restarts",
            "counter",
            "Container restarts.",
            Family::Restarts,
        ),
        (
            "db_client_connections_usage",
            "gauge",
            "DB pool connections by state.",
            Family::PoolUsage,
        ),
        (
            "db_client_connections_max",
            "gauge",
            "DB pool size.",
            Family::PoolMax,
        ),
        (
            "db_client_connections_pending_requests",
            "gauge",
            "Requests waiting for a DB connection.",
            Family::PoolPending,
        ),
    ];
    let total = (families.len() * plan.pods.len()) as u64;
    let mut done = 0;
    for (name, kind, help, family) in families {
        w.line(format!("# HELP {name} {help}\n# TYPE {name} {kind}\n").as_bytes())?;
        for (p, pod) in plan.pods.iter().enumerate() {
            let labels = format!(
                "{{service=\"{}\",pod=\"{}\"",
                topo.services[pod.service].name, pod.name
            );
            ctx.write_family(&mut w, family, name, p, &labels)?;
            done += 1;
            if done % 256 == 0 {
                progress(Progress {
                    phase: "metrics",
                    done,
                    total,
                });
            }
        }
    }
    w.line(b"# EOF\n")?;
    w.flush()?;
    progress(Progress {
        phase: "metrics",
        done: total,
        total,
    });
    Ok(w.samples)
}

/// A value per step.
type ValueFn<'a> = Box<dyn Fn(usize) -> f64 + 'a>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Requests,
    Latency,
    Client,
    Cpu,
    Memory,
    Limits,
    Restarts,
    PoolUsage,
    PoolMax,
    PoolPending,
}

struct Writer<'a> {
    out: &'a mut Output,
    buf: Vec<u8>,
    samples: u64,
}

impl Writer<'_> {
    fn line(&mut self, bytes: &[u8]) -> Result<(), SimError> {
        self.buf.extend_from_slice(bytes);
        self.maybe_flush()
    }
    /// `name` + `labels` + `extra` + `} value ts`.
    fn sample(
        &mut self,
        name: &str,
        labels: &str,
        extra: &str,
        value: f64,
        ts_ms: i64,
    ) -> Result<(), SimError> {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(labels.as_bytes());
        self.buf.extend_from_slice(extra.as_bytes());
        self.buf.extend_from_slice(b"} ");
        push_num(&mut self.buf, value);
        self.buf.push(b' ');
        push_num(&mut self.buf, ts_ms as f64 / 1000.0);
        self.buf.push(b'\n');
        self.samples += 1;
        self.maybe_flush()
    }
    fn maybe_flush(&mut self) -> Result<(), SimError> {
        if self.buf.len() >= 1 << 16 {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SimError> {
        self.out.write(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

/// Precomputed per-pod request counts and per-service latency CDFs.
struct Ctx<'a> {
    seed: u64,
    topo: &'a Topology,
    plan: &'a Plan,
    state: &'a State,
    /// Requests per pod and step (interval `[t_k, t_k+1)`).
    requests: Vec<u32>,
    errors: Vec<u32>,
    /// `P(latency <= bucket)` per service, step and bucket.
    cdf: Vec<f64>,
}

impl<'a> Ctx<'a> {
    fn new(seed: u64, topo: &'a Topology, plan: &'a Plan, state: &'a State) -> Self {
        let points = plan.clock.points;
        let mut requests = vec![0u32; plan.pods.len() * points];
        let mut errors = vec![0u32; plan.pods.len() * points];
        for (p, pod) in plan.pods.iter().enumerate() {
            for k in 0..points {
                if !pod.live_at(plan.clock.time(k)) {
                    continue;
                }
                let i = state.at(pod.service, k);
                let expected = state.rps[i] * pod.weight * STEP_S as f64;
                let n = (expected + unit(hash(&[seed, METRICS_TAG, p as u64, k as u64]))).floor();
                let e = (n * state.err[i]
                    + unit(hash(&[seed, METRICS_TAG + 1, p as u64, k as u64])))
                .floor();
                requests[p * points + k] = n as u32;
                errors[p * points + k] = e.min(n) as u32;
            }
        }
        let mut cdf = vec![0.0; topo.services.len() * points * BUCKETS.len()];
        for s in 0..topo.services.len() {
            for k in 0..points {
                for (b, (le, _)) in BUCKETS.iter().enumerate() {
                    cdf[(s * points + k) * BUCKETS.len() + b] =
                        state.latency_cdf(s, k, le * 1000.0);
                }
            }
        }
        Ctx {
            seed,
            topo,
            plan,
            state,
            requests,
            errors,
            cdf,
        }
    }

    /// Steps at which `pod` exists.
    fn live_steps(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        let pod = &self.plan.pods[p];
        (0..self.plan.clock.points).filter(move |&k| pod.live_at(self.plan.clock.time(k)))
    }

    /// Counter value before the window for pods that were already running.
    fn initial(&self, p: usize, per_step: f64) -> f64 {
        if self.plan.pods[p].from_ms > self.plan.clock.start_ms {
            return 0.0;
        }
        // One uptime per pod (2 h to 7 days), shared by all its counters.
        let uptime_steps = 480.0 + 40_000.0 * unit(hash(&[self.seed, 0x0B7, p as u64]));
        (per_step * uptime_steps).floor()
    }

    /// Cumulative sums of `per_step(k)` sampled at each live step (value before step k).
    fn cumulative(&self, p: usize, per_step: impl Fn(usize) -> f64) -> Vec<(usize, f64)> {
        let steps: Vec<usize> = self.live_steps(p).collect();
        let Some(&first) = steps.first() else {
            return Vec::new();
        };
        let mut acc = self.initial(p, per_step(first));
        steps
            .iter()
            .map(|&k| {
                let v = (k, acc);
                acc += per_step(k);
                v
            })
            .collect()
    }

    fn write_family(
        &self,
        w: &mut Writer<'_>,
        family: Family,
        name: &str,
        p: usize,
        labels: &str,
    ) -> Result<(), SimError> {
        let points = self.plan.clock.points;
        let pod = &self.plan.pods[p];
        let s = pod.service;
        let svc = &self.topo.services[s];
        let time = |k: usize| self.plan.clock.time(k);
        let req = |k: usize| f64::from(self.requests[p * points + k]);
        let err = |k: usize| f64::from(self.errors[p * points + k]);
        let total = format!("{name}_total");
        match family {
            Family::Requests => {
                for (code, f) in [("2xx", 0u8), ("5xx", 1)] {
                    let extra = format!(",code=\"{code}\"");
                    let per = |k| if f == 0 { req(k) - err(k) } else { err(k) };
                    for (k, v) in self.cumulative(p, per) {
                        w.sample(&total, labels, &extra, v, time(k))?;
                    }
                }
            }
            Family::Latency => {
                let bucket = format!("{name}_bucket");
                for (b, (_, le)) in BUCKETS.iter().enumerate() {
                    let extra = format!(",le=\"{le}\"");
                    let per = |k: usize| {
                        (req(k) * self.cdf[(s * points + k) * BUCKETS.len() + b]).round()
                    };
                    for (k, v) in self.cumulative(p, per) {
                        w.sample(&bucket, labels, &extra, v, time(k))?;
                    }
                }
                for (k, v) in self.cumulative(p, req) {
                    w.sample(&bucket, labels, ",le=\"+Inf\"", v, time(k))?;
                }
                for (k, v) in self.cumulative(p, req) {
                    w.sample(&format!("{name}_count"), labels, "", v, time(k))?;
                }
                let secs = |k: usize| req(k) * self.state.lat[self.state.at(s, k)] / 1000.0;
                for (k, v) in self.cumulative(p, secs) {
                    w.sample(&format!("{name}_sum"), labels, "", v, time(k))?;
                }
            }
            Family::Client => {
                for &e in &self.topo.out[s] {
                    let edge = &self.topo.edges[e];
                    let extra = format!(",peer_service=\"{}\"", self.topo.services[edge.to].name);
                    // Attempts (retries included), each as long as the client waited.
                    let points = self.plan.clock.points;
                    let calls = |k: usize| {
                        let attempts = self.state.edges.attempts[e * points + k];
                        let h = unit(hash(&[self.seed, 0x400, p as u64, e as u64, k as u64]));
                        (req(k) * edge.calls * attempts + h).floor()
                    };
                    let secs = |k: usize| calls(k) * self.state.edges.ms[e * points + k] / 1000.0;
                    for (k, v) in self.cumulative(p, calls) {
                        w.sample(&format!("{name}_count"), labels, &extra, v, time(k))?;
                    }
                    for (k, v) in self.cumulative(p, secs) {
                        w.sample(&format!("{name}_sum"), labels, &extra, v, time(k))?;
                    }
                }
            }
            Family::Cpu => {
                let cores = |k: usize| self.state.usage.cpu[p * points + k];
                let mut acc = self.initial(p, cores(0) * STEP_S as f64);
                let mut last_t = None::<i64>;
                for k in self.live_steps(p) {
                    let t = time(k);
                    if let (Some(prev), Some(oom)) = (last_t, self.state.memory.last_oom(p, t))
                        && oom > prev
                    {
                        // New container: the counter restarts from the kill.
                        acc = cores(k) * (t - oom) as f64 / 1000.0;
                    }
                    w.sample(&total, labels, "", acc, t)?;
                    acc += cores(k) * STEP_S as f64;
                    last_t = Some(t);
                }
            }
            Family::Memory => {
                for k in self.live_steps(p) {
                    w.sample(
                        name,
                        labels,
                        "",
                        self.state.memory.mem[p * points + k].round(),
                        time(k),
                    )?;
                }
            }
            Family::Limits => {
                for (resource, v) in [("cpu", svc.cpu_limit), ("memory", svc.mem_limit)] {
                    let extra = format!(",resource=\"{resource}\"");
                    for k in self.live_steps(p) {
                        w.sample(name, labels, &extra, v, time(k))?;
                    }
                }
            }
            Family::Restarts => {
                for k in self.live_steps(p) {
                    let v = f64::from(self.state.memory.restarts_at(p, time(k)));
                    w.sample(&total, labels, "", v, time(k))?;
                }
            }
            Family::PoolUsage | Family::PoolMax | Family::PoolPending => {
                let Some(max) = svc.pool_max.map(f64::from) else {
                    return Ok(());
                };
                let used = |k: usize| self.state.usage.pool_used[p * points + k];
                let series: Vec<(&str, ValueFn<'_>)> = match family {
                    Family::PoolUsage => vec![
                        (",state=\"used\"", Box::new(used)),
                        (",state=\"idle\"", Box::new(move |k| max - used(k))),
                    ],
                    Family::PoolMax => vec![("", Box::new(move |_| max))],
                    _ => vec![(
                        "",
                        Box::new(|k| self.state.usage.pool_pending[p * points + k]),
                    )],
                };
                for (extra, value) in series {
                    for k in self.live_steps(p) {
                        w.sample(name, labels, extra, value(k), time(k))?;
                    }
                }
            }
        }
        Ok(())
    }
}
