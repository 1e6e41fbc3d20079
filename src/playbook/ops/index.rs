//! `index`, `reindex` and `drop-index`, each without blocking writes.
//!
//! - `index`: `CREATE INDEX CONCURRENTLY`; an INVALID leftover of an interrupted build is
//!   dropped (concurrently) and built again; progress comes from
//!   `pg_stat_progress_create_index`. On a partitioned table: the parent index `ON ONLY` the
//!   table, then each partition's index built concurrently and attached.
//! - `reindex`: `REINDEX INDEX CONCURRENTLY` (PostgreSQL 12+), after dropping the INVALID
//!   `<index>_ccnew`/`_ccold` leftovers of an interrupted one.
//! - `drop-index`: `DROP INDEX CONCURRENTLY`; the undo builds it again, concurrently, from its
//!   definition.

use super::{definition, Action, Extra, OpPlan, Step};
use crate::playbook::facts::Facts;
use crate::playbook::plan::fit;
use crate::playbook::spec::{Op, OpPlaybook};
use crate::sql::ir::quote_ident;

/// The name of the index an `index` playbook builds.
pub(crate) fn index_name(name: &Option<String>, facts: &Facts, op: &Op) -> String {
    if let Some(n) = name {
        return n.clone();
    }
    let Op::Index { tail, .. } = op else {
        return String::new();
    };
    // From the column names in the definition: letters, digits and underscores.
    let words: String = tail
        .split_once('(')
        .map_or("", |(_, r)| r)
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    let words: Vec<&str> = words.split('_').filter(|w| !w.is_empty()).collect();
    fit(&format!("{}_{}_idx", facts.name, words.join("_")))
}

/// `CREATE INDEX` → `CREATE INDEX CONCURRENTLY` in a `pg_get_indexdef` definition.
fn concurrently(def: &str) -> String {
    if let Some(rest) = def.strip_prefix("CREATE UNIQUE INDEX ") {
        format!("CREATE UNIQUE INDEX CONCURRENTLY {rest}")
    } else if let Some(rest) = def.strip_prefix("CREATE INDEX ") {
        format!("CREATE INDEX CONCURRENTLY {rest}")
    } else {
        def.to_string()
    }
}

pub fn plan(
    pb: &OpPlaybook,
    facts: &Facts,
    extra: &Extra,
    p: &mut OpPlan,
    refusals: &mut Vec<String>,
) {
    let table = facts.qualified();
    p.before = definition(facts, &[]);
    match &pb.op {
        Op::Index { tail, unique, name } => {
            let name = index_name(name, facts, &pb.op);
            let qix = super::rel(facts, &name);
            let u = if *unique { "UNIQUE " } else { "" };
            if facts.partitioned {
                let mut actions = vec![Action::Tx(vec![format!(
                    "CREATE {u}INDEX IF NOT EXISTS {} ON ONLY {table}{tail}",
                    quote_ident(&name)
                )])];
                for (i, part) in extra.partitions.iter().enumerate() {
                    let child = fit(&format!("{name}_p{i}"));
                    // The partition's schema: from its qualified name.
                    let schema = part
                        .rsplit_once('.')
                        .map_or(quote_ident(&facts.schema), |(s, _)| s.to_string());
                    let qchild = format!("{schema}.{}", quote_ident(&child));
                    actions.push(Action::BuildIndex {
                        index: qchild.clone(),
                        sql: format!(
                            "CREATE {u}INDEX CONCURRENTLY {} ON {part}{tail}",
                            quote_ident(&child)
                        ),
                    });
                    actions.push(Action::Tx(vec![format!(
                        "DO $lockstep$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass({})) THEN ALTER INDEX {qix} ATTACH PARTITION {qchild}; END IF; END $lockstep$",
                        crate::playbook::plan::lit(&qchild)
                    )]));
                }
                p.steps.push(Step {
                    name: "index".into(),
                    what: format!(
                        "the parent index ON ONLY {table} (ACCESS EXCLUSIVE for milliseconds), then per partition CREATE {u}INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE on that partition, writes go on) and ATTACH"
                    ),
                    actions,
                    undo: vec![Action::Tx(vec![format!("DROP INDEX IF EXISTS {qix}")])],
                    swap: false,
                    kept: None,
                });
            } else {
                p.steps.push(Step {
                    name: "index".into(),
                    what: format!(
                        "CREATE {u}INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and writes go on; an INVALID leftover is dropped and built again"
                    ),
                    actions: vec![Action::BuildIndex {
                        index: qix.clone(),
                        sql: format!(
                            "CREATE {u}INDEX CONCURRENTLY {} ON {table}{tail}",
                            quote_ident(&name)
                        ),
                    }],
                    undo: vec![Action::Concurrent(format!("DROP INDEX CONCURRENTLY IF EXISTS {qix}"))],
                    swap: false,
                    kept: None,
                });
            }
            p.after = definition(
                facts,
                &[format!(
                    "CREATE {u}INDEX {} ON {table}{tail};",
                    quote_ident(&name)
                )],
            );
        }
        Op::Reindex { name } | Op::DropIndex { name } => {
            let reindex = matches!(pb.op, Op::Reindex { .. });
            let Some(ix) = &extra.index else {
                refusals.push(format!("{table} has no index named {}", quote_ident(name)));
                return;
            };
            let qix = super::rel(facts, &ix.name);
            if reindex {
                if extra.server_version < 120_000 {
                    refusals.push("REINDEX CONCURRENTLY needs PostgreSQL 12 or later".into());
                }
                if ix.partitioned {
                    refusals.push(format!(
                        "{qix} is a partitioned index: reindex each partition's index instead"
                    ));
                }
                p.steps.push(Step {
                    name: "leftovers".into(),
                    what: "drop (concurrently) INVALID leftovers of an interrupted REINDEX CONCURRENTLY".into(),
                    actions: vec![Action::DropInvalid {
                        table: table.clone(),
                        prefix: format!("{}_cc", ix.name),
                    }],
                    undo: Vec::new(),
                    swap: false,
                    kept: None,
                });
                p.steps.push(Step {
                    name: "reindex".into(),
                    what: "REINDEX INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and writes go on; the old index is swapped for the new one".into(),
                    actions: vec![Action::Concurrent(format!("REINDEX INDEX CONCURRENTLY {qix}"))],
                    undo: Vec::new(),
                    swap: false,
                    kept: None,
                });
                p.after = p.before.clone();
            } else {
                if let Some(c) = &ix.constraint {
                    refusals.push(format!(
                        "{qix} backs the constraint {}: drop the constraint instead (`ALTER TABLE … DROP CONSTRAINT`)",
                        quote_ident(c)
                    ));
                }
                if ix.partitioned {
                    refusals.push(format!(
                        "{qix} is a partitioned index: DROP INDEX CONCURRENTLY does not support it"
                    ));
                }
                p.steps.push(Step {
                    name: "drop".into(),
                    what: "DROP INDEX CONCURRENTLY: waits for queries using the index, blocks no reads or writes".into(),
                    actions: vec![Action::Concurrent(format!("DROP INDEX CONCURRENTLY IF EXISTS {qix}"))],
                    undo: vec![Action::BuildIndex {
                        index: qix.clone(),
                        sql: concurrently(&ix.definition),
                    }],
                    swap: false,
                    kept: None,
                });
                let mut after = facts.clone();
                after.indexes.retain(|i| i.name != ix.name);
                p.after = definition(&after, &[]);
            }
        }
        _ => {}
    }
}
