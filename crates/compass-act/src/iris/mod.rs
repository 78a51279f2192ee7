//! The InterSystems IRIS operations pack: the instance's `messages.log` as COMPASS logs
//! and the CPF configuration file edited with backup and atomic writes.

pub mod cpf;
pub mod diagnose;
pub mod generator;
pub mod messages;
pub mod os;
