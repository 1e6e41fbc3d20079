//! Online conversions driven by a playbook file: for now, turning a table into a
//! partitioned one (see ONLINE.md for the steps and the traps they avoid).

pub mod engine;
pub mod facts;
pub mod plan;
pub mod spec;
pub mod state;
