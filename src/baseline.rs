//! Baselines: accept the findings a migration history already has, so that only new ones
//! count.
//!
//! `lockstep lint --write-baseline FILE` records every finding of the run; `--baseline FILE`
//! (or `baseline = "FILE"` in `lockstep.toml`) then leaves out the findings it records.
//! Findings are matched by the fingerprints of the CI formats ([`crate::report::fingerprint`]):
//! repository-relative path, rule, the statement's text (whitespace normalised) and its
//! occurrence, never the line number, so editing other statements or adding comments keeps a
//! finding accepted, and changing its statement makes it new.
//!
//! The file is JSON, sorted by path, rule and fingerprint so that it diffs well:
//!
//! ```text
//! { "version": 1,
//!   "findings": [ { "path", "rule", "fingerprint", "message" } ] }
//! ```
//! `path` and `message` are for people; only `fingerprint` is matched.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{io_message, FileReport};
use crate::report::fingerprint::file_fingerprints;
use crate::report::paths::RepoPaths;

/// The version of the baseline file format.
pub const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read the baseline {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("invalid baseline {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write the baseline {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// One accepted finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    pub rule: String,
    pub fingerprint: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    findings: Vec<Entry>,
}

/// A baseline read from disk, and which of its entries this run matched.
#[derive(Debug, Clone)]
pub struct Baseline {
    path: PathBuf,
    entries: Vec<Entry>,
    by_fingerprint: HashMap<String, usize>,
    matched: Vec<bool>,
    /// Repository-relative paths of the files this run linted.
    linted: HashSet<String>,
}

impl Baseline {
    /// Reads the baseline at `path`.
    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|e| BaselineError::Read {
            path: path.to_path_buf(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "no such file (create it with `lockstep lint --write-baseline FILE …`)".into()
            } else {
                io_message(&e)
            },
        })?;
        let file: File = serde_json::from_str(&text).map_err(|e| BaselineError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if file.version != VERSION {
            return Err(BaselineError::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "version {} is not supported (this lockstep reads version {VERSION})",
                    file.version
                ),
            });
        }
        let by_fingerprint = file
            .findings
            .iter()
            .enumerate()
            .map(|(i, e)| (e.fingerprint.clone(), i))
            .collect();
        Ok(Baseline {
            path: path.to_path_buf(),
            matched: vec![false; file.findings.len()],
            entries: file.findings,
            by_fingerprint,
            linted: HashSet::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the findings of `r` that the baseline accepts to `r.baselined`.
    pub fn apply(&mut self, r: &mut FileReport, paths: &RepoPaths) {
        let path = paths.of(&r.path);
        self.linted.insert(path.as_str().to_string());
        if self.entries.is_empty() || r.diagnostics.is_empty() {
            return;
        }
        let fingerprints = file_fingerprints(r, path.as_str());
        let mut kept = Vec::with_capacity(r.diagnostics.len());
        for (d, fp) in std::mem::take(&mut r.diagnostics)
            .into_iter()
            .zip(fingerprints)
        {
            match self.by_fingerprint.get(&fp) {
                Some(&i) => {
                    self.matched[i] = true;
                    r.baselined.push(d);
                }
                None => kept.push(d),
            }
        }
        r.diagnostics = kept;
    }

    /// Entries that no longer match a finding: their file was linted in this run, or no
    /// longer exists (below `root`, the repository root), and nothing matched them (the
    /// finding was fixed, or its statement changed).
    pub fn stale(&self, root: &Path) -> Vec<&Entry> {
        self.entries
            .iter()
            .zip(&self.matched)
            .filter(|(e, matched)| {
                !**matched && (self.linted.contains(&e.path) || !root.join(&e.path).exists())
            })
            .map(|(e, _)| e)
            .collect()
    }
}

/// Collects every finding of a run for `--write-baseline`.
#[derive(Debug, Default)]
pub struct Recorder {
    entries: BTreeSet<Entry>,
    files: BTreeSet<String>,
}

impl Recorder {
    pub fn add(&mut self, r: &FileReport, paths: &RepoPaths) {
        let path = paths.of(&r.path);
        for (d, fp) in r
            .diagnostics
            .iter()
            .zip(file_fingerprints(r, path.as_str()))
        {
            self.files.insert(path.as_str().to_string());
            self.entries.insert(Entry {
                path: path.as_str().to_string(),
                rule: d.rule.to_string(),
                fingerprint: fp,
                message: d.message.clone(),
            });
        }
    }

    /// Number of findings and of files that have any.
    pub fn counts(&self) -> (usize, usize) {
        (self.entries.len(), self.files.len())
    }

    /// Writes the baseline to `path`, replacing it only once it is complete.
    pub fn write(self, path: &Path) -> Result<(), BaselineError> {
        let file = File {
            version: VERSION,
            findings: self.entries.into_iter().collect(),
        };
        let mut text = serde_json::to_string_pretty(&file).map_err(|e| BaselineError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        text.push('\n');
        crate::files::write_atomically(path, text.as_bytes()).map_err(|e| BaselineError::Write {
            path: path.to_path_buf(),
            message: io_message(&e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(src: &str) -> FileReport {
        crate::report::test_report("db/m.sql", src)
    }

    fn paths() -> RepoPaths {
        RepoPaths::new(Path::new("/r"), Path::new("/r"))
    }

    #[test]
    fn written_findings_are_accepted_and_new_ones_are_not() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("baseline.json");
        let old = "CREATE INDEX i ON t (a);\nCREATE INDEX i ON t (a);\n";
        let mut rec = Recorder::default();
        rec.add(&report(old), &paths());
        // Two index builds, and the missing lock_timeout before the first.
        assert_eq!(rec.counts(), (3, 1));
        rec.write(&file).expect("write");

        // The same history with a third identical statement and a comment on top.
        let new = "-- comment\nCREATE INDEX i ON t (a);\nCREATE INDEX i ON t (a);\nCREATE INDEX i ON t (a);\n";
        let mut b = Baseline::read(&file).expect("read");
        let mut r = report(new);
        b.apply(&mut r, &paths());
        assert_eq!(r.baselined.len(), 3);
        let rules: Vec<(usize, &str)> = r.diagnostics.iter().map(|d| (d.line, d.rule)).collect();
        assert_eq!(rules, [(4, "create-index-non-concurrently")]);
        // The remaining finding keeps the fingerprint it has without a baseline.
        let unfiltered = report(new);
        let all = file_fingerprints(&unfiltered, "db/m.sql");
        assert_eq!(file_fingerprints(&r, "db/m.sql"), [all[3].clone()]);
        assert!(b.stale(Path::new("/r")).is_empty());
    }

    #[test]
    fn fixed_findings_are_stale() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("baseline.json");
        let mut rec = Recorder::default();
        rec.add(&report("CREATE INDEX i ON t (a);\n"), &paths());
        rec.write(&file).expect("write");
        let mut b = Baseline::read(&file).expect("read");
        let mut r = report("SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY i ON t (a);\n");
        b.apply(&mut r, &paths());
        let stale: Vec<&str> = b
            .stale(dir.path())
            .iter()
            .map(|e| e.rule.as_str())
            .collect();
        assert_eq!(
            stale,
            ["create-index-non-concurrently", "missing-lock-timeout"]
        );
    }

    #[test]
    fn bad_files_are_errors_that_name_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("none.json");
        let e = Baseline::read(&missing).unwrap_err().to_string();
        assert!(
            e.contains("none.json") && e.contains("--write-baseline"),
            "{e}"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"version\": 1, \"findings\": [{\"path\": 1}]}").unwrap();
        let e = Baseline::read(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid baseline") && e.contains("bad.json"),
            "{e}"
        );
        std::fs::write(&bad, "{\"version\": 7, \"findings\": []}").unwrap();
        let e = Baseline::read(&bad).unwrap_err().to_string();
        assert!(e.contains("version 7"), "{e}");
    }
}
