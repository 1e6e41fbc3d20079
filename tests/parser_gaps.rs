//! Valid PostgreSQL that the SQL parser rejects, seen in real migration histories: each
//! statement is understood (never an `unparsed-statement` note), gets its lock prediction
//! and replays into the schema. The lock predictions of the statements PostgreSQL 15 runs
//! are also checked against a real server in `tests/ground_truth.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use lockstep::lint::catalog::Catalog;
use lockstep::lint::{check, lint_source, prepare, LintOptions};
use lockstep::sql::ir::{ActionKind, Constraint, Generated, LockMode, ObjName, StmtKind};

const SCHEMA: &str = "CREATE TABLE p (id int PRIMARY KEY, x int, y int, UNIQUE (x, y));\n\
    CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2) NOT NULL, p_id int,\n\
      CONSTRAINT orders_p_fk FOREIGN KEY (p_id) REFERENCES p (id), CHECK (total >= 0));\n\
    CREATE INDEX orders_total_idx ON orders (total);\n\
    CREATE TABLE parent (id int, at date) PARTITION BY RANGE (at);\n";

/// The catalog after `SCHEMA`.
fn schema() -> Catalog {
    let opts = LintOptions::default();
    check(SCHEMA, prepare(SCHEMA), &opts, Catalog::default()).1
}

/// Lints `src` after `SCHEMA`: the statements' kinds, their lock reports and the catalog after.
fn lint(
    src: &str,
    opts: &LintOptions,
) -> (
    Vec<StmtKind>,
    lockstep::lint::FileResult,
    lockstep::lint::catalog::Catalog,
) {
    let prepared = prepare(src);
    let kinds = prepared.statements(src).map(|s| s.kind).collect();
    let (result, catalog) = check(src, prepared, opts, schema());
    (kinds, result, catalog)
}

fn locks(r: &lockstep::lint::FileResult, i: usize) -> Vec<(String, LockMode)> {
    r.locks[i]
        .report
        .locks
        .iter()
        .map(|l| (l.table.to_string(), l.mode))
        .collect()
}

fn no_unparsed(r: &lockstep::lint::FileResult) {
    let unparsed: Vec<&String> = r
        .diagnostics
        .iter()
        .filter(|d| d.rule == "unparsed-statement")
        .map(|d| &d.message)
        .collect();
    assert!(unparsed.is_empty(), "{unparsed:?}");
}

#[test]
fn alter_constraint_deferrable_takes_access_exclusive() {
    let src = "ALTER TABLE orders ALTER CONSTRAINT orders_p_fk DEFERRABLE INITIALLY DEFERRED;\n\
               ALTER TABLE orders ALTER CONSTRAINT orders_p_fk NOT DEFERRABLE;\n";
    let (kinds, r, _) = lint(src, &LintOptions::default());
    no_unparsed(&r);
    for (i, k) in kinds.iter().enumerate() {
        let StmtKind::AlterTable { actions, .. } = k else {
            panic!("{k:?}")
        };
        assert_eq!(
            actions[0].kind,
            ActionKind::AlterConstraint {
                name: "orders_p_fk".into()
            }
        );
        assert_eq!(
            locks(&r, i),
            [("orders".to_string(), LockMode::AccessExclusive)]
        );
    }
    // The lock queues every query on the table: without a lock_timeout it is a finding.
    assert!(r
        .diagnostics
        .iter()
        .any(|d| d.rule == "missing-lock-timeout"));
}

#[test]
fn create_table_shapes_the_parser_rejects() {
    let src = "CREATE TABLE theap (a int) USING heap;\n\
               CREATE TABLE ttoast (a int) WITH (toast.autovacuum_enabled = false, fillfactor = 70);\n\
               CREATE TABLE tcomp (a text COMPRESSION lz4, b int NOT NULL);\n\
               CREATE TYPE my_type AS (a int, b text);\n\
               CREATE TABLE tof OF my_type (PRIMARY KEY (a));\n\
               CREATE TABLE tfk (a int, b int, FOREIGN KEY (a, b) REFERENCES p (x, y) ON DELETE SET NULL (b));\n\
               CREATE UNLOGGED TABLE IF NOT EXISTS tun (a int REFERENCES p ON DELETE SET DEFAULT NOT NULL) USING heap;\n";
    let (kinds, r, catalog) = lint(src, &LintOptions::default());
    no_unparsed(&r);
    let names: Vec<String> = kinds
        .iter()
        .filter_map(|k| match k {
            StmtKind::CreateTable { name, .. } => Some(name.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["theap", "ttoast", "tcomp", "tof", "tfk", "tun"]);
    // Columns and constraints replay into the schema.
    let tcomp = catalog.table(&ObjName::new("tcomp")).expect("tcomp");
    assert_eq!(tcomp.column("a").expect("a").data_type, "text");
    assert!(tcomp.column("b").expect("b").not_null);
    let tof = catalog.table(&ObjName::new("tof")).expect("tof");
    assert!(tof.indexes.iter().any(|i| i.unique && i.columns == ["a"]));
    let tfk = catalog.table(&ObjName::new("tfk")).expect("tfk");
    assert_eq!(tfk.foreign_keys[0].columns, ["a", "b"]);
    assert_eq!(tfk.foreign_keys[0].ref_columns, ["x", "y"]);
    // A foreign key locks the referenced table.
    assert_eq!(
        locks(&r, 5),
        [("p".to_string(), LockMode::ShareRowExclusive)]
    );
    // `ON DELETE SET DEFAULT` is no column default, and the NOT NULL after it counts.
    let StmtKind::CreateTable { columns, .. } = &kinds[6] else {
        panic!("{:?}", kinds[6])
    };
    assert_eq!(columns[0].default, None);
    assert!(columns[0].not_null);
    assert!(columns[0].references.is_some());
}

#[test]
fn like_including_copies_columns_indexes_and_checks() {
    let src = "CREATE TABLE copy_all (LIKE orders INCLUDING ALL, extra int);\n\
               CREATE TABLE copy_cols (LIKE orders INCLUDING DEFAULTS EXCLUDING INDEXES);\n\
               CREATE TABLE copy_plain (LIKE orders);\n";
    let (kinds, r, catalog) = lint(src, &LintOptions::default());
    no_unparsed(&r);
    let StmtKind::CreateTable { like, .. } = &kinds[0] else {
        panic!("{:?}", kinds[0])
    };
    assert_eq!(like[0].table, ObjName::new("orders"));
    assert!(like[0].indexes && like[0].constraints);
    let all = catalog.table(&ObjName::new("copy_all")).expect("copy_all");
    let cols: Vec<&str> = all.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(cols, ["id", "total", "p_id", "extra"]);
    assert_eq!(
        all.column("total").expect("total").data_type,
        "numeric(10,2)"
    );
    assert!(all.column("total").expect("total").not_null);
    assert!(all.has_index_leading_with(&["total".to_string()]));
    assert_eq!(all.checks.len(), 1);
    assert!(
        all.foreign_keys.is_empty(),
        "LIKE never copies foreign keys"
    );
    for name in ["copy_cols", "copy_plain"] {
        let t = catalog.table(&ObjName::new(name)).expect(name);
        assert_eq!(t.columns.len(), 3, "{name}");
        assert!(t.indexes.is_empty() && t.checks.is_empty(), "{name}");
    }
    // The copied column type is known: widening it is no rewrite.
    let later = "ALTER TABLE copy_all ALTER COLUMN total TYPE numeric(12,2);\n";
    let (r2, _) = check(later, prepare(later), &LintOptions::default(), catalog);
    assert!(
        r2.locks[0].report.rewrites.is_empty(),
        "{:?}",
        r2.locks[0].report
    );
}

#[test]
fn partitions_with_options_lock_the_parent() {
    let src = "CREATE TABLE part2 PARTITION OF parent (id PRIMARY KEY) FOR VALUES FROM ('2020-01-01') TO ('2021-01-01') USING heap;\n\
               CREATE TABLE part3 PARTITION OF parent (id WITH OPTIONS NOT NULL) DEFAULT WITH (toast.autovacuum_enabled = false);\n";
    let (kinds, r, _) = lint(src, &LintOptions::default());
    no_unparsed(&r);
    for (i, k) in kinds.iter().enumerate() {
        let StmtKind::CreateTable { partition_of, .. } = k else {
            panic!("{k:?}")
        };
        assert_eq!(partition_of.as_ref(), Some(&ObjName::new("parent")));
        assert_eq!(
            locks(&r, i),
            [("parent".to_string(), LockMode::AccessExclusive)]
        );
    }
}

#[test]
fn postgresql_18_not_null_constraints_and_virtual_columns() {
    let src = "CREATE TABLE t18 (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL, CONSTRAINT a_nn NOT NULL a);\n";
    let opts = LintOptions {
        pg_version: 18,
        ..LintOptions::default()
    };
    let (kinds, r, catalog) = lint(src, &opts);
    no_unparsed(&r);
    let StmtKind::CreateTable {
        columns,
        constraints,
        ..
    } = &kinds[0]
    else {
        panic!("{:?}", kinds[0])
    };
    assert_eq!(columns[1].generated, Some(Generated::Virtual));
    assert_eq!(
        constraints[0],
        (
            Some("a_nn".to_string()),
            Constraint::NotNull { column: "a".into() }
        )
    );
    let t = catalog.table(&ObjName::new("t18")).expect("t18");
    assert!(t.column("a").expect("a").not_null);
    assert!(!t.column("b").expect("b").not_null);
}

#[test]
fn alter_routine_is_understood() {
    let src = "ALTER ROUTINE my_func(int) RENAME TO my_func2;\nALTER ROUTINE my_func2(int) OWNER TO app;\n";
    let (kinds, r, _) = lint(src, &LintOptions::default());
    no_unparsed(&r);
    assert!(kinds
        .iter()
        .all(|k| matches!(k, StmtKind::Other { what } if what == "ALTER ROUTINE")));
    assert!(r.locks.iter().all(|s| s.report.locks.is_empty()));
}

#[test]
fn a_stray_semicolon_is_no_statement() {
    let src = ";\nSELECT 1;;\n  ;  \nCREATE TABLE x (id int);\n;";
    let r = lint_source(src, &LintOptions::default());
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    assert_eq!(r.statements, 2);
}
