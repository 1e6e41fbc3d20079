//! Reading the table's facts from the catalog: [`read_table`] reads the table's row, then
//! each fact with a function of its own.

use tokio_postgres::{Client, Row};

use super::{
    Column, Constraint, Facts, FactsError, InboundFk, Index, OwnedSequence, Policy, Publication,
    Rule, Statistics, Trigger, View,
};
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

/// The same, accepting a partitioned table when `allow_partitioned`. The table is found
/// on the caller's search_path; everything else is read in one snapshot with the
/// search_path pinned to `pg_catalog`, so that every definition names its objects with
/// their schemas and means the same whatever search_path runs it later.
pub async fn read_table(
    client: &Client,
    table: &ObjName,
    allow_partitioned: bool,
) -> Result<Facts, FactsError> {
    let (_, oid) = resolve(client, table).await?;
    client
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = pg_catalog",
        )
        .await
        .map_err(db)?;
    let result = read_all(client, table, oid, allow_partitioned).await;
    let end = client
        .batch_execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .await;
    let f = result?;
    end.map_err(db)?;
    Ok(f)
}

async fn read_all(
    client: &Client,
    table: &ObjName,
    oid: u32,
    allow_partitioned: bool,
) -> Result<Facts, FactsError> {
    let mut f = relation(client, table, oid, allow_partitioned).await?;
    let v = f.server_version;
    f.columns = columns(client, oid, v).await?;
    if let Some((name, cols, comment)) = primary_key(client, oid).await? {
        f.pk_name = name;
        f.pk_columns = cols;
        f.pk_comment = comment;
    }
    indexes(client, &mut f).await?;
    constraints(client, &mut f).await?;
    f.inbound_fks = inbound_foreign_keys(client, oid).await?;
    views(client, &mut f).await?;
    f.triggers = triggers(client, oid).await?;
    f.rules = rules(client, oid).await?;
    f.policies = policies(client, oid).await?;
    f.publications = publications(client, oid, v).await?;
    f.statistics = statistics(client, oid, v).await?;
    f.security_labels = security_labels(client, oid).await?;
    f.grants = grants(client, oid).await?;
    f.column_grants = column_grants(client, oid).await?;
    f.sequences = sequences(client, oid).await?;
    f.sequence_grants = sequence_grants(client, oid).await?;
    f.relations = relatives(client, oid).await?;
    (f.logical_slots, f.bypasses_rls) = runner(client, oid).await?;
    Ok(f)
}

/// The planner's row estimate for a whole table (0 when it cannot say).
async fn planner_rows(client: &Client, schema: String, name: String) -> i64 {
    let sql = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM {}.{}",
        quote_ident(&schema),
        quote_ident(&name)
    );
    let Ok(row) = client.query_one(&sql, &[]).await else {
        return 0;
    };
    row.try_get::<_, serde_json::Value>(0)
        .ok()
        .and_then(|v| {
            v.pointer("/0/Plan/Plan Rows")
                .and_then(serde_json::Value::as_f64)
        })
        .map_or(0, |r| r.max(0.0) as i64)
}

/// The table's own row: names, owner, options, size, how it is stored; the facts still to
/// be read are empty.
async fn relation(
    client: &Client,
    table: &ObjName,
    oid: u32,
    allow_partitioned: bool,
) -> Result<Facts, FactsError> {
    let shown = table.to_string();
    let row = client
        .query_opt(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
                    pg_get_userbyid(c.relowner)::text, c.relrowsecurity, c.relforcerowsecurity,
                    coalesce(c.reloptions, '{}')::text[], c.reltuples::bigint,
                    pg_total_relation_size(c.oid), current_setting('server_version_num')::int,
                    obj_description(c.oid, 'pg_class'), c.relreplident::text,
                    (SELECT quote_ident(spcname) FROM pg_tablespace WHERE oid = c.reltablespace),
                    c.relpersistence::text,
                    (SELECT amname::text FROM pg_am WHERE oid = c.relam AND amname <> 'heap'),
                    (SELECT ic.relname::text FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = c.oid AND i.indisreplident)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = $1",
            &[&oid],
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
    Ok(Facts {
        schema: row.get(1),
        name: row.get(2),
        oid: row.get(0),
        owner: row.get(4),
        rls: (row.get(5), row.get(6)),
        reloptions: row.get(7),
        rows_estimate: match row.get::<_, i64>(8) {
            // Never analyzed or vacuumed: ask the planner, which estimates from the size.
            n if n < 0 => planner_rows(client, row.get(1), row.get(2)).await,
            n => n,
        },
        total_bytes: row.get(9),
        server_version: row.get(10),
        comment: row.get(11),
        replica_identity: row.get(12),
        tablespace: row.get(13),
        persistence: row.get(14),
        access_method: row.get(15),
        replica_index: row.get(16),
        partitioned: relkind == "p",
        ..Facts::default()
    })
}

/// The columns, in order, with what a new table must repeat of each.
pub(super) async fn columns(
    client: &Client,
    oid: u32,
    version: i32,
) -> Result<Vec<Column>, FactsError> {
    // Compression is a column property from PostgreSQL 14; a statistics target that was
    // never set is -1 before 17 and NULL from it.
    let compression = if version >= 140_000 {
        "CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                a.attidentity::text, a.attgenerated <> '', pg_get_expr(d.adbin, d.adrelid),
                CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0 THEN
                    (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                     FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                     WHERE co.oid = a.attcollation) END,
                CASE WHEN a.attstorage <> t.typstorage THEN
                    CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                                      WHEN 'm' THEN 'MAIN' WHEN 'x' THEN 'EXTENDED' END END,
                {compression},
                CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::int END,
                coalesce(a.attoptions, '{{}}')::text[],
                col_description(a.attrelid, a.attnum),
                (SELECT quote_ident(n.nspname) FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
                 WHERE o.oprname = '=' AND o.oprleft = coalesce(nullif(t.typbasetype, 0), t.oid)
                   AND o.oprright = o.oprleft AND n.nspname <> 'pg_catalog' LIMIT 1)
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    );
    Ok(rows(client, &sql, oid)
        .await?
        .iter()
        .map(|r| Column {
            name: r.get(0),
            type_sql: r.get(1),
            not_null: r.get(2),
            identity: r.get(3),
            generated: r.get(4),
            default_sql: r.get(5),
            collation: r.get(6),
            storage: r.get(7),
            compression: r.get(8),
            statistics: r.get(9),
            options: r.get(10),
            comment: r.get(11),
            eq_schema: r.get(12),
        })
        .collect())
}

/// The primary key's name, columns (in key order) and comment.
async fn primary_key(
    client: &Client,
    oid: u32,
) -> Result<Option<(String, Vec<String>, Option<String>)>, FactsError> {
    Ok(rows(
        client,
        "SELECT con.conname::text,
                array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                obj_description(con.oid, 'pg_constraint')
         FROM pg_constraint con WHERE con.conrelid = $1 AND con.contype = 'p'",
        oid,
    )
    .await?
    .first()
    .map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// A constraint from a row of (name, definition, validated, comment).
fn constraint(r: &Row, at: usize) -> Constraint {
    let def: String = r.get(at + 1);
    Constraint {
        name: r.get(at),
        definition: def
            .strip_suffix(" NOT VALID")
            .map_or(def.clone(), str::to_string),
        validated: r.get(at + 2),
        comment: r.get(at + 3),
    }
}

/// The secondary indexes, with the UNIQUE or EXCLUDE constraint each backs (a definition
/// that cannot be read is a refusal).
async fn indexes(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    let table_sql = f.qualified();
    for r in rows(
        client,
        "SELECT ic.relname::text, i.indisunique, pg_get_indexdef(i.indexrelid),
                array(SELECT a.attname::text FROM unnest(i.indkey) k(n)
                      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n),
                obj_description(i.indexrelid, 'pg_class'),
                con.conname::text, pg_get_constraintdef(con.oid), con.convalidated,
                obj_description(con.oid, 'pg_constraint')
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
         LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                                    AND con.contype IN ('u', 'x')
         WHERE i.indrelid = $1 AND NOT i.indisprimary ORDER BY ic.relname",
        f.oid,
    )
    .await?
    {
        let def: String = r.get(2);
        // A partitioned table's own index is `ON ONLY` the table.
        let tail = [
            format!(" ON ONLY {table_sql} "),
            format!(" ON {table_sql} "),
        ]
        .iter()
        .find_map(|m| {
            def.find(m.as_str())
                .map(|i| def[i + m.len() - 1..].to_string())
        });
        let Some(tail) = tail else {
            f.refusals.push(format!(
                "cannot read the definition of index {}",
                quote_ident(&r.get::<_, String>(0))
            ));
            continue;
        };
        f.indexes.push(Index {
            name: r.get(0),
            unique: r.get(1),
            tail,
            columns: r.get(3),
            comment: r.get(4),
            constraint: r.get::<_, Option<String>>(5).map(|_| constraint(&r, 5)),
        });
    }
    Ok(())
}

/// CHECK constraints and the table's own foreign keys (with their validity and comments).
async fn constraints(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    for r in rows(
        client,
        "SELECT conname::text, pg_get_constraintdef(oid), convalidated,
                obj_description(oid, 'pg_constraint'), contype::text
         FROM pg_constraint WHERE conrelid = $1 AND contype IN ('c', 'f') ORDER BY conname",
        f.oid,
    )
    .await?
    {
        let c = constraint(&r, 0);
        if r.get::<_, String>(4) == "c" {
            f.checks.push(c);
            continue;
        }
        if !c.validated {
            f.outbound_not_valid.push(c.name.clone());
        }
        if let Some(comment) = &c.comment {
            f.outbound_comments.push((c.name.clone(), comment.clone()));
        }
        f.outbound_fks.push((c.name, c.definition));
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
                con.condeferrable, con.condeferred, con.convalidated
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
            validated: r.get(9),
        }
    })
    .collect())
}

/// Views and materialized views that depend on the table.
async fn views(client: &Client, f: &mut Facts) -> Result<(), FactsError> {
    for r in rows(
        client,
        "SELECT DISTINCT v.oid::regclass::text, v.relkind::text, pg_get_viewdef(v.oid),
                coalesce(v.reloptions, '{}')::text[]
         FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid
         JOIN pg_class v ON v.oid = rw.ev_class
         WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1 AND v.oid <> $1
         ORDER BY 1",
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
            f.matviews.push(r.get(0));
        }
    }
    Ok(())
}

/// The table's own triggers (not the internal ones of constraints, not lockstep's).
async fn triggers(client: &Client, oid: u32) -> Result<Vec<Trigger>, FactsError> {
    Ok(rows(
        client,
        "SELECT tgname::text, pg_get_triggerdef(oid), tgenabled::text,
                obj_description(oid, 'pg_trigger')
         FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal
           AND tgname::text NOT LIKE 'lockstep%' ORDER BY tgname",
        oid,
    )
    .await?
    .iter()
    .map(|r| Trigger {
        name: r.get(0),
        definition: r.get(1),
        enabled: r.get(2),
        comment: r.get(3),
    })
    .collect())
}

/// The table's rules.
async fn rules(client: &Client, oid: u32) -> Result<Vec<Rule>, FactsError> {
    Ok(rows(
        client,
        "SELECT rulename::text, pg_get_ruledef(oid), ev_enabled::text,
                obj_description(oid, 'pg_rewrite')
         FROM pg_rewrite WHERE ev_class = $1 AND rulename <> '_RETURN' ORDER BY rulename",
        oid,
    )
    .await?
    .iter()
    .map(|r| Rule {
        name: r.get(0),
        definition: r.get(1),
        enabled: r.get(2),
        comment: r.get(3),
    })
    .collect())
}

/// Row-level security policies.
async fn policies(client: &Client, oid: u32) -> Result<Vec<Policy>, FactsError> {
    Ok(rows(
        client,
        "SELECT p.polname::text, p.polpermissive,
                CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                              WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                array(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
                      FROM unnest(p.polroles) r ORDER BY 1),
                pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
                obj_description(p.oid, 'pg_policy')
         FROM pg_policy p WHERE p.polrelid = $1 ORDER BY p.polname",
        oid,
    )
    .await?
    .iter()
    .map(|r| Policy {
        name: r.get(0),
        permissive: r.get(1),
        command: r.get(2),
        roles: r.get(3),
        using: r.get(4),
        check: r.get(5),
        comment: r.get(6),
    })
    .collect())
}

/// The publications that publish the table, and how.
async fn publications(
    client: &Client,
    oid: u32,
    version: i32,
) -> Result<Vec<Publication>, FactsError> {
    // Schemas in publications, column lists and row filters exist from PostgreSQL 15.
    let (schema, columns, filter, in_schema) = if version >= 150_000 {
        (
            "EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid AND pn.pnnspid = c.relnamespace)",
            "coalesce((SELECT array(SELECT a.attname::text FROM unnest(pr.prattrs) k(n)
                 JOIN pg_attribute a ON a.attrelid = pr.prrelid AND a.attnum = k.n)
               FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid = c.oid), '{}')",
            "(SELECT pg_get_expr(pr.prqual, pr.prrelid) FROM pg_publication_rel pr
               WHERE pr.prpubid = p.oid AND pr.prrelid = c.oid)",
            "OR EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid AND pn.pnnspid = o.relnamespace)",
        )
    } else {
        ("false", "'{}'::text[]", "NULL::text", "")
    };
    let sql = format!(
        "SELECT p.pubname::text, p.puballtables, {schema},
                EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid = c.oid),
                {columns}, {filter}, p.pubviaroot,
                array(SELECT o.oid::regclass::text FROM pg_class o
                      WHERE o.relkind = 'p' AND NOT o.relispartition AND o.oid <> c.oid
                        AND o.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
                        AND (p.puballtables
                             OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid = o.oid)
                             {in_schema})
                      ORDER BY 1)
         FROM pg_publication p, pg_class c WHERE c.oid = $1
           AND p.pubname NOT LIKE 'lockstep\\_%' ORDER BY p.pubname"
    );
    Ok(rows(client, &sql, oid)
        .await?
        .iter()
        .map(|r| Publication {
            name: r.get(0),
            all_tables: r.get(1),
            schema: r.get(2),
            table: r.get(3),
            columns: r.get(4),
            row_filter: r.get(5),
            via_root: r.get(6),
            other_partitioned: r.get(7),
        })
        .filter(|p| p.all_tables || p.schema || p.table)
        .collect())
}

/// Extended statistics objects on the table.
async fn statistics(
    client: &Client,
    oid: u32,
    version: i32,
) -> Result<Vec<Statistics>, FactsError> {
    let target = if version >= 170_000 {
        "s.stxstattarget::int"
    } else {
        "CASE WHEN s.stxstattarget >= 0 THEN s.stxstattarget::int END"
    };
    let sql = format!(
        "SELECT n.nspname::text, s.stxname::text, pg_get_statisticsobjdef(s.oid), {target},
                obj_description(s.oid, 'pg_statistic_ext')
         FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
         WHERE s.stxrelid = $1 ORDER BY s.stxname"
    );
    Ok(rows(client, &sql, oid)
        .await?
        .iter()
        .map(|r| Statistics {
            schema: r.get(0),
            name: r.get(1),
            definition: r.get(2),
            target: r.get(3),
            comment: r.get(4),
        })
        .collect())
}

/// Security labels on the table and its columns.
async fn security_labels(client: &Client, oid: u32) -> Result<Vec<String>, FactsError> {
    Ok(rows(
        client,
        "SELECT provider || ': ' || label FROM pg_seclabel
         WHERE objoid = $1 AND classoid = 'pg_class'::regclass ORDER BY 1",
        oid,
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// What the table is related to that a rebuild cannot repeat: inheritance parents and
/// children, the type of a typed table, the table a partition belongs to.
async fn relatives(client: &Client, oid: u32) -> Result<Vec<String>, FactsError> {
    Ok(rows(
        client,
        "SELECT 'inherits from ' || inhparent::regclass::text FROM pg_inherits
           WHERE inhrelid = $1
         UNION ALL
         SELECT 'is inherited by ' || i.inhrelid::regclass::text FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhparent WHERE i.inhparent = $1 AND c.relkind <> 'p'
         UNION ALL
         SELECT 'is a table of type ' || reloftype::regtype::text FROM pg_class
           WHERE oid = $1 AND reloftype <> 0
         ORDER BY 1",
        oid,
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
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
         WHERE d.refobjid = $1 AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
         ORDER BY a.attnum",
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

/// Privileges on the sequences owned by the table's columns: (sequence, `PRIVILEGE TO role`).
async fn sequence_grants(client: &Client, oid: u32) -> Result<Vec<(String, String)>, FactsError> {
    Ok(rows(
        client,
        "SELECT s.oid::regclass::text,
                a.privilege_type || ' TO ' ||
                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END ||
                CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
         FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S',
              aclexplode(s.relacl) a
         WHERE d.refobjid = $1 AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
           AND a.grantee <> s.relowner
         ORDER BY 1, 2",
        oid,
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// The logical slots of the database, and whether the connected role bypasses the table's
/// row-level security.
async fn runner(client: &Client, oid: u32) -> Result<(Vec<(String, String)>, bool), FactsError> {
    let slots = client
        .query(
            "SELECT slot_name::text, plugin::text FROM pg_replication_slots
             WHERE slot_type = 'logical' AND database = current_database() ORDER BY 1",
            &[],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let bypass: bool = rows(
        client,
        "SELECT r.rolsuper OR r.rolbypassrls
                OR (NOT c.relforcerowsecurity AND pg_has_role(r.oid, c.relowner, 'USAGE'))
         FROM pg_roles r, pg_class c WHERE r.rolname = current_user AND c.oid = $1",
        oid,
    )
    .await?
    .first()
    .is_some_and(|r| r.get(0));
    Ok((slots, bypass))
}
