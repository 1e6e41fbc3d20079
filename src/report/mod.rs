//! Report writers: they render lint results into a writer the CLI provides.
//!
//! Every format is a [`Reporter`]: it is handed each file's report as soon as that file is
//! checked (in migration order) and the run's totals at the end, so a run over thousands of
//! files never holds more than one window of them in memory.

pub mod json;
pub mod locks;
pub mod text;

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

/// A report format, written incrementally: [`begin`](Reporter::begin) once, then
/// [`file`](Reporter::file) per file in migration order, then [`finish`](Reporter::finish).
pub trait Reporter {
    fn begin(&mut self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
    fn file(&mut self, out: &mut dyn Write, r: &FileReport) -> io::Result<()>;
    fn finish(&mut self, out: &mut dyn Write, s: &Summary) -> io::Result<()>;
}
