//! The catalog's generation, savepoints and the journal of changes they undo, and the
//! primitive changes that keep the reverse maps and the journal in step.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Catalog, Savepoint, Table, Undo};
use crate::sql::ir::ObjName;

impl Catalog {
    /// Starts journaling changes, so that they can be undone with [`Catalog::rollback_to`].
    /// The catalog's state, as a number (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn bump(&mut self) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        self.generation = NEXT.fetch_add(1, Ordering::Relaxed);
    }

    pub fn savepoint(&mut self) -> Savepoint {
        self.open += 1;
        Savepoint(self.journal.len())
    }

    /// Undoes every change since `sp` was taken, and closes it.
    pub fn rollback_to(&mut self, sp: Savepoint) {
        self.bump();
        while self.journal.len() > sp.0 {
            let Some(undo) = self.journal.pop() else {
                break;
            };
            match undo {
                Undo::Table(k, Some(t)) => {
                    self.tables.insert(k, *t);
                }
                Undo::Table(k, None) => {
                    self.tables.remove(&k);
                }
                Undo::Index(k, Some(t)) => {
                    self.index_tables.insert(k, t);
                }
                Undo::Index(k, None) => {
                    self.index_tables.remove(&k);
                }
                Undo::Matview(k, Some(v)) => {
                    self.matviews.insert(k, v);
                }
                Undo::Matview(k, None) => {
                    self.matviews.remove(&k);
                }
                Undo::Function(k, Some(v)) => {
                    self.functions.insert(k, v);
                }
                Undo::Function(k, None) => {
                    self.functions.remove(&k);
                }
                Undo::View(k, Some(v)) => {
                    self.views.insert(k, v);
                }
                Undo::View(k, None) => {
                    self.views.remove(&k);
                }
                Undo::Triggers(k, Some(v)) => {
                    self.triggers.insert(k, v);
                }
                Undo::Triggers(k, None) => {
                    self.triggers.remove(&k);
                }
            }
        }
        self.release(sp);
    }

    /// Keeps every change since `sp` was taken, and closes it.
    pub fn release(&mut self, _sp: Savepoint) {
        self.open = self.open.saturating_sub(1);
        if self.open == 0 {
            self.journal = Vec::new();
        }
    }

    /// The table `key` for changing, its current value journaled first.
    pub(super) fn touch(&mut self, key: &str) -> Option<&mut Table> {
        if self.open > 0 {
            let old = self.tables.get(key).cloned().map(Box::new);
            self.journal.push(Undo::Table(key.to_string(), old));
        }
        self.tables.get_mut(key)
    }

    /// The table `name`, created empty if unknown, for changing.
    pub(super) fn entry(&mut self, name: &ObjName) -> &mut Table {
        if self.open > 0 {
            let old = self.tables.get(&name.name).cloned().map(Box::new);
            self.journal.push(Undo::Table(name.name.clone(), old));
        }
        self.tables
            .entry(name.name.clone())
            .or_insert_with(|| Table {
                name: Some(name.clone()),
                ..Table::default()
            })
    }

    pub(super) fn insert_table(&mut self, key: String, t: Table) {
        if self.open > 0 {
            let old = self.tables.get(&key).cloned().map(Box::new);
            self.journal.push(Undo::Table(key.clone(), old));
        }
        self.tables.insert(key, t);
    }

    pub(super) fn remove_table(&mut self, key: &str) -> Option<Table> {
        let old = self.tables.remove(key);
        if self.open > 0 {
            self.journal
                .push(Undo::Table(key.to_string(), old.clone().map(Box::new)));
        }
        old
    }

    /// Records that index `index` belongs to table `key`.
    pub(super) fn set_index(&mut self, index: &str, key: &str) {
        let old = self.index_tables.insert(index.to_string(), key.to_string());
        if self.open > 0 {
            self.journal.push(Undo::Index(index.to_string(), old));
        }
        let set = self.indexes_of.entry(key.to_string()).or_default();
        if !set.contains(index) {
            set.insert(index.to_string());
        }
    }

    pub(super) fn remove_index(&mut self, index: &str) -> Option<String> {
        let old = self.index_tables.remove(index);
        if let Some(key) = &old {
            if self.open > 0 {
                self.journal
                    .push(Undo::Index(index.to_string(), Some(key.clone())));
            } else if let Some(set) = self.indexes_of.get_mut(key) {
                set.remove(index);
            }
        }
        old
    }

    /// The index names recorded for table `key` (forgotten, unless a savepoint may
    /// bring them back).
    pub(super) fn take_indexes_of(&mut self, key: &str) -> Vec<String> {
        let names = if self.open > 0 {
            self.indexes_of.get(key).cloned()
        } else {
            self.indexes_of.remove(key)
        };
        let mut names: Vec<String> = names.into_iter().flatten().collect();
        names.retain(|i| self.index_tables.get(i).is_some_and(|t| t == key));
        names
    }

    /// Records the tables that table `key`'s foreign keys reference.
    pub(super) fn note_foreign_keys(&mut self, key: &str) {
        let Some(t) = self.tables.get(key) else {
            return;
        };
        for fk in &t.foreign_keys {
            let set = self
                .referenced_by
                .entry(fk.references.name.clone())
                .or_default();
            if !set.contains(key) {
                set.insert(key.to_string());
            }
        }
    }
}
