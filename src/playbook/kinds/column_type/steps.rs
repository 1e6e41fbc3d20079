//! The steps of a `column-type` conversion, one function each, from the values they share
//! ([`Conversion`], computed once from the playbook and the table's facts).

use super::{column_indexes, int_range, mentions, replace_ident, ColumnType};
use crate::playbook::facts::{Column, Extra, Facts, InboundFk, Index};
use crate::playbook::names::{fit, list, lit, quote_ident};
use crate::playbook::steps::{
    definition, missing_columns, not_valid_then_validate, rel, update_batches, Action, PlanCx,
    Step, StepPlan,
};

/// The names the conversion uses.
struct Names {
    new_col: String,
    old_col: String,
    fwd: String,
    rev: String,
}

const FWD_TRIGGER: &str = "zz_lockstep_column_fwd";

const REV_TRIGGER: &str = "zz_lockstep_column_rev";

fn names(column: &str, run_id: &str) -> Names {
    Names {
        new_col: fit(&format!("{column}_lockstep_new")),
        old_col: fit(&format!("{column}_lockstep_old")),
        fwd: fit(&format!("colfwd_{run_id}")),
        rev: fit(&format!("colrev_{run_id}")),
    }
}

/// Everything the steps are made of.
struct Conversion<'a> {
    facts: &'a Facts,
    extra: &'a Extra,
    ct: &'a ColumnType,
    col: &'a Column,
    /// The table, quoted and qualified; its name, quoted.
    table: String,
    me: String,
    /// The column, the new column and the old column (after the swap), quoted.
    c: String,
    nc: String,
    oc: String,
    n: Names,
    old_type: String,
    /// The new value, from the row's columns.
    value_sql: String,
    /// The old value, from the new column (named as the column).
    back_value: String,
    in_pk: bool,
    /// Indexes (not the primary key) on the column.
    indexes: Vec<&'a Index>,
    /// Foreign keys of other tables referencing the column; the table's own on it.
    inbound: Vec<&'a InboundFk>,
    outbound: Vec<&'a (String, String)>,
    identity: String,
    identity_seq: Option<String>,
    /// The column's default (not an identity's).
    default: Option<String>,
    pk_new: String,
    pk_old: String,
    /// The NOT NULL checks of the new and of the old column.
    nn_check: String,
    old_check: String,
    fwd_fn: String,
    rev_fn: String,
}

/// The plan: the checks, then the steps in order.
pub(super) fn plan(ct: &ColumnType, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
    let facts = cx.facts;
    let Some(col) = facts.column(&ct.column) else {
        missing_columns(facts, std::slice::from_ref(&ct.column), refusals);
        return;
    };
    let x = Conversion::new(ct, col, cx);
    x.refusals(refusals);
    for f in &x.inbound {
        if !p.tables.contains(&f.child) {
            p.tables.push(f.child.clone());
        }
    }
    p.steps.push(x.add_column());
    p.steps.push(x.capture());
    p.steps.push(x.backfill());
    if let Some(s) = x.indexes() {
        p.steps.push(s);
    }
    if col.not_null {
        not_valid_then_validate(
            &x.table,
            &x.nn_check,
            &format!("CHECK ({} IS NOT NULL)", x.nc),
            "ACCESS EXCLUSIVE",
            &mut p.steps,
        );
    }
    p.steps.push(x.verify());
    p.steps.push(x.swap());
    if let Some(s) = x.validate() {
        p.steps.push(s);
    }
    p.finalize = x.finalize();
    p.notes.extend(x.notes());
    p.before = definition(facts, &[]);
    let mut after = facts.clone();
    for f in &mut after.columns {
        if f.name == ct.column {
            f.type_sql = ct.new_type.clone();
        }
    }
    p.after = definition(&after, &[]);
}

impl<'a> Conversion<'a> {
    fn new(ct: &'a ColumnType, col: &'a Column, cx: &PlanCx<'a>) -> Conversion<'a> {
        let facts = cx.facts;
        let column = ct.column.as_str();
        let new_type = &ct.new_type;
        let c = quote_ident(column);
        let n = names(column, cx.run_id);
        let me = quote_ident(&facts.name);
        let value_sql = match &ct.using {
            Some(u) => format!("({u})"),
            None => format!("{c}::{new_type}"),
        };
        let back_value = match &ct.reverse_using {
            Some(r) => format!("({r})"),
            None => format!("{c}::{}", col.type_sql),
        };
        Conversion {
            facts,
            extra: cx.extra,
            ct,
            col,
            table: facts.qualified(),
            nc: quote_ident(&n.new_col),
            oc: quote_ident(&n.old_col),
            fwd_fn: format!("lockstep.{}", quote_ident(&n.fwd)),
            rev_fn: format!("lockstep.{}", quote_ident(&n.rev)),
            old_type: col.type_sql.clone(),
            value_sql,
            back_value,
            in_pk: facts.pk_columns.iter().any(|k| k == column),
            indexes: column_indexes(facts, column),
            inbound: facts
                .inbound_fks
                .iter()
                .filter(|f| f.parent_columns.iter().any(|x| x == column))
                .collect(),
            outbound: facts
                .outbound_fks
                .iter()
                .filter(|(_, def)| {
                    def.split_once(" REFERENCES ")
                        .is_some_and(|(own, _)| mentions(own, &c))
                })
                .collect(),
            identity: col.identity.clone(),
            identity_seq: facts
                .sequences
                .iter()
                .find(|s| s.identity && s.column == column)
                .map(|s| s.sequence.clone()),
            default: if col.identity.is_empty() {
                col.default_sql.clone()
            } else {
                None
            },
            pk_new: fit(&format!("{}_lockstep_new", facts.pk_name)),
            pk_old: fit(&format!("{}_lockstep_old", facts.pk_name)),
            nn_check: fit(&format!("{}_{}_not_null", facts.name, n.new_col)),
            old_check: fit(&format!("{}_{}_not_null", facts.name, n.old_col)),
            c,
            me,
            n,
        }
    }

    /// What the conversion cannot handle.
    fn refusals(&self, refusals: &mut Vec<String>) {
        let (table, c, nc, oc) = (&self.table, &self.c, &self.nc, &self.oc);
        if self.facts.pk_columns.is_empty() {
            refusals.push(format!(
                "{table} has no primary key: the backfill walks the table by it"
            ));
        }
        if self.col.generated {
            refusals.push(format!(
                "{c} is a generated column: change its expression instead"
            ));
        }
        for v in &self.extra.column_views {
            refusals.push(format!(
                "view {v} uses {c}: drop it and recreate it after the conversion (a view keeps pointing at the old column)"
            ));
        }
        for (name, def) in &self.extra.column_checks {
            refusals.push(format!(
                "check constraint {} ({def}) uses {c}: drop it first and add it back with a `check` playbook afterwards",
                quote_ident(name)
            ));
        }
        for f in self.facts.columns.iter().filter(|f| f.generated) {
            if f.default_sql.as_deref().is_some_and(|d| mentions(d, c)) {
                refusals.push(format!(
                    "generated column {} is computed from {c}",
                    quote_ident(&f.name)
                ));
            }
        }
        if self
            .facts
            .columns
            .iter()
            .any(|f| f.name == self.n.new_col || f.name == self.n.old_col)
        {
            refusals.push(format!(
                "{table} already has a column {nc} or {oc} (a leftover of an earlier run? roll it back, or drop it)"
            ));
        }
        for ix in &self.indexes {
            if !ix.columns.contains(&self.ct.column) {
                refusals.push(format!(
                    "index {} uses {c} in an expression: drop it first and recreate it after the conversion",
                    quote_ident(&ix.name)
                ));
            }
        }
    }

    /// Unique constraints are indexes named like a constraint of the table.
    fn is_constraint(&self, i: &Index) -> bool {
        i.unique && self.extra.constraints.contains(&i.name)
    }

    /// 1. The new column.
    fn add_column(&self) -> Step {
        let (table, nc, new_type) = (&self.table, &self.nc, &self.ct.new_type);
        Step {
            name: "add column".into(),
            what: format!("ALTER TABLE … ADD COLUMN {nc} {new_type} (no default: no rewrite); ACCESS EXCLUSIVE for milliseconds"),
            actions: vec![Action::Tx(vec![format!(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {nc} {new_type}"
            )])],
            undo: vec![Action::Tx(vec![format!(
                "ALTER TABLE {table} DROP COLUMN IF EXISTS {nc}"
            )])],
            swap: false,
            kept: None,
        }
    }

    /// 2. The trigger that sets the new column in every write.
    fn capture(&self) -> Step {
        let (table, me, c, nc, fwd_fn) = (&self.table, &self.me, &self.c, &self.nc, &self.fwd_fn);
        let fwd_body = match &self.ct.using {
            Some(u) => format!("SELECT ({u}) INTO NEW.{nc} FROM (SELECT NEW.*) AS {me};"),
            None => format!("NEW.{nc} := NEW.{c}::{};", self.ct.new_type),
        };
        Step {
            name: "capture".into(),
            what: format!("a BEFORE INSERT OR UPDATE trigger sets {nc} from {c} in every write (SHARE ROW EXCLUSIVE for milliseconds)"),
            actions: vec![Action::Tx(vec![
                "CREATE SCHEMA IF NOT EXISTS lockstep".into(),
                format!(
                    "CREATE OR REPLACE FUNCTION {fwd_fn}() RETURNS trigger LANGUAGE plpgsql AS $lockstep$\nBEGIN\n  {fwd_body}\n  RETURN NEW;\nEND\n$lockstep$"
                ),
                format!("DROP TRIGGER IF EXISTS {FWD_TRIGGER} ON {table}"),
                format!(
                    "CREATE TRIGGER {FWD_TRIGGER} BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {fwd_fn}()"
                ),
            ])],
            undo: vec![Action::Tx(vec![
                format!("DROP TRIGGER IF EXISTS {FWD_TRIGGER} ON {table}"),
                format!("DROP FUNCTION IF EXISTS {fwd_fn}()"),
            ])],
            swap: false,
            kept: None,
        }
    }

    /// 3. The existing rows, in batches.
    fn backfill(&self) -> Step {
        let (nc, value_sql) = (&self.nc, &self.value_sql);
        let batches = update_batches(
            self.facts,
            &format!("{nc} = {value_sql}"),
            Some(&format!("{nc} IS DISTINCT FROM {value_sql}")),
            None,
            "backfill",
        );
        Step {
            name: "backfill".into(),
            what: format!(
                "set {nc} = {value_sql} in primary-key batches, each its own transaction (row locks on the batch only); every updated row gets a new version, so the table grows until vacuumed"
            ),
            actions: vec![Action::Batches(batches)],
            undo: Vec::new(),
            swap: false,
            kept: None,
        }
    }

    /// A unique index on the primary key with the column replaced by `col`.
    fn key_index(&self, col: &str, name: &str) -> Action {
        let cols: Vec<String> = self
            .facts
            .pk_columns
            .iter()
            .map(|k| {
                if *k == self.ct.column {
                    col.to_string()
                } else {
                    k.clone()
                }
            })
            .collect();
        Action::BuildIndex {
            index: rel(self.facts, name),
            sql: format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {} ON {} ({})",
                quote_ident(name),
                self.table,
                list(&cols)
            ),
        }
    }

    /// 4. Indexes on the new column, when the column has any.
    fn indexes(&self) -> Option<Step> {
        let (table, c, nc) = (&self.table, &self.c, &self.nc);
        let mut builds = Vec::new();
        let mut drops = Vec::new();
        if self.in_pk {
            let q = rel(self.facts, &self.pk_new);
            builds.push(self.key_index(&self.n.new_col, &self.pk_new));
            drops.push(Action::Concurrent(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {q}"
            )));
        }
        for ix in &self.indexes {
            let new = fit(&format!("{}_lockstep_new", ix.name));
            let q = rel(self.facts, &new);
            builds.push(Action::BuildIndex {
                index: q.clone(),
                sql: format!(
                    "CREATE {}INDEX CONCURRENTLY {} ON {table}{}",
                    if ix.unique { "UNIQUE " } else { "" },
                    quote_ident(&new),
                    replace_ident(&ix.tail, c, nc)
                ),
            });
            drops.push(Action::Concurrent(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {q}"
            )));
        }
        (!builds.is_empty()).then(|| Step {
            name: "indexes".into(),
            what: format!("CREATE INDEX CONCURRENTLY on {nc} for each index on {c} (the primary key's as a unique index): SHARE UPDATE EXCLUSIVE, writes go on"),
            actions: builds,
            undo: drops,
            swap: false,
            kept: None,
        })
    }

    /// Validating the foreign keys re-added at a swap (or a swap back): harmless before the
    /// swap (already valid).
    fn validate_fks(&self) -> Vec<Action> {
        let mut out: Vec<Action> = self
            .inbound
            .iter()
            .map(|f| Action::Tx(vec![f.validate_sql()]))
            .collect();
        for (name, _) in &self.outbound {
            out.push(Action::Tx(vec![format!(
                "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                self.table,
                quote_ident(name)
            )]));
        }
        out
    }

    /// 6. No row may differ from its new value.
    fn verify(&self) -> Step {
        let (table, nc, value_sql) = (&self.table, &self.nc, &self.value_sql);
        Step {
            name: "verify".into(),
            what: format!("count the rows whose {nc} differs from {value_sql} (a read, no locks beyond ACCESS SHARE); must be none"),
            actions: vec![Action::Guard {
                sql: format!("SELECT count(*) FROM {table} WHERE {nc} IS DISTINCT FROM {value_sql}"),
                message: format!("rows of {table} where {nc} differs from {value_sql}: the swap is refused (resume re-runs the check)"),
            }],
            undo: self.validate_fks(),
            swap: false,
            kept: None,
        }
    }

    /// 7. The swap, and its undo: the swap back.
    fn swap(&self) -> Step {
        Step {
            name: "swap".into(),
            what: format!(
                "one transaction under lock_timeout, retried: ACCESS EXCLUSIVE on {}{} for milliseconds; the columns trade names, constraints move to the new column, a reverse trigger keeps {} current",
                self.table,
                if self.inbound.is_empty() { "" } else { " and the referencing tables" },
                self.oc
            ),
            actions: vec![Action::Tx(self.swap_sql(false))],
            undo: self.swap_back(),
            swap: true,
            kept: None,
        }
    }

    /// The swap (or, `back`, the swap back) in one transaction.
    fn swap_sql(&self, back: bool) -> Vec<String> {
        let mut s = vec![format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            self.table
        )];
        s.extend(self.drop_constraints(back));
        s.extend(self.trade_names(back));
        s.extend(self.move_sequence_and_identity(back));
        s.extend(self.restore_constraints(back));
        s.extend(self.reverse_sync(back));
        s
    }

    /// Foreign keys, the trigger of the direction that ends, the key and unique constraints,
    /// NOT NULL and the default: off the column that gives up its name.
    fn drop_constraints(&self, back: bool) -> Vec<String> {
        let (table, c) = (&self.table, &self.c);
        let mut s: Vec<String> = self.inbound.iter().map(|f| f.drop_sql()).collect();
        for (name, _) in &self.outbound {
            s.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
                quote_ident(name)
            ));
        }
        let trigger = if back { REV_TRIGGER } else { FWD_TRIGGER };
        s.push(format!("DROP TRIGGER IF EXISTS {trigger} ON {table}"));
        if self.in_pk {
            s.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT {}",
                quote_ident(&self.facts.pk_name)
            ));
        }
        for ix in self.indexes.iter().filter(|i| self.is_constraint(i)) {
            s.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT {}",
                quote_ident(&ix.name)
            ));
        }
        if self.col.not_null {
            s.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {c} DROP NOT NULL"
            ));
        }
        if self.default.is_some() {
            s.push(format!("ALTER TABLE {table} ALTER COLUMN {c} DROP DEFAULT"));
        }
        s
    }

    /// The column names trade places; NOT NULL (proven by the validated check, no scan) and
    /// the default go to the column that now has the name. Under its final name, so that
    /// PostgreSQL 18 names the NOT NULL constraint as before.
    fn trade_names(&self, back: bool) -> Vec<String> {
        let (table, c) = (&self.table, &self.c);
        let (live_after, spare) = if back {
            (&self.oc, &self.nc)
        } else {
            (&self.nc, &self.oc)
        };
        let mut s = vec![
            format!("ALTER TABLE {table} RENAME COLUMN {c} TO {spare}"),
            format!("ALTER TABLE {table} RENAME COLUMN {live_after} TO {c}"),
        ];
        if self.col.not_null {
            let check = if back {
                &self.old_check
            } else {
                &self.nn_check
            };
            s.push(format!("ALTER TABLE {table} ALTER COLUMN {c} SET NOT NULL"));
            s.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
                quote_ident(check)
            ));
        }
        if let Some(d) = &self.default {
            s.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {c} SET DEFAULT {d}"
            ));
        }
        s
    }

    /// The default's sequence (widened with the column) and an identity move to the column
    /// that now has the name, continuing above every id handed out.
    fn move_sequence_and_identity(&self, back: bool) -> Vec<String> {
        let (table, c) = (&self.table, &self.c);
        let spare = if back { &self.nc } else { &self.oc };
        let mut s = Vec::new();
        if let Some((seq, seq_type)) = &self.extra.column_sequence {
            if !back && int_range(seq_type).is_some() && int_range(&self.ct.new_type).is_none() {
                s.push(format!("ALTER SEQUENCE {seq} AS bigint"));
            }
            s.push(format!("ALTER SEQUENCE {seq} OWNED BY {table}.{c}"));
        }
        if !self.identity.is_empty() {
            let kind = if self.identity == "a" {
                "ALWAYS"
            } else {
                "BY DEFAULT"
            };
            let previous = if back {
                format!(
                    "pg_sequence_last_value(pg_get_serial_sequence({}, {}))",
                    lit(table),
                    lit(spare.trim_matches('"'))
                )
            } else {
                format!(
                    "pg_sequence_last_value({})",
                    lit(self.identity_seq.as_deref().unwrap_or(""))
                )
            };
            s.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {c} ADD GENERATED {kind} AS IDENTITY"
            ));
            s.push(format!(
                "SELECT setval(pg_get_serial_sequence({t}, {cl}), GREATEST(coalesce({previous}, 0), (SELECT coalesce(max({c}), 0) FROM {table})::bigint, 1))",
                t = lit(table),
                cl = lit(&self.ct.column),
            ));
            s.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {spare} DROP IDENTITY IF EXISTS"
            ));
        }
        s
    }

    /// The key, unique constraints and indexes, column grants and foreign keys, on the
    /// column that now has the name (foreign keys `NOT VALID`, validated after).
    fn restore_constraints(&self, back: bool) -> Vec<String> {
        let (table, c) = (&self.table, &self.c);
        let mut s = Vec::new();
        if self.in_pk {
            let ix = if back { &self.pk_old } else { &self.pk_new };
            s.push(format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}",
                quote_ident(&self.facts.pk_name),
                quote_ident(ix)
            ));
        }
        for ix in &self.indexes {
            let new = fit(&format!("{}_lockstep_new", ix.name));
            let old = fit(&format!("{}_lockstep_old", ix.name));
            let (live, other) = if back { (&old, &new) } else { (&new, &old) };
            if self.is_constraint(ix) {
                s.push(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {} UNIQUE USING INDEX {}",
                    quote_ident(&ix.name),
                    quote_ident(live)
                ));
            } else {
                s.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    rel(self.facts, &ix.name),
                    quote_ident(other)
                ));
                s.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    rel(self.facts, live),
                    quote_ident(&ix.name)
                ));
            }
        }
        for (privilege, to) in &self.facts.column_grants {
            if privilege.ends_with(&format!("({c})")) {
                s.push(format!("GRANT {privilege} ON {table} TO {to}"));
            }
        }
        for (name, def) in &self.outbound {
            s.push(format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} {def} NOT VALID",
                quote_ident(name)
            ));
        }
        s.extend(self.inbound.iter().map(|f| f.add_not_valid_sql(table)));
        s
    }

    /// After the swap, a trigger keeps the old column current; after a swap back, it goes.
    fn reverse_sync(&self, back: bool) -> Vec<String> {
        let (table, me, c, oc, rev_fn) = (&self.table, &self.me, &self.c, &self.oc, &self.rev_fn);
        if back {
            return vec![format!("DROP FUNCTION IF EXISTS {rev_fn}()")];
        }
        // The way back never makes the application's write fail.
        let old_type = &self.old_type;
        let rev_body = match (&self.ct.reverse_using, int_range(old_type)) {
            (Some(r), _) => format!(
                "BEGIN SELECT ({r}) INTO NEW.{oc} FROM (SELECT NEW.*) AS {me}; EXCEPTION WHEN others THEN NEW.{oc} := NULL; END;"
            ),
            (None, Some((lo, hi))) => format!(
                "NEW.{oc} := CASE WHEN NEW.{c} BETWEEN {lo} AND {hi} THEN NEW.{c}::{old_type} END;"
            ),
            (None, None) => format!(
                "BEGIN NEW.{oc} := NEW.{c}::{old_type}; EXCEPTION WHEN others THEN NEW.{oc} := NULL; END;"
            ),
        };
        vec![
            format!(
                "CREATE OR REPLACE FUNCTION {rev_fn}() RETURNS trigger LANGUAGE plpgsql AS $lockstep$\nBEGIN\n  {rev_body}\n  RETURN NEW;\nEND\n$lockstep$"
            ),
            format!(
                "CREATE TRIGGER {REV_TRIGGER} BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {rev_fn}()"
            ),
        ]
    }

    /// Before swapping back: the old column's unique indexes (dropped with the constraints
    /// at the swap), a guard against values the old type cannot hold, its NOT NULL check;
    /// then the swap back.
    fn swap_back(&self) -> Vec<Action> {
        let (table, c, oc) = (&self.table, &self.c, &self.oc);
        let mut back = Vec::new();
        if self.in_pk {
            back.push(self.key_index(&self.n.old_col, &self.pk_old));
        }
        for ix in self.indexes.iter().filter(|i| self.is_constraint(i)) {
            let old = fit(&format!("{}_lockstep_old", ix.name));
            back.push(Action::BuildIndex {
                index: rel(self.facts, &old),
                sql: format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY {} ON {table}{}",
                    quote_ident(&old),
                    replace_ident(&ix.tail, c, oc)
                ),
            });
        }
        back.push(Action::Guard {
            sql: format!(
                "SELECT count(*) FROM {table} WHERE {oc} IS DISTINCT FROM {}",
                self.back_value
            ),
            message: format!(
                "rows of {table} hold values in {c} that the old type {} cannot represent (or that differ from {oc}): swapping back would lose them; fix or delete those rows first",
                self.old_type
            ),
        });
        if self.col.not_null {
            let check = quote_ident(&self.old_check);
            back.push(Action::Tx(vec![
                format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}"),
                format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({oc} IS NOT NULL) NOT VALID"
                ),
            ]));
            back.push(Action::Tx(vec![format!(
                "ALTER TABLE {table} VALIDATE CONSTRAINT {check}"
            )]));
        }
        back.push(Action::Tx(self.swap_sql(true)));
        back
    }

    /// 8. Validating the re-added foreign keys, when there are any.
    fn validate(&self) -> Option<Step> {
        let actions = self.validate_fks();
        (!actions.is_empty()).then(|| Step {
            name: "validate".into(),
            what: "validate the re-added foreign keys (SHARE UPDATE EXCLUSIVE on the referencing table, ROW SHARE on the referenced: writes go on)".into(),
            actions,
            undo: Vec::new(),
            swap: false,
            kept: None,
        })
    }

    /// Finalize: the reverse trigger and the old column go.
    fn finalize(&self) -> Vec<Action> {
        let table = &self.table;
        vec![Action::Tx(vec![
            format!("DROP TRIGGER IF EXISTS {REV_TRIGGER} ON {table}"),
            format!("ALTER TABLE {table} DROP COLUMN IF EXISTS {}", self.oc),
            format!("DROP FUNCTION IF EXISTS {}()", self.rev_fn),
            format!("DROP FUNCTION IF EXISTS {}()", self.fwd_fn),
        ])]
    }

    /// What the user should know.
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for f in &self.inbound {
            let child_col: Vec<&String> = f
                .parent_columns
                .iter()
                .zip(&f.child_columns)
                .filter(|(pc, _)| **pc == self.ct.column)
                .map(|(_, cc)| cc)
                .collect();
            notes.push(format!(
                "{} keeps its column type for {}; the foreign key is re-added NOT VALID and validated (compatible types); convert it with its own column-type playbook",
                f.child,
                child_col.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
            ));
        }
        if self.ct.using.is_some() || int_range(&self.old_type).is_none() {
            notes.push(format!(
                "after the swap, a value the old type cannot hold is kept in {} as NULL; a rollback then refuses until such rows are fixed",
                self.oc
            ));
        }
        notes
    }
}
