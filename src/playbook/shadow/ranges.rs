//! The SQL of the copy and the verification: keyset ranges over the table's primary key.

use super::ShadowPlan;
use crate::playbook::names::{list, lit};

impl ShadowPlan {
    /// The highest key now in the source, as text (the verification's upper bound).
    pub fn max_key_sql(&self) -> String {
        self.keys().max_key_sql(&self.source())
    }

    /// The highest key the copy walks by now in the source, as text (the copy's upper
    /// bound).
    pub fn copy_max_key_sql(&self) -> String {
        self.copy_keys().max_key_sql(&self.source())
    }

    /// The number of pages of the source, its partitions' if it has any (for
    /// [`ShadowPlan::sample_keys_sql`]). `pg_partition_tree` lists nothing for a table that
    /// is not partitioned: its own size counts then (without it, a plain table had no pages,
    /// and the sample read every row).
    pub fn pages_sql(&self) -> String {
        let t = lit(&self.source());
        format!(
            "SELECT (coalesce((SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree({t}::regclass) WHERE isleaf),
                              pg_relation_size({t}::regclass))
                     / current_setting('block_size')::int)::float8"
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
    /// then copied by [`ShadowPlan::batch_sql`]. Taking the last key from the copied rows instead
    /// would be wrong: a row updated meanwhile could come back with a new key, and the
    /// high-water mark would move past rows never copied.
    pub fn batch_end_sql(&self, from_start: bool, limit: u32) -> String {
        let ks = self.copy_keys();
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
        let ks = self.copy_keys();
        format!(
            "INSERT INTO {shadow} ({cols}){ovr} SELECT {select} FROM {src} WHERE {cond}",
            shadow = self.shadow(),
            cols = list(&self.cols()),
            ovr = self.overriding(),
            select = self.source_cols(),
            src = self.source(),
            cond = ks.range_cond(from_start),
        )
    }

    /// Verification of one key range: count and an order-independent hash of the rows, for
    /// the source and the shadow. Parameters as in [`ShadowPlan::batch_sql`] ($1.. upper, then lower
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
        let cols = list(&self.compared());
        let hash = |row: &str| {
            if hash_record {
                format!("hash_record_extended(ROW({row}), 0)")
            } else {
                format!("hashtextextended(ROW({row})::text, 0)")
            }
        };
        // The sum of bigints is exact (a numeric, added up in 128 bits), and a fifth faster
        // than adding up numerics.
        let agg = |row: &str| format!("count(*)::bigint, coalesce(sum({}), 0)::text", hash(row));
        let capture = self.capture();
        // The table's rows as the new table has them (a column of another type converted).
        format!(
            "SELECT * FROM (SELECT {} FROM {src} t WHERE {} AND {}) s, (SELECT {} FROM {shadow} t WHERE {} AND {}) n",
            agg(&self.source_row()),
            self.keys().range_cond(from_start),
            capture.not_logged(false),
            agg(&cols),
            self.shadow_keys().range_cond(from_start),
            capture.not_logged(true),
            src = self.source(),
            shadow = self.shadow(),
        )
    }

    /// Re-copies one key range (after a verification mismatch), in one `REPEATABLE READ`
    /// transaction.
    pub fn recopy_sql(&self, from_start: bool) -> Vec<String> {
        vec![
            format!(
                "DELETE FROM {} WHERE {}",
                self.shadow(),
                self.shadow_keys().range_cond(from_start)
            ),
            format!(
                "INSERT INTO {} ({}){} SELECT {} FROM {} WHERE {}",
                self.shadow(),
                list(&self.cols()),
                self.overriding(),
                self.source_cols(),
                self.source(),
                self.keys().range_cond(from_start)
            ),
        ]
    }

    /// The key `chunk` rows after the lower bound (or from the start), up to the upper bound:
    /// the end of the next verified range (no row when fewer are left). Parameters as in
    /// [`ShadowPlan::verify_sql`].
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

    /// Statistics for the new table (its partitions and the parent), before the swap: the
    /// application's first queries on it are planned with them.
    pub fn analyze_sql(&self) -> String {
        format!("ANALYZE {}", self.shadow())
    }
}
