//! compass-act integration tests: one binary (see ARCHITECTURE.md, "Tests").

mod desk;
mod drill;
mod outbox;
