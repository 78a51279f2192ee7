//! The COMPASS command-line crate as a library: the pieces of the binary that are worth
//! testing on their own (and reusing from `main.rs` as `compass::report`).

pub mod act;
pub mod cli;
pub mod eval;
pub mod live;
pub mod llm;
pub mod report;
pub mod serve;
