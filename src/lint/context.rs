//! Per-file facts the rules consult: transaction state, tables created in this file,
//! whether a lock_timeout is in force, helper CHECK constraints, target version.

use std::collections::HashSet;

use super::catalog::{Catalog, Savepoint};
use super::locks;
use super::LintOptions;
use crate::sql::ir::{ActionKind, ObjName, StmtKind};
use crate::sql::parse::Statement;

/// State of `lock_timeout` as the file has set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockTimeout {
    /// Never set in this file.
    Unset,
    /// Set to this many milliseconds (0 disables the timeout).
    Set(u64),
}

#[derive(Debug, Clone)]
pub struct FileContext {
    pub pg_version: u32,
    /// The session `TimeZone`, when known (`timezone`, or a `SET TIME ZONE` earlier in the
    /// file).
    pub timezone: Option<String>,
    /// The migration tool wraps the whole file in one transaction.
    pub implicit_transaction: bool,
    /// Inside an explicit `BEGIN … COMMIT`.
    pub explicit_transaction: bool,
    /// 1-based line of the `BEGIN` that opened the current explicit transaction.
    pub explicit_begin_line: Option<usize>,
    pub lock_timeout_max_ms: Option<u64>,
    tx_note: Option<super::TxNote>,
    session_timeout: LockTimeout,
    local_timeout: Option<LockTimeout>,
    /// Tables created earlier in this file (empty when the migration runs).
    created: HashSet<String>,
    /// A statement already took a conflicting lock without a lock_timeout.
    pub unguarded_lock_seen: bool,
    /// Schema known from earlier files and earlier statements of this file.
    pub catalog: Catalog,
    /// The schema (a savepoint) and created tables as they were at the explicit `BEGIN`,
    /// restored by a `ROLLBACK`.
    rollback_point: Option<(Savepoint, HashSet<String>)>,
    /// The current transaction: explicit `BEGIN … COMMIT`, the whole file when the tool
    /// wraps it, or else the single statement.
    pub tx: TxState,
    /// In a down section: what the migration's up part created.
    pub up_created: Option<super::undo::Created>,
    /// The `TimeZone` from the options, which `RESET` returns to.
    base_timezone: Option<String>,
    /// Bodies of the functions created in this file, for statements that call them.
    pub local_functions: super::block::LocalFunctions,
    /// Inside the statements of a `DO` block or called function (one transaction).
    block_depth: usize,
}

/// Facts about the transaction the next statement runs in.
#[derive(Debug, Clone, Default)]
pub struct TxState {
    /// An existing table locked ACCESS EXCLUSIVE earlier in this transaction, and the
    /// 1-based line of that statement.
    pub access_exclusive: Option<(ObjName, usize)>,
    /// `(table, constraint)` added `NOT VALID` earlier in this transaction.
    pub not_valid: HashSet<(String, String)>,
    /// Tables changed by DDL earlier in this transaction.
    pub ddl_tables: HashSet<String>,
    /// Statements run so far in this transaction.
    pub statements: usize,
    /// Statements that did work (see [`is_bookkeeping`]) after `access_exclusive` was taken.
    pub after_access_exclusive: usize,
}

/// Transaction control and session settings: statements that do no work on tables and
/// take no time, so they do not prolong a lock held by the transaction.
pub fn is_bookkeeping(kind: &StmtKind) -> bool {
    match kind {
        StmtKind::Begin
        | StmtKind::Commit
        | StmtKind::Rollback
        | StmtKind::Set { .. }
        | StmtKind::Reset { .. } => true,
        StmtKind::Other { what } => {
            what == "SET"
                || what.starts_with("SAVEPOINT")
                || what.starts_with("RELEASE")
                || what.starts_with("ROLLBACK")
        }
        _ => false,
    }
}

fn key(n: &ObjName) -> String {
    n.name.clone()
}

impl FileContext {
    pub fn new(opts: &LintOptions) -> Self {
        Self::with_catalog(opts, Catalog::default())
    }

    pub fn with_catalog(opts: &LintOptions, catalog: Catalog) -> Self {
        FileContext {
            pg_version: opts.pg_version,
            timezone: opts.timezone.clone(),
            implicit_transaction: opts.assume_in_transaction,
            explicit_transaction: false,
            explicit_begin_line: None,
            lock_timeout_max_ms: opts.lock_timeout_max_ms,
            tx_note: opts.tx_note.clone(),
            session_timeout: LockTimeout::Unset,
            local_timeout: None,
            created: HashSet::new(),
            unguarded_lock_seen: false,
            catalog,
            rollback_point: None,
            tx: TxState::default(),
            up_created: opts.up_created.clone(),
            base_timezone: opts.timezone.clone(),
            local_functions: super::block::LocalFunctions::default(),
            block_depth: 0,
        }
    }

    /// Inside a transaction block (explicit, or the whole file is one, or the statements
    /// of one `DO` block).
    pub fn in_transaction(&self) -> bool {
        self.explicit_transaction || self.implicit_transaction || self.block_depth > 0
    }

    /// The statements of a `DO` block (or called function) follow: one transaction.
    pub fn enter_block(&mut self) {
        if self.block_depth == 0 && !self.in_transaction() {
            self.tx = TxState::default();
        }
        self.block_depth += 1;
    }

    /// The block's statements are done; outside a transaction block its `SET LOCAL`s end
    /// with it.
    pub fn leave_block(&mut self) {
        self.block_depth = self.block_depth.saturating_sub(1);
        if !self.in_transaction() {
            self.local_timeout = None;
        }
    }

    /// Why the whole file runs in a transaction, for messages: the framework's reason, or
    /// `` `assume_in_transaction` ``.
    pub fn tx_reason(&self) -> &str {
        self.tx_note
            .as_ref()
            .map_or("`assume_in_transaction`", |n| n.reason.as_str())
    }

    /// Why a statement that cannot run in a transaction must be alone in this file, when
    /// the migration tool requires that (golang-migrate, Prisma, Flyway).
    pub fn alone_reason(&self) -> Option<&'static str> {
        self.tx_note.as_ref().and_then(|n| n.alone)
    }

    /// How to take a statement out of the file's transaction.
    pub fn no_transaction_hint(&self) -> &'static str {
        self.tx_note.as_ref().map_or(
            crate::framework::Framework::Plain.no_transaction_hint(),
            |n| n.hint,
        )
    }

    /// A table created earlier in this file: empty, so building indexes or validating
    /// constraints on it costs nothing.
    pub fn is_new_table(&self, t: &ObjName) -> bool {
        self.created.contains(&key(t))
    }

    /// In a down section, whether dropping `table` undoes the migration's up part, which
    /// created it.
    pub fn undoes_table(&self, table: &ObjName) -> bool {
        self.up_created.as_ref().is_some_and(|c| c.table(table))
    }

    /// In a down section, whether dropping `table.column` undoes the migration's up part.
    pub fn undoes_column(&self, table: &ObjName, column: &str) -> bool {
        self.up_created
            .as_ref()
            .is_some_and(|c| c.column(table, column))
    }

    /// The lock_timeout currently in force.
    pub fn lock_timeout(&self) -> LockTimeout {
        self.local_timeout.unwrap_or(self.session_timeout)
    }

    /// Whether a lock_timeout that actually bounds waiting is in force.
    pub fn has_effective_lock_timeout(&self) -> bool {
        match self.lock_timeout() {
            LockTimeout::Unset | LockTimeout::Set(0) => false,
            LockTimeout::Set(ms) => self.lock_timeout_max_ms.is_none_or(|max| ms <= max),
        }
    }

    /// A validated `CHECK (col IS NOT NULL)` exists on `table.column`.
    pub fn has_valid_not_null_check(&self, table: &ObjName, column: &str) -> bool {
        self.catalog
            .table(table)
            .is_some_and(|t| t.has_valid_not_null_check(column))
    }

    /// The schema after the file: a transaction still open at its end keeps its changes.
    pub fn into_catalog(mut self) -> Catalog {
        if let Some((sp, _)) = self.rollback_point.take() {
            self.catalog.release(sp);
        }
        self.catalog
    }

    /// Updates the context with the effects of `st` (called after the rules ran on it);
    /// `line` is the statement's first line.
    pub fn apply(&mut self, st: &Statement, report: &locks::LockReport, line: usize) {
        if !self.unguarded_lock_seen
            && !self.has_effective_lock_timeout()
            && report
                .locks
                .iter()
                .any(|l| l.mode.blocks_writes() && (l.via_index || !self.is_new_table(&l.table)))
        {
            self.unguarded_lock_seen = true;
        }
        self.track_transaction(st, report, line);
        self.catalog.apply(st);
        match &st.kind {
            StmtKind::Begin => {
                if !self.explicit_transaction {
                    self.explicit_begin_line = Some(line);
                    let sp = self.catalog.savepoint();
                    self.rollback_point = Some((sp, self.created.clone()));
                }
                self.explicit_transaction = true;
            }
            StmtKind::Commit | StmtKind::Rollback => {
                // A ROLLBACK undoes the transaction's schema changes.
                if let Some((sp, created)) = self.rollback_point.take() {
                    if matches!(st.kind, StmtKind::Rollback) && self.explicit_transaction {
                        self.catalog.rollback_to(sp);
                        self.created = created;
                    } else {
                        self.catalog.release(sp);
                    }
                }
                self.explicit_transaction = false;
                self.explicit_begin_line = None;
                self.local_timeout = None;
            }
            StmtKind::Set { name, value, local } if name == "lock_timeout" => {
                let v = parse_duration_ms(value).map_or(LockTimeout::Unset, LockTimeout::Set);
                if *local {
                    if self.in_transaction() {
                        self.local_timeout = Some(v);
                    }
                } else {
                    self.session_timeout = v;
                    if self.local_timeout.is_some() {
                        self.local_timeout = Some(v);
                    }
                }
            }
            StmtKind::Set { name, value, .. } if name == "timezone" => {
                self.timezone = Some(value.trim().to_string());
            }
            StmtKind::Reset { name } if name.as_deref() == Some("timezone") => {
                self.timezone.clone_from(&self.base_timezone);
            }
            StmtKind::Reset { name } if name.as_deref().is_none_or(|n| n == "lock_timeout") => {
                if name.is_none() {
                    self.timezone.clone_from(&self.base_timezone);
                }
                self.session_timeout = LockTimeout::Unset;
                self.local_timeout = None;
            }
            StmtKind::CreateTable { name, .. } => {
                self.created.insert(key(name));
            }
            StmtKind::AlterTable { table, actions } => {
                for a in actions {
                    self.apply_action(table, &a.kind);
                }
            }
            _ => {}
        }
    }

    fn track_transaction(&mut self, st: &Statement, report: &locks::LockReport, line: usize) {
        match &st.kind {
            StmtKind::Begin => {
                // Inside an open transaction block `BEGIN` is ignored (with a warning):
                // the transaction goes on.
                if !self.in_transaction() {
                    self.tx = TxState::default();
                }
                return;
            }
            StmtKind::Commit | StmtKind::Rollback => {
                self.tx = TxState::default();
                return;
            }
            _ => {}
        }
        if !self.in_transaction() {
            // Autocommit: every statement is its own transaction.
            self.tx = TxState::default();
            return;
        }
        self.tx.statements += 1;
        if self.tx.access_exclusive.is_some() && !is_bookkeeping(&st.kind) {
            self.tx.after_access_exclusive += 1;
        }
        if self.tx.access_exclusive.is_none() {
            if let Some(l) = report.locks.iter().find(|l| {
                l.mode == crate::sql::ir::LockMode::AccessExclusive
                    && (l.via_index || !self.is_new_table(&l.table))
            }) {
                self.tx.access_exclusive = Some((l.table.clone(), line));
            }
        }
        match &st.kind {
            StmtKind::AlterTable { table, actions } => {
                self.tx.ddl_tables.insert(key(table));
                for a in actions {
                    if let ActionKind::AddConstraint {
                        name: Some(n),
                        not_valid: true,
                        ..
                    } = &a.kind
                    {
                        self.tx.not_valid.insert((key(table), n.clone()));
                    }
                }
            }
            StmtKind::CreateIndex { table, .. } | StmtKind::CreateTrigger { table, .. } => {
                self.tx.ddl_tables.insert(key(table));
            }
            _ => {}
        }
    }

    fn apply_action(&mut self, table: &ObjName, a: &ActionKind) {
        if let ActionKind::RenameTable { to } = a {
            if self.created.remove(&key(table)) {
                self.created.insert(to.clone());
            }
        }
    }
}

/// `col IS NOT NULL` (optionally parenthesized) → `col`.
pub fn not_null_check_column(expr: &str) -> Option<String> {
    let e = expr.trim();
    let e = e
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(e)
        .trim();
    let upper = e.to_ascii_uppercase();
    let col = upper.strip_suffix(" IS NOT NULL")?;
    let col = &e[..col.len()];
    let col = col.trim();
    if col.starts_with('"') && col.ends_with('"') && col.len() >= 2 {
        return Some(col[1..col.len() - 1].replace("\"\"", "\""));
    }
    (!col.is_empty()
        && col
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$'))
    .then(|| col.to_lowercase())
}

/// Parses a PostgreSQL duration setting into milliseconds: `2s`, `'500ms'`, `1min`, `2000`
/// (bare numbers are milliseconds), `0`. `None` if it cannot be read.
pub fn parse_duration_ms(v: &str) -> Option<u64> {
    let v = v.trim().trim_matches('\'').trim().to_ascii_lowercase();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = num * factor;
    (ms.is_finite() && ms >= 0.0).then(|| ms.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The context before each statement of `src`.
    fn contexts(src: &str, opts: &LintOptions) -> Vec<FileContext> {
        let mut ctx = FileContext::new(opts);
        let mut out = Vec::new();
        for st in crate::lint::prepare(src).statements(src) {
            out.push(ctx.clone());
            let report = locks::predict(&st, &ctx);
            let line = 1 + src[..st.span.start].matches('\n').count();
            ctx.apply(&st, &report, line);
        }
        out.push(ctx);
        out
    }

    #[test]
    fn a_nested_begin_keeps_the_transaction() {
        let src = "SELECT 1;\nBEGIN;\nALTER TABLE orders ADD COLUMN a int;\nSET LOCAL x = 1;\nBEGIN;\nSELECT 1;\nCOMMIT;\nSELECT 2;";
        let c = contexts(src, &LintOptions::default());
        assert_eq!(c[1].explicit_begin_line, None);
        assert_eq!(c[2].explicit_begin_line, Some(2));
        // Before the nested BEGIN (statement 5) and after it.
        assert_eq!(c[4].tx.access_exclusive, Some((ObjName::new("orders"), 3)));
        assert_eq!(c[4].tx.after_access_exclusive, 0, "SET does not count");
        assert_eq!(c[5].tx.access_exclusive, c[4].tx.access_exclusive);
        assert_eq!(c[5].explicit_begin_line, Some(2));
        assert_eq!(c[6].tx.after_access_exclusive, 1);
        // After COMMIT: autocommit again.
        assert_eq!(c[7].explicit_begin_line, None);
        assert!(c[7].tx.access_exclusive.is_none());
    }

    #[test]
    fn bookkeeping_statements() {
        let src = "SET lock_timeout = '1s';\nRESET ALL;\nSAVEPOINT s;\nRELEASE SAVEPOINT s;\nROLLBACK TO SAVEPOINT s;\nSELECT 1;\nUPDATE t SET a = 1;";
        let kinds: Vec<bool> = crate::lint::prepare(src)
            .statements(src)
            .map(|s| is_bookkeeping(&s.kind))
            .collect();
        assert_eq!(kinds, [true, true, true, true, true, false, false]);
    }

    #[test]
    fn rollback_undoes_the_transactions_schema_changes() {
        let rules = |src: &str| -> Vec<&'static str> {
            crate::lint::lint_source(src, &crate::lint::LintOptions::default())
                .diagnostics
                .iter()
                .map(|d| d.rule)
                .collect()
        };
        // Rolled back: `x` does not exist afterwards, so it is not a table new in this file.
        let rolled_back = rules(
            "SET lock_timeout = '1s';\nBEGIN;\nCREATE TABLE x (id int);\nROLLBACK;\nCREATE INDEX i ON x (id);\n",
        );
        assert!(
            rolled_back.contains(&"create-index-non-concurrently"),
            "{rolled_back:?}"
        );
        let committed = rules(
            "SET lock_timeout = '1s';\nBEGIN;\nCREATE TABLE x (id int);\nCOMMIT;\nCREATE INDEX i ON x (id);\n",
        );
        assert!(
            !committed.contains(&"create-index-non-concurrently"),
            "{committed:?}"
        );
        // A helper CHECK added in a rolled-back transaction does not make SET NOT NULL cheap.
        let src = "SET lock_timeout = '1s';\nBEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL);\nROLLBACK;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n";
        assert!(
            rules(src).contains(&"set-not-null-scan"),
            "{:?}",
            rules(src)
        );
        let kept = "SET lock_timeout = '1s';\nBEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL);\nCOMMIT;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n";
        assert!(
            !rules(kept).contains(&"set-not-null-scan"),
            "{:?}",
            rules(kept)
        );
    }
}
