//! Schema replay: an in-memory catalog built from the CREATE/ALTER statements of the files
//! linted so far (in migration order), so later files know which tables exist, their column
//! types, indexes, constraints and foreign keys.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use crate::sql::ir::{
    ActionKind, ColumnDef, Constraint, DropKind, FunctionVolatility, ObjName, RefAction, StmtKind,
};
use crate::sql::parse::Statement;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub not_null: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The index's name: as written, or as PostgreSQL names a primary key or unique
    /// constraint's index (`t_pkey`, `t_a_b_key`); `None` for an unnamed `CREATE INDEX`.
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub unique: bool,
    /// The table's primary key.
    pub primary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// As written, or as PostgreSQL names an unnamed one (`t_a_fkey`).
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub references: ObjName,
    /// Empty: the referenced table's primary key.
    pub ref_columns: Vec<String>,
    pub on_delete: RefAction,
    pub on_update: RefAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConstraint {
    pub name: Option<String>,
    pub expr: String,
    pub validated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub name: Option<ObjName>,
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
    pub foreign_keys: Vec<ForeignKey>,
    pub checks: Vec<CheckConstraint>,
    /// Created with `PARTITION BY`.
    pub partitioned: bool,
    pub partition_of: Option<ObjName>,
    /// Column name → position of its first column in `columns`, so that a table with
    /// thousands of columns costs the same per statement as a small one.
    column_at: HashMap<String, usize>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        match self.column_at.get(name).and_then(|&i| self.columns.get(i)) {
            Some(c) if c.name == name => Some(c),
            _ => None,
        }
    }

    fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        let i = *self.column_at.get(name)?;
        self.columns.get_mut(i).filter(|c| c.name == name)
    }

    /// Rebuilds `column_at` after columns were removed or renamed.
    fn reindex(&mut self) {
        self.column_at.clear();
        for (i, c) in self.columns.iter().enumerate() {
            self.column_at.entry(c.name.clone()).or_insert(i);
        }
    }

    /// An index whose leading columns are exactly `cols` (in any order among themselves).
    pub fn has_index_leading_with(&self, cols: &[String]) -> bool {
        self.indexes.iter().any(|i| {
            i.columns.len() >= cols.len() && {
                let lead = &i.columns[..cols.len()];
                cols.iter().all(|c| lead.contains(c))
            }
        })
    }

    /// What `CREATE TABLE … (LIKE this …)` copies: the columns with their NOT NULL, the
    /// indexes (unnamed: PostgreSQL names the copies) and the CHECK constraints when asked.
    fn copied_by(&self, like: &crate::sql::ir::LikeSource) -> Table {
        Table {
            columns: self.columns.clone(),
            indexes: if like.indexes {
                self.indexes
                    .iter()
                    .map(|i| Index {
                        name: None,
                        ..i.clone()
                    })
                    .collect()
            } else {
                Vec::new()
            },
            checks: if like.constraints {
                self.checks.clone()
            } else {
                Vec::new()
            },
            ..Table::default()
        }
    }

    /// The columns of the primary key, when known.
    pub fn primary_key(&self) -> Option<&[String]> {
        self.indexes
            .iter()
            .find(|i| i.primary)
            .map(|i| i.columns.as_slice())
    }

    /// The columns a foreign key referencing this table points at (its primary key when
    /// the foreign key names none).
    pub fn referenced_columns<'a>(&'a self, fk: &'a ForeignKey) -> &'a [String] {
        if fk.ref_columns.is_empty() {
            self.primary_key().unwrap_or(&[])
        } else {
            &fk.ref_columns
        }
    }

    /// A constraint name PostgreSQL would choose (`table_cols_label`), not yet used by a
    /// constraint or index of this table.
    fn choose_name(&self, columns: &[String], label: &str) -> String {
        let table = self.name.as_ref().map_or("", |n| n.name.as_str());
        let cols = columns.join("_");
        let taken = |n: &str| {
            self.foreign_keys
                .iter()
                .any(|f| f.name.as_deref() == Some(n))
                || self.indexes.iter().any(|i| i.name.as_deref() == Some(n))
                || self.checks.iter().any(|c| c.name.as_deref() == Some(n))
        };
        let mut n = 0;
        loop {
            let label = if n == 0 {
                label.to_string()
            } else {
                format!("{label}{n}")
            };
            let name = object_name(table, &cols, &label);
            if !taken(&name) {
                return name;
            }
            n += 1;
        }
    }

    /// Whether a validated `CHECK (col IS NOT NULL)` exists.
    pub fn has_valid_not_null_check(&self, column: &str) -> bool {
        self.checks.iter().any(|c| {
            c.validated
                && crate::lint::context::not_null_check_column(&c.expr).as_deref() == Some(column)
        })
    }
}

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

    /// Starts journaling changes, so that they can be undone with [`Catalog::rollback_to`].
    /// The catalog's state, as a number (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn bump(&mut self) {
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
    fn touch(&mut self, key: &str) -> Option<&mut Table> {
        if self.open > 0 {
            let old = self.tables.get(key).cloned().map(Box::new);
            self.journal.push(Undo::Table(key.to_string(), old));
        }
        self.tables.get_mut(key)
    }

    /// The table `name`, created empty if unknown, for changing.
    fn entry(&mut self, name: &ObjName) -> &mut Table {
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

    fn insert_table(&mut self, key: String, t: Table) {
        if self.open > 0 {
            let old = self.tables.get(&key).cloned().map(Box::new);
            self.journal.push(Undo::Table(key.clone(), old));
        }
        self.tables.insert(key, t);
    }

    fn remove_table(&mut self, key: &str) -> Option<Table> {
        let old = self.tables.remove(key);
        if self.open > 0 {
            self.journal
                .push(Undo::Table(key.to_string(), old.clone().map(Box::new)));
        }
        old
    }

    /// Records that index `index` belongs to table `key`.
    fn set_index(&mut self, index: &str, key: &str) {
        let old = self.index_tables.insert(index.to_string(), key.to_string());
        if self.open > 0 {
            self.journal.push(Undo::Index(index.to_string(), old));
        }
        let set = self.indexes_of.entry(key.to_string()).or_default();
        if !set.contains(index) {
            set.insert(index.to_string());
        }
    }

    fn remove_index(&mut self, index: &str) -> Option<String> {
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
    fn take_indexes_of(&mut self, key: &str) -> Vec<String> {
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
    fn note_foreign_keys(&mut self, key: &str) {
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

    /// Applies the schema effects of one statement.
    pub fn apply(&mut self, st: &Statement) {
        // Only these change the catalog (queries, data changes and settings do not).
        if !matches!(
            st.kind,
            StmtKind::CreateTable { .. }
                | StmtKind::AlterTable { .. }
                | StmtKind::CreateFunction { .. }
                | StmtKind::CreateIndex { .. }
                | StmtKind::CreateMaterializedView { .. }
                | StmtKind::CreateTrigger { .. }
                | StmtKind::CreateView { .. }
                | StmtKind::Drop { .. }
                | StmtKind::DropIndex { .. }
                | StmtKind::DropTrigger { .. }
        ) {
            return;
        }
        self.bump();
        match &st.kind {
            StmtKind::CreateTable {
                name,
                partition_of,
                columns,
                constraints,
                like,
                ..
            } => {
                // `PARTITION BY` of the table, not of a window in its `AS` query.
                let mut depth = 0i32;
                let mut partitioned = false;
                for w in st.toks.windows(2) {
                    if w[0].is_punct("(") {
                        depth += 1;
                    } else if w[0].is_punct(")") {
                        depth -= 1;
                    } else if depth == 0 && w[0].is("AS") {
                        break;
                    } else if depth == 0 && w[0].is("PARTITION") && w[1].is("BY") {
                        partitioned = true;
                    }
                }
                let copied: Vec<Table> = like
                    .iter()
                    .filter_map(|l| self.table(&l.table).map(|src| src.copied_by(l)))
                    .collect();
                let t = self.entry(name);
                *t = Table {
                    name: Some(name.clone()),
                    partitioned,
                    partition_of: partition_of.clone(),
                    ..Table::default()
                };
                for c in copied {
                    t.columns.extend(c.columns);
                    t.indexes.extend(c.indexes);
                    t.checks.extend(c.checks);
                }
                t.reindex();
                for c in columns {
                    add_column(t, c);
                }
                for (cname, c) in constraints {
                    add_constraint(t, cname.clone(), c, true);
                }
                let idx: Vec<String> = t.indexes.iter().filter_map(|i| i.name.clone()).collect();
                for i in idx {
                    self.set_index(&i, &name.name);
                }
                self.note_foreign_keys(&name.name);
            }
            StmtKind::CreateFunction {
                name,
                volatility,
                language,
                ..
            } => {
                let f = Function {
                    volatility: *volatility,
                    language: language.clone(),
                    body: None,
                };
                let old = self.functions.insert(name.name.clone(), f);
                if self.open > 0 {
                    self.journal.push(Undo::Function(name.name.clone(), old));
                }
            }
            StmtKind::CreateMaterializedView { name, sources } => {
                let old = self.matviews.insert(name.name.clone(), sources.clone());
                if self.open > 0 {
                    self.journal.push(Undo::Matview(name.name.clone(), old));
                }
            }
            StmtKind::CreateView { name, sources } => {
                let old = self.views.insert(name.name.clone(), sources.clone());
                if self.open > 0 {
                    self.journal.push(Undo::View(name.name.clone(), old));
                }
            }
            StmtKind::CreateTrigger {
                table,
                name,
                function,
            } => {
                let mut ts = self.triggers.get(&table.name).cloned().unwrap_or_default();
                let old = self.triggers.get(&table.name).cloned();
                ts.retain(|(n, _)| n != name);
                ts.push((
                    name.clone(),
                    function
                        .as_ref()
                        .map(|f| f.name.clone())
                        .unwrap_or_default(),
                ));
                self.triggers.insert(table.name.clone(), ts);
                if self.open > 0 {
                    self.journal.push(Undo::Triggers(table.name.clone(), old));
                }
            }
            StmtKind::DropTrigger { table, name } => {
                if let Some(ts) = self.triggers.get(&table.name).cloned() {
                    let mut kept = ts.clone();
                    kept.retain(|(n, _)| n != name);
                    self.triggers.insert(table.name.clone(), kept);
                    if self.open > 0 {
                        self.journal
                            .push(Undo::Triggers(table.name.clone(), Some(ts)));
                    }
                }
            }
            StmtKind::CreateIndex {
                name,
                table,
                unique,
                columns,
                ..
            } => {
                let t = self.entry(table);
                // Unnamed, PostgreSQL names it `table_col_idx` (`expr` for an expression).
                let name = name.clone().unwrap_or_else(|| {
                    let cols: Vec<String> = columns
                        .iter()
                        .map(|c| {
                            if c.chars().all(|ch| ch.is_alphanumeric() || ch == '_') {
                                c.clone()
                            } else {
                                "expr".to_string()
                            }
                        })
                        .collect();
                    t.choose_name(&cols, "idx")
                });
                t.indexes.push(Index {
                    name: Some(name.clone()),
                    columns: columns.clone(),
                    unique: *unique,
                    primary: false,
                });
                self.set_index(&name, &table.name);
            }
            StmtKind::DropIndex { names, .. } => {
                for n in names {
                    if let Some(key) = self.remove_index(&n.name) {
                        if let Some(t) = self.touch(&key) {
                            t.indexes
                                .retain(|i| i.name.as_deref() != Some(n.name.as_str()));
                        }
                    }
                }
            }
            StmtKind::Drop {
                kind: DropKind::Table,
                names,
                ..
            } => {
                for n in names {
                    self.remove_table(&n.name);
                    for i in self.take_indexes_of(&n.name) {
                        self.remove_index(&i);
                    }
                    // Foreign keys referencing it went with it (CASCADE).
                    let referencing: Vec<String> = self
                        .referenced_by
                        .get(&n.name)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    for k in referencing {
                        let hit = self.tables.get(&k).is_some_and(|t| {
                            t.foreign_keys.iter().any(|f| f.references.name == n.name)
                        });
                        if hit {
                            if let Some(t) = self.touch(&k) {
                                t.foreign_keys.retain(|f| f.references.name != n.name);
                            }
                        }
                    }
                    if let Some(old) = self.triggers.remove(&n.name) {
                        if self.open > 0 {
                            self.journal.push(Undo::Triggers(n.name.clone(), Some(old)));
                        }
                    }
                }
            }
            StmtKind::Drop {
                kind: kind @ (DropKind::View | DropKind::MaterializedView | DropKind::Function),
                names,
                ..
            } => {
                for n in names {
                    let key = n.name.clone();
                    match kind {
                        DropKind::View => {
                            if let Some(old) = self.views.remove(&key) {
                                if self.open > 0 {
                                    self.journal.push(Undo::View(key, Some(old)));
                                }
                            }
                        }
                        DropKind::MaterializedView => {
                            if let Some(old) = self.matviews.remove(&key) {
                                if self.open > 0 {
                                    self.journal.push(Undo::Matview(key, Some(old)));
                                }
                            }
                        }
                        _ => {
                            if let Some(old) = self.functions.remove(&key) {
                                if self.open > 0 {
                                    self.journal.push(Undo::Function(key, Some(old)));
                                }
                            }
                        }
                    }
                }
            }
            StmtKind::AlterTable { table, actions } => {
                for a in actions {
                    self.apply_action(table, &a.kind);
                }
            }
            _ => {}
        }
    }

    fn apply_action(&mut self, table: &ObjName, a: &ActionKind) {
        match a {
            ActionKind::RenameTable { to } => {
                if let Some(mut t) = self.remove_table(&table.name) {
                    t.name = Some(ObjName {
                        schema: table.schema.clone(),
                        name: to.clone(),
                    });
                    for fk in &mut t.foreign_keys {
                        if fk.references.name == table.name {
                            fk.references.name.clone_from(to);
                        }
                    }
                    for i in self.take_indexes_of(&table.name) {
                        self.set_index(&i, to);
                    }
                    self.insert_table(to.clone(), t);
                    self.note_foreign_keys(to);
                    // Foreign keys of other tables follow the rename.
                    let referencing: Vec<String> = self
                        .referenced_by
                        .get(&table.name)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    for k in referencing {
                        let hit = self.tables.get(&k).is_some_and(|t| {
                            t.foreign_keys
                                .iter()
                                .any(|f| f.references.name == table.name)
                        });
                        if !hit {
                            continue;
                        }
                        if let Some(t) = self.touch(&k) {
                            for fk in &mut t.foreign_keys {
                                if fk.references.name == table.name {
                                    fk.references.name.clone_from(to);
                                }
                            }
                        }
                        self.note_foreign_keys(&k);
                    }
                    if let Some(ts) = self.triggers.remove(&table.name) {
                        let old_to = self.triggers.insert(to.clone(), ts.clone());
                        if self.open > 0 {
                            self.journal
                                .push(Undo::Triggers(table.name.clone(), Some(ts)));
                            self.journal.push(Undo::Triggers(to.clone(), old_to));
                        }
                    }
                }
                return;
            }
            ActionKind::AttachPartition { partition } => {
                self.entry(partition).partition_of = Some(table.clone());
                return;
            }
            ActionKind::DetachPartition { partition, .. } => {
                self.entry(partition).partition_of = None;
                return;
            }
            ActionKind::RenameColumn { from, to } => {
                // Foreign keys of other tables that name the column follow the rename.
                let referencing: Vec<String> = self
                    .referencing(table)
                    .iter()
                    .map(|(t, _)| t.name.clone())
                    .filter(|k| *k != table.name)
                    .collect();
                for k in referencing {
                    if let Some(t) = self.touch(&k) {
                        for fk in &mut t.foreign_keys {
                            if fk.references.name == table.name {
                                rename_in(&mut fk.ref_columns, from, to);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        let t = self.entry(table);
        // Indexes a drop may take with it, to forget by name too.
        let dropping = matches!(
            a,
            ActionKind::DropColumn { .. } | ActionKind::DropConstraint { .. }
        );
        let before: Vec<String> = if dropping {
            t.indexes.iter().filter_map(|i| i.name.clone()).collect()
        } else {
            Vec::new()
        };
        match a {
            // `IF NOT EXISTS` on a column that exists changes nothing.
            ActionKind::AddColumn {
                column,
                if_not_exists: true,
            } if t.column(&column.name).is_some() => {}
            ActionKind::AddColumn { column, .. } => add_column(t, column),
            ActionKind::DropColumn { names } => {
                t.columns.retain(|c| !names.contains(&c.name));
                // PostgreSQL drops the indexes (expression indexes too) and constraints that
                // use a dropped column.
                t.indexes.retain(|i| {
                    !i.columns
                        .iter()
                        .any(|c| names.iter().any(|n| mentions(c, n)))
                });
                t.foreign_keys
                    .retain(|f| !f.columns.iter().any(|c| names.contains(c)));
                t.reindex();
            }
            ActionKind::AlterColumnType {
                column, new_type, ..
            } => {
                if let Some(c) = t.column_mut(column) {
                    c.data_type.clone_from(new_type);
                }
            }
            ActionKind::SetNotNull { column } => set_not_null(t, column, true),
            ActionKind::DropNotNull { column } => set_not_null(t, column, false),
            ActionKind::RenameColumn { from, to } => {
                if let Some(c) = t.column_mut(from) {
                    c.name.clone_from(to);
                    t.reindex();
                }
                for i in &mut t.indexes {
                    rename_in(&mut i.columns, from, to);
                }
                for fk in &mut t.foreign_keys {
                    rename_in(&mut fk.columns, from, to);
                    if fk.references.name == table.name {
                        rename_in(&mut fk.ref_columns, from, to);
                    }
                }
            }
            ActionKind::AddConstraint {
                name,
                constraint,
                not_valid,
            } => add_constraint(t, name.clone(), constraint, !not_valid),
            ActionKind::ValidateConstraint { name } => {
                for c in &mut t.checks {
                    if c.name.as_deref() == Some(name.as_str()) {
                        c.validated = true;
                    }
                }
            }
            ActionKind::DropConstraint { name } => {
                t.checks
                    .retain(|c| c.name.as_deref() != Some(name.as_str()));
                t.foreign_keys
                    .retain(|c| c.name.as_deref() != Some(name.as_str()));
                t.indexes
                    .retain(|c| c.name.as_deref() != Some(name.as_str()));
            }
            _ => {}
        }
        if dropping {
            let gone: Vec<String> = before
                .into_iter()
                .filter(|n| !t.indexes.iter().any(|i| i.name.as_deref() == Some(n)))
                .collect();
            for n in gone {
                if self.index_tables.get(&n) == Some(&table.name) {
                    self.remove_index(&n);
                }
            }
            return;
        }
        if matches!(
            a,
            ActionKind::AddColumn { .. } | ActionKind::AddConstraint { .. }
        ) {
            let idx: Vec<String> = t.indexes.iter().filter_map(|i| i.name.clone()).collect();
            for i in idx {
                if !self.index_tables.contains_key(&i) {
                    self.set_index(&i, &table.name);
                }
            }
            self.note_foreign_keys(&table.name);
        }
    }
}

/// Whether an index column (a name, or an expression's text) uses column `name`.
fn mentions(expr: &str, name: &str) -> bool {
    expr == name
        || expr
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .any(|w| w.trim_matches('"') == name)
}

fn rename_in(list: &mut [String], from: &str, to: &str) {
    for c in list {
        if c == from {
            *c = to.to_string();
        }
    }
}

/// PostgreSQL's `makeObjectName`: `name1_name2_label`, the longer of the first two cut
/// until the whole fits in 63 bytes.
fn object_name(name1: &str, name2: &str, label: &str) -> String {
    const MAX: usize = 63;
    let overhead = label.len() + 1 + usize::from(!name2.is_empty());
    let avail = MAX.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.len());
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let cut = |s: &str, n: usize| {
        let mut n = n.min(s.len());
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s[..n].to_string()
    };
    let mut out = cut(name1, n1);
    if !name2.is_empty() {
        out.push('_');
        out.push_str(&cut(name2, n2));
    }
    out.push('_');
    out.push_str(label);
    out
}

fn set_not_null(t: &mut Table, column: &str, v: bool) {
    if let Some(c) = t.column_mut(column) {
        c.not_null = v;
    }
}

fn add_column(t: &mut Table, c: &ColumnDef) {
    if t.column_at.contains_key(&c.name) {
        t.columns.retain(|x| x.name != c.name);
        t.reindex();
    }
    t.column_at.insert(c.name.clone(), t.columns.len());
    t.columns.push(Column {
        name: c.name.clone(),
        data_type: c.data_type.clone(),
        not_null: c.not_null,
    });
    let cols = vec![c.name.clone()];
    if c.primary_key || c.unique {
        let name = if c.primary_key {
            t.choose_name(&[], "pkey")
        } else {
            t.choose_name(&cols, "key")
        };
        t.indexes.push(Index {
            name: Some(name),
            columns: cols.clone(),
            unique: true,
            primary: c.primary_key,
        });
    }
    if let Some(fk) = &c.references {
        let name = fk
            .name
            .clone()
            .unwrap_or_else(|| t.choose_name(&cols, "fkey"));
        t.foreign_keys.push(ForeignKey {
            name: Some(name),
            columns: cols.clone(),
            references: fk.table.clone(),
            ref_columns: fk.columns.clone(),
            on_delete: fk.on_delete,
            on_update: fk.on_update,
        });
    }
    if let Some(expr) = &c.check {
        let name = t.choose_name(&cols, "check");
        t.checks.push(CheckConstraint {
            name: Some(name),
            expr: expr.clone(),
            validated: true,
        });
    }
}

fn add_constraint(t: &mut Table, name: Option<String>, c: &Constraint, validated: bool) {
    match c {
        Constraint::Check { expr } => t.checks.push(CheckConstraint {
            name,
            expr: expr.clone(),
            validated,
        }),
        Constraint::ForeignKey {
            columns,
            references,
        } => {
            let name = name.unwrap_or_else(|| t.choose_name(columns, "fkey"));
            t.foreign_keys.push(ForeignKey {
                name: Some(name),
                columns: columns.clone(),
                references: references.table.clone(),
                ref_columns: references.columns.clone(),
                on_delete: references.on_delete,
                on_update: references.on_update,
            })
        }
        Constraint::Unique {
            columns,
            using_index,
        }
        | Constraint::PrimaryKey {
            columns,
            using_index,
        } => {
            let primary = matches!(c, Constraint::PrimaryKey { .. });
            if let Some(idx) = using_index {
                if let Some(i) = t
                    .indexes
                    .iter_mut()
                    .find(|i| i.name.as_deref() == Some(idx))
                {
                    i.unique = true;
                    i.primary |= primary;
                    // The index takes the constraint's name.
                    if name.is_some() {
                        i.name.clone_from(&name);
                    }
                }
            } else {
                let name = name.unwrap_or_else(|| {
                    if primary {
                        t.choose_name(&[], "pkey")
                    } else {
                        t.choose_name(columns, "key")
                    }
                });
                t.indexes.push(Index {
                    name: Some(name),
                    columns: columns.clone(),
                    unique: true,
                    primary,
                });
            }
            if primary {
                let cols = match using_index {
                    Some(idx) => t
                        .indexes
                        .iter()
                        .find(|i| i.name.as_deref() == Some(idx) || i.primary)
                        .map(|i| i.columns.clone())
                        .unwrap_or_default(),
                    None => columns.clone(),
                };
                for col in &cols {
                    set_not_null(t, col, true);
                }
            }
        }
        Constraint::NotNull { column } if validated => set_not_null(t, column, true),
        Constraint::NotNull { .. } | Constraint::Exclude => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(cat: &mut Catalog, sql: &str) {
        for st in crate::lint::prepare(sql).statements() {
            cat.apply(st);
        }
    }

    /// Everything the catalog answers, in a fixed order.
    fn snapshot(cat: &Catalog) -> String {
        let mut tables: Vec<_> = cat.tables.iter().collect();
        tables.sort_by(|a, b| a.0.cmp(b.0));
        let mut indexes: Vec<_> = cat.index_tables.iter().collect();
        indexes.sort();
        let mut views: Vec<_> = cat.matviews.iter().collect();
        views.sort_by(|a, b| a.0.cmp(b.0));
        let refs: Vec<_> = tables
            .iter()
            .map(|(k, _)| {
                let r: Vec<String> = cat
                    .referencing(&ObjName::new(k.as_str()))
                    .iter()
                    .map(|(t, fk)| format!("{t}:{:?}", fk.name))
                    .collect();
                (k, r)
            })
            .collect();
        format!("{tables:?}\n{indexes:?}\n{views:?}\n{refs:?}")
    }

    /// `referencing` and `table_of_index` as a scan of every table would answer them.
    fn check_lookups(cat: &Catalog, names: &[&str]) {
        for n in names {
            let name = ObjName::new(*n);
            let mut scan: Vec<(ObjName, &ForeignKey)> = Vec::new();
            for (k, t) in &cat.tables {
                for fk in &t.foreign_keys {
                    if fk.references.name == *n {
                        scan.push((
                            t.name.clone().unwrap_or_else(|| ObjName::new(k.clone())),
                            fk,
                        ));
                    }
                }
            }
            scan.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(cat.referencing(&name), scan, "referencing {n}");
        }
        for (i, key) in &cat.index_tables {
            assert!(
                cat.tables.contains_key(key),
                "index {i} points at a dropped table"
            );
        }
        for (i, key) in &cat.index_tables {
            assert!(
                cat.indexes_of.get(key).is_some_and(|s| s.contains(i)),
                "index {i} of {key} is missing from the reverse map"
            );
        }
    }

    const SETUP: &str = "CREATE TABLE b (id int PRIMARY KEY);\n\
        CREATE TABLE a (id int, b_id int REFERENCES b, CONSTRAINT a_pk PRIMARY KEY (id));\n\
        CREATE INDEX a_b_idx ON a (b_id);\n\
        CREATE MATERIALIZED VIEW v AS SELECT * FROM a;\n";

    #[test]
    fn rollback_restores_every_change_since_the_savepoint() {
        let mut cat = Catalog::default();
        replay(&mut cat, SETUP);
        let before = snapshot(&cat);
        let sp = cat.savepoint();
        replay(
            &mut cat,
            "DROP TABLE a;\nALTER TABLE b RENAME TO c;\nCREATE INDEX c_idx ON c (id);\n\
             ALTER TABLE c ADD COLUMN x int;\nCREATE TABLE d (c_id int REFERENCES c);\n\
             CREATE MATERIALIZED VIEW v AS SELECT * FROM d;\nDROP INDEX c_idx;\n",
        );
        assert_ne!(snapshot(&cat), before);
        assert!(cat.table(&ObjName::new("a")).is_none());
        cat.rollback_to(sp);
        assert_eq!(snapshot(&cat), before);
        assert_eq!(
            cat.table_of_index(&ObjName::new("a_b_idx")),
            Some(ObjName::new("a"))
        );
        assert!(cat.journal.is_empty() && cat.open == 0);
    }

    #[test]
    fn nested_savepoints_close_newest_first() {
        let mut cat = Catalog::default();
        replay(&mut cat, SETUP);
        let outer = cat.savepoint();
        replay(&mut cat, "ALTER TABLE a ADD COLUMN y int;\n");
        let after_outer = snapshot(&cat);
        let inner = cat.savepoint();
        replay(&mut cat, "DROP TABLE b;\n");
        cat.rollback_to(inner);
        assert_eq!(snapshot(&cat), after_outer);
        assert!(
            !cat.journal.is_empty(),
            "the outer savepoint still journals"
        );
        cat.release(outer);
        assert_eq!(snapshot(&cat), after_outer, "released changes stay");
        assert!(cat.journal.is_empty());
    }

    #[test]
    fn dropping_or_renaming_a_table_carries_its_indexes_and_foreign_keys() {
        let mut cat = Catalog::default();
        replay(&mut cat, SETUP);
        replay(&mut cat, "ALTER TABLE a RENAME TO a2;\n");
        assert_eq!(
            cat.table_of_index(&ObjName::new("a_b_idx")),
            Some(ObjName::new("a2"))
        );
        let refs: Vec<String> = cat
            .referencing(&ObjName::new("b"))
            .iter()
            .map(|(t, _)| t.to_string())
            .collect();
        assert_eq!(refs, ["a2"]);
        replay(&mut cat, "DROP TABLE a2;\n");
        assert_eq!(cat.table_of_index(&ObjName::new("a_b_idx")), None);
        assert!(cat.referencing(&ObjName::new("b")).is_empty());
        assert!(!cat.index_tables.values().any(|t| t == "a2"));
        check_lookups(&cat, &["a", "a2", "b"]);
    }

    /// Random histories over a few names: the indexed lookups agree with a full scan, and a
    /// rollback gives back exactly the catalog as it was at its savepoint.
    #[test]
    fn journal_and_reverse_maps_agree_with_a_full_scan() {
        let names = ["t0", "t1", "t2", "t3"];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut cat = Catalog::default();
        let mut open: Vec<(Savepoint, String)> = Vec::new();
        for _ in 0..3000 {
            let (a, b, i) = (names[next(4)], names[next(4)], next(6));
            let sql = match next(11) {
                0 => format!("CREATE TABLE {a} (id int PRIMARY KEY, r int REFERENCES {b});"),
                1 => format!("CREATE INDEX i{i} ON {a} (id);"),
                2 => format!("DROP TABLE {a};"),
                3 => format!("ALTER TABLE {a} RENAME TO {b};"),
                4 => format!("DROP INDEX i{i};"),
                5 => {
                    format!("ALTER TABLE {a} ADD CONSTRAINT f{i} FOREIGN KEY (id) REFERENCES {b};")
                }
                6 => format!("ALTER TABLE {a} DROP CONSTRAINT f{i};"),
                7 => format!("CREATE MATERIALIZED VIEW v{i} AS SELECT * FROM {a};"),
                8 if open.len() < 3 => {
                    open.push((cat.savepoint(), snapshot(&cat)));
                    continue;
                }
                9 => {
                    if let Some((sp, snap)) = open.pop() {
                        cat.rollback_to(sp);
                        assert_eq!(snapshot(&cat), snap);
                    }
                    continue;
                }
                _ => {
                    if let Some((sp, _)) = open.pop() {
                        cat.release(sp);
                    }
                    continue;
                }
            };
            replay(&mut cat, &sql);
            check_lookups(&cat, &names);
        }
    }
}
