//! Trace reports: text, JSON and Markdown (for a merge-request comment).
//!
//! JSON (version 1):
//! ```text
//! { "version": 1, "server": "15", "mode": "commit" | "rollback",
//!   "statements": [ { "file", "line", "end_line", "sql", "outcome": "ran" | "failed" | "skipped",
//!       "message": null | "…", "outside_transaction", "scans_unknown", "duration_ms", "lock_timeout",
//!       "seeded": [ { "table", "rows", "error": null | "…" } ],
//!       "emptied": [ { "table", "because" } ],
//!       "locks": [ { "table", "mode", "held_ms" } ], "already_held": { table: mode },
//!       "rewrites": [table], "scans": [table],
//!       "predicted": null | { "locks": { table: mode }, "conditional_locks": { table: mode },
//!                             "index_locks": [mode], "rewrites": [table], "scans": [table],
//!                             "may_rewrite": [table], "may_scan": [table] },
//!       "verdict": "confirmed" | "mismatch" | "not compared", "verdict_reason": null | "…" } ],
//!   "summary": { "statements", "confirmed", "mismatches", "failed", "skipped" } }
//! ```

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::trace::{Effect, Outcome, Step, Verdict};

/// Counts over a trace.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TraceSummary {
    pub statements: usize,
    pub confirmed: usize,
    pub mismatches: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl TraceSummary {
    pub fn of(steps: &[Step]) -> TraceSummary {
        let mut s = TraceSummary {
            statements: steps.len(),
            ..TraceSummary::default()
        };
        for st in steps {
            match st.verdict {
                Verdict::Confirmed => s.confirmed += 1,
                Verdict::Mismatch => s.mismatches += 1,
                Verdict::NotCompared(_) => {}
            }
            match st.outcome {
                Outcome::Failed(_) => s.failed += 1,
                Outcome::Skipped(_) => s.skipped += 1,
                Outcome::Ran => {}
            }
        }
        s
    }
}

/// Header facts for a report.
#[derive(Debug, Clone)]
pub struct TraceInfo {
    /// e.g. "PostgreSQL 15 (throwaway cluster)".
    pub target: String,
    pub server_major: u32,
    pub rolled_back: bool,
}

fn effect_text(e: &Effect) -> String {
    let mut parts: Vec<String> = e
        .locks
        .iter()
        .map(|(t, m)| format!("{t} {}", m.sql_name()))
        .collect();
    parts.extend(
        e.conditional
            .iter()
            .map(|(t, m)| format!("{t} {} (sometimes)", m.sql_name())),
    );
    parts.extend(e.index_locks.iter().map(|(m, conditional)| {
        format!(
            "(table of an index) {}{}",
            m.sql_name(),
            if *conditional { " (sometimes)" } else { "" }
        )
    }));
    let locks = if parts.is_empty() {
        "no locks".to_string()
    } else {
        parts.join(", ")
    };
    let list = |v: &std::collections::BTreeSet<String>,
                maybe: &std::collections::BTreeSet<String>| {
        let mut items: Vec<String> = v.iter().cloned().collect();
        items.extend(maybe.iter().map(|t| format!("maybe {t}")));
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    format!(
        "{locks}; rewrites {}; scans {}",
        list(&e.rewrites, &e.may_rewrite),
        list(&e.scans, &e.may_scan)
    )
}

fn first_line(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 90 {
        format!("{}…", one.chars().take(89).collect::<String>())
    } else {
        one
    }
}

fn blocks(mode: crate::sql::ir::LockMode) -> &'static str {
    if mode.blocks_reads() {
        "blocks reads and writes"
    } else if mode.blocks_writes() {
        "blocks writes"
    } else {
        "blocks neither reads nor writes"
    }
}

fn held(ms: Option<f64>) -> String {
    ms.map_or_else(String::new, |ms| format!(", held {ms:.1} ms"))
}

/// The readable report.
pub fn write_text(out: &mut dyn Write, info: &TraceInfo, steps: &[Step]) -> io::Result<()> {
    writeln!(
        out,
        "trace on {}{}\n",
        info.target,
        if info.rolled_back {
            ", rolled back at the end"
        } else {
            ""
        }
    )?;
    for s in steps {
        writeln!(out, "{}:{}  {}", s.file, s.line, first_line(&s.sql))?;
        for n in &s.seeded {
            match &n.error {
                None => writeln!(
                    out,
                    "  seeded    {} ({} rows, before this statement)",
                    n.table, n.rows
                )?,
                Some(e) => writeln!(out, "  seeded    {}: cannot fill it: {e}", n.table)?,
            }
        }
        for (t, why) in &s.emptied {
            writeln!(
                out,
                "  emptied   {t} (the statement failed on its generated rows: {why}; run again)"
            )?;
        }
        match &s.outcome {
            Outcome::Failed(m) => writeln!(out, "  failed: {m}")?,
            Outcome::Skipped(m) => writeln!(out, "  skipped: {m}")?,
            Outcome::Ran => {
                for l in &s.locks {
                    writeln!(
                        out,
                        "  lock      {} {} ({}{})",
                        l.table,
                        l.mode.sql_name(),
                        blocks(l.mode),
                        held(l.held_ms)
                    )?;
                }
                if s.locks.is_empty() {
                    writeln!(out, "  lock      none")?;
                }
                let list = |v: &std::collections::BTreeSet<String>| {
                    if v.is_empty() {
                        "none".to_string()
                    } else {
                        v.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                };
                writeln!(out, "  rewrites  {}", list(&s.rewrites))?;
                writeln!(
                    out,
                    "  scans     {}{}",
                    list(&s.scans),
                    if s.scans_unknown {
                        " (not compared: before PostgreSQL 15 another session sees them late)"
                    } else {
                        ""
                    }
                )?;
                writeln!(
                    out,
                    "  took {:.1} ms, lock_timeout {}{}",
                    s.duration_ms,
                    s.lock_timeout,
                    if s.outside_transaction {
                        ", run outside a transaction (watched from a second connection)"
                    } else {
                        ""
                    }
                )?;
            }
        }
        match &s.verdict {
            Verdict::Confirmed => writeln!(out, "  confirmed: lint predicted the same")?,
            Verdict::Mismatch => {
                writeln!(out, "  mismatch")?;
                if let Some(p) = &s.predicted {
                    writeln!(out, "    lint predicted:  {}", effect_text(p))?;
                }
                writeln!(out, "    postgres did:    {}", effect_text(&s.observed()))?;
            }
            Verdict::NotCompared(why) => writeln!(out, "  not compared: {why}")?,
        }
        writeln!(out)?;
    }
    let sum = TraceSummary::of(steps);
    writeln!(
        out,
        "traced {} statement{}: {} confirmed, {} mismatch{}, {} failed, {} skipped",
        sum.statements,
        if sum.statements == 1 { "" } else { "s" },
        sum.confirmed,
        sum.mismatches,
        if sum.mismatches == 1 { "" } else { "es" },
        sum.failed,
        sum.skipped
    )
}

fn effect_value(e: &Effect) -> Value {
    json!({
        "locks": e.locks.iter().map(|(t, m)| (t.clone(), json!(m.sql_name()))).collect::<serde_json::Map<_, _>>(),
        "conditional_locks": e.conditional.iter().map(|(t, m)| (t.clone(), json!(m.sql_name()))).collect::<serde_json::Map<_, _>>(),
        "index_locks": e.index_locks.iter().map(|(m, _)| m.sql_name()).collect::<Vec<_>>(),
        "rewrites": e.rewrites,
        "scans": e.scans,
        "may_rewrite": e.may_rewrite,
        "may_scan": e.may_scan,
    })
}

/// The JSON document.
pub fn write_json(out: &mut dyn Write, info: &TraceInfo, steps: &[Step]) -> io::Result<()> {
    let sum = TraceSummary::of(steps);
    let doc = json!({
        "version": 1,
        "server": info.server_major.to_string(),
        "mode": if info.rolled_back { "rollback" } else { "commit" },
        "statements": steps.iter().map(|s| json!({
            "file": s.file,
            "line": s.line,
            "end_line": s.end_line,
            "sql": s.sql,
            "outcome": match s.outcome { Outcome::Ran => "ran", Outcome::Failed(_) => "failed", Outcome::Skipped(_) => "skipped" },
            "message": match &s.outcome { Outcome::Ran => None, Outcome::Failed(m) | Outcome::Skipped(m) => Some(m.clone()) },
            "outside_transaction": s.outside_transaction,
            "scans_unknown": s.scans_unknown,
            "seeded": s.seeded.iter().map(|n| json!({
                "table": n.table,
                "rows": n.rows,
                "error": n.error,
            })).collect::<Vec<_>>(),
            "emptied": s.emptied.iter().map(|(t, why)| json!({ "table": t, "because": why })).collect::<Vec<_>>(),
            "duration_ms": (s.duration_ms * 1000.0).round() / 1000.0,
            "lock_timeout": s.lock_timeout,
            "locks": s.locks.iter().map(|l| json!({
                "table": l.table,
                "mode": l.mode.sql_name(),
                "held_ms": l.held_ms.map(|ms| (ms * 1000.0).round() / 1000.0),
            })).collect::<Vec<_>>(),
            "already_held": s.already_held.iter().map(|(t, m)| (t.clone(), json!(m.sql_name()))).collect::<serde_json::Map<_, _>>(),
            "rewrites": s.rewrites,
            "scans": s.scans,
            "predicted": s.predicted.as_ref().map(effect_value),
            "verdict": s.verdict.as_str(),
            "verdict_reason": match &s.verdict { Verdict::NotCompared(r) => Some(r.clone()), _ => None },
        })).collect::<Vec<_>>(),
        "summary": {
            "statements": sum.statements,
            "confirmed": sum.confirmed,
            "mismatches": sum.mismatches,
            "failed": sum.failed,
            "skipped": sum.skipped,
        },
    });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown for a merge-request comment: one table row per statement.
pub fn write_markdown(out: &mut dyn Write, info: &TraceInfo, steps: &[Step]) -> io::Result<()> {
    let sum = TraceSummary::of(steps);
    writeln!(out, "### lockstep trace\n")?;
    writeln!(
        out,
        "{} statements on {}: **{} confirmed**, **{} mismatch{}**, {} failed, {} skipped.\n",
        sum.statements,
        info.target,
        sum.confirmed,
        sum.mismatches,
        if sum.mismatches == 1 { "" } else { "es" },
        sum.failed,
        sum.skipped
    )?;
    writeln!(
        out,
        "| Statement | Locks (held) | Rewrites | Scans | Took | lock_timeout | Lint |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for s in steps {
        let stmt = format!("`{}:{}` `{}`", s.file, s.line, md_cell(&first_line(&s.sql)));
        let locks = match &s.outcome {
            Outcome::Failed(m) => format!("failed: {}", md_cell(m)),
            Outcome::Skipped(m) => format!("skipped: {}", md_cell(m)),
            Outcome::Ran if s.locks.is_empty() => "none".to_string(),
            Outcome::Ran => s
                .locks
                .iter()
                .map(|l| {
                    format!(
                        "{} **{}**{}",
                        md_cell(&l.table),
                        l.mode.sql_name(),
                        l.held_ms
                            .map_or_else(String::new, |ms| format!(" ({ms:.1} ms)"))
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        let list = |v: &std::collections::BTreeSet<String>| {
            if v.is_empty() {
                "–".to_string()
            } else {
                md_cell(&v.iter().cloned().collect::<Vec<_>>().join(", "))
            }
        };
        let verdict = match &s.verdict {
            Verdict::Confirmed => "✅ confirmed".to_string(),
            Verdict::Mismatch => format!(
                "❌ mismatch: lint predicted {}",
                md_cell(&s.predicted.as_ref().map_or_else(String::new, effect_text))
            ),
            Verdict::NotCompared(why) => format!("– {}", md_cell(why)),
        };
        writeln!(
            out,
            "| {stmt} | {locks} | {} | {} | {:.1} ms | {} | {verdict} |",
            list(&s.rewrites),
            list(&s.scans),
            s.duration_ms,
            md_cell(&s.lock_timeout)
        )?;
    }
    Ok(())
}
