//! Schema replay: an in-memory catalog built from the CREATE/ALTER statements of the files
//! linted so far (in migration order), so later files know which tables exist, their column
//! types, indexes, constraints and foreign keys.

use std::collections::HashMap;

use crate::sql::ir::{ActionKind, ColumnDef, Constraint, FunctionVolatility, ObjName, StmtKind};
use crate::sql::parse::Statement;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub not_null: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub unique: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub references: ObjName,
    pub ref_columns: Vec<String>,
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
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
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

    /// Whether a validated `CHECK (col IS NOT NULL)` exists.
    pub fn has_valid_not_null_check(&self, column: &str) -> bool {
        self.checks.iter().any(|c| {
            c.validated
                && crate::lint::context::not_null_check_column(&c.expr).as_deref() == Some(column)
        })
    }
}

/// Tables known from the migration set, keyed by unqualified name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tables: HashMap<String, Table>,
    /// Index name → table key.
    index_tables: HashMap<String, String>,
    /// Materialized view name → the tables its query reads.
    matviews: HashMap<String, Vec<ObjName>>,
    /// Function name → its declared volatility (the last definition of that name).
    functions: HashMap<String, FunctionVolatility>,
}

impl Catalog {
    pub fn table(&self, name: &ObjName) -> Option<&Table> {
        self.tables.get(&name.name)
    }

    pub fn contains(&self, name: &ObjName) -> bool {
        self.tables.contains_key(&name.name)
    }

    /// The table an index belongs to.
    pub fn table_of_index(&self, index: &ObjName) -> Option<ObjName> {
        let key = self.index_tables.get(&index.name)?;
        let t = self.tables.get(key)?;
        Some(t.name.clone().unwrap_or_else(|| ObjName::new(key.clone())))
    }

    /// The tables a materialized view's query reads, when its definition is known.
    pub fn matview_sources(&self, view: &ObjName) -> Option<&[ObjName]> {
        self.matviews.get(&view.name).map(Vec::as_slice)
    }

    /// The declared volatility of a function created in the migration set.
    pub fn function_volatility(&self, name: &str) -> Option<FunctionVolatility> {
        self.functions.get(name).copied()
    }

    /// Foreign keys in other tables that reference `table`: `(referencing table, fk)`.
    pub fn referencing(&self, table: &ObjName) -> Vec<(ObjName, &ForeignKey)> {
        let mut out: Vec<(ObjName, &ForeignKey)> = Vec::new();
        for (k, t) in &self.tables {
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

    fn entry(&mut self, name: &ObjName) -> &mut Table {
        self.tables
            .entry(name.name.clone())
            .or_insert_with(|| Table {
                name: Some(name.clone()),
                ..Table::default()
            })
    }

    /// Applies the schema effects of one statement.
    pub fn apply(&mut self, st: &Statement) {
        match &st.kind {
            StmtKind::CreateTable {
                name,
                partition_of,
                columns,
                constraints,
                like,
                temporary: false,
            } => {
                let partitioned = st
                    .toks
                    .windows(2)
                    .any(|w| w[0].is("PARTITION") && w[1].is("BY"));
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
                for c in columns {
                    add_column(t, c);
                }
                for (cname, c) in constraints {
                    add_constraint(t, cname.clone(), c, true);
                }
                let idx: Vec<String> = t.indexes.iter().filter_map(|i| i.name.clone()).collect();
                for i in idx {
                    self.index_tables.insert(i, name.name.clone());
                }
            }
            StmtKind::CreateFunction { name, volatility } => {
                self.functions.insert(name.name.clone(), *volatility);
            }
            StmtKind::CreateMaterializedView { name, sources } => {
                self.matviews.insert(name.name.clone(), sources.clone());
            }
            StmtKind::CreateIndex {
                name,
                table,
                unique,
                columns,
                ..
            } => {
                self.entry(table).indexes.push(Index {
                    name: name.clone(),
                    columns: columns.clone(),
                    unique: *unique,
                });
                if let Some(n) = name {
                    self.index_tables.insert(n.clone(), table.name.clone());
                }
            }
            StmtKind::DropIndex { names, .. } => {
                for n in names {
                    if let Some(key) = self.index_tables.remove(&n.name) {
                        if let Some(t) = self.tables.get_mut(&key) {
                            t.indexes
                                .retain(|i| i.name.as_deref() != Some(n.name.as_str()));
                        }
                    }
                }
            }
            StmtKind::Drop {
                kind: crate::sql::ir::DropKind::Table,
                names,
                ..
            } => {
                for n in names {
                    self.tables.remove(&n.name);
                    self.index_tables.retain(|_, t| *t != n.name);
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
                if let Some(mut t) = self.tables.remove(&table.name) {
                    t.name = Some(ObjName {
                        schema: table.schema.clone(),
                        name: to.clone(),
                    });
                    for v in self.index_tables.values_mut() {
                        if *v == table.name {
                            v.clone_from(to);
                        }
                    }
                    self.tables.insert(to.clone(), t);
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
            _ => {}
        }
        let t = self.entry(table);
        match a {
            ActionKind::AddColumn { column, .. } => add_column(t, column),
            ActionKind::DropColumn { names } => t.columns.retain(|c| !names.contains(&c.name)),
            ActionKind::AlterColumnType {
                column, new_type, ..
            } => {
                if let Some(c) = t.columns.iter_mut().find(|c| c.name == *column) {
                    c.data_type.clone_from(new_type);
                }
            }
            ActionKind::SetNotNull { column } => set_not_null(t, column, true),
            ActionKind::DropNotNull { column } => set_not_null(t, column, false),
            ActionKind::RenameColumn { from, to } => {
                if let Some(c) = t.columns.iter_mut().find(|c| c.name == *from) {
                    c.name.clone_from(to);
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
    }
}

fn set_not_null(t: &mut Table, column: &str, v: bool) {
    if let Some(c) = t.columns.iter_mut().find(|c| c.name == column) {
        c.not_null = v;
    }
}

fn add_column(t: &mut Table, c: &ColumnDef) {
    t.columns.retain(|x| x.name != c.name);
    t.columns.push(Column {
        name: c.name.clone(),
        data_type: c.data_type.clone(),
        not_null: c.not_null,
    });
    if c.primary_key || c.unique {
        t.indexes.push(Index {
            name: None,
            columns: vec![c.name.clone()],
            unique: true,
        });
    }
    if let Some(fk) = &c.references {
        t.foreign_keys.push(ForeignKey {
            name: None,
            columns: vec![c.name.clone()],
            references: fk.table.clone(),
            ref_columns: fk.columns.clone(),
        });
    }
    if let Some(expr) = &c.check {
        t.checks.push(CheckConstraint {
            name: None,
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
        } => t.foreign_keys.push(ForeignKey {
            name,
            columns: columns.clone(),
            references: references.table.clone(),
            ref_columns: references.columns.clone(),
        }),
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
                }
            } else {
                t.indexes.push(Index {
                    name,
                    columns: columns.clone(),
                    unique: true,
                });
            }
            if primary {
                for col in columns {
                    set_not_null(t, col, true);
                }
            }
        }
        Constraint::NotNull { column } if validated => set_not_null(t, column, true),
        Constraint::NotNull { .. } | Constraint::Exclude => {}
    }
}
