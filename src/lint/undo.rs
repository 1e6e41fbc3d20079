//! What a migration's up part creates, so that its down part's drops of those objects are
//! recognized as undoing it: dropping a table or column the migration itself added loses
//! nothing the migration did not bring, and `drop-table` / `drop-column` stay quiet there.

use std::collections::{HashMap, HashSet};

use crate::sql::ir::{ActionKind, DropKind, ObjName, StmtKind};
use crate::sql::parse::Statement;

/// Tables, columns and schemas created by an up section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Created {
    tables: HashSet<String>,
    /// `(table, column)` added to a table that existed before.
    columns: HashSet<(String, String)>,
    schemas: HashSet<String>,
}

impl Created {
    /// Adds what the next statement of an up section creates (or drops), in order: the
    /// section creates and leaves in place what the additions of all its statements say.
    pub fn add(&mut self, st: &Statement) {
        match &st.kind {
            StmtKind::CreateTable { name, .. } => {
                self.tables.insert(name.name.clone());
            }
            StmtKind::CreateMaterializedView { name, .. } => {
                self.tables.insert(name.name.clone());
            }
            StmtKind::AlterTable { table, actions } => {
                for a in actions {
                    match &a.kind {
                        ActionKind::AddColumn { column, .. } => {
                            self.columns
                                .insert((table.name.clone(), column.name.clone()));
                        }
                        ActionKind::RenameTable { to } => {
                            rename(&mut self.tables, table.name.clone(), to.clone());
                        }
                        ActionKind::RenameColumn { from, to } => rename(
                            &mut self.columns,
                            (table.name.clone(), from.clone()),
                            (table.name.clone(), to.clone()),
                        ),
                        ActionKind::DropColumn { names } => {
                            for n in names {
                                self.columns.remove(&(table.name.clone(), n.clone()));
                            }
                        }
                        _ => {}
                    }
                }
            }
            StmtKind::Drop {
                kind: DropKind::Table | DropKind::MaterializedView,
                names,
                ..
            } => {
                for n in names {
                    self.tables.remove(&n.name);
                }
            }
            StmtKind::Other { what } if what == "CREATE SCHEMA" => {
                if let Some(name) = created_schema(st) {
                    self.schemas.insert(name);
                }
            }
            _ => {}
        }
    }

    pub fn merge(&mut self, other: Created) {
        self.tables.extend(other.tables);
        self.columns.extend(other.columns);
        self.schemas.extend(other.schemas);
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.columns.is_empty() && self.schemas.is_empty()
    }

    pub fn table(&self, t: &ObjName) -> bool {
        self.tables.contains(&t.name)
    }

    /// The column was added by the up part, or its whole table was created there.
    pub fn column(&self, t: &ObjName, column: &str) -> bool {
        self.table(t) || self.columns.contains(&(t.name.clone(), column.to_string()))
    }

    pub fn schema(&self, s: &ObjName) -> bool {
        self.schemas.contains(&s.name)
    }
}

/// Renames `from` to `to` in `set` when `set` holds it.
fn rename<T: std::hash::Hash + Eq>(set: &mut HashSet<T>, from: T, to: T) {
    if set.remove(&from) {
        set.insert(to);
    }
}

/// `CREATE SCHEMA [IF NOT EXISTS] name` (not `AUTHORIZATION role` alone).
fn created_schema(st: &Statement) -> Option<String> {
    let mut toks = st.toks.iter().skip(2).peekable();
    if toks.peek().is_some_and(|t| t.is("IF")) {
        toks.nth(2);
    }
    let t = toks.next()?;
    if t.is("AUTHORIZATION") {
        return None;
    }
    t.ident().map(str::to_string)
}

/// What each migration's up part created, until its down part is linted (the down file of
/// a migration comes right after its up file in migration order).
#[derive(Debug, Default)]
pub struct UpIndex {
    by_migration: HashMap<String, Created>,
}

impl UpIndex {
    pub fn record(&mut self, migration: String, created: Created) {
        if !created.is_empty() {
            self.by_migration.insert(migration, created);
        }
    }

    /// What the up part of `migration` created (once: the entry is then forgotten).
    pub fn take(&mut self, migration: &str) -> Option<Created> {
        self.by_migration.remove(migration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(src: &str) -> Created {
        crate::lint::prepare(src).facts().created().clone()
    }

    #[test]
    fn tables_columns_and_schemas_that_remain() {
        let c = created(
            "CREATE SCHEMA IF NOT EXISTS audit;\nCREATE TABLE a (id int);\nALTER TABLE a RENAME TO b;\n\
             CREATE TABLE tmp (id int);\nDROP TABLE tmp;\nALTER TABLE users ADD COLUMN x int, ADD COLUMN y int;\n\
             ALTER TABLE users DROP COLUMN y;\nALTER TABLE users RENAME COLUMN x TO z;\n",
        );
        let t = |n: &str| c.table(&ObjName::new(n));
        assert!(t("b") && !t("a") && !t("tmp") && !t("users"));
        assert!(c.column(&ObjName::new("users"), "z"));
        assert!(!c.column(&ObjName::new("users"), "x"));
        assert!(!c.column(&ObjName::new("users"), "y"));
        assert!(c.column(&ObjName::new("b"), "anything"));
        assert!(c.schema(&ObjName::new("audit")));
    }
}
