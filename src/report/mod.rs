//! Report writers: they render lint results into a writer the CLI provides.

pub mod json;
pub mod locks;
pub mod text;

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
            s.files += 1;
            s.statements += r.statements;
            if r.problem.as_ref().is_some_and(|p| p.fatal) {
                s.skipped += 1;
            }
            for d in &r.diagnostics {
                match d.severity {
                    Severity::Error => s.errors += 1,
                    Severity::Warning => s.warnings += 1,
                    Severity::Note => s.notes += 1,
                }
            }
        }
        s
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
