//! Live trace backends behind the trace port: Grafana Tempo ([`tempo`]) and Jaeger
//! ([`jaeger`]). Both search a range for trace ids, fetch whole traces, and turn them
//! into spans shaped as the tracing agent expects (a call from A to B is a client span
//! in A with `peer_service = B` whose child is a server span in B); what they share
//! (peer inference, call-graph edges, id normalisation) is in `common`, the
//! paging walk over either in `walk`.

mod common;
pub mod jaeger;
pub mod tempo;
mod walk;

pub use common::Trace;
pub use jaeger::{JaegerConfig, JaegerSource};
pub use tempo::{TempoConfig, TempoSource};
