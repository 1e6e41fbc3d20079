//! `reindex`: `REINDEX INDEX CONCURRENTLY` (PostgreSQL 12+), after dropping the INVALID
//! `<index>_ccnew`/`_ccold` leftovers of an interrupted one.
//!
//! ```toml
//! [reindex]
//! name = "orders_customer_idx"
//! ```

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::{self, Extra, Facts, FactsError};
use crate::playbook::kind::Kind;
use crate::playbook::names::quote_ident;
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{self, definition, rel, Action, InPlace, PlanCx, Step, StepPlan};

/// A `[reindex]` or `[drop_index]` table: the index, by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIndexRef {
    name: String,
}

impl RawIndexRef {
    /// The index's name; `section` is for messages.
    pub(super) fn name(&self, section: &str, p: &Parse<'_>) -> Result<String, SpecError> {
        p.nonempty(&format!("{section}.name"), &self.name)
    }
}

/// A `reindex` playbook's `[reindex]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Reindex {
    pub name: String,
}

impl Kind for Reindex {
    const NAME: &'static str = "reindex";
    type Raw = RawIndexRef;
    type Plan = StepPlan;

    fn parse(raw: RawIndexRef, p: &Parse<'_>) -> Result<Self, SpecError> {
        Ok(Reindex {
            name: raw.name("reindex", p)?,
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

impl InPlace for Reindex {
    async fn read(&self, client: &Client, f: &Facts, extra: &mut Extra) -> Result<(), FactsError> {
        extra.index = facts::index(client, f, &self.name).await?;
        Ok(())
    }

    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
        let (facts, extra) = (cx.facts, cx.extra);
        let table = facts.qualified();
        p.before = definition(facts, &[]);
        let Some(ix) = &extra.index else {
            refusals.push(format!(
                "{table} has no index named {}",
                quote_ident(&self.name)
            ));
            return;
        };
        let qix = rel(facts, &ix.name);
        if extra.server_version < 120_000 {
            refusals.push("REINDEX CONCURRENTLY needs PostgreSQL 12 or later".into());
        }
        if ix.partitioned {
            refusals.push(format!(
                "{qix} is a partitioned index: reindex each partition's index instead"
            ));
        }
        p.steps.push(Step {
            name: "leftovers".into(),
            what: "drop (concurrently) INVALID leftovers of an interrupted REINDEX CONCURRENTLY"
                .into(),
            actions: vec![Action::DropInvalid {
                table: table.clone(),
                prefix: format!("{}_cc", ix.name),
            }],
            undo: Vec::new(),
            swap: false,
            kept: None,
        });
        p.steps.push(Step {
            name: "reindex".into(),
            what: "REINDEX INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and writes go on; the old index is swapped for the new one".into(),
            actions: vec![Action::Concurrent(format!("REINDEX INDEX CONCURRENTLY {qix}"))],
            undo: Vec::new(),
            swap: false,
            kept: None,
        });
        p.after = p.before.clone();
    }
}
