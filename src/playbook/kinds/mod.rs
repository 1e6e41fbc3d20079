//! One module per playbook kind, each implementing [`Kind`](super::kind::Kind): parsing its
//! TOML table, reading what it needs, the preflight checks and the plan. `partition` is a
//! shadow rebuild (`shadow/`); the others change the table in place, step by step
//! (`steps/`). The kinds are registered in `kind.rs`.

pub mod backfill;
pub mod check;
pub mod column_type;
pub mod drop_index;
pub mod foreign_key;
pub mod index;
mod key;
pub mod not_null;
pub mod partition;
#[cfg(test)]
mod plans_test;
pub mod primary_key;
pub mod reindex;
#[cfg(test)]
pub mod test_noop;
pub mod unique;
