//! Stable finding fingerprints, shared by the GitLab (`fingerprint`) and SARIF
//! (`partialFingerprints["lockstepFingerprint/v1"]`) reports.
//!
//! A fingerprint identifies a finding across commits, so CI can tell new findings from ones
//! that were already there. It must survive unrelated edits (a comment added at the top of the
//! file moves every line), so it is built from no line or column number:
//!
//! ```text
//! FNV-1a-128( "lockstep/v1" 0 repo-relative path 0 rule 0 statement text 0 occurrence )
//! ```
//!
//! as 32 lowercase hex digits, where
//! - *statement text* is the source of the lines the finding's statement spans, with every
//!   run of whitespace replaced by one space and the ends trimmed (for a finding that belongs
//!   to no statement, such as an unused ignore comment, the text of the finding's own span);
//! - *occurrence* counts earlier findings of the same rule on the same statement text in the
//!   same file (0, 1, …), so two identical statements, or two findings of one rule on one
//!   statement, still get distinct fingerprints.
//!
//! Changing the statement itself, renaming the file or the rule gives a new fingerprint;
//! moving the statement, editing other statements, or reformatting whitespace does not.

use std::collections::HashMap;

use crate::files::FileReport;
use crate::lint::Diagnostic;
use crate::sql::LineIndex;

const FNV128_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV128_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// FNV-1a, 128-bit. Not cryptographic; collisions only need to be unlikely between the
/// findings of one project.
#[derive(Debug, Clone, Copy)]
pub struct Fnv128(u128);

impl Default for Fnv128 {
    fn default() -> Self {
        Fnv128(FNV128_OFFSET)
    }
}

impl Fnv128 {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(FNV128_PRIME);
        }
    }

    /// Writes one field followed by a NUL separator, so `("ab", "c")` and `("a", "bc")`
    /// hash differently.
    pub fn field(&mut self, s: &str) {
        self.write(s.as_bytes());
        self.write(&[0]);
    }

    pub fn finish(self) -> u128 {
        self.0
    }

    pub fn hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

/// The fingerprint of one finding (see the module docs).
pub fn fingerprint(path: &str, rule: &str, statement_text: &str, occurrence: usize) -> String {
    let mut h = Fnv128::default();
    h.field("lockstep/v1");
    h.field(path);
    h.field(rule);
    h.field(&normalize_ws(statement_text));
    h.write(occurrence.to_string().as_bytes());
    h.hex()
}

/// Collapses every whitespace run to one space and trims the ends.
pub fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The source text a finding is fingerprinted by: its statement's lines, or for a finding
/// outside any statement, its own span.
fn statement_text<'a>(r: &'a FileReport, index: &LineIndex, d: &Diagnostic) -> &'a str {
    let src = r.source.as_str();
    match d.statement_lines {
        Some((first, last)) => {
            let start = index.line_start(first).min(src.len());
            let end = index.line_range(src, last).end.max(start);
            src.get(start..end).unwrap_or("")
        }
        None => src.get(d.span.clone()).unwrap_or(""),
    }
}

/// The fingerprints of a file's findings, in the order of `r.diagnostics`. Occurrences are
/// counted over every finding of the file in file order, the ones a baseline accepted
/// (`r.baselined`) included, so accepting a finding never changes another's fingerprint.
pub fn file_fingerprints(r: &FileReport, path: &str) -> Vec<String> {
    let index = LineIndex::new(&r.source);
    let mut all: Vec<(&Diagnostic, Option<usize>)> = r
        .diagnostics
        .iter()
        .enumerate()
        .map(|(i, d)| (d, Some(i)))
        .chain(r.baselined.iter().map(|d| (d, None)))
        .collect();
    // Stable: findings at the same place keep the order they were reported in.
    all.sort_by_key(|(d, _)| (d.span.start, d.span.end));
    let mut seen: HashMap<(&str, String), usize> = HashMap::new();
    let mut out = vec![String::new(); r.diagnostics.len()];
    for (d, slot) in all {
        let text = normalize_ws(statement_text(r, &index, d));
        let n = seen.entry((d.rule, text.clone())).or_insert(0);
        if let Some(i) = slot {
            out[i] = fingerprint(path, d.rule, &text, *n);
        }
        *n += 1;
    }
    out
}

/// The fingerprint of a problem with a whole file (unreadable, binary, not UTF-8).
pub fn problem_fingerprint(path: &str, message: &str) -> String {
    fingerprint(path, "file-problem", message, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(src: &str) -> FileReport {
        crate::report::test_report("m.sql", src)
    }

    #[test]
    fn fnv_128_matches_the_reference_values() {
        // Test vectors of the FNV reference implementation.
        assert_eq!(Fnv128::default().hex(), "6c62272e07bb014262b821756295c58d");
        let mut h = Fnv128::default();
        h.write(b"a");
        assert_eq!(h.hex(), "d228cb696f1a8caf78912b704e4a8964");
        let mut h = Fnv128::default();
        h.write(b"foobar");
        assert_eq!(h.hex(), "343e1662793c64bf6f0d3597ba446f18");
    }

    #[test]
    fn fingerprints_ignore_moves_and_whitespace_but_not_the_statement() {
        let a = report("CREATE INDEX i ON t (a);\n");
        let b = report("-- a comment\n\n\nCREATE   INDEX i\n  ON t (a);\n");
        let c = report("CREATE INDEX i ON t (b);\n");
        let fa = file_fingerprints(&a, "m.sql");
        assert_eq!(fa.len(), 2, "{:?}", a.diagnostics);
        assert_eq!(fa, file_fingerprints(&b, "m.sql"));
        assert_ne!(fa, file_fingerprints(&c, "m.sql"));
        assert_ne!(fa, file_fingerprints(&a, "n.sql"));
        assert!(fa.iter().all(|f| f.len() == 32));
    }

    #[test]
    fn repeated_statements_get_distinct_fingerprints() {
        let r = report("CREATE INDEX i ON t (a);\nCREATE INDEX i ON t (a);\n");
        let fps = file_fingerprints(&r, "m.sql");
        let mut unique = fps.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), fps.len());
    }
}
