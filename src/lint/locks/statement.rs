//! The prediction for one statement, by kind.

use super::alter::{alter_action, drop_objects};
use super::calls::{body_effects, call, copy, create_function, data_access, do_text};
use super::rows::{referencing_closure, referencing_index};
use super::{Condition, LockReport};
use crate::lint::context::FileContext;
use crate::sql::ir::{Constraint, LockMode, ObjName, ReindexTarget, StmtKind};
use crate::sql::parse::Statement;
use crate::sql::tokens::Tok;

/// Predicts locks, rewrites and scans of `st` given the file context before it.
pub fn predict(st: &Statement, ctx: &FileContext) -> LockReport {
    predict_at(st, ctx, 0)
}

/// `name` or `schema.name` at `toks[i]`.
fn name_at(toks: &[Tok], i: usize) -> Option<ObjName> {
    let first = toks.get(i)?.ident()?.to_string();
    match (toks.get(i + 1), toks.get(i + 2).and_then(|t| t.ident())) {
        (Some(dot), Some(second)) if dot.is_punct(".") => Some(ObjName {
            schema: Some(first),
            name: second.to_string(),
        }),
        _ => Some(ObjName::new(first)),
    }
}

/// The tables `ANALYZE [VERBOSE] [(options)] t [(columns)], …` names (none: every table,
/// which is not predicted).
fn analyzed(toks: &[Tok]) -> Vec<ObjName> {
    let mut out = Vec::new();
    let mut i = 1;
    let mut depth = 0i32;
    while i < toks.len() {
        let t = &toks[i];
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        } else if depth == 0 && !t.is("VERBOSE") && !t.is_punct(",") && !t.is_punct(";") {
            if let Some(n) = name_at(toks, i) {
                if n.schema.is_some() {
                    i += 2;
                }
                out.push(n);
            }
        }
        i += 1;
    }
    out
}

pub(super) fn has_seq(toks: &[Tok], kws: &[&str]) -> bool {
    crate::sql::tokens::find_seq(toks, kws).is_some()
}

pub(super) fn predict_at(st: &Statement, ctx: &FileContext, depth: u8) -> LockReport {
    use LockMode::*;
    let mut r = LockReport::default();
    match &st.kind {
        StmtKind::CreateIndex {
            name,
            table,
            concurrently,
            only,
            if_not_exists,
            ..
        } => {
            r.lock(
                table,
                if *concurrently {
                    ShareUpdateExclusive
                } else {
                    Share
                },
            );
            // `IF NOT EXISTS` on an index that exists builds nothing.
            let exists = *if_not_exists
                && name.as_ref().is_some_and(|n| {
                    ctx.catalog
                        .table_of_index(&ObjName::new(n.clone()))
                        .is_some()
                });
            if !exists {
                index_build(&mut r, table, *only, ctx, 0);
            }
        }
        StmtKind::DropIndex {
            names,
            concurrently,
        } => {
            let if_exists = has_seq(&st.toks, &["IF", "EXISTS"]);
            for n in names {
                let mode = if *concurrently {
                    ShareUpdateExclusive
                } else {
                    AccessExclusive
                };
                let known = ctx.catalog.table_of_index(n).is_some();
                let cond = (if_exists && !known).then_some(Condition::Exists);
                r.lock_index_table(n, mode, cond, ctx);
                // CASCADE drops the foreign keys that rest on a unique index.
                if has_seq(&st.toks, &["CASCADE"]) {
                    for t in referencing_index(&ctx.catalog, n) {
                        r.lock(&t, AccessExclusive);
                    }
                }
            }
        }
        StmtKind::Reindex {
            target,
            name,
            concurrently,
        } => {
            let mode = if *concurrently {
                ShareUpdateExclusive
            } else {
                Share
            };
            match target {
                ReindexTarget::Index => {
                    if let Some(t) = ctx.catalog.table_of_index(name) {
                        r.scan(&t);
                    }
                    r.lock_index_table(name, mode, None, ctx);
                }
                ReindexTarget::Table => {
                    r.lock(name, mode);
                    r.scan(name);
                }
                _ => {}
            }
        }
        StmtKind::Cluster { table: Some(t) } => {
            r.lock(t, AccessExclusive);
            r.rewrite(t);
        }
        StmtKind::Vacuum { full, tables } => {
            // Plain VACUUM reads the table, but not as a sequential scan.
            for t in tables {
                if *full {
                    r.lock(t, AccessExclusive);
                    r.rewrite(t);
                } else {
                    r.lock(t, ShareUpdateExclusive);
                }
            }
        }
        StmtKind::RefreshMatView { name, concurrently } => {
            r.lock(
                name,
                if *concurrently {
                    Exclusive
                } else {
                    AccessExclusive
                },
            );
            // The view gets a new file, filled by its query, which reads its source
            // tables; a concurrent refresh also reads the view to compute the difference.
            if !*concurrently {
                LockReport::add(&mut r.rewrites, name);
            }
            for src in ctx.catalog.matview_sources(name).unwrap_or_default() {
                read_relation(&mut r, src, ctx, AccessShare, 0);
                r.scan(src);
            }
            if *concurrently {
                r.scan(name);
            }
        }
        StmtKind::Lock { tables, mode } => {
            for t in tables {
                r.lock(t, *mode);
            }
        }
        StmtKind::Truncate { tables, cascade } => {
            // Each table gets new, empty files (no rows are copied); PostgreSQL may read
            // the tables it truncates (measured: the scan counters of tables with foreign
            // keys move).
            let mut all = tables.clone();
            if *cascade {
                for t in tables {
                    all.extend(referencing_closure(&ctx.catalog, t));
                }
            }
            for t in &all {
                r.lock(t, AccessExclusive);
                LockReport::add(&mut r.rewrites, t);
                r.maybe_scan(t);
            }
        }
        StmtKind::Drop {
            kind,
            names,
            cascade,
        } => drop_objects(&mut r, st, *kind, names, *cascade, ctx),
        StmtKind::DropTrigger { table, name } => {
            // With IF EXISTS, a trigger that is not there locks nothing (measured).
            let cond = (has_seq(&st.toks, &["IF", "EXISTS"])
                && !ctx.catalog.has_trigger(table, name))
            .then_some(Condition::Exists);
            r.lock_on(table, false, AccessExclusive, cond);
        }
        StmtKind::Update { .. }
        | StmtKind::Delete { .. }
        | StmtKind::Insert { .. }
        | StmtKind::Query => data_access(&mut r, &st.toks, ctx, depth),
        StmtKind::Copy => copy(&mut r, &st.toks, ctx, depth),
        StmtKind::Other { .. }
            if st.toks.first().is_some_and(|t| t.is("ALTER"))
                && st.toks.get(1).is_some_and(|t| t.is("TRIGGER")) =>
        {
            // `ALTER TRIGGER name ON table …`
            if let Some(t) = st
                .toks
                .iter()
                .position(|t| t.is("ON"))
                .and_then(|i| name_at(&st.toks, i + 1))
            {
                r.lock(&t, AccessExclusive);
            }
        }
        StmtKind::Analyze => {
            for t in analyzed(&st.toks) {
                r.lock(&t, ShareUpdateExclusive);
            }
        }
        StmtKind::Other { what } if what == "CALL" => {
            if let Some(n) = st.toks.get(1).and_then(|t| t.ident()) {
                call(&mut r, n, ctx, depth);
            }
        }
        StmtKind::Do => {
            // Locks only, from the body's text; `check` replaces this with what the body's
            // statements do one by one (with their findings).
            if let Some((text, lang)) = do_text(&st.toks) {
                r = body_effects(&text, lang, ctx, depth + 1);
            }
        }
        StmtKind::CreateTrigger { table, .. } => r.lock(table, ShareRowExclusive),
        StmtKind::Comment { table: Some(t) } | StmtKind::CreateStatistics { table: Some(t) } => {
            r.lock(t, ShareUpdateExclusive)
        }
        StmtKind::CreateView { sources, .. } => {
            // Parse analysis of the view's query locks the relations it names (a view it
            // names is not expanded); nothing is scanned.
            for s in sources {
                if ctx.catalog.contains(s) || ctx.catalog.matview_sources(s).is_some() {
                    r.lock(s, AccessShare);
                }
            }
        }
        StmtKind::CreateMaterializedView { sources, .. } => {
            let no_data = has_seq(&st.toks, &["WITH", "NO", "DATA"]);
            for s in sources {
                read_relation(&mut r, s, ctx, AccessShare, 0);
            }
            if no_data {
                r.may_scan.clear();
            }
        }
        StmtKind::CreateFunction { language, body, .. } => {
            create_function(&mut r, st, language.as_deref(), *body, ctx);
        }
        StmtKind::CreateTable {
            name,
            partition_of,
            columns,
            constraints,
            like,
            ..
        } => {
            if let Some(p) = partition_of {
                r.lock(p, AccessExclusive);
            }
            let mut refs: Vec<&ObjName> = columns
                .iter()
                .filter_map(|c| c.references.as_ref().map(|f| &f.table))
                .collect();
            for (_, c) in constraints {
                if let Constraint::ForeignKey { references, .. } = c {
                    refs.push(&references.table);
                }
            }
            // A foreign key to the table being created locks nothing else.
            for t in refs.into_iter().filter(|t| t.name != name.name) {
                r.lock(t, ShareRowExclusive);
            }
            for l in like {
                read_relation(&mut r, &l.table, ctx, AccessShare, 0);
            }
            r.may_scan.clear();
            // `CREATE TABLE … AS query` runs the query.
            if let Some(q) = as_query(&st.toks) {
                data_access(&mut r, q, ctx, depth);
            }
        }
        StmtKind::AlterTable { table, actions } => {
            for a in actions {
                alter_action(&mut r, table, &a.kind, ctx);
            }
        }
        _ => {}
    }
    r
}

/// Building an index on `table` reads it; on a partitioned table (which holds no rows) it
/// locks and reads each partition instead, unless `ON ONLY`.
fn index_build(r: &mut LockReport, table: &ObjName, only: bool, ctx: &FileContext, hops: u8) {
    let partitioned = ctx.catalog.table(table).is_some_and(|t| t.partitioned);
    if !partitioned {
        r.scan(table);
        return;
    }
    if only || hops > 4 {
        return;
    }
    for p in ctx.catalog.partitions_of(table) {
        r.lock(&p, LockMode::Share);
        index_build(r, &p, false, ctx, hops + 1);
    }
}

/// The query of `CREATE TABLE … AS query`: the tokens after a top-level `AS` that starts
/// one.
fn as_query(toks: &[Tok]) -> Option<&[Tok]> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        } else if depth == 0 && t.is("AS") {
            let next = toks.get(i + 1)?;
            if next.is("SELECT")
                || next.is("WITH")
                || next.is("VALUES")
                || next.is("TABLE")
                || next.is_punct("(")
            {
                return Some(&toks[i + 1..]);
            }
        }
    }
    None
}

/// Locks `mode` on relation `t` if the catalog knows it as a table or materialized view (a
/// query may scan it), or on the relations a known view reads.
pub(super) fn read_relation(
    r: &mut LockReport,
    t: &ObjName,
    ctx: &FileContext,
    mode: LockMode,
    hops: u8,
) {
    if ctx.catalog.contains(t) || ctx.catalog.matview_sources(t).is_some() {
        r.lock(t, mode);
        r.maybe_scan(t);
    } else if let Some(srcs) = ctx.catalog.view_sources(t) {
        if hops < 8 {
            for s in srcs {
                read_relation(r, s, ctx, mode, hops + 1);
            }
        }
    }
}
