//! The lock model: what a statement locks, rewrites and scans, as measured on PostgreSQL
//! (see the ground-truth table in the rule catalogue, and `tests/ground_truth.rs`, which
//! checks every case on a real server).
//!
//! Some effects depend on what the statement meets, and are predicted as such: locks that
//! foreign-key checks and cascades take only when rows change, locks on objects that exist
//! only maybe (`DROP … IF EXISTS`), the statements of a `DO` block that run only when a
//! branch is taken ([`Condition`]); and tables a query reads, which the planner may scan or
//! reach through an index (`may_scan`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::catalog::Catalog;
use super::context::FileContext;
use crate::sql::dml::{self, WriteKind};
use crate::sql::ir::{
    ActionKind, Constraint, DropKind, FunctionVolatility, Generated, LockMode, ObjName,
    ReindexTarget, StmtKind,
};
use crate::sql::parse::Statement;
use crate::sql::plpgsql::{self, Lang, PieceKind};
use crate::sql::tokens::{Tok, TokKind};

/// When a predicted lock is taken only under a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Taken by foreign-key checks, cascades or triggers, when the statement changes rows.
    RowsChange,
    /// Taken if the object exists (`IF EXISTS` on an object lockstep does not know).
    Exists,
    /// Taken by a statement of a `DO` block or function that runs only in some branch.
    Branch,
    /// Taken by the body of a function the statement calls (a call in a query runs only
    /// for the rows the query produces).
    Call,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RowsChange => "when rows change",
            Condition::Exists => "if it exists",
            Condition::Branch => "if its branch runs",
            Condition::Call => "when the function runs",
        }
    }
}

/// What a lock is taken on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLock {
    /// The table (for `DROP INDEX`/`REINDEX INDEX`: the index, standing for its table).
    pub table: ObjName,
    /// True when `table` names an index and the lock is on the index's table.
    pub via_index: bool,
    pub mode: LockMode,
    /// `None`: always taken.
    pub condition: Option<Condition>,
}

/// The prediction for one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockReport {
    pub locks: Vec<TableLock>,
    pub rewrites: Vec<ObjName>,
    pub scans: Vec<ObjName>,
    /// Tables rewritten only under a condition (a branch of a `DO` block).
    pub may_rewrite: Vec<ObjName>,
    /// Tables read by a query (scanned or reached through an index, as the planner
    /// chooses), or scanned only under a condition.
    pub may_scan: Vec<ObjName>,
    /// The statement also runs SQL lockstep cannot see (`EXECUTE` of SQL built at run
    /// time): the prediction leaves that out.
    pub incomplete: bool,
}

impl LockReport {
    fn lock(&mut self, table: &ObjName, mode: LockMode) {
        self.lock_on(table, false, mode, None);
    }

    fn lock_if(&mut self, table: &ObjName, mode: LockMode, condition: Condition) {
        self.lock_on(table, false, mode, Some(condition));
    }

    fn lock_on(
        &mut self,
        table: &ObjName,
        via_index: bool,
        mode: LockMode,
        condition: Option<Condition>,
    ) {
        if let Some(l) = self
            .locks
            .iter_mut()
            .find(|l| l.table == *table && l.via_index == via_index)
        {
            // The entry keeps the stronger mode; it is unconditional when an unconditional
            // lock reaches that mode.
            if mode > l.mode {
                l.mode = mode;
                l.condition = condition;
            } else if mode == l.mode && condition.is_none() {
                l.condition = None;
            }
        } else {
            self.locks.push(TableLock {
                table: table.clone(),
                via_index,
                mode,
                condition,
            });
        }
    }

    fn add(list: &mut Vec<ObjName>, t: &ObjName) {
        if !list.contains(t) {
            list.push(t.clone());
        }
    }

    fn scan(&mut self, t: &ObjName) {
        Self::add(&mut self.scans, t);
        self.may_scan.retain(|x| x != t);
    }

    fn rewrite(&mut self, t: &ObjName) {
        Self::add(&mut self.rewrites, t);
        self.may_rewrite.retain(|x| x != t);
        self.scan(t);
    }

    fn maybe_rewrite(&mut self, t: &ObjName) {
        if !self.rewrites.contains(t) {
            Self::add(&mut self.may_rewrite, t);
        }
        self.maybe_scan(t);
    }

    fn maybe_scan(&mut self, t: &ObjName) {
        if !self.scans.contains(t) {
            Self::add(&mut self.may_scan, t);
        }
    }

    /// Locks the table of index `index` when the catalog knows it, else the index itself
    /// (standing for its unknown table).
    fn lock_index_table(
        &mut self,
        index: &ObjName,
        mode: LockMode,
        condition: Option<Condition>,
        ctx: &FileContext,
    ) {
        match ctx.catalog.table_of_index(index) {
            Some(t) => self.lock_on(&t, false, mode, condition),
            None => self.lock_on(index, true, mode, condition),
        }
    }

    /// Adds what another statement does (a statement of a `DO` block or function body),
    /// under `condition` when it runs only sometimes.
    pub fn merge(&mut self, other: &LockReport, condition: Option<Condition>) {
        for l in &other.locks {
            self.lock_on(&l.table, l.via_index, l.mode, condition.or(l.condition));
        }
        for t in &other.rewrites {
            if condition.is_some() {
                if !self.rewrites.contains(t) {
                    Self::add(&mut self.may_rewrite, t);
                }
            } else {
                self.rewrite(t);
            }
        }
        for t in &other.scans {
            if condition.is_some() {
                self.maybe_scan(t);
            } else {
                self.scan(t);
            }
        }
        for t in &other.may_rewrite {
            if !self.rewrites.contains(t) {
                Self::add(&mut self.may_rewrite, t);
            }
        }
        for t in &other.may_scan {
            self.maybe_scan(t);
        }
        self.incomplete |= other.incomplete;
    }

    /// Forgets what concerns `tables` (created by an earlier statement of the same block:
    /// they did not exist before the block).
    pub fn without(&mut self, tables: &[ObjName]) {
        let gone = |t: &ObjName| tables.iter().any(|x| x.name == t.name);
        self.locks.retain(|l| l.via_index || !gone(&l.table));
        for list in [
            &mut self.rewrites,
            &mut self.scans,
            &mut self.may_rewrite,
            &mut self.may_scan,
        ] {
            list.retain(|t| !gone(t));
        }
    }

    /// The strongest lock taken on any table.
    pub fn strongest(&self) -> Option<&TableLock> {
        self.locks.iter().max_by_key(|l| l.mode)
    }
}

/// How safe a default expression is to add with a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volatility {
    /// Constants, casts of constants, stable functions such as `now()`.
    Safe,
    /// A known volatile function: every row gets its own value, so the table is rewritten.
    Volatile(String),
    /// A function whose volatility lockstep does not know (user functions).
    Unknown(String),
}

const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "random_normal",
    "gen_random_bytes",
];

const STABLE_OR_IMMUTABLE: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
    "transaction_timestamp",
    "statement_timestamp",
    "current_user",
    "session_user",
    "current_setting",
    "lower",
    "upper",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "concat",
    "concat_ws",
    "array",
    "to_jsonb",
    "to_json",
    "jsonb_build_object",
    "jsonb_build_array",
    "json_build_object",
    "json_build_array",
    "make_interval",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "to_timestamp",
    "to_date",
    "to_char",
    "date_trunc",
    "length",
    "md5",
    "round",
    "abs",
    "timezone",
    "cast",
    "interval",
    "date",
    "timestamp",
    "timestamptz",
    "numeric",
    "varchar",
    "char",
    "row",
    "extract",
    "substring",
    "trim",
    "replace",
    "format",
    "array_fill",
    "pi",
    "txid_current",
    "pg_current_xact_id",
];

/// Classifies a default expression by the functions it calls: built-in ones lockstep
/// knows, then functions whose `CREATE FUNCTION` the migration set holds (`catalog`; one
/// that declares no volatility is `VOLATILE`).
pub fn default_volatility(expr: &str, catalog: &Catalog) -> Volatility {
    let mut unknown = None;
    for f in called_functions(expr) {
        let declared = catalog.function_volatility(&f);
        if VOLATILE.contains(&f.as_str())
            || (declared == Some(FunctionVolatility::Volatile)
                && !STABLE_OR_IMMUTABLE.contains(&f.as_str()))
        {
            return Volatility::Volatile(f);
        }
        if !STABLE_OR_IMMUTABLE.contains(&f.as_str()) && declared.is_none() && unknown.is_none() {
            unknown = Some(f);
        }
    }
    unknown.map_or(Volatility::Safe, Volatility::Unknown)
}

/// Names (lower case, schema dropped) of functions called in an expression's text.
fn called_functions(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'"' => {
                let s = i;
                if c == b'"' {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < b.len()
                        && (b[i].is_ascii_alphanumeric()
                            || b[i] == b'_'
                            || b[i] == b'.'
                            || b[i] == b'$')
                    {
                        i += 1;
                    }
                }
                let word = &expr[s..i.min(expr.len())];
                let mut j = i;
                while j < b.len() && b[j] == b' ' {
                    j += 1;
                }
                // A cast target (`::type(…)`) is not a call.
                let is_cast = s >= 2 && &b[s - 2..s] == b"::";
                if b.get(j) == Some(&b'(') && !is_cast {
                    let name = word.rsplit('.').next().unwrap_or(word);
                    out.push(name.trim_matches('"').to_ascii_lowercase());
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether adding this column rewrites the table (and why), for the target version.
pub fn add_column_rewrites(
    col: &crate::sql::ir::ColumnDef,
    pg_version: u32,
    catalog: &Catalog,
) -> Option<String> {
    if col.is_serial() {
        return Some(format!(
            "a `{}` column fills every row from a sequence",
            col.data_type
        ));
    }
    if col.identity {
        return Some("an identity column fills every row from a sequence".into());
    }
    if col.generated == Some(Generated::Stored)
        || (col.generated == Some(Generated::Virtual) && pg_version < 18)
    {
        return Some("a stored generated column is computed for every row".into());
    }
    let default = col.default.as_deref()?;
    if default.trim().eq_ignore_ascii_case("null") {
        return None;
    }
    if pg_version < 11 {
        return Some("before PostgreSQL 11 any non-null default rewrites the table".into());
    }
    match default_volatility(default, catalog) {
        Volatility::Safe => None,
        Volatility::Volatile(f) => {
            Some(format!("`{f}()` is volatile: every row gets its own value"))
        }
        Volatility::Unknown(f) => Some(format!(
            "`{f}()` may be volatile: if it is, every row gets its own value"
        )),
    }
}

/// How deep function bodies are followed (a function calling a function …).
const MAX_DEPTH: u8 = 4;

/// Predicts locks, rewrites and scans of `st` given the file context before it.
pub fn predict(st: &Statement, ctx: &FileContext) -> LockReport {
    predict_at(st, ctx, 0)
}

/// What calling a function does, by name and depth (`None`: nothing known).
type CallEffects = HashMap<(String, u8), Option<LockReport>>;

thread_local! {
    /// What calling a function does, by name and depth, for one state of the catalog (its
    /// generation): worked out once while the catalog does not change (functions calling
    /// functions would otherwise cost their fan-out to the power of the depth, for every
    /// statement that calls them).
    static CALLS: RefCell<(u64, CallEffects)> =
        RefCell::new((0, HashMap::new()));
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

fn has_seq(toks: &[Tok], kws: &[&str]) -> bool {
    crate::sql::tokens::find_seq(toks, kws).is_some()
}

fn predict_at(st: &Statement, ctx: &FileContext, depth: u8) -> LockReport {
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
fn read_relation(r: &mut LockReport, t: &ObjName, ctx: &FileContext, mode: LockMode, hops: u8) {
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

/// What a data statement does, from its tokens: ROW EXCLUSIVE on the tables it writes
/// (with what foreign keys and triggers do when rows change), ACCESS SHARE on the tables
/// it reads (ROW SHARE with `FOR UPDATE`), and what the functions it calls do.
fn data_access(r: &mut LockReport, toks: &[Tok], ctx: &FileContext, depth: u8) {
    use LockMode::*;
    let a = dml::access(toks);
    for w in &a.writes {
        r.lock(&w.table, RowExclusive);
        match w.kind {
            WriteKind::Update | WriteKind::Delete if !w.has_where => r.scan(&w.table),
            WriteKind::Update | WriteKind::Delete | WriteKind::Merge => r.maybe_scan(&w.table),
            WriteKind::Insert => {}
        }
        row_effects(r, w, ctx, depth);
    }
    let mode = if a.row_locks { RowShare } else { AccessShare };
    for t in &a.reads {
        if a.writes.iter().any(|w| w.table.name == t.name) {
            r.maybe_scan(t);
            continue;
        }
        read_relation(r, t, ctx, mode, 0);
    }
    for f in &a.calls {
        call(r, f, ctx, depth);
    }
}

/// `COPY t FROM …` writes `t`; `COPY t TO …` reads all of it; `COPY (query) TO …` runs
/// the query.
fn copy(r: &mut LockReport, toks: &[Tok], ctx: &FileContext, depth: u8) {
    if toks.get(1).is_some_and(|t| t.is_punct("(")) {
        data_access(r, &toks[1..], ctx, depth);
        return;
    }
    let Some(name) = toks.get(1).and_then(|t| t.ident()) else {
        return;
    };
    let mut table = ObjName::new(name);
    if toks.get(2).is_some_and(|t| t.is_punct(".")) {
        if let Some(n) = toks.get(3).and_then(|t| t.ident()) {
            table = ObjName {
                schema: Some(name.to_string()),
                name: n.to_string(),
            };
        }
    }
    let from = toks.iter().any(|t| t.is("FROM"));
    if from {
        r.lock(&table, LockMode::RowExclusive);
    } else {
        r.lock(&table, LockMode::AccessShare);
        r.scan(&table);
    }
}

/// What calling function `name` does, when the catalog holds its body.
fn call(r: &mut LockReport, name: &str, ctx: &FileContext, depth: u8) {
    if let Some(e) = function_effects(name, ctx, depth) {
        r.merge(&e, Some(Condition::Call));
    }
}

/// The effects of running function `name`'s body (locks only), when the catalog holds it.
fn function_effects(name: &str, ctx: &FileContext, depth: u8) -> Option<LockReport> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let generation = ctx.catalog.generation();
    let key = (name.to_string(), depth);
    let known = CALLS.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != generation {
            *c = (generation, HashMap::new());
        }
        c.1.get(&key).cloned()
    });
    if let Some(known) = known {
        return known;
    }
    let effects = (|| {
        let f = ctx.catalog.function(name)?;
        let body = f.body.clone()?;
        let lang = Lang::parse(f.language.as_deref().unwrap_or("sql"))?;
        Some(body_effects(&body, lang, ctx, depth + 1))
    })();
    CALLS.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 == generation {
            c.1.insert(key, effects.clone());
        }
    });
    effects
}

/// The combined effects of the statements of a procedural body (locks only; the catalog as
/// it is before the body runs).
fn body_effects(text: &str, lang: Lang, ctx: &FileContext, depth: u8) -> LockReport {
    let mut r = LockReport::default();
    if depth >= MAX_DEPTH {
        return r;
    }
    let mut created: Vec<ObjName> = Vec::new();
    for p in plpgsql::read(text, 0..text.len(), lang) {
        let cond = p.conditional.then_some(Condition::Branch);
        let inner = match &p.kind {
            PieceKind::Sql => crate::sql::parse::analyze(text, p.span.clone()),
            PieceKind::Literal(sql) => crate::sql::parse::analyze(sql, 0..sql.len()),
            PieceKind::Query => {
                let Ok(t) = crate::sql::tokens::tokenize(&text[p.span.clone()], p.span.start)
                else {
                    continue;
                };
                let mut q = LockReport::default();
                data_access(&mut q, &t.toks, ctx, depth);
                r.merge(&q, cond);
                continue;
            }
            PieceKind::Dynamic => {
                r.incomplete = true;
                continue;
            }
        };
        let mut e = predict_at(&inner, ctx, depth);
        e.without(&created);
        r.merge(&e, cond);
        if let Some(t) = creates(&inner.kind) {
            created.push(t.clone());
        }
    }
    r
}

/// The relation a statement creates, if any.
pub fn creates(kind: &StmtKind) -> Option<&ObjName> {
    match kind {
        StmtKind::CreateTable { name, .. } | StmtKind::CreateMaterializedView { name, .. } => {
            Some(name)
        }
        _ => None,
    }
}

/// The body of a `DO` statement, from its tokens: the text and language.
fn do_text(toks: &[Tok]) -> Option<(Arc<str>, Lang)> {
    let mut lang = Lang::PlPgSql;
    let mut text = None;
    for (i, t) in toks.iter().enumerate() {
        match &t.kind {
            TokKind::Str(s) if text.is_none() => text = Some(Arc::from(s.as_str())),
            _ if t.is("LANGUAGE") => {
                lang = toks
                    .get(i + 1)
                    .and_then(|l| l.ident().and_then(Lang::parse))?;
            }
            _ => {}
        }
    }
    text.map(|t| (t, lang))
}

/// `CREATE FUNCTION … LANGUAGE sql`: PostgreSQL parses the body's statements when the
/// function is created (`check_function_bodies`), which locks the tables they name.
fn create_function(
    r: &mut LockReport,
    st: &Statement,
    language: Option<&str>,
    body: Option<usize>,
    ctx: &FileContext,
) {
    let atomic = crate::sql::tokens::find_seq(&st.toks, &["BEGIN", "ATOMIC"]);
    let toks: Vec<Tok> = if let Some(i) = atomic {
        st.toks[i + 2..].to_vec()
    } else if language == Some("sql") {
        let Some(TokKind::Str(text)) = body.and_then(|i| st.toks.get(i)).map(|t| &t.kind) else {
            return;
        };
        match crate::sql::tokens::tokenize(text, 0) {
            Ok(t) => t.toks,
            Err(_) => return,
        }
    } else {
        return;
    };
    let a = dml::access(&toks);
    for w in &a.writes {
        r.lock(&w.table, LockMode::RowExclusive);
    }
    for t in &a.reads {
        if !a.writes.iter().any(|w| w.table.name == t.name) {
            read_relation(r, t, ctx, LockMode::AccessShare, 0);
        }
    }
    r.may_scan.clear();
}

/// Foreign-key checks and actions, and triggers, of a write to a table: taken when the
/// statement changes rows.
fn row_effects(r: &mut LockReport, w: &dml::Write, ctx: &FileContext, depth: u8) {
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
fn referencing_index(catalog: &Catalog, index: &ObjName) -> Vec<ObjName> {
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
fn referencing_closure(catalog: &Catalog, table: &ObjName) -> Vec<ObjName> {
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

/// `DROP TABLE|VIEW|MATERIALIZED VIEW|FUNCTION|TYPE …`.
fn drop_objects(
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

fn alter_action(r: &mut LockReport, table: &ObjName, a: &ActionKind, ctx: &FileContext) {
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
                for t in super::types::referencing_tables(&ctx.catalog, table, n) {
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
            let change = super::types::classify(
                old,
                new_type,
                *using,
                ctx.pg_version,
                ctx.timezone.as_deref(),
            );
            let rewrites = change.may_rewrite();
            let undecided =
                old.is_some() && matches!(change, super::types::TypeChange::MayRewrite(_));
            if undecided {
                r.maybe_rewrite(table);
            } else if rewrites {
                r.rewrite(table);
            } else if old.is_some_and(|o| super::types::rebuilds_indexes(o, new_type))
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
            for t in super::types::referencing_tables(&ctx.catalog, table, column) {
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
