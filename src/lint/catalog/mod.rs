//! Schema replay: an in-memory catalog built from the CREATE/ALTER statements of the files
//! linted so far (in migration order), so later files know which tables exist, their column
//! types, indexes, constraints and foreign keys.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::sql::ir::{FunctionVolatility, ObjName};

mod apply;
mod journal;
mod table;

pub use table::{CheckConstraint, Column, ForeignKey, Index, Table};

/// Tables known from the migration set, keyed by unqualified name.
///
/// The catalog is replayed across the whole history, so every operation costs time in
/// proportion to the tables it touches, never to the size of the catalog: a transaction
/// that may be rolled back, or a down section linted against the schema so far, opens a
/// [`Savepoint`] and the catalog journals what it changes from then on, instead of being
/// copied.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Changes with every change of the catalog, and is never the same for two different
    /// catalogs (0: empty): what was worked out from one state can be reused while it holds.
    generation: u64,
    tables: HashMap<String, Table>,
    /// Index name → table key.
    index_tables: HashMap<String, String>,
    /// Materialized view name → the tables its query reads.
    matviews: HashMap<String, Vec<ObjName>>,
    /// Table key → index names that point, or once pointed, at it in `index_tables`
    /// (a superset, checked on use), so that dropping or renaming a table finds its
    /// indexes without scanning them all.
    indexes_of: HashMap<String, HashSet<String>>,
    /// Table name → keys of the tables whose foreign keys reference it, or once did
    /// (a superset, checked on use).
    referenced_by: HashMap<String, HashSet<String>>,
    /// What to restore, newest last, while a savepoint is open.
    journal: Vec<Undo>,
    /// Savepoints open.
    open: usize,
    /// Function name → what is known of it (the last definition of that name).
    functions: HashMap<String, Function>,
    /// View name → the relations its query reads.
    views: HashMap<String, Vec<ObjName>>,
    /// Table key → its triggers: (trigger name, function name).
    triggers: HashMap<String, Vec<(String, String)>>,
}

/// A function created in the migration set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub volatility: FunctionVolatility,
    /// `LANGUAGE`, lower case (`plpgsql`, `sql`).
    pub language: Option<String>,
    /// The body's text, when it is a string lockstep could read.
    pub body: Option<Arc<str>>,
}

/// One change to undo: the previous value of an entry (`None`: it did not exist).
#[derive(Debug, Clone)]
enum Undo {
    Table(String, Option<Box<Table>>),
    Index(String, Option<String>),
    Matview(String, Option<Vec<ObjName>>),
    Function(String, Option<Function>),
    View(String, Option<Vec<ObjName>>),
    Triggers(String, Option<Vec<(String, String)>>),
}

/// A point the catalog can return to ([`Catalog::rollback_to`]) or keep everything since
/// ([`Catalog::release`]). Savepoints nest: the newest open one is closed first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Savepoint(usize);

impl Catalog {
    pub fn table(&self, name: &ObjName) -> Option<&Table> {
        self.tables.get(&name.name)
    }

    pub fn contains(&self, name: &ObjName) -> bool {
        self.tables.contains_key(&name.name)
    }

    /// The table an index belongs to. An index named with a schema other than its
    /// table's (no schema: `public`) is another index.
    pub fn table_of_index(&self, index: &ObjName) -> Option<ObjName> {
        let key = self.index_tables.get(&index.name)?;
        let t = self.tables.get(key)?;
        let name = t.name.clone().unwrap_or_else(|| ObjName::new(key.clone()));
        if let Some(s) = &index.schema {
            if name.schema.as_deref().unwrap_or("public") != s {
                return None;
            }
        }
        Some(name)
    }

    /// The tables a materialized view's query reads, when its definition is known.
    pub fn matview_sources(&self, view: &ObjName) -> Option<&[ObjName]> {
        self.matviews.get(&view.name).map(Vec::as_slice)
    }

    /// The declared volatility of a function created in the migration set.
    pub fn function_volatility(&self, name: &str) -> Option<FunctionVolatility> {
        self.functions.get(name).map(|f| f.volatility)
    }

    /// A function created in the migration set.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.get(name)
    }

    /// Records the body text of function `name` (set after its `CREATE FUNCTION` was
    /// applied, by the caller that has the file's text).
    pub fn set_function_body(&mut self, name: &str, body: Arc<str>) {
        self.bump();
        if let Some(f) = self.functions.get(name).cloned() {
            let old = self.functions.insert(
                name.to_string(),
                Function {
                    body: Some(body),
                    ..f
                },
            );
            if self.open > 0 {
                self.journal.push(Undo::Function(name.to_string(), old));
            }
        }
    }

    /// The tables whose triggers execute function `name`.
    pub fn tables_with_trigger_function(&self, name: &str) -> Vec<ObjName> {
        let mut out: Vec<ObjName> = Vec::new();
        for (key, ts) in &self.triggers {
            if ts.iter().any(|(_, f)| f == name) && self.tables.contains_key(key) {
                let t = self.tables.get(key).and_then(|t| t.name.clone());
                out.push(t.unwrap_or_else(|| ObjName::new(key.clone())));
            }
        }
        out.sort();
        out
    }

    /// The partitions of partitioned table `table` known to the migration set.
    pub fn partitions_of(&self, table: &ObjName) -> Vec<ObjName> {
        let mut out: Vec<ObjName> = self
            .tables
            .iter()
            .filter(|(_, t)| {
                t.partition_of
                    .as_ref()
                    .is_some_and(|p| p.name == table.name)
            })
            .map(|(k, t)| t.name.clone().unwrap_or_else(|| ObjName::new(k.clone())))
            .collect();
        out.sort();
        out
    }

    /// Whether `table` has trigger `name` (created in the migration set).
    pub fn has_trigger(&self, table: &ObjName, name: &str) -> bool {
        self.triggers
            .get(&table.name)
            .is_some_and(|ts| ts.iter().any(|(n, _)| n == name))
    }

    /// The functions the triggers of `table` execute.
    pub fn trigger_functions(&self, table: &ObjName) -> Vec<String> {
        self.triggers
            .get(&table.name)
            .map(|ts| ts.iter().map(|(_, f)| f.clone()).collect())
            .unwrap_or_default()
    }

    /// Materialized views that read `name` (a table, view or materialized view), directly
    /// or through views and materialized views: what `DROP … CASCADE` of it drops.
    pub fn dependent_matviews(&self, name: &ObjName) -> Vec<ObjName> {
        let mut out: Vec<ObjName> = Vec::new();
        let mut todo = vec![name.name.clone()];
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            for (v, srcs) in &self.views {
                if srcs.iter().any(|s| s.name == n) {
                    todo.push(v.clone());
                }
            }
            for (v, srcs) in &self.matviews {
                if srcs.iter().any(|s| s.name == n) {
                    let m = ObjName::new(v.clone());
                    if !out.contains(&m) {
                        out.push(m);
                    }
                    todo.push(v.clone());
                }
            }
        }
        out.sort();
        out
    }

    /// The relations a view (not materialized) the migration set created reads.
    pub fn view_sources(&self, name: &ObjName) -> Option<&[ObjName]> {
        self.views.get(&name.name).map(Vec::as_slice)
    }

    /// Tables with a column of type `ty` (or an array of it): `DROP TYPE … CASCADE` drops
    /// those columns.
    pub fn tables_with_column_type(&self, ty: &str) -> Vec<ObjName> {
        let mut out: Vec<ObjName> = self
            .tables
            .iter()
            .filter(|(_, t)| {
                t.columns.iter().any(|c| {
                    let base = c.data_type.trim_end_matches("[]");
                    base == ty || base.rsplit('.').next() == Some(ty)
                })
            })
            .map(|(k, t)| t.name.clone().unwrap_or_else(|| ObjName::new(k.clone())))
            .collect();
        out.sort();
        out
    }

    /// A foreign key of `table` named `constraint`.
    pub fn foreign_key(&self, table: &ObjName, constraint: &str) -> Option<&ForeignKey> {
        self.table(table)?
            .foreign_keys
            .iter()
            .find(|f| f.name.as_deref() == Some(constraint))
    }

    /// Foreign keys in other tables that reference `table`: `(referencing table, fk)`.
    pub fn referencing(&self, table: &ObjName) -> Vec<(ObjName, &ForeignKey)> {
        let mut out: Vec<(ObjName, &ForeignKey)> = Vec::new();
        let Some(keys) = self.referenced_by.get(&table.name) else {
            return out;
        };
        for k in keys {
            let Some(t) = self.tables.get(k) else {
                continue;
            };
            for fk in &t.foreign_keys {
                if fk.references.name == table.name {
                    out.push((
                        t.name.clone().unwrap_or_else(|| ObjName::new(k.clone())),
                        fk,
                    ));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests;
