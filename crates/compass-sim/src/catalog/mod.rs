//! The fixed part of the simulated shop: the base services with their performance
//! profile, the synchronous calls between them with the operation names their spans use,
//! and the frontend's HTTP endpoints. `topology` turns these tables into a graph and
//! grows it with generated services.

mod calls;

pub(crate) use calls::*;

use crate::topology::{Flavor, Lang, Role};

/// A base service's static profile.
#[derive(Debug)]
pub(crate) struct BaseService {
    pub name: &'static str,
    pub role: Role,
    pub flavor: Flavor,
    pub lang: Lang,
    /// Mean own work per request (ms), excluding downstream calls.
    pub own_ms: f64,
    /// Log-space spread of the own work.
    pub sigma: f64,
    /// CPU milliseconds per request.
    pub cpu_ms: f64,
    pub mem_mib: u32,
    pub replicas: usize,
    /// Size of the per-pod DB connection pool, 0 for none.
    pub pool: u32,
    /// Baseline fraction of requests that fail for benign reasons.
    pub base_err: f64,
    /// Log lines per request relative to the other services.
    pub log_weight: f64,
}

const fn svc(
    name: &'static str,
    role: Role,
    flavor: Flavor,
    lang: Lang,
    [own_ms, cpu_ms]: [f64; 2],
    mem_mib: u32,
    replicas: usize,
) -> BaseService {
    BaseService {
        name,
        role,
        flavor,
        lang,
        own_ms,
        sigma: 0.45,
        cpu_ms,
        mem_mib,
        replicas,
        pool: 0,
        base_err: 0.0015,
        log_weight: 1.0,
    }
}

/// The base services, application services first. `SimConfig::services` counts the
/// application services (these twelve plus generated ones); the four after them are
/// always present.
pub(crate) const BASE_SERVICES: &[BaseService] = &[
    svc(
        "frontend",
        Role::Edge,
        Flavor::Frontend,
        Lang::Node,
        [8.0, 3.0],
        512,
        3,
    ),
    svc(
        "checkout",
        Role::App,
        Flavor::Checkout,
        Lang::Go,
        [15.0, 5.0],
        512,
        2,
    ),
    svc(
        "cart",
        Role::App,
        Flavor::Cart,
        Lang::Java,
        [3.0, 1.2],
        768,
        3,
    ),
    BaseService {
        sigma: 0.55,
        ..svc(
            "payment",
            Role::App,
            Flavor::Payment,
            Lang::Node,
            [40.0, 4.0],
            512,
            2,
        )
    },
    svc(
        "catalog",
        Role::App,
        Flavor::Catalog,
        Lang::Go,
        [9.0, 2.0],
        512,
        3,
    ),
    BaseService {
        sigma: 0.5,
        ..svc(
            "recommendation",
            Role::App,
            Flavor::Recommendation,
            Lang::Python,
            [25.0, 12.0],
            1024,
            2,
        )
    },
    svc(
        "shipping",
        Role::App,
        Flavor::Shipping,
        Lang::Go,
        [11.0, 2.0],
        256,
        2,
    ),
    svc(
        "currency",
        Role::App,
        Flavor::Currency,
        Lang::Node,
        [2.0, 0.6],
        256,
        3,
    ),
    svc(
        "user",
        Role::App,
        Flavor::User,
        Lang::Java,
        [5.0, 1.5],
        1024,
        2,
    ),
    BaseService {
        pool: 20,
        ..svc(
            "orders",
            Role::App,
            Flavor::Orders,
            Lang::Java,
            [10.0, 4.0],
            1536,
            2,
        )
    },
    BaseService {
        pool: 15,
        ..svc(
            "inventory",
            Role::App,
            Flavor::Inventory,
            Lang::Java,
            [6.0, 2.0],
            1024,
            2,
        )
    },
    svc(
        "notification",
        Role::App,
        Flavor::Notification,
        Lang::Python,
        [20.0, 5.0],
        512,
        2,
    ),
    BaseService {
        sigma: 0.6,
        base_err: 0.0002,
        log_weight: 0.04,
        ..svc(
            "postgres",
            Role::Database,
            Flavor::Postgres,
            Lang::Go,
            [2.5, 1.5],
            4096,
            2,
        )
    },
    BaseService {
        sigma: 0.35,
        base_err: 0.0,
        log_weight: 0.01,
        ..svc(
            "redis",
            Role::Cache,
            Flavor::Redis,
            Lang::Go,
            [0.4, 0.1],
            1024,
            2,
        )
    },
    BaseService {
        base_err: 0.0,
        log_weight: 0.08,
        ..svc(
            "kafka",
            Role::Queue,
            Flavor::Kafka,
            Lang::Java,
            [3.0, 0.5],
            2048,
            3,
        )
    },
    BaseService {
        sigma: 0.3,
        log_weight: 0.5,
        ..svc(
            "report-batch",
            Role::Batch,
            Flavor::ReportBatch,
            Lang::Python,
            [5.0, 1.0],
            1024,
            2,
        )
    },
];

/// Number of application services in `BASE_SERVICES` (the minimum `services`).
pub(crate) const BASE_APP_SERVICES: usize = 12;
