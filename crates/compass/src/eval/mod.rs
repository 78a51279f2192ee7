//! `compass eval`: COMPASS scored on public labelled data. Printing is left to `cli`.
//!
//! - [`loghub`]: the template miner on the Loghub 2k samples (GA, PA, FGA, FTA).
//! - [`nezha`]: full investigations of the Nezha fault-injection cases, ranked
//!   services scored as AC@k, Avg@5 and MRR.

pub mod loghub;
pub mod nezha;

pub use loghub::{LoghubResult, MiningBench, bench_mining, loghub, make_mining_input};
