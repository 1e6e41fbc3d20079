//! `not-null`: `SET NOT NULL` without the full-table scan under ACCESS EXCLUSIVE. Optionally
//! fills NULLs first (keyset batches). Then `CHECK (col IS NOT NULL) NOT VALID`, `VALIDATE`
//! (a scan that lets writes go on), and `SET NOT NULL`, which PostgreSQL 12+ proves from the
//! validated check without scanning, and the check is dropped. On PostgreSQL 18, the native
//! `ADD CONSTRAINT … NOT NULL col NOT VALID` and `VALIDATE`.
//!
//! ```toml
//! [not_null]
//! column = "email"
//! backfill = "''"                    # fill NULLs with this expression first (optional)
//! ```

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::Facts;
use crate::playbook::kind::Kind;
use crate::playbook::names::{fit, quote_ident};
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{
    self, constraint_free, definition, missing_columns, not_valid_then_validate, update_batches,
    Action, InPlace, PlanCx, Probe, Step, StepPlan,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotNull {
    column: String,
    backfill: Option<String>,
}

/// A `not-null` playbook's `[not_null]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct NotNull {
    pub column: String,
    /// Fill NULLs with this expression first, in batches.
    pub backfill: Option<String>,
}

impl Kind for NotNull {
    const NAME: &'static str = "not-null";
    type Raw = RawNotNull;
    type Plan = StepPlan;

    fn parse(raw: RawNotNull, p: &Parse<'_>) -> Result<Self, SpecError> {
        Ok(NotNull {
            column: p.nonempty("not_null.column", &raw.column)?,
            backfill: p.optional("not_null.backfill", raw.backfill.as_deref())?,
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

/// The batches that set `column` to `expr` where it is NULL.
pub(crate) fn fill_nulls(facts: &Facts, column: &str, expr: &str) -> Step {
    let col = quote_ident(column);
    let b = update_batches(
        facts,
        &format!("{col} = {expr}"),
        Some(&format!("{col} IS NULL")),
        None,
        &format!("fill NULL {column}"),
    );
    Step {
        name: format!("fill {column}"),
        what: format!(
            "set NULL {col} to `{expr}` in primary-key batches, each its own transaction (row locks on the batch only); the filled values stay after a rollback"
        ),
        actions: vec![Action::Batches(b)],
        undo: Vec::new(),
        swap: false,
        kept: Some(format!("NULL {col} values filled with `{expr}` keep that value")),
    }
}

/// The steps that make `column` NOT NULL without a scan under ACCESS EXCLUSIVE (PG 12+).
pub(crate) fn set_not_null_steps(facts: &Facts, column: &str, version: i32, steps: &mut Vec<Step>) {
    let table = facts.qualified();
    let col = quote_ident(column);
    let check = fit(&format!("{}_{}_not_null", facts.name, column));
    if version >= 180_000 {
        not_valid_then_validate(
            &table,
            &check,
            &format!("NOT NULL {col}"),
            "ACCESS EXCLUSIVE",
            steps,
        );
        return;
    }
    not_valid_then_validate(
        &table,
        &check,
        &format!("CHECK ({col} IS NOT NULL)"),
        "ACCESS EXCLUSIVE",
        steps,
    );
    steps.push(Step {
        name: format!("set not null {column}"),
        what: "SET NOT NULL, proven by the validated check (no scan), then the check is dropped; ACCESS EXCLUSIVE for milliseconds".into(),
        actions: vec![Action::Tx(vec![
            format!("ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL"),
            format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
                quote_ident(&check)
            ),
        ])],
        undo: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} ALTER COLUMN {col} DROP NOT NULL"
        )])],
        swap: false,
        kept: None,
    });
}

impl InPlace for NotNull {
    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
        let (facts, extra) = (cx.facts, cx.extra);
        let NotNull { column, backfill } = self;
        let Some(c) = facts.column(column) else {
            missing_columns(facts, std::slice::from_ref(column), refusals);
            return;
        };
        if c.not_null {
            refusals.push(format!(
                "column {} is already NOT NULL",
                quote_ident(column)
            ));
        }
        if extra.server_version < 120_000 {
            refusals.push(
                "PostgreSQL before 12 cannot use a validated check for SET NOT NULL (it would scan under ACCESS EXCLUSIVE)".into(),
            );
        }
        constraint_free(
            extra,
            &fit(&format!("{}_{}_not_null", facts.name, column)),
            refusals,
        );
        if let Some(expr) = backfill {
            if facts.pk_columns.is_empty() {
                refusals.push("filling NULLs in batches needs a primary key".into());
            }
            p.steps.push(fill_nulls(facts, column, expr));
        }
        set_not_null_steps(facts, column, extra.server_version, &mut p.steps);
        p.before = definition(facts, &[]);
        let mut after = facts.clone();
        for col in &mut after.columns {
            if col.name == *column {
                col.not_null = true;
            }
        }
        p.after = definition(&after, &[]);
    }

    fn probes(&self, facts: &Facts) -> Vec<Probe> {
        self.backfill
            .iter()
            .map(|b| Probe {
                key: "not_null.backfill",
                sql: format!("SELECT ({b}) FROM {} LIMIT 0", facts.qualified()),
            })
            .collect()
    }
}
