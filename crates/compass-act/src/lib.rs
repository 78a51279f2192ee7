//! The Act phase (design §10): remediation that a human decided on, carried out behind
//! guard rails — typed actions with a risk level and a dry run (`action`), executors that
//! run programs directly with a timeout (`executor`), and the InterSystems IRIS
//! operations pack (`iris`: `messages.log`, the CPF configuration file).
//!
//! Nothing here runs by itself: every action is planned first, and running one is the
//! caller's decision after approval.

pub mod action;
pub mod audit;
pub mod executor;
pub mod iris;
pub mod outbox;
pub mod router;
pub mod runner;
pub mod service;
