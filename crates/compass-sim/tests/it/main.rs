//! Every integration test of this crate in one binary (one link instead of one per
//! file; nextest still runs each test in its own process).

mod common;
mod determinism;
mod promtool;
mod scenarios;
