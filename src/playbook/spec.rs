//! The playbook file (TOML): what to convert and how.
//!
//! ```toml
//! kind = "partition"
//! table = "public.events"            # schema-qualified or not (then: search_path)
//!
//! [partition]
//! column = "created_at"
//! strategy = "range"                 # range | list | hash
//! interval = "1 month"               # range over a timestamp/date: 1 day, 7 days, 1 month …
//! # interval = 100000                # range over an integer column: the width
//! premake = 3                        # range: future partitions beyond the data
//! default_partition = true           # range/list (default true): a DEFAULT partition for rows
//!                                    # outside every other one
//! naming = "{table}_p{start}"        # {table}, {start}, {n}
//! # [[partition.lists]]              # list: one partition per entry
//! # name = "eu"
//! # values = ["de", "fr"]
//! # modulus = 8                      # hash
//!
//! [backfill]
//! batch_size = 5000                  # rows in the first batch
//! target_batch_ms = 100              # later batches are sized to take about this long
//! max_rows_per_second = 0            # 0: no limit
//! duty_cycle = 0.6                   # share of the time the runner works while the
//!                                    # application is busy: after a batch that took t it
//!                                    # rests t × (1 − d) / d (1: never rest)
//! max_replica_lag = "30s"            # pause the copy while a replica lags more
//! workers = 2                        # partition: connections that copy, build indexes
//!                                    # and verify at once (1 to 16)
//!
//! [swap]
//! lock_timeout = "200ms"
//! attempts = 30
//! backoff = "200ms"                  # doubled after each failure, with jitter
//! max_backoff = "5s"
//!
//! [dependents]
//! views = "recreate"                 # recreate dependent views on the new table | "refuse"
//! foreign_keys = "repoint"           # re-point inbound foreign keys (NOT VALID, then
//!                                    # validated) | "refuse"
//! ```
//!
//! Unknown keys and bad values are errors naming the key path (`backfill.batch_size`).

use std::path::Path;

use serde::Deserialize;

use crate::lint::context::parse_duration_ms;
use crate::sql::ir::ObjName;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    kind: String,
    table: String,
    partition: Option<RawPartition>,
    #[serde(default)]
    backfill: RawBackfill,
    #[serde(default)]
    swap: RawSwap,
    #[serde(default)]
    dependents: RawDependents,
    column_type: Option<RawColumnType>,
    not_null: Option<RawNotNull>,
    foreign_key: Option<RawForeignKey>,
    check: Option<RawCheck>,
    unique: Option<RawKey>,
    primary_key: Option<RawKey>,
    index: Option<RawIndex>,
    reindex: Option<RawIndexRef>,
    drop_index: Option<RawIndexRef>,
    update: Option<RawUpdate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumnType {
    column: String,
    #[serde(rename = "type")]
    new_type: String,
    using: Option<String>,
    reverse_using: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotNull {
    column: String,
    backfill: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForeignKey {
    name: Option<String>,
    columns: Vec<String>,
    references: String,
    referenced_columns: Option<Vec<String>>,
    on_delete: Option<String>,
    on_update: Option<String>,
    create_index: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Option<String>,
    expression: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: Option<String>,
    columns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    name: Option<String>,
    columns: Option<Vec<String>>,
    definition: Option<String>,
    unique: Option<bool>,
    method: Option<String>,
    #[serde(rename = "where")]
    predicate: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndexRef {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpdate {
    set: String,
    #[serde(rename = "where")]
    predicate: Option<String>,
    keep_undo: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependents {
    views: Option<String>,
    foreign_keys: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    column: String,
    strategy: String,
    interval: Option<toml::Value>,
    premake: Option<u32>,
    default_partition: Option<bool>,
    naming: Option<String>,
    lists: Option<Vec<RawList>>,
    modulus: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    name: String,
    values: Vec<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackfill {
    batch_size: Option<u32>,
    target_batch_ms: Option<u64>,
    max_rows_per_second: Option<u64>,
    max_replica_lag: Option<String>,
    duty_cycle: Option<f64>,
    workers: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwap {
    lock_timeout: Option<String>,
    attempts: Option<u32>,
    backoff: Option<String>,
    max_backoff: Option<String>,
}

/// A validated playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub table: ObjName,
    pub partition: PartitionSpec,
    pub backfill: Backfill,
    pub swap: Swap,
    pub dependents: Dependents,
}

/// What to do with objects that depend on the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependents {
    /// Recreate dependent views on the new table at the swap (false: refuse in preflight).
    pub recreate_views: bool,
    /// Re-point inbound foreign keys to the new table (false: refuse in preflight).
    pub repoint_foreign_keys: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSpec {
    pub column: String,
    pub strategy: Strategy,
    pub premake: u32,
    pub default_partition: bool,
    pub naming: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Over a timestamp/date column: a PostgreSQL interval (`1 month`).
    RangeInterval(String),
    /// Over an integer column: the width of each partition.
    RangeWidth(i64),
    List(Vec<ListPartition>),
    Hash(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListPartition {
    pub name: String,
    /// Values as SQL literals.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    pub batch_size: u32,
    pub target_batch_ms: u64,
    pub max_rows_per_second: u64,
    pub max_replica_lag_ms: Option<u64>,
    /// The share of the time the runner works (batches, index builds, verified ranges) while
    /// the application is busy; it rests the rest, leaving the CPU and the disks to the
    /// application.
    pub duty_cycle: f64,
    /// How many connections copy, build indexes and verify at once (partition only). While
    /// the application is busy they share the duty cycle: together they work no more than
    /// one connection would.
    pub workers: u32,
}

/// The most connections a partition run works with.
pub const MAX_WORKERS: u32 = 16;

#[derive(Debug, Clone, PartialEq)]
pub struct Swap {
    pub lock_timeout_ms: u64,
    pub attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
}

/// The default share of the time the runner works while the application is busy. On a
/// machine whose cores the application keeps busy, the runner's one backend takes a core's
/// worth from it: working flat out left the writers of `lockstep demo --bench` 0.66x of
/// their throughput, 0.75 left them 0.69x to 0.73x, 0.6 left them 0.74x to 0.77x.
pub const DEFAULT_DUTY_CYCLE: f64 = 0.6;

impl Default for Backfill {
    fn default() -> Self {
        Backfill {
            batch_size: 5000,
            target_batch_ms: 100,
            max_rows_per_second: 0,
            max_replica_lag_ms: None,
            duty_cycle: DEFAULT_DUTY_CYCLE,
            workers: 2,
        }
    }
}

impl Default for Swap {
    fn default() -> Self {
        Swap {
            lock_timeout_ms: 200,
            attempts: 30,
            backoff_ms: 200,
            max_backoff_ms: 5000,
        }
    }
}

/// Splits `schema.table` (either part may be double-quoted).
pub fn parse_table_name(s: &str) -> Option<ObjName> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.trim().chars().peekable();
    let mut quoted_any = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted_any = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cur.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => cur.push(ch),
                        None => return None,
                    }
                }
            }
            '.' => parts.push(std::mem::take(&mut cur)),
            c if c.is_whitespace() => return None,
            c => cur.extend(c.to_lowercase()),
        }
    }
    parts.push(cur);
    if parts.iter().any(String::is_empty)
        || (parts.len() == 1 && parts[0].is_empty() && !quoted_any)
    {
        return None;
    }
    match parts.as_slice() {
        [name] => Some(ObjName {
            schema: None,
            name: name.clone(),
        }),
        [schema, name] => Some(ObjName {
            schema: Some(schema.clone()),
            name: name.clone(),
        }),
        _ => None,
    }
}

fn literal(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(format!("'{}'", s.replace('\'', "''"))),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads and validates a playbook file.
pub fn load(path: &Path) -> Result<Playbook, SpecError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
        path: shown.clone(),
        message: crate::files::io_message(&e),
    })?;
    parse(&text, &shown)
}

/// Reads and validates a playbook file of any kind.
pub fn load_any(path: &Path) -> Result<AnyPlaybook, SpecError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
        path: shown.clone(),
        message: crate::files::io_message(&e),
    })?;
    parse_any(&text, &shown)
}

/// Parses playbook text; `path` is for messages. Only `kind = "partition"`; see
/// [`parse_any`] for every kind.
pub fn parse(text: &str, path: &str) -> Result<Playbook, SpecError> {
    match parse_any(text, path)? {
        AnyPlaybook::Partition(p) => Ok(p),
        AnyPlaybook::Op(o) => Err(SpecError::Invalid {
            path: path.to_string(),
            key: "kind".into(),
            message: format!("expected `partition` here, found `{}`", o.kind),
        }),
    }
}

/// Every `kind` a playbook can have.
pub const KINDS: [&str; 11] = [
    "partition",
    "column-type",
    "not-null",
    "foreign-key",
    "check",
    "unique",
    "primary-key",
    "index",
    "reindex",
    "drop-index",
    "backfill",
];

/// A playbook of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyPlaybook {
    Partition(Playbook),
    Op(OpPlaybook),
}

/// A playbook of one of the kinds that change a table in place (everything but `partition`).
#[derive(Debug, Clone, PartialEq)]
pub struct OpPlaybook {
    /// The `kind` value, e.g. `not-null`.
    pub kind: String,
    pub table: ObjName,
    pub op: Op,
    pub backfill: Backfill,
    pub swap: Swap,
}

/// What an in-place playbook does.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    ColumnType {
        column: String,
        new_type: String,
        /// An expression over the row's columns giving the new value (default: a cast).
        using: Option<String>,
        /// The way back, for the reverse sync after the swap (default: a cast).
        reverse_using: Option<String>,
    },
    NotNull {
        column: String,
        /// Fill NULLs with this expression first, in batches.
        backfill: Option<String>,
    },
    ForeignKey {
        name: Option<String>,
        columns: Vec<String>,
        references: ObjName,
        /// Empty: the referenced table's primary key.
        referenced_columns: Vec<String>,
        on_delete: Option<String>,
        on_update: Option<String>,
        /// Build an index on the referencing columns first when none covers them.
        create_index: bool,
    },
    Check {
        name: Option<String>,
        expression: String,
    },
    /// `unique` and `primary-key`.
    Key {
        name: Option<String>,
        columns: Vec<String>,
        primary: bool,
    },
    Index {
        name: Option<String>,
        /// What follows `ON table`: ` USING btree (a, b) WHERE …`.
        tail: String,
        unique: bool,
    },
    Reindex {
        name: String,
    },
    DropIndex {
        name: String,
    },
    Backfill {
        set: String,
        predicate: Option<String>,
        /// Keep the old values so `lockstep rollback` can restore them.
        keep_undo: bool,
    },
}

/// Parses playbook text of any kind; `path` is for messages.
pub fn parse_any(text: &str, path: &str) -> Result<AnyPlaybook, SpecError> {
    let raw: Raw = toml::from_str(text).map_err(|e| SpecError::Parse {
        path: path.to_string(),
        message: e.to_string().trim().replace('\n', " ").replace("  ", " "),
    })?;
    let bad = |key: &str, message: String| SpecError::Invalid {
        path: path.to_string(),
        key: key.to_string(),
        message,
    };
    if !KINDS.contains(&raw.kind.as_str()) {
        return Err(bad(
            "kind",
            format!(
                "unknown kind `{}`; expected one of {}",
                raw.kind,
                KINDS.join(", ")
            ),
        ));
    }
    // Each kind has its own section; another kind's section is a mistake.
    let sections: [(&str, &str, bool); 11] = [
        ("partition", "partition", raw.partition.is_some()),
        ("column-type", "column_type", raw.column_type.is_some()),
        ("not-null", "not_null", raw.not_null.is_some()),
        ("foreign-key", "foreign_key", raw.foreign_key.is_some()),
        ("check", "check", raw.check.is_some()),
        ("unique", "unique", raw.unique.is_some()),
        ("primary-key", "primary_key", raw.primary_key.is_some()),
        ("index", "index", raw.index.is_some()),
        ("reindex", "reindex", raw.reindex.is_some()),
        ("drop-index", "drop_index", raw.drop_index.is_some()),
        ("backfill", "update", raw.update.is_some()),
    ];
    for (kind, section, present) in sections {
        if present && kind != raw.kind {
            return Err(bad(
                section,
                format!(
                    "a [{section}] table belongs to kind = \"{kind}\", not `{}`",
                    raw.kind
                ),
            ));
        }
        if !present && kind == raw.kind {
            return Err(bad(
                section,
                format!("kind = \"{kind}\" needs a [{section}] table"),
            ));
        }
    }
    let table = parse_table_name(&raw.table).ok_or_else(|| {
        bad(
            "table",
            format!(
                "expected a table name such as events or app.\"Events\", found `{}`",
                raw.table
            ),
        )
    })?;
    let (backfill, swap) = settings(&raw, path)?;
    if raw.kind == "partition" {
        return parse_partition(raw, table, backfill, swap, path).map(AnyPlaybook::Partition);
    }
    if raw.dependents.views.is_some() || raw.dependents.foreign_keys.is_some() {
        return Err(bad("dependents", "only for kind = \"partition\"".into()));
    }
    if raw.backfill.workers.is_some() {
        return Err(bad(
            "backfill.workers",
            "only for kind = \"partition\": the in-place kinds work with one connection".into(),
        ));
    }
    let nonempty = |key: &str, v: &str| -> Result<String, SpecError> {
        let t = v.trim();
        if t.is_empty() {
            Err(bad(key, "must not be empty".into()))
        } else {
            Ok(t.to_string())
        }
    };
    let columns = |key: &str, v: &[String]| -> Result<Vec<String>, SpecError> {
        if v.is_empty() || v.iter().any(|c| c.is_empty()) {
            return Err(bad(key, "needs at least one column name".into()));
        }
        Ok(v.to_vec())
    };
    let action = |key: &str, v: &Option<String>| -> Result<Option<String>, SpecError> {
        match v.as_deref().map(|a| a.trim().to_ascii_uppercase()) {
            None => Ok(None),
            Some(a)
                if [
                    "NO ACTION",
                    "RESTRICT",
                    "CASCADE",
                    "SET NULL",
                    "SET DEFAULT",
                ]
                .contains(&a.as_str()) =>
            {
                Ok(Some(a))
            }
            Some(a) => Err(bad(
                key,
                format!(
                    "expected no action, restrict, cascade, set null or set default, found `{a}`"
                ),
            )),
        }
    };
    let op = match raw.kind.as_str() {
        "column-type" => {
            let Some(c) = &raw.column_type else {
                return Err(bad("column_type", "this table is required".into()));
            };
            Op::ColumnType {
                column: nonempty("column_type.column", &c.column)?,
                new_type: nonempty("column_type.type", &c.new_type)?,
                using: c
                    .using
                    .as_deref()
                    .map(|u| nonempty("column_type.using", u))
                    .transpose()?,
                reverse_using: c
                    .reverse_using
                    .as_deref()
                    .map(|u| nonempty("column_type.reverse_using", u))
                    .transpose()?,
            }
        }
        "not-null" => {
            let Some(c) = &raw.not_null else {
                return Err(bad("not_null", "this table is required".into()));
            };
            Op::NotNull {
                column: nonempty("not_null.column", &c.column)?,
                backfill: c
                    .backfill
                    .as_deref()
                    .map(|b| nonempty("not_null.backfill", b))
                    .transpose()?,
            }
        }
        "foreign-key" => {
            let Some(c) = &raw.foreign_key else {
                return Err(bad("foreign_key", "this table is required".into()));
            };
            let cols = columns("foreign_key.columns", &c.columns)?;
            let referenced = match &c.referenced_columns {
                None => Vec::new(),
                Some(r) => {
                    let r = columns("foreign_key.referenced_columns", r)?;
                    if r.len() != cols.len() {
                        return Err(bad(
                            "foreign_key.referenced_columns",
                            format!(
                                "names {} column(s) but foreign_key.columns names {}",
                                r.len(),
                                cols.len()
                            ),
                        ));
                    }
                    r
                }
            };
            Op::ForeignKey {
                name: c.name.clone(),
                columns: cols,
                references: parse_table_name(&c.references).ok_or_else(|| {
                    bad(
                        "foreign_key.references",
                        format!("expected a table name, found `{}`", c.references),
                    )
                })?,
                referenced_columns: referenced,
                on_delete: action("foreign_key.on_delete", &c.on_delete)?,
                on_update: action("foreign_key.on_update", &c.on_update)?,
                create_index: c.create_index.unwrap_or(true),
            }
        }
        "check" => {
            let Some(c) = &raw.check else {
                return Err(bad("check", "this table is required".into()));
            };
            Op::Check {
                name: c.name.clone(),
                expression: nonempty("check.expression", &c.expression)?,
            }
        }
        "unique" | "primary-key" => {
            let primary = raw.kind == "primary-key";
            let (c, key) = if primary {
                (raw.primary_key.as_ref(), "primary_key.columns")
            } else {
                (raw.unique.as_ref(), "unique.columns")
            };
            let Some(c) = c else {
                return Err(bad(key, "this table is required".into()));
            };
            Op::Key {
                name: c.name.clone(),
                columns: columns(key, &c.columns)?,
                primary,
            }
        }
        "index" => {
            let Some(c) = &raw.index else {
                return Err(bad("index", "this table is required".into()));
            };
            let method = c.method.clone().unwrap_or_else(|| "btree".into());
            if method.is_empty()
                || !method
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                return Err(bad(
                    "index.method",
                    format!("expected an index method such as btree or gin, found `{method}`"),
                ));
            }
            let body = match (&c.columns, &c.definition) {
                (Some(cols), None) => format!(
                    "({})",
                    columns("index.columns", cols)?
                        .iter()
                        .map(|c| crate::sql::ir::quote_ident(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (None, Some(d)) => {
                    let d = nonempty("index.definition", d)?;
                    if d.starts_with('(') {
                        d
                    } else {
                        format!("({d})")
                    }
                }
                _ => {
                    return Err(bad(
                        "index",
                        "give either columns = [...] or definition = \"(expression, ...)\"".into(),
                    ))
                }
            };
            let predicate = match &c.predicate {
                Some(p) => format!(" WHERE {}", nonempty("index.where", p)?),
                None => String::new(),
            };
            Op::Index {
                name: c.name.clone(),
                tail: format!(" USING {method} {body}{predicate}"),
                unique: c.unique.unwrap_or(false),
            }
        }
        "reindex" => {
            let Some(c) = &raw.reindex else {
                return Err(bad("reindex", "this table is required".into()));
            };
            Op::Reindex {
                name: nonempty("reindex.name", &c.name)?,
            }
        }
        "drop-index" => {
            let Some(c) = &raw.drop_index else {
                return Err(bad("drop_index", "this table is required".into()));
            };
            Op::DropIndex {
                name: nonempty("drop_index.name", &c.name)?,
            }
        }
        _ => {
            let Some(c) = &raw.update else {
                return Err(bad("update", "this table is required".into()));
            };
            Op::Backfill {
                set: nonempty("update.set", &c.set)?,
                predicate: c
                    .predicate
                    .as_deref()
                    .map(|p| nonempty("update.where", p))
                    .transpose()?,
                keep_undo: c.keep_undo.unwrap_or(true),
            }
        }
    };
    Ok(AnyPlaybook::Op(OpPlaybook {
        kind: raw.kind,
        table,
        op,
        backfill,
        swap,
    }))
}

/// The `[backfill]` and `[swap]` settings every kind shares.
fn settings(raw: &Raw, path: &str) -> Result<(Backfill, Swap), SpecError> {
    let bad = |key: &str, message: String| SpecError::Invalid {
        path: path.to_string(),
        key: key.to_string(),
        message,
    };
    let ms = |key: &str, v: &Option<String>, default: u64| -> Result<u64, SpecError> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration_ms(s).ok_or_else(|| {
                bad(
                    key,
                    format!("expected a duration such as \"200ms\" or \"5s\", found `{s}`"),
                )
            }),
        }
    };
    let d = Backfill::default();
    let batch_size = raw.backfill.batch_size.unwrap_or(d.batch_size);
    if batch_size == 0 {
        return Err(bad("backfill.batch_size", "must be at least 1".into()));
    }
    let backfill = Backfill {
        batch_size,
        target_batch_ms: raw.backfill.target_batch_ms.unwrap_or(d.target_batch_ms),
        max_rows_per_second: raw
            .backfill
            .max_rows_per_second
            .unwrap_or(d.max_rows_per_second),
        max_replica_lag_ms: match &raw.backfill.max_replica_lag {
            None => None,
            s => Some(ms("backfill.max_replica_lag", s, 0)?),
        },
        duty_cycle: match raw.backfill.duty_cycle {
            None => d.duty_cycle,
            Some(x) if x > 0.0 && x <= 1.0 => x,
            Some(x) => {
                return Err(bad(
                    "backfill.duty_cycle",
                    format!("must be more than 0 and at most 1 (1: never rest), found {x}"),
                ))
            }
        },
        workers: match raw.backfill.workers {
            None => d.workers,
            Some(n) if (1..=MAX_WORKERS).contains(&n) => n,
            Some(n) => {
                return Err(bad(
                    "backfill.workers",
                    format!("must be from 1 to {MAX_WORKERS}, found {n}"),
                ))
            }
        },
    };
    let sd = Swap::default();
    let swap = Swap {
        lock_timeout_ms: ms(
            "swap.lock_timeout",
            &raw.swap.lock_timeout,
            sd.lock_timeout_ms,
        )?,
        attempts: raw.swap.attempts.unwrap_or(sd.attempts),
        backoff_ms: ms("swap.backoff", &raw.swap.backoff, sd.backoff_ms)?,
        max_backoff_ms: ms("swap.max_backoff", &raw.swap.max_backoff, sd.max_backoff_ms)?,
    };
    if swap.lock_timeout_ms == 0 {
        return Err(bad(
            "swap.lock_timeout",
            "must be above zero: the swap never waits for a lock without a timeout".into(),
        ));
    }
    if swap.attempts == 0 {
        return Err(bad("swap.attempts", "must be at least 1".into()));
    }
    Ok((backfill, swap))
}

fn parse_partition(
    raw: Raw,
    table: ObjName,
    backfill: Backfill,
    swap: Swap,
    path: &str,
) -> Result<Playbook, SpecError> {
    let bad = |key: &str, message: String| SpecError::Invalid {
        path: path.to_string(),
        key: key.to_string(),
        message,
    };
    let p = raw
        .partition
        .ok_or_else(|| bad("partition", "the [partition] table is required".into()))?;
    if p.column.is_empty() {
        return Err(bad("partition.column", "must not be empty".into()));
    }
    let strategy = match p.strategy.as_str() {
        "range" => match &p.interval {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => {
                Strategy::RangeInterval(s.trim().to_string())
            }
            Some(toml::Value::Integer(i)) if *i > 0 => Strategy::RangeWidth(*i),
            Some(_) => {
                return Err(bad(
                    "partition.interval",
                    "expected an interval such as \"1 month\" (timestamp/date column) or a positive width (integer column)".into(),
                ))
            }
            None => {
                return Err(bad(
                    "partition.interval",
                    "required for strategy = \"range\"".into(),
                ))
            }
        },
        "list" => {
            let lists = p.lists.clone().unwrap_or_default();
            if lists.is_empty() {
                return Err(bad(
                    "partition.lists",
                    "strategy = \"list\" needs at least one [[partition.lists]] entry".into(),
                ));
            }
            let mut out = Vec::new();
            for (i, l) in lists.iter().enumerate() {
                let values: Option<Vec<String>> = l.values.iter().map(literal).collect();
                match values {
                    Some(v) if !v.is_empty() && !l.name.is_empty() => out.push(ListPartition {
                        name: l.name.clone(),
                        values: v,
                    }),
                    _ => {
                        return Err(bad(
                            &format!("partition.lists[{i}]"),
                            "needs a name and a non-empty list of string, integer or boolean values".into(),
                        ))
                    }
                }
            }
            Strategy::List(out)
        }
        "hash" => match p.modulus {
            Some(m) if (2..=1024).contains(&m) => Strategy::Hash(m),
            _ => {
                return Err(bad(
                    "partition.modulus",
                    "strategy = \"hash\" needs a modulus from 2 to 1024".into(),
                ))
            }
        },
        other => {
            return Err(bad(
                "partition.strategy",
                format!("expected range, list or hash, found `{other}`"),
            ))
        }
    };
    if p.lists.is_some() && !matches!(strategy, Strategy::List(_)) {
        return Err(bad(
            "partition.lists",
            "only for strategy = \"list\"".into(),
        ));
    }
    if p.modulus.is_some() && !matches!(strategy, Strategy::Hash(_)) {
        return Err(bad(
            "partition.modulus",
            "only for strategy = \"hash\"".into(),
        ));
    }
    let naming = p.naming.unwrap_or_else(|| "{table}_p{start}".to_string());
    if !naming.contains("{start}") && !naming.contains("{n}") {
        return Err(bad(
            "partition.naming",
            "must contain {start} or {n} so partition names differ".into(),
        ));
    }
    // Safer by default: a row outside every partition would make the change capture (and so
    // the application's write) fail.
    let default_partition = p
        .default_partition
        .unwrap_or(!matches!(strategy, Strategy::Hash(_)));
    let choice = |key: &str, v: &Option<String>, yes: &str| -> Result<bool, SpecError> {
        match v.as_deref() {
            None => Ok(true),
            Some(x) if x == yes => Ok(true),
            Some("refuse") => Ok(false),
            Some(x) => Err(bad(
                key,
                format!("expected \"{yes}\" or \"refuse\", found `{x}`"),
            )),
        }
    };
    let dependents = Dependents {
        recreate_views: choice("dependents.views", &raw.dependents.views, "recreate")?,
        repoint_foreign_keys: choice(
            "dependents.foreign_keys",
            &raw.dependents.foreign_keys,
            "repoint",
        )?,
    };
    Ok(Playbook {
        table,
        partition: PartitionSpec {
            column: p.column,
            strategy,
            premake: p.premake.unwrap_or(3),
            default_partition,
            naming,
        },
        backfill,
        swap,
        dependents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
kind = "partition"
table = 'app."Odd Events"'
[partition]
column = "created_at"
strategy = "range"
interval = "1 month"
[backfill]
batch_size = 1000
max_replica_lag = "10s"
[swap]
lock_timeout = "150ms"
"#;

    #[test]
    fn parses_a_playbook_with_defaults() {
        let p = parse(GOOD, "p.toml").unwrap();
        assert_eq!(p.table.schema.as_deref(), Some("app"));
        assert_eq!(p.table.name, "Odd Events");
        assert_eq!(
            p.partition.strategy,
            Strategy::RangeInterval("1 month".into())
        );
        assert_eq!(p.backfill.batch_size, 1000);
        assert_eq!(p.backfill.max_replica_lag_ms, Some(10_000));
        assert_eq!(p.swap.lock_timeout_ms, 150);
        assert_eq!(p.swap.attempts, 30);
        assert_eq!(p.partition.premake, 3);
        assert_eq!(p.backfill.duty_cycle, DEFAULT_DUTY_CYCLE);
        let flat_out = parse(
            &GOOD.replace("batch_size = 1000", "batch_size = 1000\nduty_cycle = 1"),
            "p.toml",
        )
        .unwrap();
        assert_eq!(flat_out.backfill.duty_cycle, 1.0);
        assert_eq!(p.backfill.workers, 2);
        let one = parse(
            &GOOD.replace("batch_size = 1000", "batch_size = 1000\nworkers = 1"),
            "p.toml",
        )
        .unwrap();
        assert_eq!(one.backfill.workers, 1);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                GOOD.replace("batch_size = 1000", "batch_sise = 1000"),
                "batch_sise",
            ),
            (GOOD.replace("\"150ms\"", "\"soon\""), "`swap.lock_timeout`"),
            (
                GOOD.replace("strategy = \"range\"", "strategy = \"tree\""),
                "`partition.strategy`",
            ),
            (
                GOOD.replace("interval = \"1 month\"", "interval = -3"),
                "`partition.interval`",
            ),
            (
                GOOD.replace("kind = \"partition\"", "kind = \"magic\""),
                "`kind`",
            ),
            (GOOD.replace("'app.\"Odd Events\"'", "\"a b\""), "`table`"),
            (
                GOOD.replace("batch_size = 1000", "batch_size = 0"),
                "`backfill.batch_size`",
            ),
            (GOOD.replace("\"150ms\"", "\"0ms\""), "`swap.lock_timeout`"),
            (
                GOOD.replace("batch_size = 1000", "duty_cycle = 0"),
                "`backfill.duty_cycle`",
            ),
            (
                GOOD.replace("batch_size = 1000", "workers = 0"),
                "`backfill.workers`",
            ),
            (
                GOOD.replace("batch_size = 1000", "workers = 17"),
                "`backfill.workers`",
            ),
            (
                GOOD.replace("batch_size = 1000", "duty_cycle = 1.5"),
                "`backfill.duty_cycle`",
            ),
            (
                format!("{GOOD}[dependents]\nviews = \"drop\"\n"),
                "`dependents.views`",
            ),
            (
                format!("{GOOD}[dependents]\ntriggers = \"x\"\n"),
                "triggers",
            ),
        ];
        for (text, key) in cases {
            let e = parse(&text, "p.toml").unwrap_err().to_string();
            assert!(e.starts_with("p.toml: "), "{e}");
            assert!(e.contains(key), "{key} not in: {e}");
        }
    }

    #[test]
    fn list_and_hash() {
        let list = r#"
kind = "partition"
table = "t"
[partition]
column = "region"
strategy = "list"
default_partition = true
[[partition.lists]]
name = "eu"
values = ["de", "f'r"]
"#;
        let p = parse(list, "p").unwrap();
        assert_eq!(
            p.partition.strategy,
            Strategy::List(vec![ListPartition {
                name: "eu".into(),
                values: vec!["'de'".into(), "'f''r'".into()]
            }])
        );
        let hash = "kind = \"partition\"\ntable = \"t\"\n[partition]\ncolumn = \"id\"\nstrategy = \"hash\"\nmodulus = 4\n";
        assert_eq!(
            parse(hash, "p").unwrap().partition.strategy,
            Strategy::Hash(4)
        );
        let bad = hash.replace("modulus = 4", "modulus = 1");
        assert!(parse(&bad, "p")
            .unwrap_err()
            .to_string()
            .contains("partition.modulus"));
    }

    #[test]
    fn table_names() {
        assert_eq!(parse_table_name("Events").unwrap().name, "events");
        let q = parse_table_name("\"Sch\".\"a \"\"b\"\"\"").unwrap();
        assert_eq!(q.schema.as_deref(), Some("Sch"));
        assert_eq!(q.name, "a \"b\"");
        assert!(parse_table_name("a.b.c").is_none());
        assert!(parse_table_name("").is_none());
    }

    #[test]
    fn example_playbooks_parse_and_cover_every_kind() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
        let mut kinds = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                match load_any(&p).unwrap_or_else(|e| panic!("{e}")) {
                    AnyPlaybook::Partition(_) => kinds.insert("partition".to_string()),
                    AnyPlaybook::Op(o) => kinds.insert(o.kind),
                };
            }
        }
        for k in KINDS {
            assert!(kinds.contains(k), "no example playbook of kind {k}");
        }
    }

    #[test]
    fn in_place_kinds_parse() {
        let p = parse_any(
            "kind = \"column-type\"\ntable = 'app.\"Orders\"'\n[column_type]\ncolumn = \"Id\"\ntype = \"bigint\"\n[swap]\nlock_timeout = \"50ms\"\n",
            "p",
        )
        .unwrap();
        let AnyPlaybook::Op(o) = p else { panic!() };
        assert_eq!(o.table.name, "Orders");
        assert_eq!(o.swap.lock_timeout_ms, 50);
        assert_eq!(
            o.op,
            Op::ColumnType {
                column: "Id".into(),
                new_type: "bigint".into(),
                using: None,
                reverse_using: None
            }
        );
        let AnyPlaybook::Op(i) = parse_any(
            "kind = \"index\"\ntable = \"t\"\n[index]\ncolumns = [\"a\", \"B c\"]\nwhere = \"a > 0\"\n",
            "p",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            i.op,
            Op::Index {
                name: None,
                tail: " USING btree (a, \"B c\") WHERE a > 0".into(),
                unique: false
            }
        );
        let AnyPlaybook::Op(b) = parse_any(
            "kind = \"backfill\"\ntable = \"t\"\n[update]\nset = \"x = 1\"\n",
            "p",
        )
        .unwrap() else {
            panic!()
        };
        assert!(matches!(
            b.op,
            Op::Backfill {
                keep_undo: true,
                ..
            }
        ));
    }

    #[test]
    fn in_place_errors_name_the_key() {
        let cases = [
            ("kind = \"not-null\"\ntable = \"t\"\n", "`not_null`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \" \"\n", "`check.expression`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpresion = \"a\"\n", "expresion"),
            ("kind = \"unique\"\ntable = \"t\"\n[unique]\ncolumns = []\n", "`unique.columns`"),
            ("kind = \"index\"\ntable = \"t\"\n[index]\n", "`index`"),
            ("kind = \"index\"\ntable = \"t\"\n[index]\ncolumns = [\"a\"]\nmethod = \"b tree\"\n", "`index.method`"),
            ("kind = \"foreign-key\"\ntable = \"t\"\n[foreign_key]\ncolumns = [\"a\"]\nreferences = \"u\"\non_delete = \"explode\"\n", "`foreign_key.on_delete`"),
            ("kind = \"foreign-key\"\ntable = \"t\"\n[foreign_key]\ncolumns = [\"a\"]\nreferences = \"u\"\nreferenced_columns = [\"x\", \"y\"]\n", "`foreign_key.referenced_columns`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \"a\"\n[not_null]\ncolumn = \"a\"\n", "`not_null`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \"a\"\n[dependents]\nviews = \"refuse\"\n", "`dependents`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \"a\"\n[backfill]\nworkers = 2\n", "`backfill.workers`"),
            ("kind = \"reindex\"\ntable = \"t\"\n[reindex]\nname = \"i\"\n[swap]\nattempts = 0\n", "`swap.attempts`"),
            ("kind = \"upgrade\"\ntable = \"t\"\n", "column-type"),
        ];
        for (text, key) in cases {
            let e = parse_any(text, "p.toml").unwrap_err().to_string();
            assert!(e.starts_with("p.toml: "), "{e}");
            assert!(e.contains(key), "{key} not in: {e}");
        }
    }
}
