//! Generated services for systems larger than the base shop: realistic names
//! (`pricing-engine`, `svc-pricing-042`), a random language and profile, one or two
//! callers among the application services at depth <= 4 (so the call depth stays at
//! most six), and sometimes redis, postgres (through a DB pool) or kafka below them.

use crate::noise;
use crate::topology::{BaseEdgeOwned, Flavor, Lang, MIB, Role, Service};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

/// Adds `count` generated services, each called by one or two existing application
/// services at depth <= 4 (favouring parents with few children), some of them calling
/// redis, postgres (through a DB pool) or kafka.
pub(crate) fn grow(
    services: &mut Vec<Service>,
    pending: &mut Vec<(String, String, BaseEdgeOwned)>,
    count: usize,
    base_names: &[&str],
    rng: &mut ChaCha8Rng,
) {
    if count == 0 {
        return;
    }
    // Depths of the base application services below the frontend.
    let mut depth: Vec<(String, usize, usize)> = vec![
        ("checkout".into(), 1, 0),
        ("cart".into(), 1, 0),
        ("payment".into(), 2, 0),
        ("catalog".into(), 1, 0),
        ("recommendation".into(), 1, 0),
        ("shipping".into(), 1, 0),
        ("currency".into(), 1, 0),
        ("user".into(), 1, 0),
        ("orders".into(), 2, 0),
        ("inventory".into(), 2, 0),
    ];
    let mut used: BTreeSet<String> = base_names.iter().map(|s| s.to_string()).collect();
    for i in 0..count {
        let name = generated_name(i, &mut used, rng);
        let domain = DOMAINS
            .iter()
            .find(|d| name.contains(*d))
            .map_or_else(|| "misc".to_string(), |d| d.to_string());
        let lang =
            [Lang::Java, Lang::Go, Lang::Go, Lang::Node, Lang::Python][rng.random_range(0..5)];
        let has_pool = rng.random_bool(0.18);
        let lang = if has_pool { Lang::Java } else { lang };
        let mem_mib = [256u32, 512, 512, 1024][rng.random_range(0..4)];
        let svc = Service {
            name: name.clone(),
            role: Role::App,
            flavor: Flavor::Generic,
            lang,
            domain: domain.clone(),
            own_ms: noise::lognormal_mean(rng, 7.0, 0.6).clamp(1.0, 40.0),
            sigma: noise::uniform(rng, 0.35, 0.55),
            cpu_ms: noise::uniform(rng, 0.5, 4.0),
            idle_cores: noise::uniform(rng, 0.01, 0.03),
            cpu_limit: 1.0,
            mem_limit: f64::from(mem_mib) * MIB,
            mem_base_frac: noise::uniform(rng, 0.35, 0.6),
            pool_max: has_pool.then(|| [10u32, 15, 20][rng.random_range(0..3)]),
            replicas: rng.random_range(2..4),
            base_err: noise::uniform(rng, 0.0005, 0.003),
            log_weight: noise::uniform(rng, 0.5, 1.5),
            version: (
                rng.random_range(0..3),
                rng.random_range(0..40),
                rng.random_range(0..20),
            ),
            depth: 0,
            traffic_factor: 0.0,
            reach: 0.0,
        };
        // Parents: application services at depth <= 4, fewer children preferred.
        let parents = pick_parents(&depth, rng);
        let mut my_depth = 0;
        for p in parents {
            let (pname, pdepth, _) = depth[p].clone();
            depth[p].2 += 1;
            my_depth = my_depth.max(pdepth + 1);
            let calls = (noise::uniform(rng, 0.2, 0.8)).powi(2);
            let rpc = crate::templates::camel(&domain);
            pending.push((
                pname,
                name.clone(),
                BaseEdgeOwned {
                    calls,
                    retries: u8::from(rng.random_bool(0.6)),
                    propagate: noise::uniform(rng, 0.3, 1.0),
                    ops: vec![
                        (
                            format!("GET {name}/Get{rpc}"),
                            format!("GET /{domain}/{{id}}"),
                        ),
                        (
                            format!("POST {name}/Update{rpc}"),
                            format!("POST /{domain}"),
                        ),
                    ],
                },
            ));
        }
        if rng.random_bool(0.3) {
            pending.push((
                name.clone(),
                "redis".into(),
                infra_edge(1.0, &["GET|GET", "SET|SET"]),
            ));
        }
        if has_pool {
            let table = domain.replace('-', "_");
            pending.push((
                name.clone(),
                "postgres".into(),
                BaseEdgeOwned {
                    ops: vec![
                        (format!("SELECT {table}"), format!("SELECT {table}")),
                        (format!("UPDATE {table}"), format!("UPDATE {table}")),
                    ],
                    ..infra_edge(1.5, &[])
                },
            ));
        } else if rng.random_bool(0.08) {
            let topic = format!("{domain}-events");
            pending.push((
                name.clone(),
                "kafka".into(),
                BaseEdgeOwned {
                    ops: vec![(format!("publish {topic}"), format!("{topic} publish"))],
                    ..infra_edge(1.0, &[])
                },
            ));
        }
        services.push(svc);
        if my_depth <= 4 {
            depth.push((name, my_depth, 0));
        }
    }
}

fn infra_edge(calls: f64, ops: &[&str]) -> BaseEdgeOwned {
    BaseEdgeOwned {
        calls,
        retries: 0,
        propagate: 1.0,
        ops: ops
            .iter()
            .map(|op| {
                let (c, s) = op.split_once('|').unwrap_or((op, op));
                (c.to_string(), s.to_string())
            })
            .collect(),
    }
}

/// One parent usually, two sometimes; weighted towards shallow parents with few children.
fn pick_parents(candidates: &[(String, usize, usize)], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let weights: Vec<f64> = candidates
        .iter()
        .map(|(_, depth, children)| 1.0 / (1.0 + *children as f64).powf(1.5) / (*depth as f64))
        .collect();
    let total: f64 = weights.iter().sum();
    let how_many = if rng.random_bool(0.25) { 2 } else { 1 };
    let mut chosen = Vec::new();
    for _ in 0..how_many {
        let mut x = rng.random::<f64>() * total;
        let mut pick = candidates.len() - 1;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                pick = i;
                break;
            }
            x -= w;
        }
        if !chosen.contains(&pick) {
            chosen.push(pick);
        }
    }
    chosen
}

/// `pricing-engine`, or `svc-pricing-042` once names get crowded.
fn generated_name(i: usize, used: &mut BTreeSet<String>, rng: &mut ChaCha8Rng) -> String {
    loop {
        let domain = DOMAINS[rng.random_range(0..DOMAINS.len())];
        let name = if rng.random_bool(0.7) {
            format!("{domain}-{}", SUFFIXES[rng.random_range(0..SUFFIXES.len())])
        } else {
            format!("svc-{domain}-{:03}", i + 1)
        };
        if used.insert(name.clone()) {
            return name;
        }
    }
}

/// Business domains for generated service names.
pub(crate) const DOMAINS: &[&str] = &[
    "pricing",
    "tax",
    "fraud",
    "loyalty",
    "search",
    "reviews",
    "wishlist",
    "coupon",
    "audit",
    "geo",
    "media",
    "session",
    "billing",
    "invoice",
    "refund",
    "returns",
    "promo",
    "ads",
    "ranking",
    "identity",
    "consent",
    "locale",
    "fulfillment",
    "warehouse",
    "routing",
    "label",
    "tracking",
    "rating",
    "bundle",
    "subscription",
    "giftcard",
    "stock-sync",
    "image",
    "thumbnail",
    "feed",
    "sitemap",
    "quote",
    "ledger",
    "settlement",
    "kyc",
    "risk",
    "preferences",
    "address",
    "carrier",
    "vendor",
    "supplier",
    "assortment",
    "banner",
];

/// Suffixes for generated service names.
pub(crate) const SUFFIXES: &[&str] = &[
    "api", "service", "worker", "engine", "store", "gateway", "resolver", "adapter", "scorer",
    "sync",
];
