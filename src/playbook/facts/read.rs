//! Reading the table's facts from the catalog: [`read_table`] reads the table's row, then
//! each fact with a function of its own.

use tokio_postgres::{Client, Row};

use super::{Column, Facts, FactsError, InboundFk, Index, OwnedSequence, View};
use crate::sql::ir::{quote_ident, ObjName};

pub(super) fn db(e: tokio_postgres::Error) -> FactsError {
    FactsError::Db(match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    })
}

/// Rows of a catalog query about the table `oid`.
async fn rows(client: &Client, sql: &str, oid: u32) -> Result<Vec<Row>, FactsError> {
    client.query(sql, &[&oid]).await.map_err(db)
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

/// The table's qualified, quoted name and oid (resolved on the search_path when
/// unqualified), before its facts are read.
pub async fn resolve(client: &Client, table: &ObjName) -> Result<(String, u32), FactsError> {
    let shown = table.to_string();
    let row = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text, c.oid
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = to_regclass($1)",
            &[&shown],
        )
        .await
        .map_err(db)?
        .ok_or(FactsError::NoTable(shown))?;
    let (schema, name): (String, String) = (row.get(0), row.get(1));
    Ok((
        format!("{}.{}", quote_ident(&schema), quote_ident(&name)),
        row.get(2),
    ))
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
    let mut f = relation(client, table, allow_partitioned).await?;
    let oid = f.oid;
    f.columns = columns(client, oid).await?;
    if let Some((name, cols)) = primary_key(client, oid).await? {
        f.pk_name = name;
        f.pk_columns = cols;
    }
    indexes(client, &mut f).await?;
    constraints(client, &mut f).await?;
    f.inbound_fks = inbound_foreign_keys(client, oid).await?;
    views(client, &mut f).await?;
    triggers(client, &mut f).await?;
    policies(client, &mut f).await?;
    publications(client, &mut f).await?;
    f.grants = grants(client, oid).await?;
    f.column_grants = column_grants(client, oid).await?;
    f.sequences = sequences(client, oid).await?;
    Ok(f)
}

/// The table's own row: names, owner, options, size; the facts still to be read are empty.
async fn relation(
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
        oid: row.get(0),
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
    Ok(f)
}

/// The columns, in order.
async fn columns(client: &Client, oid: u32) -> Result<Vec<Column>, FactsError> {
    Ok(rows(
        client,
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                a.attidentity::text, a.attgenerated <> '', pg_get_expr(d.adbin, d.adrelid)
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        oid,
    )
    .await?
    .iter()
    .map(|r| Column {
        name: r.get(0),
        type_sql: r.get(1),
        not_null: r.get(2),
        identity: r.get(3),
        generated: r.get(4),
        default_sql: r.get(5),
    })
    .collect())
}

/// The primary key's name and columns, in key order.
async fn primary_key(
    client: &Client,
    oid: u32,
) -> Result<Option<(String, Vec<String>)>, FactsError> {
    Ok(rows(
        client,
        "SELECT con.conname::text,
                array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)
         FROM pg_constraint con WHERE con.conrelid = $1 AND con.contype = 'p'",
        oid,
    )
    .await?
    .first()
    .map(|r| (r.get(0), r.get(1))))
}

/// The secondary indexes (a definition that cannot be read is a refusal).
async fn indexes(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    let table_sql = f.qualified();
    for r in rows(
        client,
        "SELECT ic.relname::text, i.indisunique, pg_get_indexdef(i.indexrelid),
                array(SELECT a.attname::text FROM unnest(i.indkey) k(n)
                      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n)
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
         WHERE i.indrelid = $1 AND NOT i.indisprimary ORDER BY ic.relname",
        f.oid,
    )
    .await?
    {
        let def: String = r.get(2);
        let marker = format!(" ON {table_sql} ");
        let Some(i) = def.find(&marker) else {
            f.refusals.push(format!(
                "cannot read the definition of index {}",
                quote_ident(&r.get::<_, String>(0))
            ));
            continue;
        };
        f.indexes.push(Index {
            name: r.get(0),
            unique: r.get(1),
            tail: def[i + marker.len() - 1..].to_string(),
            columns: r.get(3),
        });
    }
    Ok(())
}

/// Constraints other than the primary key that indexes do not cover: the table's own
/// foreign keys, and exclusion constraints (refused).
async fn constraints(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    for r in rows(
        client,
        "SELECT conname::text, contype::text, pg_get_constraintdef(oid)
         FROM pg_constraint WHERE conrelid = $1 AND contype IN ('f', 'x')",
        f.oid,
    )
    .await?
    {
        if r.get::<_, String>(1) == "f" {
            f.outbound_fks.push((r.get(0), r.get(2)));
        } else {
            f.refusals.push(format!(
                "exclusion constraint {} cannot be carried over to a partitioned table automatically",
                quote_ident(&r.get::<_, String>(0))
            ));
        }
    }
    Ok(())
}

/// Foreign keys of other tables pointing at the table.
async fn inbound_foreign_keys(client: &Client, oid: u32) -> Result<Vec<InboundFk>, FactsError> {
    let action = |c: &str| match c {
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    };
    Ok(rows(
        client,
        "SELECT con.conname::text, con.conrelid::regclass::text,
                array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
                con.confupdtype::text, con.confdeltype::text, con.confmatchtype::text,
                con.condeferrable, con.condeferred
         FROM pg_constraint con WHERE con.confrelid = $1 AND con.contype = 'f' AND con.conrelid <> $1",
        oid,
    )
    .await?
    .iter()
    .map(|r| {
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
        InboundFk {
            name: r.get(0),
            child: r.get(1),
            child_columns: r.get(2),
            parent_columns: r.get(3),
            actions: actions.join(" "),
        }
    })
    .collect())
}

/// Views that depend on the table (materialized views are refused).
async fn views(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    for r in rows(
        client,
        "SELECT DISTINCT v.oid::regclass::text, v.relkind::text, pg_get_viewdef(v.oid),
                coalesce(v.reloptions, '{}')::text[]
         FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid
         JOIN pg_class v ON v.oid = rw.ev_class
         WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1 AND v.oid <> $1",
        f.oid,
    )
    .await?
    {
        if r.get::<_, String>(1) == "v" {
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
    Ok(())
}

/// User triggers (refused: not carried over).
async fn triggers(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    for r in rows(
        client,
        "SELECT tgname::text FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal
         AND tgname::text NOT LIKE 'lockstep%'",
        f.oid,
    )
    .await?
    {
        f.refusals.push(format!(
            "trigger {} on the table is not carried over; drop it and recreate it on the new table after the swap",
            quote_ident(&r.get::<_, String>(0))
        ));
    }
    Ok(())
}

/// Row-level security policies (refused: not carried over).
async fn policies(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    if !rows(
        client,
        "SELECT 1 FROM pg_policy WHERE polrelid = $1 LIMIT 1",
        f.oid,
    )
    .await?
    .is_empty()
    {
        f.refusals
            .push("the table has row-level security policies, which are not carried over".into());
    }
    Ok(())
}

/// Publications the table is in (refused: logical replication would not follow the swap).
async fn publications(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    if let Some(r) = rows(
        client,
        "SELECT string_agg(p.pubname::text, ', ') FROM pg_publication_rel pr
         JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = $1 HAVING count(*) > 0",
        f.oid,
    )
    .await?
    .first()
    {
        f.refusals.push(format!(
            "the table is in publication(s) {}; logical replication would not follow the swap",
            r.get::<_, String>(0)
        ));
    }
    Ok(())
}

/// Table privileges of roles other than the owner: `PRIVILEGE TO grantee[ WITH GRANT OPTION]`.
async fn grants(client: &Client, oid: u32) -> Result<Vec<String>, FactsError> {
    Ok(rows(
        client,
        "SELECT a.privilege_type::text,
                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                a.is_grantable
         FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.oid = $1 AND a.grantee <> c.relowner
         ORDER BY 2, 1",
        oid,
    )
    .await?
    .iter()
    .map(|r| {
        format!(
            "{} TO {}{}",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            if r.get::<_, bool>(2) { " WITH GRANT OPTION" } else { "" }
        )
    })
    .collect())
}

/// Column privileges (not in relacl): (`SELECT (col)`, `grantee[ WITH GRANT OPTION]`).
async fn column_grants(client: &Client, oid: u32) -> Result<Vec<(String, String)>, FactsError> {
    Ok(rows(
        client,
        "SELECT a.attname::text, x.privilege_type::text,
                CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
                x.is_grantable
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid, aclexplode(a.attacl) x
         WHERE c.oid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND x.grantee <> c.relowner
         ORDER BY 3, 2, 1",
        oid,
    )
    .await?
    .iter()
    .map(|r| {
        (
            format!(
                "{} ({})",
                r.get::<_, String>(1),
                quote_ident(&r.get::<_, String>(0))
            ),
            format!(
                "{}{}",
                r.get::<_, String>(2),
                if r.get::<_, bool>(3) { " WITH GRANT OPTION" } else { "" }
            ),
        )
    })
    .collect())
}

/// Sequences owned by the table's columns (serial and identity).
async fn sequences(client: &Client, oid: u32) -> Result<Vec<OwnedSequence>, FactsError> {
    Ok(rows(
        client,
        "SELECT a.attname::text, s.oid::regclass::text, a.attidentity <> ''
         FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
         JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.refobjid = $1 AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')",
        oid,
    )
    .await?
    .iter()
    .map(|r| OwnedSequence {
        column: r.get(0),
        sequence: r.get(1),
        identity: r.get(2),
    })
    .collect())
}
