//! A table as the catalog knows it (columns, indexes, constraints, foreign keys), and the
//! changes statements make to one.

use std::collections::HashMap;

use crate::sql::ir::{ColumnDef, Constraint, ObjName, RefAction};

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
    pub(super) column_at: HashMap<String, usize>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        match self.column_at.get(name).and_then(|&i| self.columns.get(i)) {
            Some(c) if c.name == name => Some(c),
            _ => None,
        }
    }

    pub(super) fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        let i = *self.column_at.get(name)?;
        self.columns.get_mut(i).filter(|c| c.name == name)
    }

    /// Rebuilds `column_at` after columns were removed or renamed.
    pub(super) fn reindex(&mut self) {
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
    pub(super) fn copied_by(&self, like: &crate::sql::ir::LikeSource) -> Table {
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
    pub(super) fn choose_name(&self, columns: &[String], label: &str) -> String {
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

/// Whether an index column (a name, or an expression's text) uses column `name`.
pub(super) fn mentions(expr: &str, name: &str) -> bool {
    expr == name
        || expr
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .any(|w| w.trim_matches('"') == name)
}

pub(super) fn rename_in(list: &mut [String], from: &str, to: &str) {
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

pub(super) fn set_not_null(t: &mut Table, column: &str, v: bool) {
    if let Some(c) = t.column_mut(column) {
        c.not_null = v;
    }
}

pub(super) fn add_column(t: &mut Table, c: &ColumnDef) {
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

pub(super) fn add_constraint(t: &mut Table, name: Option<String>, c: &Constraint, validated: bool) {
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
