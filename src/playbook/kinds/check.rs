//! `check`: add a CHECK constraint without blocking writes: `NOT VALID` (no scan, a brief
//! ACCESS EXCLUSIVE), then `VALIDATE` in its own transaction (a scan under SHARE UPDATE
//! EXCLUSIVE, which lets reads and writes go on).
//!
//! ```toml
//! [check]
//! name = "orders_total_positive"     # default: <table>_lockstep_check
//! expression = "total >= 0"
//! ```

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::Facts;
use crate::playbook::kind::Kind;
use crate::playbook::names::{fit, quote_ident};
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{
    self, constraint_free, definition, not_valid_then_validate, InPlace, PlanCx, Probe, StepPlan,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    name: Option<String>,
    expression: String,
}

/// A `check` playbook's `[check]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: Option<String>,
    pub expression: String,
}

impl Kind for Check {
    const NAME: &'static str = "check";
    type Raw = RawCheck;
    type Plan = StepPlan;

    fn parse(raw: RawCheck, p: &Parse<'_>) -> Result<Self, SpecError> {
        Ok(Check {
            name: raw.name,
            expression: p.nonempty("check.expression", &raw.expression)?,
        })
    }

    async fn prepare(
        &self,
        pb: &Common,
        client: &Client,
        run_id: &str,
    ) -> Result<(StepPlan, Vec<String>), EngineError> {
        steps::prepare(self, Self::NAME, pb, client, run_id).await
    }
}

impl InPlace for Check {
    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
        let facts = cx.facts;
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| fit(&format!("{}_lockstep_check", facts.name)));
        constraint_free(cx.extra, &name, refusals);
        let def = format!("CHECK ({})", self.expression);
        not_valid_then_validate(
            &facts.qualified(),
            &name,
            &def,
            "ACCESS EXCLUSIVE",
            &mut p.steps,
        );
        p.before = definition(facts, &[]);
        p.after = definition(
            facts,
            &[format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {def};",
                facts.qualified(),
                quote_ident(&name)
            )],
        );
    }

    fn probes(&self, facts: &Facts) -> Vec<Probe> {
        vec![Probe {
            key: "check.expression",
            sql: format!(
                "SELECT ({})::boolean FROM {} LIMIT 0",
                self.expression,
                facts.qualified()
            ),
        }]
    }
}
