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
            Spec::Partition(_) | Spec::ColumnType(_) | Spec::Rebuild(_) => {
                panic!("not an in-place kind")
            }
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
            .chain(&p.discard)
        {
            match a {
                Action::Tx(v) => out.extend(v.iter().cloned()),
                Action::BuildIndex { sql, .. } | Action::Concurrent(sql) | Action::Drain(sql) => {
                    out.push(sql.clone())
                }
                Action::Guard { sql, .. } => out.push(sql.clone()),
                Action::Batches(b) => out.extend([b.first_sql.clone(), b.next_sql.clone()]),
                Action::DropInvalid { table, .. } => out.push(table.clone()),
                Action::Restore(r) => {
                    out.extend(r.start.iter().cloned());
                    out.extend([
                        r.count_sql.clone(),
                        r.batch_sql.clone(),
                        r.summary_sql.clone(),
                    ]);
                }
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
    fn backfill_keeps_undo_per_column_and_restores_unchanged_columns() {
        let f = example();
        let backfill = |set: &str| {
            plan(
                &op(&format!(
                    "kind = \"backfill\"\n{TABLE}[update]\nset = '{set}'\nwhere = \"note <> ''\"\n"
                )),
                &f,
                &extra(),
                "run 1",
            )
        };
        let (p, r) = backfill("(note, \"select\") = (upper(note), now())");
        assert!(r.is_empty(), "{r:?}");
        assert_quoted(&all_sql(&p));
        let Action::Tx(create) = &p.steps[0].actions[0] else {
            panic!()
        };
        assert!(
            create[1].contains("AS SELECT lockstep_t.id AS key1, lockstep_t.note AS old1, lockstep_t.\"select\" AS old2, lockstep_t.note AS new1, lockstep_t.\"select\" AS new2 FROM \"Sales Data\".\"Order\" AS lockstep_t WITH NO DATA"),
            "{create:?}"
        );
        assert!(p.steps[0].undo.is_empty(), "a rollback keeps the undo data");
        let Action::Batches(b) = &p.steps[1].actions[0] else {
            panic!()
        };
        assert!(b.next_sql.contains("FOR UPDATE"));
        assert!(b
            .next_sql
            .contains("INSERT INTO lockstep.\"undo_run 1\" (key1, old1, old2, new1, new2)"));
        assert!(b.next_sql.contains("id > $2::text::bigint"));
        let Action::Restore(restore) = &p.steps[1].undo[0] else {
            panic!()
        };
        // Per column: each restored unless it changed since.
        assert!(
            restore.batch_sql.contains("note = CASE WHEN lockstep_t.note::text IS NOT DISTINCT FROM lockstep_b.new1::text THEN lockstep_b.old1 ELSE lockstep_t.note END"),
            "{}",
            restore.batch_sql
        );
        assert!(restore.batch_sql.contains("\"select\" = CASE WHEN lockstep_t.\"select\"::text IS NOT DISTINCT FROM lockstep_b.new2::text THEN lockstep_b.old2"));
        assert!(restore
            .batch_sql
            .contains("WHERE lockstep_t.id = lockstep_b.key1 AND ("));
        assert!(restore
            .batch_sql
            .contains("ORDER BY lockstep_id DESC LIMIT {limit}"));
        assert_eq!(restore.columns, ["note", "select"]);
        assert!(p.finalize.is_empty());
        assert_eq!(
            p.discard,
            [Action::Tx(vec![
                "DROP TABLE IF EXISTS lockstep.\"undo_run 1\"".into(),
                "DROP TABLE IF EXISTS lockstep.\"undo_run 1_rollback\"".into()
            ])],
            "finalize drops the undo data"
        );
        // A set that cannot be read, or that writes a column the table lacks or its key.
        for (set, why) in [
            ("note = ", "could not be read as assignments"),
            ("note = 1 WHERE true", "more than assignments"),
            (
                "nope = 1",
                "writes nope, which \"Sales Data\".\"Order\" does not have",
            ),
            ("id = id + 1", "a column of the primary key"),
        ] {
            let (_, r) = backfill(set);
            assert!(r.iter().any(|r| r.contains(why)), "{set}: {r:?}");
        }
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

    /// column-type rebuilds the table with the column of the new type, in its place; the
    /// copy, the replay, the verification and the reverse sync convert it.
    #[test]
    fn column_type_rebuilds_the_table_in_column_order() {
        let mut f = example();
        f.columns[0].type_sql = "integer".into();
        f.sequences.push(crate::playbook::facts::OwnedSequence {
            column: "id".into(),
            sequence: "\"Sales Data\".\"Order_id_seq\"".into(),
            identity: false,
        });
        let pb = op(&format!(
            "kind = \"column-type\"\n{TABLE}[column_type]\ncolumn = \"id\"\ntype = \"bigint\"\n"
        ));
        let Spec::ColumnType(ct) = &pb.kind else {
            panic!()
        };
        assert!(ct.refusals(&f, &[]).is_empty());
        let plan = ct.plan(
            f.clone(),
            crate::playbook::shadow::Names::new(&f, "r", Vec::new()),
        );
        let shadow = plan.shadow_sql().join("\n");
        assert!(
            shadow.contains(
                "CREATE TABLE \"Sales Data\".\"Order_lockstep_new\" (LIKE \"Sales Data\".\"Order\""
            ),
            "{shadow}"
        );
        assert!(!shadow.contains("PARTITION BY"), "{shadow}");
        assert!(shadow.contains("ALTER TABLE \"Sales Data\".\"Order_lockstep_new\" ALTER COLUMN id TYPE bigint USING id::bigint"), "{shadow}");
        assert!(plan
            .batch_sql(true)
            .contains("SELECT (id::bigint)::bigint, \"select\", note FROM"));
        let verify = plan.verify_sql(false, true);
        assert!(
            verify.contains("ROW((id::bigint)::bigint, \"select\", note)"),
            "{verify}"
        );
        assert!(verify.contains("l.id::bigint = t.id"), "{verify}");
        assert!(verify.contains("$1::text::bigint"), "{verify}");
        let swap = plan.swap_sql().join("\n");
        assert!(
            swap.contains("ALTER SEQUENCE \"Sales Data\".\"Order_id_seq\" AS bigint"),
            "{swap}"
        );
        // With `reverse = "deferred"` the reverse trigger logs keys in the new type; a
        // rollback converts them.
        let mut plan = plan;
        plan.reverse = crate::playbook::settings::ReverseSync::Deferred;
        let prepare = plan.swap_prepare_sql().join("\n");
        assert!(
            prepare.contains("CREATE TABLE IF NOT EXISTS lockstep.rlog_r (id bigint NOT NULL)"),
            "{prepare}"
        );
        assert!(
            plan.reverse_function_sql()
                .unwrap_or_default()
                .contains("INSERT INTO lockstep.rlog_r (id) VALUES (NEW.id)"),
            "{:?}",
            plan.reverse_function_sql()
        );
        plan.reverse = crate::playbook::settings::ReverseSync::Sync;
        let rev = plan.reverse_function_sql().unwrap_or_default();
        assert!(
            rev.contains(
                "SELECT (id::integer)::integer, \"select\", note FROM (SELECT NEW.*) AS \"Order\""
            ),
            "{rev}"
        );
        assert!(rev.contains("EXCEPTION WHEN others THEN"), "{rev}");
        assert!(
            rev.contains("WHERE id OPERATOR(pg_catalog.=) (OLD.id)::integer"),
            "{rev}"
        );
        let back = plan.swap_back_sql().join("\n");
        assert!(
            back.contains("ALTER SEQUENCE \"Sales Data\".\"Order_id_seq\" AS integer"),
            "{back}"
        );
        assert!(plan.definition_after().contains("    id bigint NOT NULL"));
        assert!(plan.definition_before().contains("    id integer NOT NULL"));
        // A key column converted by an expression, or to a type that sorts otherwise: refused.
        let bad = op(&format!(
            "kind = \"column-type\"\n{TABLE}[column_type]\ncolumn = \"id\"\ntype = \"text\"\n"
        ));
        let Spec::ColumnType(bad) = &bad.kind else {
            panic!()
        };
        assert!(
            bad.refusals(&f, &["v".into()]).len() == 2,
            "{:?}",
            bad.refusals(&f, &["v".into()])
        );
    }
}
