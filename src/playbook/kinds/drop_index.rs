//! `drop-index`: `DROP INDEX CONCURRENTLY`; the undo builds it again, concurrently, from its
//! definition.
//!
//! ```toml
//! [drop_index]
//! name = "orders_legacy_idx"
//! ```

use tokio_postgres::Client;

use super::reindex::RawIndexRef;
use crate::playbook::exec::EngineError;
use crate::playbook::facts::{self, Extra, Facts, FactsError};
use crate::playbook::kind::Kind;
use crate::playbook::names::quote_ident;
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{self, definition, rel, Action, InPlace, PlanCx, Step, StepPlan};

/// A `drop-index` playbook's `[drop_index]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct DropIndex {
    pub name: String,
}

impl Kind for DropIndex {
    const NAME: &'static str = "drop-index";
    type Raw = RawIndexRef;
    type Plan = StepPlan;

    fn parse(raw: RawIndexRef, p: &Parse<'_>) -> Result<Self, SpecError> {
        Ok(DropIndex {
            name: raw.name("drop_index", p)?,
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

/// `CREATE INDEX` → `CREATE INDEX CONCURRENTLY` in a `pg_get_indexdef` definition.
fn concurrently(def: &str) -> String {
    if let Some(rest) = def.strip_prefix("CREATE UNIQUE INDEX ") {
        format!("CREATE UNIQUE INDEX CONCURRENTLY {rest}")
    } else if let Some(rest) = def.strip_prefix("CREATE INDEX ") {
        format!("CREATE INDEX CONCURRENTLY {rest}")
    } else {
        def.to_string()
    }
}

impl InPlace for DropIndex {
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
        if let Some(c) = &ix.constraint {
            refusals.push(format!(
                "{qix} backs the constraint {}: drop the constraint instead (`ALTER TABLE … DROP CONSTRAINT`)",
                quote_ident(c)
            ));
        }
        if ix.partitioned {
            refusals.push(format!(
                "{qix} is a partitioned index: DROP INDEX CONCURRENTLY does not support it"
            ));
        }
        p.steps.push(Step {
            name: "drop".into(),
            what: "DROP INDEX CONCURRENTLY: waits for queries using the index, blocks no reads or writes".into(),
            actions: vec![Action::Concurrent(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {qix}"
            ))],
            undo: vec![Action::BuildIndex {
                index: qix.clone(),
                sql: concurrently(&ix.definition),
            }],
            swap: false,
            kept: None,
        });
        let mut after = facts.clone();
        after.indexes.retain(|i| i.name != ix.name);
        p.after = definition(&after, &[]);
    }
}
