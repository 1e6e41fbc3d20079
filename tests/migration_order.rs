//! Files are linted in the order their migration tool applies them, so schema replay sees
//! the schema the database will have: diesel by version (dashes removed), Prisma by folder
//! name, numbered files by parsed version, Flyway by version with repeatables last.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::Path;

use lockstep::files::{discover, exclude_set, lint_all, Input};
use lockstep::framework::Framework;
use lockstep::lint::LintOptions;

#[path = "common/corpus.rs"]
mod common_corpus;
use common_corpus::corpus;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn inputs(dir: &Path, framework: Option<Framework>) -> Vec<Input> {
    let (inputs, errors) = discover(
        &[dir.to_path_buf()],
        dir,
        dir,
        &exclude_set(&[]).expect("globs"),
        framework,
    );
    assert!(errors.is_empty(), "{errors:?}");
    inputs
}

fn relative(dir: &Path, inputs: &[Input]) -> Vec<String> {
    inputs
        .iter()
        .map(|i| {
            Path::new(i.display())
                .strip_prefix(dir)
                .unwrap_or(Path::new(i.display()))
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

/// The rules that fired, per file, in lint order.
fn rules(dir: &Path, framework: Option<Framework>) -> Vec<(String, Vec<&'static str>)> {
    let inputs = inputs(dir, framework);
    let names = relative(dir, &inputs);
    lint_all(&inputs, &LintOptions::default())
        .into_iter()
        .zip(names)
        .map(|(r, n)| (n, r.diagnostics.iter().map(|d| d.rule).collect()))
        .collect()
}

/// A diesel history mixing `20170804200817_x` and `2017-09-23-…_y` folders (as crates.io's
/// does): diesel applies them by version with the dashes removed, so the table and its
/// unique index exist before the foreign key is added.
#[test]
fn diesel_mixed_folder_names_run_by_version() {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "migrations/20170804200817_add_email_table/up.sql",
        "CREATE TABLE users (id int PRIMARY KEY);\nCREATE TABLE emails (id serial PRIMARY KEY, user_id int NOT NULL UNIQUE);\n",
    );
    write(
        d.path(),
        "migrations/20170804200817_add_email_table/down.sql",
        "DROP TABLE emails;\n",
    );
    write(
        d.path(),
        "migrations/2017-09-23-191545_add_users_to_emails_foreign_key/up.sql",
        "ALTER TABLE emails ADD CONSTRAINT fk_emails_user_id FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n",
    );
    let got = rules(d.path(), None);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "migrations/20170804200817_add_email_table/up.sql",
            "migrations/20170804200817_add_email_table/down.sql",
            "migrations/2017-09-23-191545_add_users_to_emails_foreign_key/up.sql",
        ]
    );
    assert!(
        !got[2].1.contains(&"foreign-key-without-index"),
        "the UNIQUE on user_id is an index: {got:?}"
    );
    // `--framework none`: the natural order of the paths, dashed folders first.
    let natural = rules(d.path(), Some(Framework::Plain));
    assert!(natural[0].0.starts_with("migrations/2017-09-23"));
    assert!(natural[0].1.contains(&"foreign-key-without-index"));
}

/// A Prisma history with an 8-digit folder name: Prisma compares names, not numbers.
#[test]
fn prisma_folders_run_by_name() {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "prisma/migrations/migration_lock.toml",
        "provider = \"postgresql\"\n",
    );
    write(
        d.path(),
        "prisma/migrations/20230518191501_init/migration.sql",
        "CREATE TABLE \"Chart\" (\"id\" TEXT NOT NULL, \"type\" TEXT, CONSTRAINT \"Chart_pkey\" PRIMARY KEY (\"id\"));\n\
         CREATE TABLE \"ChartType\" (\"id\" TEXT NOT NULL, CONSTRAINT \"ChartType_pkey\" PRIMARY KEY (\"id\"));\n\
         CREATE INDEX \"Chart_type_idx\" ON \"Chart\"(\"type\");\n",
    );
    write(
        d.path(),
        "prisma/migrations/20250625_add_pivot_table_charttype/migration.sql",
        "ALTER TABLE \"Chart\" ADD CONSTRAINT \"Chart_type_fkey\" FOREIGN KEY (\"type\") REFERENCES \"ChartType\"(\"id\") NOT VALID;\n",
    );
    write(
        d.path(),
        "prisma/migrations/20240101000000_later/migration.sql",
        "SELECT 1;\n",
    );
    let got = rules(d.path(), None);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "prisma/migrations/20230518191501_init/migration.sql",
            "prisma/migrations/20240101000000_later/migration.sql",
            "prisma/migrations/20250625_add_pivot_table_charttype/migration.sql",
        ]
    );
    assert!(!got[2].1.contains(&"foreign-key-without-index"), "{got:?}");
}

#[test]
fn golang_migrate_runs_by_parsed_version() {
    let d = tempfile::tempdir().expect("tmp");
    for name in [
        "20250625_b.up.sql",
        "20250625_b.down.sql",
        "20230518191501_c.up.sql",
        "9_a.up.sql",
    ] {
        write(d.path(), &format!("db/{name}"), "SELECT 1;\n");
    }
    assert_eq!(
        relative(d.path(), &inputs(d.path(), None)),
        [
            "db/9_a.up.sql",
            "db/20250625_b.up.sql",
            "db/20250625_b.down.sql",
            "db/20230518191501_c.up.sql",
        ]
    );
}

#[test]
fn flyway_repeatables_run_last() {
    let d = tempfile::tempdir().expect("tmp");
    for name in ["R__views.sql", "V1.1__b.sql", "V1__a.sql", "V10__c.sql"] {
        write(d.path(), &format!("sql/{name}"), "SELECT 1;\n");
    }
    assert_eq!(
        relative(d.path(), &inputs(d.path(), None)),
        [
            "sql/V1__a.sql",
            "sql/V1.1__b.sql",
            "sql/V10__c.sql",
            "sql/R__views.sql"
        ]
    );
}

/// The apply order of three real diesel histories, recorded by running them with diesel
/// (`_trace/*_order*.txt`), is the order lockstep lints them in.
#[test]
fn real_diesel_histories_are_linted_in_diesels_order() {
    let Some(corpus) = corpus() else { return };
    for (project, migrations, order) in [
        ("rust-lang__crates.io", "migrations", "cratesio_order.txt"),
        ("LemmyNet__lemmy", "migrations", "lemmy_order_pg15.txt"),
        (
            "dani-garcia__vaultwarden",
            "migrations/postgresql",
            "vw_order.txt",
        ),
    ] {
        let root = corpus.join(project);
        let want: Vec<String> = std::fs::read_to_string(corpus.join("_trace").join(order))
            .expect("order file")
            .lines()
            .map(str::to_string)
            .collect();
        let got: Vec<String> = relative(&root, &inputs(&root.join(migrations), None))
            .into_iter()
            .filter(|p| p.ends_with("/up.sql"))
            .collect();
        // The lemmy list stops before a migration that needs PostgreSQL 16.
        assert_eq!(got[..want.len()], want[..], "{project}");
    }
}
