//! The statement model the rules and the lock model work on. Both the sqlparser path and
//! the token-level recognizer produce it, so a rule never cares which one understood a
//! statement.

use std::fmt::{self, Write as _};
use std::ops::Range;

/// A possibly schema-qualified name, as PostgreSQL resolves it (unquoted parts folded to
/// lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjName {
    pub schema: Option<String>,
    pub name: String,
}

impl ObjName {
    pub fn new(name: impl Into<String>) -> Self {
        ObjName {
            schema: None,
            name: name.into(),
        }
    }

    /// True when both name the same object, treating a missing schema as a wildcard.
    pub fn matches(&self, other: &ObjName) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// Quotes an identifier when PostgreSQL needs it to be quoted.
pub fn quote_ident(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing to a String does not fail.
    let _ = write_ident(&mut out, s);
    out
}

/// Writes an identifier, quoted when PostgreSQL needs it to be ([`quote_ident`]).
fn write_ident(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let plain = !s.is_empty()
        && s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'$')
        && !is_reserved(s);
    if plain {
        return out.write_str(s);
    }
    out.write_char('"')?;
    for (i, part) in s.split('"').enumerate() {
        if i > 0 {
            out.write_str("\"\"")?;
        }
        out.write_str(part)?;
    }
    out.write_char('"')
}

/// PostgreSQL's reserved key words (lower case, sorted).
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

fn is_reserved(s: &str) -> bool {
    RESERVED.binary_search(&s).is_ok()
}

impl fmt::Display for ObjName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.schema {
            write_ident(f, s)?;
            f.write_char('.')?;
        }
        write_ident(f, &self.name)
    }
}

/// PostgreSQL's eight table lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ];

    /// The name as `pg_locks.mode` spells it.
    pub fn pg_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// The name as SQL spells it (`ACCESS EXCLUSIVE`).
    pub fn sql_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// Whether two modes conflict (PostgreSQL's conflict table).
    pub fn conflicts_with(self, other: LockMode) -> bool {
        use LockMode::*;
        let c = |a: LockMode, b: LockMode| match a {
            AccessShare => b == AccessExclusive,
            RowShare => matches!(b, Exclusive | AccessExclusive),
            RowExclusive => matches!(b, Share | ShareRowExclusive | Exclusive | AccessExclusive),
            ShareUpdateExclusive => matches!(
                b,
                ShareUpdateExclusive | Share | ShareRowExclusive | Exclusive | AccessExclusive
            ),
            Share => matches!(
                b,
                RowExclusive
                    | ShareUpdateExclusive
                    | ShareRowExclusive
                    | Exclusive
                    | AccessExclusive
            ),
            ShareRowExclusive => !matches!(b, AccessShare | RowShare),
            Exclusive => b != AccessShare,
            AccessExclusive => true,
        };
        c(self, other)
    }

    /// Blocks plain `SELECT`s.
    pub fn blocks_reads(self) -> bool {
        self.conflicts_with(LockMode::AccessShare)
    }

    /// Blocks `INSERT`/`UPDATE`/`DELETE`.
    pub fn blocks_writes(self) -> bool {
        self.conflicts_with(LockMode::RowExclusive)
    }

    /// Parses `ACCESS EXCLUSIVE`-style words (already upper case, space separated).
    pub fn from_sql(words: &str) -> Option<LockMode> {
        LockMode::ALL.into_iter().find(|m| m.sql_name() == words)
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_name())
    }
}

/// A column as declared in `CREATE TABLE` or `ADD COLUMN`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    /// The type as written, normalized to lower case with single spaces (`varchar(20)`).
    pub data_type: String,
    /// The default expression's text, if any.
    pub default: Option<String>,
    pub not_null: bool,
    pub primary_key: bool,
    pub unique: bool,
    pub check: Option<String>,
    pub references: Option<ForeignKeyRef>,
    pub generated: Option<Generated>,
    pub identity: bool,
}

impl ColumnDef {
    /// `smallserial`, `serial`, `bigserial` (and the `serialN` spellings).
    pub fn is_serial(&self) -> bool {
        matches!(
            self.data_type.as_str(),
            "smallserial" | "serial" | "bigserial" | "serial2" | "serial4" | "serial8"
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    Stored,
    /// `GENERATED ALWAYS AS (expr)` without `STORED` (PostgreSQL 18+: virtual).
    Virtual,
}

/// `LIKE source [INCLUDING …]` in `CREATE TABLE`: the new table copies the source's columns
/// (with their NOT NULL), and with the options below more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeSource {
    pub table: ObjName,
    /// `INCLUDING INDEXES` (or `ALL`): its indexes, primary key and unique constraints.
    pub indexes: bool,
    /// `INCLUDING CONSTRAINTS` (or `ALL`): its CHECK constraints.
    pub constraints: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKeyRef {
    pub table: ObjName,
    /// Empty: the referenced table's primary key.
    pub columns: Vec<String>,
    pub on_delete: RefAction,
    pub on_update: RefAction,
    /// A column constraint's name (`col int CONSTRAINT name REFERENCES …`); a table
    /// constraint's name is the constraint's.
    pub name: Option<String>,
}

impl ForeignKeyRef {
    pub fn new(table: ObjName, columns: Vec<String>) -> Self {
        ForeignKeyRef {
            table,
            columns,
            on_delete: RefAction::NoAction,
            on_update: RefAction::NoAction,
            name: None,
        }
    }
}

/// What a foreign key does to referencing rows when a referenced row is deleted or its key
/// changes (`ON DELETE …`/`ON UPDATE …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefAction {
    #[default]
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl RefAction {
    /// The action changes referencing rows (which takes ROW EXCLUSIVE on their table);
    /// the others only check them (ROW SHARE).
    pub fn writes(self) -> bool {
        matches!(
            self,
            RefAction::Cascade | RefAction::SetNull | RefAction::SetDefault
        )
    }
}

/// A table constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    Check {
        expr: String,
    },
    ForeignKey {
        columns: Vec<String>,
        references: ForeignKeyRef,
    },
    Unique {
        columns: Vec<String>,
        using_index: Option<String>,
    },
    PrimaryKey {
        columns: Vec<String>,
        using_index: Option<String>,
    },
    Exclude,
    /// PostgreSQL 18: `CONSTRAINT c NOT NULL col`.
    NotNull {
        column: String,
    },
}

/// One action of an `ALTER TABLE`, with its own span for precise diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Byte span in the file.
    pub span: Range<usize>,
    pub kind: ActionKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    AddColumn {
        column: ColumnDef,
        if_not_exists: bool,
    },
    DropColumn {
        names: Vec<String>,
    },
    AlterColumnType {
        column: String,
        new_type: String,
        using: bool,
    },
    SetNotNull {
        column: String,
    },
    DropNotNull {
        column: String,
    },
    SetDefault {
        column: String,
        expr: String,
    },
    DropDefault {
        column: String,
    },
    AddIdentity {
        column: String,
    },
    /// `SET STATISTICS`, `SET STORAGE`, `SET (attribute_option …)` on a column.
    AlterColumnOther {
        column: String,
    },
    AddConstraint {
        name: Option<String>,
        constraint: Constraint,
        not_valid: bool,
    },
    ValidateConstraint {
        name: String,
    },
    DropConstraint {
        name: String,
    },
    RenameConstraint,
    /// `ALTER CONSTRAINT name [NOT] DEFERRABLE …` (and PostgreSQL 18's `[NOT] ENFORCED`,
    /// `[NO] INHERIT`).
    AlterConstraint {
        name: String,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    RenameTable {
        to: String,
    },
    AttachPartition {
        partition: ObjName,
    },
    DetachPartition {
        partition: ObjName,
        concurrently: bool,
        finalize: bool,
    },
    SetTablespace,
    SetLogged,
    SetUnlogged,
    /// `SET (storage_parameter …)` / `RESET (…)`.
    SetStorageParams,
    RowLevelSecurity,
    /// `ENABLE/DISABLE [REPLICA|ALWAYS] TRIGGER`.
    Trigger,
    ReplicaIdentity,
    OwnerTo,
    Cluster,
    Inherit,
    /// Understood to be an action, but not one the rules model.
    Other(String),
}

/// A function's declared volatility (`VOLATILE` when its definition names none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionVolatility {
    Immutable,
    Stable,
    Volatile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReindexTarget {
    Index,
    Table,
    Schema,
    Database,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    Table,
    View,
    MaterializedView,
    Schema,
    Database,
    Sequence,
    Type,
    Function,
    Other,
}

/// What a statement is, as far as the rules and the lock model care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StmtKind {
    CreateTable {
        name: ObjName,
        partition_of: Option<ObjName>,
        columns: Vec<ColumnDef>,
        constraints: Vec<(Option<String>, Constraint)>,
        /// `LIKE` clauses, in order.
        like: Vec<LikeSource>,
        temporary: bool,
    },
    CreateIndex {
        name: Option<String>,
        table: ObjName,
        unique: bool,
        concurrently: bool,
        if_not_exists: bool,
        only: bool,
        columns: Vec<String>,
    },
    DropIndex {
        names: Vec<ObjName>,
        concurrently: bool,
    },
    AlterIndexAttachPartition,
    AlterTable {
        table: ObjName,
        actions: Vec<Action>,
    },
    Reindex {
        target: ReindexTarget,
        name: ObjName,
        concurrently: bool,
    },
    Cluster {
        table: Option<ObjName>,
    },
    Vacuum {
        full: bool,
        tables: Vec<ObjName>,
    },
    Analyze,
    RefreshMatView {
        name: ObjName,
        concurrently: bool,
    },
    Lock {
        tables: Vec<ObjName>,
        mode: LockMode,
    },
    Truncate {
        tables: Vec<ObjName>,
        cascade: bool,
    },
    Drop {
        kind: DropKind,
        names: Vec<ObjName>,
        cascade: bool,
    },
    Update {
        table: ObjName,
        has_where: bool,
    },
    Delete {
        table: ObjName,
        has_where: bool,
    },
    Insert {
        table: ObjName,
    },
    Query,
    Copy,
    Begin,
    Commit,
    Rollback,
    /// `SET [LOCAL|SESSION] name = value` (value as text, quotes removed).
    Set {
        name: String,
        value: String,
        local: bool,
    },
    /// `RESET name`; `None` for `RESET ALL`.
    Reset {
        name: Option<String>,
    },
    AlterTypeAddValue {
        name: ObjName,
    },
    AlterDomainAddConstraint {
        name: ObjName,
        not_valid: bool,
    },
    AlterSequence {
        name: ObjName,
    },
    CreateDatabase,
    /// `CREATE MATERIALIZED VIEW name AS …` with the tables its query reads.
    CreateMaterializedView {
        name: ObjName,
        sources: Vec<ObjName>,
    },
    CreateTrigger {
        table: ObjName,
        name: String,
        /// The function it executes.
        function: Option<ObjName>,
    },
    /// `DROP TRIGGER [IF EXISTS] name ON table`.
    DropTrigger {
        table: ObjName,
        name: String,
    },
    /// `CREATE [OR REPLACE] VIEW name AS …` (not materialized) with the relations its query
    /// reads.
    CreateView {
        name: ObjName,
        sources: Vec<ObjName>,
    },
    /// `CREATE STATISTICS … FROM table`.
    CreateStatistics {
        table: Option<ObjName>,
    },
    /// `COMMENT ON …`; `table` for comments on a table or one of its columns.
    Comment {
        table: Option<ObjName>,
    },
    Do,
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE name(…) … [IMMUTABLE|STABLE|VOLATILE]`.
    CreateFunction {
        name: ObjName,
        volatility: FunctionVolatility,
        /// `LANGUAGE` (lower case), when written.
        language: Option<String>,
        /// Index in the statement's tokens of the string holding the body (`AS $$ … $$`).
        body: Option<usize>,
    },
    /// Understood, and irrelevant to locking on user tables (CREATE PROCEDURE, GRANT, …).
    Other {
        what: String,
    },
    /// Not understood.
    Unparsed {
        reason: String,
    },
}

impl StmtKind {
    /// The statement's name when PostgreSQL refuses to run it inside a transaction block
    /// (`CREATE INDEX CONCURRENTLY`, `VACUUM` …).
    pub fn cannot_run_in_transaction(&self) -> Option<&'static str> {
        match self {
            StmtKind::CreateIndex {
                concurrently: true, ..
            } => Some("CREATE INDEX CONCURRENTLY"),
            StmtKind::DropIndex {
                concurrently: true, ..
            } => Some("DROP INDEX CONCURRENTLY"),
            StmtKind::Reindex {
                concurrently: true,
                target,
                ..
            } if *target != ReindexTarget::System => Some("REINDEX CONCURRENTLY"),
            StmtKind::Vacuum { .. } => Some("VACUUM"),
            StmtKind::CreateDatabase => Some("CREATE DATABASE"),
            StmtKind::AlterTable { actions, .. }
                if actions.iter().any(|a| {
                    matches!(
                        a.kind,
                        ActionKind::DetachPartition {
                            concurrently: true,
                            ..
                        }
                    )
                }) =>
            {
                Some("DETACH PARTITION … CONCURRENTLY")
            }
            _ => None,
        }
    }
}

/// How a statement was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Parser,
    Recognizer,
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_sorted_for_binary_search() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]));
        for w in RESERVED {
            assert!(is_reserved(w), "{w}");
            assert_eq!(quote_ident(w), format!("\"{w}\""));
        }
        assert!(!is_reserved("users"));
    }

    #[test]
    fn names_are_quoted_as_postgresql_needs() {
        assert_eq!(quote_ident("users"), "users");
        assert_eq!(quote_ident("Users"), "\"Users\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("\""), "\"\"\"\"");
        assert_eq!(quote_ident(""), "\"\"");
        let n = ObjName {
            schema: Some("My".into()),
            name: "t\"x".into(),
        };
        assert_eq!(n.to_string(), "\"My\".\"t\"\"x\"");
        assert_eq!(ObjName::new("order").to_string(), "\"order\"");
    }
}
