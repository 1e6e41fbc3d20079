//! Replaying a statement: what each `CREATE`, `ALTER TABLE` and `DROP` changes in the
//! catalog.

use super::table::{add_column, add_constraint, mentions, rename_in, set_not_null};
use super::{Catalog, Function, Index, Table, Undo};
use crate::sql::ir::{ActionKind, DropKind, ObjName, StmtKind};
use crate::sql::parse::Statement;

impl Catalog {
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
