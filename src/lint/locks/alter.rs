//! `DROP` of objects and the actions of `ALTER TABLE`.

use super::statement::has_seq;
use super::volatility::add_column_rewrites;
use super::{Condition, LockReport};
use crate::lint::context::FileContext;
use crate::lint::types;
use crate::sql::ir::{ActionKind, Constraint, DropKind, LockMode, ObjName};
use crate::sql::parse::Statement;

/// `DROP TABLE|VIEW|MATERIALIZED VIEW|FUNCTION|TYPE …`.
pub(super) fn drop_objects(
    r: &mut LockReport,
    st: &Statement,
    kind: DropKind,
    names: &[ObjName],
    cascade: bool,
    ctx: &FileContext,
) {
    use LockMode::*;
    let if_exists = has_seq(&st.toks, &["IF", "EXISTS"]);
    for t in names {
        match kind {
            DropKind::Table | DropKind::MaterializedView => {
                let known = ctx.catalog.contains(t) || ctx.catalog.matview_sources(t).is_some();
                let cond = (if_exists && !known).then_some(Condition::Exists);
                r.lock_on(t, false, AccessExclusive, cond);
                if let Some(tb) = ctx.catalog.table(t) {
                    // Its foreign keys' triggers on the referenced tables go too.
                    for fk in &tb.foreign_keys {
                        if fk.references.name != t.name {
                            r.lock_on(&fk.references, false, AccessExclusive, cond);
                        }
                    }
                }
                // Foreign keys referencing it are dropped with it (CASCADE).
                for (child, _) in ctx.catalog.referencing(t) {
                    if child.name != t.name {
                        r.lock(&child, AccessExclusive);
                    }
                }
            }
            DropKind::Function if cascade => {
                // Triggers executing it are dropped with it.
                for tb in ctx.catalog.tables_with_trigger_function(&t.name) {
                    r.lock(&tb, AccessExclusive);
                }
            }
            DropKind::Type if cascade => {
                for tb in ctx.catalog.tables_with_column_type(&t.name) {
                    r.lock(&tb, AccessExclusive);
                }
            }
            _ => {}
        }
        if cascade || kind == DropKind::MaterializedView {
            for m in ctx.catalog.dependent_matviews(t) {
                if cascade {
                    r.lock(&m, AccessExclusive);
                }
            }
        }
    }
}

pub(super) fn alter_action(r: &mut LockReport, table: &ObjName, a: &ActionKind, ctx: &FileContext) {
    use LockMode::*;
    let known = ctx.catalog.table(table);
    match a {
        ActionKind::AddColumn {
            column,
            if_not_exists: true,
        } if known.is_some_and(|t| t.column(&column.name).is_some()) => {
            // The column is there: nothing is added.
            r.lock(table, AccessExclusive);
        }
        ActionKind::AddColumn { column, .. } => {
            r.lock(table, AccessExclusive);
            if add_column_rewrites(column, ctx.pg_version, &ctx.catalog).is_some() {
                r.rewrite(table);
            }
            // A unique index is built, a CHECK or NOT NULL verified on every row.
            let filled = column
                .default
                .as_deref()
                .is_some_and(|d| !d.trim().eq_ignore_ascii_case("null"));
            if column.unique
                || column.primary_key
                || column.check.is_some()
                || (column.not_null && !filled && column.generated.is_none() && !column.identity)
            {
                r.scan(table);
            }
            // A foreign key on the new column: nothing to check, unless a DEFAULT clause
            // (even `DEFAULT NULL`, measured) makes PostgreSQL validate it.
            if let Some(fk) = &column.references {
                if fk.table.name != table.name {
                    r.lock(&fk.table, ShareRowExclusive);
                }
                if column.default.is_some() {
                    r.scan(table);
                    if fk.table.name != table.name {
                        r.maybe_scan(&fk.table);
                    }
                }
            }
        }
        ActionKind::DropColumn { names } => {
            r.lock(table, AccessExclusive);
            if let Some(t) = known {
                // Its foreign keys go, and so do their triggers on the referenced tables.
                for fk in &t.foreign_keys {
                    if fk.columns.iter().any(|c| names.contains(c))
                        && fk.references.name != table.name
                    {
                        r.lock(&fk.references, AccessExclusive);
                    }
                }
            }
            // Foreign keys referencing the column go too (CASCADE).
            for n in names {
                for t in types::referencing_tables(&ctx.catalog, table, n) {
                    r.lock(&t, AccessExclusive);
                }
            }
        }
        ActionKind::DropConstraint { name } => {
            r.lock(table, AccessExclusive);
            if let Some(fk) = ctx.catalog.foreign_key(table, name) {
                if fk.references.name != table.name {
                    r.lock(&fk.references, AccessExclusive);
                }
            }
            // A unique constraint or primary key takes the foreign keys referencing it
            // with it (CASCADE).
            if let Some(t) = known {
                if let Some(i) = t.indexes.iter().find(|i| i.name.as_deref() == Some(name)) {
                    for (child, fk) in ctx.catalog.referencing(table) {
                        let keys = t.referenced_columns(fk);
                        if child.name != table.name
                            && !keys.is_empty()
                            && keys == i.columns.as_slice()
                        {
                            r.lock(&child, AccessExclusive);
                        }
                    }
                }
            }
        }
        ActionKind::SetNotNull { column } => {
            r.lock(table, AccessExclusive);
            // Nothing to verify on a column that is NOT NULL already.
            let already = known
                .and_then(|t| t.column(column))
                .is_some_and(|c| c.not_null);
            if !(already || ctx.pg_version >= 12 && ctx.has_valid_not_null_check(table, column)) {
                r.scan(table);
            }
        }
        ActionKind::AddConstraint {
            constraint,
            not_valid,
            ..
        } => match constraint {
            Constraint::ForeignKey { references, .. } => {
                r.lock(table, ShareRowExclusive);
                r.lock(&references.table, ShareRowExclusive);
                if !not_valid {
                    r.scan(table);
                    // The check joins the referenced table: scanned or probed by index.
                    if references.table.name != table.name {
                        r.maybe_scan(&references.table);
                    }
                }
            }
            Constraint::Unique {
                using_index,
                columns,
            }
            | Constraint::PrimaryKey {
                using_index,
                columns,
            } => {
                r.lock(table, AccessExclusive);
                if using_index.is_none() {
                    r.scan(table);
                } else if matches!(constraint, Constraint::PrimaryKey { .. }) {
                    // A primary key over nullable columns verifies them.
                    let cols: Vec<String> = match using_index {
                        Some(idx) => known
                            .and_then(|t| {
                                t.indexes
                                    .iter()
                                    .find(|i| i.name.as_deref() == Some(idx.as_str()))
                            })
                            .map(|i| i.columns.clone())
                            .unwrap_or_default(),
                        None => columns.clone(),
                    };
                    if known.is_some_and(|t| {
                        cols.iter()
                            .any(|c| t.column(c).is_some_and(|c| !c.not_null))
                    }) {
                        r.scan(table);
                    }
                }
            }
            Constraint::Check { .. } | Constraint::NotNull { .. } => {
                r.lock(table, AccessExclusive);
                if !not_valid {
                    r.scan(table);
                }
            }
            Constraint::Exclude => {
                r.lock(table, AccessExclusive);
                r.scan(table);
            }
        },
        ActionKind::ValidateConstraint { name } => {
            r.lock(table, ShareUpdateExclusive);
            r.scan(table);
            // Validating a foreign key also reads the referenced table under ROW SHARE.
            if let Some(fk) = ctx.catalog.foreign_key(table, name) {
                r.lock(&fk.references, RowShare);
                r.maybe_scan(&fk.references);
            }
        }
        ActionKind::AttachPartition { partition } => {
            r.lock(
                table,
                if ctx.pg_version >= 12 {
                    ShareUpdateExclusive
                } else {
                    AccessExclusive
                },
            );
            r.lock(partition, AccessExclusive);
            r.scan(partition);
        }
        ActionKind::DetachPartition {
            partition,
            concurrently,
            ..
        } => {
            let mode = if *concurrently {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            r.lock(table, mode);
            r.lock(partition, mode);
        }
        ActionKind::SetTablespace | ActionKind::SetLogged | ActionKind::SetUnlogged => {
            r.lock(table, AccessExclusive);
            r.rewrite(table);
        }
        ActionKind::SetStorageParams
        | ActionKind::AlterColumnOther { .. }
        | ActionKind::Cluster => r.lock(table, ShareUpdateExclusive),
        ActionKind::Trigger => r.lock(table, ShareRowExclusive),
        ActionKind::AlterColumnType {
            column,
            new_type,
            using,
        } => {
            r.lock(table, AccessExclusive);
            let old = known
                .and_then(|t| t.column(column))
                .map(|c| c.data_type.as_str());
            // An unknown old type counts as a rewrite: the prediction errs on the safe side.
            // A known one lockstep cannot decide (timestamp to timestamptz with the session
            // TimeZone unknown) may rewrite.
            let change = types::classify(
                old,
                new_type,
                *using,
                ctx.pg_version,
                ctx.timezone.as_deref(),
            );
            let rewrites = change.may_rewrite();
            let undecided = old.is_some() && matches!(change, types::TypeChange::MayRewrite(_));
            if undecided {
                r.maybe_rewrite(table);
            } else if rewrites {
                r.rewrite(table);
            } else if old.is_some_and(|o| types::rebuilds_indexes(o, new_type))
                && known.is_some_and(|t| {
                    t.indexes
                        .iter()
                        .any(|i| i.columns.iter().any(|c| c == column))
                })
            {
                // Its indexes are rebuilt, which reads the table.
                r.scan(table);
            }
            // Foreign keys on the column are dropped and added again: ACCESS EXCLUSIVE on
            // the tables they reference; after a real conversion they are validated again.
            if let Some(t) = known {
                for fk in &t.foreign_keys {
                    if fk.columns.iter().any(|c| c == column) && fk.references.name != table.name {
                        r.lock(&fk.references, AccessExclusive);
                        if rewrites {
                            r.maybe_scan(&fk.references);
                        }
                    }
                }
            }
            // Foreign keys referencing the column are rebuilt, rewrite or not; after a
            // real conversion they are validated again, which reads the referencing table.
            for t in types::referencing_tables(&ctx.catalog, table, column) {
                r.lock(&t, AccessExclusive);
                if undecided {
                    r.maybe_scan(&t);
                } else if rewrites {
                    r.scan(&t);
                }
            }
        }
        _ => r.lock(table, AccessExclusive),
    }
}
