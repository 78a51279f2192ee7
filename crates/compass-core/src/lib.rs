//! COMPASS core: the domain model and pure analysis.
//!
//! Nothing here does I/O, spawns, or reads the clock: analysis takes data and a time
//! range and returns results. Missing or odd data gives a partial result plus notes.

pub mod data;
pub mod detect;
pub mod logmine;
pub mod logscore;
pub mod model;
pub mod orient;
pub mod redact;
pub mod stats;

pub use data::*;
pub use model::*;
