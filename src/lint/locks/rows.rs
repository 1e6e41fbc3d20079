//! What changing rows sets off: foreign-key checks and actions on referencing tables, and
//! triggers.

use super::calls::function_effects;
use super::{Condition, LockReport};
use crate::lint::catalog::Catalog;
use crate::lint::context::FileContext;
use crate::sql::dml::{self, WriteKind};
use crate::sql::ir::{LockMode, ObjName};

/// Foreign-key checks and actions, and triggers, of a write to a table: taken when the
/// statement changes rows.
pub(super) fn row_effects(r: &mut LockReport, w: &dml::Write, ctx: &FileContext, depth: u8) {
    use LockMode::*;
    let Some(t) = ctx.catalog.table(&w.table) else {
        return;
    };
    if matches!(
        w.kind,
        WriteKind::Insert | WriteKind::Update | WriteKind::Merge
    ) {
        // A new or changed key is checked against the referenced row (`FOR KEY SHARE`).
        for fk in &t.foreign_keys {
            // An UPDATE checks changed keys, and every key of a row inserted earlier in
            // the same transaction: any foreign key may be checked.
            if fk.references.name == w.table.name {
                continue;
            }
            r.lock_if(&fk.references, RowShare, Condition::RowsChange);
            r.maybe_scan(&fk.references);
        }
    }
    if matches!(
        w.kind,
        WriteKind::Update | WriteKind::Delete | WriteKind::Merge
    ) {
        let kind = if w.kind == WriteKind::Delete {
            WriteKind::Delete
        } else {
            WriteKind::Update
        };
        referencing_rows(r, &w.table, kind, &w.columns, ctx, depth, 0);
    }
    triggers(r, &w.table, ctx, depth);
}

/// What the triggers of `table` do (when rows change).
fn triggers(r: &mut LockReport, table: &ObjName, ctx: &FileContext, depth: u8) {
    for f in ctx.catalog.trigger_functions(table) {
        if let Some(e) = function_effects(&f, ctx, depth) {
            r.merge(&e, Some(Condition::RowsChange));
        }
    }
}

/// Deleting rows of `table`, or changing their key: the tables whose foreign keys reference
/// them are checked (ROW SHARE) or changed by `ON DELETE/UPDATE CASCADE`, `SET NULL`, `SET
/// DEFAULT` (ROW EXCLUSIVE, and so on down).
fn referencing_rows(
    r: &mut LockReport,
    table: &ObjName,
    kind: WriteKind,
    columns: &[String],
    ctx: &FileContext,
    depth: u8,
    hops: u8,
) {
    use LockMode::*;
    if hops > 8 {
        return;
    }
    let parent = ctx.catalog.table(table);
    for (child, fk) in ctx.catalog.referencing(table) {
        if child.name == table.name {
            continue;
        }
        if kind == WriteKind::Update && !columns.is_empty() {
            let keys = parent.map_or(&[][..], |p| p.referenced_columns(fk));
            if !keys.is_empty() && !keys.iter().any(|c| columns.contains(c)) {
                continue;
            }
        }
        let action = if kind == WriteKind::Delete {
            fk.on_delete
        } else {
            fk.on_update
        };
        r.maybe_scan(&child);
        if action.writes() {
            r.lock_if(&child, RowExclusive, Condition::RowsChange);
            let (next, cols) =
                if kind == WriteKind::Delete && action == crate::sql::ir::RefAction::Cascade {
                    (WriteKind::Delete, Vec::new())
                } else {
                    (WriteKind::Update, fk.columns.clone())
                };
            referencing_rows(r, &child, next, &cols, ctx, depth, hops + 1);
            triggers(r, &child, ctx, depth);
        } else {
            r.lock_if(&child, RowShare, Condition::RowsChange);
        }
    }
}

/// Tables whose foreign keys reference the columns of unique index `index`.
pub(super) fn referencing_index(catalog: &Catalog, index: &ObjName) -> Vec<ObjName> {
    let Some(table) = catalog.table_of_index(index) else {
        return Vec::new();
    };
    let Some(t) = catalog.table(&table) else {
        return Vec::new();
    };
    let Some(i) = t
        .indexes
        .iter()
        .find(|i| i.unique && i.name.as_deref() == Some(index.name.as_str()))
    else {
        return Vec::new();
    };
    let mut out: Vec<ObjName> = Vec::new();
    for (child, fk) in catalog.referencing(&table) {
        let keys = t.referenced_columns(fk);
        if child.name != table.name && keys == i.columns.as_slice() && !out.contains(&child) {
            out.push(child);
        }
    }
    out
}

/// Tables whose foreign keys reference `table`, directly or through others (what
/// `TRUNCATE … CASCADE` empties).
pub(super) fn referencing_closure(catalog: &Catalog, table: &ObjName) -> Vec<ObjName> {
    let mut out: Vec<ObjName> = Vec::new();
    let mut todo = vec![table.clone()];
    while let Some(t) = todo.pop() {
        for (child, _) in catalog.referencing(&t) {
            if child.name != table.name && !out.contains(&child) {
                out.push(child.clone());
                todo.push(child);
            }
        }
    }
    out
}
