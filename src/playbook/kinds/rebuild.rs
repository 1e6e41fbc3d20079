//! `rebuild`: rebuild a table online into a new definition, as a shadow rebuild: `ALTER
//! TABLE` actions applied to the new table (a column's type, dropped or added columns, new
//! defaults and constraints that would rewrite or scan the table in place), a new column
//! order, the order the rows are written in (like `CLUSTER`, without its lock), another
//! tablespace or fillfactor, or nothing at all: a compact copy of a bloated table, like
//! pg_repack, without an extension to install. A partitioned table is rebuilt into one that
//! is not (un-partitioned), or partitioned another way (`[rebuild.partition]`, the keys of
//! `[partition]`).
//!
//! ```toml
//! [rebuild]
//! alter = ["ALTER COLUMN amount TYPE numeric(14,2)", "DROP COLUMN legacy",
//!          "ADD CONSTRAINT amount_positive CHECK (amount >= 0)"]
//! reverse_using = { amount = "amount::numeric(12,2)" }   # the way back for the reverse sync
//! columns = ["id", "created_at", "account", "amount"]     # the new order (a column left out is dropped)
//! order_by = ["created_at"]                               # rows written in this order
//! tablespace = "fast"
//! fillfactor = 80
//! # [rebuild.partition]                                  # partitioned (again), as [partition] says
//! # column = "created_at"
//! # strategy = "range"
//! # interval = "7 days"
//! # naming = "{table}_w{start}"
//! ```
//!
//! Preflight makes the new table (and builds its indexes) in a transaction that is rolled
//! back: what PostgreSQL rejects is refused with its words, and the columns it made say
//! which columns change type, which are dropped and which are new.

use std::collections::BTreeMap;

use serde::Deserialize;
use tokio_postgres::Client;

use super::column_type::{mentions, type_change_refusals};
use super::partition::{self, Partition, RawPartition};
use crate::playbook::exec::EngineError;
use crate::playbook::facts::{self, scratch, Column, Facts};
use crate::playbook::kind::Kind;
use crate::playbook::names::{list, lit, quote_ident as q};
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::shadow::{ColumnChange, Names, ShadowPlan, Shape, Target};
use crate::playbook::steps::{try_probes, Probe};
use crate::sql::alter::{actions, AlterAction};
use crate::sql::ir::{ActionKind, Constraint};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRebuild {
    #[serde(default)]
    alter: Vec<String>,
    #[serde(default)]
    reverse_using: BTreeMap<String, String>,
    columns: Option<Vec<String>>,
    #[serde(default)]
    order_by: Vec<String>,
    tablespace: Option<String>,
    fillfactor: Option<u32>,
    partition: Option<RawPartition>,
}

/// A `rebuild` playbook's `[rebuild]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuild {
    /// The actions, each as written and understood, with its place in `alter`.
    pub alter: Vec<(usize, AlterAction)>,
    /// Per column whose type changes: the old value from the new one, for the reverse sync.
    pub reverse_using: BTreeMap<String, String>,
    /// The new column order (a column left out is dropped).
    pub columns: Option<Vec<String>>,
    pub order_by: Vec<String>,
    pub tablespace: Option<String>,
    pub fillfactor: Option<u32>,
    /// Partitioned (again) this way.
    pub partition: Option<Partition>,
}

impl Kind for Rebuild {
    const NAME: &'static str = "rebuild";
    const WORKERS: bool = true;
    const DEPENDENTS: bool = true;
    type Raw = RawRebuild;
    type Plan = ShadowPlan;

    fn parse(r: RawRebuild, p: &Parse<'_>) -> Result<Self, SpecError> {
        let mut alter = Vec::new();
        for (i, text) in r.alter.iter().enumerate() {
            let key = format!("rebuild.alter[{i}]");
            let parsed = actions(text).map_err(|e| p.bad(&key, e))?;
            for a in parsed {
                if let Some(why) = unsupported(&a.kind) {
                    return Err(p.bad(&key, format!("`{}`: {why}", a.text)));
                }
                alter.push((i, a));
            }
        }
        for (c, e) in &r.reverse_using {
            p.nonempty(&format!("rebuild.reverse_using.{c}"), e)?;
        }
        let columns = match r.columns {
            Some(c) => Some(p.columns("rebuild.columns", &c)?),
            None => None,
        };
        if let Some(c) = &columns {
            let mut sorted = c.clone();
            sorted.sort();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return Err(p.bad("rebuild.columns", format!("names {} twice", w[0])));
            }
        }
        if r.order_by.iter().any(String::is_empty) {
            return Err(p.bad("rebuild.order_by", "a column name must not be empty"));
        }
        if let Some(f) = r.fillfactor {
            if !(10..=100).contains(&f) {
                return Err(p.bad(
                    "rebuild.fillfactor",
                    format!("must be from 10 to 100, found {f}"),
                ));
            }
        }
        let partition = match r.partition {
            None => None,
            // The keys of `[partition]`, under `rebuild.partition`.
            Some(raw) => Some(partition::parse(raw, p).map_err(|e| match e {
                SpecError::Invalid { path, key, message } => SpecError::Invalid {
                    path,
                    key: format!("rebuild.{key}"),
                    message,
                },
                other => other,
            })?),
        };
        Ok(Rebuild {
            partition,
            alter,
            reverse_using: r.reverse_using,
            columns,
            order_by: r.order_by,
            tablespace: p.optional("rebuild.tablespace", r.tablespace.as_deref())?,
            fillfactor: r.fillfactor,
        })
    }

    async fn prepare(
        &self,
        pb: &Common,
        client: &Client,
        run_id: &str,
    ) -> Result<(ShadowPlan, Vec<String>), EngineError> {
        // A partitioned table too: it is rebuilt into one that is not, or partitioned again.
        let f = facts::read_table(client, &pb.table, true).await?;
        let mut refusals = f.refusals.clone();
        if f.pk_columns.is_empty() {
            refusals.push(format!(
                "{} has no primary key: the copy and the change capture need one",
                f.qualified()
            ));
        }
        refusals.extend(self.column_refusals(&f));
        let identity = facts::identity_options(client, &f).await?;
        let not_null = facts::not_null_names(client, &f).await?;
        let partitions = match &self.partition {
            Some(part) => {
                let before = refusals.len();
                refusals.extend(partition::preflight(part, &f));
                if refusals[before..].iter().any(|r| r.contains("partition column")) {
                    Vec::new()
                } else {
                    part.partitions(client, &f).await?
                }
            }
            None => Vec::new(),
        };
        let names = Names::new(&f, run_id, partitions);
        let mut plan = self.plan(f, names, &identity, &not_null);
        refusals.extend(plan.definition_refusals(&pb.dependents));
        refusals.extend(plan.settle(client, pb).await?);
        if !refusals.is_empty() {
            return Ok((plan, refusals));
        }
        // The new table made, its indexes built, and everything rolled back.
        let (statements, keys) = self.trial(&plan);
        match scratch::try_statements(client, pb.swap.lock_timeout_ms, &statements, &plan.shadow())
            .await?
        {
            Err(failed) => {
                let stmt = statements.get(failed.statement).map_or("", String::as_str);
                let what = match keys.get(failed.statement).and_then(|k| k.as_ref()) {
                    Some(key) => format!("`{key}` does not work on {}", plan.source()),
                    None => format!("the new table cannot be made (`{stmt}`)"),
                };
                refusals.push(format!("{what}: {}", failed.message));
            }
            Ok(columns) => {
                refusals.extend(self.learn(&mut plan, columns));
                if refusals.is_empty() {
                    refusals.extend(self.type_refusals(client, pb, &plan).await?);
                }
            }
        }
        Ok((plan, refusals))
    }
}

/// Why an action cannot be part of a rebuild, if it cannot.
fn unsupported(kind: &ActionKind) -> Option<&'static str> {
    Some(match kind {
        ActionKind::RenameColumn { .. } | ActionKind::RenameTable { .. } | ActionKind::RenameConstraint => {
            "renaming is instant in place (ALTER TABLE … RENAME); a rebuild copies columns by name"
        }
        ActionKind::AddConstraint {
            constraint: Constraint::PrimaryKey { .. },
            ..
        } => "the primary key stays the table's; change it in place with `kind = \"primary-key\"`",
        ActionKind::AddConstraint {
            constraint: Constraint::Unique {
                using_index: Some(_),
                ..
            },
            ..
        } => "the new table has none of the table's indexes to use: write the constraint's columns",
        ActionKind::AddConstraint { not_valid: true, .. } => {
            "the copy checks every row against the new constraint: leave out NOT VALID"
        }
        ActionKind::SetStorageParams => "use `rebuild.fillfactor` for the new table's fillfactor",
        ActionKind::OwnerTo
        | ActionKind::RowLevelSecurity
        | ActionKind::Trigger
        | ActionKind::ReplicaIdentity => {
            "the swap carries this over from the table; change it in place after the swap"
        }
        ActionKind::AttachPartition { .. } | ActionKind::DetachPartition { .. } => {
            "a rebuild makes its own partitions (`[rebuild.partition]`)"
        }
        _ => return None,
    })
}

impl Rebuild {
    /// What the `columns` and `order_by` lists cannot be on this table.
    fn column_refusals(&self, f: &Facts) -> Vec<String> {
        let t = f.qualified();
        let mut out = Vec::new();
        for c in self.columns.iter().flatten().chain(&self.order_by) {
            if f.column(c).is_none() {
                out.push(format!("{t} has no column {}", q(c)));
            }
        }
        if let Some(cols) = &self.columns {
            for c in f.columns.iter().filter(|c| !cols.contains(&c.name)) {
                out.extend(dropped_refusals(f, &c.name));
            }
        }
        for c in &self.order_by {
            if f.column(c).is_some_and(|c| !c.not_null) {
                out.push(format!(
                    "`rebuild.order_by`: {} allows NULL, and the copy walks the table by it (set it NOT NULL first, see `lockstep explain set-not-null-scan`)",
                    q(c)
                ));
            }
        }
        if !self.order_by.is_empty() {
            // The copy walks `order_by` then the key: an index must lead with them.
            let walkable = f
                .indexes
                .iter()
                .filter(|ix| !ix.tail.contains(" WHERE "))
                .map(|ix| ix.columns.clone())
                .chain(std::iter::once(f.pk_columns.clone()))
                .any(|cols| cols.starts_with(&self.order_by));
            if !walkable {
                out.push(format!(
                    "`rebuild.order_by`: no index of {t} starts with ({}), and the copy walks the table in that order; create one first (`kind = \"index\"`)",
                    list(&self.order_by)
                ));
            }
        }
        out
    }

    /// The plan before preflight has learnt what the actions do to the columns.
    pub fn plan(
        &self,
        facts: Facts,
        names: Names,
        identity: &[(String, String)],
        not_null: &[(String, String)],
    ) -> ShadowPlan {
        let mut plan = match &self.partition {
            Some(part) => part.plan(facts, names),
            None => ShadowPlan {
                key: facts.pk_columns.clone(),
                target: Target::Rebuilt {
                    changes: Vec::new(),
                },
                facts,
                names,
                shape: None,
                logical: None,
                trigger_because: None,
                reverse: crate::playbook::settings::ReverseSync::default(),
            },
        };
        let mut shape = Shape::default();
        if let Some(cols) = &self.columns {
            let same = plan.facts.columns.iter().map(|c| &c.name).eq(cols.iter());
            if !same {
                let shadow = plan.shadow();
                for c in cols.iter().filter_map(|c| plan.facts.column(c)) {
                    let ident = identity.iter().find(|(n, _)| *n == c.name);
                    let nn = not_null.iter().find(|(n, _)| *n == c.name);
                    shape.definitions.push(definition(
                        c,
                        ident.map(|(_, o)| o.as_str()),
                        nn.map(|(_, n)| n.as_str()),
                    ));
                    if let Some(st) = &c.storage {
                        shape.after_create.push(format!(
                            "ALTER TABLE {shadow} ALTER COLUMN {} SET STORAGE {st}",
                            q(&c.name)
                        ));
                    }
                    if let Some(comment) = &c.comment {
                        shape.after_create.push(format!(
                            "COMMENT ON COLUMN {shadow}.{} IS {}",
                            q(&c.name),
                            lit(comment)
                        ));
                    }
                }
            }
        }
        for (_, a) in &self.alter {
            match &a.kind {
                ActionKind::AddConstraint {
                    name: Some(name),
                    constraint: Constraint::Unique { .. } | Constraint::Exclude,
                    ..
                } => shape.deferred.push((name.clone(), a.text.clone())),
                _ => shape.alter.push(a.text.clone()),
            }
        }
        shape.order_by = self.order_by.clone();
        shape.tablespace = self.tablespace.as_ref().map(|t| q(t));
        if let Some(ff) = self.fillfactor {
            let mut options: Vec<String> = plan
                .facts
                .reloptions
                .iter()
                .filter(|o| !o.starts_with("fillfactor="))
                .cloned()
                .collect();
            options.push(format!("fillfactor={ff}"));
            shape.reloptions = Some(options);
        }
        plan.shape = Some(shape);
        plan
    }

    /// The statements preflight tries: the new table and its indexes; with, for each, the
    /// playbook key it comes from (an action of `alter`).
    fn trial(&self, plan: &ShadowPlan) -> (Vec<String>, Vec<Option<String>>) {
        let mut statements = Vec::new();
        let mut keys = Vec::new();
        let alter: Vec<String> = self
            .alter
            .iter()
            .map(|(_, a)| format!("ALTER TABLE {} {}", plan.shadow(), a.text))
            .collect();
        for s in plan.shadow_sql() {
            keys.push(
                alter
                    .iter()
                    .position(|x| *x == s)
                    .map(|i| format!("rebuild.alter[{}]", self.alter[i].0)),
            );
            statements.push(s);
        }
        for job in plan.index_sql() {
            for s in job
                .first
                .into_iter()
                .chain(job.children.into_iter().flat_map(|c| c.build.into_iter().chain(c.attach)))
                .chain(job.last.map(|(s, _)| s))
            {
                keys.push(
                    alter
                        .iter()
                        .position(|x| *x == s)
                        .map(|i| format!("rebuild.alter[{}]", self.alter[i].0)),
                );
                statements.push(s);
            }
        }
        (statements, keys)
    }

    /// What the new table's `columns` (as PostgreSQL made them) say: the columns dropped,
    /// added and of another type, into the plan; and what of that cannot be rebuilt.
    fn learn(&self, plan: &mut ShadowPlan, columns: Vec<Column>) -> Vec<String> {
        let f = &plan.facts;
        let mut out = Vec::new();
        let dropped: Vec<String> = f
            .columns
            .iter()
            .filter(|c| !columns.iter().any(|n| n.name == c.name))
            .map(|c| c.name.clone())
            .collect();
        let mut changes = Vec::new();
        for c in &f.columns {
            let Some(n) = columns.iter().find(|n| n.name == c.name) else {
                continue;
            };
            if n.type_sql == c.type_sql || c.generated {
                continue;
            }
            let using = self.alter.iter().find_map(|(_, a)| match &a.kind {
                ActionKind::AlterColumnType { column, .. } if *column == c.name => a.using.clone(),
                _ => None,
            });
            changes.push(ColumnChange {
                column: c.name.clone(),
                old_type: c.type_sql.clone(),
                new_type: n.type_sql.clone(),
                using: using.unwrap_or_else(|| format!("{}::{}", q(&c.name), n.type_sql)),
                back: self
                    .reverse_using
                    .get(&c.name)
                    .cloned()
                    .unwrap_or_else(|| format!("{}::{}", q(&c.name), c.type_sql)),
            });
        }
        for k in self.reverse_using.keys() {
            if !changes.iter().any(|x| x.column == *k) {
                out.push(format!(
                    "`rebuild.reverse_using.{k}`: the actions do not change the type of a column {}",
                    q(k)
                ));
            }
        }
        for n in &columns {
            let new = f.column(&n.name).is_none();
            if new
                && n.not_null
                && n.default_sql.is_none()
                && n.identity.is_empty()
                && !n.generated
            {
                out.push(format!(
                    "new column {} is NOT NULL without a default: the copied rows would have none; give it a default",
                    q(&n.name)
                ));
            }
        }
        for d in &dropped {
            out.extend(dropped_refusals(f, d));
        }
        if let Some(c) = self.order_by.iter().find(|c| dropped.contains(c)) {
            out.push(format!(
                "`rebuild.order_by`: {} is dropped by the actions",
                q(c)
            ));
        }
        if plan.target.partitioned() {
            if let Some(c) = changes.first() {
                out.push(format!(
                    "{} changes type: a rebuild that partitions the table keeps the columns' types; change them in a rebuild of their own",
                    q(&c.column)
                ));
            }
        } else {
            plan.target = Target::Rebuilt { changes };
        }
        if let Some(shape) = plan.shape.as_mut() {
            shape.columns = columns;
            shape.dropped = dropped;
        }
        out
    }

    /// What a type change cannot do on this table, and the reverse expressions tried.
    async fn type_refusals(
        &self,
        client: &Client,
        pb: &Common,
        plan: &ShadowPlan,
    ) -> Result<Vec<String>, EngineError> {
        let f = &plan.facts;
        let mut out = Vec::new();
        let mut probes = Vec::new();
        for c in plan.target.changes() {
            let views = facts::column_views(client, f, &c.column).await?;
            out.extend(type_change_refusals(f, &c.column, &c.new_type, &views));
            if f.pk_columns.contains(&c.column) && !c.using.ends_with(&format!("::{}", c.new_type)) {
                out.push(format!(
                    "{} is part of the primary key: it is converted with a cast, without USING",
                    q(&c.column)
                ));
            }
            if self.reverse_using.contains_key(&c.column) {
                probes.push(Probe {
                    key: "rebuild.reverse_using",
                    sql: format!(
                        "SELECT ({})::{} FROM (SELECT ({})::{} AS {} FROM {} LIMIT 0) AS {}",
                        c.back,
                        c.old_type,
                        c.using,
                        c.new_type,
                        q(&c.column),
                        f.qualified(),
                        q(&f.name)
                    ),
                });
            }
        }
        if out.is_empty() {
            out.extend(try_probes(client, pb.swap.lock_timeout_ms, f, probes).await);
        }
        Ok(out)
    }
}

/// A column's definition in `CREATE TABLE`, as the table has it (`identity`: its identity
/// sequence's options; `not_null`: its NOT NULL constraint's name).
fn definition(c: &Column, identity: Option<&str>, not_null: Option<&str>) -> String {
    let mut d = format!("{} {}", q(&c.name), c.type_sql);
    if let Some(coll) = &c.collation {
        d.push_str(&format!(" COLLATE {coll}"));
    }
    if let Some(comp) = &c.compression {
        d.push_str(&format!(" COMPRESSION {comp}"));
    }
    match (c.generated, c.identity.as_str(), &c.default_sql) {
        (true, _, Some(expr)) => d.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED")),
        (false, "a" | "d", _) => d.push_str(&format!(
            " GENERATED {} AS IDENTITY{}",
            if c.identity == "a" {
                "ALWAYS"
            } else {
                "BY DEFAULT"
            },
            identity.map_or(String::new(), |o| format!(" ({o})"))
        )),
        (false, _, Some(expr)) => d.push_str(&format!(" DEFAULT {expr}")),
        _ => {}
    }
    if c.not_null {
        match not_null {
            Some(n) => d.push_str(&format!(" CONSTRAINT {} NOT NULL", q(n))),
            None => d.push_str(" NOT NULL"),
        }
    }
    d
}

/// What uses column `c`, which the new table drops: each a refusal, since the swap carries
/// it over.
fn dropped_refusals(f: &Facts, c: &str) -> Vec<String> {
    let qc = q(c);
    let mut out = Vec::new();
    let mut used = |what: String| {
        out.push(format!(
            "{what} uses {qc}, which the rebuild drops: drop it first, or keep the column"
        ))
    };
    if f.pk_columns.iter().any(|k| k == c) {
        used("the primary key".into());
        return out;
    }
    for ix in &f.indexes {
        if ix.columns.iter().any(|x| x == c) || mentions(&ix.tail, &qc) {
            used(format!("index {}", q(&ix.name)));
        }
    }
    for ch in &f.checks {
        if mentions(&ch.definition, &qc) {
            used(format!("check constraint {}", q(&ch.name)));
        }
    }
    for (name, def) in &f.outbound_fks {
        if mentions(def, &qc) {
            used(format!("foreign key {}", q(name)));
        }
    }
    for fk in &f.inbound_fks {
        if fk.parent_columns.iter().any(|x| x == c) {
            used(format!("foreign key {} on {}", q(&fk.name), fk.child));
        }
    }
    for g in f.columns.iter().filter(|g| g.generated && g.name != c) {
        if g.default_sql.as_deref().is_some_and(|d| mentions(d, &qc)) {
            used(format!("generated column {}", q(&g.name)));
        }
    }
    for tg in &f.triggers {
        if mentions(&tg.definition, &qc) {
            used(format!("trigger {}", q(&tg.name)));
        }
    }
    for r in &f.rules {
        if mentions(&r.definition, &qc) {
            used(format!("rule {}", q(&r.name)));
        }
    }
    for p in &f.policies {
        let exprs = [p.using.as_deref(), p.check.as_deref()];
        if exprs.iter().flatten().any(|e| mentions(e, &qc)) {
            used(format!("policy {}", q(&p.name)));
        }
    }
    for s in &f.statistics {
        if mentions(&s.definition, &qc) {
            used(format!("statistics {}", q(&s.name)));
        }
    }
    for v in &f.views {
        if mentions(&v.definition, &qc) {
            used(format!("view {}", v.name));
        }
    }
    for p in &f.publications {
        if p.columns.iter().any(|x| x == c) || p.row_filter.as_deref().is_some_and(|w| mentions(w, &qc)) {
            used(format!("publication {}", q(&p.name)));
        }
    }
    if f.replica_index.as_deref().is_some_and(|i| f.indexes.iter().any(|ix| ix.name == i && ix.columns.iter().any(|x| x == c))) {
        used("the replica identity".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::kinds::Spec;

    fn parse(section: &str) -> Result<Rebuild, String> {
        crate::playbook::spec::parse(
            &format!("kind = \"rebuild\"\ntable = \"t\"\n[rebuild]\n{section}"),
            "p.toml",
        )
        .map_err(|e| e.to_string())
        .map(|pb| match pb.kind {
            Spec::Rebuild(r) => r,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn actions_are_understood_or_refused_by_key() {
        let r = parse("alter = [\"ALTER COLUMN a TYPE bigint\", \"ADD CONSTRAINT u UNIQUE (b), DROP COLUMN c\"]\n").unwrap();
        assert_eq!(r.alter.len(), 3);
        assert_eq!(r.alter[2].0, 1);
        let e = parse("alter = [\"DROP COLUMN a\", \"RENAME COLUMN a TO b\"]\n").unwrap_err();
        assert!(e.contains("`rebuild.alter[1]`") && e.contains("renaming is instant"), "{e}");
        let e = parse("alter = [\"DROP COLUMN a; DROP TABLE x\"]\n").unwrap_err();
        assert!(e.contains("`rebuild.alter[0]`") && e.contains("not several statements"), "{e}");
        let e = parse("alter = [\"ADD CONSTRAINT c CHECK (a > 0) NOT VALID\"]\n").unwrap_err();
        assert!(e.contains("leave out NOT VALID"), "{e}");
        let e = parse("fillfactor = 5\n").unwrap_err();
        assert!(e.contains("`rebuild.fillfactor`"), "{e}");
        let e = parse("columns = [\"a\", \"b\", \"a\"]\n").unwrap_err();
        assert!(e.contains("names a twice"), "{e}");
        // Nothing at all: a compact copy.
        assert_eq!(parse("").unwrap().alter.len(), 0);
    }

    #[test]
    fn a_new_order_defines_every_column_and_unique_constraints_wait_for_the_indexes() {
        let r = parse("columns = [\"note\", \"id\", \"select\"]\nalter = [\"ADD CONSTRAINT n_u UNIQUE (note)\", \"ALTER COLUMN note SET DEFAULT 'x'\"]\nfillfactor = 70\norder_by = [\"select\"]\n").unwrap();
        let f = crate::playbook::facts::example();
        let names = Names::new(&f, "r1", Vec::new());
        let plan = r.plan(f, names, &[], &[]);
        let sql = plan.shadow_sql().join(";\n");
        assert!(
            sql.starts_with("CREATE TABLE \"Sales Data\".\"Order_lockstep_new\" (note text NOT NULL, id bigint NOT NULL, \"select\" timestamp with time zone NOT NULL) WITH (autovacuum_enabled = off, fillfactor=70)"),
            "{sql}"
        );
        assert!(sql.contains("ALTER TABLE \"Sales Data\".\"Order_lockstep_new\" ALTER COLUMN note SET DEFAULT 'x'"), "{sql}");
        assert!(!sql.contains("UNIQUE"), "{sql}");
        let jobs = plan.index_sql();
        let last = jobs.last().unwrap();
        assert!(last.unique);
        assert_eq!(
            last.children[0].build,
            vec!["ALTER TABLE \"Sales Data\".\"Order_lockstep_new\" ADD CONSTRAINT n_u UNIQUE (note)".to_string()]
        );
        // The copy walks the table by `order_by`, then the key.
        assert!(plan.batch_sql(false).contains("(\"select\", id) > ($3::text::timestamp with time zone, $4::text::bigint)"), "{}", plan.batch_sql(false));
        assert!(plan.storage_sql().iter().any(|s| s.ends_with("SET (fillfactor=70)")));
    }

    #[test]
    fn identity_columns_keep_their_options_and_not_null_names() {
        let c = Column {
            name: "id".into(),
            type_sql: "bigint".into(),
            not_null: true,
            identity: "a".into(),
            ..Column::default()
        };
        assert_eq!(
            definition(&c, Some("START WITH 10"), Some("t_id_not_null")),
            "id bigint GENERATED ALWAYS AS IDENTITY (START WITH 10) CONSTRAINT t_id_not_null NOT NULL"
        );
        let g = Column {
            name: "g".into(),
            type_sql: "integer".into(),
            generated: true,
            default_sql: Some("(a * 2)".into()),
            collation: None,
            ..Column::default()
        };
        assert_eq!(definition(&g, None, None), "g integer GENERATED ALWAYS AS ((a * 2)) STORED");
    }
}
