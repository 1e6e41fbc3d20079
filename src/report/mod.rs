//! Report writers: they render lint results into a writer the CLI provides.
//!
//! Every format is a [`Reporter`]: it is handed each file's report as soon as that file is
//! checked (in migration order) and the run's totals at the end, so a run over thousands of
//! files never holds more than one window of them in memory. A reporter may keep small
//! per-finding data until the end (counts, a JUnit test case), never file sources.
//!
//! Formats: [`text`] (the default), [`json`] (lockstep's own schema), and for CI systems
//! [`sarif`] (GitHub code scanning and other SARIF consumers), [`gitlab`] (GitLab Code
//! Quality), [`junit`] (test-report widgets) and [`github`] (GitHub Actions annotations).
//! The CI formats name files relative to the repository root ([`paths`]) and identify
//! findings by a line-independent [`fingerprint`].

pub mod fingerprint;
pub mod github;
pub mod gitlab;
pub mod json;
pub mod junit;
pub mod locks;
pub mod paths;
pub mod run_status;
pub mod sarif;
pub mod text;
pub mod trace;

use std::io::{self, Write};

use crate::files::FileReport;
use crate::lint::Severity;

/// Totals over a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub statements: usize,
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
    /// Files that could not be linted at all.
    pub skipped: usize,
    /// Findings a baseline accepted (not reported, not counted above).
    pub baselined: usize,
}

impl Summary {
    pub fn of(reports: &[FileReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            s.add(r);
        }
        s
    }

    /// Counts one more file.
    pub fn add(&mut self, r: &FileReport) {
        self.files += 1;
        self.statements += r.statements;
        if r.problem.as_ref().is_some_and(|p| p.fatal) {
            self.skipped += 1;
        }
        self.baselined += r.baselined.len();
        for d in &r.diagnostics {
            match d.severity {
                Severity::Error => self.errors += 1,
                Severity::Warning => self.warnings += 1,
                Severity::Note => self.notes += 1,
            }
        }
    }

    /// Findings at or above `level`.
    pub fn at_or_above(&self, level: Severity) -> usize {
        match level {
            Severity::Error => self.errors,
            Severity::Warning => self.errors + self.warnings,
            Severity::Note => self.errors + self.warnings + self.notes,
        }
    }
}

/// Writes `v` pretty-printed with every line after the first indented by `indent` spaces.
/// (JSON strings cannot hold a raw newline, so indenting lines is safe.)
pub(crate) fn write_json_indented(
    out: &mut dyn Write,
    v: &serde_json::Value,
    indent: usize,
) -> io::Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(io::Error::other)?;
    let pad = " ".repeat(indent);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            write!(out, "\n{pad}")?;
        }
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// A report format, written incrementally: [`begin`](Reporter::begin) once, then
/// [`file`](Reporter::file) per file in migration order, then [`finish`](Reporter::finish).
pub trait Reporter {
    /// Whether the report prints each statement's lock report ([`FileReport::locks`]); the
    /// lint run keeps them only when some report does.
    fn wants_locks(&self) -> bool {
        false
    }
    fn begin(&mut self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
    fn file(&mut self, out: &mut dyn Write, r: &FileReport) -> io::Result<()>;
    fn finish(&mut self, out: &mut dyn Write, s: &Summary) -> io::Result<()>;
}

/// A file's report as the CLI would produce it, for unit tests of the formats.
#[cfg(test)]
pub(crate) fn test_report(path: &str, src: &str) -> FileReport {
    let input = crate::files::Input::Stdin {
        display: path.to_string(),
        text: src.as_bytes().to_vec(),
    };
    let mut reports =
        crate::files::lint_all(&[input], &crate::lint::LintOptions::default()).into_iter();
    reports.next().expect("one report per input")
}
