//! Every integration test of this crate in one binary (one link instead of one per
//! file; nextest still runs each test in its own process).

mod agents_application;
mod agents_change;
mod agents_database;
mod agents_e2e;
mod agents_fakes;
mod agents_infrastructure;
mod agents_network;
mod agents_support;
mod agents_tracing;
mod coordinator;
mod llm_analyst;
