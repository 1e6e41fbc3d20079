//! The plans of the in-place kinds, against a table whose names need quoting.

#[cfg(test)]
mod in_place {
    use crate::playbook::facts::{example, Extra, Facts, IndexInfo};
    use crate::playbook::kinds::Spec;
    use crate::playbook::spec::{parse, Playbook};
    use crate::playbook::steps::{make, Action, InPlace, PlanCx, StepPlan};

    fn op(text: &str) -> Playbook {
        parse(text, "p").unwrap()
    }

    /// The plan of an in-place playbook on `facts`.
    fn plan(pb: &Playbook, facts: &Facts, extra: &Extra, run_id: &str) -> (StepPlan, Vec<String>) {
        let cx = PlanCx {
            pb: &pb.common,
            facts,
            extra,
            run_id,
        };
        let name = pb.kind_name().name();
        match &pb.kind {
            Spec::ColumnType(k) => make(k, name, &cx),
            Spec::NotNull(k) => make(k, name, &cx),
            Spec::ForeignKey(k) => make(k, name, &cx),
            Spec::Check(k) => make(k, name, &cx),
            Spec::Unique(k) => make(k, name, &cx),
            Spec::PrimaryKey(k) => make(k, name, &cx),
            Spec::Index(k) => make(k, name, &cx),
            Spec::Reindex(k) => make(k, name, &cx),
            Spec::DropIndex(k) => make(k, name, &cx),
            Spec::Backfill(k) => make(k, name, &cx),
            Spec::TestNoop(k) => make(k, name, &cx),
            Spec::Partition(_) => panic!("not an in-place kind"),
        }
    }

    fn wanted_names(pb: &Playbook, facts: &Facts) -> Vec<String> {
        match &pb.kind {
            Spec::ForeignKey(k) => k.wanted(facts),
            other => panic!("{other:?}"),
        }
    }

    fn extra() -> Extra {
        Extra {
            server_version: 150_000,
            ..Extra::default()
        }
    }

    /// Every statement of every step, forward and undo.
    fn all_sql(p: &StepPlan) -> Vec<String> {
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
        let f = example();
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
        let (_, r) = plan(&pb, &example(), &extra(), "r1");
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
        let f = example();
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
            ..Default::default()
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
        let f = example();
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
        let f = example();
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
        let mut f = example();
        f.columns[0].type_sql = "integer".into();
        f.columns[0].default_sql =
            Some("nextval('\"Sales Data\".\"Order_id_seq\"'::regclass)".into());
        f.inbound_fks.push(crate::playbook::facts::InboundFk {
            name: "line_order_fkey".into(),
            child: "\"Sales Data\".line".into(),
            child_columns: vec!["order id".into()],
            parent_columns: vec!["id".into()],
            actions: "ON UPDATE NO ACTION ON DELETE CASCADE".into(),
            validated: true,
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
