//! The in-place conversions (every kind but `partition`): each kind turns a playbook and the
//! table's facts into an ordered list of steps, each with its forward actions and the actions
//! that undo it. Pure: no database here; `runner.rs` executes the steps with the engine's
//! guarantees (lock_timeout + retry, checkpoints, throttled batches, progress, resume,
//! rollback).

pub mod backfill;
pub mod check;
pub mod column_type;
pub mod foreign_key;
pub mod index;
pub mod key;
pub mod not_null;
pub mod runner;

use serde::{Deserialize, Serialize};

use super::facts::Facts;
use super::plan::fit;
use super::spec::{Op, OpPlaybook};
use crate::sql::ir::quote_ident;

/// One thing a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Statements in one transaction under the playbook's lock_timeout, retried with backoff.
    Tx(Vec<String>),
    /// `CREATE [UNIQUE] INDEX CONCURRENTLY` of `index` (qualified): a valid index of that name
    /// is kept, an INVALID leftover of an interrupted build is dropped and built again.
    BuildIndex { index: String, sql: String },
    /// One statement that cannot run in a transaction block (`DROP INDEX CONCURRENTLY`,
    /// `REINDEX … CONCURRENTLY`), under lock_timeout, retried.
    Concurrent(String),
    /// Drops (concurrently) the INVALID indexes of `table` whose name starts with `prefix`:
    /// the leftovers of an interrupted `REINDEX CONCURRENTLY`.
    DropInvalid { table: String, prefix: String },
    /// Keyset batches over the primary key, resumable from the run's high-water mark.
    Batches(Batches),
    /// A statement returning (rows handled, rows changed), run again until it handles none.
    Drain(String),
    /// A query returning one bigint; above zero the run stops with `message`.
    Guard { sql: String, message: String },
}

/// A batched, throttled, resumable pass over a table in primary-key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batches {
    /// What the progress line calls it.
    pub label: String,
    /// The highest key when the pass starts (`text[]`): its upper bound.
    pub max_key_sql: String,
    /// The first batch; `{limit}` is the batch size, `$1..$k` the upper bound. Returns
    /// (rows changed, last key of the range or NULL when none is left).
    pub first_sql: String,
    /// Later batches: `$k+1..$2k` is the previous batch's last key.
    pub next_sql: String,
}

/// One checkpointed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// What it does and which locks it takes, for `lockstep plan`.
    pub what: String,
    pub actions: Vec<Action>,
    /// Undoes the step (run in reverse step order by `lockstep rollback`); idempotent.
    pub undo: Vec<Action>,
    /// The step after which the table's definition has changed for the application (the
    /// swap of `column-type`): a rollback from here on is a swap back.
    #[serde(default)]
    pub swap: bool,
    /// What a rollback cannot take back once this step ran (shown after the rollback).
    #[serde(default)]
    pub kept: Option<String>,
}

/// A frozen plan for an in-place kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpPlan {
    pub kind: String,
    /// The table, quoted and qualified.
    pub table: String,
    pub steps: Vec<Step>,
    /// Run by `lockstep finalize` (empty: nothing to finalize).
    pub finalize: Vec<Action>,
    /// Tables whose locks matter (for naming blockers).
    pub tables: Vec<String>,
    /// Things the user should know (shown by `lockstep plan`).
    pub notes: Vec<String>,
    /// The table's definition before and after, for the plan's diff.
    pub before: String,
    pub after: String,
    pub rows_estimate: i64,
    pub total_bytes: i64,
}

/// An existing index, for `reindex` and `drop-index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexInfo {
    pub name: String,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// The constraint the index backs, if any.
    pub constraint: Option<String>,
    pub partitioned: bool,
}

/// Catalog facts beyond the table's own, read by the runner for the kind at hand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extra {
    /// `server_version_num`.
    pub server_version: i32,
    /// Names of the table's constraints.
    pub constraints: Vec<String>,
    /// Names of relations in the table's schema that a plan would create, found taken.
    pub taken: Vec<String>,
    /// `foreign-key`: the referenced table (quoted, qualified) and its primary key.
    pub referenced: Option<(String, Vec<String>)>,
    /// `reindex`, `drop-index`: the index.
    pub index: Option<IndexInfo>,
    /// `column-type`: views using the column.
    pub column_views: Vec<String>,
    /// `column-type`: CHECK constraints (name, definition) using the column.
    pub column_checks: Vec<(String, String)>,
    /// `column-type`: the column's default's sequence, if any (quoted, qualified), with its
    /// data type.
    pub column_sequence: Option<(String, String)>,
    /// Partitions of a partitioned table (quoted, qualified).
    pub partitions: Vec<String>,
}

/// Names a plan would create in the table's schema (the runner checks they are free).
pub fn wanted_names(pb: &OpPlaybook, facts: &Facts) -> Vec<String> {
    match &pb.op {
        Op::Index { name, .. } => vec![index::index_name(name, facts, &pb.op)],
        Op::Key { name, columns, .. } => vec![key::index_name(name, facts, columns)],
        Op::ForeignKey {
            columns,
            create_index,
            ..
        } => {
            if *create_index && !foreign_key::covered(facts, columns) {
                vec![foreign_key::index_name(facts, columns)]
            } else {
                Vec::new()
            }
        }
        Op::ColumnType { column, .. } => column_type::new_index_names(facts, column),
        _ => Vec::new(),
    }
}

/// The plan for `pb`, and the reasons to refuse it (empty: go).
pub fn plan(pb: &OpPlaybook, facts: &Facts, extra: &Extra, run_id: &str) -> (OpPlan, Vec<String>) {
    let mut p = OpPlan {
        kind: pb.kind.clone(),
        table: facts.qualified(),
        steps: Vec::new(),
        finalize: Vec::new(),
        tables: vec![facts.qualified()],
        notes: Vec::new(),
        before: String::new(),
        after: String::new(),
        rows_estimate: facts.rows_estimate,
        total_bytes: facts.total_bytes,
    };
    let mut refusals = Vec::new();
    if facts.partitioned && !matches!(pb.op, Op::Index { .. }) {
        refusals.push(format!(
            "{} is a partitioned table; kind `{}` works on ordinary tables (run it on each partition)",
            facts.qualified(),
            pb.kind
        ));
    }
    match &pb.op {
        Op::ColumnType { .. } => column_type::plan(pb, facts, extra, run_id, &mut p, &mut refusals),
        Op::NotNull { .. } => not_null::plan(pb, facts, extra, &mut p, &mut refusals),
        Op::ForeignKey { .. } => foreign_key::plan(pb, facts, extra, &mut p, &mut refusals),
        Op::Check { .. } => check::plan(pb, facts, extra, &mut p, &mut refusals),
        Op::Key { .. } => key::plan(pb, facts, extra, &mut p, &mut refusals),
        Op::Index { .. } | Op::Reindex { .. } | Op::DropIndex { .. } => {
            index::plan(pb, facts, extra, &mut p, &mut refusals)
        }
        Op::Backfill { .. } => backfill::plan(pb, facts, run_id, &mut p, &mut refusals),
    }
    for t in &extra.taken {
        refusals.push(format!(
            "{}.{} already exists (a leftover of an earlier run? `lockstep status` lists runs; drop it or roll that run back)",
            quote_ident(&facts.schema),
            quote_ident(t)
        ));
    }
    (p, refusals)
}

/// `schema.name` of a relation in the table's schema, quoted.
pub(crate) fn rel(facts: &Facts, name: &str) -> String {
    format!("{}.{}", quote_ident(&facts.schema), quote_ident(name))
}

/// `a, b` quoted.
pub(crate) fn list(cols: &[String]) -> String {
    cols.iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A default constraint or index name: `<table>_<cols>_<suffix>`, fitted to 63 bytes.
pub(crate) fn default_name(facts: &Facts, cols: &[String], suffix: &str) -> String {
    fit(&format!("{}_{}_{suffix}", facts.name, cols.join("_")))
}

/// Refusals for columns the table does not have.
pub(crate) fn missing_columns(facts: &Facts, cols: &[String], refusals: &mut Vec<String>) {
    for c in cols {
        if facts.column(c).is_none() {
            refusals.push(format!(
                "{} has no column {}",
                facts.qualified(),
                quote_ident(c)
            ));
        }
    }
}

/// A refusal when a constraint name is taken.
pub(crate) fn constraint_free(extra: &Extra, name: &str, refusals: &mut Vec<String>) {
    if extra.constraints.iter().any(|c| c == name) {
        refusals.push(format!(
            "the table already has a constraint named {} (choose another `name`, or drop it)",
            quote_ident(name)
        ));
    }
}

/// `ALTER TABLE … ADD CONSTRAINT … NOT VALID` then `VALIDATE`, as two steps; the first
/// step's undo drops the constraint.
pub(crate) fn not_valid_then_validate(
    table: &str,
    name: &str,
    definition: &str,
    lock: &str,
    steps: &mut Vec<Step>,
) {
    let c = quote_ident(name);
    steps.push(Step {
        name: format!("add {name}"),
        what: format!("add the constraint NOT VALID: no scan; {lock} for milliseconds"),
        actions: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} ADD CONSTRAINT {c} {definition} NOT VALID"
        )])],
        undo: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {c}"
        )])],
        swap: false,
        kept: None,
    });
    steps.push(Step {
        name: format!("validate {name}"),
        what: "validate: scans the table under SHARE UPDATE EXCLUSIVE, which lets reads and writes go on".into(),
        actions: vec![Action::Tx(vec![format!(
            "ALTER TABLE {table} VALIDATE CONSTRAINT {c}"
        )])],
        undo: Vec::new(),
        swap: false,
        kept: None,
    });
}

/// A readable definition of the table (columns, key, constraints are not all shown: enough
/// for the plan's diff).
pub(crate) fn definition(facts: &Facts, extra_lines: &[String]) -> String {
    let mut s = format!("CREATE TABLE {} (\n", facts.qualified());
    let cols: Vec<String> = facts
        .columns
        .iter()
        .map(|c| {
            let mut d = format!("    {} {}", quote_ident(&c.name), c.type_sql);
            if let Some(def) = &c.default_sql {
                if c.identity.is_empty() && !c.generated {
                    d.push_str(&format!(" DEFAULT {def}"));
                }
            }
            if c.not_null {
                d.push_str(" NOT NULL");
            }
            d
        })
        .collect();
    s.push_str(&cols.join(",\n"));
    s.push_str("\n);\n");
    if !facts.pk_columns.is_empty() {
        s.push_str(&format!(
            "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({});\n",
            facts.qualified(),
            quote_ident(&facts.pk_name),
            list(&facts.pk_columns)
        ));
    }
    for ix in &facts.indexes {
        s.push_str(&format!(
            "CREATE {}INDEX {} ON {}{};\n",
            if ix.unique { "UNIQUE " } else { "" },
            quote_ident(&ix.name),
            facts.qualified(),
            ix.tail
        ));
    }
    for l in extra_lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::spec::{parse_any, AnyPlaybook};

    fn op(text: &str) -> OpPlaybook {
        match parse_any(text, "p").unwrap() {
            AnyPlaybook::Op(o) => o,
            AnyPlaybook::Partition(_) => panic!("not an in-place kind"),
        }
    }

    fn extra() -> Extra {
        Extra {
            server_version: 150_000,
            ..Extra::default()
        }
    }

    /// Every statement of every step, forward and undo.
    fn all_sql(p: &OpPlan) -> Vec<String> {
        let mut out = Vec::new();
        for a in p
            .steps
            .iter()
            .flat_map(|s| s.actions.iter().chain(&s.undo))
            .chain(&p.finalize)
        {
            match a {
                Action::Tx(v) => out.extend(v.iter().cloned()),
                Action::BuildIndex { sql, .. } | Action::Concurrent(sql) | Action::Drain(sql) => {
                    out.push(sql.clone())
                }
                Action::Guard { sql, .. } => out.push(sql.clone()),
                Action::Batches(b) => out.extend([b.first_sql.clone(), b.next_sql.clone()]),
                Action::DropInvalid { table, .. } => out.push(table.clone()),
            }
        }
        out
    }

    /// The awkward names of the test table never appear unquoted.
    fn assert_quoted(sql: &[String]) {
        for s in sql {
            assert!(!s.contains(" Sales Data"), "unquoted schema in {s}");
            assert!(!s.contains(" Order "), "unquoted table in {s}");
            assert!(
                !s.contains(" select,") && !s.contains("(select)"),
                "unquoted column in {s}"
            );
        }
    }

    const TABLE: &str = "table = '\"Sales Data\".\"Order\"'\n";

    #[test]
    fn not_null_steps_and_version_forms() {
        let f = crate::playbook::plan::tests::facts();
        let mut f = f;
        f.columns[2].not_null = false;
        let pb = op(&format!(
            "kind = \"not-null\"\n{TABLE}[not_null]\ncolumn = \"note\"\nbackfill = \"'-'\"\n"
        ));
        let (p, refusals) = plan(&pb, &f, &extra(), "r1");
        assert!(refusals.is_empty(), "{refusals:?}");
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "fill note",
                "add Order_note_not_null",
                "validate Order_note_not_null",
                "set not null note"
            ]
        );
        let sql = all_sql(&p);
        assert_quoted(&sql);
        assert!(sql
            .iter()
            .any(|s| s.contains("CHECK (note IS NOT NULL) NOT VALID")));
        assert!(sql
            .iter()
            .any(|s| s.ends_with("ALTER COLUMN note SET NOT NULL")));
        assert!(p.after.contains("note text NOT NULL") && !p.before.contains("note text NOT NULL"));
        // PostgreSQL 18: the native form, no separate SET NOT NULL step.
        let (p18, _) = plan(
            &pb,
            &f,
            &Extra {
                server_version: 180_000,
                ..extra()
            },
            "r1",
        );
        assert!(all_sql(&p18)
            .iter()
            .any(|s| s.contains("NOT NULL note NOT VALID")));
        assert_eq!(p18.steps.len(), 3);
        // Already NOT NULL, or too old a server: refused.
        let (_, r) = plan(&pb, &crate::playbook::plan::tests::facts(), &extra(), "r1");
        assert!(r.iter().any(|r| r.contains("already NOT NULL")));
        let (_, r) = plan(
            &pb,
            &f,
            &Extra {
                server_version: 110_000,
                ..extra()
            },
            "r1",
        );
        assert!(r.iter().any(|r| r.contains("before 12")));
    }

    #[test]
    fn check_foreign_key_unique_primary_key() {
        let f = crate::playbook::plan::tests::facts();
        let (p, r) = plan(
            &op(&format!(
                "kind = \"check\"\n{TABLE}[check]\nexpression = \"id > 0\"\n"
            )),
            &f,
            &extra(),
            "r",
        );
        assert!(r.is_empty());
        assert!(all_sql(&p).iter().any(
            |s| s.contains("ADD CONSTRAINT \"Order_lockstep_check\" CHECK (id > 0) NOT VALID")
        ));
        let fk = op(&format!(
            "kind = \"foreign-key\"\n{TABLE}[foreign_key]\ncolumns = [\"select\"]\nreferences = \"users\"\non_delete = \"cascade\"\n"
        ));
        let (_, r) = plan(&fk, &f, &extra(), "r");
        assert!(r.iter().any(|r| r.contains("does not exist")), "{r:?}");
        let with_ref = Extra {
            referenced: Some(("public.users".into(), vec!["id".into()])),
            ..extra()
        };
        let (p, r) = plan(&fk, &f, &with_ref, "r");
        assert!(r.is_empty(), "{r:?}");
        assert_eq!(
            p.steps[0].name, "index",
            "no index covers the column: one is built first"
        );
        let sql = all_sql(&p);
        assert_quoted(&sql);
        assert!(sql.iter().any(|s| s.contains(
            "FOREIGN KEY (\"select\") REFERENCES public.users (id) ON DELETE CASCADE NOT VALID"
        )));
        assert!(sql
            .iter()
            .any(|s| s.contains("CREATE INDEX CONCURRENTLY \"Order_select_idx\"")));
        assert_eq!(wanted_names(&fk, &f), ["Order_select_idx"]);
        // An index that covers the columns already: none is built, and its name is no clash.
        let mut covered = f.clone();
        covered.indexes.push(crate::playbook::facts::Index {
            name: "Order_select_idx".into(),
            unique: false,
            tail: " USING btree (\"select\", note)".into(),
            columns: vec!["select".into(), "note".into()],
        });
        assert!(wanted_names(&fk, &covered).is_empty());
        let (p, _) = plan(&fk, &covered, &with_ref, "r");
        assert!(p.steps.iter().all(|s| s.name != "index"));
        // A taken constraint name is refused.
        let (_, r) = plan(
            &fk,
            &f,
            &Extra {
                constraints: vec!["Order_select_fkey".into()],
                ..with_ref
            },
            "r",
        );
        assert!(r.iter().any(|r| r.contains("already has a constraint")));
        let pk = op(&format!(
            "kind = \"primary-key\"\n{TABLE}[primary_key]\ncolumns = [\"note\"]\n"
        ));
        let (_, r) = plan(&pk, &f, &extra(), "r");
        assert!(r.iter().any(|r| r.contains("already has a primary key")));
        let mut nopk = f.clone();
        nopk.pk_columns.clear();
        nopk.columns[2].not_null = false;
        let (p, r) = plan(&pk, &nopk, &extra(), "r");
        assert!(r.is_empty(), "{r:?}");
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names[names.len() - 2..], ["index", "constraint"]);
        assert!(
            names.iter().any(|n| n.starts_with("set not null")),
            "NOT NULL comes first"
        );
        assert!(all_sql(&p)
            .iter()
            .any(|s| s.contains("PRIMARY KEY USING INDEX \"Order_pkey\"")));
        let uq = op(&format!(
            "kind = \"unique\"\n{TABLE}[unique]\ncolumns = [\"select\", \"note\"]\n"
        ));
        let (p, _) = plan(&uq, &f, &extra(), "r");
        assert!(all_sql(&p).iter().any(|s| s.contains("CREATE UNIQUE INDEX CONCURRENTLY \"Order_select_note_key\" ON \"Sales Data\".\"Order\" (\"select\", note)")));
    }

    #[test]
    fn indexes_reindex_and_drop() {
        let f = crate::playbook::plan::tests::facts();
        let (p, r) = plan(
            &op(&format!(
                "kind = \"index\"\n{TABLE}[index]\ncolumns = [\"select\"]\n"
            )),
            &f,
            &extra(),
            "r",
        );
        assert!(r.is_empty());
        assert!(
            matches!(&p.steps[0].actions[0], Action::BuildIndex { sql, .. } if sql == "CREATE INDEX CONCURRENTLY \"Order_select_idx\" ON \"Sales Data\".\"Order\" USING btree (\"select\")")
        );
        let mut parted = f.clone();
        parted.partitioned = true;
        let (p, r) = plan(
            &op(&format!(
                "kind = \"index\"\n{TABLE}[index]\nname = \"ix\"\ncolumns = [\"note\"]\n"
            )),
            &parted,
            &Extra {
                partitions: vec!["\"Sales Data\".\"Order_p1\"".into()],
                ..extra()
            },
            "r",
        );
        assert!(r.is_empty());
        let sql = all_sql(&p);
        assert!(sql
            .iter()
            .any(|s| s.contains("ON ONLY \"Sales Data\".\"Order\"")));
        assert!(sql
            .iter()
            .any(|s| s.contains("CREATE INDEX CONCURRENTLY ix_p0 ON \"Sales Data\".\"Order_p1\"")));
        assert!(sql
            .iter()
            .any(|s| s.contains("ATTACH PARTITION \"Sales Data\".ix_p0")));
        // Kinds that do not handle partitioned tables refuse them.
        let (_, r) = plan(
            &op(&format!(
                "kind = \"check\"\n{TABLE}[check]\nexpression = \"true\"\n"
            )),
            &parted,
            &extra(),
            "r",
        );
        assert!(r.iter().any(|r| r.contains("partitioned")));
        let info = IndexInfo {
            name: "order_note".into(),
            definition: "CREATE INDEX order_note ON \"Sales Data\".\"Order\" USING btree (note)"
                .into(),
            constraint: None,
            partitioned: false,
        };
        let drop = op(&format!(
            "kind = \"drop-index\"\n{TABLE}[drop_index]\nname = \"order_note\"\n"
        ));
        let (p, r) = plan(
            &drop,
            &f,
            &Extra {
                index: Some(info.clone()),
                ..extra()
            },
            "r",
        );
        assert!(r.is_empty());
        assert!(
            matches!(&p.steps[0].undo[0], Action::BuildIndex { sql, .. } if sql.starts_with("CREATE INDEX CONCURRENTLY order_note ON"))
        );
        let (_, r) = plan(
            &drop,
            &f,
            &Extra {
                index: Some(IndexInfo {
                    constraint: Some("c".into()),
                    ..info.clone()
                }),
                ..extra()
            },
            "r",
        );
        assert!(r.iter().any(|r| r.contains("backs the constraint")));
        let (_, r) = plan(&drop, &f, &extra(), "r");
        assert!(r.iter().any(|r| r.contains("no index named")));
        let re = op(&format!(
            "kind = \"reindex\"\n{TABLE}[reindex]\nname = \"order_note\"\n"
        ));
        let (p, _) = plan(
            &re,
            &f,
            &Extra {
                index: Some(info.clone()),
                ..extra()
            },
            "r",
        );
        assert!(all_sql(&p)
            .iter()
            .any(|s| s == "REINDEX INDEX CONCURRENTLY \"Sales Data\".order_note"));
        let (_, r) = plan(
            &re,
            &f,
            &Extra {
                index: Some(info),
                server_version: 110_000,
                ..extra()
            },
            "r",
        );
        assert!(r.iter().any(|r| r.contains("PostgreSQL 12")));
    }

    #[test]
    fn backfill_keeps_undo_and_restores_only_unchanged_rows() {
        let f = crate::playbook::plan::tests::facts();
        let (p, r) = plan(
            &op(&format!("kind = \"backfill\"\n{TABLE}[update]\nset = \"note = upper(note)\"\nwhere = \"note <> ''\"\n")),
            &f,
            &extra(),
            "run 1",
        );
        assert!(r.is_empty());
        let Action::Batches(b) = &p.steps[1].actions[0] else {
            panic!()
        };
        assert!(b.next_sql.contains("FOR UPDATE"));
        assert!(b.next_sql.contains("INSERT INTO lockstep.\"undo_run 1\""));
        assert!(b.next_sql.contains("id > $2::text::bigint"));
        let Action::Drain(restore) = &p.steps[1].undo[0] else {
            panic!()
        };
        assert!(
            restore.contains("to_jsonb(\"Order\".*) = d.lockstep_new"),
            "{restore}"
        );
        assert!(!p.finalize.is_empty(), "finalize drops the undo table");
        let mut nopk = f.clone();
        nopk.pk_columns.clear();
        let (_, r) = plan(
            &op(&format!(
                "kind = \"backfill\"\n{TABLE}[update]\nset = \"note = 'x'\"\n"
            )),
            &nopk,
            &extra(),
            "r",
        );
        assert!(r.iter().any(|r| r.contains("no primary key")));
    }

    #[test]
    fn column_type_swaps_and_swaps_back() {
        let mut f = crate::playbook::plan::tests::facts();
        f.columns[0].type_sql = "integer".into();
        f.columns[0].default_sql =
            Some("nextval('\"Sales Data\".\"Order_id_seq\"'::regclass)".into());
        f.inbound_fks.push(crate::playbook::facts::InboundFk {
            name: "line_order_fkey".into(),
            child: "\"Sales Data\".line".into(),
            child_columns: vec!["order id".into()],
            parent_columns: vec!["id".into()],
            actions: "ON UPDATE NO ACTION ON DELETE CASCADE".into(),
        });
        let x = Extra {
            column_sequence: Some(("\"Sales Data\".\"Order_id_seq\"".into(), "integer".into())),
            ..extra()
        };
        let pb = op(&format!(
            "kind = \"column-type\"\n{TABLE}[column_type]\ncolumn = \"id\"\ntype = \"bigint\"\n"
        ));
        let (p, r) = plan(&pb, &f, &x, "r");
        assert!(r.is_empty(), "{r:?}");
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names[..4], ["add column", "capture", "backfill", "indexes"]);
        let swap = p.steps.iter().find(|s| s.swap).unwrap();
        let Action::Tx(fwd) = &swap.actions[0] else {
            panic!()
        };
        let pos = |needle: &str| {
            fwd.iter()
                .position(|s| s.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not in {fwd:#?}"))
        };
        assert!(
            pos("DROP CONSTRAINT IF EXISTS line_order_fkey")
                < pos("DROP CONSTRAINT \"Order_pkey\"")
        );
        assert!(pos("DROP CONSTRAINT \"Order_pkey\"") < pos("ALTER COLUMN id DROP NOT NULL"));
        // NOT NULL under the final name (PostgreSQL 18 names the constraint after it).
        assert!(pos("ALTER COLUMN id SET NOT NULL") > pos("RENAME COLUMN id_lockstep_new TO id"));
        assert!(
            pos("RENAME COLUMN id TO id_lockstep_old") < pos("RENAME COLUMN id_lockstep_new TO id")
        );
        assert!(pos("AS bigint") > 0);
        assert!(
            pos("PRIMARY KEY USING INDEX \"Order_pkey_lockstep_new\"")
                > pos("RENAME COLUMN id_lockstep_new TO id")
        );
        assert!(pos("FOREIGN KEY (\"order id\") REFERENCES \"Sales Data\".\"Order\" (id) ON UPDATE NO ACTION ON DELETE CASCADE NOT VALID") > 0);
        assert!(pos("CREATE TRIGGER zz_lockstep_column_rev") > 0);
        // The reverse sync of integer narrowing cannot fail.
        assert!(fwd
            .iter()
            .any(|s| s.contains("BETWEEN -2147483648 AND 2147483647")));
        // Swap back: the old key's unique index first, a guard, then the mirror transaction.
        assert!(
            matches!(&swap.undo[0], Action::BuildIndex { sql, .. } if sql.contains("(id_lockstep_old)"))
        );
        assert!(swap.undo.iter().any(|a| matches!(a, Action::Guard { .. })));
        let Some(Action::Tx(back)) = swap.undo.last() else {
            panic!()
        };
        assert!(back
            .iter()
            .any(|s| s.contains("RENAME COLUMN id_lockstep_old TO id")));
        assert!(back
            .iter()
            .any(|s| s.contains("PRIMARY KEY USING INDEX \"Order_pkey_lockstep_old\"")));
        assert_quoted(&all_sql(&p));
        assert!(p.after.contains("id bigint") && p.before.contains("id integer"));
        // A view or a check on the column is refused.
        let (_, r) = plan(
            &pb,
            &f,
            &Extra {
                column_views: vec!["v".into()],
                column_checks: vec![("c".into(), "CHECK (id > 0)".into())],
                ..x
            },
            "r",
        );
        assert_eq!(r.len(), 2, "{r:?}");
    }
}
