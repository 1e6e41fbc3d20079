//! A shadow plan as `lockstep plan` shows it, with the estimates of the copy, and the
//! table's definition before and after.

use super::ShadowPlan;
use crate::playbook::names::{list, quote_ident as q};
use crate::playbook::settings::{Backfill, ReverseSync, Swap};
use crate::playbook::view::{human_bytes, PlanView, StepView};

/// Rows per second one connection copies while it works, for estimates (measured on 2
/// cores with `sh bench/partition_speed.sh`, 5 million rows): on a quiet database, 5.6 s;
/// under a workload that keeps both cores busy, 13.5 s at a duty cycle of 0.6, that is about
/// 620,000 rows per second of work, the rest of the time resting.
const QUIET_ROWS_PER_SEC: f64 = 900_000.0;
const BUSY_ROWS_PER_SEC: f64 = 620_000.0;

/// How much faster two or more connections copy on a quiet database (the same benchmark:
/// 4.0 s to 4.3 s instead of 5.6 s; the copies share the WAL and the disk).
const LANES_SPEEDUP: f64 = 1.3;

impl ShadowPlan {
    /// The plan with its steps, SQL, locks and estimates.
    pub fn describe(&self, backfill: &Backfill, swap: &Swap) -> PlanView {
        let f = &self.facts;
        let secs = f.rows_estimate as f64 / BUSY_ROWS_PER_SEC / backfill.duty_cycle;
        let quiet = f.rows_estimate as f64
            / QUIET_ROWS_PER_SEC
            / if backfill.workers > 1 {
                LANES_SPEEDUP
            } else {
                1.0
            };
        let what = match &self.target {
            super::Target::Partitioned { partition_by, .. } => format!(
                "partitioned by {partition_by} into {} partitions",
                self.names.partitions.len()
            ),
            super::Target::Rebuilt { changes } => match &self.shape {
                Some(shape) => self.shape_summary(shape),
                None => format!(
                    "rebuilt, columns in the same order, {}",
                    changes
                        .iter()
                        .map(|c| format!("{} {} → {}", q(&c.column), c.old_type, c.new_type))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        };
        let headline = format!(
            "plan: {} → {what}\n  about {} rows, {} on disk; the copy needs about {} more and takes about {:.0} s while the application keeps the server busy (one connection at {:.0}k rows/s, working {:.0}% of the time), {:.0} s on a quiet database ({} connection{})",
            self.source(),
            f.rows_estimate,
            human_bytes(f.total_bytes),
            human_bytes(f.total_bytes),
            secs.max(1.0),
            BUSY_ROWS_PER_SEC / 1000.0,
            backfill.duty_cycle * 100.0,
            quiet.max(1.0),
            backfill.workers,
            if backfill.workers == 1 { "" } else { "s" },
        );
        let mut notes = Vec::new();
        if self.key != f.pk_columns && self.target.partitioned() {
            notes.push(format!(
                "the primary key becomes ({}): PostgreSQL needs the partition column in every unique key of a partitioned table",
                self.key.join(", ")
            ));
        }
        let lt = swap.lock_timeout_ms;
        let capture = self.capture();
        let step = |name: &str, what: String, sql: Vec<String>| StepView {
            name: name.to_string(),
            what,
            sql,
            undo: None,
        };
        let steps = vec![
            step(
                "shadow",
                format!(
                    "create the new table{} (ACCESS SHARE on {} while reading its definition; lock_timeout {lt} ms)",
                    if self.target.partitioned() { " and its partitions" } else { "" },
                    self.source()
                ),
                self.shadow_sql(),
            ),
            match &self.logical {
                None => step(
                    "capture",
                    format!(
                        "a trigger logs the key of every changed row to {} (SHARE ROW EXCLUSIVE on {} for milliseconds; lock_timeout {lt} ms, retried){}",
                        capture.log(),
                        self.source(),
                        self.trigger_because.as_ref().map_or(String::new(), |why| format!(
                            "; not logical decoding, which the application's writes would not pay for: {why}"
                        ))
                    ),
                    capture.install_sql(),
                ),
                Some(l) => step(
                    "capture",
                    format!(
                        "logical decoding: publication {pubn} of the table alone and replication slot {slot} (pgoutput); the runner streams the slot over a replication connection and logs the key of every changed row to {log}, so the application's writes run no trigger (SHARE UPDATE EXCLUSIVE on {src} for milliseconds for the publication; the slot waits for the transactions running then to end). The slot holds back WAL until read: past 80% of max_retained_wal ({max}) the copy waits, past it the run stops and drops the slot",
                        pubn = l.publication,
                        slot = l.slot,
                        log = capture.log(),
                        src = self.source(),
                        max = crate::playbook::view::human_bytes(l.max_retained_wal as i64),
                    ),
                    capture
                        .install_sql()
                        .into_iter()
                        .chain([format!(
                            "SELECT pg_create_logical_replication_slot({}, 'pgoutput')",
                            crate::playbook::names::lit(&l.slot)
                        )])
                        .collect(),
                ),
            },
            step(
                "backfill",
                format!(
                    "copy in primary-key order into the unindexed copy, {} rows per batch at first, each batch its own transaction (no row locks), in {} key range(s) at once over as many connections; about {:.0} s",
                    backfill.batch_size,
                    backfill.workers,
                    secs.max(1.0)
                ),
                vec![
                    self.batch_end_sql(false, backfill.batch_size),
                    self.batch_sql(false),
                ],
            ),
            step(
                "indexes",
                if self.target.partitioned() {
                    format!("the primary key, then each index, built per partition of the copy ({} at once) and attached (SHARE on the copy's partition only: nothing else writes to it); unique indexes after replaying the log", backfill.workers)
                } else {
                    format!("the primary key, then each index, built on the copy ({} at once; SHARE on the copy only: nothing else writes to it); unique indexes after replaying the log", backfill.workers)
                },
                self.index_sql()
                    .into_iter()
                    .flat_map(|job| {
                        job.first
                            .into_iter()
                            .chain(job.children.into_iter().flat_map(|c| c.build.into_iter().chain(c.attach)))
                            .chain(job.last.map(|(sql, _)| sql))
                    })
                    .collect(),
            ),
            step(
                "replay",
                "apply the logged changes in batches, each one REPEATABLE READ transaction (no locks beyond reads and the copy's rows); again between verified ranges and before the swap".into(),
                [capture.replay_begin_sql(), capture.replay_batch_sql(backfill.batch_size)]
                    .into_iter()
                    .chain(capture.replay_sql(true))
                    .collect(),
            ),
            step(
                "verify",
                format!("statistics for the new table, meanwhile compare row counts and row hashes range by range ({} at once), in one snapshot per range, leaving out keys still in the log (no locks beyond reads); re-copy differing ranges", backfill.workers),
                vec![self.analyze_sql(), self.verify_sql(false, true)],
            ),
            step(
                "swap",
                format!("first, without locking the table: the new table's grants and {}; then one transaction: ACCESS EXCLUSIVE on both tables while the last logged changes are applied and the names move (milliseconds; each attempt's lock wait and hold time are reported); lock_timeout {lt} ms, up to {} attempts with backoff", self.reverse_words(), swap.attempts),
                self.swap_prepare_sql()
                    .into_iter()
                    .chain(self.swap_sql())
                    .collect(),
            ),
            step(
                "validate",
                "validate re-pointed foreign keys (SHARE UPDATE EXCLUSIVE on the referencing tables)".into(),
                self.validate_sql(),
            ),
            step(
                "finalize (separate command)",
                match self.reverse {
                    ReverseSync::Logical => "drop the reverse slot, its publication and the old table",
                    _ => "drop the reverse trigger and the old table",
                }
                .into(),
                self.finalize_sql(),
            ),
        ];
        PlanView {
            headline,
            notes,
            preamble: None,
            steps,
            finalize: None,
            table: self.source(),
            before: self.definition_before(),
            after: self.definition_after(),
        }
    }

    /// What a `rebuild` makes of the table, in a few words.
    fn shape_summary(&self, shape: &super::Shape) -> String {
        let mut what = Vec::new();
        if !shape.definitions.is_empty() {
            what.push(format!(
                "columns in the order {}",
                list(
                    &shape
                        .columns
                        .iter()
                        .map(|c| c.name.clone())
                        .collect::<Vec<_>>()
                )
            ));
        }
        what.extend(shape.alter.iter().cloned());
        what.extend(shape.deferred.iter().map(|(_, a)| a.clone()));
        for d in &shape.dropped {
            if !shape.alter.iter().any(|a| a.contains(d.as_str())) {
                what.push(format!("DROP COLUMN {}", q(d)));
            }
        }
        if !shape.order_by.is_empty() {
            what.push(format!(
                "rows written in the order of {}",
                list(&shape.order_by)
            ));
        }
        if let Some(t) = &shape.tablespace {
            what.push(format!("in tablespace {t}"));
        }
        if let Some(r) = &shape.reloptions {
            what.push(format!("WITH ({})", r.join(", ")));
        }
        if what.is_empty() {
            "rebuilt as it is (a compact copy: no dead rows, no bloat)".to_string()
        } else {
            format!("rebuilt: {}", what.join("; "))
        }
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
        let mut s = match self.shape.as_ref().filter(|s| !s.columns.is_empty()) {
            Some(shape) => Self::columns_ddl_of(&self.source(), &shape.columns),
            None => self.columns_ddl(&self.source()),
        };
        if self.target.partitioned() {
            s.truncate(s.trim_end().len());
            s.truncate(s.len() - 1); // the `;`
            s.push_str(&format!(" PARTITION BY {};\n", self.target.partition_by()));
        } else {
            s.push('\n');
            for c in self.target.changes() {
                s = s.replace(
                    &format!("    {} {}", q(&c.column), c.old_type),
                    &format!("    {} {}", q(&c.column), c.new_type),
                );
            }
        }
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
        Self::columns_ddl_of(table, &self.facts.columns)
    }

    fn columns_ddl_of(table: &str, columns: &[crate::playbook::facts::Column]) -> String {
        let cols: Vec<String> = columns
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

impl ShadowPlan {
    /// How the old table is kept after the swap, as the swap step says it.
    fn reverse_words(&self) -> &'static str {
        match self.reverse {
            ReverseSync::Logical | ReverseSync::Auto => "a publication of the new table and a replication slot (after the swap they keep its changes for a rollback, with no trigger on the writers' path; `lockstep sync-back` or the rollback applies them to the old table)",
            ReverseSync::Deferred => "the reverse log and its trigger function (after the swap the trigger logs each changed key; the rollback applies them to the old table)",
            ReverseSync::Sync => "the reverse function (after the swap its trigger writes each change to the old table too)",
        }
    }
}
