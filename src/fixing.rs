//! Applying the safe rewrites of a file so that its migration tool can still run it.
//!
//! Each finding's fix is safe on its own terms, but fixes combine, and a migration tool has
//! rules of its own: golang-migrate and Prisma run a file of several statements in one
//! transaction, Flyway refuses a script that mixes `CREATE INDEX CONCURRENTLY` with other
//! statements. So fixes are tried one at a time, rules in registry order (blocking
//! statements before lock hygiene), and each is kept only if the file, linted again the way
//! its tool runs it, has no more statements that cannot run (`concurrently-in-transaction`)
//! and no more statements lockstep cannot read than before. A fix that is refused is
//! reported with the reason, unless the fixes that were kept made its finding go away.

use std::path::Path;

use crate::files::{lint_text, FileReport};
use crate::lint::fix::{apply_each, Fix};
use crate::lint::rules::{self, concurrently_in_transaction, unparsed_statement};
use crate::lint::{Diagnostic, LintOptions, Severity};

/// A finding whose fix was not applied, and why.
#[derive(Debug)]
pub struct Refused<'a> {
    pub finding: &'a Diagnostic,
    pub reason: String,
}

/// The outcome of fixing one file.
#[derive(Debug)]
pub struct FileFix<'a> {
    /// The file's text with the kept fixes applied.
    pub text: String,
    pub applied: Vec<&'a Diagnostic>,
    pub refused: Vec<Refused<'a>>,
}

impl FileFix<'_> {
    /// The text differs from the file's.
    pub fn changed(&self, source: &str) -> bool {
        self.text != source
    }
}

/// What makes a file unrunnable or unreadable: the messages of those findings.
fn blockers(path: &Path, text: &str, opts: &LintOptions) -> Vec<String> {
    lint_text(path, text, opts)
        .diagnostics
        .into_iter()
        .filter(|d| {
            d.rule == concurrently_in_transaction::RULE.name
                || d.rule == unparsed_statement::RULE.name
        })
        .map(|d| d.message)
        .collect()
}

/// Options for re-checking: the run's, with only the rules that tell runnability.
fn check_options(opts: &LintOptions) -> LintOptions {
    let keep = [
        concurrently_in_transaction::RULE.name,
        unparsed_statement::RULE.name,
    ];
    LintOptions {
        severities: rules::RULES
            .iter()
            .map(|r| keep.contains(&r.name).then_some(Severity::Error))
            .collect(),
        lint_down: true,
        ..opts.clone()
    }
}

/// Fixes `r` (linted with `opts`): `None` when the file cannot be rewritten (not read as
/// valid UTF-8) or has no fix.
pub fn fix_file<'a>(r: &'a FileReport, opts: &LintOptions) -> Option<FileFix<'a>> {
    if r.problem.is_some() {
        return None;
    }
    let mut fixable: Vec<&Diagnostic> = r.diagnostics.iter().filter(|d| d.fix.is_some()).collect();
    if fixable.is_empty() {
        return None;
    }
    fixable.sort_by_key(|d| rules::index_of(d.rule).unwrap_or(usize::MAX));
    let path = Path::new(&r.path);
    let check = check_options(opts);
    let before = blockers(path, &r.source, &check);
    let mut kept: Vec<&Diagnostic> = Vec::new();
    let mut refused = Vec::new();
    let mut text = r.source.clone();
    for d in fixable {
        let fixes: Vec<&Fix> = kept
            .iter()
            .chain(std::iter::once(&d))
            .filter_map(|k| k.fix.as_ref())
            .collect();
        let (candidate, applied) = apply_each(&r.source, fixes.iter().copied());
        if applied.len() < fixes.len() {
            // It overlaps a kept fix: the two rewrite the same text.
            continue;
        }
        let after = blockers(path, &candidate, &check);
        let new: Vec<&String> = after.iter().filter(|m| !before.contains(m)).collect();
        if after.len() > before.len() || !new.is_empty() {
            refused.push(Refused {
                finding: d,
                reason: new.first().map_or_else(
                    || {
                        "the rewritten file would not run the way its migration tool runs it"
                            .to_string()
                    },
                    |m| format!("the rewritten file would not run: {m}"),
                ),
            });
            continue;
        }
        kept.push(d);
        text = candidate;
    }
    if !refused.is_empty() {
        // A refusal matters only if its finding is still there once the kept fixes are in.
        let still = lint_text(path, &text, opts);
        refused.retain(|x| still.diagnostics.iter().any(|d| d.rule == x.finding.rule));
    }
    Some(FileFix {
        text,
        applied: kept,
        refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::fix::Fix;

    /// The report of `src` as `path`, its first finding given a fix that inserts `insert` at
    /// the start of the file.
    fn report_with_fix(path: &str, src: &str, insert: &str) -> FileReport {
        let opts = LintOptions::default();
        let mut r = lint_text(Path::new(path), src, &opts);
        let mut d = r
            .diagnostics
            .first()
            .cloned()
            .expect("the file has a finding to copy");
        d.fix = Some(Fix::new(vec![Fix::insert(0, insert)]));
        r.diagnostics = vec![d];
        r
    }

    #[test]
    fn a_fix_that_breaks_the_file_for_its_tool_is_refused() {
        // golang-migrate: a second statement puts the concurrent build in a transaction.
        let src = "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n";
        let r = report_with_fix("db/1_index.up.sql", src, "SET lock_timeout = '1s';\n");
        let f = fix_file(&r, &LintOptions::default()).expect("a fix to try");
        assert_eq!(f.text, src);
        assert!(f.applied.is_empty());
        assert_eq!(f.refused.len(), 1);
        assert!(
            f.refused[0]
                .reason
                .contains("must be the only statement of its migration file"),
            "{}",
            f.refused[0].reason
        );
        // Where the file runs as written, the same fix is kept.
        let r = report_with_fix("plain.sql", src, "SET lock_timeout = '1s';\n");
        let f = fix_file(&r, &LintOptions::default()).expect("a fix to try");
        assert_eq!(f.applied.len(), 1);
        assert!(f.refused.is_empty());
        assert!(f.text.starts_with("SET lock_timeout"));
    }

    #[test]
    fn a_fix_that_makes_a_statement_unreadable_is_refused() {
        let src = "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n";
        let r = report_with_fix("plain.sql", src, "ALTER TABLE t FROBNICATE;\n");
        let f = fix_file(&r, &LintOptions::default()).expect("a fix to try");
        assert_eq!(f.text, src);
        assert_eq!(f.refused.len(), 1);
    }
}
