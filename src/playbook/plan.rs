//! Pure: playbook + table facts → the names, checks and SQL of every step. No database.

use serde::{Deserialize, Serialize};

use super::facts::{Facts, InboundFk, View};
use super::keyset::Keyset;
use super::spec::{Playbook, Strategy};
use crate::sql::ir::quote_ident;

/// PostgreSQL's identifier limit.
const NAMEDATALEN: usize = 63;

/// `name` cut to fit PostgreSQL's 63 bytes, with a short hash when cut so names stay unique.
pub fn fit(name: &str) -> String {
    if name.len() <= NAMEDATALEN {
        return name.to_string();
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let mut cut = NAMEDATALEN - 9;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{h:08x}", &name[..cut])
}

/// The change log of partition run `run_id` (qualified and quoted).
pub fn log_table(run_id: &str) -> String {
    format!("lockstep.{}", q(&fit(&format!("log_{run_id}"))))
}

/// One partition of the new table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub name: String,
    /// `FOR VALUES FROM ('…') TO ('…')`, `FOR VALUES IN (…)`, `DEFAULT`, …
    pub bound: String,
}

/// Every name a run creates or renames to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub run_id: String,
    /// The new (partitioned) table, until the swap.
    pub shadow: String,
    /// The original table after the swap.
    pub old: String,
    pub shadow_pk: String,
    pub old_pk: String,
    /// Per secondary index: (name on the new parent until the swap, name of the original after).
    pub indexes: Vec<(String, String)>,
    pub forward_fn: String,
    pub reverse_fn: String,
    pub partitions: Vec<Partition>,
}

impl Names {
    pub fn new(facts: &Facts, run_id: &str, partitions: Vec<Partition>) -> Names {
        let shadow = fit(&format!("{}_lockstep_new", facts.name));
        let old = fit(&format!("{}_old", facts.name));
        Names {
            run_id: run_id.to_string(),
            shadow_pk: fit(&format!("{shadow}_pkey")),
            old_pk: fit(&format!("{old}_pkey")),
            indexes: facts
                .indexes
                .iter()
                .enumerate()
                .map(|(i, ix)| {
                    (
                        fit(&format!("{shadow}_{i}_idx")),
                        fit(&format!("{}_old", ix.name)),
                    )
                })
                .collect(),
            forward_fn: fit(&format!("fwd_{run_id}")),
            reverse_fn: fit(&format!("rev_{run_id}")),
            shadow,
            old,
            partitions,
        }
    }
}

/// The three sets of names around the swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The table's own names (what the application uses).
    Live,
    /// `<table>_old` and its renamed indexes.
    Old,
    /// The partitioned copy's names before the swap.
    Shadow,
}

/// One partition's index: its name, the statements that build it (one transaction) and the
/// one that attaches it to the parent's index, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildIndex {
    pub name: String,
    pub build: Vec<String>,
    pub attach: Option<String>,
}

/// One index of the new table: built on each partition, with a statement on the parent
/// before the partitions' builds (`CREATE INDEX … ON ONLY`) or after them (the primary key,
/// which adopts the partitions' keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexJob {
    pub first: Option<String>,
    pub children: Vec<ChildIndex>,
    /// The parent's statement after the builds, and the relation it creates (when that exists,
    /// the statement already ran).
    pub last: Option<(String, String)>,
    /// A unique index other than the primary key: built from a copy that matches the table at
    /// one moment, since the rows of a copy caught up piecemeal may briefly share a value.
    pub unique: bool,
}

/// A frozen plan: the facts and names a run works from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub facts: Facts,
    pub names: Names,
    /// Primary key of the new table: the original key plus the partition column.
    pub key: Vec<String>,
    pub partition_column: String,
    /// `RANGE (col)`, `LIST (col)`, `HASH (col)`.
    pub partition_by: String,
}

fn q(s: &str) -> String {
    quote_ident(s)
}

fn list(cols: &[String]) -> String {
    cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
}

/// Checks that do not need the database beyond the facts; each string is a refusal.
pub fn preflight(pb: &Playbook, facts: &Facts) -> Vec<String> {
    let mut out = facts.refusals.clone();
    if !pb.dependents.recreate_views {
        for v in &facts.views {
            out.push(format!(
                "view {} depends on the table and the playbook says [dependents] views = \"refuse\"",
                v.name
            ));
        }
    }
    if !pb.dependents.repoint_foreign_keys {
        for fk in &facts.inbound_fks {
            out.push(format!(
                "foreign key {} on {} references the table and the playbook says [dependents] foreign_keys = \"refuse\"",
                q(&fk.name),
                fk.child
            ));
        }
    }
    let col = &pb.partition.column;
    match facts.column(col) {
        None => out.push(format!(
            "partition column {} does not exist in {}",
            q(col),
            facts.qualified()
        )),
        Some(c) => {
            if !c.not_null {
                out.push(format!(
                    "partition column {} allows NULL: set it NOT NULL first (see `lockstep explain set-not-null-scan` for the safe way)",
                    q(col)
                ));
            }
            if c.generated {
                out.push(format!("partition column {} is a generated column", q(col)));
            }
            let t = c.type_sql.as_str();
            match &pb.partition.strategy {
                Strategy::RangeInterval(_)
                    if !(t.starts_with("timestamp") || t == "date") =>
                {
                    out.push(format!(
                        "interval = \"…\" needs a timestamp or date column; {} is {t} (use an integer width for integer columns)",
                        q(col)
                    ))
                }
                Strategy::RangeWidth(_)
                    if !matches!(t, "integer" | "bigint" | "smallint") =>
                {
                    out.push(format!(
                        "an integer interval needs an integer column; {} is {t}",
                        q(col)
                    ))
                }
                _ => {}
            }
        }
    }
    if facts.pk_columns.is_empty() {
        out.push(format!(
            "{} has no primary key: the copy and the change capture need one",
            facts.qualified()
        ));
    }
    let key = new_key(facts, col);
    for ix in &facts.indexes {
        if ix.unique && !ix.columns.iter().any(|c| c == col) {
            out.push(format!(
                "unique index {} does not include the partition column {}; PostgreSQL cannot enforce it on a partitioned table",
                q(&ix.name),
                q(col)
            ));
        }
    }
    for fk in &facts.inbound_fks {
        let mut referenced = fk.parent_columns.clone();
        referenced.sort();
        let mut k = key.clone();
        k.sort();
        if referenced != k {
            out.push(format!(
                "foreign key {} on {} references ({}), which is not a unique key of the partitioned table ({}): partition by a column of the key, or drop the foreign key",
                q(&fk.name),
                fk.child,
                list(&fk.parent_columns),
                list(&key)
            ));
        }
    }
    for s in &facts.sequences {
        if s.identity
            && facts
                .column(&s.column)
                .is_some_and(|c| c.identity.is_empty())
        {
            out.push(format!(
                "cannot tell how column {} gets its ids",
                q(&s.column)
            ));
        }
    }
    out
}

/// The new table's key: the original primary key plus the partition column.
pub fn new_key(facts: &Facts, partition_column: &str) -> Vec<String> {
    let mut key = facts.pk_columns.clone();
    if !key.iter().any(|c| c == partition_column) {
        key.push(partition_column.to_string());
    }
    key
}

impl Plan {
    pub fn new(pb: &Playbook, facts: Facts, names: Names) -> Plan {
        let col = pb.partition.column.clone();
        let method = match pb.partition.strategy {
            Strategy::RangeInterval(_) | Strategy::RangeWidth(_) => "RANGE",
            Strategy::List(_) => "LIST",
            Strategy::Hash(_) => "HASH",
        };
        Plan {
            key: new_key(&facts, &col),
            partition_by: format!("{method} ({})", q(&col)),
            partition_column: col,
            facts,
            names,
        }
    }

    fn schema(&self) -> String {
        q(&self.facts.schema)
    }

    /// `schema.name`, quoted.
    pub fn rel(&self, name: &str) -> String {
        format!("{}.{}", self.schema(), q(name))
    }

    pub fn source(&self) -> String {
        self.facts.qualified()
    }

    pub fn shadow(&self) -> String {
        self.rel(&self.names.shadow)
    }

    pub fn old(&self) -> String {
        self.rel(&self.names.old)
    }

    fn cols(&self) -> Vec<String> {
        self.facts
            .insert_columns()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    fn overriding(&self) -> &'static str {
        if self.facts.columns.iter().any(|c| c.identity == "a") {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        }
    }

    /// Creating the partitioned table and its partitions (autovacuum off while copying). No
    /// index yet: the copy is faster without them, and only lockstep writes to the table.
    pub fn shadow_sql(&self) -> Vec<String> {
        let mut out = vec![format!(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS INCLUDING CONSTRAINTS) PARTITION BY {}",
            self.shadow(),
            self.source(),
            self.partition_by
        )];
        for p in &self.names.partitions {
            out.push(format!(
                "CREATE TABLE {} PARTITION OF {} {} WITH (autovacuum_enabled = off)",
                self.rel(&p.name),
                self.shadow(),
                p.bound
            ));
        }
        for (name, def) in &self.facts.outbound_fks {
            out.push(format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {def}",
                self.shadow(),
                q(&fit(&format!("{}_{name}", self.names.shadow)))
            ));
        }
        if !self.facts.owner.is_empty() {
            out.push(format!(
                "ALTER TABLE {} OWNER TO {}",
                self.shadow(),
                q(&self.facts.owner)
            ));
        }
        out
    }

    fn key_match(&self, key: &[String], row: &str) -> String {
        key.iter()
            .map(|k| format!("{} = {row}.{}", q(k), q(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// A trigger function that applies each change of the table it is on to `target`,
    /// identifying rows by `key` (a `TRUNCATE` truncates `target`).
    fn sync_function(&self, name: &str, target: &str, key: &[String]) -> String {
        let cols = self.cols();
        let col_list = list(&cols);
        let new_vals = cols
            .iter()
            .map(|c| format!("NEW.{}", q(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let updates: Vec<String> = cols
            .iter()
            .filter(|c| !key.contains(c))
            .map(|c| format!("{} = EXCLUDED.{}", q(c), q(c)))
            .collect();
        let conflict = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        let same_key = key
            .iter()
            .map(|k| format!("NEW.{0} IS NOT DISTINCT FROM OLD.{0}", q(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let set_new: Vec<String> = cols
            .iter()
            .filter(|c| !key.contains(c))
            .map(|c| format!("{} = NEW.{}", q(c), q(c)))
            .collect();
        let old_match = self.key_match(key, "OLD");
        let ovr = self.overriding();
        let key_list = list(key);
        // An update that keeps the key updates the copy in place (one statement instead of a
        // delete and an insert: the common case, and a fifth less work for the writer).
        // Not with a GENERATED ALWAYS identity column outside the key: UPDATE cannot set it.
        let always = self
            .facts
            .columns
            .iter()
            .any(|c| c.identity == "a" && !key.contains(&c.name));
        let in_place = if set_new.is_empty() || always {
            String::new()
        } else {
            format!(
                "  IF TG_OP = 'UPDATE' AND {same_key} THEN
    UPDATE {target} SET {} WHERE {old_match};
    IF FOUND THEN
      RETURN NULL;
    END IF;
  END IF;
",
                set_new.join(", "),
            )
        };
        format!(
            "CREATE OR REPLACE FUNCTION lockstep.{fname}() RETURNS trigger LANGUAGE plpgsql AS $lockstep$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE {target};
    RETURN NULL;
  END IF;
{in_place}  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM {target} WHERE {old_match};
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO {target} ({col_list}){ovr} VALUES ({new_vals})
      ON CONFLICT ({key_list}) {conflict};
  END IF;
  RETURN NULL;
END
$lockstep$",
            fname = q(name),
        )
    }

    /// The change log: the key of every row the application changes, in the `lockstep` schema.
    pub fn log(&self) -> String {
        log_table(&self.names.run_id)
    }

    /// Change capture: a trigger on the source logs the key of each changed row (the old and
    /// the new key when an update changes it); the runner replays the log later
    /// ([`Plan::replay_sql`]). Logging a key costs the application's writes much less than
    /// applying the change to the partitioned copy in the same transaction, and the copy
    /// needs no index while it is filled. The log is a bare heap: no sequence and no index
    /// to maintain on every write (`sh bench/trigger_overhead.sh`).
    ///
    /// The function runs with its owner's rights (the runner's), so that an application role
    /// allowed to write the table needs no right on the log. It sets no `search_path` (that
    /// cost the writers another 7 % to 19 % of their throughput in two runs of
    /// `sh bench/trigger_overhead.sh`): instead every
    /// name and operator in it is schema-qualified, so the caller's `search_path` cannot
    /// change what it runs.
    pub fn capture_sql(&self) -> Vec<String> {
        let ks = self.keys();
        let log = self.log();
        let cols: Vec<String> = ks
            .columns
            .iter()
            .map(|(c, t)| format!("{} {t} NOT NULL", q(c)))
            .collect();
        let vals = |row: &str| {
            ks.columns
                .iter()
                .map(|(c, _)| format!("{row}.{}", q(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Key columns are NOT NULL. Compared as text: an operator found by search_path could
        // be anyone's; a key that prints differently but compares equal is logged twice,
        // which costs a replay and nothing else.
        let same_key = ks
            .columns
            .iter()
            .map(|(c, _)| {
                format!(
                    "NEW.{0}::pg_catalog.text OPERATOR(pg_catalog.=) OLD.{0}::pg_catalog.text",
                    q(c)
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let key_list = ks.list();
        let fname = q(&self.names.forward_fn);
        vec![
            format!(
                "CREATE TABLE {log} ({}) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)",
                cols.join(", ")
            ),
            format!(
                "CREATE OR REPLACE FUNCTION lockstep.{fname}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $lockstep$
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
    TRUNCATE {shadow}, {log};
    RETURN NULL;
  END IF;
  IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
    INSERT INTO {log} ({key_list}) VALUES ({new});
    RETURN NULL;
  END IF;
  INSERT INTO {log} ({key_list}) VALUES ({old});
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NOT ({same_key}) THEN
    INSERT INTO {log} ({key_list}) VALUES ({new});
  END IF;
  RETURN NULL;
END
$lockstep$",
                shadow = self.shadow(),
                new = vals("NEW"),
                old = vals("OLD"),
            ),
            format!(
                "CREATE TRIGGER lockstep_capture AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION lockstep.{fname}()",
                self.source(),
            ),
            format!(
                "CREATE TRIGGER lockstep_capture_truncate AFTER TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION lockstep.{fname}()",
                self.source(),
            ),
        ]
    }

    /// Replaying the log: the statements of one batch, to run in one `REPEATABLE READ`
    /// transaction (or under the swap's lock), which sees the log and the source at the same
    /// moment, after [`Plan::replay_begin_sql`]. Every logged key's row is deleted from the copy and copied again as
    /// the source has it now (or not, if it is gone); the log entries go. Entries logged
    /// later stay for the next batch, and replaying a key twice does no harm.
    ///
    /// With `bounded`, the batch is the log rows whose `ctid` is in `$1` (a `tid[]` as text,
    /// from [`Plan::replay_batch_sql`]); otherwise every entry the transaction sees.
    pub fn replay_sql(&self, bounded: bool) -> Vec<String> {
        let ks = self.keys();
        let log = self.log();
        let (cond, and) = if bounded {
            (
                " WHERE ctid = ANY ($1::text::tid[])".to_string(),
                " AND l.ctid = ANY ($1::text::tid[])".to_string(),
            )
        } else {
            (String::new(), String::new())
        };
        let keys = ks.list();
        let join = ks
            .columns
            .iter()
            .map(|(c, _)| format!("t.{0} = l.{0}", q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let cols = list(&self.cols());
        vec![
            format!(
                "DELETE FROM {shadow} t USING (SELECT DISTINCT {keys} FROM {log}{cond}) l WHERE {join}",
                shadow = self.shadow()
            ),
            format!(
                "INSERT INTO {shadow} ({cols}){ovr} SELECT {tcols} FROM {src} t WHERE EXISTS (SELECT 1 FROM {log} l WHERE {join}{and})",
                shadow = self.shadow(),
                ovr = self.overriding(),
                tcols = self
                    .cols()
                    .iter()
                    .map(|c| format!("t.{}", q(c)))
                    .collect::<Vec<_>>()
                    .join(", "),
                src = self.source(),
            ),
            format!("DELETE FROM {log}{cond}"),
        ]
    }

    /// The first statements of a replay transaction: the source locked (ACCESS SHARE) before
    /// the log and the copy, in the order a `TRUNCATE` of the source takes its locks (its
    /// trigger truncates the log and the copy), so the two cannot deadlock.
    ///
    /// Then the plan settings of the transaction: a replay looks keys up one by one in the
    /// copy's and the source's primary keys. The log's statistics say little about its size
    /// now (it grows during the copy, then shrinks to a few rows), and a plan made for a
    /// large log (a hash join reading every row of the copy) would read the whole table for
    /// a batch of a few keys.
    pub fn replay_begin_sql(&self) -> String {
        format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
            self.source()
        )
    }

    /// The next replay batch: the `ctid`s of up to `limit` log entries, as a `tid[]` in text
    /// (NULL when the log is empty), and how many.
    pub fn replay_batch_sql(&self, limit: u32) -> String {
        format!(
            "SELECT array_agg(ctid)::text, count(*) FROM (SELECT ctid FROM {} LIMIT {limit}) l",
            self.log()
        )
    }

    /// The reverse function (new table → old table), created before the swap.
    pub fn reverse_function_sql(&self) -> String {
        self.sync_function(&self.names.reverse_fn, &self.old(), &self.facts.pk_columns)
    }

    /// The primary key, for keyset SQL.
    fn keys(&self) -> Keyset {
        Keyset::primary(&self.facts)
    }

    /// The highest key now in the source, as text (the copy's upper bound).
    pub fn max_key_sql(&self) -> String {
        self.keys().max_key_sql(&self.source())
    }

    /// The number of pages of the source (for [`Plan::sample_keys_sql`]).
    pub fn pages_sql(&self) -> String {
        format!(
            "SELECT (pg_relation_size({}::regclass) / current_setting('block_size')::int)::float8",
            lit(&self.source())
        )
    }

    /// A sample of the source's keys up to the upper bound (`$1..$k`), in key order: about
    /// `percent` % of its pages. Where to split the copy and the verification into lanes.
    pub fn sample_keys_sql(&self, percent: f64) -> String {
        self.keys().sample_sql(&self.source(), percent)
    }

    /// The end of the next backfill batch: the last of the next `limit` keys up to the upper
    /// bound, as `text[]` (no row when none is left). Parameters: the upper bound ($1..$k),
    /// then, when `from_start` is false, the high-water key ($k+1..$2k).
    ///
    /// The range is fixed first, from the keys in this statement's snapshot, and its rows are
    /// then copied by [`Plan::batch_sql`]. Taking the last key from the copied rows instead
    /// would be wrong: a row updated meanwhile could come back with a new key, and the
    /// high-water mark would move past rows never copied.
    pub fn batch_end_sql(&self, from_start: bool, limit: u32) -> String {
        let ks = self.keys();
        format!(
            "SELECT {arr} FROM (SELECT {keys} FROM {src} WHERE {cond} ORDER BY {order} LIMIT {limit}) lockstep_bound ORDER BY {desc} LIMIT 1",
            arr = ks.text_array(""),
            keys = ks.list(),
            src = self.source(),
            cond = ks.range_cond(from_start),
            order = ks.order(false),
            desc = ks.order(true),
        )
    }

    /// One backfill batch: copies the rows after the high-water key up to the batch's end,
    /// as this statement's snapshot has them (a change committed later is in the log and
    /// replayed). No row lock and no conflict handling: nothing else writes to the copy.
    /// Parameters: the batch's end ($1..$k), then, when `from_start` is false, the
    /// high-water key ($k+1..$2k). Two plain statements (end, then copy) instead of one with
    /// CTEs: the CTE form materialised every row and was about a fifth slower.
    pub fn batch_sql(&self, from_start: bool) -> String {
        let ks = self.keys();
        let cols = list(&self.cols());
        format!(
            "INSERT INTO {shadow} ({cols}){ovr} SELECT {cols} FROM {src} WHERE {cond}",
            shadow = self.shadow(),
            ovr = self.overriding(),
            src = self.source(),
            cond = ks.range_cond(from_start),
        )
    }

    /// Verification of one key range: count and an order-independent hash of the rows, for
    /// the source and the shadow. Parameters as in [`Plan::batch_sql`] ($1.. upper, then lower
    /// when `from_start` is false).
    ///
    /// With `hash_record`, rows are hashed with `hash_record_extended` (PostgreSQL 14+),
    /// about three times faster than hashing their text form; it fails for a column type
    /// without a hash function (`json`, `point`, …), and the caller then uses the text form.
    ///
    /// Rows whose key is in the log are left out on both sides: in one snapshot, the copy
    /// differs from the source exactly there, until the replay. Runs in a `REPEATABLE READ`
    /// transaction.
    pub fn verify_sql(&self, from_start: bool, hash_record: bool) -> String {
        let cols = list(
            &self
                .facts
                .columns
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
        );
        let cond = self.keys().range_cond(from_start);
        let hash = if hash_record {
            format!("hash_record_extended(ROW({cols}), 0)")
        } else {
            format!("hashtextextended(ROW({cols})::text, 0)")
        };
        // The sum of bigints is exact (a numeric, added up in 128 bits), and a fifth faster
        // than adding up numerics.
        let agg = format!("count(*)::bigint, coalesce(sum({hash}), 0)::text");
        let pending = self.not_logged();
        format!(
            "SELECT * FROM (SELECT {agg} FROM {src} t WHERE {cond} AND {pending}) s, (SELECT {agg} FROM {shadow} t WHERE {cond} AND {pending}) n",
            src = self.source(),
            shadow = self.shadow(),
        )
    }

    /// `NOT EXISTS` a log entry for the row `t`.
    fn not_logged(&self) -> String {
        let join = self
            .keys()
            .columns
            .iter()
            .map(|(c, _)| format!("l.{0} = t.{0}", q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!("NOT EXISTS (SELECT 1 FROM {} l WHERE {join})", self.log())
    }

    /// Re-copies one key range (after a verification mismatch), in one `REPEATABLE READ`
    /// transaction.
    pub fn recopy_sql(&self, from_start: bool) -> Vec<String> {
        let cond = self.keys().range_cond(from_start);
        let cols = list(&self.cols());
        vec![
            format!("DELETE FROM {} WHERE {cond}", self.shadow()),
            format!(
                "INSERT INTO {} ({cols}){} SELECT {cols} FROM {} WHERE {cond}",
                self.shadow(),
                self.overriding(),
                self.source()
            ),
        ]
    }

    /// The key `chunk` rows after the lower bound (or from the start), up to the upper bound:
    /// the end of the next verified range (no row when fewer are left). Parameters as in
    /// [`Plan::verify_sql`].
    pub fn chunk_end_sql(&self, from_start: bool, chunk: u32) -> String {
        let ks = self.keys();
        format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {} OFFSET {} LIMIT 1",
            ks.text_array(""),
            self.source(),
            ks.range_cond(from_start),
            ks.order(false),
            chunk.saturating_sub(1)
        )
    }

    /// The indexes of the new table, primary key first, each built on every partition. The
    /// builds are plain `CREATE INDEX`: only lockstep writes to the copy, so the SHARE lock
    /// holds nobody up, and a plain build reads the partition once where a concurrent one reads
    /// it twice and waits for older transactions. A build is one transaction: a killed one
    /// leaves nothing behind.
    pub fn index_sql(&self) -> Vec<IndexJob> {
        let key = list(&self.key);
        let pk = IndexJob {
            first: None,
            children: self
                .names
                .partitions
                .iter()
                .map(|p| {
                    let name = fit(&format!("{}_pkey", p.name));
                    let part = self.rel(&p.name);
                    ChildIndex {
                        build: vec![
                            format!("CREATE UNIQUE INDEX {} ON {part} ({key})", q(&name)),
                            format!(
                                "ALTER TABLE {part} ADD CONSTRAINT {0} PRIMARY KEY USING INDEX {0}",
                                q(&name)
                            ),
                        ],
                        name,
                        attach: None,
                    }
                })
                .collect(),
            // Adopts the partitions' primary keys instead of building new indexes.
            last: Some((
                format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({key})",
                    self.shadow(),
                    q(&self.names.shadow_pk)
                ),
                self.rel(&self.names.shadow_pk),
            )),
            unique: false,
        };
        let secondary = self
            .facts
            .indexes
            .iter()
            .zip(&self.names.indexes)
            .enumerate()
            .map(|(i, (ix, (parent, _)))| {
                let unique = if ix.unique { "UNIQUE " } else { "" };
                IndexJob {
                    first: Some(format!(
                        "CREATE {unique}INDEX IF NOT EXISTS {} ON ONLY {}{}",
                        q(parent),
                        self.shadow(),
                        ix.tail
                    )),
                    children: self
                        .names
                        .partitions
                        .iter()
                        .map(|p| {
                            let name = fit(&format!("{}_{i}_idx", p.name));
                            ChildIndex {
                                build: vec![format!(
                                    "CREATE {unique}INDEX {} ON {}{}",
                                    q(&name),
                                    self.rel(&p.name),
                                    ix.tail
                                )],
                                attach: Some(format!(
                                    "ALTER INDEX {} ATTACH PARTITION {}",
                                    self.rel(parent),
                                    self.rel(&name)
                                )),
                                name,
                            }
                        })
                        .collect(),
                    last: None,
                    unique: ix.unique,
                }
            });
        std::iter::once(pk).chain(secondary).collect()
    }

    /// Autovacuum back on for the partitions, and the original storage parameters: in the
    /// swap. Earlier, autovacuum would vacuum every freshly filled partition while the
    /// runner builds, replays and verifies, and a worker going from partition to partition
    /// held up swap attempt after swap attempt (measured with `lockstep demo`: 29.5 s of
    /// retries, each cancelling the worker's current partition only).
    pub fn storage_sql(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .names
            .partitions
            .iter()
            .map(|p| {
                format!(
                    "ALTER TABLE {} RESET (autovacuum_enabled)",
                    self.rel(&p.name)
                )
            })
            .collect();
        if !self.facts.reloptions.is_empty() {
            for p in &self.names.partitions {
                out.push(format!(
                    "ALTER TABLE {} SET ({})",
                    self.rel(&p.name),
                    self.facts.reloptions.join(", ")
                ));
            }
        }
        out
    }

    /// Statistics for the new table (its partitions and the parent), before the swap: the
    /// application's first queries on it are planned with them.
    pub fn analyze_sql(&self) -> String {
        format!("ANALYZE {}", self.shadow())
    }

    /// Sequence continuity for the table now under the original name (run after the renames).
    /// A serial column's sequence changes owner. An identity sequence continues above every id
    /// handed out so far: after the swap (`to_new`) the new table's own identity sequence is
    /// moved past the original's; after a swap back the original's is moved past the ids the
    /// new table issued meanwhile.
    fn sequences_sql(&self, to_new: bool) -> Vec<String> {
        let live = self.source();
        self.facts
            .sequences
            .iter()
            .map(|s| {
                if s.identity {
                    let target = if to_new {
                        format!("pg_get_serial_sequence({}, {})", lit(&live), lit(&s.column))
                    } else {
                        lit(&s.sequence)
                    };
                    format!(
                        "SELECT setval({target}, GREATEST((SELECT last_value FROM {}), (SELECT coalesce(max({}), 0) FROM {live}), 1))",
                        s.sequence,
                        q(&s.column)
                    )
                } else {
                    format!(
                        "ALTER SEQUENCE {} OWNED BY {live}.{}",
                        s.sequence,
                        q(&s.column)
                    )
                }
            })
            .collect()
    }

    /// The table, primary-key and index names of one side of the swap.
    fn side(&self, side: Side) -> (String, String, Vec<String>) {
        let f = &self.facts;
        let n = &self.names;
        match side {
            Side::Live => (
                f.name.clone(),
                f.pk_name.clone(),
                f.indexes.iter().map(|i| i.name.clone()).collect(),
            ),
            Side::Old => (
                n.old.clone(),
                n.old_pk.clone(),
                n.indexes.iter().map(|(_, o)| o.clone()).collect(),
            ),
            Side::Shadow => (
                n.shadow.clone(),
                n.shadow_pk.clone(),
                n.indexes.iter().map(|(p, _)| p.clone()).collect(),
            ),
        }
    }

    /// Renames the table, its primary key and its indexes from one side's names to another's.
    fn renames(&self, from: Side, to: Side) -> Vec<String> {
        let (ft, fpk, fix) = self.side(from);
        let (tt, tpk, tix) = self.side(to);
        let mut out = vec![format!(
            "ALTER TABLE {} RENAME TO {}",
            self.rel(&ft),
            q(&tt)
        )];
        if !self.facts.pk_name.is_empty() {
            out.push(format!(
                "ALTER INDEX {} RENAME TO {}",
                self.rel(&fpk),
                q(&tpk)
            ));
        }
        for (a, b) in fix.iter().zip(&tix) {
            out.push(format!("ALTER INDEX {} RENAME TO {}", self.rel(a), q(b)));
        }
        out
    }

    /// The swap: the rest of the log, renames, sequences, grants, foreign keys, views and the
    /// reverse trigger.
    /// Runs in one transaction after `SET LOCAL lock_timeout`.
    pub fn swap_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let mut out = vec![
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", self.source()),
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", self.shadow()),
        ];
        out.extend(self.storage_sql());
        // The last changes: with the table locked, nothing is logged meanwhile (key lookups,
        // as in [`Plan::replay_begin_sql`]).
        out.push("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off".into());
        out.extend(self.replay_sql(false));
        out.push("RESET enable_hashjoin; RESET enable_mergejoin".into());
        out.extend(f.inbound_fks.iter().map(InboundFk::drop_sql));
        out.push(format!(
            "DROP TRIGGER IF EXISTS lockstep_capture ON {0}; DROP TRIGGER IF EXISTS lockstep_capture_truncate ON {0}",
            self.source()
        ));
        out.push(format!("DROP TABLE {}", self.log()));
        out.extend(self.renames(Side::Live, Side::Old));
        out.extend(self.renames(Side::Shadow, Side::Live));
        let new = self.source();
        out.extend(self.sequences_sql(true));
        for g in &f.grants {
            let (privilege, to) = g.split_once(" TO ").unwrap_or((g.as_str(), "PUBLIC"));
            out.push(format!("GRANT {privilege} ON {new} TO {to}"));
        }
        for (privilege, to) in &f.column_grants {
            out.push(format!("GRANT {privilege} ON {new} TO {to}"));
        }
        out.extend(f.inbound_fks.iter().map(|fk| fk.add_not_valid_sql(&new)));
        for v in &f.views {
            out.push(view_sql(v));
        }
        out.push(self.reverse_function_sql());
        out.push(format!(
            "CREATE TRIGGER lockstep_reverse AFTER INSERT OR UPDATE OR DELETE ON {new} FOR EACH ROW EXECUTE FUNCTION lockstep.{}()",
            q(&self.names.reverse_fn)
        ));
        out.push(format!(
            "CREATE TRIGGER lockstep_reverse_truncate AFTER TRUNCATE ON {new} FOR EACH STATEMENT EXECUTE FUNCTION lockstep.{}()",
            q(&self.names.reverse_fn)
        ));
        out
    }

    /// After the swap: validate the re-pointed foreign keys (each in its own transaction).
    pub fn validate_sql(&self) -> Vec<String> {
        self.facts
            .inbound_fks
            .iter()
            .map(InboundFk::validate_sql)
            .collect()
    }

    /// Swapping back after the swap (rollback): the old table, kept current by the reverse
    /// trigger, takes the name again.
    pub fn swap_back_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let current = self.source();
        let mut out = vec![
            format!("LOCK TABLE {current} IN ACCESS EXCLUSIVE MODE"),
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", self.old()),
        ];
        out.extend(f.inbound_fks.iter().map(InboundFk::drop_sql));
        out.push(format!(
            "DROP TRIGGER IF EXISTS lockstep_reverse ON {current}; DROP TRIGGER IF EXISTS lockstep_reverse_truncate ON {current}"
        ));
        out.extend(self.renames(Side::Live, Side::Shadow));
        out.extend(self.renames(Side::Old, Side::Live));
        out.extend(self.sequences_sql(false));
        out.extend(
            f.inbound_fks
                .iter()
                .map(|fk| fk.add_not_valid_sql(&current)),
        );
        for v in &f.views {
            out.push(view_sql(v));
        }
        out.push(format!("DROP TABLE {}", self.shadow()));
        out.push(format!(
            "DROP FUNCTION IF EXISTS lockstep.{}()",
            q(&self.names.reverse_fn)
        ));
        out.push(format!(
            "DROP FUNCTION IF EXISTS lockstep.{}()",
            q(&self.names.forward_fn)
        ));
        out
    }

    /// Undoing everything before the swap.
    pub fn drop_shadow_sql(&self) -> Vec<String> {
        vec![
            format!(
                "DROP TRIGGER IF EXISTS lockstep_capture ON {0}; DROP TRIGGER IF EXISTS lockstep_capture_truncate ON {0}",
                self.source()
            ),
            format!("DROP TABLE IF EXISTS {}", self.shadow()),
            format!("DROP TABLE IF EXISTS {}", self.log()),
            format!(
                "DROP FUNCTION IF EXISTS lockstep.{}()",
                q(&self.names.forward_fn)
            ),
            format!(
                "DROP FUNCTION IF EXISTS lockstep.{}()",
                q(&self.names.reverse_fn)
            ),
        ]
    }

    /// Finalize: the reverse trigger and the old table go.
    pub fn finalize_sql(&self) -> Vec<String> {
        vec![
            format!(
                "DROP TRIGGER IF EXISTS lockstep_reverse ON {0}; DROP TRIGGER IF EXISTS lockstep_reverse_truncate ON {0}",
                self.source()
            ),
            format!("DROP TABLE IF EXISTS {}", self.old()),
            format!(
                "DROP FUNCTION IF EXISTS lockstep.{}()",
                q(&self.names.reverse_fn)
            ),
            format!(
                "DROP FUNCTION IF EXISTS lockstep.{}()",
                q(&self.names.forward_fn)
            ),
        ]
    }

    /// A readable definition of the table before the conversion.
    pub fn definition_before(&self) -> String {
        let mut s = self.columns_ddl(&self.source());
        s.push_str(&format!(
            "\nALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({});\n",
            self.source(),
            q(&self.facts.pk_name),
            list(&self.facts.pk_columns)
        ));
        for ix in &self.facts.indexes {
            s.push_str(&format!(
                "CREATE {}INDEX {} ON {}{};\n",
                if ix.unique { "UNIQUE " } else { "" },
                q(&ix.name),
                self.source(),
                ix.tail
            ));
        }
        s
    }

    /// The same after the conversion.
    pub fn definition_after(&self) -> String {
        let mut s = self.columns_ddl(&self.source());
        s.truncate(s.trim_end().len());
        s.truncate(s.len() - 1); // the `;`
        s.push_str(&format!(" PARTITION BY {};\n", self.partition_by));
        s.push_str(&format!(
            "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({});\n",
            self.source(),
            q(&self.facts.pk_name),
            list(&self.key)
        ));
        for ix in &self.facts.indexes {
            s.push_str(&format!(
                "CREATE {}INDEX {} ON {}{};\n",
                if ix.unique { "UNIQUE " } else { "" },
                q(&ix.name),
                self.source(),
                ix.tail
            ));
        }
        for p in &self.names.partitions {
            s.push_str(&format!(
                "CREATE TABLE {} PARTITION OF {} {};\n",
                self.rel(&p.name),
                self.source(),
                p.bound
            ));
        }
        s
    }

    fn columns_ddl(&self, table: &str) -> String {
        let cols: Vec<String> = self
            .facts
            .columns
            .iter()
            .map(|c| {
                let mut d = format!("    {} {}", q(&c.name), c.type_sql);
                match c.identity.as_str() {
                    "a" => d.push_str(" GENERATED ALWAYS AS IDENTITY"),
                    "d" => d.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
                    _ => {}
                }
                if let Some(def) = &c.default_sql {
                    if c.generated {
                        d.push_str(&format!(" GENERATED ALWAYS AS ({def}) STORED"));
                    } else if c.identity.is_empty() {
                        d.push_str(&format!(" DEFAULT {def}"));
                    }
                }
                if c.not_null {
                    d.push_str(" NOT NULL");
                }
                d
            })
            .collect();
        format!("CREATE TABLE {table} (\n{}\n);", cols.join(",\n"))
    }
}

/// Re-creating a dependent view (on whatever table has the name now), options included.
fn view_sql(v: &View) -> String {
    let with = if v.options.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", v.options.join(", "))
    };
    format!(
        "CREATE OR REPLACE VIEW {}{with} AS {}",
        v.name,
        v.definition.trim_end().trim_end_matches(';')
    )
}

/// A SQL string literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::playbook::facts::{Column, Index};

    /// A table whose names need quoting: a schema with a space, a capitalised name, a
    /// reserved word as a column.
    pub(crate) fn facts() -> Facts {
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

    fn playbook() -> Playbook {
        super::super::spec::parse(
            "kind = \"partition\"\ntable = '\"Sales Data\".\"Order\"'\n[partition]\ncolumn = \"select\"\nstrategy = \"range\"\ninterval = \"1 month\"\n",
            "p",
        )
        .unwrap()
    }

    #[test]
    fn quotes_every_identifier() {
        let f = facts();
        let names = Names::new(
            &f,
            "r1",
            vec![Partition {
                name: "Order_p202601".into(),
                bound: "FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')".into(),
            }],
        );
        let plan = Plan::new(&playbook(), f, names);
        assert_eq!(plan.key, vec!["id".to_string(), "select".to_string()]);
        let sql = plan.shadow_sql().join(";\n");
        assert!(
            sql.contains(
                "CREATE TABLE \"Sales Data\".\"Order_lockstep_new\" (LIKE \"Sales Data\".\"Order\""
            ),
            "{sql}"
        );
        assert!(sql.contains("PARTITION BY RANGE (\"select\")"), "{sql}");
        // No key or index while the copy is filled.
        assert!(!sql.contains("PRIMARY KEY"), "{sql}");
        let jobs = plan.index_sql();
        let pk = &jobs[0];
        assert_eq!(
            pk.children[0].build,
            vec![
                "CREATE UNIQUE INDEX \"Order_p202601_pkey\" ON \"Sales Data\".\"Order_p202601\" (id, \"select\")".to_string(),
                "ALTER TABLE \"Sales Data\".\"Order_p202601\" ADD CONSTRAINT \"Order_p202601_pkey\" PRIMARY KEY USING INDEX \"Order_p202601_pkey\"".to_string(),
            ]
        );
        assert_eq!(
            pk.last.as_ref().unwrap().0,
            "ALTER TABLE \"Sales Data\".\"Order_lockstep_new\" ADD CONSTRAINT \"Order_lockstep_new_pkey\" PRIMARY KEY (id, \"select\")"
        );
        assert_eq!(
            jobs[1].children[0].attach.as_deref(),
            Some("ALTER INDEX \"Sales Data\".\"Order_lockstep_new_0_idx\" ATTACH PARTITION \"Sales Data\".\"Order_p202601_0_idx\"")
        );
        let cap = plan.capture_sql().join("\n");
        assert!(
            cap.contains("CREATE TABLE lockstep.log_r1 (id bigint NOT NULL)"),
            "{cap}"
        );
        assert!(
            cap.contains("INSERT INTO lockstep.log_r1 (id) VALUES (OLD.id);"),
            "{cap}"
        );
        assert!(
            cap.contains("IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NOT (NEW.id::pg_catalog.text OPERATOR(pg_catalog.=) OLD.id::pg_catalog.text) THEN"),
            "{cap}"
        );
        assert!(
            cap.contains("TRUNCATE \"Sales Data\".\"Order_lockstep_new\", lockstep.log_r1;"),
            "{cap}"
        );
        let replay = plan.replay_sql(true).join(";\n");
        assert_eq!(
            plan.replay_begin_sql(),
            "LOCK TABLE \"Sales Data\".\"Order\" IN ACCESS SHARE MODE; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
        );
        assert!(replay.contains("DELETE FROM \"Sales Data\".\"Order_lockstep_new\" t USING (SELECT DISTINCT id FROM lockstep.log_r1 WHERE ctid = ANY ($1::text::tid[])) l WHERE t.id = l.id"), "{replay}");
        assert!(replay.contains("SELECT t.id, t.\"select\", t.note FROM \"Sales Data\".\"Order\" t WHERE EXISTS (SELECT 1 FROM lockstep.log_r1 l WHERE t.id = l.id AND l.ctid = ANY ($1::text::tid[]))"), "{replay}");
        assert!(
            replay.ends_with("DELETE FROM lockstep.log_r1 WHERE ctid = ANY ($1::text::tid[])"),
            "{replay}"
        );
        assert!(!plan.replay_sql(false).join(";").contains("$1"));
        assert!(plan
            .verify_sql(false, true)
            .contains("AND NOT EXISTS (SELECT 1 FROM lockstep.log_r1 l WHERE l.id = t.id)"));
        let swap = plan.swap_sql().join("\n");
        // The rest of the log is replayed under the lock, before the renames.
        let at = |p: &str| swap.find(p).unwrap_or_else(|| panic!("{p} not in {swap}"));
        assert!(at("IN ACCESS EXCLUSIVE MODE") < at("DELETE FROM lockstep.log_r1"));
        assert!(at("DELETE FROM lockstep.log_r1") < at("DROP TABLE lockstep.log_r1"));
        assert!(at("DROP TABLE lockstep.log_r1") < at("RENAME TO"));
        assert!(
            swap.contains("ALTER TABLE \"Sales Data\".\"Order\" RENAME TO \"Order_old\""),
            "{swap}"
        );
        assert!(
            swap.contains("GRANT SELECT ON \"Sales Data\".\"Order\" TO reader"),
            "{swap}"
        );
        assert!(plan
            .batch_sql(false)
            .contains("WHERE id > $2::text::bigint AND id <= $1::text::bigint"));
    }

    #[test]
    fn preflight_refuses_what_it_cannot_carry() {
        let mut f = facts();
        f.columns[1].not_null = false;
        f.indexes[0].unique = true;
        let r = preflight(&playbook(), &f);
        assert!(r.iter().any(|m| m.contains("allows NULL")), "{r:?}");
        assert!(
            r.iter().any(|m| m.contains("unique index order_note")),
            "{r:?}"
        );
        let mut f = facts();
        f.pk_columns.clear();
        assert!(preflight(&playbook(), &f)
            .iter()
            .any(|m| m.contains("no primary key")));
        assert!(preflight(&playbook(), &facts()).is_empty());
        // [dependents] = "refuse" turns a view into a refusal.
        let mut f = facts();
        f.views.push(crate::playbook::facts::View {
            name: "public.recent".into(),
            definition: "SELECT 1".into(),
            options: Vec::new(),
        });
        assert!(preflight(&playbook(), &f).is_empty());
        let mut pb = playbook();
        pb.dependents.recreate_views = false;
        assert!(preflight(&pb, &f)
            .iter()
            .any(|m| m.contains("view public.recent") && m.contains("\"refuse\"")));
    }

    #[test]
    fn the_reverse_trigger_updates_rows_in_place() {
        let names = |f: &Facts| Names::new(f, "r1", Vec::new());
        let f = facts();
        let plan = Plan::new(&playbook(), f.clone(), names(&f));
        // The reverse trigger (new table → old) keeps the old table current.
        let rev = plan.reverse_function_sql();
        assert!(
            rev.contains("IF TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id THEN"),
            "{rev}"
        );
        assert!(rev.contains("UPDATE \"Sales Data\".\"Order_old\" SET \"select\" = NEW.\"select\", note = NEW.note WHERE id = OLD.id"), "{rev}");
        assert!(
            rev.contains("ON CONFLICT (id) DO UPDATE SET \"select\" = EXCLUDED.\"select\", note = EXCLUDED.note"),
            "{rev}"
        );
        // A GENERATED ALWAYS identity column outside the key cannot be SET: no in-place path.
        let mut g = facts();
        g.columns[2].identity = "a".into();
        let plan = Plan::new(&playbook(), g.clone(), names(&g));
        assert!(!plan.reverse_function_sql().contains("IS NOT DISTINCT FROM"));
    }

    #[test]
    fn long_names_fit() {
        let long = "x".repeat(80);
        let a = fit(&format!("{long}_a"));
        let b = fit(&format!("{long}_b"));
        assert!(a.len() <= 63 && b.len() <= 63 && a != b);
    }
}
