//! Every integration test of this crate in one binary (one link instead of one per
//! file; nextest still runs each test in its own process).

mod accuracy;
mod act_cli;
mod cli;
mod deploy_files;
mod eval_loghub;
mod eval_nezha;
mod golden;
mod live_prometheus;
mod llm_cli;
mod report_fixture;
mod report_html;
mod report_snapshots;
mod serve_api;
mod serve_common;
mod serve_live;
mod serve_mcp;
