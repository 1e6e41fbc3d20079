//! `index`: `CREATE INDEX CONCURRENTLY`; an INVALID leftover of an interrupted build is
//! dropped (concurrently) and built again; progress comes from
//! `pg_stat_progress_create_index`. On a partitioned table: the parent index `ON ONLY` the
//! table, then each partition's index built concurrently and attached.
//!
//! ```toml
//! [index]
//! columns = ["customer_id", "created_at"]   # or definition = "(lower(email))"
//! name = "orders_customer_created_idx"      # default: <table>_<columns>_idx
//! unique = false
//! method = "btree"
//! where = "deleted_at IS NULL"
//! ```

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::facts::Facts;
use crate::playbook::kind::Kind;
use crate::playbook::names::{fit, lit, quote_ident};
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{
    self, definition, rel, Action, InPlace, PlanCx, Probe, Step, StepPlan,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIndex {
    name: Option<String>,
    columns: Option<Vec<String>>,
    definition: Option<String>,
    unique: Option<bool>,
    method: Option<String>,
    #[serde(rename = "where")]
    predicate: Option<String>,
}

/// An `index` playbook's `[index]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub name: Option<String>,
    /// What follows `ON table`: ` USING btree (a, b) WHERE …`.
    pub tail: String,
    pub unique: bool,
}

impl Kind for Index {
    const NAME: &'static str = "index";
    type Raw = RawIndex;
    type Plan = StepPlan;

    fn parse(c: RawIndex, p: &Parse<'_>) -> Result<Self, SpecError> {
        let method = c.method.clone().unwrap_or_else(|| "btree".into());
        if method.is_empty()
            || !method
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            return Err(p.bad(
                "index.method",
                format!("expected an index method such as btree or gin, found `{method}`"),
            ));
        }
        let body = match (&c.columns, &c.definition) {
            (Some(cols), None) => format!(
                "({})",
                p.columns("index.columns", cols)?
                    .iter()
                    .map(|c| quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (None, Some(d)) => {
                let d = p.nonempty("index.definition", d)?;
                if d.starts_with('(') {
                    d
                } else {
                    format!("({d})")
                }
            }
            _ => {
                return Err(p.bad(
                    "index",
                    "give either columns = [...] or definition = \"(expression, ...)\"",
                ))
            }
        };
        let predicate = match &c.predicate {
            Some(w) => format!(" WHERE {}", p.nonempty("index.where", w)?),
            None => String::new(),
        };
        Ok(Index {
            name: c.name,
            tail: format!(" USING {method} {body}{predicate}"),
            unique: c.unique.unwrap_or(false),
        })
    }

    async fn prepare(
        &self,
        pb: &Common,
        client: &Client,
        run_id: &str,
    ) -> Result<(StepPlan, Vec<String>), EngineError> {
        steps::prepare(self, Self::NAME, pb, client, run_id).await
    }
}

/// The name of the index an `index` playbook builds.
pub(crate) fn index_name(name: &Option<String>, facts: &Facts, tail: &str) -> String {
    if let Some(n) = name {
        return n.clone();
    }
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

impl InPlace for Index {
    const PARTITIONED: bool = true;

    fn wanted(&self, facts: &Facts) -> Vec<String> {
        vec![index_name(&self.name, facts, &self.tail)]
    }

    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, _: &mut Vec<String>) {
        let (facts, extra) = (cx.facts, cx.extra);
        let table = facts.qualified();
        p.before = definition(facts, &[]);
        let Index { tail, unique, name } = self;
        let name = index_name(name, facts, tail);
        let qix = rel(facts, &name);
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
                        lit(&qchild)
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

    fn probes(&self, facts: &Facts) -> Vec<Probe> {
        match self.tail.split_once(" WHERE ") {
            Some((_, pred)) => vec![Probe {
                key: "index.where",
                sql: format!("SELECT 1 FROM {} WHERE {pred} LIMIT 0", facts.qualified()),
            }],
            None => Vec::new(),
        }
    }
}
