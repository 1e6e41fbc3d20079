//! The [`Kind`] trait every playbook kind implements; the kinds are registered in
//! `kinds/mod.rs`.

use serde::de::DeserializeOwned;
use tokio_postgres::Client;

use super::exec::EngineError;
use super::plan::AnyPlan;
use super::settings::{Common, Parse, SpecError};

/// A kind of playbook.
#[allow(async_fn_in_trait)]
pub trait Kind: Sized {
    /// The `kind = "…"` value.
    const NAME: &'static str;
    /// Whether `[backfill] workers` applies (the kind works with several connections).
    const WORKERS: bool = false;
    /// Whether `[dependents]` applies.
    const DEPENDENTS: bool = false;
    /// Whether a run swaps the table (or a column) at the end (`[swap] mode` applies).
    const SWAPS: bool = false;
    /// The kind's own TOML table, as written.
    type Raw: DeserializeOwned;
    /// How a run of this kind is planned and executed (a plan of steps, or a shadow rebuild).
    type Plan: DeserializeOwned + Into<AnyPlan>;

    /// Validates the kind's table; errors name the key.
    fn parse(raw: Self::Raw, p: &Parse<'_>) -> Result<Self, SpecError>;

    /// Reads the table and what else the kind needs, runs the preflight checks, and returns
    /// the plan and the reasons to refuse it (empty: go). Writes nothing.
    async fn prepare(
        &self,
        pb: &Common,
        client: &Client,
        run_id: &str,
    ) -> Result<(Self::Plan, Vec<String>), EngineError>;
}
