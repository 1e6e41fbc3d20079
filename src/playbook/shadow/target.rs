//! The target definition of a shadow rebuild: what the new table is. A partitioned table,
//! or the same table rebuilt with some columns changed; the engine asks the target for the
//! new table's DDL, its index builds, its storage settings and how a row of the table
//! becomes a row of the new one, and everything else (capture, copy, replay, verification,
//! swap) works the same for any target.

use serde::{Deserialize, Serialize};

use super::{ChildIndex, IndexJob, ShadowPlan};
use crate::playbook::facts::Index;
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
    /// The same table, columns in the same order, with some columns of another type.
    Rebuilt { changes: Vec<ColumnChange> },
}

/// A column of the new table of another type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnChange {
    pub column: String,
    pub old_type: String,
    pub new_type: String,
    /// The new value, an expression over the table's row (its columns unqualified).
    pub using: String,
    /// The old value, an expression over the new table's row, for the reverse sync.
    pub back: String,
}

impl Target {
    /// `RANGE (col)`, `LIST (col)`, `HASH (col)` (nothing for a table that is not
    /// partitioned).
    pub fn partition_by(&self) -> &str {
        match self {
            Target::Partitioned { partition_by, .. } => partition_by,
            Target::Rebuilt { .. } => "",
        }
    }

    pub fn partitioned(&self) -> bool {
        matches!(self, Target::Partitioned { .. })
    }

    /// The columns whose type changes.
    pub fn changes(&self) -> &[ColumnChange] {
        match self {
            Target::Partitioned { .. } => &[],
            Target::Rebuilt { changes } => changes,
        }
    }
}

impl ShadowPlan {
    /// Creating the new table (and its partitions) with autovacuum off while copying,
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
        let like = format!(
            "LIKE {} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS{compression}",
            self.source()
        );
        let mut out = vec![match &self.target {
            Target::Partitioned { partition_by, .. } => format!(
                "CREATE TABLE {} ({like}) PARTITION BY {partition_by}{tablespace}",
                self.shadow()
            ),
            Target::Rebuilt { .. } => {
                let mut options = vec!["autovacuum_enabled = off".to_string()];
                options.extend(
                    f.reloptions
                        .iter()
                        .filter(|o| !o.starts_with("autovacuum_enabled="))
                        .cloned(),
                );
                format!(
                    "CREATE {}TABLE {} ({like}) WITH ({}){tablespace}",
                    if f.persistence == "u" {
                        "UNLOGGED "
                    } else {
                        ""
                    },
                    self.shadow(),
                    options.join(", ")
                )
            }
        }];
        // Columns of another type: on the empty table, in place (their order stays).
        for c in self.target.changes() {
            out.push(format!(
                "ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::{}",
                self.shadow(),
                q(&c.column),
                c.new_type,
                q(&c.column),
                c.new_type
            ));
        }
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
        if !self.target.partitioned() {
            return self.table_index_sql();
        }
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
                    let deferral = deferral(&c.definition);
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

    /// The indexes of a new table that is not partitioned: each built on it, primary key
    /// first, under the new table's names (which the swap renames), constraints made from
    /// theirs.
    fn table_index_sql(&self) -> Vec<IndexJob> {
        let shadow = self.shadow();
        let one = |name: String, build: Vec<String>, unique: bool| IndexJob {
            first: None,
            children: vec![ChildIndex {
                name,
                build,
                attach: None,
            }],
            last: None,
            unique,
        };
        let mut jobs = Vec::new();
        if !self.key.is_empty() {
            let pk = q(&self.names.shadow_pk);
            jobs.push(one(
                self.names.shadow_pk.clone(),
                vec![
                    format!("CREATE UNIQUE INDEX {pk} ON {shadow} ({})", list(&self.key)),
                    format!(
                        "ALTER TABLE {shadow} ADD CONSTRAINT {pk} PRIMARY KEY USING INDEX {pk}"
                    ),
                ],
                false,
            ));
        }
        for (ix, (temp, _)) in self.facts.indexes.iter().zip(&self.names.indexes) {
            let name = q(temp);
            let build = match &ix.constraint {
                Some(c) if c.definition.starts_with("EXCLUDE") => {
                    vec![format!(
                        "ALTER TABLE {shadow} ADD CONSTRAINT {name} {}",
                        c.definition
                    )]
                }
                Some(c) => vec![
                    format!("CREATE UNIQUE INDEX {name} ON {shadow}{}", ix.tail),
                    format!(
                        "ALTER TABLE {shadow} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}{}",
                        deferral(&c.definition)
                    ),
                ],
                None => vec![format!(
                    "CREATE {}INDEX {name} ON {shadow}{}",
                    if ix.unique { "UNIQUE " } else { "" },
                    ix.tail
                )],
            };
            jobs.push(one(temp.clone(), build, is_unique(ix)));
        }
        jobs
    }

    /// Autovacuum back on for the partitions, and the original storage parameters: in the
    /// swap. Earlier, autovacuum would vacuum every freshly filled partition while the
    /// runner builds, replays and verifies, and a worker going from partition to partition
    /// held up swap attempt after swap attempt (measured with `lockstep demo`: 29.5 s of
    /// retries, each cancelling the worker's current partition only).
    pub fn storage_sql(&self) -> Vec<String> {
        // The tables that hold rows: the partitions, or the new table itself.
        let tables: Vec<String> = if self.target.partitioned() {
            self.names
                .partitions
                .iter()
                .map(|p| self.rel(&p.name))
                .collect()
        } else {
            vec![self.shadow()]
        };
        let mut out: Vec<String> = tables
            .iter()
            .map(|t| format!("ALTER TABLE {t} RESET (autovacuum_enabled)"))
            .collect();
        if !self.facts.reloptions.is_empty() {
            for t in &tables {
                out.push(format!(
                    "ALTER TABLE {t} SET ({})",
                    self.facts.reloptions.join(", ")
                ));
            }
        }
        out
    }
}

impl ShadowPlan {
    /// The change of column `c`, if its type changes.
    pub(super) fn change(&self, c: &str) -> Option<&ColumnChange> {
        self.target.changes().iter().find(|x| x.column == c)
    }

    /// How a column of the new table is made from the table's row (`FROM table`, its
    /// columns unqualified): the column, or its conversion.
    fn converted(&self, c: &str) -> String {
        match self.change(c) {
            Some(x) => format!("({})::{}", x.using, x.new_type),
            None => q(c),
        }
    }

    /// The select list that makes the new table's inserted columns from the table's row.
    pub(super) fn source_cols(&self) -> String {
        self.cols()
            .iter()
            .map(|c| self.converted(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every column of a row of the new table, made from the table's row (for comparing).
    pub(super) fn source_row(&self) -> String {
        self.facts
            .columns
            .iter()
            .map(|c| self.converted(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The new table's key, with its columns' new types.
    pub(super) fn shadow_keys(&self) -> crate::playbook::keyset::Keyset {
        let mut ks = self.keys();
        for (c, t) in &mut ks.columns {
            if let Some(x) = self.change(c) {
                *t = x.new_type.clone();
            }
        }
        ks
    }

    /// `prefix.k` of a logged key, in the new table's type when `shadow` (the log keeps
    /// the table's keys).
    pub(super) fn logged_key(&self, c: &str, prefix: &str, shadow: bool) -> String {
        match self.change(c).filter(|_| shadow) {
            Some(x) => format!("{prefix}.{}::{}", q(c), x.new_type),
            None => format!("{prefix}.{}", q(c)),
        }
    }
}

/// ` DEFERRABLE[ INITIALLY DEFERRED]` as a constraint's definition says.
fn deferral(definition: &str) -> String {
    if definition.contains("NOT DEFERRABLE") {
        return String::new();
    }
    ["DEFERRABLE", "INITIALLY DEFERRED"]
        .iter()
        .filter(|w| definition.contains(*w))
        .map(|w| format!(" {w}"))
        .collect()
}

/// Whether the rows must match the table at one moment before the index is built.
fn is_unique(ix: &Index) -> bool {
    ix.unique || ix.constraint.is_some()
}
