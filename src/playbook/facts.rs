//! What lockstep needs to know about the table being converted, read from the catalog once
//! (at the start of a run) and frozen in the state table, so a resumed run uses exactly the
//! same names and statements.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::sql::ir::{quote_ident, ObjName};

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
}

fn db(e: tokio_postgres::Error) -> FactsError {
    FactsError::Db(match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    })
}

/// Which of `names` (relations of the table's schema) exist already, in one query.
pub(crate) async fn taken(
    client: &Client,
    facts: &Facts,
    names: &[String],
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT n FROM unnest($2::text[]) WITH ORDINALITY u(n, i)
             WHERE to_regclass(format('%I.%I', $1::text, n)) IS NOT NULL ORDER BY i",
            &[&facts.schema, &names],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Reads the facts about `table` (resolved on the search_path when unqualified).
pub async fn read(client: &Client, table: &ObjName) -> Result<Facts, FactsError> {
    read_table(client, table, false).await
}

/// The same, accepting a partitioned table when `allow_partitioned`.
pub async fn read_table(
    client: &Client,
    table: &ObjName,
    allow_partitioned: bool,
) -> Result<Facts, FactsError> {
    let shown = table.to_string();
    let row = client
        .query_opt(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
                    pg_get_userbyid(c.relowner)::text, c.relrowsecurity,
                    coalesce(c.reloptions, '{}')::text[], c.reltuples::bigint,
                    pg_total_relation_size(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = to_regclass($1)",
            &[&shown],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| FactsError::NoTable(shown.clone()))?;
    let oid: u32 = row.get(0);
    let relkind: String = row.get(3);
    if relkind != "r" && !(allow_partitioned && relkind == "p") {
        return Err(FactsError::NotOrdinary {
            table: shown,
            relkind,
        });
    }
    let mut f = Facts {
        schema: row.get(1),
        name: row.get(2),
        oid,
        owner: row.get(4),
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
        reloptions: row.get(6),
        refusals: Vec::new(),
        rows_estimate: row.get::<_, i64>(7).max(0),
        total_bytes: row.get(8),
        partitioned: relkind == "p",
    };
    if row.get::<_, bool>(5) {
        f.refusals.push("row-level security is enabled on the table; policies are not carried over (disable it, or convert by hand)".into());
    }
    for r in client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    a.attidentity::text, a.attgenerated <> '', pg_get_expr(d.adbin, d.adrelid)
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        f.columns.push(Column {
            name: r.get(0),
            type_sql: r.get(1),
            not_null: r.get(2),
            identity: r.get(3),
            generated: r.get(4),
            default_sql: r.get(5),
        });
    }
    // Primary key.
    if let Some(r) = client
        .query_opt(
            "SELECT con.conname::text,
                    array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)
             FROM pg_constraint con WHERE con.conrelid = $1 AND con.contype = 'p'",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        f.pk_name = r.get(0);
        f.pk_columns = r.get(1);
    }
    // Secondary indexes.
    let table_sql = f.qualified();
    for r in client
        .query(
            "SELECT ic.relname::text, i.indisunique, pg_get_indexdef(i.indexrelid),
                    array(SELECT a.attname::text FROM unnest(i.indkey) k(n)
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n)
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             WHERE i.indrelid = $1 AND NOT i.indisprimary ORDER BY ic.relname",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        let def: String = r.get(2);
        let marker = format!(" ON {table_sql} ");
        let tail = match def.find(&marker) {
            Some(i) => def[i + marker.len() - 1..].to_string(),
            None => {
                f.refusals.push(format!(
                    "cannot read the definition of index {}",
                    quote_ident(&r.get::<_, String>(0))
                ));
                continue;
            }
        };
        f.indexes.push(Index {
            name: r.get(0),
            unique: r.get(1),
            tail,
            columns: r.get(3),
        });
    }
    // Constraints other than the primary key that indexes do not cover.
    for r in client
        .query(
            "SELECT conname::text, contype::text, pg_get_constraintdef(oid)
             FROM pg_constraint WHERE conrelid = $1 AND contype IN ('f', 'x')",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        let kind: String = r.get(1);
        if kind == "f" {
            f.outbound_fks.push((r.get(0), r.get(2)));
        } else {
            f.refusals.push(format!(
                "exclusion constraint {} cannot be carried over to a partitioned table automatically",
                quote_ident(&r.get::<_, String>(0))
            ));
        }
    }
    // Foreign keys pointing at the table.
    for r in client
        .query(
            "SELECT con.conname::text, con.conrelid::regclass::text,
                    array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                    array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
                    con.confupdtype::text, con.confdeltype::text, con.confmatchtype::text,
                    con.condeferrable, con.condeferred
             FROM pg_constraint con WHERE con.confrelid = $1 AND con.contype = 'f' AND con.conrelid <> $1",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        let action = |c: &str| match c {
            "r" => "RESTRICT",
            "c" => "CASCADE",
            "n" => "SET NULL",
            "d" => "SET DEFAULT",
            _ => "NO ACTION",
        };
        let mut actions = Vec::new();
        if r.get::<_, String>(6) == "f" {
            actions.push("MATCH FULL".to_string());
        }
        actions.push(format!("ON UPDATE {}", action(&r.get::<_, String>(4))));
        actions.push(format!("ON DELETE {}", action(&r.get::<_, String>(5))));
        if r.get::<_, bool>(7) {
            actions.push("DEFERRABLE".into());
            if r.get::<_, bool>(8) {
                actions.push("INITIALLY DEFERRED".into());
            }
        }
        let actions = actions.join(" ");
        f.inbound_fks.push(InboundFk {
            name: r.get(0),
            child: r.get(1),
            child_columns: r.get(2),
            parent_columns: r.get(3),
            actions,
        });
    }
    // Views (and refusals for materialized views) that depend on the table.
    for r in client
        .query(
            "SELECT DISTINCT v.oid::regclass::text, v.relkind::text, pg_get_viewdef(v.oid),
                    coalesce(v.reloptions, '{}')::text[]
             FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid
             JOIN pg_class v ON v.oid = rw.ev_class
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1 AND v.oid <> $1",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        let kind: String = r.get(1);
        if kind == "v" {
            f.views.push(View {
                name: r.get(0),
                definition: r.get(2),
                options: r.get(3),
            });
        } else {
            f.refusals.push(format!(
                "materialized view {} depends on the table; drop it first and recreate it after the conversion",
                r.get::<_, String>(0)
            ));
        }
    }
    // User triggers.
    for r in client
        .query(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal
             AND tgname::text NOT LIKE 'lockstep%'",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        f.refusals.push(format!(
            "trigger {} on the table is not carried over; drop it and recreate it on the new table after the swap",
            quote_ident(&r.get::<_, String>(0))
        ));
    }
    if client
        .query_opt(
            "SELECT 1 FROM pg_policy WHERE polrelid = $1 LIMIT 1",
            &[&oid],
        )
        .await
        .map_err(db)?
        .is_some()
    {
        f.refusals
            .push("the table has row-level security policies, which are not carried over".into());
    }
    if let Some(r) = client
        .query_opt(
            "SELECT string_agg(p.pubname::text, ', ') FROM pg_publication_rel pr
             JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = $1 HAVING count(*) > 0",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        f.refusals.push(format!(
            "the table is in publication(s) {}; logical replication would not follow the swap",
            r.get::<_, String>(0)
        ));
    }
    // Grants (not the owner's own).
    for r in client
        .query(
            "SELECT a.privilege_type::text,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                    a.is_grantable
             FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = $1 AND a.grantee <> c.relowner
             ORDER BY 2, 1",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        let grant_option: bool = r.get(2);
        f.grants.push(format!(
            "{} TO {}{}",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            if grant_option { " WITH GRANT OPTION" } else { "" }
        ));
    }
    // Column privileges (not in relacl).
    for r in client
        .query(
            "SELECT a.attname::text, x.privilege_type::text,
                    CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
                    x.is_grantable
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid, aclexplode(a.attacl) x
             WHERE c.oid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND x.grantee <> c.relowner
             ORDER BY 3, 2, 1",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        let grant_option: bool = r.get(3);
        f.column_grants.push((
            format!(
                "{} ({})",
                r.get::<_, String>(1),
                quote_ident(&r.get::<_, String>(0))
            ),
            format!(
                "{}{}",
                r.get::<_, String>(2),
                if grant_option { " WITH GRANT OPTION" } else { "" }
            ),
        ));
    }
    // Sequences owned by the table's columns (serial and identity).
    for r in client
        .query(
            "SELECT a.attname::text, s.oid::regclass::text, a.attidentity <> ''
             FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.refobjid = $1 AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')",
            &[&oid],
        )
        .await
        .map_err(db)?
    {
        f.sequences.push(OwnedSequence {
            column: r.get(0),
            sequence: r.get(1),
            identity: r.get(2),
        });
    }
    Ok(f)
}
