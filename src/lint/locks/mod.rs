//! The lock model: what a statement locks, rewrites and scans, as measured on PostgreSQL
//! (see the ground-truth table in the rule catalogue, and `tests/ground_truth.rs`, which
//! checks every case on a real server).
//!
//! Some effects depend on what the statement meets, and are predicted as such: locks that
//! foreign-key checks and cascades take only when rows change, locks on objects that exist
//! only maybe (`DROP … IF EXISTS`), the statements of a `DO` block that run only when a
//! branch is taken ([`Condition`]); and tables a query reads, which the planner may scan or
//! reach through an index (`may_scan`).

use crate::lint::context::FileContext;
use crate::sql::ir::{LockMode, ObjName};

/// When a predicted lock is taken only under a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Taken by foreign-key checks, cascades or triggers, when the statement changes rows.
    RowsChange,
    /// Taken if the object exists (`IF EXISTS` on an object lockstep does not know).
    Exists,
    /// Taken by a statement of a `DO` block or function that runs only in some branch.
    Branch,
    /// Taken by the body of a function the statement calls (a call in a query runs only
    /// for the rows the query produces).
    Call,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RowsChange => "when rows change",
            Condition::Exists => "if it exists",
            Condition::Branch => "if its branch runs",
            Condition::Call => "when the function runs",
        }
    }
}

/// What a lock is taken on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLock {
    /// The table (for `DROP INDEX`/`REINDEX INDEX`: the index, standing for its table).
    pub table: ObjName,
    /// True when `table` names an index and the lock is on the index's table.
    pub via_index: bool,
    pub mode: LockMode,
    /// `None`: always taken.
    pub condition: Option<Condition>,
}

/// The prediction for one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockReport {
    pub locks: Vec<TableLock>,
    pub rewrites: Vec<ObjName>,
    pub scans: Vec<ObjName>,
    /// Tables rewritten only under a condition (a branch of a `DO` block).
    pub may_rewrite: Vec<ObjName>,
    /// Tables read by a query (scanned or reached through an index, as the planner
    /// chooses), or scanned only under a condition.
    pub may_scan: Vec<ObjName>,
    /// The statement also runs SQL lockstep cannot see (`EXECUTE` of SQL built at run
    /// time): the prediction leaves that out.
    pub incomplete: bool,
}

impl LockReport {
    fn lock(&mut self, table: &ObjName, mode: LockMode) {
        self.lock_on(table, false, mode, None);
    }

    fn lock_if(&mut self, table: &ObjName, mode: LockMode, condition: Condition) {
        self.lock_on(table, false, mode, Some(condition));
    }

    fn lock_on(
        &mut self,
        table: &ObjName,
        via_index: bool,
        mode: LockMode,
        condition: Option<Condition>,
    ) {
        if let Some(l) = self
            .locks
            .iter_mut()
            .find(|l| l.table == *table && l.via_index == via_index)
        {
            // The entry keeps the stronger mode; it is unconditional when an unconditional
            // lock reaches that mode.
            if mode > l.mode {
                l.mode = mode;
                l.condition = condition;
            } else if mode == l.mode && condition.is_none() {
                l.condition = None;
            }
        } else {
            self.locks.push(TableLock {
                table: table.clone(),
                via_index,
                mode,
                condition,
            });
        }
    }

    fn add(list: &mut Vec<ObjName>, t: &ObjName) {
        if !list.contains(t) {
            list.push(t.clone());
        }
    }

    fn scan(&mut self, t: &ObjName) {
        Self::add(&mut self.scans, t);
        self.may_scan.retain(|x| x != t);
    }

    fn rewrite(&mut self, t: &ObjName) {
        Self::add(&mut self.rewrites, t);
        self.may_rewrite.retain(|x| x != t);
        self.scan(t);
    }

    fn maybe_rewrite(&mut self, t: &ObjName) {
        if !self.rewrites.contains(t) {
            Self::add(&mut self.may_rewrite, t);
        }
        self.maybe_scan(t);
    }

    fn maybe_scan(&mut self, t: &ObjName) {
        if !self.scans.contains(t) {
            Self::add(&mut self.may_scan, t);
        }
    }

    /// Locks the table of index `index` when the catalog knows it, else the index itself
    /// (standing for its unknown table).
    fn lock_index_table(
        &mut self,
        index: &ObjName,
        mode: LockMode,
        condition: Option<Condition>,
        ctx: &FileContext,
    ) {
        match ctx.catalog.table_of_index(index) {
            Some(t) => self.lock_on(&t, false, mode, condition),
            None => self.lock_on(index, true, mode, condition),
        }
    }

    /// Adds what another statement does (a statement of a `DO` block or function body),
    /// under `condition` when it runs only sometimes.
    pub fn merge(&mut self, other: &LockReport, condition: Option<Condition>) {
        for l in &other.locks {
            self.lock_on(&l.table, l.via_index, l.mode, condition.or(l.condition));
        }
        for t in &other.rewrites {
            if condition.is_some() {
                if !self.rewrites.contains(t) {
                    Self::add(&mut self.may_rewrite, t);
                }
            } else {
                self.rewrite(t);
            }
        }
        for t in &other.scans {
            if condition.is_some() {
                self.maybe_scan(t);
            } else {
                self.scan(t);
            }
        }
        for t in &other.may_rewrite {
            if !self.rewrites.contains(t) {
                Self::add(&mut self.may_rewrite, t);
            }
        }
        for t in &other.may_scan {
            self.maybe_scan(t);
        }
        self.incomplete |= other.incomplete;
    }

    /// Forgets what concerns `tables` (created by an earlier statement of the same block:
    /// they did not exist before the block).
    pub fn without(&mut self, tables: &[ObjName]) {
        let gone = |t: &ObjName| tables.iter().any(|x| x.name == t.name);
        self.locks.retain(|l| l.via_index || !gone(&l.table));
        for list in [
            &mut self.rewrites,
            &mut self.scans,
            &mut self.may_rewrite,
            &mut self.may_scan,
        ] {
            list.retain(|t| !gone(t));
        }
    }

    /// The strongest lock taken on any table.
    pub fn strongest(&self) -> Option<&TableLock> {
        self.locks.iter().max_by_key(|l| l.mode)
    }
}

mod alter;
mod calls;
mod rows;
mod statement;
mod volatility;

pub use calls::creates;
pub use statement::predict;
pub use volatility::{add_column_rewrites, default_volatility, Volatility};
