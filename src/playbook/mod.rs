//! Online conversions driven by a playbook file. How a playbook flows, from the TOML to the
//! state table (ARCHITECTURE.md has the whole picture):
//!
//! 1. `spec/` parses the file: the kind, the table, the shared settings; the kind's own
//!    table is parsed by its module in `kinds/`, registered in the one list in `kinds/mod.rs`
//!    (the `Kind` trait is in `kind.rs`, the settings every kind shares in `settings.rs`).
//! 2. The kind prepares a plan (`Kind::prepare`): it reads the table's facts (`facts/`),
//!    runs the preflight checks and makes a plan, pure SQL: a shadow rebuild (`shadow/`)
//!    or a list of steps (`steps/`). `lockstep plan` shows it (`view.rs`), with the
//!    statements from pg_stat_statements that the change would break (`queries/`).
//! 3. `engine.rs` starts or loads a run (`state.rs`: `lockstep.runs`, every value parsed
//!    into types on load), checks the command is allowed, and hands the run to its engine.
//! 4. The engines run their steps through the execution core (`exec/`): statements under
//!    the retry policy, the one batch driver, pacing, the pause gate, several connections,
//!    progress; every step checkpointed in the state table.

pub mod engine;
pub mod exec;
pub mod facts;
pub mod keyset;
pub mod kind;
pub mod kinds;
pub mod lock;
pub mod names;
pub mod plan;
pub mod queries;
pub mod settings;
pub mod shadow;
pub mod spec;
pub mod state;
pub mod steps;
pub mod view;
