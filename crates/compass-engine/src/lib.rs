//! COMPASS engine: agents, the OODA coordinator, ports for every data source, the
//! budget, and circuit breakers. Names no concrete backend.

pub mod agent;
pub mod agents;
pub mod breaker;
pub mod budget;
pub mod catalog;
pub mod coordinator;
pub mod fakes;
pub mod llm;
pub mod ports;
pub mod store;

pub use agent::{Agent, AgentContext, AgentError, AgentOutput};
pub use budget::{Budget, BudgetLimits};
pub use catalog::{GaugeSignal, MetricCatalog, Signal};
pub use coordinator::{Coordinator, CoordinatorConfig, ProgressEvent, ProgressFn};
pub use ports::*;
