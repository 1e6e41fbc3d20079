//! `--format sarif`: SARIF 2.1.0, as GitHub code scanning (`github/codeql-action/upload-sarif`)
//! and other SARIF viewers read it.
//!
//! One run with:
//! - `tool.driver`: `name` "lockstep", `version` (the crate version), `informationUri` (the
//!   package's repository URL, when Cargo.toml names one), and `rules`: every registered
//!   rule, in registry order, with `id`, `shortDescription` (the one-line summary),
//!   `fullDescription` (the *What it does* section), `help` (the whole documentation, as
//!   text and Markdown) and `defaultConfiguration` (`level` from the default severity; rules
//!   that are off by default have `enabled: false` and the level `--select` gives them,
//!   `warning`), and `helpUri` when lockstep was built with `LOCKSTEP_DOCS_URL` set (see
//!   [`docs_url`]);
//! - `columnKind` `unicodeCodePoints`: columns count characters, as everywhere in lockstep;
//! - `results`, one per finding: `ruleId`, `ruleIndex` (into `rules`), `level` (`error`,
//!   `warning`, `note`), `message.text` (the message, then `help: …` on a second line),
//!   one location whose `artifactLocation.uri` is the file's path relative to the
//!   repository root (percent-encoded; a `file://` URI for a file outside the repository) and
//!   whose `region` has 1-based `startLine`/`startColumn`/`endLine`/`endColumn` (exclusive,
//!   as SARIF defines it), and `partialFingerprints["lockstepFingerprint/v1"]`, the
//!   line-independent fingerprint of [`super::fingerprint`];
//! - `invocations[0]`: `executionSuccessful` (false when a file could not be linted) and
//!   `toolExecutionNotifications` for file problems (`error` for files that could not be
//!   linted, `warning` for files linted with invalid UTF-8 replaced).
//!
//! Streamed: the header and rules first, one result at a time, the invocation last.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::fingerprint::file_fingerprints;
use super::paths::RepoPaths;
use super::{write_json_indented, Summary};
use crate::files::FileReport;
use crate::lint::rules::{Rule, RULES};
use crate::lint::Severity;

/// The schema URI written into the document, the one GitHub's documentation uses.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The key of lockstep's fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "lockstepFingerprint/v1";

/// SARIF's `level` for a severity.
pub fn level(sev: Severity) -> &'static str {
    match sev {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// The body of a `## heading` section of a rule's docs.
fn section<'a>(docs: &'a str, heading: &str) -> Option<&'a str> {
    let marker = format!("## {heading}\n");
    let start = docs.find(&marker)? + marker.len();
    let rest = &docs[start..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// Where the rules' pages (`docs/rules/<rule>.md` in lockstep's repository) are published,
/// when the build said so: `LOCKSTEP_DOCS_URL` at compile time, for example
/// `https://git.example.com/tools/lockstep/-/blob/v0.1.0/docs/rules`. SARIF's `helpUri` must
/// be absolute, and lockstep does not guess where its repository is hosted.
const DOCS_BASE: Option<&str> = option_env!("LOCKSTEP_DOCS_URL");

/// The URL of a rule's page under `base` (`None` without a base).
pub fn docs_url_under(base: Option<&str>, rule: &str) -> Option<String> {
    let base = base.map(str::trim).filter(|b| !b.is_empty())?;
    Some(format!("{}/{rule}.md", base.trim_end_matches('/')))
}

/// The URL of a rule's page, when lockstep was built with `LOCKSTEP_DOCS_URL`.
pub fn docs_url(rule: &str) -> Option<String> {
    docs_url_under(DOCS_BASE, rule)
}

fn rule_value(r: &Rule) -> Value {
    let full = section(r.docs, "What it does").unwrap_or(r.summary);
    let (enabled, sev) = match r.default_severity {
        Some(s) => (true, s),
        None => (false, Severity::Warning),
    };
    let mut config = json!({ "level": level(sev) });
    if !enabled {
        config["enabled"] = json!(false);
    }
    let mut v = json!({
        "id": r.name,
        "shortDescription": { "text": r.summary },
        "fullDescription": { "text": full },
        "help": {
            "text": format!("{}\n\n{}", r.summary, r.docs.trim_end()),
            "markdown": format!("{}\n\n{}", r.summary, r.docs.trim_end()),
        },
        "defaultConfiguration": config,
    });
    if let Some(url) = docs_url(r.name) {
        v["helpUri"] = json!(url);
    }
    v
}

fn driver_value() -> Value {
    let mut driver = json!({
        "name": "lockstep",
        "version": env!("CARGO_PKG_VERSION"),
        "rules": RULES.iter().map(rule_value).collect::<Vec<_>>(),
    });
    let uri = option_env!("CARGO_PKG_REPOSITORY").unwrap_or("");
    if !uri.is_empty() {
        driver["informationUri"] = json!(uri);
    }
    json!({ "driver": driver })
}

fn rule_index(name: &str) -> Option<usize> {
    RULES.iter().position(|r| r.name == name)
}

/// The SARIF log, streamed.
#[derive(Debug)]
pub struct SarifReporter {
    paths: RepoPaths,
    results: usize,
    /// File problems, reported at the end in the invocation (small: a path and a message).
    notifications: Vec<Value>,
    fatal: bool,
}

impl SarifReporter {
    pub fn new(paths: RepoPaths) -> SarifReporter {
        SarifReporter {
            paths,
            results: 0,
            notifications: Vec::new(),
            fatal: false,
        }
    }

    fn write_result(&mut self, out: &mut dyn Write, v: &Value) -> io::Result<()> {
        let sep = if self.results == 0 { "" } else { "," };
        self.results += 1;
        write!(out, "{sep}\n        ")?;
        write_json_indented(out, v, 8)
    }
}

impl super::Reporter for SarifReporter {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        write!(
            out,
            "{{\n  \"$schema\": \"{SCHEMA_URI}\",\n  \"version\": \"2.1.0\",\n  \"runs\": [\n    {{\n      \"tool\": "
        )?;
        write_json_indented(out, &driver_value(), 6)?;
        write!(
            out,
            ",\n      \"columnKind\": \"unicodeCodePoints\",\n      \"results\": ["
        )
    }

    fn file(&mut self, out: &mut dyn Write, r: &FileReport) -> io::Result<()> {
        let path = self.paths.of(&r.path);
        let uri = path.uri();
        if let Some(p) = &r.problem {
            self.fatal |= p.fatal;
            self.notifications.push(json!({
                "level": if p.fatal { "error" } else { "warning" },
                "message": { "text": format!("{}: {}", path.as_str(), p.message) },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": uri } }
                }],
                "descriptor": { "id": "file-problem" },
            }));
        }
        if r.diagnostics.is_empty() {
            return Ok(());
        }
        let fingerprints = file_fingerprints(r, path.as_str());
        for (d, fp) in r.diagnostics.iter().zip(fingerprints) {
            let text = match &d.help {
                Some(h) => format!("{}\nhelp: {h}", d.message),
                None => d.message.clone(),
            };
            let mut v = json!({
                "ruleId": d.rule,
                "level": level(d.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri },
                        "region": {
                            "startLine": d.line,
                            "startColumn": d.column,
                            "endLine": d.end_line,
                            "endColumn": d.end_column,
                        }
                    }
                }],
                "partialFingerprints": { FINGERPRINT_KEY: fp },
            });
            if let Some(i) = rule_index(d.rule) {
                v["ruleIndex"] = json!(i);
            }
            self.write_result(out, &v)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, _s: &Summary) -> io::Result<()> {
        let close = if self.results == 0 { "]" } else { "\n      ]" };
        let invocation = json!({
            "executionSuccessful": !self.fatal,
            "toolExecutionNotifications": self.notifications,
        });
        write!(out, "{close},\n      \"invocations\": [\n        ")?;
        write_json_indented(out, &invocation, 8)?;
        writeln!(out, "\n      ]\n    }}\n  ]\n}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_urls_need_a_base() {
        assert_eq!(docs_url_under(None, "lock-table"), None);
        assert_eq!(docs_url_under(Some(" "), "lock-table"), None);
        assert_eq!(
            docs_url_under(Some("https://docs.example/lockstep/rules/"), "lock-table").as_deref(),
            Some("https://docs.example/lockstep/rules/lock-table.md")
        );
    }
    use crate::files::FileProblem;
    use crate::report::Reporter;
    use std::path::Path;

    fn render(reports: &[FileReport]) -> Value {
        let mut out = Vec::new();
        let mut rep = SarifReporter::new(RepoPaths::new(Path::new("/r/db"), Path::new("/r")));
        rep.begin(&mut out).unwrap();
        for r in reports {
            rep.file(&mut out, r).unwrap();
        }
        rep.finish(&mut out, &Summary::of(reports)).unwrap();
        serde_json::from_slice(&out).expect("streamed SARIF parses")
    }

    fn report(path: &str, src: &str) -> FileReport {
        crate::report::test_report(path, src)
    }

    #[test]
    fn empty_run_lists_every_rule_and_no_result() {
        let v = render(&[]);
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["results"], json!([]));
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), RULES.len());
        for r in rules {
            assert!(!r["fullDescription"]["text"].as_str().unwrap().is_empty());
        }
        assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    }

    #[test]
    fn results_point_at_repo_relative_uris_and_rules() {
        let mut bad = report("../x.sql", "");
        bad.problem = Some(FileProblem {
            fatal: true,
            message: "binary file".into(),
        });
        let v = render(&[report("m/a b.sql", "CREATE INDEX i ON t (a);\n"), bad]);
        let run = &v["runs"][0];
        let res = &run["results"][0];
        assert_eq!(res["ruleId"], "create-index-non-concurrently");
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], res["ruleId"]);
        let loc = &res["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "db/m/a%20b.sql");
        assert_eq!(loc["region"]["startLine"], 1);
        let inv = &run["invocations"][0];
        assert_eq!(inv["executionSuccessful"], false);
        let n = &inv["toolExecutionNotifications"][0];
        assert_eq!(n["level"], "error");
        assert_eq!(
            n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "x.sql"
        );
    }
}
