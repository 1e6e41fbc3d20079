//! The step engine, for the kinds that change a table in place: a plan is an ordered list
//! of steps, each with its forward actions and the actions that undo it. Kinds make plans
//! (pure: no database, see `prepare.rs` for what they read first); `runner.rs` executes them
//! with the execution core's guarantees (lock_timeout and retries, checkpoints, throttled
//! batches, progress, resume, rollback in reverse order, finalize).

mod prepare;
mod runner;
mod update;

use serde::{Deserialize, Serialize};

#[cfg(test)]
pub(crate) use prepare::make;
pub(crate) use prepare::{prepare, try_probes, InPlace, PlanCx, Probe};
pub(crate) use runner::{finalize, forward, rollback, At};
pub(crate) use update::{undo_table, update_batches};

use super::facts::{Extra, Facts};
use super::names::{fit, list, quote_ident};
use super::settings::Swap;
use super::view::{human_bytes, PlanView, StepView};

/// One thing a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Statements in one transaction under the playbook's lock_timeout, retried with backoff.
    Tx(Vec<String>),
    /// `CREATE [UNIQUE] INDEX CONCURRENTLY` of `index` (qualified): a valid index of that name
    /// is kept, an INVALID leftover of an interrupted build is dropped and built again.
    BuildIndex { index: String, sql: String },
    /// One statement that cannot run in a transaction block (`DROP INDEX CONCURRENTLY`,
    /// `REINDEX … CONCURRENTLY`), under lock_timeout, retried.
    Concurrent(String),
    /// Drops (concurrently) the INVALID indexes of `table` whose name starts with `prefix`:
    /// the leftovers of an interrupted `REINDEX CONCURRENTLY`.
    DropInvalid { table: String, prefix: String },
    /// Keyset batches over the primary key, resumable from the run's high-water mark.
    Batches(Batches),
    /// A statement returning (rows handled, rows changed), run again until it handles none.
    Drain(String),
    /// A query returning one bigint; above zero the run stops with `message`.
    Guard { sql: String, message: String },
}

/// A batched, throttled, resumable pass over a table in primary-key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batches {
    /// What the progress line calls it.
    pub label: String,
    /// The highest key when the pass starts (`text[]`): its upper bound.
    pub max_key_sql: String,
    /// The first batch; `{limit}` is the batch size, `$1..$k` the upper bound. Returns
    /// (rows changed, last key of the range or NULL when none is left).
    pub first_sql: String,
    /// Later batches: `$k+1..$2k` is the previous batch's last key.
    pub next_sql: String,
}

/// One checkpointed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// What it does and which locks it takes, for `lockstep plan`.
    pub what: String,
    pub actions: Vec<Action>,
    /// Undoes the step (run in reverse step order by `lockstep rollback`); idempotent.
    pub undo: Vec<Action>,
    /// The step after which the table's definition has changed for the application (the
    /// swap of `column-type`): a rollback from here on is a swap back.
    #[serde(default)]
    pub swap: bool,
    /// What a rollback cannot take back once this step ran (shown after the rollback).
    #[serde(default)]
    pub kept: Option<String>,
}

/// A frozen plan of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepPlan {
    pub kind: String,
    /// The table, quoted and qualified.
    pub table: String,
    pub steps: Vec<Step>,
    /// Run by `lockstep finalize` (empty: nothing to finalize).
    pub finalize: Vec<Action>,
    /// Tables whose locks matter (for naming blockers).
    pub tables: Vec<String>,
    /// Things the user should know (shown by `lockstep plan`).
    pub notes: Vec<String>,
    /// The table's definition before and after, for the plan's diff.
    pub before: String,
    pub after: String,
    pub rows_estimate: i64,
    pub total_bytes: i64,
}

impl StepPlan {
    /// An empty plan of `kind` on the table.
    pub fn new(kind: &str, facts: &Facts) -> StepPlan {
        StepPlan {
            kind: kind.to_string(),
            table: facts.qualified(),
            steps: Vec::new(),
            finalize: Vec::new(),
            tables: vec![facts.qualified()],
            notes: Vec::new(),
            before: String::new(),
            after: String::new(),
            rows_estimate: facts.rows_estimate,
            total_bytes: facts.total_bytes,
        }
    }

    /// Whether a step changes the table's definition for the application (a rollback from
    /// there on is a swap back).
    pub fn swaps(&self) -> bool {
        self.steps.iter().any(|s| s.swap)
    }

    /// The plan as `lockstep plan` shows it.
    pub fn describe(&self, swap: &Swap) -> PlanView {
        let lines = |actions: &[Action]| actions.iter().flat_map(action_lines).collect::<Vec<_>>();
        PlanView {
            headline: format!(
                "plan: {} on {}\n  about {} rows, {} on disk",
                self.kind,
                self.table,
                self.rows_estimate,
                human_bytes(self.total_bytes)
            ),
            notes: self.notes.clone(),
            preamble: Some(format!(
                "every statement runs under lock_timeout {} ms, up to {} attempts with backoff; concurrent builds wait for older transactions first, then run without a timeout (their SHARE UPDATE EXCLUSIVE lock lets reads and writes go on)",
                swap.lock_timeout_ms, swap.attempts
            )),
            steps: self
                .steps
                .iter()
                .map(|s| StepView {
                    name: s.name.clone(),
                    what: s.what.clone(),
                    sql: lines(&s.actions),
                    undo: (!s.undo.is_empty()).then(|| {
                        (
                            if s.swap {
                                "rollback (swap back)".to_string()
                            } else {
                                "rollback".to_string()
                            },
                            lines(&s.undo),
                        )
                    }),
                })
                .collect(),
            finalize: (!self.finalize.is_empty()).then(|| lines(&self.finalize)),
            table: self.table.clone(),
            before: self.before.clone(),
            after: self.after.clone(),
        }
    }
}

/// One action as the plan shows it: its SQL, and how it runs when that is not obvious.
fn action_lines(a: &Action) -> Vec<String> {
    match a {
        Action::Tx(sql) => {
            let mut v = vec!["BEGIN; SET LOCAL lock_timeout …".to_string()];
            v.extend(sql.iter().map(|s| format!("{s};")));
            v.push("COMMIT;".into());
            v
        }
        Action::BuildIndex { sql, .. } => vec![format!("{sql};  -- an INVALID leftover is dropped first")],
        Action::Concurrent(sql) => vec![format!("{sql};")],
        Action::DropInvalid { prefix, .. } => vec![format!(
            "-- DROP INDEX CONCURRENTLY each INVALID index named {prefix}…"
        )],
        Action::Batches(b) => vec![
            format!("-- in batches, each its own transaction, until the range up to the highest key now is done:"),
            format!("{};", b.next_sql),
        ],
        Action::Drain(sql) => vec!["-- repeated until no row is left:".into(), format!("{sql};")],
        Action::Guard { sql, message } => vec![format!("{sql};  -- must be 0, else: {message}")],
    }
}

/// `schema.name` of a relation in the table's schema, quoted.
pub(crate) fn rel(facts: &Facts, name: &str) -> String {
    format!("{}.{}", quote_ident(&facts.schema), quote_ident(name))
}

/// A default constraint or index name: `<table>_<cols>_<suffix>`, fitted to 63 bytes.
pub(crate) fn default_name(facts: &Facts, cols: &[String], suffix: &str) -> String {
    fit(&format!("{}_{}_{suffix}", facts.name, cols.join("_")))
}

/// Refusals for columns the table does not have.
pub(crate) fn missing_columns(facts: &Facts, cols: &[String], refusals: &mut Vec<String>) {
    for c in cols {
        if facts.column(c).is_none() {
            refusals.push(format!(
                "{} has no column {}",
                facts.qualified(),
                quote_ident(c)
            ));
        }
    }
}

/// A refusal when a constraint name is taken.
pub(crate) fn constraint_free(extra: &Extra, name: &str, refusals: &mut Vec<String>) {
    if extra.constraints.iter().any(|c| c == name) {
        refusals.push(format!(
            "the table already has a constraint named {} (choose another `name`, or drop it)",
            quote_ident(name)
        ));
    }
}

/// `ALTER TABLE … ADD CONSTRAINT … NOT VALID` then `VALIDATE`, as two steps; the first
/// step's undo drops the constraint.
pub(crate) fn not_valid_then_validate(
    table: &str,
    name: &str,
    definition: &str,
    lock: &str,
    steps: &mut Vec<Step>,
) {
    let c = quote_ident(name);
    steps.push(Step {
        name: format!("add {name}"),
        what: format!("add the constraint NOT VALID: no scan; {lock} for milliseconds"),
        actions: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} ADD CONSTRAINT {c} {definition} NOT VALID"
        )])],
        undo: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {c}"
        )])],
        swap: false,
        kept: None,
    });
    steps.push(Step {
        name: format!("validate {name}"),
        what: "validate: scans the table under SHARE UPDATE EXCLUSIVE, which lets reads and writes go on".into(),
        actions: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} VALIDATE CONSTRAINT {c}"
        )])],
        undo: Vec::new(),
        swap: false,
        kept: None,
    });
}

/// A readable definition of the table (columns, key, constraints are not all shown: enough
/// for the plan's diff).
pub(crate) fn definition(facts: &Facts, extra_lines: &[String]) -> String {
    let mut s = format!("CREATE TABLE {} (\n", facts.qualified());
    let cols: Vec<String> = facts
        .columns
        .iter()
        .map(|c| {
            let mut d = format!("    {} {}", quote_ident(&c.name), c.type_sql);
            if let Some(def) = &c.default_sql {
                if c.identity.is_empty() && !c.generated {
                    d.push_str(&format!(" DEFAULT {def}"));
                }
            }
            if c.not_null {
                d.push_str(" NOT NULL");
            }
            d
        })
        .collect();
    s.push_str(&cols.join(",\n"));
    s.push_str("\n);\n");
    if !facts.pk_columns.is_empty() {
        s.push_str(&format!(
            "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({});\n",
            facts.qualified(),
            quote_ident(&facts.pk_name),
            list(&facts.pk_columns)
        ));
    }
    for ix in &facts.indexes {
        s.push_str(&format!(
            "CREATE {}INDEX {} ON {}{};\n",
            if ix.unique { "UNIQUE " } else { "" },
            quote_ident(&ix.name),
            facts.qualified(),
            ix.tail
        ));
    }
    for l in extra_lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}
