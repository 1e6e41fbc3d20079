//! `--format json`: a stable, documented schema (version 1).
//!
//! ```text
//! { "version": 1,
//!   "files": [ { "path", "statements", "problem": null | { "fatal", "message" },
//!                "findings": [ { "rule", "severity", "message", "help", "line", "column",
//!                                "end_line", "end_column" } ],
//!                "statements_report": [ { "line", "end_line", "kind",
//!                    "locks": [ { "table", "via_index", "mode", "blocks_reads",
//!                                 "blocks_writes" } ],
//!                    "rewrites": [table], "scans": [table] } ] } ],
//!   "summary": { "files", "statements", "errors", "warnings", "notes", "skipped" } }
//! ```
//! Lines and columns are 1-based; columns count characters; `end_column` is exclusive.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::Summary;
use crate::files::FileReport;
use crate::lint::StatementLocks;

/// The per-statement lock prediction as JSON.
pub fn statement_value(s: &StatementLocks) -> Value {
    json!({
        "line": s.line,
        "end_line": s.end_line,
        "kind": s.kind,
        "locks": s.report.locks.iter().map(|l| json!({
            "table": l.table.to_string(),
            "via_index": l.via_index,
            "mode": l.mode.sql_name(),
            "blocks_reads": l.mode.blocks_reads(),
            "blocks_writes": l.mode.blocks_writes(),
        })).collect::<Vec<_>>(),
        "rewrites": s.report.rewrites.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "scans": s.report.scans.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn file_value(r: &FileReport) -> Value {
    json!({
        "path": r.path,
        "statements": r.statements,
        "problem": r.problem.as_ref().map(|p| json!({"fatal": p.fatal, "message": p.message})),
        "findings": r.diagnostics.iter().map(|d| json!({
            "rule": d.rule,
            "severity": d.severity.as_str(),
            "message": d.message,
            "help": d.help,
            "line": d.line,
            "column": d.column,
            "end_line": d.end_line,
            "end_column": d.end_column,
        })).collect::<Vec<_>>(),
        "statements_report": r.locks.iter().map(statement_value).collect::<Vec<_>>(),
    })
}

/// Writes the whole report as one JSON document.
pub fn write(out: &mut dyn Write, reports: &[FileReport], s: &Summary) -> io::Result<()> {
    let doc = json!({
        "version": 1,
        "files": reports.iter().map(file_value).collect::<Vec<_>>(),
        "summary": {
            "files": s.files,
            "statements": s.statements,
            "errors": s.errors,
            "warnings": s.warnings,
            "notes": s.notes,
            "skipped": s.skipped,
        },
    });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}
