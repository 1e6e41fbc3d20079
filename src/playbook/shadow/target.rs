//! The target definition of a shadow rebuild: what the new table is. Today a partitioned
//! table; the engine asks the target for the new table's DDL, its index builds and its
//! storage settings, and everything else (capture, copy, replay, verification, swap) works
//! the same for any target.

use serde::{Deserialize, Serialize};

use super::{ChildIndex, IndexJob, ShadowPlan};
use crate::playbook::names::{fit, list, quote_ident as q};

/// What the new table is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// Partitioned `BY partition_by` (`RANGE (col)`, `LIST (col)`, `HASH (col)`) into the
    /// partitions named in the plan.
    Partitioned {
        partition_column: String,
        partition_by: String,
    },
}

impl Target {
    /// `RANGE (col)`, `LIST (col)`, `HASH (col)`.
    pub fn partition_by(&self) -> &str {
        match self {
            Target::Partitioned { partition_by, .. } => partition_by,
        }
    }
}

impl ShadowPlan {
    /// Creating the partitioned table and its partitions (autovacuum off while copying),
    /// with what the empty table carries over from the table (its foreign keys, valid CHECK
    /// constraints, comments, statistics targets, extended statistics). No index yet: the
    /// copy is faster without them, and only lockstep writes to the table.
    pub fn shadow_sql(&self) -> Vec<String> {
        let f = &self.facts;
        // Not `INCLUDING CONSTRAINTS`: it would copy a NOT VALID check as a valid one, which
        // the copy's rows may break (see carry.rs).
        let compression = if f.server_version >= 140_000 {
            " INCLUDING COMPRESSION"
        } else {
            ""
        };
        let tablespace = f
            .tablespace
            .as_ref()
            .map_or(String::new(), |t| format!(" TABLESPACE {t}"));
        let mut out = vec![format!(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS{compression}) PARTITION BY {}{tablespace}",
            self.shadow(),
            self.source(),
            self.target.partition_by()
        )];
        for p in &self.names.partitions {
            out.push(format!(
                "CREATE TABLE {} PARTITION OF {} {} WITH (autovacuum_enabled = off){tablespace}",
                self.rel(&p.name),
                self.shadow(),
                p.bound
            ));
        }
        // Under their own names: a constraint's name is the table's alone.
        for (name, def) in &f.outbound_fks {
            if !f.outbound_not_valid.contains(name) {
                out.push(format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} {def}",
                    self.shadow(),
                    q(name)
                ));
            }
        }
        if !f.owner.is_empty() {
            for t in std::iter::once(self.shadow())
                .chain(self.names.partitions.iter().map(|p| self.rel(&p.name)))
            {
                out.push(format!("ALTER TABLE {t} OWNER TO {}", q(&f.owner)));
            }
        }
        out.extend(self.create_extras_sql());
        out
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
                let child_name = |p: &super::Partition| fit(&format!("{}_{i}_idx", p.name));
                // A unique constraint: each partition's index becomes a constraint of the
                // partition, which the parent's constraint then adopts.
                if let Some(c) = &ix.constraint {
                    let deferral: String = ["DEFERRABLE", "INITIALLY DEFERRED"]
                        .iter()
                        .filter(|w| {
                            c.definition.contains(*w) && !c.definition.contains("NOT DEFERRABLE")
                        })
                        .map(|w| format!(" {w}"))
                        .collect();
                    return IndexJob {
                        first: None,
                        children: self
                            .names
                            .partitions
                            .iter()
                            .map(|p| {
                                let name = child_name(p);
                                let part = self.rel(&p.name);
                                ChildIndex {
                                    build: vec![
                                        format!("CREATE UNIQUE INDEX {} ON {part}{}", q(&name), ix.tail),
                                        format!(
                                            "ALTER TABLE {part} ADD CONSTRAINT {0} UNIQUE USING INDEX {0}{deferral}",
                                            q(&name)
                                        ),
                                    ],
                                    name,
                                    attach: None,
                                }
                            })
                            .collect(),
                        last: Some((
                            format!(
                                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                                self.shadow(),
                                q(parent),
                                c.definition
                            ),
                            self.rel(parent),
                        )),
                        unique: true,
                    };
                }
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
                            let name = child_name(p);
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
}
