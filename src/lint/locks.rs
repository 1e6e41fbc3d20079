//! The lock model: what a statement locks, rewrites and scans, as measured on PostgreSQL
//! (see the ground-truth table in the rule catalogue).

use super::catalog::Catalog;
use super::context::FileContext;
use crate::sql::ir::{
    ActionKind, Constraint, FunctionVolatility, Generated, LockMode, ObjName, ReindexTarget,
    StmtKind,
};
use crate::sql::parse::Statement;

/// What a lock is taken on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLock {
    /// The table (for `DROP INDEX`/`REINDEX INDEX`: the index, standing for its table).
    pub table: ObjName,
    /// True when `table` names an index and the lock is on the index's table.
    pub via_index: bool,
    pub mode: LockMode,
}

/// The prediction for one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockReport {
    pub locks: Vec<TableLock>,
    pub rewrites: Vec<ObjName>,
    pub scans: Vec<ObjName>,
}

impl LockReport {
    fn lock(&mut self, table: &ObjName, mode: LockMode) {
        self.lock_on(table, false, mode);
    }

    fn lock_on(&mut self, table: &ObjName, via_index: bool, mode: LockMode) {
        if let Some(l) = self
            .locks
            .iter_mut()
            .find(|l| l.table == *table && l.via_index == via_index)
        {
            l.mode = l.mode.max(mode);
        } else {
            self.locks.push(TableLock {
                table: table.clone(),
                via_index,
                mode,
            });
        }
    }

    fn add(list: &mut Vec<ObjName>, t: &ObjName) {
        if !list.contains(t) {
            list.push(t.clone());
        }
    }

    /// Locks the table of index `index` when the catalog knows it, else the index itself
    /// (standing for its unknown table).
    fn lock_index_table(&mut self, index: &ObjName, mode: LockMode, ctx: &FileContext) {
        match ctx.catalog.table_of_index(index) {
            Some(t) => self.lock(&t, mode),
            None => self.lock_on(index, true, mode),
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

/// Predicts locks, rewrites and scans of `st` given the file context before it.
pub fn predict(st: &Statement, ctx: &FileContext) -> LockReport {
    use LockMode::*;
    let mut r = LockReport::default();
    match &st.kind {
        StmtKind::CreateIndex {
            table,
            concurrently,
            only,
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
            if !only {
                LockReport::add(&mut r.scans, table);
            }
        }
        StmtKind::DropIndex {
            names,
            concurrently,
        } => {
            for n in names {
                let mode = if *concurrently {
                    ShareUpdateExclusive
                } else {
                    AccessExclusive
                };
                r.lock_index_table(n, mode, ctx);
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
                        LockReport::add(&mut r.scans, &t);
                    }
                    r.lock_index_table(name, mode, ctx);
                }
                ReindexTarget::Table => {
                    r.lock(name, mode);
                    LockReport::add(&mut r.scans, name);
                }
                _ => {}
            }
        }
        StmtKind::Cluster { table: Some(t) } => {
            r.lock(t, AccessExclusive);
            LockReport::add(&mut r.rewrites, t);
            LockReport::add(&mut r.scans, t);
        }
        StmtKind::Vacuum { full, tables } => {
            for t in tables {
                if *full {
                    r.lock(t, AccessExclusive);
                    LockReport::add(&mut r.rewrites, t);
                } else {
                    r.lock(t, ShareUpdateExclusive);
                }
                LockReport::add(&mut r.scans, t);
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
            LockReport::add(&mut r.rewrites, name);
            // The view's query reads its source tables; a concurrent refresh also reads
            // the view to compute the difference.
            for src in ctx.catalog.matview_sources(name).unwrap_or_default() {
                LockReport::add(&mut r.scans, src);
            }
            if *concurrently {
                LockReport::add(&mut r.scans, name);
            }
        }
        StmtKind::Lock { tables, mode } => {
            for t in tables {
                r.lock(t, *mode);
            }
        }
        StmtKind::Truncate { tables, .. } => {
            for t in tables {
                r.lock(t, AccessExclusive);
            }
        }
        StmtKind::Drop {
            kind: crate::sql::ir::DropKind::Table | crate::sql::ir::DropKind::MaterializedView,
            names,
            ..
        } => {
            for t in names {
                r.lock(t, AccessExclusive);
                // Dropping a table drops its foreign keys' triggers on the referenced tables.
                let referenced: Vec<ObjName> = ctx
                    .catalog
                    .table(t)
                    .map(|tb| {
                        tb.foreign_keys
                            .iter()
                            .map(|f| f.references.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                for u in referenced {
                    r.lock(&u, AccessExclusive);
                }
            }
        }
        StmtKind::Update { table, .. } | StmtKind::Delete { table, .. } => {
            r.lock(table, RowExclusive);
            LockReport::add(&mut r.scans, table);
        }
        StmtKind::Insert { table } => r.lock(table, RowExclusive),
        StmtKind::CreateTrigger { table } => r.lock(table, ShareRowExclusive),
        StmtKind::Comment { table: Some(t) } | StmtKind::CreateStatistics { table: Some(t) } => {
            r.lock(t, ShareUpdateExclusive)
        }
        StmtKind::CreateTable {
            partition_of,
            columns,
            constraints,
            ..
        } => {
            if let Some(p) = partition_of {
                r.lock(p, AccessExclusive);
            }
            for c in columns {
                if let Some(fk) = &c.references {
                    r.lock(&fk.table, ShareRowExclusive);
                }
            }
            for (_, c) in constraints {
                if let Constraint::ForeignKey { references, .. } = c {
                    r.lock(&references.table, ShareRowExclusive);
                }
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

fn alter_action(r: &mut LockReport, table: &ObjName, a: &ActionKind, ctx: &FileContext) {
    use LockMode::*;
    match a {
        ActionKind::AddColumn { column, .. } => {
            r.lock(table, AccessExclusive);
            if add_column_rewrites(column, ctx.pg_version, &ctx.catalog).is_some() {
                LockReport::add(&mut r.rewrites, table);
                LockReport::add(&mut r.scans, table);
            }
            if let Some(fk) = &column.references {
                r.lock(&fk.table, ShareRowExclusive);
            }
        }
        ActionKind::SetNotNull { column } => {
            r.lock(table, AccessExclusive);
            if !(ctx.pg_version >= 12 && ctx.has_valid_not_null_check(table, column)) {
                LockReport::add(&mut r.scans, table);
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
                    LockReport::add(&mut r.scans, table);
                    LockReport::add(&mut r.scans, &references.table);
                }
            }
            Constraint::Unique { using_index, .. } | Constraint::PrimaryKey { using_index, .. } => {
                r.lock(table, AccessExclusive);
                if using_index.is_none() {
                    LockReport::add(&mut r.scans, table);
                }
            }
            Constraint::Check { .. } | Constraint::NotNull { .. } => {
                r.lock(table, AccessExclusive);
                if !not_valid {
                    LockReport::add(&mut r.scans, table);
                }
            }
            Constraint::Exclude => {
                r.lock(table, AccessExclusive);
                LockReport::add(&mut r.scans, table);
            }
        },
        ActionKind::ValidateConstraint { name } => {
            r.lock(table, ShareUpdateExclusive);
            LockReport::add(&mut r.scans, table);
            // Validating a foreign key also reads the referenced table under ROW SHARE.
            let fk = ctx.catalog.table(table).and_then(|t| {
                t.foreign_keys
                    .iter()
                    .find(|f| f.name.as_deref() == Some(name.as_str()))
            });
            if let Some(fk) = fk {
                r.lock(&fk.references, RowShare);
                LockReport::add(&mut r.scans, &fk.references);
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
            LockReport::add(&mut r.scans, partition);
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
            r.lock(
                partition,
                AccessExclusive.min(if *concurrently {
                    ShareUpdateExclusive
                } else {
                    AccessExclusive
                }),
            );
        }
        ActionKind::SetTablespace | ActionKind::SetLogged | ActionKind::SetUnlogged => {
            r.lock(table, AccessExclusive);
            LockReport::add(&mut r.rewrites, table);
            LockReport::add(&mut r.scans, table);
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
            let old = ctx
                .catalog
                .table(table)
                .and_then(|t| t.column(column))
                .map(|c| c.data_type.as_str());
            // An unknown old type counts as a rewrite: the prediction errs on the safe side.
            let rewrites =
                super::types::classify(old, new_type, *using, ctx.pg_version).may_rewrite();
            if rewrites {
                LockReport::add(&mut r.rewrites, table);
                LockReport::add(&mut r.scans, table);
            }
            // Foreign keys referencing the column are rebuilt, rewrite or not; after a
            // real conversion they are validated again, which reads the referencing table.
            for t in super::types::referencing_tables(&ctx.catalog, table, column) {
                r.lock(&t, AccessExclusive);
                if rewrites {
                    LockReport::add(&mut r.scans, &t);
                }
            }
        }
        _ => r.lock(table, AccessExclusive),
    }
}
