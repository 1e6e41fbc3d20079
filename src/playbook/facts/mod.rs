//! What lockstep needs to know about the table being converted, read from the catalog once
//! (at the start of a run) and frozen in the state table, so a resumed run uses exactly the
//! same names and statements. `read.rs` reads the table's own facts, one function per fact;
//! `extra.rs` what some kinds need beyond them; `statements.rs` the statements that ran
//! against the table (pg_stat_statements).

use crate::sql::ir::quote_ident;
use serde::{Deserialize, Serialize};

mod extra;
mod read;
mod statements;

pub use extra::*;
pub(crate) use read::taken;
pub use read::{read, read_table, resolve};
pub use statements::{statements, Statements, StatementsError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type` output, e.g. `timestamp with time zone`.
    pub type_sql: String,
    pub not_null: bool,
    /// `a` (ALWAYS) / `d` (BY DEFAULT) / empty.
    pub identity: String,
    /// True for generated (stored) columns: never inserted.
    pub generated: bool,
    pub default_sql: Option<String>,
    /// The collation, when not the type's default (quoted, qualified).
    #[serde(default)]
    pub collation: Option<String>,
    /// `PLAIN`, `EXTERNAL`, `EXTENDED` or `MAIN`, when not the type's default.
    #[serde(default)]
    pub storage: Option<String>,
    /// `pglz` or `lz4`, when set on the column.
    #[serde(default)]
    pub compression: Option<String>,
    /// The per-column statistics target, when set.
    #[serde(default)]
    pub statistics: Option<i32>,
    /// Attribute options (`n_distinct=100`, …).
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The schema of the type's `=` operator when not `pg_catalog` (quoted): functions lockstep
    /// installs compare keys with `OPERATOR(schema.=)` under a pinned search_path.
    #[serde(default)]
    pub eq_schema: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    /// The definition after `ON <table>`: ` USING btree (a, b) WHERE …`.
    pub tail: String,
    /// Column names the index covers (expressions give none).
    pub columns: Vec<String>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The UNIQUE or EXCLUDE constraint the index backs (its name is the index's).
    #[serde(default)]
    pub constraint: Option<Constraint>,
}

/// A constraint as defined (`pg_get_constraintdef`), with its name, validity and comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub name: String,
    /// `CHECK (…)`, `UNIQUE (…) DEFERRABLE`, `EXCLUDE USING gist (…)`, without `NOT VALID`.
    pub definition: String,
    pub validated: bool,
    #[serde(default)]
    pub comment: Option<String>,
}

/// A trigger of the table's own (not a constraint's internal one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    /// `pg_get_triggerdef`: `CREATE TRIGGER … ON schema.table …`.
    pub definition: String,
    /// `O` (origin, the default), `D` (disabled), `R` (replica), `A` (always).
    pub enabled: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// A rule on the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    /// `pg_get_ruledef`: `CREATE RULE … TO schema.table DO …;`.
    pub definition: String,
    /// As for triggers.
    pub enabled: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// A row-level security policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub permissive: bool,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE`, `DELETE`.
    pub command: String,
    /// Quoted role names, or `PUBLIC`.
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub check: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// An extended statistics object on the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    pub schema: String,
    pub name: String,
    /// `pg_get_statisticsobjdef`: `CREATE STATISTICS schema.name (…) ON … FROM schema.table`.
    pub definition: String,
    /// Its statistics target, when set.
    pub target: Option<i32>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// How the table is in a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub name: String,
    /// `FOR ALL TABLES`.
    pub all_tables: bool,
    /// `FOR TABLES IN SCHEMA` the table's schema.
    pub schema: bool,
    /// `FOR TABLE` the table, with its column list and row filter (PostgreSQL 15+).
    pub table: bool,
    pub columns: Vec<String>,
    pub row_filter: Option<String>,
    /// `publish_via_partition_root`.
    pub via_root: bool,
    /// Other partitioned tables the publication publishes.
    pub other_partitioned: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundFk {
    pub name: String,
    /// The referencing table, quoted and qualified.
    pub child: String,
    /// `FOREIGN KEY (…) REFERENCES …(…) …` with the referenced table's name to be replaced.
    pub child_columns: Vec<String>,
    pub parent_columns: Vec<String>,
    /// `ON DELETE …` / `ON UPDATE …` / `MATCH …` clauses as PostgreSQL prints them.
    pub actions: String,
    /// Whether it was validated (one added `NOT VALID` and never validated stays so).
    #[serde(default = "yes")]
    pub validated: bool,
}

fn yes() -> bool {
    true
}

impl InboundFk {
    /// Dropping the key (before its referenced table changes under it).
    pub fn drop_sql(&self) -> String {
        format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
            self.child,
            quote_ident(&self.name)
        )
    }

    /// Adding it again `NOT VALID` (no scan under the lock), referencing `parent`: whatever
    /// table has the name now.
    pub fn add_not_valid_sql(&self, parent: &str) -> String {
        let cols = |c: &[String]| {
            c.iter()
                .map(|x| quote_ident(x))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {parent} ({}) {} NOT VALID",
            self.child,
            quote_ident(&self.name),
            cols(&self.child_columns),
            cols(&self.parent_columns),
            self.actions
        )
    }

    /// Validating it after it was added `NOT VALID`.
    pub fn validate_sql(&self) -> String {
        format!(
            "ALTER TABLE {} VALIDATE CONSTRAINT {}",
            self.child,
            quote_ident(&self.name)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Quoted and qualified.
    pub name: String,
    pub definition: String,
    /// `security_barrier=true`, `check_option=local`, … (`CREATE OR REPLACE VIEW` without
    /// them would drop them).
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedSequence {
    pub column: String,
    /// Quoted and qualified.
    pub sequence: String,
    pub identity: bool,
}

/// The table as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    pub owner: String,
    pub columns: Vec<Column>,
    pub pk_name: String,
    pub pk_columns: Vec<String>,
    pub indexes: Vec<Index>,
    /// `FOREIGN KEY … REFERENCES …` definitions of the table's own FKs.
    pub outbound_fks: Vec<(String, String)>,
    pub inbound_fks: Vec<InboundFk>,
    pub views: Vec<View>,
    pub grants: Vec<String>,
    /// Column privileges: (`SELECT (col)`, `grantee[ WITH GRANT OPTION]`).
    #[serde(default)]
    pub column_grants: Vec<(String, String)>,
    pub sequences: Vec<OwnedSequence>,
    pub reloptions: Vec<String>,
    /// Reasons to refuse, found while reading.
    pub refusals: Vec<String>,
    pub rows_estimate: i64,
    pub total_bytes: i64,
    /// A partitioned table (only the in-place kinds that support it read one).
    #[serde(default)]
    pub partitioned: bool,
    /// `server_version_num`.
    #[serde(default)]
    pub server_version: i32,
    #[serde(default)]
    pub comment: Option<String>,
    /// The primary key's comment.
    #[serde(default)]
    pub pk_comment: Option<String>,
    /// CHECK constraints (not NOT NULL ones).
    #[serde(default)]
    pub checks: Vec<Constraint>,
    /// The table's own foreign keys that are NOT VALID (by name).
    #[serde(default)]
    pub outbound_not_valid: Vec<String>,
    /// The table's own foreign keys' comments (name, comment).
    #[serde(default)]
    pub outbound_comments: Vec<(String, String)>,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Row-level security: enabled, forced.
    #[serde(default)]
    pub rls: (bool, bool),
    #[serde(default)]
    pub policies: Vec<Policy>,
    /// `d` (default: the primary key), `n` (nothing), `f` (full), `i` (an index).
    #[serde(default = "default_identity")]
    pub replica_identity: String,
    /// The index of `REPLICA IDENTITY USING INDEX`.
    #[serde(default)]
    pub replica_index: Option<String>,
    #[serde(default)]
    pub publications: Vec<Publication>,
    #[serde(default)]
    pub statistics: Vec<Statistics>,
    /// Security labels (provider: label), which are not carried over.
    #[serde(default)]
    pub security_labels: Vec<String>,
    /// A tablespace other than the database's default.
    #[serde(default)]
    pub tablespace: Option<String>,
    /// `p` (permanent), `u` (unlogged).
    #[serde(default = "default_persistence")]
    pub persistence: String,
    /// A table access method other than heap.
    #[serde(default)]
    pub access_method: Option<String>,
    /// Inheritance parents or children, the type of a typed table, or the parent of a
    /// partition (reasons a rebuild cannot carry the table over as it is).
    #[serde(default)]
    pub relations: Vec<String>,
    /// Materialized views that depend on the table (quoted, qualified).
    #[serde(default)]
    pub matviews: Vec<String>,
    /// The privileges on the owned sequences, by sequence (`USAGE TO app`).
    #[serde(default)]
    pub sequence_grants: Vec<(String, String)>,
    /// Logical replication slots of the database: (name, output plugin).
    #[serde(default)]
    pub logical_slots: Vec<(String, String)>,
    /// Whether the role reading the facts (the runner) bypasses row-level security: a
    /// superuser, a role with BYPASSRLS, or the owner when security is not forced.
    #[serde(default)]
    pub bypasses_rls: bool,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            schema: String::new(),
            name: String::new(),
            oid: 0,
            owner: String::new(),
            columns: Vec::new(),
            pk_name: String::new(),
            pk_columns: Vec::new(),
            indexes: Vec::new(),
            outbound_fks: Vec::new(),
            inbound_fks: Vec::new(),
            views: Vec::new(),
            grants: Vec::new(),
            column_grants: Vec::new(),
            sequences: Vec::new(),
            reloptions: Vec::new(),
            refusals: Vec::new(),
            rows_estimate: 0,
            total_bytes: 0,
            partitioned: false,
            server_version: 0,
            comment: None,
            pk_comment: None,
            checks: Vec::new(),
            outbound_not_valid: Vec::new(),
            outbound_comments: Vec::new(),
            triggers: Vec::new(),
            rules: Vec::new(),
            rls: (false, false),
            policies: Vec::new(),
            replica_identity: default_identity(),
            replica_index: None,
            publications: Vec::new(),
            statistics: Vec::new(),
            security_labels: Vec::new(),
            tablespace: None,
            persistence: default_persistence(),
            access_method: None,
            relations: Vec::new(),
            matviews: Vec::new(),
            sequence_grants: Vec::new(),
            logical_slots: Vec::new(),
            bypasses_rls: false,
        }
    }
}

fn default_identity() -> String {
    "d".into()
}

fn default_persistence() -> String {
    "p".into()
}

impl Facts {
    /// The table, quoted and qualified.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Columns that are written on insert (not generated), in table order.
    pub fn insert_columns(&self) -> Vec<&Column> {
        self.columns.iter().filter(|c| !c.generated).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("table {0} does not exist (or is not visible on the search_path)")]
    NoTable(String),
    #[error("{table} is not an ordinary table (relkind {relkind}); only ordinary tables can be converted")]
    NotOrdinary { table: String, relkind: String },
    #[error("reading the catalog: {0}")]
    Db(String),
    /// A query of the table's data to plan (the bounds of partitions) failed.
    #[error("{what}: {message}")]
    Data { what: String, message: String },
}

/// A table whose names need quoting, for unit tests: a schema with a space, a capitalised
/// name, a reserved word as a column.
#[cfg(test)]
pub(crate) fn example() -> Facts {
    let col = |n: &str, t: &str| Column {
        name: n.into(),
        type_sql: t.into(),
        not_null: true,
        identity: String::new(),
        generated: false,
        default_sql: None,
        ..Column::default()
    };
    Facts {
        schema: "Sales Data".into(),
        name: "Order".into(),
        oid: 1,
        owner: "app".into(),
        columns: vec![
            col("id", "bigint"),
            col("select", "timestamp with time zone"),
            col("note", "text"),
        ],
        pk_name: "Order_pkey".into(),
        pk_columns: vec!["id".into()],
        indexes: vec![Index {
            name: "order_note".into(),
            unique: false,
            tail: " USING btree (note)".into(),
            columns: vec!["note".into()],
            ..Index::default()
        }],
        outbound_fks: vec![],
        inbound_fks: vec![],
        views: vec![],
        grants: vec!["SELECT TO reader".into()],
        column_grants: vec![],
        sequences: vec![],
        reloptions: vec![],
        refusals: vec![],
        rows_estimate: 0,
        total_bytes: 0,
        partitioned: false,
        server_version: 150_000,
        ..Facts::default()
    }
}
