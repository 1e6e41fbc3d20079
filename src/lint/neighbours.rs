//! What the rules of one statement know about the other statements of its file (or of its
//! `DO` block), without holding those statements.
//!
//! A few rules look beyond the statement they check: a `BEGIN` without a later `COMMIT`
//! (`transaction-nesting`, and the fixes that move a statement after the `COMMIT`), a later
//! statement that uses an enum value added in the same transaction
//! (`add-enum-value-in-transaction`), an index created later for a new foreign key
//! (`foreign-key-without-index`), a statement that cannot run in a transaction anywhere in
//! the file (`missing-lock-timeout`'s fix), and the `ADD COLUMN` earlier in the file of a
//! column set `NOT NULL` (`set-not-null-scan`). Instead of every statement's parsed form,
//! they read:
//!
//! - [`Facts`] about the statements ahead, gathered once while the file is parsed, each
//!   kept only where it can matter: the positions of `COMMIT`/`ROLLBACK`, the statements
//!   that use a label an earlier `ALTER TYPE … ADD VALUE` added, the indexes created after
//!   the first foreign key, the first statement that cannot run in a transaction;
//! - the columns added so far ([`Neighbours::passed`]), one entry per table and column.
//!
//! So a file of many statements costs a few bytes per statement beyond its text, and the
//! rules' verdicts are those they gave when every statement was held.

use std::collections::HashSet;
use std::ops::Range;

use super::rules::{add_enum_value_in_transaction, foreign_key_without_index};
use super::undo::Created;
use crate::sql::ir::{Action, ActionKind, ObjName, StmtKind};
use crate::sql::parse::Statement;
use crate::sql::tokens::TokKind;

/// A `COMMIT` or `ROLLBACK`.
#[derive(Debug, Clone)]
struct End {
    at: usize,
    span: Range<usize>,
    commit: bool,
}

/// Facts about a sequence of statements (a file section or a block body), gathered in
/// order by [`Facts::push`].
#[derive(Debug, Default)]
pub struct Facts {
    count: usize,
    ends: Vec<End>,
    begin: bool,
    non_transactional: Option<&'static str>,
    /// Labels added by `ALTER TYPE … ADD VALUE` so far.
    labels: HashSet<String>,
    /// `(statement, its start, label)`: the statement holds the string literal of a label
    /// added before it.
    label_uses: Vec<(usize, usize, String)>,
    /// Set from the first statement that adds a foreign key: only later indexes can
    /// cover it.
    foreign_keys: bool,
    /// `(statement, table, columns of each index)` of the statements after the first
    /// foreign key that create indexes.
    indexes: Vec<(usize, ObjName, Vec<Vec<String>>)>,
    created: Created,
}

impl Facts {
    /// Records the next statement (with its tokens).
    pub fn push(&mut self, st: &Statement) {
        let at = self.count;
        self.count += 1;
        match &st.kind {
            StmtKind::Commit | StmtKind::Rollback => self.ends.push(End {
                at,
                span: st.span.clone(),
                commit: matches!(st.kind, StmtKind::Commit),
            }),
            StmtKind::Begin => self.begin = true,
            _ => {}
        }
        if self.non_transactional.is_none() {
            self.non_transactional = st.kind.cannot_run_in_transaction();
        }
        if !self.labels.is_empty() {
            let mut used: Vec<&String> = Vec::new();
            for t in &st.toks {
                if let TokKind::Str(s) = &t.kind {
                    if let Some(l) = self.labels.get(s.as_str()) {
                        if !used.contains(&l) {
                            used.push(l);
                        }
                    }
                }
            }
            for l in used {
                self.label_uses.push((at, st.span.start, l.clone()));
            }
        }
        if matches!(st.kind, StmtKind::AlterTypeAddValue { .. }) {
            if let Some(l) = add_enum_value_in_transaction::added_label(st) {
                self.labels.insert(l);
            }
        }
        if self.foreign_keys {
            if let Some((table, columns)) = foreign_key_without_index::indexes_of(st) {
                self.indexes.push((at, table.clone(), columns));
            }
        }
        self.foreign_keys |= foreign_key_without_index::adds_foreign_key(st);
        self.created.add(st);
    }

    /// Number of statements.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether a statement is `BEGIN` (or `START TRANSACTION`).
    pub fn has_begin(&self) -> bool {
        self.begin
    }

    /// What the first statement that cannot run in a transaction is, if any.
    pub fn non_transactional(&self) -> Option<&'static str> {
        self.non_transactional
    }

    /// What the statements create and leave in place (for an up section).
    pub fn created(&self) -> &Created {
        &self.created
    }

    /// The first `COMMIT`/`ROLLBACK` after statement `at`.
    fn end_after(&self, at: usize) -> Option<&End> {
        let i = self.ends.partition_point(|e| e.at <= at);
        self.ends.get(i)
    }
}

/// The neighbours of the statement being checked: [`Facts`] about the whole sequence and
/// what the statements checked so far added.
#[derive(Debug, Default)]
pub struct Neighbours {
    facts: Facts,
    /// `(table, ADD COLUMN action)` of the statements checked so far, the latest statement
    /// last (its actions in reverse order); only the latest per table and column.
    added: Vec<(ObjName, Action)>,
}

impl Neighbours {
    pub fn new(facts: Facts) -> Self {
        Neighbours {
            facts,
            added: Vec::new(),
        }
    }

    /// Records a statement once its rules have run (before the next one is checked).
    pub fn passed(&mut self, st: &Statement) {
        let StmtKind::AlterTable { table, actions } = &st.kind else {
            return;
        };
        let new: Vec<&Action> = actions
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::AddColumn { .. }))
            .collect();
        if new.is_empty() {
            return;
        }
        // An older entry for the same table and column is never found again.
        self.added
            .retain(|(t, a)| t != table || !new.iter().any(|n| same_column(&n.kind, &a.kind)));
        for a in new.into_iter().rev() {
            self.added.push((table.clone(), a.clone()));
        }
    }

    /// The view of statement `at`.
    pub fn at(&self, at: usize) -> View<'_> {
        View { n: self, at }
    }
}

fn same_column(a: &ActionKind, b: &ActionKind) -> bool {
    match (a, b) {
        (ActionKind::AddColumn { column: x, .. }, ActionKind::AddColumn { column: y, .. }) => {
            x.name == y.name
        }
        _ => false,
    }
}

/// The other statements, as the rules of statement `at` see them.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    n: &'a Neighbours,
    at: usize,
}

impl<'a> View<'a> {
    /// The statement is the only one of its file (section).
    pub fn alone(&self) -> bool {
        self.n.facts.count <= 1
    }

    /// Some statement of the file (this one included) cannot run in a transaction.
    pub fn any_non_transactional(&self) -> bool {
        self.n.facts.non_transactional.is_some()
    }

    /// The span of the first `COMMIT` or `ROLLBACK` after this statement, and whether it is
    /// a `COMMIT`.
    pub fn end_of_transaction(&self) -> Option<(Range<usize>, bool)> {
        self.n
            .facts
            .end_after(self.at)
            .map(|e| (e.span.clone(), e.commit))
    }

    /// Where the first later statement before the next `COMMIT`/`ROLLBACK` that holds the
    /// string literal `label` starts (a label an `ALTER TYPE … ADD VALUE` before it added).
    pub fn label_used_before_end(&self, label: &str) -> Option<usize> {
        let end = self.n.facts.end_after(self.at).map_or(usize::MAX, |e| e.at);
        let uses = &self.n.facts.label_uses;
        let from = uses.partition_point(|(i, _, _)| *i <= self.at);
        uses[from..]
            .iter()
            .take_while(|(i, _, _)| *i < end)
            .find(|(_, _, l)| l == label)
            .map(|(_, start, _)| *start)
    }

    /// Columns of the indexes later statements create on tables `t` such that
    /// `t.matches(table)`.
    pub fn later_indexes(&self, table: &'a ObjName) -> impl Iterator<Item = &'a Vec<String>> {
        let idx = &self.n.facts.indexes;
        let from = idx.partition_point(|(i, _, _)| *i <= self.at);
        idx[from..]
            .iter()
            .filter(move |(_, t, _)| t.matches(table))
            .flat_map(|(_, _, cols)| cols.iter())
    }

    /// The `ADD COLUMN` of an earlier statement that added `column` to a table matching
    /// `table`: the latest such statement's first.
    pub fn added_column(&self, table: &ObjName, column: &str) -> Option<&'a Action> {
        self.n
            .added
            .iter()
            .rev()
            .find(|(t, a)| {
                t.matches(table)
                    && matches!(&a.kind, ActionKind::AddColumn { column: c, .. } if c.name == column)
            })
            .map(|(_, a)| a)
    }
}
