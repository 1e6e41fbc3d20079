//! Everything a table is besides its rows and indexes, carried over to the new table:
//! comments, statistics targets and column options, CHECK constraints (valid ones on the
//! empty copy, NOT VALID ones at the swap, since the copy inserts the rows they were never
//! checked against), extended statistics, triggers and rules (moved at the swap, so the
//! old table, kept current by the reverse sync, fires none of them), row-level security and
//! its policies, replica identity, publications, identity sequences' names and grants. What
//! cannot be carried over is refused in preflight ([`ShadowPlan::definition_refusals`]),
//! naming the property and what to do.

use super::{ShadowPlan, Target};
use crate::playbook::facts::{OwnedSequence, Policy, Publication};
use crate::playbook::names::{fit, list, lit, quote_ident as q};
use crate::playbook::settings::{Dependents, Publications};

/// `ENABLE`/`DISABLE` clause for a trigger or rule state (`O`, `D`, `R`, `A`).
fn state_clause(state: &str) -> &'static str {
    match state {
        "D" => "DISABLE",
        "R" => "ENABLE REPLICA",
        "A" => "ENABLE ALWAYS",
        _ => "ENABLE",
    }
}

/// `CREATE STATISTICS schema.name …` with another name and table: the definition's middle
/// (kinds and columns) between its name and its `FROM`.
fn statistics_body(definition: &str) -> Option<&str> {
    let rest = definition.strip_prefix("CREATE STATISTICS ")?;
    // Skip the qualified name: quoted or plain parts joined by dots.
    let mut chars = rest.char_indices().peekable();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                while let Some((_, c)) = chars.next() {
                    if c == '"' {
                        if chars.peek().is_some_and(|(_, n)| *n == '"') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            ' ' => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let body = &rest[end?..];
    let from = body.rfind(" FROM ")?;
    Some(body[..from].trim())
}

impl ShadowPlan {
    /// The name of an extended statistics object of the new table before the swap.
    fn statistics_temp_name(name: &str) -> String {
        fit(&format!("{name}_lockstep_new"))
    }

    /// The name an extended statistics object of the old table takes at the swap.
    fn statistics_old_name(name: &str) -> String {
        fit(&format!("{name}_old"))
    }

    /// The name the old table's identity sequence of `column` takes at the swap.
    pub(super) fn old_sequence_name(&self, column: &str) -> String {
        fit(&format!("{}_{column}_seq", self.names.old))
    }

    /// Relations the run creates or renames to besides its tables and indexes, which must
    /// be free: the old table's identity sequences after the swap.
    pub fn carried_names(&self) -> Vec<String> {
        self.kept_sequences()
            .filter(|s| s.identity)
            .map(|s| self.old_sequence_name(&s.column))
            .collect()
    }

    /// The sequences owned by columns the new table keeps.
    pub(super) fn kept_sequences(&self) -> impl Iterator<Item = &OwnedSequence> {
        self.facts
            .sequences
            .iter()
            .filter(|s| !self.dropped(&s.column))
    }

    /// What of the table's definition this target cannot carry over, each with what to do.
    pub fn definition_refusals(&self, dependents: &Dependents) -> Vec<String> {
        let f = &self.facts;
        let t = self.source();
        let mut out = Vec::new();
        if !dependents.recreate_views {
            for v in &f.views {
                out.push(format!(
                    "view {} depends on the table and the playbook says [dependents] views = \"refuse\"",
                    v.name
                ));
            }
        }
        if !dependents.repoint_foreign_keys {
            for fk in &f.inbound_fks {
                out.push(format!(
                    "foreign key {} on {} references the table and the playbook says [dependents] foreign_keys = \"refuse\"",
                    q(&fk.name),
                    fk.child
                ));
            }
        }
        for r in &f.relations {
            out.push(format!("{t} {r}; lockstep rebuilds plain tables only"));
        }
        if let Some(am) = &f.access_method {
            out.push(format!(
                "{t} uses the table access method {am}; lockstep rebuilds heap tables only"
            ));
        }
        for l in &f.security_labels {
            out.push(format!(
                "{t} has a security label ({l}); lockstep cannot check it is carried over: remove it and label the new table after the swap"
            ));
        }
        for m in &f.matviews {
            out.push(format!(
                "materialized view {m} depends on the table; drop it first and recreate it after the conversion (it would go on reading the old table)"
            ));
        }
        if f.rls.0 && !f.bypasses_rls {
            out.push(format!(
                "{t} has row-level security{} and this role is subject to it: the copy would see only the rows its policies allow; run lockstep as the owner, a role with BYPASSRLS or a superuser",
                if f.rls.1 { " (forced)" } else { "" }
            ));
        }
        if let Target::Partitioned {
            partition_column, ..
        } = &self.target
        {
            let _ = partition_column;
            out.extend(self.partitioned_refusals());
        }
        if f.replica_identity == "i" && f.replica_index.is_none() {
            out.push("the replica identity index cannot be read".into());
        }
        let partition_column = match &self.target {
            Target::Partitioned {
                partition_column, ..
            } => Some(partition_column.as_str()),
            Target::Rebuilt { .. } => None,
        };
        out.extend(self.publication_refusals(dependents, partition_column));
        out
    }

    /// What a partitioned table cannot have.
    fn partitioned_refusals(&self) -> Vec<String> {
        let f = &self.facts;
        let t = self.source();
        let mut out = Vec::new();
        if f.persistence == "u" {
            out.push(format!(
                "{t} is UNLOGGED; a partitioned table cannot be (ALTER TABLE … SET LOGGED first)"
            ));
        }
        for ix in &f.indexes {
            if let Some(c) = &ix.constraint {
                if c.definition.starts_with("EXCLUDE") {
                    out.push(format!(
                        "exclusion constraint {} cannot be carried over to a partitioned table",
                        q(&c.name)
                    ));
                }
            }
        }
        if f.server_version < 180_000 {
            for name in &f.outbound_not_valid {
                out.push(format!(
                    "foreign key {} is NOT VALID, which a partitioned table cannot have before PostgreSQL 18: validate it first (ALTER TABLE {t} VALIDATE CONSTRAINT {}) or drop it",
                    q(name),
                    q(name)
                ));
            }
        }
        for tg in &f.triggers {
            if tg.definition.contains(" REFERENCING ") && tg.definition.contains(" FOR EACH ROW ") {
                out.push(format!(
                    "trigger {} is a row trigger with transition tables, which a partitioned table cannot have; drop it and create a statement trigger on the new table after the swap",
                    q(&tg.name)
                ));
            }
        }
        out
    }

    /// What logical replication of the table needs, and what a conversion would break.
    fn publication_refusals(
        &self,
        dependents: &Dependents,
        partition_column: Option<&str>,
    ) -> Vec<String> {
        let f = &self.facts;
        let t = self.source();
        let mut out = Vec::new();
        if f.publications.is_empty() && f.logical_slots.is_empty() {
            return out;
        }
        if dependents.publications == Publications::Refuse {
            for p in &f.publications {
                out.push(format!(
                    "{t} is in publication {} and the playbook says [dependents] publications = \"refuse\"",
                    q(&p.name)
                ));
            }
            return out;
        }
        let copy_published = dependents.publications == Publications::PublishCopy;
        for p in &f.publications {
            if (p.all_tables || p.schema) && !copy_published {
                let how = if p.all_tables {
                    "all tables"
                } else {
                    "the tables of the schema"
                };
                out.push(format!(
                    "publication {} publishes {how}: its subscribers would receive every row of the copy, the change log and the old table's changes after the swap. Publish the tables by name instead ({}), or, when every consumer filters by table name, set [dependents] publications = \"publish-copy\"",
                    q(&p.name),
                    publication_by_name(p, &self.facts.schema)
                ));
            }
            // A partitioned table is published under its partitions' names unless the
            // publication publishes via the partition root, which would also rename the
            // changes of the publication's other partitioned tables.
            let Some(partition_column) = partition_column else {
                continue;
            };
            if !p.via_root && !p.other_partitioned.is_empty() {
                out.push(format!(
                    "publication {} publishes partitioned tables under their partitions' names ({}); the new table's changes would reach its subscribers as {}'s partitions instead of {t}. Publish {t} from a publication of its own, or switch this one to publish_via_partition_root = true after checking its subscribers",
                    q(&p.name),
                    p.other_partitioned.join(", "),
                    q(partition_column),
                ));
            }
        }
        for (slot, plugin) in &f.logical_slots {
            // Slots that ignore publications see every table, the copy included.
            if plugin != "pgoutput" && !copy_published {
                out.push(format!(
                    "logical slot {} decodes with {plugin}, which does not read publications: its consumer would receive every row of the copy, and the new table's changes under its partitions' names. Convert when it can ignore them and set [dependents] publications = \"publish-copy\"",
                    q(slot)
                ));
            }
        }
        out
    }

    /// On the empty new table, right after it is created: its comment, the columns'
    /// statistics targets and options, the valid CHECK constraints, the comments of the
    /// constraints made so far, extended statistics (under temporary names).
    pub(super) fn create_extras_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let shadow = self.shadow();
        let mut out = Vec::new();
        if let Some(c) = &f.comment {
            out.push(format!("COMMENT ON TABLE {shadow} IS {}", lit(c)));
        }
        for c in f.columns.iter().filter(|c| !self.dropped(&c.name)) {
            if let Some(n) = c.statistics {
                out.push(format!(
                    "ALTER TABLE {shadow} ALTER COLUMN {} SET STATISTICS {n}",
                    q(&c.name)
                ));
            }
            if !c.options.is_empty() {
                out.push(format!(
                    "ALTER TABLE {shadow} ALTER COLUMN {} SET ({})",
                    q(&c.name),
                    c.options.join(", ")
                ));
            }
        }
        for c in f.checks.iter().filter(|c| c.validated) {
            out.push(format!(
                "ALTER TABLE {shadow} ADD CONSTRAINT {} {}",
                q(&c.name),
                c.definition
            ));
            if let Some(comment) = &c.comment {
                out.push(format!(
                    "COMMENT ON CONSTRAINT {} ON {shadow} IS {}",
                    q(&c.name),
                    lit(comment)
                ));
            }
        }
        for (name, comment) in &f.outbound_comments {
            if !f.outbound_not_valid.contains(name) {
                out.push(format!(
                    "COMMENT ON CONSTRAINT {} ON {shadow} IS {}",
                    q(name),
                    lit(comment)
                ));
            }
        }
        for s in &f.statistics {
            let Some(body) = statistics_body(&s.definition) else {
                continue;
            };
            let temp = format!(
                "{}.{}",
                q(&s.schema),
                q(&Self::statistics_temp_name(&s.name))
            );
            out.push(format!("CREATE STATISTICS {temp} {body} FROM {shadow}"));
            if let Some(n) = s.target {
                out.push(format!("ALTER STATISTICS {temp} SET STATISTICS {n}"));
            }
            if let Some(c) = &s.comment {
                out.push(format!("COMMENT ON STATISTICS {temp} IS {}", lit(c)));
            }
        }
        out
    }

    /// Once the new table's indexes are built (under the new table's names): the comments of
    /// its primary key, indexes and unique constraints.
    pub(super) fn index_extras_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let shadow = self.shadow();
        let mut out = Vec::new();
        if let Some(c) = &f.pk_comment {
            out.push(format!(
                "COMMENT ON CONSTRAINT {} ON {shadow} IS {}",
                q(&self.names.shadow_pk),
                lit(c)
            ));
        }
        for (ix, (temp, _)) in f.indexes.iter().zip(&self.names.indexes) {
            if let Some(c) = &ix.comment {
                out.push(format!("COMMENT ON INDEX {} IS {}", self.rel(temp), lit(c)));
            }
            if let Some(c) = ix.constraint.as_ref().and_then(|c| c.comment.as_ref()) {
                out.push(format!(
                    "COMMENT ON CONSTRAINT {} ON {shadow} IS {}",
                    q(temp),
                    lit(c)
                ));
            }
        }
        out
    }

    /// In the swap, after the renames (the table's name is the new table's): what moves from
    /// the old table to the new one.
    pub(super) fn swap_extras_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let new = self.source();
        let old = self.old();
        let mut out = Vec::new();
        // Constraints the copy could not have had: its rows were never checked against them.
        for c in f.checks.iter().filter(|c| !c.validated) {
            out.push(format!(
                "ALTER TABLE {new} ADD CONSTRAINT {} {} NOT VALID",
                q(&c.name),
                c.definition
            ));
            if let Some(comment) = &c.comment {
                out.push(format!(
                    "COMMENT ON CONSTRAINT {} ON {new} IS {}",
                    q(&c.name),
                    lit(comment)
                ));
            }
        }
        for (name, def) in &f.outbound_fks {
            if f.outbound_not_valid.contains(name) {
                out.push(format!(
                    "ALTER TABLE {new} ADD CONSTRAINT {} {def} NOT VALID",
                    q(name)
                ));
                if let Some((_, comment)) = f.outbound_comments.iter().find(|(n, _)| n == name) {
                    out.push(format!(
                        "COMMENT ON CONSTRAINT {} ON {new} IS {}",
                        q(name),
                        lit(comment)
                    ));
                }
            }
        }
        // Extended statistics take their names.
        for s in &f.statistics {
            let schema = q(&s.schema);
            out.push(format!(
                "ALTER STATISTICS {schema}.{} RENAME TO {}",
                q(&s.name),
                q(&Self::statistics_old_name(&s.name))
            ));
            out.push(format!(
                "ALTER STATISTICS {schema}.{} RENAME TO {}",
                q(&Self::statistics_temp_name(&s.name)),
                q(&s.name)
            ));
        }
        // Identity sequences take their names and privileges.
        for s in self.kept_sequences().filter(|s| s.identity) {
            let bare = s
                .sequence
                .rsplit_once('.')
                .map_or(s.sequence.as_str(), |(_, n)| n);
            out.push(format!(
                "ALTER SEQUENCE {} RENAME TO {}",
                s.sequence,
                q(&self.old_sequence_name(&s.column))
            ));
            out.push(format!(
                "DO $lockstep$ BEGIN EXECUTE format('ALTER SEQUENCE %s RENAME TO %s', pg_catalog.pg_get_serial_sequence({}, {}), {}); END $lockstep$",
                lit(&new),
                lit(&s.column),
                lit(bare)
            ));
            for (seq, grant) in f
                .sequence_grants
                .iter()
                .filter(|(seq, _)| *seq == s.sequence)
            {
                let (privilege, to) = grant
                    .split_once(" TO ")
                    .unwrap_or((grant.as_str(), "PUBLIC"));
                out.push(format!("GRANT {privilege} ON SEQUENCE {seq} TO {to}"));
            }
        }
        // Triggers and rules move: the old table, written by the reverse sync, fires none.
        for tg in &f.triggers {
            out.push(tg.definition.clone());
            if tg.enabled != "O" {
                out.push(format!(
                    "ALTER TABLE {new} {} TRIGGER {}",
                    state_clause(&tg.enabled),
                    q(&tg.name)
                ));
            }
            if let Some(c) = &tg.comment {
                out.push(format!(
                    "COMMENT ON TRIGGER {} ON {new} IS {}",
                    q(&tg.name),
                    lit(c)
                ));
            }
            if tg.enabled != "D" {
                out.push(format!("ALTER TABLE {old} DISABLE TRIGGER {}", q(&tg.name)));
            }
        }
        for r in &f.rules {
            out.push(format!("DROP RULE {} ON {old}", q(&r.name)));
        }
        out.extend(self.rules_sql(&new));
        // Row-level security: on the new table as it was; the old table, written by the
        // reverse sync as its owner, must not force it on its owner.
        if f.rls.0 {
            out.push(format!("ALTER TABLE {new} ENABLE ROW LEVEL SECURITY"));
        }
        if f.rls.1 {
            out.push(format!("ALTER TABLE {new} FORCE ROW LEVEL SECURITY"));
            out.push(format!("ALTER TABLE {old} NO FORCE ROW LEVEL SECURITY"));
        }
        for p in &f.policies {
            out.extend(policy_sql(p, &new));
        }
        out.extend(self.replica_identity_sql());
        out.extend(self.publications_sql(&old, &new, true));
        out
    }

    /// The rules, created on `table` (whatever table has the name in their definitions: run
    /// after the renames), with their states and comments.
    fn rules_sql(&self, table: &str) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.facts.rules {
            out.push(r.definition.trim_end_matches(';').to_string());
            if r.enabled != "O" {
                out.push(format!(
                    "ALTER TABLE {table} {} RULE {}",
                    state_clause(&r.enabled),
                    q(&r.name)
                ));
            }
            if let Some(c) = &r.comment {
                out.push(format!(
                    "COMMENT ON RULE {} ON {table} IS {}",
                    q(&r.name),
                    lit(c)
                ));
            }
        }
        out
    }

    /// The replica identity of the new table and of its partitions.
    fn replica_identity_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let mut out = Vec::new();
        let parts: Vec<String> = self
            .names
            .partitions
            .iter()
            .map(|p| self.rel(&p.name))
            .collect();
        match f.replica_identity.as_str() {
            "f" | "n" => {
                let what = if f.replica_identity == "f" {
                    "FULL"
                } else {
                    "NOTHING"
                };
                for t in std::iter::once(self.source()).chain(parts) {
                    out.push(format!("ALTER TABLE {t} REPLICA IDENTITY {what}"));
                }
            }
            "i" => {
                let Some(name) = &f.replica_index else {
                    return out;
                };
                out.push(format!(
                    "ALTER TABLE {} REPLICA IDENTITY USING INDEX {}",
                    self.source(),
                    q(name)
                ));
                if let Some(i) = f.indexes.iter().position(|ix| ix.name == *name) {
                    for p in &self.names.partitions {
                        out.push(format!(
                            "ALTER TABLE {} REPLICA IDENTITY USING INDEX {}",
                            self.rel(&p.name),
                            q(&fit(&format!("{}_{i}_idx", p.name)))
                        ));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Publications that name the table move from `from` to `to`, with their column lists
    /// and row filters; a publication that did not publish via the partition root does so
    /// with `via_root` (the swap: a partitioned table is published under its own name) and
    /// stops again without it (the swap back).
    fn publications_sql(&self, from: &str, to: &str, via_root: bool) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.facts.publications {
            let name = q(&p.name);
            if p.table {
                out.push(format!("ALTER PUBLICATION {name} DROP TABLE {from}"));
                let cols = if p.columns.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", list(&p.columns))
                };
                let filter = p
                    .row_filter
                    .as_ref()
                    .map_or(String::new(), |w| format!(" WHERE ({w})"));
                out.push(format!(
                    "ALTER PUBLICATION {name} ADD TABLE {to}{cols}{filter}"
                ));
            }
            if !p.via_root {
                out.push(format!(
                    "ALTER PUBLICATION {name} SET (publish_via_partition_root = {via_root})"
                ));
            }
        }
        out
    }

    /// In the swap back, after the renames (the table's name is the old table's again):
    /// what the old table gave up at the swap.
    pub(super) fn swap_back_extras_sql(&self) -> Vec<String> {
        let f = &self.facts;
        let live = self.source();
        let shadow = self.shadow();
        let mut out = Vec::new();
        for s in &f.statistics {
            let schema = q(&s.schema);
            out.push(format!(
                "ALTER STATISTICS {schema}.{} RENAME TO {}",
                q(&s.name),
                q(&Self::statistics_temp_name(&s.name))
            ));
            out.push(format!(
                "ALTER STATISTICS {schema}.{} RENAME TO {}",
                q(&Self::statistics_old_name(&s.name)),
                q(&s.name)
            ));
        }
        for s in self.kept_sequences().filter(|s| s.identity) {
            let schema = s.sequence.rsplit_once('.').map_or("", |(schema, _)| schema);
            out.push(format!(
                "ALTER SEQUENCE {} RENAME TO {}",
                s.sequence,
                q(&fit(&format!("{}_{}_seq", self.names.shadow, s.column)))
            ));
            out.push(format!(
                "ALTER SEQUENCE {schema}.{} RENAME TO {}",
                q(&self.old_sequence_name(&s.column)),
                s.sequence
                    .rsplit_once('.')
                    .map_or(s.sequence.as_str(), |(_, n)| n)
            ));
        }
        for tg in f.triggers.iter().filter(|t| t.enabled != "D") {
            out.push(format!(
                "ALTER TABLE {live} {} TRIGGER {}",
                state_clause(&tg.enabled),
                q(&tg.name)
            ));
        }
        out.extend(self.rules_sql(&live));
        if f.rls.1 {
            out.push(format!("ALTER TABLE {live} FORCE ROW LEVEL SECURITY"));
        }
        out.extend(self.publications_sql(&shadow, &live, false));
        out
    }
}

/// `CREATE POLICY` on `table`, and its comment.
fn policy_sql(p: &Policy, table: &str) -> Vec<String> {
    let mut s = format!(
        "CREATE POLICY {} ON {table} AS {} FOR {} TO {}",
        q(&p.name),
        if p.permissive {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        },
        p.command,
        p.roles.join(", ")
    );
    if let Some(u) = &p.using {
        s.push_str(&format!(" USING ({u})"));
    }
    if let Some(c) = &p.check {
        s.push_str(&format!(" WITH CHECK ({c})"));
    }
    let mut out = vec![s];
    if let Some(c) = &p.comment {
        out.push(format!(
            "COMMENT ON POLICY {} ON {table} IS {}",
            q(&p.name),
            lit(c)
        ));
    }
    out
}

/// What turns a publication of all tables, or of a schema, into one of tables by name.
fn publication_by_name(p: &Publication, schema: &str) -> String {
    let name = q(&p.name);
    if p.all_tables {
        format!(
            "DROP PUBLICATION {name}; CREATE PUBLICATION {name} FOR TABLE … (every table it should publish), with the same options"
        )
    } else {
        format!(
            "ALTER PUBLICATION {name} DROP TABLES IN SCHEMA {}; ALTER PUBLICATION {name} ADD TABLE … (every table of the schema)",
            q(schema)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statistics_definition_gives_its_kinds_and_columns() {
        assert_eq!(
            statistics_body("CREATE STATISTICS public.s1 (ndistinct) ON a, b FROM public.t"),
            Some("(ndistinct) ON a, b")
        );
        assert_eq!(
            statistics_body(
                "CREATE STATISTICS \"Sales Data\".\"my \"\"stats\"\"\" ON \"select\", (a + 1) FROM \"Sales Data\".\"Order\""
            ),
            Some("ON \"select\", (a + 1)")
        );
        assert_eq!(statistics_body("CREATE INDEX x"), None);
    }
}
