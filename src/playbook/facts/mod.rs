//! What lockstep needs to know about the table being converted, read from the catalog once
//! (at the start of a run) and frozen in the state table, so a resumed run uses exactly the
//! same names and statements. `read.rs` reads the table's own facts, one function per fact;
//! `extra.rs` what some kinds need beyond them.

use crate::sql::ir::quote_ident;
use serde::{Deserialize, Serialize};

mod extra;
mod read;

pub use extra::*;
pub(crate) use read::taken;
pub use read::{read, read_table, resolve};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    /// The definition after `ON <table>`: ` USING btree (a, b) WHERE …`.
    pub tail: String,
    /// Column names the index covers (expressions give none).
    pub columns: Vec<String>,
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
    }
}
