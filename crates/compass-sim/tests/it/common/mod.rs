//! Test helpers: write a small bundle into a temp dir and read it back (a minimal
//! OpenMetrics reader with counter increases and gauge maxima over a window, and the
//! JSON-lines files).

#![allow(dead_code)]

use compass_sim::{SimConfig, SimSummary, simulate};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A small, fast configuration (30 minutes, few logs and traces).
pub fn small(scenario: &str, seed: u64) -> SimConfig {
    SimConfig {
        scenario: scenario.into(),
        seed,
        duration_s: 1800,
        log_rate: 20.0,
        trace_rate: 0.5,
        ..SimConfig::default()
    }
}

pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub summary: SimSummary,
}

impl Bundle {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
    pub fn json(&self, file: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.path(file)).unwrap()).unwrap()
    }
    pub fn lines(&self, file: &str) -> Vec<Value> {
        std::fs::read_to_string(self.path(file))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("bad JSON line in {file}: {e}: {l}"))
            })
            .collect()
    }
    pub fn metrics(&self) -> Metrics {
        Metrics::parse(&std::fs::read_to_string(self.path("metrics.om")).unwrap())
    }
    /// Fault start and end of the window, Unix seconds.
    pub fn fault_s(&self) -> f64 {
        self.summary.fault_start_ms as f64 / 1000.0
    }
}

pub fn run(cfg: &SimConfig) -> Bundle {
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(cfg, dir.path(), &mut |_| {}).expect("simulation succeeds");
    Bundle { dir, summary }
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One series: its labels and `(seconds, value)` points.
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

/// Samples by metric name (as written, e.g. `http_server_requests_total`).
pub struct Metrics {
    pub by_name: BTreeMap<String, Vec<Series>>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut by_name: BTreeMap<String, Vec<Series>> = BTreeMap::new();
        let mut last_key = String::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (key, rest) = line.rsplit_once('}').expect("sample has labels");
            let mut parts = rest.split_whitespace();
            let value: f64 = parts.next().unwrap().parse().unwrap();
            let ts: f64 = parts.next().unwrap().parse().unwrap();
            let (name, labels) = key.split_once('{').unwrap();
            let series = by_name.entry(name.to_string()).or_default();
            if key != last_key {
                let labels = labels
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                series.push(Series {
                    labels,
                    points: Vec::new(),
                });
                last_key = key.to_string();
            }
            series.last_mut().unwrap().points.push((ts, value));
        }
        Metrics { by_name }
    }

    pub fn series<'a>(
        &'a self,
        name: &str,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter(move |s| {
                filter
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
    }

    /// Sum over matching series of the counter increase within `[t0, t1]` (resets handled).
    pub fn increase(&self, name: &str, filter: &[(&str, &str)], t0: f64, t1: f64) -> f64 {
        self.series(name, filter)
            .map(|s| {
                let pts: Vec<f64> = s
                    .points
                    .iter()
                    .filter(|p| p.0 >= t0 && p.0 <= t1)
                    .map(|p| p.1)
                    .collect();
                pts.windows(2)
                    .map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] })
                    .sum::<f64>()
            })
            .sum()
    }

    /// Largest value of matching series within `[t0, t1]`.
    pub fn max(&self, name: &str, filter: &[(&str, &str)], t0: f64, t1: f64) -> f64 {
        self.series(name, filter)
            .flat_map(|s| {
                s.points
                    .iter()
                    .filter(|p| p.0 >= t0 && p.0 <= t1)
                    .map(|p| p.1)
            })
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// Mean server latency of a service (seconds) over the window.
    pub fn server_latency(&self, service: &str, t0: f64, t1: f64) -> f64 {
        let f = [("service", service)];
        self.increase("http_server_request_duration_seconds_sum", &f, t0, t1)
            / self.increase("http_server_request_duration_seconds_count", &f, t0, t1)
    }

    /// Fraction of 5xx responses of a service over the window.
    pub fn error_ratio(&self, service: &str, t0: f64, t1: f64) -> f64 {
        let bad = self.increase(
            "http_server_requests_total",
            &[("service", service), ("code", "5xx")],
            t0,
            t1,
        );
        let ok = self.increase(
            "http_server_requests_total",
            &[("service", service), ("code", "2xx")],
            t0,
            t1,
        );
        bad / (bad + ok)
    }

    /// Mean client-side latency of `caller`'s calls to `callee` (seconds).
    pub fn client_latency(&self, caller: &str, callee: &str, t0: f64, t1: f64) -> f64 {
        let f = [("service", caller), ("peer_service", callee)];
        self.increase("http_client_request_duration_seconds_sum", &f, t0, t1)
            / self.increase("http_client_request_duration_seconds_count", &f, t0, t1)
    }

    /// Services that call `callee`.
    pub fn callers(&self, callee: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .series(
                "http_client_request_duration_seconds_count",
                &[("peer_service", callee)],
            )
            .map(|s| s.labels["service"].clone())
            .collect();
        out.dedup();
        out
    }

    /// Peak CPU usage of any pod of `service` over 60 s windows, as a fraction of its limit.
    pub fn peak_cpu_utilisation(&self, service: &str) -> f64 {
        let limit = self.max(
            "kube_pod_container_resource_limits",
            &[("service", service), ("resource", "cpu")],
            0.0,
            f64::MAX,
        );
        self.series("container_cpu_usage_seconds_total", &[("service", service)])
            .flat_map(|s| {
                s.points
                    .windows(5)
                    .map(|w| (w[4].1 - w[0].1) / (w[4].0 - w[0].0))
            })
            .fold(0.0, f64::max)
            / limit
    }

    /// Mean CPU usage of `service` (cores, summed over pods) within the window.
    pub fn cpu_cores(&self, service: &str, t0: f64, t1: f64) -> f64 {
        self.increase(
            "container_cpu_usage_seconds_total",
            &[("service", service)],
            t0,
            t1,
        ) / (t1 - t0)
    }
}
