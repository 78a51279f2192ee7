//! Benchmark (not a test): how fast the bundle source streams `logs.jsonl` and
//! loads `metrics.om`.
//!
//! Writes a bundle with LINES generated log lines (default 2 000 000, about 190 bytes
//! each) and a 2 000 000-sample `metrics.om` into a temp dir (or into DIR, reused when
//! it already has them), then times: the index build; streaming every line as
//! `LogRecord`s in pages of PAGE (default 1 000); a filtered query that parses every
//! line but keeps few; loading `metrics.om`; and a `rate` query over all of it.
//! Rates are given per wall-clock second and per CPU second of the process (the file
//! work runs on one blocking thread at a time, so the latter is "per core" and less
//! sensitive to a busy machine).
//!
//! ```text
//! cargo run --release -p compass-adapters --example bundle_throughput -- [LINES] [DIR] [PAGE]
//! ```

use compass_adapters::BundleSource;
use compass_core::{Aggregation, LogLevel, MetricFunc, MetricQuery, TimeRange};
use compass_engine::LogQuery;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const SERVICES: [&str; 8] = [
    "frontend", "checkout", "payment", "cart", "ads", "shipping", "currency", "email",
];
const T0_MS: i64 = 1_795_338_000_000;

fn write_bundle(dir: &Path, lines: u64) -> std::io::Result<()> {
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"format":"compass-bundle/1","generator":"bundle_throughput","start":"2026-11-22T09:00:00.000Z","end":"2026-11-22T10:00:00.000Z","services":[],"step_seconds":15}"#,
    )?;
    std::fs::write(
        dir.join("incident.json"),
        r#"{"id":"bench","title":"bench","severity":"info","start":"2026-11-22T09:30:00.000Z","affected_services":[],"origin":"simulator"}"#,
    )?;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("logs.jsonl"))?);
    let span_ms = 3_600_000.0 / lines as f64;
    for i in 0..lines {
        let ts = T0_MS + (i as f64 * span_ms) as i64;
        let time = chrono::DateTime::from_timestamp_millis(ts).expect("valid time");
        let service = SERVICES[(i % 8) as usize];
        let level = match i % 50 {
            3 => "ERROR",
            4..=7 => "WARN",
            8..=12 => "DEBUG",
            _ => "INFO",
        };
        writeln!(
            out,
            r#"{{"timestamp":"{}","service":"{service}","pod":"{service}-5d8f7c9b4-x2k9q","level":"{level}","message":"GET /{service}/{} 200 {}ms","trace_id":"4bf92f3577b34da6a3ce929d{:08x}"}}"#,
            time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            i % 10_000,
            i % 97,
            i,
        )?;
    }
    out.flush()
}

/// CPU seconds used by this process so far (all threads; Linux only).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Times a phase: wall seconds and CPU seconds.
struct Timer(Instant, Option<f64>);

impl Timer {
    fn start() -> Self {
        Timer(Instant::now(), cpu_seconds())
    }
    /// "N M lines/s (wall), N M lines/s (CPU)" for `lines` lines.
    fn rates(&self, lines: u64) -> String {
        let wall = self.0.elapsed().as_secs_f64();
        let cpu = cpu_seconds().zip(self.1).map(|(end, start)| end - start);
        let per_second = |secs: f64| lines as f64 / secs / 1e6;
        match cpu {
            Some(cpu) if cpu > 0.0 => format!(
                "{wall:.2} s wall = {:.2} M lines/s; {cpu:.2} s CPU = {:.2} M lines/s per core",
                per_second(wall),
                per_second(cpu)
            ),
            _ => format!("{wall:.2} s wall = {:.2} M lines/s", per_second(wall)),
        }
    }
}

/// 2 000 000 samples: 500 counter series of 4 000 samples 15 s apart.
fn write_metrics(dir: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("metrics.om"))?);
    writeln!(out, "# TYPE bench_requests counter")?;
    for series in 0..500u64 {
        let service = SERVICES[(series % 8) as usize];
        for k in 0..4_000u64 {
            let seconds = T0_MS / 1000 + k as i64 * 15;
            writeln!(
                out,
                r#"bench_requests_total{{service="{service}",pod="{service}-{series}",code="2xx"}} {} {seconds}.000"#,
                k * (series % 13 + 1)
            )?;
        }
    }
    writeln!(out, "# EOF")?;
    out.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let lines: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2_000_000);
    let temp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let page_size: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);
    if !dir.join("logs.jsonl").exists() {
        std::fs::create_dir_all(&dir)?;
        let started = Instant::now();
        write_bundle(&dir, lines)?;
        write_metrics(&dir)?;
        println!(
            "wrote {lines} lines in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let bytes = std::fs::metadata(dir.join("logs.jsonl"))?.len();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bundle = Arc::new(BundleSource::open(&dir)?);
        let logs = bundle.data_sources().logs.expect("logs.jsonl exists");
        let whole = TimeRange::new(0, i64::MAX);
        let everything = LogQuery::default();

        let started = Instant::now();
        logs.fetch_logs(&everything, whole, None, 1).await?;
        let index_s = started.elapsed().as_secs_f64();
        println!(
            "index: {:.2} s ({:.0} MB/s over {} MB)",
            index_s,
            bytes as f64 / 1e6 / index_s,
            bytes / 1_000_000
        );

        for round in 1..=3 {
            let timer = Timer::start();
            let (mut records, mut cursor) = (0u64, None::<String>);
            loop {
                let page = logs
                    .fetch_logs(&everything, whole, cursor.as_deref(), page_size)
                    .await?;
                records += page.items.len() as u64;
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
            println!(
                "stream all (round {round}): {records} records, {}",
                timer.rates(records)
            );
        }

        let errors_of_cart = LogQuery {
            service: Some("cart".into()),
            min_level: Some(LogLevel::Error),
        };
        let timer = Timer::start();
        let (mut records, mut cursor) = (0u64, None::<String>);
        loop {
            let page = logs
                .fetch_logs(&errors_of_cart, whole, cursor.as_deref(), page_size)
                .await?;
            records += page.items.len() as u64;
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        println!(
            "filtered (cart, >= ERROR): {records} records, {}",
            timer.rates(lines)
        );

        let metrics = bundle.data_sources().metrics.expect("metrics.om exists");
        let query = MetricQuery {
            metric: "bench_requests_total".into(),
            matchers: vec![],
            func: MetricFunc::Rate { window_s: 60 },
            aggregation: Aggregation::Sum,
            by: vec!["service".into()],
        };
        let hours = TimeRange::new(T0_MS, T0_MS + 4_000 * 15_000);
        let timer = Timer::start();
        metrics.label_values("service", hours).await?;
        println!(
            "metrics.om load: 2000000 samples, {}",
            timer.rates(2_000_000)
        );
        let timer = Timer::start();
        let series = metrics.query_range(&query, hours, 60_000).await?;
        let points: usize = series.iter().map(|s| s.points.len()).sum();
        println!(
            "{} over 16.7 h at 60 s: {points} points, {}",
            query.to_promql(),
            timer.rates(2_000_000)
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
