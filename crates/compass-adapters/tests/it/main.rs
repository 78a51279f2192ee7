//! Every integration test of this crate in one binary (one link instead of one per
//! file; nextest still runs each test in its own process).

mod alertmanager;
mod bundle;
mod config_check;
mod jaeger;
mod llm_local;
mod llm_providers;
mod logfile;
mod loki;
mod nezha;
mod prometheus;
mod record;
mod resilience;
mod store_conformance;
mod tempo;
mod trace_support;
