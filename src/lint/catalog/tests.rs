use super::*;

fn replay(cat: &mut Catalog, sql: &str) {
    for st in crate::lint::prepare(sql).statements(sql) {
        cat.apply(&st);
    }
}

/// Everything the catalog answers, in a fixed order.
fn snapshot(cat: &Catalog) -> String {
    let mut tables: Vec<_> = cat.tables.iter().collect();
    tables.sort_by(|a, b| a.0.cmp(b.0));
    let mut indexes: Vec<_> = cat.index_tables.iter().collect();
    indexes.sort();
    let mut views: Vec<_> = cat.matviews.iter().collect();
    views.sort_by(|a, b| a.0.cmp(b.0));
    let refs: Vec<_> = tables
        .iter()
        .map(|(k, _)| {
            let r: Vec<String> = cat
                .referencing(&ObjName::new(k.as_str()))
                .iter()
                .map(|(t, fk)| format!("{t}:{:?}", fk.name))
                .collect();
            (k, r)
        })
        .collect();
    format!("{tables:?}\n{indexes:?}\n{views:?}\n{refs:?}")
}

/// `referencing` and `table_of_index` as a scan of every table would answer them.
fn check_lookups(cat: &Catalog, names: &[&str]) {
    for n in names {
        let name = ObjName::new(*n);
        let mut scan: Vec<(ObjName, &ForeignKey)> = Vec::new();
        for (k, t) in &cat.tables {
            for fk in &t.foreign_keys {
                if fk.references.name == *n {
                    scan.push((
                        t.name.clone().unwrap_or_else(|| ObjName::new(k.clone())),
                        fk,
                    ));
                }
            }
        }
        scan.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(cat.referencing(&name), scan, "referencing {n}");
    }
    for (i, key) in &cat.index_tables {
        assert!(
            cat.tables.contains_key(key),
            "index {i} points at a dropped table"
        );
    }
    for (i, key) in &cat.index_tables {
        assert!(
            cat.indexes_of.get(key).is_some_and(|s| s.contains(i)),
            "index {i} of {key} is missing from the reverse map"
        );
    }
}

const SETUP: &str = "CREATE TABLE b (id int PRIMARY KEY);\n\
    CREATE TABLE a (id int, b_id int REFERENCES b, CONSTRAINT a_pk PRIMARY KEY (id));\n\
    CREATE INDEX a_b_idx ON a (b_id);\n\
    CREATE MATERIALIZED VIEW v AS SELECT * FROM a;\n";

#[test]
fn rollback_restores_every_change_since_the_savepoint() {
    let mut cat = Catalog::default();
    replay(&mut cat, SETUP);
    let before = snapshot(&cat);
    let sp = cat.savepoint();
    replay(
        &mut cat,
        "DROP TABLE a;\nALTER TABLE b RENAME TO c;\nCREATE INDEX c_idx ON c (id);\n\
         ALTER TABLE c ADD COLUMN x int;\nCREATE TABLE d (c_id int REFERENCES c);\n\
         CREATE MATERIALIZED VIEW v AS SELECT * FROM d;\nDROP INDEX c_idx;\n",
    );
    assert_ne!(snapshot(&cat), before);
    assert!(cat.table(&ObjName::new("a")).is_none());
    cat.rollback_to(sp);
    assert_eq!(snapshot(&cat), before);
    assert_eq!(
        cat.table_of_index(&ObjName::new("a_b_idx")),
        Some(ObjName::new("a"))
    );
    assert!(cat.journal.is_empty() && cat.open == 0);
}

#[test]
fn nested_savepoints_close_newest_first() {
    let mut cat = Catalog::default();
    replay(&mut cat, SETUP);
    let outer = cat.savepoint();
    replay(&mut cat, "ALTER TABLE a ADD COLUMN y int;\n");
    let after_outer = snapshot(&cat);
    let inner = cat.savepoint();
    replay(&mut cat, "DROP TABLE b;\n");
    cat.rollback_to(inner);
    assert_eq!(snapshot(&cat), after_outer);
    assert!(
        !cat.journal.is_empty(),
        "the outer savepoint still journals"
    );
    cat.release(outer);
    assert_eq!(snapshot(&cat), after_outer, "released changes stay");
    assert!(cat.journal.is_empty());
}

#[test]
fn dropping_or_renaming_a_table_carries_its_indexes_and_foreign_keys() {
    let mut cat = Catalog::default();
    replay(&mut cat, SETUP);
    replay(&mut cat, "ALTER TABLE a RENAME TO a2;\n");
    assert_eq!(
        cat.table_of_index(&ObjName::new("a_b_idx")),
        Some(ObjName::new("a2"))
    );
    let refs: Vec<String> = cat
        .referencing(&ObjName::new("b"))
        .iter()
        .map(|(t, _)| t.to_string())
        .collect();
    assert_eq!(refs, ["a2"]);
    replay(&mut cat, "DROP TABLE a2;\n");
    assert_eq!(cat.table_of_index(&ObjName::new("a_b_idx")), None);
    assert!(cat.referencing(&ObjName::new("b")).is_empty());
    assert!(!cat.index_tables.values().any(|t| t == "a2"));
    check_lookups(&cat, &["a", "a2", "b"]);
}

/// Random histories over a few names: the indexed lookups agree with a full scan, and a
/// rollback gives back exactly the catalog as it was at its savepoint.
#[test]
fn journal_and_reverse_maps_agree_with_a_full_scan() {
    let names = ["t0", "t1", "t2", "t3"];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut cat = Catalog::default();
    let mut open: Vec<(Savepoint, String)> = Vec::new();
    for _ in 0..3000 {
        let (a, b, i) = (names[next(4)], names[next(4)], next(6));
        let sql = match next(11) {
            0 => format!("CREATE TABLE {a} (id int PRIMARY KEY, r int REFERENCES {b});"),
            1 => format!("CREATE INDEX i{i} ON {a} (id);"),
            2 => format!("DROP TABLE {a};"),
            3 => format!("ALTER TABLE {a} RENAME TO {b};"),
            4 => format!("DROP INDEX i{i};"),
            5 => {
                format!("ALTER TABLE {a} ADD CONSTRAINT f{i} FOREIGN KEY (id) REFERENCES {b};")
            }
            6 => format!("ALTER TABLE {a} DROP CONSTRAINT f{i};"),
            7 => format!("CREATE MATERIALIZED VIEW v{i} AS SELECT * FROM {a};"),
            8 if open.len() < 3 => {
                open.push((cat.savepoint(), snapshot(&cat)));
                continue;
            }
            9 => {
                if let Some((sp, snap)) = open.pop() {
                    cat.rollback_to(sp);
                    assert_eq!(snapshot(&cat), snap);
                }
                continue;
            }
            _ => {
                if let Some((sp, _)) = open.pop() {
                    cat.release(sp);
                }
                continue;
            }
        };
        replay(&mut cat, &sql);
        check_lookups(&cat, &names);
    }
}
