//! `--format junit`: JUnit XML, for the test-report views of GitLab, Jenkins, Azure DevOps
//! and GitHub actions that read it.
//!
//! ```text
//! <testsuites name="lockstep" tests= failures= errors=>
//!   <testsuite name="lockstep" tests= failures= errors= skipped="0">
//!     <testcase classname="lockstep" name=PATH file=PATH>          one per linted file
//!       <failure message="2 errors, 1 warning" type="error">…</failure>
//!       <error message=… type="file-problem">…</error>
//!       <system-out>…</system-out>
//!     </testcase>
//! ```
//!
//! PATH is relative to the repository root. A file with findings at or above `warning` has a
//! `<failure>` (its `type` is the highest severity) listing them, one per line as
//! `PATH:LINE:COL: SEVERITY[RULE]: MESSAGE` with an indented `help:` line; notes and
//! warnings about the file (invalid UTF-8) go to `<system-out>`; a file that could not be
//! linted has an `<error>`. Text is escaped for XML 1.0, and characters XML 1.0 cannot carry
//! at all (most control characters) are dropped.
//!
//! The counts in `<testsuite>` are known only at the end, so the `<testcase>` fragments
//! (a few lines per file) are buffered until then; file sources are not kept.

use std::io::{self, Write};

use super::paths::RepoPaths;
use super::Summary;
use crate::files::FileReport;
use crate::lint::{Diagnostic, Severity};

/// The test suite, one test case per file.
#[derive(Debug)]
pub struct JunitReporter {
    paths: RepoPaths,
    cases: String,
    tests: usize,
    failures: usize,
    errors: usize,
}

/// Whether XML 1.0 allows `c` at all.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// Escapes text content.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|&c| xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A bare CR would be read back as LF.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value (quoted with `"`). Tabs and line breaks become character
/// references, which survive attribute-value normalisation.
pub fn escape_attr(s: &str) -> String {
    escape_text(s).replace('\n', "&#10;").replace('\t', "&#9;")
}

fn plural(n: usize, w: &str) -> String {
    format!("{n} {w}{}", if n == 1 { "" } else { "s" })
}

fn finding_line(path: &str, d: &Diagnostic) -> String {
    let mut s = format!(
        "{path}:{}:{}: {}[{}]: {}\n",
        d.line, d.column, d.severity, d.rule, d.message
    );
    if let Some(h) = &d.help {
        s.push_str(&format!("  help: {h}\n"));
    }
    s
}

impl JunitReporter {
    pub fn new(paths: RepoPaths) -> JunitReporter {
        JunitReporter {
            paths,
            cases: String::new(),
            tests: 0,
            failures: 0,
            errors: 0,
        }
    }

    fn counts(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\"",
            self.tests, self.failures, self.errors
        )
    }
}

impl super::Reporter for JunitReporter {
    fn file(&mut self, _out: &mut dyn Write, r: &FileReport) -> io::Result<()> {
        let path = self.paths.of(&r.path);
        let path = path.as_str();
        let attr = escape_attr(path);
        self.tests += 1;
        let c = &mut self.cases;
        c.push_str(&format!(
            "    <testcase classname=\"lockstep\" name=\"{attr}\" file=\"{attr}\""
        ));
        let failing: Vec<&Diagnostic> = r
            .diagnostics
            .iter()
            .filter(|d| d.severity >= Severity::Warning)
            .collect();
        let mut out_text = String::new();
        if let Some(p) = r.problem.as_ref().filter(|p| !p.fatal) {
            out_text.push_str(&format!("{path}: warning: {}\n", p.message));
        }
        for d in r
            .diagnostics
            .iter()
            .filter(|d| d.severity < Severity::Warning)
        {
            out_text.push_str(&finding_line(path, d));
        }
        let fatal = r.problem.as_ref().filter(|p| p.fatal);
        if failing.is_empty() && fatal.is_none() && out_text.is_empty() {
            c.push_str("/>\n");
            return Ok(());
        }
        c.push_str(">\n");
        if let Some(p) = fatal {
            self.errors += 1;
            c.push_str(&format!(
                "      <error message=\"{}\" type=\"file-problem\">{}</error>\n",
                escape_attr(&p.message),
                escape_text(&format!("{path}: {}", p.message))
            ));
        }
        if !failing.is_empty() {
            self.failures += 1;
            let errors = failing
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let warnings = failing.len() - errors;
            let mut parts = Vec::new();
            if errors > 0 {
                parts.push(plural(errors, "error"));
            }
            if warnings > 0 {
                parts.push(plural(warnings, "warning"));
            }
            let kind = if errors > 0 { "error" } else { "warning" };
            let body: String = failing.iter().map(|d| finding_line(path, d)).collect();
            c.push_str(&format!(
                "      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n",
                parts.join(", "),
                escape_text(&body)
            ));
        }
        if !out_text.is_empty() {
            c.push_str(&format!(
                "      <system-out>{}</system-out>\n",
                escape_text(&out_text)
            ));
        }
        c.push_str("    </testcase>\n");
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, _s: &Summary) -> io::Result<()> {
        let counts = self.counts();
        writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        writeln!(out, "<testsuites name=\"lockstep\" {counts}>")?;
        writeln!(
            out,
            "  <testsuite name=\"lockstep\" {counts} skipped=\"0\">"
        )?;
        out.write_all(self.cases.as_bytes())?;
        writeln!(out, "  </testsuite>\n</testsuites>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_illegal_characters() {
        assert_eq!(
            escape_text("a<b>&\"c\"'d'\u{1}\u{FFFE}\u{1F600}"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\u{1F600}"
        );
        assert_eq!(escape_attr("x\ny\tz\r"), "x&#10;y&#9;z&#13;");
        assert_eq!(escape_text("\u{7}bell\u{0}"), "bell");
    }
}
