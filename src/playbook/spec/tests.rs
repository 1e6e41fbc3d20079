use super::*;
use crate::playbook::kinds::partition::{ListPartition, Partition, Strategy};
use crate::playbook::kinds::{KindName, Spec};

fn partition(p: &Playbook) -> &Partition {
    match &p.kind {
        Spec::Partition(x) => x,
        other => panic!("not a partition playbook: {other:?}"),
    }
}

const GOOD: &str = r#"
kind = "partition"
table = 'app."Odd Events"'
[partition]
column = "created_at"
strategy = "range"
interval = "1 month"
[backfill]
batch_size = 1000
max_replica_lag = "10s"
[swap]
lock_timeout = "150ms"
"#;

#[test]
fn parses_a_playbook_with_defaults() {
    let p = parse(GOOD, "p.toml").unwrap();
    assert_eq!(p.common.table.schema.as_deref(), Some("app"));
    assert_eq!(p.common.table.name, "Odd Events");
    assert_eq!(
        partition(&p).strategy,
        Strategy::RangeInterval("1 month".into())
    );
    assert_eq!(p.common.backfill.batch_size, 1000);
    assert_eq!(p.common.backfill.max_replica_lag_ms, Some(10_000));
    assert_eq!(p.common.swap.lock_timeout_ms, 150);
    assert_eq!(p.common.swap.attempts, 30);
    assert_eq!(partition(&p).premake, 3);
    assert_eq!(p.common.backfill.duty_cycle, DEFAULT_DUTY_CYCLE);
    let flat_out = parse(
        &GOOD.replace("batch_size = 1000", "batch_size = 1000\nduty_cycle = 1"),
        "p.toml",
    )
    .unwrap();
    assert_eq!(flat_out.common.backfill.duty_cycle, 1.0);
    assert_eq!(p.common.backfill.workers, 2);
    let one = parse(
        &GOOD.replace("batch_size = 1000", "batch_size = 1000\nworkers = 1"),
        "p.toml",
    )
    .unwrap();
    assert_eq!(one.common.backfill.workers, 1);
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            GOOD.replace("batch_size = 1000", "batch_sise = 1000"),
            "batch_sise",
        ),
        (GOOD.replace("\"150ms\"", "\"soon\""), "`swap.lock_timeout`"),
        (
            GOOD.replace("strategy = \"range\"", "strategy = \"tree\""),
            "`partition.strategy`",
        ),
        (
            GOOD.replace("interval = \"1 month\"", "interval = -3"),
            "`partition.interval`",
        ),
        (
            GOOD.replace("kind = \"partition\"", "kind = \"magic\""),
            "`kind`",
        ),
        (GOOD.replace("'app.\"Odd Events\"'", "\"a b\""), "`table`"),
        (
            GOOD.replace("batch_size = 1000", "batch_size = 0"),
            "`backfill.batch_size`",
        ),
        (GOOD.replace("\"150ms\"", "\"0ms\""), "`swap.lock_timeout`"),
        (
            GOOD.replace("batch_size = 1000", "duty_cycle = 0"),
            "`backfill.duty_cycle`",
        ),
        (
            GOOD.replace("batch_size = 1000", "workers = 0"),
            "`backfill.workers`",
        ),
        (
            GOOD.replace("batch_size = 1000", "workers = 17"),
            "`backfill.workers`",
        ),
        (
            GOOD.replace("batch_size = 1000", "duty_cycle = 1.5"),
            "`backfill.duty_cycle`",
        ),
        (
            format!("{GOOD}[dependents]\nviews = \"drop\"\n"),
            "`dependents.views`",
        ),
        (
            format!("{GOOD}[dependents]\ntriggers = \"x\"\n"),
            "triggers",
        ),
    ];
    for (text, key) in cases {
        let e = parse(&text, "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("p.toml: "), "{e}");
        assert!(e.contains(key), "{key} not in: {e}");
    }
}

#[test]
fn list_and_hash() {
    let list = r#"
kind = "partition"
table = "t"
[partition]
column = "region"
strategy = "list"
default_partition = true
[[partition.lists]]
name = "eu"
values = ["de", "f'r"]
"#;
    let p = parse(list, "p").unwrap();
    assert_eq!(
        partition(&p).strategy,
        Strategy::List(vec![ListPartition {
            name: "eu".into(),
            values: vec!["'de'".into(), "'f''r'".into()]
        }])
    );
    let hash = "kind = \"partition\"\ntable = \"t\"\n[partition]\ncolumn = \"id\"\nstrategy = \"hash\"\nmodulus = 4\n";
    assert_eq!(
        partition(&parse(hash, "p").unwrap()).strategy,
        Strategy::Hash(4)
    );
    let bad = hash.replace("modulus = 4", "modulus = 1");
    assert!(parse(&bad, "p")
        .unwrap_err()
        .to_string()
        .contains("partition.modulus"));
}

#[test]
fn table_names() {
    assert_eq!(parse_table_name("Events").unwrap().name, "events");
    let q = parse_table_name("\"Sch\".\"a \"\"b\"\"\"").unwrap();
    assert_eq!(q.schema.as_deref(), Some("Sch"));
    assert_eq!(q.name, "a \"b\"");
    assert!(parse_table_name("a.b.c").is_none());
    assert!(parse_table_name("").is_none());
}

#[test]
fn example_playbooks_parse_and_cover_every_kind() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    let mut kinds = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            kinds.insert(load(&p).unwrap_or_else(|e| panic!("{e}")).kind_name());
        }
    }
    for k in KindName::all() {
        if !k.name().starts_with("test-") {
            assert!(kinds.contains(&k), "no example playbook of kind {k}");
        }
    }
}

#[test]
fn in_place_kinds_parse() {
    let p = parse(
            "kind = \"column-type\"\ntable = 'app.\"Orders\"'\n[column_type]\ncolumn = \"Id\"\ntype = \"bigint\"\n[swap]\nlock_timeout = \"50ms\"\n",
            "p",
        )
        .unwrap();
    assert_eq!(p.common.table.name, "Orders");
    assert_eq!(p.common.swap.lock_timeout_ms, 50);
    let Spec::ColumnType(c) = &p.kind else {
        panic!("{:?}", p.kind)
    };
    assert_eq!((c.column.as_str(), c.new_type.as_str()), ("Id", "bigint"));
    assert_eq!((&c.using, &c.reverse_using), (&None, &None));
    let i = parse(
        "kind = \"index\"\ntable = \"t\"\n[index]\ncolumns = [\"a\", \"B c\"]\nwhere = \"a > 0\"\n",
        "p",
    )
    .unwrap();
    let Spec::Index(i) = &i.kind else { panic!() };
    assert_eq!(i.tail, " USING btree (a, \"B c\") WHERE a > 0");
    assert_eq!((&i.name, i.unique), (&None, false));
    let b = parse(
        "kind = \"backfill\"\ntable = \"t\"\n[update]\nset = \"x = 1\"\n",
        "p",
    )
    .unwrap();
    assert!(matches!(&b.kind, Spec::Backfill(b) if b.keep_undo));
}

#[test]
fn in_place_errors_name_the_key() {
    let cases = [
            ("kind = \"not-null\"\ntable = \"t\"\n", "`not_null`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \" \"\n", "`check.expression`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpresion = \"a\"\n", "expresion"),
            ("kind = \"unique\"\ntable = \"t\"\n[unique]\ncolumns = []\n", "`unique.columns`"),
            ("kind = \"index\"\ntable = \"t\"\n[index]\n", "`index`"),
            ("kind = \"index\"\ntable = \"t\"\n[index]\ncolumns = [\"a\"]\nmethod = \"b tree\"\n", "`index.method`"),
            ("kind = \"foreign-key\"\ntable = \"t\"\n[foreign_key]\ncolumns = [\"a\"]\nreferences = \"u\"\non_delete = \"explode\"\n", "`foreign_key.on_delete`"),
            ("kind = \"foreign-key\"\ntable = \"t\"\n[foreign_key]\ncolumns = [\"a\"]\nreferences = \"u\"\nreferenced_columns = [\"x\", \"y\"]\n", "`foreign_key.referenced_columns`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \"a\"\n[not_null]\ncolumn = \"a\"\n", "`not_null`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \"a\"\n[dependents]\nviews = \"refuse\"\n", "`dependents`"),
            ("kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \"a\"\n[backfill]\nworkers = 2\n", "`backfill.workers`"),
            ("kind = \"reindex\"\ntable = \"t\"\n[reindex]\nname = \"i\"\n[swap]\nattempts = 0\n", "`swap.attempts`"),
            ("kind = \"upgrade\"\ntable = \"t\"\n", "column-type"),
        ];
    for (text, key) in cases {
        let e = parse(text, "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("p.toml: "), "{e}");
        assert!(e.contains(key), "{key} not in: {e}");
    }
}

#[test]
fn a_misspelt_nested_key_gets_a_suggestion() {
    let e = parse(
        "kind = \"not-null\"\ntable = \"t\"\n[not_null]\ncolum = \"a\"\n",
        "p.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("did you mean `column`?"), "{e}");
    let e = parse(GOOD.replace("batch_size", "batch_sise").as_str(), "p.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("did you mean `batch_size`?"), "{e}");
    let e = parse("kind = \"colum-type\"\ntable = \"t\"\n", "p.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("did you mean `column-type`?"), "{e}");
}
