//! The query check of `lockstep plan` and `lockstep run`: where `pg_stat_statements` is
//! available, the statements that ran against the table are read and those the change would
//! break are named, with their calls, why they break and what to write instead. Warnings
//! only: a run is never refused for them.
//!
//! - `definition.rs`: the table's definition before and after, from the plan;
//! - `statement.rs`: what a statement does with the table;
//! - `breaks.rs`: which of those uses the change breaks.
//!
//! Which role ran a statement, and so on which search_path, is unknown: a schema-qualified
//! name counts when it names the table, an unqualified one when it resolves to the table on
//! the search_path of the role lockstep connects as.

mod breaks;
mod definition;
mod statement;

use tokio_postgres::Client;

pub use breaks::{Change, Why};
pub use definition::{shape, Key, Shape};
pub use statement::{uses, Table, Use};

use super::facts::{self, Statements};
use super::plan::AnyPlan;
use crate::sql::ir::ObjName;

/// What the query check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryCheck {
    /// The statements could not be read (why).
    Unavailable(String),
    Checked(Report),
}

/// The statements read and those that break.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The table, quoted and qualified.
    pub table: String,
    /// Statements whose text mentions the table's name, and their calls.
    pub statements: usize,
    pub calls: i64,
    /// Of those, the ones that could not be read (not checked).
    pub not_parsed: usize,
    /// Entries whose text this role may not read, and entries without a text.
    pub hidden: i64,
    pub missing: i64,
    /// The search_path of the role lockstep connects as, when unqualified names did not
    /// count (the table is not what its bare name resolves to there).
    pub unqualified_skipped: Option<String>,
    /// The statements that break, and how (a statement may break in several ways).
    pub broken: usize,
    pub breaks: Vec<Broken>,
}

/// A statement the change breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Its text, shortened to one line.
    pub query: String,
    pub calls: i64,
    pub why: Why,
}

/// Characters of a statement's text the warnings show.
const SHOWN: usize = 120;

/// One line of at most [`SHOWN`] characters.
fn shorten(text: &str) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= SHOWN {
        return one;
    }
    let mut s: String = one.chars().take(SHOWN - 1).collect();
    s.push('…');
    s
}

/// Checks the statements of `stats` against `change`.
pub fn report(change: &Change, stats: &Statements) -> Report {
    let table = Table {
        schema: stats.schema.clone(),
        name: stats.name.clone(),
        unqualified: stats.unqualified,
    };
    let mut r = Report {
        table: change.table.clone(),
        statements: stats.texts.len(),
        calls: stats.texts.iter().map(|(_, c)| c).sum(),
        hidden: stats.hidden,
        missing: stats.missing,
        unqualified_skipped: (!stats.unqualified).then(|| stats.search_path.clone()),
        ..Report::default()
    };
    for (text, calls) in &stats.texts {
        match uses(text, &table) {
            Err(_) => r.not_parsed += 1,
            Ok(us) => {
                // The same break twice in one statement (two ONLYs) is one warning.
                let mut whys: Vec<Why> = Vec::new();
                for w in us.iter().flat_map(|u| change.breaks(u)) {
                    if !whys.contains(&w) {
                        whys.push(w);
                    }
                }
                r.broken += usize::from(!whys.is_empty());
                r.breaks.extend(whys.into_iter().map(|why| Broken {
                    query: shorten(text),
                    calls: *calls,
                    why,
                }));
            }
        }
    }
    r
}

impl QueryCheck {
    /// What the user should know besides the broken statements (each printed as a note).
    pub fn notes(&self) -> Vec<String> {
        let r = match self {
            QueryCheck::Unavailable(why) => return vec![format!("could not check queries: {why}")],
            QueryCheck::Checked(r) => r,
        };
        let mut out = vec![format!(
            "queries: {} statement{} in pg_stat_statements mention{} {} ({} calls); {}",
            r.statements,
            plural(r.statements),
            if r.statements == 1 { "s" } else { "" },
            r.table,
            r.calls,
            match r.broken {
                0 => "none of them breaks after the change".to_string(),
                1 => "1 of them breaks or changes meaning after the change (warning below)"
                    .to_string(),
                n =>
                    format!("{n} of them break or change meaning after the change (warnings below)"),
            }
        )];
        if r.not_parsed > 0 {
            out.push(format!(
                "queries: {} statement{} could not be parsed and {} not checked",
                r.not_parsed,
                plural(r.not_parsed),
                if r.not_parsed == 1 { "was" } else { "were" }
            ));
        }
        if r.hidden > 0 {
            out.push(format!(
                "queries: could not read the text of {} statement{} of other roles (`<insufficient privilege>`): grant this role pg_read_all_stats (`GRANT pg_read_all_stats TO …`) to check them too",
                r.hidden,
                plural(r.hidden as usize)
            ));
        }
        if r.missing > 0 {
            out.push(format!(
                "queries: {} statement{} of pg_stat_statements {} no text (its query-text file was discarded) and {} not checked",
                r.missing,
                plural(r.missing as usize),
                if r.missing == 1 { "has" } else { "have" },
                if r.missing == 1 { "was" } else { "were" }
            ));
        }
        if let Some(path) = &r.unqualified_skipped {
            out.push(format!(
                "queries: unqualified names were not taken as {}: on this role's search_path ({path}) the name means another relation or none",
                r.table
            ));
        }
        out
    }

    /// The statements the change breaks, one warning each.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            QueryCheck::Unavailable(_) => Vec::new(),
            QueryCheck::Checked(r) => r
                .breaks
                .iter()
                .map(|b| {
                    format!(
                        "`{}` ({} call{}) {}: {}; {}",
                        b.query,
                        b.calls,
                        plural(b.calls as usize),
                        if b.why.changes_meaning {
                            "changes meaning"
                        } else {
                            "breaks"
                        },
                        b.why.why,
                        b.why.instead
                    )
                })
                .collect(),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Checks the statements that ran against `table` (the playbook's) against the change `plan`
/// makes: `None` when the change breaks no statement lockstep knows of (no columns moved, no
/// unique key lost or changed, not partitioned), so nothing was read.
pub async fn check(client: &Client, table: &ObjName, plan: &AnyPlan) -> Option<QueryCheck> {
    let (before, after) = plan.definitions();
    let change = Change {
        before: shape(&before),
        after: shape(&after),
        table: plan.table(),
    };
    if !change.can_break() {
        return None;
    }
    Some(match facts::statements(client, table).await {
        Ok(stats) => QueryCheck::Checked(report(&change, &stats)),
        Err(e) => QueryCheck::Unavailable(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::facts::{example, Extra, IndexInfo};
    use crate::playbook::kinds::Spec;
    use crate::playbook::shadow::{Names, Partition};
    use crate::playbook::spec::parse;
    use crate::playbook::steps::{make, PlanCx};

    const TABLE: &str = "table = '\"Sales Data\".\"Order\"'\n";

    fn change(plan: &AnyPlan) -> Change {
        let (before, after) = plan.definitions();
        Change {
            before: shape(&before),
            after: shape(&after),
            table: plan.table(),
        }
    }

    /// The definitions the kinds' plans show read back as the table they describe.
    #[test]
    fn plans_of_the_kinds_are_read_back() {
        let f = example();
        let pb = parse(
            &format!("kind = \"partition\"\n{TABLE}[partition]\ncolumn = \"select\"\nstrategy = \"range\"\ninterval = \"1 month\"\n"),
            "p",
        )
        .unwrap();
        let Spec::Partition(part) = &pb.kind else {
            panic!()
        };
        let parts = vec![Partition {
            name: "Order_p202601".into(),
            bound: "FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')".into(),
        }];
        let plan = AnyPlan::from(part.plan(f.clone(), Names::new(&f, "r", parts)));
        let c = change(&plan);
        assert_eq!(c.before.columns, ["id", "select", "note"]);
        assert_eq!(c.after.columns, c.before.columns);
        assert_eq!(c.before.partition_key, None);
        assert_eq!(c.after.partition_key, Some(vec!["select".to_string()]));
        assert_eq!(c.before.keys[0].elements, ["id"]);
        assert_eq!(c.after.keys[0].elements, ["id", "select"]);
        assert!(c.after.keys[0].primary && c.after.keys[0].name == "Order_pkey");
        assert!(c.can_break());

        let pb = parse(
            &format!("kind = \"column-type\"\n{TABLE}[column_type]\ncolumn = \"id\"\ntype = \"numeric\"\n"),
            "p",
        )
        .unwrap();
        let Spec::ColumnType(ct) = &pb.kind else {
            panic!()
        };
        let plan = AnyPlan::from(ct.plan(f.clone(), Names::new(&f, "r", Vec::new())));
        let c = change(&plan);
        assert_eq!(c.after.columns, ["id", "select", "note"]);
        assert!(!c.can_break(), "{c:?}");

        // drop-index: of a unique index, which an upsert may rely on, and of another.
        let mut u = f.clone();
        u.indexes[0].unique = true;
        let pb = parse(
            &format!("kind = \"drop-index\"\n{TABLE}[drop_index]\nname = \"order_note\"\n"),
            "p",
        )
        .unwrap();
        let Spec::DropIndex(drop) = &pb.kind else {
            panic!()
        };
        for (facts, unique) in [(&u, true), (&f, false)] {
            let extra = Extra {
                server_version: 150_000,
                index: Some(IndexInfo {
                    name: "order_note".into(),
                    definition: String::new(),
                    constraint: None,
                    partitioned: false,
                }),
                ..Extra::default()
            };
            let cx = PlanCx {
                pb: &pb.common,
                facts,
                extra: &extra,
                run_id: "r",
            };
            let (p, refusals) = make(drop, "drop-index", &cx);
            assert!(refusals.is_empty(), "{refusals:?}");
            let c = change(&AnyPlan::from(p));
            assert_eq!(c.can_break(), unique, "{c:?}");
            assert_eq!(
                c.before.keys.len() - c.after.keys.len(),
                usize::from(unique)
            );
        }
    }

    #[test]
    fn reports_count_what_they_could_not_check() {
        let change = Change {
            before: shape("CREATE TABLE public.events (\n    id bigint,\n    at date\n);\nALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id);\n"),
            after: shape("CREATE TABLE public.events (\n    id bigint,\n    at date\n) PARTITION BY RANGE (at);\nALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, at);\n"),
            table: "public.events".into(),
        };
        let long = format!(
            "INSERT INTO events VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at{}",
            " ".repeat(3) + &"-- x\n".repeat(40)
        );
        let stats = Statements {
            schema: "public".into(),
            name: "events".into(),
            unqualified: false,
            search_path: "\"$user\", app".into(),
            texts: vec![
                (long, 1200),
                (
                    "INSERT INTO public.events VALUES ($1, $2) ON CONFLICT (id) DO NOTHING".into(),
                    3,
                ),
                (
                    "INSERT INTO events VALUES ($1, $2) ON CONFLICT (id) DO NOTHING".into(),
                    7,
                ),
                ("SELECT 'unterminated".into(), 1),
            ],
            hidden: 4,
            missing: 1,
        };
        let r = report(&change, &stats);
        // Unqualified names do not count: the table is not on the search_path.
        assert_eq!(r.breaks.len(), 1, "{r:?}");
        assert_eq!(r.breaks[0].calls, 3);
        assert_eq!(r.not_parsed, 1);
        let check = QueryCheck::Checked(r);
        let notes = check.notes().join("\n");
        assert!(notes.contains("queries: 4 statements in pg_stat_statements mention public.events (1211 calls); 1 of them breaks or changes meaning after the change (warning below)"), "{notes}");
        assert!(
            notes.contains("1 statement could not be parsed and was not checked"),
            "{notes}"
        );
        assert!(notes.contains("could not read the text of 4 statements of other roles (`<insufficient privilege>`): grant this role pg_read_all_stats"), "{notes}");
        assert!(
            notes.contains("1 statement of pg_stat_statements has no text"),
            "{notes}"
        );
        assert!(notes.contains("unqualified names were not taken as public.events: on this role's search_path (\"$user\", app)"), "{notes}");
        let w = check.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("`INSERT INTO public.events VALUES ($1, $2) ON CONFLICT (id) DO NOTHING` (3 calls) breaks: `ON CONFLICT (id)` relies on"), "{w:?}");
        // Both rules of the long upsert, its text shortened to one line.
        let r = report(
            &change,
            &Statements {
                unqualified: true,
                ..stats
            },
        );
        let long: Vec<&Broken> = r.breaks.iter().filter(|b| b.calls == 1200).collect();
        assert_eq!(long.len(), 2, "{r:?}");
        assert!(
            long[0].query.ends_with('…') && long[0].query.chars().count() == SHOWN,
            "{}",
            long[0].query
        );
        assert!(!long[0].query.contains('\n'));
        assert_eq!(
            QueryCheck::Unavailable("pg_stat_statements is not installed".into()).notes(),
            ["could not check queries: pg_stat_statements is not installed"]
        );
    }
}
