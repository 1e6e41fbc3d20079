//! `--format json`: a stable, documented schema (version 1).
//!
//! ```text
//! { "version": 1,
//!   "files": [ { "path", "statements", "problem": null | { "fatal", "message" },
//!                "framework": "none" | "flyway" | "goose" | …,
//!                "sections": [ { "direction": "up" | "down" | "verify", "line", "end_line",
//!                                "transaction", "reason", "linted" } ],
//!                "findings": [ { "rule", "severity", "message", "help", "line", "column",
//!                                "end_line", "end_column" } ],
//!                "statements_report": [ { "line", "end_line", "kind",
//!                    "locks": [ { "table", "via_index", "mode", "blocks_reads",
//!                                 "blocks_writes" } ],
//!                    "rewrites": [table], "scans": [table] } ] } ],
//!   "summary": { "files", "statements", "errors", "warnings", "notes", "skipped",
//!                "baselined" } }
//! ```
//! Lines and columns are 1-based; columns count characters; `end_column` is exclusive.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::{write_json_indented, Summary};
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
            "condition": l.condition.map(|c| c.as_str()),
        })).collect::<Vec<_>>(),
        "rewrites": s.report.rewrites.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "scans": s.report.scans.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "may_rewrite": s.report.may_rewrite.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "may_scan": s.report.may_scan.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn file_value(r: &FileReport) -> Value {
    json!({
        "path": r.path,
        "statements": r.statements,
        "problem": r.problem.as_ref().map(|p| json!({"fatal": p.fatal, "message": p.message})),
        "framework": r.framework.name(),
        "sections": r.sections.iter().map(|s| json!({
            "direction": s.direction.as_str(),
            "line": s.line,
            "end_line": s.end_line,
            "transaction": s.transaction,
            "reason": s.reason,
            "linted": s.linted,
        })).collect::<Vec<_>>(),
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
    })
}

/// Writes a file's object at `indent` as `serde_json`'s pretty printer would, with
/// `statements_report` (its last key) written one statement at a time: a file of a
/// hundred thousand statements never becomes one JSON tree.
fn write_file(out: &mut dyn Write, r: &FileReport, indent: usize) -> io::Result<()> {
    let head = serde_json::to_string_pretty(&file_value(r)).map_err(io::Error::other)?;
    let head = head.strip_suffix("\n}").unwrap_or(&head);
    let pad = " ".repeat(indent);
    for (i, line) in head.lines().enumerate() {
        if i > 0 {
            write!(out, "\n{pad}")?;
        }
        out.write_all(line.as_bytes())?;
    }
    write!(out, ",\n{pad}  \"statements_report\": [")?;
    for (i, s) in r.locks.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(out, "{sep}\n{pad}    ")?;
        write_json_indented(out, &statement_value(s), indent + 4)?;
    }
    let close = if r.locks.is_empty() {
        String::new()
    } else {
        format!("\n{pad}  ")
    };
    write!(out, "{close}]\n{pad}}}")
}

fn summary_value(s: &Summary) -> Value {
    json!({
        "files": s.files,
        "statements": s.statements,
        "errors": s.errors,
        "warnings": s.warnings,
        "notes": s.notes,
        "skipped": s.skipped,
        "baselined": s.baselined,
    })
}

/// The JSON document, streamed: the `files` array grows one file at a time.
#[derive(Debug, Default)]
pub struct JsonReporter {
    files: usize,
}

impl super::Reporter for JsonReporter {
    fn wants_locks(&self) -> bool {
        true
    }

    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        write!(out, "{{\n  \"version\": 1,\n  \"files\": [")
    }

    fn file(&mut self, out: &mut dyn Write, r: &FileReport) -> io::Result<()> {
        let sep = if self.files == 0 { "" } else { "," };
        self.files += 1;
        write!(out, "{sep}\n    ")?;
        write_file(out, r, 4)
    }

    fn finish(&mut self, out: &mut dyn Write, s: &Summary) -> io::Result<()> {
        let close = if self.files == 0 { "]" } else { "\n  ]" };
        write!(out, "{close},\n  \"summary\": ")?;
        write_json_indented(out, &summary_value(s), 2)?;
        writeln!(out, "\n}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Reporter;

    fn render(sources: &[&str]) -> Value {
        let reports: Vec<FileReport> = sources
            .iter()
            .enumerate()
            .map(|(i, src)| crate::report::test_report(&format!("m/{i}.sql"), src))
            .collect();
        let mut out = Vec::new();
        let mut rep = JsonReporter::default();
        rep.begin(&mut out).unwrap();
        for r in &reports {
            rep.file(&mut out, r).unwrap();
        }
        rep.finish(&mut out, &Summary::of(&reports)).unwrap();
        serde_json::from_slice(&out).expect("streamed JSON parses")
    }

    #[test]
    fn streamed_file_is_what_the_pretty_printer_writes() {
        for src in [
            "",
            "CREATE INDEX i ON t (a);\nALTER TABLE t ADD COLUMN b int;\nSELECT 1;\n",
        ] {
            let r = crate::report::test_report("m/0.sql", src);
            let mut whole = file_value(&r);
            whole["statements_report"] = r.locks.iter().map(statement_value).collect();
            let mut expected = Vec::new();
            write_json_indented(&mut expected, &whole, 4).unwrap();
            let mut streamed = Vec::new();
            write_file(&mut streamed, &r, 4).unwrap();
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn streamed_document_is_valid_for_zero_one_and_many_files() {
        assert_eq!(render(&[])["files"], json!([]));
        let one = render(&["CREATE INDEX i ON t (a);\n"]);
        assert_eq!(
            one["files"][0]["findings"][0]["rule"],
            "create-index-non-concurrently"
        );
        let two = render(&["SELECT 1;\n", "SELECT 'a\nb';\n"]);
        assert_eq!(two["files"].as_array().unwrap().len(), 2);
        assert_eq!(two["files"][1]["path"], "m/1.sql");
        assert_eq!(two["summary"]["statements"], 2);
    }
}
