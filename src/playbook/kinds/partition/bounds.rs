//! The partitions of the new table, from the data: ranges covering the partition column's
//! values (plus `premake` future ones), the lists, or the hash remainders; and a DEFAULT.

use tokio_postgres::Client;

use super::{Partition, Strategy};
use crate::playbook::exec::EngineError;
use crate::playbook::facts::{self, Facts};
use crate::playbook::names::{fit, lit, quote_ident};
use crate::playbook::shadow::Partition as Part;

fn trunc_unit(interval: &str) -> (&'static str, &'static str) {
    let i = interval.to_ascii_lowercase();
    if i.contains("year") {
        ("year", "YYYY")
    } else if i.contains("month") {
        ("month", "YYYYMM")
    } else if i.contains("week") {
        ("week", "YYYYMMDD")
    } else if i.contains("hour") {
        ("hour", "YYYYMMDD\"_\"HH24")
    } else if i.contains("min") {
        ("minute", "YYYYMMDD\"_\"HH24MI")
    } else {
        ("day", "YYYYMMDD")
    }
}

fn partition_name(pattern: &str, table: &str, start: &str, n: usize) -> String {
    fit(&pattern
        .replace("{table}", table)
        .replace("{start}", start)
        .replace("{n}", &n.to_string()))
}

/// The partitions covering the table's data, the future ones and the default.
pub(super) async fn partitions(
    client: &Client,
    p: &Partition,
    f: &Facts,
) -> Result<Vec<Part>, EngineError> {
    let col = quote_ident(&p.column);
    let ty = f.column(&p.column).map_or("text", |c| c.type_sql.as_str());
    let mut out = Vec::new();
    match &p.strategy {
        Strategy::RangeInterval(iv) => {
            let (unit, fmt) = trunc_unit(iv);
            let base = if ty == "date" { "timestamp" } else { ty };
            let sql = format!(
                "WITH b AS (SELECT coalesce(min({col})::{base}, now()::{base}) lo, coalesce(max({col})::{base}, now()::{base}) hi FROM {t})
                 SELECT to_char(g, {fmt}), format('%L', g::{ty}), format('%L', (g + {iv}::interval)::{ty})
                 FROM b, generate_series(date_trunc({unit}, b.lo), b.hi + {premake} * {iv}::interval, {iv}::interval) g",
                t = f.qualified(),
                fmt = lit(fmt),
                unit = lit(unit),
                iv = lit(iv),
                premake = p.premake,
            );
            for (n, r) in facts::data_rows(client, "computing partitions", &sql)
                .await?
                .iter()
                .enumerate()
            {
                out.push(Part {
                    name: partition_name(&p.naming, &f.name, &r[0], n),
                    bound: format!("FOR VALUES FROM ({}) TO ({})", r[1], r[2]),
                });
            }
        }
        Strategy::RangeWidth(w) => {
            let sql = format!(
                "SELECT coalesce(min({col}), 0)::bigint::text, coalesce(max({col}), 0)::bigint::text FROM {}",
                f.qualified()
            );
            let rows = facts::data_rows(client, "computing partitions", &sql).await?;
            let bound = |i: usize| -> i64 {
                rows.first()
                    .and_then(|r| r.get(i))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let (lo, hi) = (bound(0), bound(1));
            let mut start = lo.div_euclid(*w) * w;
            let end = hi.saturating_add(w.saturating_mul(i64::from(p.premake)));
            let mut n = 0;
            while start <= end && n < 10_000 {
                out.push(Part {
                    name: partition_name(&p.naming, &f.name, &start.to_string(), n),
                    bound: format!(
                        "FOR VALUES FROM ({start}) TO ({})",
                        start.saturating_add(*w)
                    ),
                });
                start = start.saturating_add(*w);
                n += 1;
            }
        }
        Strategy::List(lists) => {
            for (n, l) in lists.iter().enumerate() {
                out.push(Part {
                    name: partition_name(&p.naming, &f.name, &l.name, n),
                    bound: format!("FOR VALUES IN ({})", l.values.join(", ")),
                });
            }
        }
        Strategy::Hash(m) => {
            for r in 0..*m {
                out.push(Part {
                    name: partition_name(&p.naming, &f.name, &r.to_string(), r as usize),
                    bound: format!("FOR VALUES WITH (MODULUS {m}, REMAINDER {r})"),
                });
            }
        }
    }
    if p.default_partition && !matches!(p.strategy, Strategy::Hash(_)) {
        out.push(Part {
            name: fit(&format!("{}_default", f.name)),
            bound: "DEFAULT".into(),
        });
    }
    Ok(out)
}
