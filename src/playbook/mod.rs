//! Online conversions driven by a playbook file: turning a table into a partitioned one
//! (`engine.rs`, `plan.rs`), and the in-place kinds (`ops/`: column type, NOT NULL,
//! constraints, indexes, backfills). See ONLINE.md for the steps and the traps they avoid.

pub mod engine;
pub mod facts;
pub mod keyset;
mod lanes;
pub mod ops;
pub mod plan;
pub mod spec;
pub mod state;
