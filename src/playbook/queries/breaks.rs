//! Which uses of a table a change breaks, comparing the definitions before and after. Each
//! rule was seen on PostgreSQL 15 against a table partitioned the way lockstep partitions
//! one (`tests/queries.rs` runs the main ones again):
//!
//! - `ON CONFLICT (cols)` needs a unique key of exactly those columns; without one, PostgreSQL
//!   refuses the statement ("there is no unique or exclusion constraint matching the ON
//!   CONFLICT specification");
//! - `ON CONFLICT ON CONSTRAINT name` fails once the constraint is gone, and conflicts on other
//!   columns when the constraint's columns change (an insert with an existing `id` and another
//!   partition key adds a row);
//! - `ON CONFLICT … DO UPDATE SET` of the partition column fails when the row would move to
//!   another partition ("invalid ON UPDATE specification");
//! - `INSERT` without a column list fills the columns by position;
//! - on a partitioned table: `SELECT … FROM ONLY t`, `UPDATE ONLY t`, `DELETE FROM ONLY t` see
//!   no row; `TRUNCATE ONLY t`, `COPY t TO`, `CREATE INDEX CONCURRENTLY`, `CLUSTER t` (without
//!   an index) and `ALTER TABLE t CLUSTER ON` fail; `WHERE ctid = …` matches a row in every
//!   partition that has one at that place (`UPDATE … WHERE ctid = '(0,1)'` updated 2 rows).

use std::collections::BTreeSet;

use super::definition::{Key, Shape};
use super::statement::{Conflict, Insert, Target, Use};
use crate::playbook::names::{list, quote_ident};

/// A table's definition before and after a change.
#[derive(Debug, Clone)]
pub struct Change {
    pub before: Shape,
    pub after: Shape,
    /// The table, quoted and qualified (for the suggestions).
    pub table: String,
}

/// Why a statement breaks, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    pub why: String,
    pub instead: String,
    /// It keeps working, but does something else.
    pub changes_meaning: bool,
}

/// A statement that fails or gives wrong results.
fn broken(why: String, instead: String) -> Why {
    Why {
        why,
        instead,
        changes_meaning: false,
    }
}

impl Change {
    /// Whether the table becomes partitioned.
    fn partitions(&self) -> bool {
        self.before.partition_key.is_none() && self.after.partition_key.is_some()
    }

    /// Whether the columns change (their order, or which there are).
    fn columns_change(&self) -> bool {
        !self.before.columns.is_empty()
            && !self.after.columns.is_empty()
            && self.before.columns != self.after.columns
    }

    /// Whether anything the rules look at changes: when not, no statement needs reading.
    pub fn can_break(&self) -> bool {
        self.partitions()
            || self.columns_change()
            || self
                .before
                .keys
                .iter()
                .any(|k| !self.after.keys.contains(k))
    }

    /// How `u` breaks under the change (empty: it does not, as far as lockstep knows).
    pub fn breaks(&self, u: &Use) -> Vec<Why> {
        let t = &self.table;
        let why = |why: String, instead: String| vec![broken(why, instead)];
        match u {
            Use::Insert(i) => self.insert(i),
            _ if !self.partitions() => Vec::new(),
            Use::Only => why(
                "with `ONLY` it sees no row once the table is partitioned: the rows are in its partitions".into(),
                "leave out `ONLY`".into(),
            ),
            Use::TruncateOnly => why(
                "fails on a partitioned table (\"cannot truncate only a partitioned table\")".into(),
                format!("`TRUNCATE {t}` (without `ONLY`) empties the partitions"),
            ),
            Use::CopyTo => why(
                "fails on a partitioned table (\"cannot copy from partitioned table\")".into(),
                format!("write `COPY (SELECT … FROM {t}) TO …`"),
            ),
            Use::Ctid => why(
                "a `ctid` names a row only within one partition: the condition matches the row at that place in every partition".into(),
                match self.after.keys.iter().find(|k| k.primary) {
                    Some(k) => format!("find rows by the primary key ({})", list(&k.elements)),
                    None => "find rows by a key of the table".into(),
                },
            ),
            Use::CreateIndexConcurrently => why(
                "fails on a partitioned table (\"cannot create index on partitioned table … concurrently\")".into(),
                "build it with a playbook of kind `index` (each partition's index concurrently, then attached)".into(),
            ),
            Use::Cluster => why(
                "fails on the new table, which has no clustered index (\"there is no previously clustered index\")".into(),
                format!("name the index: `CLUSTER {t} USING …` (PostgreSQL 15 and later)"),
            ),
            Use::ClusterOn => why(
                "fails on a partitioned table (\"cannot mark index clustered in partitioned table\")".into(),
                format!("name the index each time: `CLUSTER {t} USING …` (PostgreSQL 15 and later)"),
            ),
        }
    }

    fn insert(&self, i: &Insert) -> Vec<Why> {
        let mut out = Vec::new();
        if self.columns_change() && !i.column_list && !i.default_values {
            let b = &self.before.columns;
            let n = i.values.unwrap_or(b.len()).min(b.len());
            if n > 0 && self.after.columns.get(..n) != Some(&b[..n]) {
                out.push(broken(
                    format!(
                        "an `INSERT` without a column list fills the columns by position, and they change from ({}) to ({})",
                        list(b),
                        list(&self.after.columns)
                    ),
                    format!(
                        "name the columns: `INSERT INTO {} ({}) …`",
                        self.table,
                        list(&b[..n])
                    ),
                ));
            }
        }
        if let Some(c) = &i.conflict {
            out.extend(self.conflict(c));
        }
        out
    }

    fn conflict(&self, c: &Conflict) -> Vec<Why> {
        let mut out = Vec::new();
        match &c.target {
            Target::Columns {
                columns,
                expressions: false,
                predicate,
            } => {
                let want: BTreeSet<String> = columns.iter().cloned().collect();
                let matching = |s: &Shape| -> Vec<Key> {
                    s.keys
                        .iter()
                        .filter(|k| {
                            (!k.partial || *predicate) && k.columns(s).as_ref() == Some(&want)
                        })
                        .cloned()
                        .collect()
                };
                let before = matching(&self.before);
                if !before.is_empty() && matching(&self.after).is_empty() {
                    let what = before
                        .iter()
                        .map(|k| {
                            let now = self.after.keys.iter().find(|a| a.name == k.name);
                            format!(
                                "{}, which {}",
                                k.describe(),
                                match now {
                                    Some(a) => format!("becomes ({})", list(&a.elements)),
                                    None => "the change removes".into(),
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; and on ");
                    out.push(broken(
                        format!(
                            "`ON CONFLICT ({})` relies on {what}: PostgreSQL refuses it (\"there is no unique or exclusion constraint matching the ON CONFLICT specification\")",
                            list(columns)
                        ),
                        self.wider_key(&want),
                    ));
                }
            }
            Target::Constraint(name) => {
                let before = self.before.keys.iter().find(|k| &k.name == name);
                let after = self.after.keys.iter().find(|k| &k.name == name);
                match (before, after) {
                    (Some(b), None) => out.push(broken(
                        format!(
                            "`ON CONFLICT ON CONSTRAINT {}` names {}, which the change removes: the statement fails",
                            quote_ident(name),
                            b.describe()
                        ),
                        "keep the constraint, or name the columns of a unique key that stays".into(),
                    )),
                    (Some(b), Some(a)) if a.elements != b.elements => {
                        let extra: Vec<&String> =
                            a.elements.iter().filter(|e| !b.elements.contains(e)).collect();
                        out.push(Why {
                            why: format!(
                                "`ON CONFLICT ON CONSTRAINT {}` still works, but the constraint becomes ({}) instead of ({}){}",
                                quote_ident(name),
                                list(&a.elements),
                                list(&b.elements),
                                if extra.is_empty() {
                                    ", so other rows conflict".to_string()
                                } else {
                                    format!(
                                        ": a row that repeats ({}) with another {} is inserted instead of conflicting",
                                        list(&b.elements),
                                        list(&extra)
                                    )
                                }
                            ),
                            instead: "make sure the application never repeats those values, or keep the key as it is".into(),
                            changes_meaning: true,
                        })
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        if let Some(pk) = &self.after.partition_key {
            if self.partitions() {
                let moved: Vec<&String> = c.sets.iter().filter(|s| pk.contains(s)).collect();
                if !moved.is_empty() {
                    out.push(broken(
                        format!(
                            "`DO UPDATE SET {} = …` fails when the new value belongs in another partition (\"invalid ON UPDATE specification\")",
                            list(&moved)
                        ),
                        format!(
                            "leave {} out of the upsert, and change it with an `UPDATE` (which moves the row)",
                            list(&moved)
                        ),
                    ));
                }
            }
        }
        out
    }

    /// What to write instead of `ON CONFLICT (want)`: the smallest unique key of the new table
    /// that holds those columns.
    fn wider_key(&self, want: &BTreeSet<String>) -> String {
        let key = self
            .after
            .keys
            .iter()
            .filter(|k| !k.partial)
            .filter_map(|k| Some((k, k.columns(&self.after)?)))
            .filter(|(_, cols)| cols.is_superset(want))
            .min_by_key(|(k, _)| k.elements.len());
        match key {
            Some((k, _)) => {
                let extra: Vec<&String> =
                    k.elements.iter().filter(|e| !want.contains(*e)).collect();
                format!(
                    "write `ON CONFLICT ({})`{}",
                    list(&k.elements),
                    if extra.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (then a row that repeats ({}) with another {} is inserted, not a conflict)",
                            list(&want.iter().collect::<Vec<_>>()),
                            list(&extra)
                        )
                    }
                )
            }
            None => format!(
                "keep a unique key on ({}), or change the statement",
                list(&want.iter().collect::<Vec<_>>())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::definition::shape;
    use super::super::statement::{uses, Table};
    use super::*;

    const BEFORE: &str = "CREATE TABLE public.events (\n    id bigint NOT NULL,\n    recorded_at timestamp with time zone NOT NULL,\n    payload text\n);\n\
        ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id);\n\
        CREATE UNIQUE INDEX events_ref ON public.events USING btree (payload, recorded_at);\n";

    /// From [`BEFORE`] to `after`.
    fn change_to(after: &str) -> Change {
        Change {
            before: shape(BEFORE),
            after: shape(after),
            table: "public.events".into(),
        }
    }

    fn partitioned() -> Change {
        change_to(
                "CREATE TABLE public.events (\n    id bigint NOT NULL,\n    recorded_at timestamp with time zone NOT NULL,\n    payload text\n) PARTITION BY RANGE (recorded_at);\n\
                 ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, recorded_at);\n\
                 CREATE UNIQUE INDEX events_ref ON public.events USING btree (payload, recorded_at);\n",
        )
    }

    fn breaks(c: &Change, sql: &str) -> Vec<Why> {
        let table = Table {
            schema: "public".into(),
            name: "events".into(),
            unqualified: true,
        };
        uses(sql, &table)
            .unwrap()
            .iter()
            .flat_map(|u| c.breaks(u))
            .collect()
    }

    #[test]
    fn an_upsert_on_the_old_key_breaks_when_the_key_widens() {
        let c = partitioned();
        assert!(c.can_break());
        let w = breaks(
            &c,
            "INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0].why,
            "`ON CONFLICT (id)` relies on the primary key events_pkey (id), which becomes (id, recorded_at): PostgreSQL refuses it (\"there is no unique or exclusion constraint matching the ON CONFLICT specification\")"
        );
        assert_eq!(
            w[0].instead,
            "write `ON CONFLICT (id, recorded_at)` (then a row that repeats (id) with another recorded_at is inserted, not a conflict)"
        );
        // The new key, in any order, and a key that stays, are fine.
        assert!(breaks(
            &c,
            "INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT (recorded_at, id) DO NOTHING"
        )
        .is_empty());
        assert!(breaks(
            &c,
            "INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT (recorded_at, payload) DO NOTHING"
        )
        .is_empty());
        // A target no key matched before: lockstep cannot tell what it relies on.
        assert!(breaks(
            &c,
            "INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT (payload) DO NOTHING"
        )
        .is_empty());
        assert!(breaks(&c, "INSERT INTO events (id, recorded_at) VALUES ($1, $2)").is_empty());
    }

    #[test]
    fn the_partition_column_in_an_upsert_and_the_changed_constraint() {
        let c = partitioned();
        let w = breaks(&c, "INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT (id, recorded_at) DO UPDATE SET recorded_at = EXCLUDED.recorded_at, payload = $4");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].why.contains("`DO UPDATE SET recorded_at = …` fails"),
            "{w:?}"
        );
        let w = breaks(&c, "INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT ON CONSTRAINT events_pkey DO NOTHING");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].why.contains("still works, but the constraint becomes (id, recorded_at) instead of (id): a row that repeats (id) with another recorded_at is inserted"), "{w:?}");
    }

    #[test]
    fn what_only_a_partitioned_table_breaks() {
        let c = partitioned();
        for sql in [
            "SELECT * FROM ONLY events",
            "TRUNCATE ONLY events",
            "COPY events TO STDOUT",
            "UPDATE events SET payload = $1 WHERE ctid = $2",
            "CREATE INDEX CONCURRENTLY i ON events (payload)",
            "CLUSTER events",
            "ALTER TABLE events CLUSTER ON events_pkey",
        ] {
            assert_eq!(breaks(&c, sql).len(), 1, "{sql}");
        }
        // The same on a table that stays as it is.
        let same = change_to(BEFORE);
        assert!(!same.can_break());
        assert!(breaks(&same, "SELECT * FROM ONLY events").is_empty());
    }

    #[test]
    fn a_dropped_unique_index_and_a_column_order_change() {
        let dropped = change_to(&BEFORE.replace(
            "CREATE UNIQUE INDEX events_ref ON public.events USING btree (payload, recorded_at);\n",
            "",
        ));
        assert!(dropped.can_break());
        let w = breaks(&dropped, "INSERT INTO events VALUES ($1, $2, $3) ON CONFLICT (recorded_at, payload) DO UPDATE SET id = EXCLUDED.id");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].why.contains(
                "the unique key events_ref (payload, recorded_at), which the change removes"
            ),
            "{w:?}"
        );
        assert_eq!(
            w[0].instead,
            "keep a unique key on (payload, recorded_at), or change the statement"
        );
        // Partitioning is not part of this change.
        assert!(breaks(&dropped, "COPY events TO STDOUT").is_empty());

        let reordered = change_to(&BEFORE.replace(
            "    id bigint NOT NULL,\n    recorded_at timestamp with time zone NOT NULL,\n    payload text",
            "    recorded_at timestamp with time zone NOT NULL,\n    payload text,\n    id bigint NOT NULL",
        ));
        assert!(reordered.can_break());
        let w = breaks(&reordered, "INSERT INTO events VALUES ($1, $2, $3)");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0].instead,
            "name the columns: `INSERT INTO public.events (id, recorded_at, payload) …`"
        );
        assert_eq!(
            breaks(&reordered, "INSERT INTO events SELECT * FROM archive").len(),
            1
        );
        assert!(breaks(&reordered, "INSERT INTO events (id) VALUES ($1)").is_empty());
        assert!(breaks(&reordered, "INSERT INTO events DEFAULT VALUES").is_empty());
        // A column added at the end leaves the first ones where they were.
        let appended =
            change_to(&BEFORE.replace("    payload text", "    payload text,\n    extra integer"));
        assert!(breaks(&appended, "INSERT INTO events VALUES ($1, $2, $3)").is_empty());
        assert_eq!(
            breaks(&appended, "INSERT INTO events SELECT * FROM archive").len(),
            0
        );
    }
}
