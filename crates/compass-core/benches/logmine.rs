//! Throughput of the log template miner on generated microservice log lines.
//!
//! Run with `cargo bench -p compass-core --bench logmine`; prints lines/s for one pass
//! over 1,000,000 lines, then lets criterion measure the same work.

use compass_core::logmine::TemplateMiner;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Instant;

const LINES: usize = 1_000_000;

/// A small deterministic generator (xorshift), so the bench needs no RNG crate.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn generate(n: usize) -> Vec<String> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let services = [
        "cart", "checkout", "payment", "shipping", "currency", "catalog",
    ];
    let paths = [
        "/cart",
        "/product",
        "/checkout",
        "/api/orders",
        "/api/users",
    ];
    (0..n)
        .map(|_| {
            let r = g.next();
            let a = r % 10_000;
            let b = (r >> 20) % 500;
            match r % 12 {
                0..=3 => format!("GET {}/{a} {} {b}ms", g.pick(&paths), if b.is_multiple_of(50) { 500 } else { 200 }),
                4 => format!("POST {} 201 {b}ms", g.pick(&paths)),
                5 => format!("order {a:08x}-{b:04x}-4a1b-9c2d-{r:012x} placed user={a} items={} total={b}.{:02}", b % 9, a % 100),
                6 => format!("cache miss key=session:{a:x} ttl={b}s"),
                7 => format!("db query took {b}ms rows={a} table={}", g.pick(&["orders", "users", "carts"])),
                8 => format!("calling {} at 10.0.{}.{}:8080 trace_id={r:032x}", g.pick(&services), b % 256, a % 256),
                9 => format!("java.net.SocketTimeoutException: Read timed out after {a} ms calling {}", g.pick(&services)),
                10 => format!("connection pool stats active={} idle={} pending={}", b % 20, a % 20, b % 3),
                _ => format!("request completed status=200 duration={b}.{a}ms bytes={a} path={}/{b}", g.pick(&paths)),
            }
        })
        .collect()
}

fn mine(lines: &[String]) -> usize {
    let mut miner = TemplateMiner::default();
    for line in lines {
        black_box(miner.add(line));
    }
    miner.len()
}

fn bench(c: &mut Criterion) {
    let lines = generate(LINES);
    let started = Instant::now();
    let templates = mine(&lines);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "logmine: {LINES} lines, {templates} templates, {:.2} s, {:.0} lines/s",
        secs,
        LINES as f64 / secs
    );
    let mut group = c.benchmark_group("logmine");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(10);
    group.bench_function("mine_1m_lines", |b| b.iter(|| mine(black_box(&lines))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
