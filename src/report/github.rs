//! `--format github`: GitHub Actions workflow commands, which the runner turns into
//! annotations on the pull request's diff.
//!
//! One line per finding:
//!
//! ```text
//! ::error file=db/0001.sql,line=3,col=1,endLine=3,endColumn=13,title=create-index-non-concurrently::MESSAGE%0Ahelp: HELP
//! ```
//!
//! error → `::error`, warning → `::warning`, note → `::notice`. `file` is relative to the
//! repository root (GitHub resolves it against the workspace). `col`/`endColumn` are given only
//! when the finding starts and ends on one line (GitHub accepts columns only then);
//! `endColumn` is exclusive, as in every lockstep format. A file that could not be linted is
//! `::error file=PATH::MESSAGE` (a file linted with invalid UTF-8 replaced, `::warning`). The
//! output ends with the plain summary line of the text format.
//!
//! Escaping follows the runner's rules: in the message `%` → `%25`, CR → `%0D`, LF → `%0A`;
//! in property values additionally `:` → `%3A` and `,` → `%2C`.

use std::io::{self, Write};

use super::paths::RepoPaths;
use super::text::{write_summary, Style};
use super::Summary;
use crate::files::FileReport;
use crate::lint::Severity;

/// The workflow command for a severity.
pub fn command(sev: Severity) -> &'static str {
    match sev {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    }
}

/// Escapes a command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Workflow commands, one line per finding.
#[derive(Debug)]
pub struct GithubReporter {
    paths: RepoPaths,
}

impl GithubReporter {
    pub fn new(paths: RepoPaths) -> GithubReporter {
        GithubReporter { paths }
    }
}

impl super::Reporter for GithubReporter {
    fn file(&mut self, out: &mut dyn Write, r: &FileReport) -> io::Result<()> {
        let path = self.paths.of(&r.path);
        let file = escape_property(path.as_str());
        if let Some(p) = &r.problem {
            let cmd = if p.fatal { "error" } else { "warning" };
            writeln!(out, "::{cmd} file={file}::{}", escape_data(&p.message))?;
        }
        for d in &r.diagnostics {
            let mut props = format!("file={file},line={}", d.line);
            if d.line == d.end_line {
                props.push_str(&format!(",col={}", d.column));
            }
            props.push_str(&format!(",endLine={}", d.end_line));
            if d.line == d.end_line {
                props.push_str(&format!(",endColumn={}", d.end_column));
            }
            props.push_str(&format!(",title={}", escape_property(d.rule)));
            let message = match &d.help {
                Some(h) => format!("{}\nhelp: {h}", d.message),
                None => d.message.clone(),
            };
            writeln!(
                out,
                "::{} {props}::{}",
                command(d.severity),
                escape_data(&message)
            )?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, s: &Summary) -> io::Result<()> {
        write_summary(out, s, Style { color: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_data_escapes_percent_and_line_breaks() {
        assert_eq!(escape_data("100% done\r\nnext"), "100%25 done%0D%0Anext");
        assert_eq!(escape_data("a:b,c"), "a:b,c");
        // `%` is escaped first, so an escape is never escaped twice.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn properties_also_escape_colons_and_commas() {
        assert_eq!(
            escape_property("db/a:b,c%d\ne.sql"),
            "db/a%3Ab%2Cc%25d%0Ae.sql"
        );
        assert_eq!(escape_property("plain/path.sql"), "plain/path.sql");
    }

    #[test]
    fn findings_become_one_command_each() {
        let src = "CREATE INDEX i ON t (a);\nALTER TABLE t FROBNICATE x;\n";
        let report = crate::report::test_report("m/a,b.sql", src);
        let cwd = std::path::Path::new("/r");
        let mut rep = GithubReporter::new(RepoPaths::new(cwd, cwd));
        let mut out = Vec::new();
        super::super::Reporter::file(&mut rep, &mut out, &report).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), report.diagnostics.len());
        assert!(lines[0].starts_with(
            "::error file=m/a%2Cb.sql,line=1,col=1,endLine=1,endColumn=13,title=create-index-non-concurrently::"
        ));
        assert!(lines.iter().any(|l| l.starts_with("::notice ")));
        assert!(lines.iter().all(|l| l.contains("%0Ahelp: ")));
    }
}
