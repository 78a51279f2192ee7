//! Writes one bundle from the command line, for benchmarking and eyeballing:
//! `cargo run --release -p compass-sim --example simulate -- SCENARIO SEED OUT [SERVICES] [DURATION_S] [LOG_RATE]`.

use compass_sim::{SimConfig, simulate};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let mut cfg = SimConfig {
        scenario: arg(0).unwrap_or("cpu-saturation").to_string(),
        ..SimConfig::default()
    };
    cfg.seed = arg(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let out = arg(2).unwrap_or("/tmp/compass-bundle").to_string();
    if let Some(n) = arg(3).and_then(|s| s.parse().ok()) {
        cfg.services = n;
    }
    if let Some(d) = arg(4).and_then(|s| s.parse().ok()) {
        cfg.duration_s = d;
    }
    if let Some(r) = arg(5).and_then(|s| s.parse().ok()) {
        cfg.log_rate = r;
    }
    let mut last = "";
    let summary = simulate(&cfg, Path::new(&out), &mut |p| {
        if p.phase != last {
            eprintln!("phase {}", p.phase);
            last = p.phase;
        }
    });
    match summary {
        Ok(s) => eprintln!("{s:#?}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
