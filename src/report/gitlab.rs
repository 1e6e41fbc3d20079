//! `--format gitlab`: a GitLab Code Quality report (`artifacts:reports:codequality`), a
//! subset of the Code Climate issue format that GitLab reads.
//!
//! A JSON array (UTF-8, no byte-order mark) with one object per finding:
//!
//! ```text
//! { "type": "issue",
//!   "check_name": rule,                      e.g. "create-index-non-concurrently"
//!   "description": message,
//!   "content": { "body": help },             the help, and `documentation: URL` when lockstep
//!                                            was built with LOCKSTEP_DOCS_URL (see sarif.rs)
//!   "categories": ["Bug Risk"],
//!   "severity": "critical" | "major" | "info" | "blocker",
//!   "fingerprint": 32 hex digits,            see `report::fingerprint`
//!   "location": { "path": repo-relative path, "lines": { "begin": line, "end": end_line } } }
//! ```
//!
//! Severities: error → `critical`, warning → `major`, note → `info`. A file that could not be
//! linted is one `blocker` issue with `check_name` `file-problem` at line 1; a file linted
//! with invalid UTF-8 replaced is a `major` `file-problem`. Paths are relative to the
//! repository root (GitLab resolves them against it) with `/` separators.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::fingerprint::{file_fingerprints, problem_fingerprint};
use super::paths::RepoPaths;
use super::{write_json_indented, Summary};
use crate::files::FileReport;
use crate::lint::Severity;

/// Code Quality's severity for a finding's severity.
pub fn severity(sev: Severity) -> &'static str {
    match sev {
        Severity::Error => "critical",
        Severity::Warning => "major",
        Severity::Note => "info",
    }
}

/// The Code Quality report, streamed one issue at a time.
#[derive(Debug)]
pub struct GitlabReporter {
    paths: RepoPaths,
    issues: usize,
}

impl GitlabReporter {
    pub fn new(paths: RepoPaths) -> GitlabReporter {
        GitlabReporter { paths, issues: 0 }
    }

    fn write_issue(&mut self, out: &mut dyn Write, v: &Value) -> io::Result<()> {
        let sep = if self.issues == 0 { "" } else { "," };
        self.issues += 1;
        write!(out, "{sep}\n  ")?;
        write_json_indented(out, v, 2)
    }
}

impl super::Reporter for GitlabReporter {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        write!(out, "[")
    }

    fn file(&mut self, out: &mut dyn Write, r: &FileReport) -> io::Result<()> {
        let path = self.paths.of(&r.path);
        let path = path.as_str();
        if let Some(p) = &r.problem {
            let v = json!({
                "type": "issue",
                "check_name": "file-problem",
                "description": p.message,
                "categories": ["Bug Risk"],
                "severity": if p.fatal { "blocker" } else { "major" },
                "fingerprint": problem_fingerprint(path, &p.message),
                "location": { "path": path, "lines": { "begin": 1 } },
            });
            self.write_issue(out, &v)?;
        }
        if r.diagnostics.is_empty() {
            return Ok(());
        }
        let fingerprints = file_fingerprints(r, path);
        for (d, fp) in r.diagnostics.iter().zip(fingerprints) {
            let mut v = json!({
                "type": "issue",
                "check_name": d.rule,
                "description": d.message,
                "categories": ["Bug Risk"],
                "severity": severity(d.severity),
                "fingerprint": fp,
                "location": {
                    "path": path,
                    "lines": { "begin": d.line, "end": d.end_line },
                },
            });
            let docs = super::sarif::docs_url(d.rule).map(|u| format!("documentation: {u}"));
            let body: Vec<&str> = d
                .help
                .iter()
                .map(String::as_str)
                .chain(docs.as_deref())
                .collect();
            if !body.is_empty() {
                v["content"] = json!({ "body": body.join("\n\n") });
            }
            self.write_issue(out, &v)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, _s: &Summary) -> io::Result<()> {
        if self.issues == 0 {
            writeln!(out, "]")
        } else {
            writeln!(out, "\n]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Reporter;
    use std::path::Path;

    #[test]
    fn streamed_array_is_valid_json() {
        let report = crate::report::test_report("m/1.sql", "CREATE INDEX i ON t (a);\n");
        let paths = RepoPaths::new(Path::new("/r"), Path::new("/r"));
        for reports in [vec![], vec![report]] {
            let mut out = Vec::new();
            let mut rep = GitlabReporter::new(paths.clone());
            rep.begin(&mut out).unwrap();
            for r in &reports {
                rep.file(&mut out, r).unwrap();
            }
            rep.finish(&mut out, &Summary::of(&reports)).unwrap();
            let v: Value = serde_json::from_slice(&out).unwrap();
            let issues = v.as_array().unwrap();
            assert_eq!(
                issues.len(),
                reports.first().map_or(0, |r| r.diagnostics.len())
            );
            for i in issues {
                assert_eq!(i["location"]["path"], "m/1.sql");
                assert_eq!(i["severity"], "critical");
            }
        }
    }
}
