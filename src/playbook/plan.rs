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

/// One partition's index: (name, concurrent build, attach to the parent index).
pub type ChildIndex = (String, String, String);

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

    /// Creating the partitioned table, its key and partitions (autovacuum off while copying).
    pub fn shadow_sql(&self) -> Vec<String> {
        let mut out = vec![format!(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS INCLUDING CONSTRAINTS) PARTITION BY {}",
            self.shadow(),
            self.source(),
            self.partition_by
        )];
        out.push(format!(
            "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})",
            self.shadow(),
            q(&self.names.shadow_pk),
            list(&self.key)
        ));
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
    fn sync_function(&self, name: &str, target: &str, key: &[String], routed: bool) -> String {
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
        let routes = if routed { self.routes() } else { Vec::new() };
        let upd = |t: &str| format!("UPDATE {t} SET {} WHERE {old_match};", set_new.join(", "));
        let del = |t: &str| format!("DELETE FROM {t} WHERE {old_match};");
        let ins = |t: &str| {
            format!(
                "INSERT INTO {t} ({col_list}){ovr} VALUES ({new_vals})\n      ON CONFLICT ({key_list}) {conflict};"
            )
        };
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
    {}
    IF FOUND THEN
      RETURN NULL;
    END IF;
  END IF;
",
                route(&routes, "OLD", target, &upd),
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
    {}
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    {}
  END IF;
  RETURN NULL;
END
$lockstep$",
            route(&routes, "OLD", target, &del),
            route(&routes, "NEW", target, &ins),
            fname = q(name),
        )
    }

    /// Per partition of the new table whose bound lockstep can test in the trigger: the
    /// condition on the partition column (of the `NEW` or `OLD` row) and the partition.
    /// Writing to the partition directly instead of the partitioned table saves the writer
    /// the tuple routing (`sh bench/trigger_overhead.sh`: with 16 monthly partitions the
    /// writers keep 0.74x of their throughput instead of 0.61x). Hash partitions are left to
    /// PostgreSQL's routing.
    fn routes(&self) -> Vec<Route> {
        let col = q(&self.partition_column);
        let mut out = Vec::new();
        // Range partitions newest first: new rows of a time series land in the newest ones,
        // and every test the trigger skips is saved on every write (with 16 monthly
        // partitions, newest first kept 0.74x of the writers' throughput, oldest first 0.67x).
        let ordered: Vec<&Partition> = if self.partition_by.starts_with("RANGE") {
            self.names.partitions.iter().rev().collect()
        } else {
            self.names.partitions.iter().collect()
        };
        for p in ordered {
            let test = if let Some(range) = p.bound.strip_prefix("FOR VALUES FROM (") {
                match range.strip_suffix(')').and_then(|r| r.split_once(") TO (")) {
                    Some((lo, hi)) if !lo.contains(") TO (") && !hi.contains(") TO (") => {
                        Test::Range(lo.to_string(), hi.to_string())
                    }
                    _ => continue,
                }
            } else if let Some(values) = p
                .bound
                .strip_prefix("FOR VALUES IN (")
                .and_then(|v| v.strip_suffix(')'))
            {
                Test::In(values.to_string())
            } else {
                continue;
            };
            out.push(Route {
                column: col.clone(),
                test,
                partition: self.rel(&p.name),
            });
        }
        out
    }

    /// The change-capture function and trigger (source → shadow).
    pub fn capture_sql(&self) -> Vec<String> {
        vec![
            self.sync_function(&self.names.forward_fn, &self.shadow(), &self.key, true),
            format!(
                "CREATE TRIGGER lockstep_capture AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION lockstep.{}()",
                self.source(),
                q(&self.names.forward_fn)
            ),
            format!(
                "CREATE TRIGGER lockstep_capture_truncate AFTER TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION lockstep.{}()",
                self.source(),
                q(&self.names.forward_fn)
            ),
        ]
    }

    /// The reverse function (new table → old table), created before the swap.
    pub fn reverse_function_sql(&self) -> String {
        self.sync_function(
            &self.names.reverse_fn,
            &self.old(),
            &self.facts.pk_columns,
            false,
        )
    }

    /// The primary key, for keyset SQL.
    fn keys(&self) -> Keyset {
        Keyset::primary(&self.facts)
    }

    /// The highest key now in the source, as text (the copy's upper bound).
    pub fn max_key_sql(&self) -> String {
        self.keys().max_key_sql(&self.source())
    }

    /// The end of the next backfill batch: the last of the next `limit` keys up to the upper
    /// bound, as `text[]` (no row when none is left). Parameters: the upper bound ($1..$k),
    /// then, when `from_start` is false, the high-water key ($k+1..$2k).
    ///
    /// The range is fixed first, from the keys in this statement's snapshot, and its rows are
    /// then read with a row lock by [`Plan::batch_sql`]. Taking the last key from the locked
    /// rows instead would be wrong: a row updated concurrently comes back in its new version,
    /// and an update of its key would move the high-water mark past rows never copied.
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
    /// read `FOR SHARE` so that no concurrent change slips between the read and the write.
    /// Parameters: the batch's end ($1..$k), then, when `from_start` is false, the
    /// high-water key ($k+1..$2k). Two plain statements (end, then copy) instead of one with
    /// CTEs: the CTE form materialised every row and was about a fifth slower.
    ///
    /// With `on_conflict` false the insert is a plain one (its row count is the rows read),
    /// about a third faster; it fails with a unique violation when the trigger already wrote
    /// one of the rows. The caller then retries the batch with `on_conflict`: its
    /// `ON CONFLICT DO NOTHING` lets the trigger's newer row win, and it returns the rows read.
    pub fn batch_sql(&self, from_start: bool, on_conflict: bool) -> String {
        let ks = self.keys();
        let cols = list(&self.cols());
        let read = format!(
            "SELECT {cols} FROM {src} WHERE {cond} ORDER BY {order} FOR SHARE",
            src = self.source(),
            cond = ks.range_cond(from_start),
            order = ks.order(false),
        );
        if on_conflict {
            // Returns the rows read (the insert skips the ones the trigger wrote).
            format!(
                "WITH lockstep_batch AS ({read}),
lockstep_ins AS (INSERT INTO {shadow} ({cols}){ovr} SELECT {cols} FROM lockstep_batch ON CONFLICT DO NOTHING)
SELECT count(*)::bigint FROM lockstep_batch",
                shadow = self.shadow(),
                ovr = self.overriding(),
            )
        } else {
            format!(
                "INSERT INTO {shadow} ({cols}){ovr} {read}",
                shadow = self.shadow(),
                ovr = self.overriding(),
            )
        }
    }

    /// Verification of one key range: count and an order-independent hash of the rows, for
    /// the source and the shadow. Parameters as in [`Plan::batch_sql`] ($1.. upper, then lower
    /// when `from_start` is false).
    ///
    /// With `hash_record`, rows are hashed with `hash_record_extended` (PostgreSQL 14+),
    /// about three times faster than hashing their text form; it fails for a column type
    /// without a hash function (`json`, `point`, …), and the caller then uses the text form.
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
        let agg = format!("count(*)::bigint, coalesce(sum({hash}::numeric), 0)::text");
        format!(
            "SELECT * FROM (SELECT {agg} FROM {src} WHERE {cond}) s, (SELECT {agg} FROM {shadow} WHERE {cond}) n",
            src = self.source(),
            shadow = self.shadow(),
        )
    }

    /// Re-copies one key range (after a verification mismatch).
    pub fn recopy_sql(&self, from_start: bool) -> Vec<String> {
        let cond = self.keys().range_cond(from_start);
        let cols = list(&self.cols());
        vec![
            format!("DELETE FROM {} WHERE {cond}", self.shadow()),
            format!(
                "INSERT INTO {} ({cols}){} SELECT {cols} FROM {} WHERE {cond} FOR SHARE",
                self.shadow(),
                self.overriding(),
                self.source()
            ),
        ]
    }

    /// The key `chunk` rows after `lower` (or from the start): the next verification bound.
    pub fn chunk_end_sql(&self, from_start: bool, chunk: u32) -> String {
        let ks = self.keys();
        let lower = if from_start {
            String::new()
        } else {
            format!("WHERE {} > {} ", ks.row(""), ks.params(1))
        };
        format!(
            "SELECT {} FROM {} {lower}ORDER BY {} OFFSET {} LIMIT 1",
            ks.text_array(""),
            self.source(),
            ks.order(false),
            chunk.saturating_sub(1)
        )
    }

    /// Per secondary index: the parent index (ON ONLY), and per partition the concurrent
    /// build and the attach. Returns (parent sql, [(child name, build sql, attach sql)]).
    pub fn index_sql(&self) -> Vec<(String, Vec<ChildIndex>)> {
        self.facts
            .indexes
            .iter()
            .zip(&self.names.indexes)
            .enumerate()
            .map(|(i, (ix, (parent, _)))| {
                let unique = if ix.unique { "UNIQUE " } else { "" };
                let parent_sql = format!(
                    "CREATE {unique}INDEX IF NOT EXISTS {} ON ONLY {}{}",
                    q(parent),
                    self.shadow(),
                    ix.tail
                );
                let children = self
                    .names
                    .partitions
                    .iter()
                    .map(|p| {
                        let child = fit(&format!("{}_{i}_idx", p.name));
                        (
                            child.clone(),
                            format!(
                                "CREATE {unique}INDEX CONCURRENTLY {} ON {}{}",
                                q(&child),
                                self.rel(&p.name),
                                ix.tail
                            ),
                            format!(
                                "ALTER INDEX {} ATTACH PARTITION {}",
                                self.rel(parent),
                                self.rel(&child)
                            ),
                        )
                    })
                    .collect();
                (parent_sql, children)
            })
            .collect()
    }

    /// After the copy: autovacuum back on, the original storage parameters, statistics.
    pub fn after_copy_sql(&self) -> Vec<String> {
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
        out.push(format!("ANALYZE {}", self.shadow()));
        out
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

    /// The swap: renames, sequences, grants, foreign keys, views and the reverse trigger.
    /// Runs in one transaction after `SET LOCAL lock_timeout`.
    pub fn swap_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let mut out = vec![
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", self.source()),
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", self.shadow()),
        ];
        out.extend(f.inbound_fks.iter().map(InboundFk::drop_sql));
        out.push(format!(
            "DROP TRIGGER IF EXISTS lockstep_capture ON {0}; DROP TRIGGER IF EXISTS lockstep_capture_truncate ON {0}",
            self.source()
        ));
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

/// `stmt(target)`, or an `IF … ELSIF … ELSE` over `routes` running `stmt` on the partition
/// whose condition `row` meets, and on `target` (PostgreSQL routes it) otherwise.
/// A partition the trigger writes to directly: the condition on a row (`NEW` or `OLD`)
/// that puts it there, and the partition.
struct Route {
    /// The partition column, quoted.
    column: String,
    test: Test,
    /// The partition, quoted and qualified.
    partition: String,
}

/// What puts a row in a partition: a range `[from, to)` or a list, as SQL literals.
enum Test {
    Range(String, String),
    In(String),
}

impl Route {
    /// The condition on `row` (`NEW` or `OLD`).
    fn cond(&self, row: &str) -> String {
        let c = &self.column;
        match &self.test {
            Test::Range(lo, hi) => format!("{row}.{c} >= {lo} AND {row}.{c} < {hi}"),
            Test::In(values) => format!("{row}.{c} IN ({values})"),
        }
    }
}

fn route(routes: &[Route], row: &str, target: &str, stmt: &dyn Fn(&str) -> String) -> String {
    if routes.is_empty() {
        return stmt(target);
    }
    let mut out = String::new();
    for (i, r) in routes.iter().enumerate() {
        out.push_str(if i == 0 { "IF " } else { "\n    ELSIF " });
        out.push_str(&r.cond(row));
        out.push_str(" THEN\n      ");
        out.push_str(&stmt(&r.partition));
    }
    out.push_str("\n    ELSE\n      ");
    out.push_str(&stmt(target));
    out.push_str("\n    END IF;");
    out
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
        assert!(sql.contains("PRIMARY KEY (id, \"select\")"), "{sql}");
        let cap = plan.capture_sql().join("\n");
        assert!(cap.contains("DELETE FROM \"Sales Data\".\"Order_lockstep_new\" WHERE id = OLD.id AND \"select\" = OLD.\"select\""), "{cap}");
        assert!(
            cap.contains("ON CONFLICT (id, \"select\") DO UPDATE SET note = EXCLUDED.note"),
            "{cap}"
        );
        let swap = plan.swap_sql().join("\n");
        assert!(
            swap.contains("ALTER TABLE \"Sales Data\".\"Order\" RENAME TO \"Order_old\""),
            "{swap}"
        );
        assert!(
            swap.contains("GRANT SELECT ON \"Sales Data\".\"Order\" TO reader"),
            "{swap}"
        );
        assert!(plan
            .batch_sql(false, true)
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
    fn updates_that_keep_the_key_update_the_copy_in_place() {
        let names = |f: &Facts| Names::new(f, "r1", Vec::new());
        let f = facts();
        let plan = Plan::new(&playbook(), f.clone(), names(&f));
        let cap = plan.capture_sql().join("\n");
        assert!(cap.contains("IF TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id AND NEW.\"select\" IS NOT DISTINCT FROM OLD.\"select\" THEN"), "{cap}");
        assert!(cap.contains("UPDATE \"Sales Data\".\"Order_lockstep_new\" SET note = NEW.note WHERE id = OLD.id"), "{cap}");
        // A GENERATED ALWAYS identity column outside the key cannot be SET: no in-place path.
        let mut g = facts();
        g.columns[2].identity = "a".into();
        let plan = Plan::new(&playbook(), g.clone(), names(&g));
        assert!(!plan
            .capture_sql()
            .join("\n")
            .contains("IS NOT DISTINCT FROM"));
    }

    #[test]
    fn the_capture_trigger_writes_to_the_partition_directly() {
        let f = facts();
        let parts = vec![
            Partition {
                name: "Order_p202601".into(),
                bound: "FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')"
                    .into(),
            },
            Partition {
                name: "Order_p202602".into(),
                bound: "FOR VALUES FROM ('2026-02-01 00:00:00+00') TO ('2026-03-01 00:00:00+00')"
                    .into(),
            },
            Partition {
                name: "Order_default".into(),
                bound: "DEFAULT".into(),
            },
        ];
        let plan = Plan::new(&playbook(), f.clone(), Names::new(&f, "r1", parts));
        let cap = plan.capture_sql()[0].clone();
        // The newest range is tested first.
        let at = |p: &str| cap.find(p).unwrap_or_else(|| panic!("{p} not in {cap}"));
        assert!(at("\"Order_p202602\"") < at("\"Order_p202601\""), "{cap}");
        assert!(cap.contains("IF NEW.\"select\" >= '2026-01-01 00:00:00+00' AND NEW.\"select\" < '2026-02-01 00:00:00+00' THEN\n      INSERT INTO \"Sales Data\".\"Order_p202601\""), "{cap}");
        assert!(
            cap.contains("IF OLD.\"select\" >= '2026-01-01 00:00:00+00'"),
            "{cap}"
        );
        // Anything else (the default partition too) goes through the partitioned table.
        assert!(
            cap.contains("ELSE\n      INSERT INTO \"Sales Data\".\"Order_lockstep_new\""),
            "{cap}"
        );
        assert!(!cap.contains("Order_default"), "{cap}");
        // The reverse trigger writes to the plain old table.
        assert!(!plan.reverse_function_sql().contains("ELSIF"));
        // List partitions test membership; hash partitions are left to PostgreSQL.
        let list = Partition {
            name: "Order_eu".into(),
            bound: "FOR VALUES IN ('de)', 'f''r')".into(),
        };
        let plan = Plan::new(&playbook(), f.clone(), Names::new(&f, "r1", vec![list]));
        assert!(plan.capture_sql()[0].contains("IF NEW.\"select\" IN ('de)', 'f''r') THEN"));
        let hash = Partition {
            name: "Order_h0".into(),
            bound: "FOR VALUES WITH (MODULUS 2, REMAINDER 0)".into(),
        };
        let plan = Plan::new(&playbook(), f.clone(), Names::new(&f, "r1", vec![hash]));
        assert!(!plan.capture_sql()[0].contains("Order_h0"));
    }

    #[test]
    fn long_names_fit() {
        let long = "x".repeat(80);
        let a = fit(&format!("{long}_a"));
        let b = fit(&format!("{long}_b"));
        assert!(a.len() <= 63 && b.len() <= 63 && a != b);
    }
}
