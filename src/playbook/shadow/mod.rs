//! The shadow rebuild engine: a table is rebuilt into a *target definition* while the
//! application keeps writing to it, and the rebuilt table takes its place in one short swap.
//! Steps (see ONLINE.md): shadow (the new table, empty), capture (the changes made while the
//! copy runs), backfill (the copy, in key ranges over several connections), indexes,
//! replay (the captured changes), verify (range by range), swap (one transaction under
//! lock_timeout), validate; after the swap a reverse sync keeps the old table current until
//! `finalize` drops it, and `rollback` swaps back.
//!
//! - `target.rs`: what the new table is (today: partitioned), its DDL and index builds;
//! - `capture.rs`: how changes are captured and replayed (today: a trigger writing a key log);
//! - `ranges.rs`: the SQL of the copy and the verification, by key range;
//! - `swap.rs`: the swap, the swap back, the synchronous reverse sync, finalize;
//! - `reverse.rs`: the deferred reverse syncs (a key log after the swap, applied by rollback);
//! - `reverse_slot.rs`: the reverse sync by logical decoding (the slot that fills that log);
//! - `runner.rs` with `copy.rs`, `indexes.rs`, `verify.rs`: running the steps;
//! - `describe.rs`: the plan as `lockstep plan` shows it.

mod capture;
mod carry;
mod copy;
mod describe;
mod indexes;
mod logical;
mod pgoutput;
mod ranges;
mod reverse;
mod reverse_slot;
mod runner;
mod stream;
mod swap;
mod target;
mod verify;

use serde::{Deserialize, Serialize};

pub use capture::log_table;
pub(crate) use capture::TriggerLog;
pub(crate) use logical::replication_unavailable;
pub use logical::Logical;
pub(crate) use reverse::backlog as reverse_backlog;
pub(crate) use reverse_slot::drop_reverse_slot;
pub use runner::CaptureStatus;
pub(crate) use runner::{capture_status, forward, status, Step};
pub(crate) use swap::{finalize, rollback, sync_back};
pub use target::{ColumnChange, Shape, Target};

use super::facts::Facts;
use super::keyset::Keyset;
use super::names::{fit, quote_ident as q};
use super::settings::ReverseSync;

/// One partition of the new table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub name: String,
    /// `FOR VALUES FROM ('…') TO ('…')`, `FOR VALUES IN (…)`, `DEFAULT`, …
    pub bound: String,
}

/// Every name a run creates or renames to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub run_id: String,
    /// The new (partitioned) table, until the swap.
    pub shadow: String,
    /// The original table after the swap.
    pub old: String,
    pub shadow_pk: String,
    pub old_pk: String,
    /// Per secondary index: (name on the new parent until the swap, name of the original after).
    pub indexes: Vec<(String, String)>,
    pub forward_fn: String,
    pub reverse_fn: String,
    pub partitions: Vec<Partition>,
}

impl Names {
    pub fn new(facts: &Facts, run_id: &str, partitions: Vec<Partition>) -> Names {
        let shadow = fit(&format!("{}_lockstep_new", facts.name));
        let old = fit(&format!("{}_old", facts.name));
        Names {
            run_id: run_id.to_string(),
            shadow_pk: fit(&format!("{shadow}_pkey")),
            old_pk: fit(&format!("{old}_pkey")),
            indexes: facts
                .indexes
                .iter()
                .enumerate()
                .map(|(i, ix)| {
                    (
                        fit(&format!("{shadow}_{i}_idx")),
                        fit(&format!("{}_old", ix.name)),
                    )
                })
                .collect(),
            forward_fn: fit(&format!("fwd_{run_id}")),
            reverse_fn: fit(&format!("rev_{run_id}")),
            shadow,
            old,
            partitions,
        }
    }
}

/// The three sets of names around the swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The table's own names (what the application uses).
    Live,
    /// `<table>_old` and its renamed indexes.
    Old,
    /// The partitioned copy's names before the swap.
    Shadow,
}

/// One partition's index: its name, the statements that build it (one transaction) and the
/// one that attaches it to the parent's index, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildIndex {
    pub name: String,
    pub build: Vec<String>,
    pub attach: Option<String>,
}

/// One index of the new table: built on each partition, with a statement on the parent
/// before the partitions' builds (`CREATE INDEX … ON ONLY`) or after them (the primary key,
/// which adopts the partitions' keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexJob {
    pub first: Option<String>,
    pub children: Vec<ChildIndex>,
    /// The parent's statement after the builds, and the relation it creates (when that exists,
    /// the statement already ran).
    pub last: Option<(String, String)>,
    /// A unique index other than the primary key: built from a copy that matches the table at
    /// one moment, since the rows of a copy caught up piecemeal may briefly share a value.
    pub unique: bool,
}

/// A frozen plan: the table's facts, the target definition and the names a run works from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowPlan {
    pub facts: Facts,
    pub names: Names,
    /// The new table's primary key.
    pub key: Vec<String>,
    /// What the new table is.
    #[serde(flatten)]
    pub target: Target,
    /// What a `rebuild` changes besides column types: actions, column order, storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    /// Logical capture's slot and publication (none: the trigger captures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical: Option<Logical>,
    /// Why `[capture] mode = "auto"` chose the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_because: Option<String>,
    /// How the old table is kept for a swap back after the swap (`[swap] reverse`, as
    /// chosen: never `Auto`). A plan without it (made before the setting) syncs.
    #[serde(default, skip_serializing_if = "ReverseSync::is_sync")]
    pub reverse: ReverseSync,
}

impl ShadowPlan {
    fn schema(&self) -> String {
        q(&self.facts.schema)
    }

    /// `schema.name`, quoted.
    pub fn rel(&self, name: &str) -> String {
        format!("{}.{}", self.schema(), q(name))
    }

    pub fn source(&self) -> String {
        self.facts.qualified()
    }

    pub fn shadow(&self) -> String {
        self.rel(&self.names.shadow)
    }

    pub fn old(&self) -> String {
        self.rel(&self.names.old)
    }

    /// The columns a row carries from one table to the other: the table's inserted columns
    /// that the new table keeps.
    fn cols(&self) -> Vec<String> {
        self.facts
            .insert_columns()
            .iter()
            .filter(|c| !self.dropped(&c.name))
            .map(|c| c.name.clone())
            .collect()
    }

    /// Whether the new table no longer has column `c`.
    fn dropped(&self, c: &str) -> bool {
        self.shape
            .as_ref()
            .is_some_and(|s| s.dropped.iter().any(|d| d == c))
    }

    /// ` OVERRIDING SYSTEM VALUE` for an insert into the new table (`new`) or the old one,
    /// when one of the carried columns is an identity column `GENERATED ALWAYS` there.
    fn overriding_into(&self, new: bool) -> &'static str {
        let cols = self.cols();
        let always =
            |c: &crate::playbook::facts::Column| c.identity == "a" && cols.contains(&c.name);
        let found = match self.shape.as_ref().filter(|_| new) {
            Some(s) if !s.columns.is_empty() => s.columns.iter().any(always),
            _ => self.facts.columns.iter().any(always),
        };
        if found {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        }
    }

    fn overriding(&self) -> &'static str {
        self.overriding_into(true)
    }

    /// The primary key, for keyset SQL.
    fn keys(&self) -> Keyset {
        Keyset::primary(&self.facts)
    }

    /// The tables whose locks matter while the run works.
    pub fn tables(&self) -> Vec<String> {
        vec![self.source(), self.shadow(), self.old()]
    }

    /// Every relation name the run creates or renames to, which must be free: the new table,
    /// its partitions and indexes, the old table, what the swap renames to.
    pub fn created_names(&self) -> Vec<String> {
        let mut wanted = vec![
            self.names.shadow.clone(),
            self.names.old.clone(),
            self.names.shadow_pk.clone(),
        ];
        wanted.extend(self.names.partitions.iter().map(|p| p.name.clone()));
        wanted.extend(self.names.indexes.iter().map(|(temp, _)| temp.clone()));
        for job in self.index_sql() {
            wanted.extend(job.children.into_iter().map(|c| c.name));
        }
        wanted.extend(self.carried_names());
        let mut seen = std::collections::BTreeSet::new();
        wanted.retain(|n| seen.insert(n.clone()));
        wanted
    }

    /// A refusal for each name the run needs that is taken.
    pub(crate) async fn taken_refusals(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Vec<String>, crate::playbook::exec::EngineError> {
        Ok(
            crate::playbook::facts::taken(client, &self.facts, &self.created_names())
                .await
                .map_err(crate::playbook::exec::dberr("preflight"))?
                .into_iter()
                .map(|n| {
                    format!(
                        "{} already exists (a leftover of an earlier run? `lockstep status` lists runs; drop it or roll that run back)",
                        self.rel(&n)
                    )
                })
                .collect(),
        )
    }

    /// How the changes to the table are captured.
    pub(crate) fn capture(&self) -> TriggerLog<'_> {
        TriggerLog::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::plan::AnyPlan;

    /// A plan stored by a run keeps its shape, so a run started by an earlier build resumes:
    /// the fields of the partition plan as they have always been stored, untagged.
    #[test]
    fn stored_plans_keep_their_shape() {
        let facts = crate::playbook::facts::example();
        let names = Names::new(&facts, "r1", Vec::new());
        let plan = ShadowPlan {
            key: vec!["id".into(), "select".into()],
            target: Target::Partitioned {
                partition_column: "select".into(),
                partition_by: "RANGE (\"select\")".into(),
            },
            facts,
            names,
            shape: None,
            logical: None,
            trigger_because: None,
            reverse: ReverseSync::default(),
        };
        let v = serde_json::to_value(AnyPlan::from(plan.clone())).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["facts", "key", "names", "partition_by", "partition_column"]
        );
        let back: ShadowPlan = serde_json::from_value(v).unwrap();
        assert_eq!(back, plan);
    }
}
