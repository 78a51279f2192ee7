//! The simulated system as a graph: services with their static profile (role, language,
//! latency, CPU and memory limits, DB pool), the synchronous calls between them, the
//! frontend's endpoints, and a callers-first order. Built from `catalog` and grown with
//! generated services, each attached below an existing service so the call depth stays
//! at most six.

use crate::catalog::{self, BaseEdge};
use crate::noise::{self, Stream};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The entry point users hit; alerts fire here.
    Edge,
    App,
    Database,
    Cache,
    Queue,
    /// The periodic report job (noise).
    Batch,
}

impl Role {
    pub(crate) fn is_infra(self) -> bool {
        matches!(self, Role::Database | Role::Cache | Role::Queue)
    }
}

/// Which log templates and operations a service uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Frontend,
    Checkout,
    Cart,
    Payment,
    Catalog,
    Recommendation,
    Shipping,
    Currency,
    User,
    Orders,
    Inventory,
    Notification,
    Postgres,
    Redis,
    Kafka,
    ReportBatch,
    Generic,
}

/// Implementation language: decides the shape of exceptions and access lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Java,
    Go,
    Node,
    Python,
}

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub name: String,
    pub role: Role,
    pub flavor: Flavor,
    pub lang: Lang,
    /// Business word for generated services (`pricing`), the name otherwise.
    pub domain: String,
    pub own_ms: f64,
    pub sigma: f64,
    pub cpu_ms: f64,
    pub idle_cores: f64,
    /// CPU limit per pod, cores.
    pub cpu_limit: f64,
    /// Memory limit per pod, bytes.
    pub mem_limit: f64,
    pub mem_base_frac: f64,
    pub pool_max: Option<u32>,
    pub replicas: usize,
    pub base_err: f64,
    pub log_weight: f64,
    pub version: (u32, u32, u32),
    /// Calls from the edge to here (0 for the edge).
    pub depth: usize,
    /// Expected requests here per frontend request (async consumers included).
    pub traffic_factor: f64,
    /// Probability that a frontend request reaches this service synchronously.
    pub reach: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub from: usize,
    pub to: usize,
    pub calls: f64,
    pub retries: u8,
    pub propagate: f64,
    /// `(client span name, server span name)` pairs.
    pub ops: Vec<(String, String)>,
    /// One-way network latency, ms.
    pub net_ms: f64,
    /// Client deadline per attempt, ms: the caller gives up (504) after it.
    pub timeout_ms: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub route: &'static str,
    pub weight: f64,
    /// `(edge index, mean calls, op index)`.
    pub calls: Vec<(usize, f64, usize)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Topology {
    pub services: Vec<Service>,
    pub edges: Vec<Edge>,
    /// Outgoing edge indices per service.
    pub out: Vec<Vec<usize>>,
    /// Incoming edge indices per service.
    pub inc: Vec<Vec<usize>>,
    pub endpoints: Vec<Endpoint>,
    /// Callers before callees (the async feed counts as a call).
    pub order: Vec<usize>,
    /// `(publisher, consumer)` of the async feed.
    pub feed: (usize, usize),
    pub edge_service: usize,
}

/// Mean frontend requests per second (before daily seasonality).
pub(crate) const FRONTEND_RPS: f64 = 140.0;
/// Peak-to-mean factor of the daily curve used to size CPU limits.
const PEAK_FACTOR: f64 = 1.35;
pub(crate) const MIB: f64 = 1024.0 * 1024.0;

impl Topology {
    /// The base shop plus `app_services - 12` generated services.
    pub(crate) fn build(seed: u64, app_services: usize) -> Topology {
        let mut rng = noise::rng(seed, Stream::Topology, 0);
        let mut services: Vec<Service> = Vec::new();
        let base_apps = &catalog::BASE_SERVICES[..catalog::BASE_APP_SERVICES];
        let base_rest = &catalog::BASE_SERVICES[catalog::BASE_APP_SERVICES..];
        for b in base_apps {
            services.push(base_service(b, &mut rng));
        }
        let mut edges = Vec::new();
        let index = |services: &[Service], name: &str| {
            services
                .iter()
                .position(|s| s.name == name)
                .expect("catalog names are consistent")
        };
        // Generated services need the base call edges to exist before they attach; infra
        // and the batch job go last in the service list, so edges to them are resolved by
        // name once everything is in place.
        let generated = app_services.saturating_sub(catalog::BASE_APP_SERVICES);
        let mut pending: Vec<(String, String, BaseEdgeOwned)> = Vec::new();
        for e in catalog::FRONTEND_EDGES.iter().chain(catalog::EDGES) {
            pending.push((e.from.to_string(), e.to.to_string(), BaseEdgeOwned::from(e)));
        }
        let base_names: Vec<&str> = catalog::BASE_SERVICES.iter().map(|b| b.name).collect();
        crate::generated::grow(
            &mut services,
            &mut pending,
            generated,
            &base_names,
            &mut rng,
        );
        for b in base_rest {
            services.push(base_service(b, &mut rng));
        }
        for (from, to, e) in pending {
            let (from, to) = (index(&services, &from), index(&services, &to));
            edges.push(Edge {
                from,
                to,
                calls: e.calls,
                retries: e.retries,
                propagate: e.propagate,
                ops: e.ops,
                net_ms: noise::uniform(&mut rng, 0.25, 0.8),
                timeout_ms: client_timeout(&services[from], &services[to], &mut rng),
            });
        }
        let edge_service = index(&services, "frontend");
        let endpoints = catalog::ENDPOINTS
            .iter()
            .map(|ep| Endpoint {
                route: ep.route,
                weight: ep.weight,
                calls: ep
                    .calls
                    .iter()
                    .map(|&(callee, calls, op)| {
                        let to = index(&services, callee);
                        let e = edges
                            .iter()
                            .position(|e| e.from == edge_service && e.to == to)
                            .expect("endpoint callee has a frontend edge");
                        (e, calls, op)
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        let weight_sum: f64 = endpoints.iter().map(|e| e.weight).sum();
        for ep in &endpoints {
            for &(e, calls, _) in &ep.calls {
                edges[e].calls += ep.weight / weight_sum * calls;
            }
        }
        let feed = (
            index(&services, catalog::FEED.0),
            index(&services, catalog::FEED.1),
        );
        let n = services.len();
        let mut out = vec![Vec::new(); n];
        let mut inc = vec![Vec::new(); n];
        for (i, e) in edges.iter().enumerate() {
            out[e.from].push(i);
            inc[e.to].push(i);
        }
        let order = topo_order(n, &edges, feed);
        let mut topo = Topology {
            services,
            edges,
            out,
            inc,
            endpoints,
            order,
            feed,
            edge_service,
        };
        topo.size_resources(&mut rng);
        topo
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// Computes traffic factors, reach and depth, then sizes CPU limits so that the
    /// busiest pod of each service peaks at 30-60 % of its limit.
    fn size_resources(&mut self, rng: &mut ChaCha8Rng) {
        let n = self.services.len();
        let mut traffic = vec![0.0; n];
        let mut reach = vec![0.0; n];
        let mut depth = vec![usize::MAX; n];
        traffic[self.edge_service] = 1.0;
        reach[self.edge_service] = 1.0;
        depth[self.edge_service] = 0;
        for &s in &self.order {
            if s == self.feed.1 {
                traffic[s] += traffic[self.feed.0];
            }
            let mut miss = 1.0;
            for &e in &self.inc[s] {
                let edge = &self.edges[e];
                miss *= 1.0 - reach[edge.from] * edge.calls.min(1.0);
                if depth[edge.from] != usize::MAX {
                    depth[s] = depth[s].min(depth[edge.from] + 1);
                }
            }
            if s != self.edge_service {
                reach[s] = 1.0 - miss;
            }
            for &e in &self.out[s] {
                let edge = &self.edges[e];
                traffic[edge.to] += traffic[s] * edge.calls;
            }
        }
        for (i, svc) in self.services.iter_mut().enumerate() {
            svc.traffic_factor = traffic[i];
            svc.reach = reach[i];
            svc.depth = if depth[i] == usize::MAX { 1 } else { depth[i] };
            let peak_pod_rps = FRONTEND_RPS * PEAK_FACTOR * traffic[i] / svc.replicas as f64;
            let demand = svc.idle_cores + peak_pod_rps * svc.cpu_ms / 1000.0;
            let target = noise::uniform(rng, 0.3, 0.6);
            svc.cpu_limit = match svc.role {
                Role::Batch => 2.0,
                Role::Database => 4.0,
                _ => ((demand / target) * 4.0).ceil().max(1.0) / 4.0,
            };
        }
    }
}

/// The caller's deadline for calls to `to`: tight for caches and for the frontend's
/// optional recommendations widget, generous for payments and databases.
fn client_timeout(from: &Service, to: &Service, rng: &mut ChaCha8Rng) -> f64 {
    match (from.name.as_str(), to.name.as_str(), to.role) {
        (_, _, Role::Cache) => 500.0,
        (_, _, Role::Database) => 15_000.0,
        (_, _, Role::Queue) => 5000.0,
        ("frontend", "recommendation", _) => 300.0,
        ("frontend", _, _) => 4000.0,
        ("checkout", "payment", _) => 10_000.0,
        _ if to.flavor == Flavor::Generic => [2000.0, 3000.0, 5000.0][rng.random_range(0..3)],
        _ => 3000.0,
    }
}

/// An owned copy of a catalog edge (generated edges have generated op names).
#[derive(Debug, Clone)]
pub(crate) struct BaseEdgeOwned {
    pub calls: f64,
    pub retries: u8,
    pub propagate: f64,
    pub ops: Vec<(String, String)>,
}

impl From<&BaseEdge> for BaseEdgeOwned {
    fn from(e: &BaseEdge) -> Self {
        let ops = e
            .ops
            .iter()
            .map(|op| {
                let (client, server) = op.split_once('|').unwrap_or((op, op));
                (client.to_string(), server.to_string())
            })
            .collect();
        Self {
            calls: e.calls,
            retries: e.retries,
            propagate: e.propagate,
            ops,
        }
    }
}

fn base_service(b: &catalog::BaseService, rng: &mut ChaCha8Rng) -> Service {
    Service {
        name: b.name.to_string(),
        role: b.role,
        flavor: b.flavor,
        lang: b.lang,
        domain: b.name.to_string(),
        own_ms: b.own_ms,
        sigma: b.sigma,
        cpu_ms: b.cpu_ms,
        idle_cores: noise::uniform(rng, 0.01, 0.04),
        cpu_limit: 1.0,
        mem_limit: f64::from(b.mem_mib) * MIB,
        mem_base_frac: noise::uniform(rng, 0.38, 0.58),
        pool_max: (b.pool > 0).then_some(b.pool),
        replicas: b.replicas,
        base_err: b.base_err,
        log_weight: b.log_weight,
        version: (
            rng.random_range(1..4),
            rng.random_range(0..30),
            rng.random_range(0..12),
        ),
        depth: 0,
        traffic_factor: 0.0,
        reach: 0.0,
    }
}

/// Kahn's algorithm over the call edges plus the async feed, smallest index first.
fn topo_order(n: usize, edges: &[Edge], feed: (usize, usize)) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut succ = vec![Vec::new(); n];
    for (a, b) in edges.iter().map(|e| (e.from, e.to)).chain([feed]) {
        indegree[b] += 1;
        succ[a].push(b);
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(&s) = ready.iter().next() {
        ready.remove(&s);
        order.push(s);
        for &t in &succ[s] {
            indegree[t] -= 1;
            if indegree[t] == 0 {
                ready.insert(t);
            }
        }
    }
    assert_eq!(order.len(), n, "the call graph is acyclic by construction");
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_topology_has_sixteen_services_and_a_dag() {
        let t = Topology::build(1, 12);
        assert_eq!(t.services.len(), 16);
        assert_eq!(t.order.len(), 16);
        assert_eq!(t.services[t.edge_service].name, "frontend");
        let checkout = t.index_of("checkout").unwrap();
        assert!(t.services[checkout].reach > 0.08);
        assert!(t.services[t.index_of("currency").unwrap()].traffic_factor > 1.0);
    }

    #[test]
    fn generated_services_keep_depth_bounded() {
        let t = Topology::build(9, 200);
        assert_eq!(t.services.len(), 204);
        let names: BTreeSet<&str> = t.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 204);
        assert!(
            t.services.iter().all(|s| s.depth <= 6),
            "depth stays bounded"
        );
        assert!(t.services.iter().all(|s| s.cpu_limit >= 0.25));
    }
}
