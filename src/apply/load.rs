//! Reading a directory of migrations: the files in migration order, split into statements,
//! each file's transaction decided, and everything linted the way it will run.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ApplyError;
use crate::files::{self, Input};
use crate::framework::Framework;
use crate::lint::{LintOptions, Severity};
use crate::sql::ir::StmtKind;
use crate::sql::parse::analyze;
use crate::sql::{split, LineIndex};

/// One statement of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub sql: String,
    /// Where it starts (1-based).
    pub line: usize,
    /// The tables lint predicts it locks (for naming who blocks it).
    pub tables: Vec<String>,
    /// `CREATE INDEX CONCURRENTLY name …`: the index, whose INVALID leftover of an
    /// interrupted build is dropped before the build runs again.
    pub concurrent_index: Option<String>,
}

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its path relative to the directory, with `/` (what the record is keyed by).
    pub version: String,
    /// Its path as given, for messages.
    pub path: String,
    /// SHA-256 of its text, hex.
    pub checksum: String,
    pub statements: Vec<Stmt>,
    /// Runs in one transaction (no statement that cannot run in one).
    pub in_transaction: bool,
    /// Why not, when it does not: the first such statement (`CREATE INDEX CONCURRENTLY`).
    pub alone: Option<&'static str>,
    /// The file wraps itself in `BEGIN` … `COMMIT` (dropped: lockstep opens the transaction).
    pub wraps_itself: bool,
}

/// A lint finding, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    pub rule: &'static str,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.path, self.line, self.column, self.severity, self.rule, self.message
        )
    }
}

/// A directory of migrations, read and linted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
    pub findings: Vec<Finding>,
}

impl Loaded {
    /// Error-level findings.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// Refuses migrations with error-level findings (listing up to ten).
    pub fn check_lint(&self) -> Result<(), ApplyError> {
        self.check_lint_of(&self.migrations.iter().collect::<Vec<_>>())
    }

    /// Refuses when any of `migrations` (those a target has yet to apply) has error-level
    /// findings: a file applied long ago does not stop the ones after it.
    pub fn check_lint_of(&self, migrations: &[&Migration]) -> Result<(), ApplyError> {
        let errors: Vec<&Finding> = self
            .errors()
            .filter(|f| migrations.iter().any(|m| m.path == f.path))
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        let mut list: Vec<String> = errors.iter().take(10).map(|f| format!("  {f}")).collect();
        if errors.len() > 10 {
            list.push(format!("  … and {} more", errors.len() - 10));
        }
        Err(ApplyError::Lint {
            errors: errors.len(),
            list: list.join("\n"),
        })
    }
}

/// What lockstep prepends to a file it runs in one transaction, for lint to see it so.
const WRAP: &str = "BEGIN;";

/// Reads the migrations under `dir` (every `*.sql` below it in migration order, except
/// `*.down.sql` and `down.sql`) and lints them as lockstep runs them: a file in one
/// transaction unless it holds a statement that cannot run in one. `opts` are the lint
/// options (from `lockstep.toml`); `missing-lock-timeout` is off, since every statement
/// runs under lockstep's own lock_timeout.
pub fn load(dir: &Path, opts: &LintOptions) -> Result<Loaded, ApplyError> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| ApplyError::Load(format!("{}: {}", dir.display(), files::io_message(&e))))?;
    if !meta.is_dir() {
        return Err(ApplyError::Load(format!(
            "{}: not a directory (apply takes a directory of migrations)",
            dir.display()
        )));
    }
    let (inputs, errors) = files::discover(
        &[dir.to_path_buf()],
        dir,
        dir,
        &files::exclude_set(&[]).map_err(|e| ApplyError::Load(e.to_string()))?,
        Some(Framework::Plain),
    );
    if let Some(e) = errors.first() {
        return Err(ApplyError::Load(e.to_string()));
    }
    let paths: Vec<PathBuf> = inputs
        .into_iter()
        .filter_map(|i| match i {
            Input::File { path, .. } => Some(path),
            Input::Stdin { .. } => None,
        })
        .filter(|p| {
            let name = p
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().to_lowercase());
            name != "down.sql" && !name.ends_with(".down.sql")
        })
        .collect();
    if paths.is_empty() {
        return Err(ApplyError::Load(format!(
            "no .sql files under {}",
            dir.display()
        )));
    }
    let mut migrations = Vec::with_capacity(paths.len());
    let mut texts = Vec::with_capacity(paths.len());
    for path in &paths {
        let bytes = files::read_file(path, opts.max_file_size)
            .map_err(|m| ApplyError::Load(format!("{}: {m}", path.display())))?;
        let (text, problem) = files::decode(bytes);
        let text = match (text, problem) {
            (Some(t), None) => t,
            (_, Some(p)) => {
                return Err(ApplyError::Load(format!(
                    "{}: {}",
                    path.display(),
                    p.message
                )))
            }
            (None, None) => {
                return Err(ApplyError::Load(format!("{}: unreadable", path.display())))
            }
        };
        let version = path
            .strip_prefix(dir)
            .unwrap_or(path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        migrations.push(migration(path, version, &text)?);
        texts.push(text);
    }
    let findings = lint(&migrations, &texts, opts);
    let mut loaded = Loaded {
        dir: dir.to_path_buf(),
        migrations,
        findings: findings.0,
    };
    // The tables each statement locks, from lint's lock report.
    for (m, locks) in loaded.migrations.iter_mut().zip(findings.1) {
        for s in &mut m.statements {
            let mut tables: Vec<String> = locks
                .iter()
                .filter(|(line, _)| *line == s.line)
                .flat_map(|(_, t)| t.iter().cloned())
                .collect();
            tables.sort();
            tables.dedup();
            s.tables = tables;
        }
    }
    Ok(loaded)
}

/// Splits one file into statements and decides how it runs.
fn migration(path: &Path, version: String, text: &str) -> Result<Migration, ApplyError> {
    let shown = path.display().to_string();
    let split = split(text);
    let index = LineIndex::new(text);
    let at = |offset: usize| index.line_col(text, offset);
    if let Some(m) = split.meta_lines.first() {
        let (l, c) = at(m.start);
        return Err(ApplyError::Load(format!(
            "{shown}:{l}:{c}: a psql meta-command (`{}`): apply runs SQL only",
            text[m.clone()].trim()
        )));
    }
    if let Some(d) = split.copy_data.first() {
        let (l, c) = at(d.start);
        return Err(ApplyError::Load(format!(
            "{shown}:{l}:{c}: `COPY … FROM stdin` data: apply runs SQL only (load data with `INSERT`, or outside the migrations)"
        )));
    }
    let mut statements = Vec::new();
    let mut kinds = Vec::new();
    for raw in &split.statements {
        if let Some(u) = &raw.unterminated {
            let (l, c) = at(u.at);
            return Err(ApplyError::Load(format!(
                "{shown}:{l}:{c}: unterminated {}",
                u.what
            )));
        }
        let st = analyze(text, raw.span.clone());
        let (line, _) = at(raw.span.start);
        let concurrent_index = match &st.kind {
            StmtKind::CreateIndex {
                name: Some(n),
                concurrently: true,
                ..
            } => Some(n.clone()),
            _ => None,
        };
        statements.push(Stmt {
            sql: text[raw.span.clone()].to_string(),
            line,
            tables: Vec::new(),
            concurrent_index,
        });
        kinds.push(st.kind);
    }
    // Transaction control: a file may wrap itself in BEGIN … COMMIT (lockstep does that
    // anyway); anything else would fight the runner's own transactions.
    let control =
        |k: &StmtKind| matches!(k, StmtKind::Begin | StmtKind::Commit | StmtKind::Rollback);
    let n = kinds.len();
    let wraps_itself = kinds.iter().any(control);
    if wraps_itself {
        let wrapped = n >= 2
            && kinds[0] == StmtKind::Begin
            && kinds[n - 1] == StmtKind::Commit
            && !kinds[1..n - 1].iter().any(control);
        if !wrapped {
            let i = kinds.iter().position(control).unwrap_or(0);
            return Err(ApplyError::Load(format!(
                "{shown}:{}: transaction control inside the file: apply runs each file in one transaction (or each statement alone when the file holds one that cannot run in a transaction); remove its BEGIN/COMMIT, or split the file",
                statements[i].line
            )));
        }
        statements = statements[1..n - 1].to_vec();
        kinds = kinds[1..n - 1].to_vec();
    }
    let alone = kinds.iter().find_map(StmtKind::cannot_run_in_transaction);
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    let checksum = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Migration {
        version,
        path: shown,
        checksum,
        statements,
        in_transaction: alone.is_none(),
        alone,
        wraps_itself,
    })
}

/// The lock report of one file: (line, tables) per statement.
type FileLocks = Vec<(usize, Vec<String>)>;

/// Lints the files as they will run; returns the findings and each file's lock report.
fn lint(
    migrations: &[Migration],
    texts: &[String],
    opts: &LintOptions,
) -> (Vec<Finding>, Vec<FileLocks>) {
    let mut opts = opts.clone();
    opts.framework = Some(Framework::Plain);
    opts.assume_in_transaction = false;
    if let Some(i) = crate::lint::rules::index_of("missing-lock-timeout") {
        opts.severities[i] = None;
    }
    let inputs: Vec<Input> = migrations
        .iter()
        .zip(texts)
        .map(|(m, t)| Input::Stdin {
            display: m.path.clone(),
            text: if m.in_transaction && !m.wraps_itself {
                format!("{WRAP}{t}\nCOMMIT;\n").into_bytes()
            } else {
                t.clone().into_bytes()
            },
        })
        .collect();
    let reports = files::lint_all(&inputs, &opts);
    let mut findings = Vec::new();
    let mut locks = Vec::new();
    for (r, m) in reports.iter().zip(migrations) {
        let shift = if m.in_transaction && !m.wraps_itself {
            WRAP.len()
        } else {
            0
        };
        for d in &r.diagnostics {
            findings.push(Finding {
                path: m.path.clone(),
                line: d.line,
                column: if d.line == 1 {
                    d.column.saturating_sub(shift).max(1)
                } else {
                    d.column
                },
                severity: d.severity,
                rule: d.rule,
                message: d.message.clone(),
            });
        }
        if let Some(p) = &r.problem {
            findings.push(Finding {
                path: m.path.clone(),
                line: 1,
                column: 1,
                severity: if p.fatal {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                rule: "file",
                message: p.message.clone(),
            });
        }
        locks.push(
            r.locks
                .iter()
                .map(|l| {
                    (
                        l.line,
                        l.report
                            .locks
                            .iter()
                            .filter(|t| !t.via_index)
                            .map(|t| t.table.to_string())
                            .collect(),
                    )
                })
                .collect(),
        );
    }
    (findings, locks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn files_are_read_in_order_and_their_transactions_decided() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "0002_index.sql", "CREATE INDEX CONCURRENTLY items_v_idx ON items (v);\nALTER TABLE items ADD COLUMN w int;\n");
        write(
            d.path(),
            "0001_create.sql",
            "BEGIN;\nCREATE TABLE items (id bigint PRIMARY KEY, v int);\nCOMMIT;\n",
        );
        write(
            d.path(),
            "0010_fk.sql",
            "ALTER TABLE items ADD CONSTRAINT items_v_check CHECK (v > 0) NOT VALID;\n",
        );
        write(
            d.path(),
            "0010_fk.down.sql",
            "ALTER TABLE items DROP CONSTRAINT items_v_check;\n",
        );
        let l = load(d.path(), &LintOptions::default()).unwrap();
        let versions: Vec<&str> = l.migrations.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(
            versions,
            ["0001_create.sql", "0002_index.sql", "0010_fk.sql"]
        );
        let create = &l.migrations[0];
        assert!(create.in_transaction);
        assert_eq!(
            create.statements.len(),
            1,
            "its own BEGIN/COMMIT are dropped"
        );
        assert_eq!(create.statements[0].line, 2);
        let index = &l.migrations[1];
        assert!(!index.in_transaction);
        assert_eq!(index.alone, Some("CREATE INDEX CONCURRENTLY"));
        assert_eq!(
            index.statements[0].concurrent_index.as_deref(),
            Some("items_v_idx")
        );
        assert_eq!(index.statements[1].tables, vec!["items".to_string()]);
        assert_eq!(index.checksum.len(), 64);
        assert_eq!(l.errors().count(), 0, "{:?}", l.findings);
    }

    #[test]
    fn lint_sees_the_transaction_lockstep_opens() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "1_t.sql",
            "CREATE TABLE t (id int PRIMARY KEY, v int);\n",
        );
        // In one transaction, the VALIDATE scans under the ADD's ACCESS EXCLUSIVE lock.
        write(d.path(), "2_c.sql", "ALTER TABLE t ADD CONSTRAINT c CHECK (v > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\n");
        write(d.path(), "3_i.sql", "CREATE INDEX t_v ON t (v);\n");
        let l = load(d.path(), &LintOptions::default()).unwrap();
        let rules: Vec<(&str, &str, usize)> = l
            .errors()
            .map(|f| (f.path.rsplit('/').next().unwrap(), f.rule, f.line))
            .collect();
        assert!(
            rules.contains(&("2_c.sql", "validate-in-same-transaction", 2)),
            "{rules:?}"
        );
        assert!(
            rules.contains(&("3_i.sql", "create-index-non-concurrently", 1)),
            "{rules:?}"
        );
        let e = l.check_lint().unwrap_err().to_string();
        assert!(
            e.contains("--allow-lint-errors") && e.contains("3_i.sql:1:1"),
            "{e}"
        );
    }

    #[test]
    fn what_apply_cannot_run_is_refused_with_its_place() {
        let cases = [
            (
                "\\set ON_ERROR_STOP on\nSELECT 1;\n",
                "1:1: a psql meta-command",
            ),
            ("SELECT 1;\nCOMMIT;\nSELECT 2;\n", ":2: transaction control"),
            ("COPY t FROM stdin;\n1\n\\.\n", "COPY … FROM stdin"),
            ("SELECT 'x;\n", "unterminated"),
        ];
        for (text, want) in cases {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), "1_x.sql", text);
            let e = load(d.path(), &LintOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let d = tempfile::tempdir().unwrap();
        let e = load(d.path(), &LintOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no .sql files"), "{e}");
    }
}
