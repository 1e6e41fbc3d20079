use super::{Checker, Rule};
use crate::lint::Severity;
use crate::sql::ir::{ActionKind, ObjName, StmtKind};
use crate::sql::recognize::toks_text;
use crate::sql::tokens::{split_top_level_commas, Tok};

pub const RULE: Rule = Rule {
    name: "attach-partition-scan",
    default_severity: Some(Severity::Error),
    summary: "`ATTACH PARTITION` without a matching validated CHECK scans the partition under lock",
    docs: r#"## What it does
Flags `ALTER TABLE parent ATTACH PARTITION p FOR VALUES …` when `p` is an existing table and no
validated `CHECK` constraint on `p` matching the partition bound is known from the migration
set.

## Why is this bad?
Before attaching, PostgreSQL proves that every row of `p` fits the bound by scanning the whole
partition while holding ACCESS EXCLUSIVE on it (and it also scans the parent's `DEFAULT`
partition, if any, to prove none of its rows belong to the new one). From PostgreSQL 12 the
parent is locked SHARE UPDATE EXCLUSIVE, so other partitions stay usable; before 12 the parent
is locked ACCESS EXCLUSIVE too, and all reads and writes on the partitioned table wait for the
scan.

PostgreSQL skips the scan when a valid `CHECK` constraint on the partition already implies the
bound.

## Example
```sql
ALTER TABLE measurements ATTACH PARTITION measurements_2023
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
```

## Use instead
```sql
ALTER TABLE measurements_2023 ADD CONSTRAINT measurements_2023_bound
    CHECK (recorded_at IS NOT NULL AND recorded_at >= '2023-01-01' AND recorded_at < '2024-01-01')
    NOT VALID;                                             -- instant
-- in a separate transaction: scans, but reads and writes continue
ALTER TABLE measurements_2023 VALIDATE CONSTRAINT measurements_2023_bound;
ALTER TABLE measurements ATTACH PARTITION measurements_2023
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');     -- no scan: the check proves the bound
ALTER TABLE measurements_2023 DROP CONSTRAINT measurements_2023_bound;
```
A hash bound cannot be proven by a simple check: attach the partition while it is still empty
and load the data afterwards.
"#,
    check,
};

/// A partition bound, as written after `FOR VALUES` (values as SQL text).
#[derive(Debug, PartialEq, Eq)]
enum Bound {
    Range { from: Vec<String>, to: Vec<String> },
    List(Vec<String>),
    Hash,
    Default,
    Unknown,
}

fn check(cx: &mut Checker) {
    let StmtKind::AlterTable { table, actions } = &cx.stmt.kind else {
        return;
    };
    let v = cx.ctx.pg_version;
    for a in actions {
        let ActionKind::AttachPartition { partition } = &a.kind else {
            continue;
        };
        if cx.ctx.is_new_table(partition) {
            continue;
        }
        let toks: Vec<Tok> = cx
            .stmt
            .toks
            .iter()
            .filter(|t| t.span.start >= a.span.start && t.span.end <= a.span.end)
            .cloned()
            .collect();
        let bound = parse_bound(&toks);
        if has_matching_check(cx, partition, &bound) {
            continue;
        }
        let parent_lock = if v >= 12 {
            format!("the parent `{table}` is locked SHARE UPDATE EXCLUSIVE, so its other partitions stay usable")
        } else {
            format!("before PostgreSQL 12 (target: {v}) the parent `{table}` is locked ACCESS EXCLUSIVE too, so reads and writes on the whole partitioned table wait")
        };
        let message = format!(
            "attaching `{partition}` scans all of it under ACCESS EXCLUSIVE to prove the partition bound (and scans a DEFAULT partition of `{table}`, if any); {parent_lock}"
        );
        let help = match &bound {
            Bound::Hash => "a hash bound cannot be proven by a simple `CHECK`: attach the partition while it is still empty and load the data afterwards".to_string(),
            Bound::Default => "attach the DEFAULT partition while it is still empty, or first add a `CHECK` that excludes the other partitions' bounds `NOT VALID` and validate it in a separate transaction".to_string(),
            _ => {
                let check = check_template(&bound).map_or(
                    "a `CHECK` matching the bound".to_string(),
                    |c| format!("`CHECK ({c})` (with `key` the partition key)"),
                );
                format!(
                    "first add {check} to `{partition}` `NOT VALID`, `VALIDATE CONSTRAINT` it in a separate transaction, then attach (no scan) and drop the check"
                )
            }
        };
        cx.report(a.span.clone(), message, help);
    }
}

/// Reads the bound of `ATTACH PARTITION p FOR VALUES …` / `DEFAULT` from the action's tokens.
fn parse_bound(toks: &[Tok]) -> Bound {
    let Some(at) = toks.iter().position(|t| t.is("VALUES") || t.is("DEFAULT")) else {
        return Bound::Unknown;
    };
    if toks[at].is("DEFAULT") {
        return Bound::Default;
    }
    let rest = &toks[at + 1..];
    let mut groups = Vec::new();
    let mut i = 0;
    let mut keyword = None;
    while i < rest.len() {
        let t = &rest[i];
        if t.is("WITH") {
            return Bound::Hash;
        }
        if t.is("IN") || t.is("FROM") || t.is("TO") {
            keyword = Some(t);
        }
        if t.is_punct("(") {
            let mut depth = 0;
            let start = i + 1;
            while i < rest.len() {
                if rest[i].is_punct("(") {
                    depth += 1;
                } else if rest[i].is_punct(")") {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                i += 1;
            }
            let inner = &rest[start..i.min(rest.len())];
            let values: Vec<String> = split_top_level_commas(inner)
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(toks_text)
                .collect();
            groups.push((keyword.is_some_and(|k| k.is("IN")), values));
        }
        i += 1;
    }
    match groups.as_slice() {
        [(true, values)] => Bound::List(values.clone()),
        [(false, from), (false, to)] => Bound::Range {
            from: from.clone(),
            to: to.clone(),
        },
        _ => Bound::Unknown,
    }
}

/// The literal values a matching check must mention (MINVALUE/MAXVALUE/NULL excluded).
fn bound_literals(bound: &Bound) -> Vec<&str> {
    let values: Vec<&String> = match bound {
        Bound::Range { from, to } => from.iter().chain(to).collect(),
        Bound::List(v) => v.iter().collect(),
        _ => return Vec::new(),
    };
    values
        .into_iter()
        .map(String::as_str)
        .filter(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "minvalue" | "maxvalue" | "null"
            )
        })
        .collect()
}

/// Whether a validated CHECK on the partition mentions every value of the bound. PostgreSQL
/// proves the implication itself; this recognizes the usual hand-written helper check.
fn has_matching_check(cx: &Checker, partition: &ObjName, bound: &Bound) -> bool {
    let literals = bound_literals(bound);
    if literals.is_empty() {
        return false;
    }
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let Some(t) = cx.ctx.catalog.table(partition) else {
        return false;
    };
    t.checks.iter().filter(|c| c.validated).any(|c| {
        let expr = squash(&c.expr);
        literals.iter().all(|l| expr.contains(&squash(l)))
    })
}

/// A CHECK expression equivalent to a single-column bound, with `key` for the key column.
fn check_template(bound: &Bound) -> Option<String> {
    let plain = |v: &str| !matches!(v.to_ascii_lowercase().as_str(), "minvalue" | "maxvalue");
    match bound {
        Bound::Range { from, to } if from.len() == 1 && to.len() == 1 => {
            let mut parts = vec!["key IS NOT NULL".to_string()];
            if plain(&from[0]) {
                parts.push(format!("key >= {}", from[0]));
            }
            if plain(&to[0]) {
                parts.push(format!("key < {}", to[0]));
            }
            Some(parts.join(" AND "))
        }
        Bound::List(values) if !values.iter().any(|v| v.eq_ignore_ascii_case("null")) => Some(
            format!("key IS NOT NULL AND key IN ({})", values.join(", ")),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {

    fn findings(src: &str, pg_version: u32) -> Vec<(String, String)> {
        crate::lint::rules::test_findings("attach-partition-scan", src, pg_version)
    }

    const ATTACH: &str = "ALTER TABLE measurements ATTACH PARTITION m2023 FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');";

    #[test]
    fn parent_lock_depends_on_version() {
        let at12 = findings(ATTACH, 12);
        assert_eq!(at12.len(), 1);
        assert!(at12[0]
            .0
            .ends_with(
            "; the parent `measurements` is locked SHARE UPDATE EXCLUSIVE, so its other partitions stay usable"
        ));
        assert_eq!(
            at12[0].1,
            "first add `CHECK (key IS NOT NULL AND key >= '2023-01-01' AND key < '2024-01-01')` (with `key` the partition key) to `m2023` `NOT VALID`, `VALIDATE CONSTRAINT` it in a separate transaction, then attach (no scan) and drop the check"
        );
        let at11 = findings(ATTACH, 11);
        assert_eq!(at11.len(), 1);
        assert!(at11[0].0.ends_with(
            "before PostgreSQL 12 (target: 11) the parent `measurements` is locked ACCESS EXCLUSIVE too, so reads and writes on the whole partitioned table wait"
        ));
    }

    #[test]
    fn a_validated_matching_check_silences_it() {
        let add = "ALTER TABLE m2023 ADD CONSTRAINT m2023_bound CHECK (at IS NOT NULL AND at >= '2023-01-01' AND at < '2024-01-01') NOT VALID;\n";
        let validate = "ALTER TABLE m2023 VALIDATE CONSTRAINT m2023_bound;\n";
        // NOT VALID alone does not let PostgreSQL skip the scan.
        assert_eq!(findings(&format!("{add}{ATTACH}"), 15).len(), 1);
        assert!(findings(&format!("{add}{validate}{ATTACH}"), 15).is_empty());
        // A check for another range does not match.
        let other = "ALTER TABLE m2023 ADD CONSTRAINT b CHECK (at >= '2022-01-01' AND at < '2023-01-01');\n";
        assert_eq!(findings(&format!("{other}{ATTACH}"), 15).len(), 1);
    }

    #[test]
    fn list_hash_default_and_new_partitions() {
        let f = findings(
            "ALTER TABLE orders ATTACH PARTITION orders_eu FOR VALUES IN ('de', 'fr');",
            15,
        );
        assert!(f[0]
            .1
            .contains("`CHECK (key IS NOT NULL AND key IN ('de', 'fr'))`"));
        let f = findings(
            "ALTER TABLE orders ATTACH PARTITION orders_h0 FOR VALUES WITH (MODULUS 4, REMAINDER 0);",
            15,
        );
        assert!(f[0].1.starts_with("a hash bound cannot be proven"));
        let f = findings(
            "ALTER TABLE orders ATTACH PARTITION orders_other DEFAULT;",
            15,
        );
        assert!(f[0]
            .1
            .starts_with("attach the DEFAULT partition while it is still empty"));
        let fresh = format!("CREATE TABLE m2023 (at date);\n{ATTACH}");
        assert!(findings(&fresh, 15).is_empty());
    }
}
