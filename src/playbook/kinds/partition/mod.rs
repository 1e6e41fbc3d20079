//! `partition`: turn a table into a partitioned one online, as a shadow rebuild whose target
//! is the partitioned definition (range by interval or integer width, list, hash), with
//! partitions covering the data, `premake` future ones and a DEFAULT one.
//!
//! ```toml
//! [partition]
//! column = "created_at"
//! strategy = "range"                 # range | list | hash
//! interval = "1 month"               # range over a timestamp/date: 1 day, 7 days, 1 month …
//! # interval = 100000                # range over an integer column: the width
//! premake = 3                        # range: future partitions beyond the data
//! default_partition = true           # range/list (default true): a DEFAULT partition for rows
//!                                    # outside every other one
//! naming = "{table}_p{start}"        # {table}, {start}, {n}
//! # [[partition.lists]]              # list: one partition per entry
//! # name = "eu"
//! # values = ["de", "fr"]
//! # modulus = 8                      # hash
//! ```

mod bounds;

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::{self, Facts};
use crate::playbook::kind::Kind;
use crate::playbook::names::{list, quote_ident as q};
use crate::playbook::settings::literal;
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::shadow::{Names, ShadowPlan, Target};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartition {
    column: String,
    strategy: String,
    interval: Option<toml::Value>,
    premake: Option<u32>,
    default_partition: Option<bool>,
    naming: Option<String>,
    lists: Option<Vec<RawList>>,
    modulus: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawList {
    name: String,
    values: Vec<toml::Value>,
}

/// A `partition` playbook's `[partition]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub column: String,
    pub strategy: Strategy,
    pub premake: u32,
    pub default_partition: bool,
    pub naming: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Over a timestamp/date column: a PostgreSQL interval (`1 month`).
    RangeInterval(String),
    /// Over an integer column: the width of each partition.
    RangeWidth(i64),
    List(Vec<ListPartition>),
    Hash(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListPartition {
    pub name: String,
    /// Values as SQL literals.
    pub values: Vec<String>,
}

impl Kind for Partition {
    const NAME: &'static str = "partition";
    const WORKERS: bool = true;
    const DEPENDENTS: bool = true;
    const SWAPS: bool = true;
    type Raw = RawPartition;
    type Plan = ShadowPlan;

    fn parse(p: RawPartition, at: &Parse<'_>) -> Result<Self, SpecError> {
        parse(p, at)
    }

    async fn prepare(
        &self,
        pb: &Common,
        client: &Client,
        run_id: &str,
    ) -> Result<(ShadowPlan, Vec<String>), EngineError> {
        let facts = facts::read(client, &pb.table).await?;
        let mut refusals = preflight(self, &facts);
        let partitions = if refusals.iter().any(|r| r.contains("partition column")) {
            Vec::new()
        } else {
            self.partitions(client, &facts).await?
        };
        let names = Names::new(&facts, run_id, partitions);
        let mut plan = self.plan(facts, names);
        refusals.extend(plan.definition_refusals(&pb.dependents));
        refusals.extend(plan.settle(client, pb).await?);
        Ok((plan, refusals))
    }
}

impl Partition {
    /// The partitions of the new table, covering the table's data.
    pub(crate) async fn partitions(
        &self,
        client: &Client,
        facts: &Facts,
    ) -> Result<Vec<crate::playbook::shadow::Partition>, EngineError> {
        bounds::partitions(client, self, facts).await
    }

    /// The shadow plan: the table rebuilt into its partitioned definition.
    pub fn plan(&self, facts: Facts, names: Names) -> ShadowPlan {
        let method = match self.strategy {
            Strategy::RangeInterval(_) | Strategy::RangeWidth(_) => "RANGE",
            Strategy::List(_) => "LIST",
            Strategy::Hash(_) => "HASH",
        };
        ShadowPlan {
            key: new_key(&facts, &self.column),
            target: Target::Partitioned {
                partition_column: self.column.clone(),
                partition_by: format!("{method} ({})", q(&self.column)),
            },
            facts,
            names,
            shape: None,
            logical: None,
            trigger_because: None,
            reverse: crate::playbook::settings::ReverseSync::default(),
        }
    }
}

/// Checks that do not need the database beyond the facts; each string is a refusal.
pub fn preflight(part: &Partition, facts: &Facts) -> Vec<String> {
    let mut out = facts.refusals.clone();
    let col = &part.column;
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
            match &part.strategy {
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

pub(crate) fn parse(p: RawPartition, at: &Parse<'_>) -> Result<Partition, SpecError> {
    let bad = |key: &str, message: String| at.bad(key, message);
    if p.column.is_empty() {
        return Err(bad("partition.column", "must not be empty".into()));
    }
    let strategy = match p.strategy.as_str() {
        "range" => match &p.interval {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => {
                Strategy::RangeInterval(s.trim().to_string())
            }
            Some(toml::Value::Integer(i)) if *i > 0 => Strategy::RangeWidth(*i),
            Some(_) => {
                return Err(bad(
                    "partition.interval",
                    "expected an interval such as \"1 month\" (timestamp/date column) or a positive width (integer column)".into(),
                ))
            }
            None => {
                return Err(bad(
                    "partition.interval",
                    "required for strategy = \"range\"".into(),
                ))
            }
        },
        "list" => {
            let lists = p.lists.clone().unwrap_or_default();
            if lists.is_empty() {
                return Err(bad(
                    "partition.lists",
                    "strategy = \"list\" needs at least one [[partition.lists]] entry".into(),
                ));
            }
            let mut out = Vec::new();
            for (i, l) in lists.iter().enumerate() {
                let values: Option<Vec<String>> = l.values.iter().map(literal).collect();
                match values {
                    Some(v) if !v.is_empty() && !l.name.is_empty() => out.push(ListPartition {
                        name: l.name.clone(),
                        values: v,
                    }),
                    _ => {
                        return Err(bad(
                            &format!("partition.lists[{i}]"),
                            "needs a name and a non-empty list of string, integer or boolean values".into(),
                        ))
                    }
                }
            }
            Strategy::List(out)
        }
        "hash" => match p.modulus {
            Some(m) if (2..=1024).contains(&m) => Strategy::Hash(m),
            _ => {
                return Err(bad(
                    "partition.modulus",
                    "strategy = \"hash\" needs a modulus from 2 to 1024".into(),
                ))
            }
        },
        other => {
            return Err(bad(
                "partition.strategy",
                format!("expected range, list or hash, found `{other}`"),
            ))
        }
    };
    if p.lists.is_some() && !matches!(strategy, Strategy::List(_)) {
        return Err(bad(
            "partition.lists",
            "only for strategy = \"list\"".into(),
        ));
    }
    if p.modulus.is_some() && !matches!(strategy, Strategy::Hash(_)) {
        return Err(bad(
            "partition.modulus",
            "only for strategy = \"hash\"".into(),
        ));
    }
    let naming = p.naming.unwrap_or_else(|| "{table}_p{start}".to_string());
    if !naming.contains("{start}") && !naming.contains("{n}") {
        return Err(bad(
            "partition.naming",
            "must contain {start} or {n} so partition names differ".into(),
        ));
    }
    // Safer by default: a row outside every partition would make the change capture (and so
    // the application's write) fail.
    let default_partition = p
        .default_partition
        .unwrap_or(!matches!(strategy, Strategy::Hash(_)));
    Ok(Partition {
        column: p.column,
        strategy,
        premake: p.premake.unwrap_or(3),
        default_partition,
        naming,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::facts::example as facts;
    use crate::playbook::kinds::Spec;
    use crate::playbook::shadow::Partition as Part;
    use crate::playbook::spec::Playbook;

    fn playbook() -> Playbook {
        crate::playbook::spec::parse(
            "kind = \"partition\"\ntable = '\"Sales Data\".\"Order\"'\n[partition]\ncolumn = \"select\"\nstrategy = \"range\"\ninterval = \"1 month\"\n",
            "p",
        )
        .unwrap()
    }

    fn part(pb: &Playbook) -> &Partition {
        match &pb.kind {
            Spec::Partition(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quotes_every_identifier() {
        let f = facts();
        let names = Names::new(
            &f,
            "r1",
            vec![Part {
                name: "Order_p202601".into(),
                bound: "FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')".into(),
            }],
        );
        let pb = playbook();
        let plan = part(&pb).plan(f, names);
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
        let cap = plan.capture().install_sql().join("\n");
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
        let replay = plan.capture().replay_sql(true).join(";\n");
        assert_eq!(
            plan.capture().replay_begin_sql(),
            "LOCK TABLE \"Sales Data\".\"Order\" IN ACCESS SHARE MODE; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
        );
        assert!(replay.contains("DELETE FROM \"Sales Data\".\"Order_lockstep_new\" t USING (SELECT DISTINCT id FROM lockstep.log_r1 WHERE ctid = ANY ($1::text::tid[])) l WHERE t.id = l.id"), "{replay}");
        assert!(replay.contains("SELECT id, \"select\", note FROM \"Sales Data\".\"Order\" t WHERE EXISTS (SELECT 1 FROM lockstep.log_r1 l WHERE t.id = l.id AND l.ctid = ANY ($1::text::tid[]))"), "{replay}");
        assert!(
            replay.ends_with("DELETE FROM lockstep.log_r1 WHERE ctid = ANY ($1::text::tid[])"),
            "{replay}"
        );
        assert!(!plan.capture().replay_sql(false).join(";").contains("$1"));
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
        // Grants and the reverse function are made before the swap, outside its lock.
        let prepare = plan.swap_prepare_sql().join("\n");
        assert!(
            prepare.contains("GRANT SELECT ON \"Sales Data\".\"Order_lockstep_new\" TO reader"),
            "{prepare}"
        );
        assert!(prepare.contains("CREATE OR REPLACE FUNCTION lockstep."), "{prepare}");
        assert!(!swap.contains("GRANT "), "{swap}");
        assert!(!swap.contains("CREATE OR REPLACE FUNCTION"), "{swap}");
        // Autovacuum comes on for the copy under the swap's lock, not before (a worker
        // vacuuming the copy would hold the swap up).
        assert!(!prepare.contains("autovacuum_enabled"), "{prepare}");
        assert!(swap.contains("RESET (autovacuum_enabled)"), "{swap}");
        assert_eq!(
            plan.swap_sql()[..2],
            plan.swap_locks_sql()[..],
            "the swap begins with its locks"
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
        let pb = playbook();
        let r = preflight(part(&pb), &f);
        assert!(r.iter().any(|m| m.contains("allows NULL")), "{r:?}");
        assert!(
            r.iter().any(|m| m.contains("unique index order_note")),
            "{r:?}"
        );
        let mut f = facts();
        f.pk_columns.clear();
        assert!(preflight(part(&pb), &f)
            .iter()
            .any(|m| m.contains("no primary key")));
        assert!(preflight(part(&pb), &facts()).is_empty());
        // [dependents] = "refuse" turns a view into a refusal.
        let mut f = facts();
        f.views.push(crate::playbook::facts::View {
            name: "public.recent".into(),
            definition: "SELECT 1".into(),
            options: Vec::new(),
        });
        assert!(preflight(part(&pb), &f).is_empty());
        let mut pb = playbook();
        let plan = part(&pb).plan(f.clone(), Names::new(&f, "r1", Vec::new()));
        assert!(plan.definition_refusals(&pb.common.dependents).is_empty());
        pb.common.dependents.recreate_views = false;
        assert!(plan
            .definition_refusals(&pb.common.dependents)
            .iter()
            .any(|m| m.contains("view public.recent") && m.contains("\"refuse\"")));
    }

    #[test]
    fn the_reverse_trigger_updates_rows_in_place() {
        let names = |f: &Facts| Names::new(f, "r1", Vec::new());
        let f = facts();
        let pb = playbook();
        let mut plan = part(&pb).plan(f.clone(), names(&f));
        // With `[swap] reverse = "sync"`, the reverse trigger (new table → old) keeps the old
        // table current.
        plan.reverse = crate::playbook::settings::ReverseSync::Sync;
        let rev = plan.reverse_function_sql().unwrap_or_default();
        assert!(
            rev.contains("IF TG_OP = 'UPDATE' AND NEW.id OPERATOR(pg_catalog.=) OLD.id THEN"),
            "{rev}"
        );
        assert!(rev.contains("UPDATE \"Sales Data\".\"Order_old\" SET \"select\" = NEW.\"select\", note = NEW.note WHERE id OPERATOR(pg_catalog.=) OLD.id"), "{rev}");
        // It runs with its owner's rights and a pinned search_path; an extension type's
        // equality is named with its schema.
        assert!(
            rev.contains("SECURITY DEFINER SET search_path = pg_catalog, pg_temp"),
            "{rev}"
        );
        let mut c = facts();
        c.columns[0].eq_schema = Some("public".into());
        let mut plan_c = part(&pb).plan(c.clone(), names(&c));
        plan_c.reverse = crate::playbook::settings::ReverseSync::Sync;
        assert!(plan_c
            .reverse_function_sql()
            .unwrap_or_default()
            .contains("WHERE id OPERATOR(public.=) OLD.id"));
        assert!(
            rev.contains("ON CONFLICT (id) DO UPDATE SET \"select\" = EXCLUDED.\"select\", note = EXCLUDED.note"),
            "{rev}"
        );
        // A GENERATED ALWAYS identity column outside the key cannot be SET: no in-place path.
        let mut g = facts();
        g.columns[2].identity = "a".into();
        let mut plan = part(&pb).plan(g.clone(), names(&g));
        plan.reverse = crate::playbook::settings::ReverseSync::Sync;
        assert!(!plan.reverse_function_sql().unwrap_or_default().contains("IF TG_OP = 'UPDATE' AND"));
    }
}
