//! compass-act integration tests: one binary (see ARCHITECTURE.md, "Tests").

mod drill;
mod outbox;
