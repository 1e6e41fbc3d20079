//! `column-type`: change a column's type without rewriting the table under ACCESS
//! EXCLUSIVE — above all `int` → `bigint` on a primary key that other tables reference.
//!
//! A new column of the new type; a BEFORE trigger that sets it from the old one on every
//! insert and update; a batched backfill of the existing rows; the new column's indexes
//! (the primary key's as a unique index) built concurrently; its NOT NULL proven by a
//! validated check; a verification pass; then one short swap transaction under
//! lock_timeout: the columns change names, `ADD PRIMARY KEY USING INDEX`, the default,
//! sequence (widened) or identity moves, foreign keys on the column (inbound and outbound)
//! are re-added `NOT VALID` and validated after, and a reverse trigger keeps the old column
//! current. Rollback before the swap drops what was added; after it (until finalize) it
//! swaps back, the old column's unique index being rebuilt concurrently first.

use super::{
    definition, list, missing_columns, not_valid_then_validate, Action, Extra, OpPlan, Step,
};
use crate::playbook::facts::{Facts, Index};
use crate::playbook::plan::{fit, lit};
use crate::playbook::spec::{Op, OpPlaybook};
use crate::sql::ir::quote_ident;

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

/// Whether `ident` (quoted as PostgreSQL prints it) occurs in `text` as a whole word.
fn mentions(text: &str, ident: &str) -> bool {
    replace_ident(text, ident, "\u{0}") != text
}

/// `text` with every whole-word occurrence of the identifier `ident` replaced by `with`.
fn replace_ident(text: &str, ident: &str, with: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '"';
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(ident) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + ident.len()..].chars().next();
        let whole = !before.is_some_and(is_word) && !after.is_some_and(is_word)
            || ident.starts_with('"') && !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..i]);
        out.push_str(if whole { with } else { ident });
        rest = &rest[i + ident.len()..];
    }
    out.push_str(rest);
    out
}

/// Indexes (not the primary key) on the column: they get a copy on the new column.
fn column_indexes<'f>(facts: &'f Facts, column: &str) -> Vec<&'f Index> {
    facts
        .indexes
        .iter()
        .filter(|i| {
            i.columns.iter().any(|c| c == column) || mentions(&i.tail, &quote_ident(column))
        })
        .collect()
}

/// The names of the indexes built on the new column (checked free by the runner).
pub(crate) fn new_index_names(facts: &Facts, column: &str) -> Vec<String> {
    let mut out: Vec<String> = column_indexes(facts, column)
        .iter()
        .map(|i| fit(&format!("{}_lockstep_new", i.name)))
        .collect();
    if facts.pk_columns.iter().any(|c| c == column) {
        out.push(fit(&format!("{}_lockstep_new", facts.pk_name)));
    }
    out
}

/// Integer ranges, for a reverse cast that cannot fail.
fn int_range(t: &str) -> Option<(&'static str, &'static str)> {
    match t {
        "smallint" => Some(("-32768", "32767")),
        "integer" => Some(("-2147483648", "2147483647")),
        _ => None,
    }
}

pub fn plan(
    pb: &OpPlaybook,
    facts: &Facts,
    extra: &Extra,
    run_id: &str,
    p: &mut OpPlan,
    refusals: &mut Vec<String>,
) {
    let Op::ColumnType {
        column,
        new_type,
        using,
        reverse_using,
    } = &pb.op
    else {
        return;
    };
    let Some(col) = facts.column(column) else {
        missing_columns(facts, std::slice::from_ref(column), refusals);
        return;
    };
    let table = facts.qualified();
    let me = quote_ident(&facts.name);
    let c = quote_ident(column);
    let n = names(column, run_id);
    let nc = quote_ident(&n.new_col);
    let oc = quote_ident(&n.old_col);
    let old_type = col.type_sql.clone();
    if facts.pk_columns.is_empty() {
        refusals.push(format!(
            "{table} has no primary key: the backfill walks the table by it"
        ));
    }
    if col.generated {
        refusals.push(format!(
            "{c} is a generated column: change its expression instead"
        ));
    }
    for v in &extra.column_views {
        refusals.push(format!(
            "view {v} uses {c}: drop it and recreate it after the conversion (a view keeps pointing at the old column)"
        ));
    }
    for (name, def) in &extra.column_checks {
        refusals.push(format!(
            "check constraint {} ({def}) uses {c}: drop it first and add it back with a `check` playbook afterwards",
            quote_ident(name)
        ));
    }
    for f in facts.columns.iter().filter(|f| f.generated) {
        if f.default_sql.as_deref().is_some_and(|d| mentions(d, &c)) {
            refusals.push(format!(
                "generated column {} is computed from {c}",
                quote_ident(&f.name)
            ));
        }
    }
    if facts
        .columns
        .iter()
        .any(|f| f.name == n.new_col || f.name == n.old_col)
    {
        refusals.push(format!(
            "{table} already has a column {nc} or {oc} (a leftover of an earlier run? roll it back, or drop it)"
        ));
    }
    // The new value, in the backfill (plain column names) and in the trigger (NEW.…).
    let value_sql = match using {
        Some(u) => format!("({u})"),
        None => format!("{c}::{new_type}"),
    };
    let fwd_body = match using {
        Some(u) => format!("SELECT ({u}) INTO NEW.{nc} FROM (SELECT NEW.*) AS {me};"),
        None => format!("NEW.{nc} := NEW.{c}::{new_type};"),
    };
    // The way back, for the reverse trigger: never makes the application's write fail.
    let rev_body = match (reverse_using, int_range(&old_type)) {
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
    let back_value = match reverse_using {
        Some(r) => format!("({r})"),
        None => format!("{c}::{old_type}"),
    };
    let in_pk = facts.pk_columns.iter().any(|k| k == column);
    let indexes = column_indexes(facts, column);
    // Unique constraints are indexes named like a constraint of the table.
    let is_constraint = |i: &Index| i.unique && extra.constraints.contains(&i.name);
    for ix in &indexes {
        if !ix.columns.iter().any(|x| x == column) {
            refusals.push(format!(
                "index {} uses {c} in an expression: drop it first and recreate it after the conversion",
                quote_ident(&ix.name)
            ));
        }
    }
    let inbound: Vec<_> = facts
        .inbound_fks
        .iter()
        .filter(|f| f.parent_columns.iter().any(|x| x == column))
        .collect();
    let outbound: Vec<&(String, String)> = facts
        .outbound_fks
        .iter()
        .filter(|(_, def)| {
            def.split_once(" REFERENCES ")
                .is_some_and(|(own, _)| mentions(own, &c))
        })
        .collect();
    for f in &inbound {
        if !p.tables.contains(&f.child) {
            p.tables.push(f.child.clone());
        }
    }
    let identity = col.identity.clone();
    let identity_seq = facts
        .sequences
        .iter()
        .find(|s| s.identity && s.column == *column)
        .map(|s| s.sequence.clone());
    let default = if identity.is_empty() {
        col.default_sql.clone()
    } else {
        None
    };

    // 1. the new column
    p.steps.push(Step {
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
    });
    // 2. the sync trigger
    let fwd_fn = format!("lockstep.{}", quote_ident(&n.fwd));
    let rev_fn = format!("lockstep.{}", quote_ident(&n.rev));
    p.steps.push(Step {
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
    });
    // 3. backfill
    let batches = super::backfill::update_batches(
        facts,
        &format!("{nc} = {value_sql}"),
        Some(&format!("{nc} IS DISTINCT FROM {value_sql}")),
        None,
        "backfill",
    );
    p.steps.push(Step {
        name: "backfill".into(),
        what: format!(
            "set {nc} = {value_sql} in primary-key batches, each its own transaction (row locks on the batch only); every updated row gets a new version, so the table grows until vacuumed"
        ),
        actions: vec![Action::Batches(batches)],
        undo: Vec::new(),
        swap: false,
        kept: None,
    });
    // 4. indexes on the new column
    let mut builds = Vec::new();
    let mut drops = Vec::new();
    let pk_new = fit(&format!("{}_lockstep_new", facts.pk_name));
    let pk_old = fit(&format!("{}_lockstep_old", facts.pk_name));
    // A unique index on the primary key with the column replaced by `col`.
    let key_index = |col: &str, name: &str| {
        let cols: Vec<String> = facts
            .pk_columns
            .iter()
            .map(|k| {
                if k == column {
                    col.to_string()
                } else {
                    k.clone()
                }
            })
            .collect();
        Action::BuildIndex {
            index: super::rel(facts, name),
            sql: format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {} ON {table} ({})",
                quote_ident(name),
                list(&cols)
            ),
        }
    };
    if in_pk {
        let q = super::rel(facts, &pk_new);
        builds.push(key_index(&n.new_col, &pk_new));
        drops.push(Action::Concurrent(format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {q}"
        )));
    }
    for ix in &indexes {
        let new = fit(&format!("{}_lockstep_new", ix.name));
        let q = super::rel(facts, &new);
        builds.push(Action::BuildIndex {
            index: q.clone(),
            sql: format!(
                "CREATE {}INDEX CONCURRENTLY {} ON {table}{}",
                if ix.unique { "UNIQUE " } else { "" },
                quote_ident(&new),
                replace_ident(&ix.tail, &c, &nc)
            ),
        });
        drops.push(Action::Concurrent(format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {q}"
        )));
    }
    if !builds.is_empty() {
        p.steps.push(Step {
            name: "indexes".into(),
            what: format!("CREATE INDEX CONCURRENTLY on {nc} for each index on {c} (the primary key's as a unique index): SHARE UPDATE EXCLUSIVE, writes go on"),
            actions: builds,
            undo: drops,
            swap: false,
            kept: None,
        });
    }
    // 5. NOT NULL, proven by a validated check
    let nn_check = fit(&format!("{}_{}_not_null", facts.name, n.new_col));
    let old_check = fit(&format!("{}_{}_not_null", facts.name, n.old_col));
    if col.not_null {
        not_valid_then_validate(
            &table,
            &nn_check,
            &format!("CHECK ({nc} IS NOT NULL)"),
            "ACCESS EXCLUSIVE",
            &mut p.steps,
        );
    }
    // FK validation after a swap back: also harmless before the swap (already valid).
    let mut validate_fks: Vec<Action> = Vec::new();
    for f in &inbound {
        validate_fks.push(Action::Tx(vec![f.validate_sql()]));
    }
    for (name, _) in &outbound {
        validate_fks.push(Action::Tx(vec![format!(
            "ALTER TABLE {table} VALIDATE CONSTRAINT {}",
            quote_ident(name)
        )]));
    }
    // 6. verify
    p.steps.push(Step {
        name: "verify".into(),
        what: format!("count the rows whose {nc} differs from {value_sql} (a read, no locks beyond ACCESS SHARE); must be none"),
        actions: vec![Action::Guard {
            sql: format!("SELECT count(*) FROM {table} WHERE {nc} IS DISTINCT FROM {value_sql}"),
            message: format!("rows of {table} where {nc} differs from {value_sql}: the swap is refused (resume re-runs the check)"),
        }],
        undo: validate_fks.clone(),
        swap: false,
        kept: None,
    });
    // 7. the swap, and the swap back
    let swap_sql = |back: bool| -> Vec<String> {
        // `from` is the column that holds the current values going in, `to` the other one.
        let (live_after, spare) = if back { (&oc, &nc) } else { (&nc, &oc) };
        let mut s = vec![format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")];
        s.extend(inbound.iter().map(|f| f.drop_sql()));
        for (name, _) in &outbound {
            s.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
                quote_ident(name)
            ));
        }
        if back {
            s.push(format!("DROP TRIGGER IF EXISTS {REV_TRIGGER} ON {table}"));
        } else {
            s.push(format!("DROP TRIGGER IF EXISTS {FWD_TRIGGER} ON {table}"));
        }
        if in_pk {
            s.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT {}",
                quote_ident(&facts.pk_name)
            ));
        }
        for ix in indexes.iter().filter(|i| is_constraint(i)) {
            s.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT {}",
                quote_ident(&ix.name)
            ));
        }
        if col.not_null {
            s.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {c} DROP NOT NULL"
            ));
        }
        if default.is_some() {
            s.push(format!("ALTER TABLE {table} ALTER COLUMN {c} DROP DEFAULT"));
        }
        // The column names trade places.
        s.push(format!("ALTER TABLE {table} RENAME COLUMN {c} TO {spare}"));
        s.push(format!(
            "ALTER TABLE {table} RENAME COLUMN {live_after} TO {c}"
        ));
        // Under its final name, so PostgreSQL 18 names the NOT NULL constraint as before;
        // proven by the validated check, no scan.
        if col.not_null {
            let check = if back { &old_check } else { &nn_check };
            s.push(format!("ALTER TABLE {table} ALTER COLUMN {c} SET NOT NULL"));
            s.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
                quote_ident(check)
            ));
        }
        if let Some(d) = &default {
            s.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {c} SET DEFAULT {d}"
            ));
        }
        if let Some((seq, seq_type)) = &extra.column_sequence {
            if !back && int_range(seq_type).is_some() && int_range(new_type).is_none() {
                s.push(format!("ALTER SEQUENCE {seq} AS bigint"));
            }
            s.push(format!("ALTER SEQUENCE {seq} OWNED BY {table}.{c}"));
        }
        if !identity.is_empty() {
            let kind = if identity == "a" {
                "ALWAYS"
            } else {
                "BY DEFAULT"
            };
            let previous = if back {
                format!(
                    "pg_sequence_last_value(pg_get_serial_sequence({}, {}))",
                    lit(&table),
                    lit(spare.trim_matches('"'))
                )
            } else {
                format!(
                    "pg_sequence_last_value({})",
                    lit(identity_seq.as_deref().unwrap_or(""))
                )
            };
            s.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {c} ADD GENERATED {kind} AS IDENTITY"
            ));
            s.push(format!(
                "SELECT setval(pg_get_serial_sequence({t}, {cl}), GREATEST(coalesce({previous}, 0), (SELECT coalesce(max({c}), 0) FROM {table})::bigint, 1))",
                t = lit(&table),
                cl = lit(column),
            ));
            s.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {spare} DROP IDENTITY IF EXISTS"
            ));
        }
        if in_pk {
            let ix = if back { &pk_old } else { &pk_new };
            s.push(format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}",
                quote_ident(&facts.pk_name),
                quote_ident(ix)
            ));
        }
        for ix in &indexes {
            let new = fit(&format!("{}_lockstep_new", ix.name));
            let old = fit(&format!("{}_lockstep_old", ix.name));
            if is_constraint(ix) {
                let using = if back { &old } else { &new };
                s.push(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {} UNIQUE USING INDEX {}",
                    quote_ident(&ix.name),
                    quote_ident(using)
                ));
            } else if back {
                s.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    super::rel(facts, &ix.name),
                    quote_ident(&new)
                ));
                s.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    super::rel(facts, &old),
                    quote_ident(&ix.name)
                ));
            } else {
                s.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    super::rel(facts, &ix.name),
                    quote_ident(&old)
                ));
                s.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    super::rel(facts, &new),
                    quote_ident(&ix.name)
                ));
            }
        }
        for (privilege, to) in &facts.column_grants {
            if privilege.ends_with(&format!("({c})")) {
                s.push(format!("GRANT {privilege} ON {table} TO {to}"));
            }
        }
        for (name, def) in &outbound {
            s.push(format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} {def} NOT VALID",
                quote_ident(name)
            ));
        }
        s.extend(inbound.iter().map(|f| f.add_not_valid_sql(&table)));
        if back {
            s.push(format!("DROP FUNCTION IF EXISTS {rev_fn}()"));
        } else {
            s.push(format!(
                "CREATE OR REPLACE FUNCTION {rev_fn}() RETURNS trigger LANGUAGE plpgsql AS $lockstep$\nBEGIN\n  {rev_body}\n  RETURN NEW;\nEND\n$lockstep$"
            ));
            s.push(format!(
                "CREATE TRIGGER {REV_TRIGGER} BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {rev_fn}()"
            ));
        }
        s
    };
    // Before swapping back: the old column's unique indexes (dropped with the constraints at
    // the swap), its NOT NULL check, and a guard against values the old type cannot hold.
    let mut back = Vec::new();
    if in_pk {
        back.push(key_index(&n.old_col, &pk_old));
    }
    for ix in indexes.iter().filter(|i| is_constraint(i)) {
        let old = fit(&format!("{}_lockstep_old", ix.name));
        back.push(Action::BuildIndex {
            index: super::rel(facts, &old),
            sql: format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {} ON {table}{}",
                quote_ident(&old),
                replace_ident(&ix.tail, &c, &oc)
            ),
        });
    }
    back.push(Action::Guard {
        sql: format!(
            "SELECT count(*) FROM {table} WHERE {oc} IS DISTINCT FROM {}",
            replace_ident(&back_value, &c, &c)
        ),
        message: format!(
            "rows of {table} hold values in {c} that the old type {old_type} cannot represent (or that differ from {oc}): swapping back would lose them; fix or delete those rows first"
        ),
    });
    if col.not_null {
        back.push(Action::Tx(vec![
            format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
                quote_ident(&old_check)
            ),
            format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} CHECK ({oc} IS NOT NULL) NOT VALID",
                quote_ident(&old_check)
            ),
        ]));
        back.push(Action::Tx(vec![format!(
            "ALTER TABLE {table} VALIDATE CONSTRAINT {}",
            quote_ident(&old_check)
        )]));
    }
    back.push(Action::Tx(swap_sql(true)));
    p.steps.push(Step {
        name: "swap".into(),
        what: format!(
            "one transaction under lock_timeout, retried: ACCESS EXCLUSIVE on {table}{} for milliseconds; the columns trade names, constraints move to the new column, a reverse trigger keeps {oc} current",
            if inbound.is_empty() { String::new() } else { " and the referencing tables".into() }
        ),
        actions: vec![Action::Tx(swap_sql(false))],
        undo: back,
        swap: true,
        kept: None,
    });
    // 8. validate the re-added foreign keys
    if !validate_fks.is_empty() {
        p.steps.push(Step {
            name: "validate".into(),
            what: "validate the re-added foreign keys (SHARE UPDATE EXCLUSIVE on the referencing table, ROW SHARE on the referenced: writes go on)".into(),
            actions: validate_fks,
            undo: Vec::new(),
            swap: false,
            kept: None,
        });
    }
    p.finalize = vec![Action::Tx(vec![
        format!("DROP TRIGGER IF EXISTS {REV_TRIGGER} ON {table}"),
        format!("ALTER TABLE {table} DROP COLUMN IF EXISTS {oc}"),
        format!("DROP FUNCTION IF EXISTS {rev_fn}()"),
        format!("DROP FUNCTION IF EXISTS {fwd_fn}()"),
    ])];
    for f in &inbound {
        let child_col: Vec<&String> = f
            .parent_columns
            .iter()
            .zip(&f.child_columns)
            .filter(|(pc, _)| *pc == column)
            .map(|(_, cc)| cc)
            .collect();
        p.notes.push(format!(
            "{} keeps its column type for {}; the foreign key is re-added NOT VALID and validated (compatible types); convert it with its own column-type playbook",
            f.child,
            child_col.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
        ));
    }
    if using.is_some() || int_range(&old_type).is_none() {
        p.notes.push(format!(
            "after the swap, a value the old type cannot hold is kept in {oc} as NULL; a rollback then refuses until such rows are fixed"
        ));
    }
    p.before = definition(facts, &[]);
    let mut after = facts.clone();
    for f in &mut after.columns {
        if f.name == *column {
            f.type_sql = new_type.clone();
        }
    }
    p.after = definition(&after, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_replaced_as_whole_words() {
        assert_eq!(
            replace_ident(" USING btree (id, id2)", "id", "x"),
            " USING btree (x, id2)"
        );
        assert_eq!(
            replace_ident(
                " USING btree (\"Id\") WHERE (\"Id\" > 0)",
                "\"Id\"",
                "\"n\""
            ),
            " USING btree (\"n\") WHERE (\"n\" > 0)"
        );
        assert!(mentions("FOREIGN KEY (customer_id)", "customer_id"));
        assert!(!mentions("FOREIGN KEY (customer_id2)", "customer_id"));
    }
}
