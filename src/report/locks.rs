//! `--locks`: the per-statement lock prediction as a readable table.

use std::io::{self, Write};

use crate::files::FileReport;
use crate::lint::StatementLocks;

fn blocks(s: &StatementLocks, table: &str) -> &'static str {
    let m = s
        .report
        .locks
        .iter()
        .filter(|l| l.table.to_string() == table)
        .map(|l| l.mode)
        .max();
    match m {
        Some(m) if m.blocks_reads() => "reads, writes",
        Some(m) if m.blocks_writes() => "writes",
        Some(_) => "-",
        None => "-",
    }
}

/// Writes one file's table: one row per table a statement locks.
pub fn write_file(out: &mut dyn Write, r: &FileReport) -> io::Result<()> {
    let rows: Vec<[String; 7]> = r
        .locks
        .iter()
        .flat_map(|s| {
            s.report.locks.iter().map(move |l| {
                let t = l.table.to_string();
                let has = |v: &[crate::sql::ir::ObjName]| v.iter().any(|x| x.to_string() == t);
                let yes = |sure: &[crate::sql::ir::ObjName], maybe: &[crate::sql::ir::ObjName]| {
                    if has(sure) {
                        "yes"
                    } else if has(maybe) {
                        "maybe"
                    } else {
                        "no"
                    }
                };
                [
                    s.line.to_string(),
                    s.kind.clone(),
                    if l.via_index {
                        format!("(table of index {t})")
                    } else {
                        t.clone()
                    },
                    match l.condition {
                        Some(c) => format!("{} ({})", l.mode.sql_name(), c.as_str()),
                        None => l.mode.sql_name().to_string(),
                    },
                    blocks(s, &t).to_string(),
                    yes(&s.report.rewrites, &s.report.may_rewrite).to_string(),
                    yes(&s.report.scans, &s.report.may_scan).to_string(),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let header = [
        "line",
        "statement",
        "table",
        "lock",
        "blocks",
        "rewrite",
        "scan",
    ];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    writeln!(out, "{}", r.path)?;
    let line = |cells: &[&str]| {
        let mut s = String::from(" ");
        for (c, w) in cells.iter().zip(width) {
            s.push(' ');
            s.push_str(c);
            s.push_str(&" ".repeat(w.saturating_sub(c.chars().count())));
            s.push(' ');
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    writeln!(out)
}
