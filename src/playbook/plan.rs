//! A run's frozen plan, of whichever engine runs it: a shadow rebuild or a list of steps.
//! Stored as JSON in `lockstep.runs` (the engine's own plan, untagged: the run's kind says
//! which it is), so a resumed run does exactly what the first one planned.

use serde::Serialize;

use super::settings::{Backfill, Swap};
use super::shadow::ShadowPlan;
use super::steps::StepPlan;
use super::view::PlanView;

/// The plan of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AnyPlan {
    /// The table is rebuilt into a target definition and swapped in.
    Shadow(Box<ShadowPlan>),
    /// The table is changed in place, step by step.
    Steps(StepPlan),
}

impl From<ShadowPlan> for AnyPlan {
    fn from(p: ShadowPlan) -> Self {
        AnyPlan::Shadow(Box::new(p))
    }
}

impl From<StepPlan> for AnyPlan {
    fn from(p: StepPlan) -> Self {
        AnyPlan::Steps(p)
    }
}

impl AnyPlan {
    /// The table, quoted and qualified.
    pub fn table(&self) -> String {
        match self {
            AnyPlan::Shadow(p) => p.source(),
            AnyPlan::Steps(p) => p.table.clone(),
        }
    }

    /// The table's estimated rows.
    pub fn rows_estimate(&self) -> i64 {
        match self {
            AnyPlan::Shadow(p) => p.facts.rows_estimate,
            AnyPlan::Steps(p) => p.rows_estimate,
        }
    }

    /// The tables whose locks matter while the run works.
    pub fn tables(&self) -> Vec<String> {
        match self {
            AnyPlan::Shadow(p) => p.tables(),
            AnyPlan::Steps(p) => p.tables.clone(),
        }
    }

    /// The table's definition before and after (what `lockstep plan` compares).
    pub fn definitions(&self) -> (String, String) {
        match self {
            AnyPlan::Shadow(p) => (p.definition_before(), p.definition_after()),
            AnyPlan::Steps(p) => (p.before.clone(), p.after.clone()),
        }
    }

    /// The plan as `lockstep plan` shows it.
    pub fn describe(&self, backfill: &Backfill, swap: &Swap) -> PlanView {
        match self {
            AnyPlan::Shadow(p) => p.describe(backfill, swap),
            AnyPlan::Steps(p) => p.describe(swap),
        }
    }
}
