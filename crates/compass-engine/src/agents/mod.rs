//! The specialist agents and their explicit registry ([`all`]). One file per agent;
//! each observes through the ports in its `AgentContext` and orients purely.
//!
//! Agents name no service, dataset or fault list: metric names come from the
//! `MetricCatalog`, services from the data, thresholds are general.

pub mod application;
pub mod change;
mod common;
pub mod database;
pub mod infrastructure;
pub mod network;
pub mod signals;
mod spans;
pub mod tracing;

use crate::agent::Agent;
use std::sync::Arc;

pub use application::ApplicationAgent;
pub use change::ChangeAgent;
pub use database::DatabaseAgent;
pub use infrastructure::InfrastructureAgent;
pub use network::NetworkAgent;
pub use signals::SignalsAgent;
pub use tracing::TracingAgent;

/// Every built-in agent, in a stable order.
pub fn all() -> Vec<Arc<dyn Agent>> {
    vec![
        Arc::new(ApplicationAgent),
        Arc::new(ChangeAgent),
        Arc::new(DatabaseAgent),
        Arc::new(InfrastructureAgent),
        Arc::new(NetworkAgent),
        Arc::new(SignalsAgent),
        Arc::new(TracingAgent),
    ]
}
