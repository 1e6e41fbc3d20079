//! `trace --seed-rows N`: generated rows in the tables a traced history creates, so that its
//! later statements meet tables that hold rows, as they do in production. On empty tables
//! PostgreSQL skips work it does on real ones (the referenced-table scan of a new foreign
//! key, the checks of a new constraint), and a trace on empty tables would confirm a model
//! that is wrong for every real database.
//!
//! Tables are filled between transactions, never inside one, so that the rows never show
//! up as locks of a traced statement. A table is filled once, when it is first seen empty
//! outside a transaction; a table created and changed inside one transaction stays empty
//! there, as it is when the migration really runs. Values come from the column types (and
//! from the referenced rows for foreign keys); columns with defaults keep them. A table
//! whose constraints refuse the generated rows stays empty, with the reason in the note.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

/// What seeding did to one table before a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedNote {
    pub table: String,
    /// Rows inserted (0 when it failed).
    pub rows: u64,
    /// Why the table could not be filled.
    pub error: Option<String>,
}

/// Fills the tables of a traced history.
#[derive(Debug, Default)]
pub struct Seeder {
    rows: u32,
    /// Tables that existed before the history (the set-up): never filled.
    before: BTreeSet<i64>,
    /// Tables filled, found holding rows, or refusing generated rows, by oid.
    done: BTreeSet<i64>,
    /// Names of tables to look at again in the next fill.
    recheck: Vec<String>,
}

struct Candidate {
    oid: i64,
    /// Schema-qualified and quoted.
    name: String,
    /// As shown in reports.
    display: String,
}

struct Column {
    name: String,
    /// `format_type` of the column's type.
    ty: String,
    not_null: bool,
    /// Has a default, an identity or is generated: PostgreSQL fills it.
    filled: bool,
    /// The default draws from a sequence (or identity, or generated): never set by hand.
    sequence: bool,
    /// pg_type.typcategory of the (base) type.
    category: String,
    enum_type: bool,
}

struct ForeignKey {
    parent: String,
    columns: Vec<String>,
    parent_columns: Vec<String>,
}

fn quote(s: &str) -> String {
    crate::sql::ir::quote_ident(s)
}

fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

impl Seeder {
    /// Remembers the tables that exist now (the set-up's), which are never filled.
    pub async fn new(client: &Client, rows: u32) -> Result<Seeder, tokio_postgres::Error> {
        let before = candidates(client)
            .await?
            .into_iter()
            .map(|c| c.oid)
            .collect();
        Ok(Seeder {
            rows,
            before,
            done: BTreeSet::new(),
            recheck: Vec::new(),
        })
    }

    /// Forgets that the tables `oids` were filled: rows were deleted, so the next fill
    /// looks at them again.
    pub fn forget(&mut self, oids: impl IntoIterator<Item = i64>) {
        for o in oids {
            self.done.remove(&o);
        }
    }

    /// [`Seeder::forget`] by (current, unqualified) name, for the tables a statement
    /// (`TRUNCATE`, `DELETE`) may have emptied.
    pub fn forget_named(&mut self, names: &[String]) {
        self.recheck.extend(names.iter().cloned());
    }

    /// Fills every table of the history that is empty and not tried before. Runs outside
    /// any transaction block.
    pub async fn fill(&mut self, client: &Client) -> Result<Vec<SeedNote>, tokio_postgres::Error> {
        if self.rows == 0 {
            return Ok(Vec::new());
        }
        let mut todo = Vec::new();
        let recheck = std::mem::take(&mut self.recheck);
        for c in candidates(client).await? {
            if recheck.contains(&c.display) {
                self.done.remove(&c.oid);
            }
            if self.before.contains(&c.oid) || !self.done.insert(c.oid) {
                continue;
            }
            let has_rows: bool = client
                .query_one(&format!("SELECT EXISTS (SELECT FROM {})", c.name), &[])
                .await?
                .get(0);
            if !has_rows {
                todo.push(c);
            }
        }
        if todo.is_empty() {
            return Ok(Vec::new());
        }
        let order = parents_first(client, todo).await?;
        let mut notes = Vec::new();
        let mut filled = Vec::new();
        for c in order {
            let note = self.fill_one(client, &c).await?;
            if note.error.is_none() {
                filled.push(c.name.clone());
            }
            notes.push(note);
        }
        if !filled.is_empty() {
            // Statistics that match the rows: the planner's choices (and so the scans a
            // statement makes) are those of a small table, not of an unknown one.
            client
                .batch_execute(&format!("ANALYZE {}", filled.join(", ")))
                .await?;
        }
        Ok(notes)
    }

    async fn fill_one(
        &self,
        client: &Client,
        c: &Candidate,
    ) -> Result<SeedNote, tokio_postgres::Error> {
        let columns = columns(client, c.oid).await?;
        let fks = foreign_keys(client, c.oid).await?;
        let mut first_error = None;
        // 1: PostgreSQL fills defaulted columns; 2: every column set by hand (a constant
        // default under a unique index repeats); 3: nullable columns left NULL (a CHECK on
        // them refuses the generated values).
        for attempt in 0..3 {
            let sql = insert_sql(c, &columns, &fks, self.rows, attempt);
            match client.execute(&sql, &[]).await {
                Ok(n) => {
                    return Ok(SeedNote {
                        table: c.display.clone(),
                        rows: n,
                        error: None,
                    })
                }
                Err(e) if e.as_db_error().is_some() => {
                    first_error.get_or_insert_with(|| message(&e));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(SeedNote {
            table: c.display.clone(),
            rows: 0,
            error: first_error,
        })
    }
}

/// User tables rows can be inserted into (partitions are filled through their parent).
async fn candidates(client: &Client) -> Result<Vec<Candidate>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.oid::bigint, n.nspname::text, c.relname::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND c.relpersistence <> 't'
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
             ORDER BY c.oid",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let schema: String = r.get(1);
            let name: String = r.get(2);
            Candidate {
                oid: r.get(0),
                name: format!("{}.{}", quote(&schema), quote(&name)),
                display: name,
            }
        })
        .collect())
}

/// Orders tables so that the tables a foreign key references come before it.
async fn parents_first(
    client: &Client,
    todo: Vec<Candidate>,
) -> Result<Vec<Candidate>, tokio_postgres::Error> {
    let oids: Vec<i64> = todo.iter().map(|c| c.oid).collect();
    let rows = client
        .query(
            "SELECT conrelid::bigint, confrelid::bigint FROM pg_constraint
             WHERE contype = 'f' AND conrelid::bigint = ANY($1) AND conrelid <> confrelid",
            &[&oids],
        )
        .await?;
    let mut parents: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for r in rows {
        parents
            .entry(r.get::<_, i64>(0))
            .or_default()
            .insert(r.get(1));
    }
    let mut left = todo;
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let pending: BTreeSet<i64> = left.iter().map(|c| c.oid).collect();
        let (ready, rest): (Vec<Candidate>, Vec<Candidate>) = left.into_iter().partition(|c| {
            parents
                .get(&c.oid)
                .is_none_or(|ps| ps.iter().all(|p| !pending.contains(p)))
        });
        if ready.is_empty() {
            // A cycle of foreign keys: fill in creation order.
            out.extend(rest);
            break;
        }
        out.extend(ready);
        left = rest;
    }
    Ok(out)
}

async fn columns(client: &Client, oid: i64) -> Result<Vec<Column>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
                    a.attidentity <> '' OR a.attgenerated <> ''
                      OR coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false),
                    b.typcategory::text, b.typtype = 'e'
             FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&oid],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            ty: r.get(1),
            not_null: r.get(2),
            filled: r.get(3),
            sequence: r.get(4),
            category: r.get(5),
            enum_type: r.get(6),
        })
        .collect())
}

async fn foreign_keys(client: &Client, oid: i64) -> Result<Vec<ForeignKey>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT format('%I.%I', n.nspname, p.relname),
               ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
               ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
             FROM pg_constraint c JOIN pg_class p ON p.oid = c.confrelid
             JOIN pg_namespace n ON n.oid = p.relnamespace
             WHERE c.conrelid = $1::bigint::oid AND c.contype = 'f'",
            &[&oid],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            parent: r.get(0),
            columns: r.get(1),
            parent_columns: r.get(2),
        })
        .collect())
}

/// A value for row `g` of a column of this type: distinct per row where the type allows,
/// and the same for the same `g` in every table, so that keys generated for a referencing
/// column and for the referenced one meet.
fn value(col: &Column) -> String {
    let ty = &col.ty;
    if col.enum_type {
        return format!(
            "(enum_range(NULL::{ty}))[1 + (g - 1) % array_length(enum_range(NULL::{ty}), 1)]"
        );
    }
    match col.category.as_str() {
        "B" => format!("(g % 2 = 0)::{ty}"),
        "N" => format!("g::{ty}"),
        "S" => format!("g::text::{ty}"),
        "D" => format!("(timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute')::{ty}"),
        "T" => format!("(g * interval '1 second')::{ty}"),
        "I" => format!(
            "('10.' || (g / 65536) % 256 || '.' || (g / 256) % 256 || '.' || g % 256)::{ty}"
        ),
        "A" => format!("'{{}}'::{ty}"),
        "V" => format!("g::bit(32)::{ty}"),
        _ => match ty.as_str() {
            "uuid" => "md5(g::text)::uuid".into(),
            "json" | "jsonb" => format!("'{{}}'::{ty}"),
            "bytea" => "convert_to(g::text, 'UTF8')".into(),
            "tsvector" => "to_tsvector('simple', g::text)".into(),
            _ => format!("g::text::{ty}"),
        },
    }
}

/// The INSERT for one attempt (see [`Seeder::fill_one`]).
fn insert_sql(
    c: &Candidate,
    columns: &[Column],
    fks: &[ForeignKey],
    rows: u32,
    attempt: u8,
) -> String {
    let mut names = Vec::new();
    let mut values = Vec::new();
    for col in columns {
        if col.sequence || (col.filled && attempt != 1) {
            continue;
        }
        let fk = fks.iter().find_map(|f| {
            f.columns
                .iter()
                .position(|x| *x == col.name)
                .and_then(|i| f.parent_columns.get(i).map(|pc| (f, pc)))
        });
        let v = match fk {
            // The referenced table's rows, taken in turn.
            Some((f, pc)) => format!(
                "(SELECT {pc} FROM {p} ORDER BY ctid OFFSET (g - 1) % greatest((SELECT count(*) FROM {p}), 1) LIMIT 1)",
                pc = quote(pc),
                p = f.parent
            ),
            None if attempt == 2 && !col.not_null => continue,
            None => value(col),
        };
        names.push(quote(&col.name));
        values.push(v);
    }
    if names.is_empty() {
        let one = vec!["(DEFAULT)"; rows as usize].join(", ");
        return format!("INSERT INTO {} VALUES {one}", c.name);
    }
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM generate_series(1, {rows}) g",
        c.name,
        names.join(", "),
        values.join(", ")
    )
}
