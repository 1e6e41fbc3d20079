//! Migration frameworks: which tool a file is written for, how that tool runs it (in one
//! transaction or not), and which parts of the file are "up" and which "down".
//!
//! Detection looks at the file name, the directory (marker files such as `sqitch.plan` or
//! `atlas.sum`) and marker comments in the text. The result is a [`FilePlan`]: the framework
//! and the file's sections, each with its direction and transaction mode, and the reason,
//! so findings can say *why* a statement runs in a transaction and how to change that.
//!
//! | framework | recognised by | transaction per file | down part |
//! |---|---|---|---|
//! | Flyway | `V1__x.sql`, `U1__x.sql`, `R__x.sql` | yes, unless `executeInTransaction=false` in `V1__x.sql.conf`, or the file holds a statement Flyway runs outside transactions (`CREATE INDEX CONCURRENTLY` …) | `U` scripts |
//! | golang-migrate | `1_x.up.sql` / `1_x.down.sql` | one implicit transaction when the file has several statements | `.down.sql` |
//! | goose | `-- +goose Up` | yes, unless `-- +goose NO TRANSACTION` | `-- +goose Down` |
//! | dbmate | `-- migrate:up` | yes, unless `transaction:false` on the marker | `-- migrate:down` |
//! | sqlx | `1_x.sql`, `1_x.up.sql` in a Rust project that depends on sqlx, or `-- no-transaction` | yes, unless the first line is `-- no-transaction` | `.down.sql` |
//! | diesel | `…/up.sql`, `…/down.sql` | yes, unless `run_in_transaction = false` in `metadata.toml` | `down.sql` |
//! | Prisma | `migrations/<name>/migration.sql` | one implicit transaction when the file has several statements | — |
//! | Liquibase | `--liquibase formatted sql` | per changeset, unless `runInTransaction:false` | `--rollback` lines |
//! | Atlas | `atlas.sum` beside the file, or `-- atlas:` directives | yes, unless `-- atlas:txmode none` | — |
//! | sqitch | `deploy/`, `revert/`, `verify/` under a `sqitch.plan` | no (scripts hold their own `BEGIN`/`COMMIT`) | `revert/` |

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A migration tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framework {
    /// No framework: plain SQL files, run as written (`assume_in_transaction` decides).
    Plain,
    Flyway,
    GolangMigrate,
    Goose,
    Dbmate,
    Sqlx,
    Diesel,
    Prisma,
    Liquibase,
    Atlas,
    Sqitch,
}

/// Every framework, for listings and "did you mean".
pub const ALL: [Framework; 11] = [
    Framework::Plain,
    Framework::Flyway,
    Framework::GolangMigrate,
    Framework::Goose,
    Framework::Dbmate,
    Framework::Sqlx,
    Framework::Diesel,
    Framework::Prisma,
    Framework::Liquibase,
    Framework::Atlas,
    Framework::Sqitch,
];

impl Framework {
    /// The name used in config files, flags and reports.
    pub fn name(self) -> &'static str {
        match self {
            Framework::Plain => "none",
            Framework::Flyway => "flyway",
            Framework::GolangMigrate => "golang-migrate",
            Framework::Goose => "goose",
            Framework::Dbmate => "dbmate",
            Framework::Sqlx => "sqlx",
            Framework::Diesel => "diesel",
            Framework::Prisma => "prisma",
            Framework::Liquibase => "liquibase",
            Framework::Atlas => "atlas",
            Framework::Sqitch => "sqitch",
        }
    }

    pub fn parse(s: &str) -> Option<Framework> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "plain" => "none",
            "migrate" | "golang_migrate" => "golang-migrate",
            other => other,
        };
        ALL.into_iter().find(|f| f.name() == s)
    }

    /// Why this framework fails a statement that cannot run in a transaction block unless
    /// it is the only statement of its file (section `tx`), if it does.
    pub fn alone_reason(self, tx: TxMode) -> Option<&'static str> {
        match (self, tx) {
            (Framework::GolangMigrate, TxMode::Implicit) => Some(
                "golang-migrate sends a file as one multi-statement query, which PostgreSQL runs in one implicit transaction when it holds more than one statement",
            ),
            (Framework::Prisma, TxMode::Implicit) => Some(
                "Prisma sends a file as one multi-statement script, which PostgreSQL runs in one implicit transaction when it holds more than one statement",
            ),
            (Framework::Flyway, _) => Some(
                "Flyway refuses a script that mixes statements that cannot run in a transaction with other statements, unless `mixed` is turned on in its configuration",
            ),
            _ => None,
        }
    }

    /// How to make a file of this framework run outside a transaction.
    pub fn no_transaction_hint(self) -> &'static str {
        match self {
            Framework::Plain => {
                "move it to its own migration that is not wrapped in a transaction (mark it non-transactional for your migration tool)"
            }
            Framework::Flyway => {
                "move it to its own migration and set `executeInTransaction=false` in that script's `.sql.conf` file"
            }
            Framework::GolangMigrate | Framework::Prisma => {
                "move it to its own migration file, alone: a file with a single statement does not run in a transaction block"
            }
            Framework::Goose => {
                "move it to its own migration and add `-- +goose NO TRANSACTION` at the top of that file"
            }
            Framework::Dbmate => {
                "move it to its own migration and write `-- migrate:up transaction:false`"
            }
            Framework::Sqlx => {
                "move it to its own migration whose first line is `-- no-transaction`"
            }
            Framework::Diesel => {
                "move it to its own migration with `run_in_transaction = false` in that migration's `metadata.toml`"
            }
            Framework::Liquibase => {
                "move it to its own changeset with `runInTransaction:false`"
            }
            Framework::Atlas => {
                "move it to its own migration file starting with `-- atlas:txmode none`"
            }
            Framework::Sqitch => "move it out of the script's `BEGIN … COMMIT`",
        }
    }
}

impl std::fmt::Display for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way a section migrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    /// Down, undo, revert or rollback SQL: linted on its own, never replayed into the schema.
    Down,
    /// sqitch verify scripts: linted like down sections.
    Verify,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Verify => "verify",
        }
    }
}

/// How the migration tool runs a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// Wrapped in one transaction by the tool.
    Wrapped,
    /// Sent as one multi-statement query: one implicit transaction when it holds more than
    /// one statement, none when it holds one.
    Implicit,
    /// Run statement by statement (autocommit), or as written.
    None,
    /// Flyway: wrapped, unless a statement in it cannot run in a transaction, in which case
    /// Flyway runs the whole script without one.
    FlywayAuto,
    /// No framework: `assume_in_transaction` decides.
    Default,
}

/// A part of a file that the tool runs as a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Byte ranges of the file that belong to this section.
    pub keep: Vec<Range<usize>>,
    /// Byte ranges inside `keep` to blank out before parsing (comment prefixes such as
    /// Liquibase's `--rollback`, whose SQL follows them on the same line).
    pub blank: Vec<Range<usize>>,
    pub direction: Direction,
    pub tx: TxMode,
    /// Why the tool runs the section this way, for messages (`goose wraps each migration in a
    /// transaction`).
    pub reason: String,
}

/// How a file will be run by its migration tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub framework: Framework,
    pub sections: Vec<Section>,
}

impl FilePlan {
    /// The file is one plain up section covering everything.
    pub fn is_whole_file(&self, len: usize) -> bool {
        matches!(self.sections.as_slice(), [s] if matches!(s.keep.as_slice(), [r] if *r == (0..len)) && s.blank.is_empty() && s.direction == Direction::Up)
    }
}

/// Facts about a directory that help detection (computed once per directory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirFacts {
    /// `atlas.sum` in the directory.
    pub atlas_sum: bool,
    /// `migration_lock.toml` in the parent directory (Prisma).
    pub prisma_lock: bool,
    /// `Cargo.toml` in the parent directory that depends on sqlx.
    pub sqlx_project: bool,
    /// `sqitch.plan` in the parent directory, and this directory is `deploy`, `revert` or
    /// `verify`.
    pub sqitch: Option<Direction>,
    /// `metadata.toml` in the directory says `run_in_transaction = false` (diesel).
    pub diesel_no_tx: bool,
}

impl DirFacts {
    /// Looks at `dir` (the directory of a migration file).
    pub fn of(dir: &Path) -> DirFacts {
        let parent = dir.parent();
        let in_parent = |name: &str| parent.is_some_and(|p| p.join(name).is_file());
        let sqitch = match dir.file_name().and_then(|n| n.to_str()) {
            Some("deploy") => Some(Direction::Up),
            Some("revert") => Some(Direction::Down),
            Some("verify") => Some(Direction::Verify),
            _ => None,
        }
        .filter(|_| in_parent("sqitch.plan") || in_parent("sqitch.conf"));
        let diesel_no_tx = std::fs::read_to_string(dir.join("metadata.toml"))
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("run_in_transaction").and_then(|v| v.as_bool()))
            == Some(false);
        DirFacts {
            atlas_sum: dir.join("atlas.sum").is_file(),
            prisma_lock: in_parent("migration_lock.toml"),
            sqlx_project: parent
                .and_then(|p| std::fs::read_to_string(p.join("Cargo.toml")).ok())
                .is_some_and(|t| t.contains("sqlx")),
            sqitch,
            diesel_no_tx,
        }
    }
}

/// Directory facts for many files, each directory looked at once.
#[derive(Debug, Default)]
pub struct DirCache {
    dirs: HashMap<PathBuf, DirFacts>,
}

impl DirCache {
    pub fn get(&mut self, file: &Path) -> DirFacts {
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        *self.dirs.entry(dir).or_insert_with_key(|d| DirFacts::of(d))
    }
}

/// A marker comment line: its byte range and the text after `--`, trimmed.
struct Marker<'a> {
    line: Range<usize>,
    text: &'a str,
}

fn marker_lines(src: &str) -> Vec<Marker<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for line in src.split_inclusive('\n') {
        let end = start + line.len();
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("--") {
            out.push(Marker {
                line: start..end,
                text: rest.trim(),
            });
        }
        start = end;
    }
    out
}

fn lower_starts(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn first_line(src: &str) -> &str {
    src.trim_start_matches('\u{feff}')
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

fn file_name(path: Option<&Path>) -> &str {
    path.and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("")
}

/// `V1__x.sql`, `V1.2_3__x.sql`, `U1__x.sql`, `R__x.sql` (case as Flyway's defaults).
pub(crate) fn flyway_kind(name: &str) -> Option<Direction> {
    let stem = name.strip_suffix(".sql")?;
    let (head, desc) = stem.split_once("__")?;
    if desc.is_empty() {
        return None;
    }
    let mut chars = head.chars();
    let dir = match chars.next()? {
        'V' => Direction::Up,
        'U' => Direction::Down,
        'R' => return head.len().eq(&1).then_some(Direction::Up),
        _ => return None,
    };
    let version = chars.as_str();
    (!version.is_empty()
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '_'))
    .then_some(dir)
}

/// `<digits>_<name>[.up|.down].sql`: the direction (None when no `.up`/`.down`).
pub(crate) fn numbered(name: &str) -> Option<Option<Direction>> {
    let stem = name.strip_suffix(".sql")?;
    let (num, rest) = stem.split_once('_')?;
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    Some(if rest.ends_with(".up") {
        Some(Direction::Up)
    } else if rest.ends_with(".down") {
        Some(Direction::Down)
    } else {
        None
    })
}

/// The name shared by the up and the down file of one migration, for frameworks that keep
/// them in separate files: diesel's folder (`up.sql`/`down.sql`), the `N_x` of
/// `N_x.up.sql`/`N_x.down.sql` (golang-migrate, sqlx), Flyway's version of
/// `V1__x.sql`/`U1__x.sql`, sqitch's `deploy/x.sql`/`revert/x.sql`; `None` for the others.
pub fn migration_key(path: &Path, framework: Framework) -> Option<String> {
    let name = file_name(Some(path));
    let dir = path.parent().unwrap_or(Path::new(""));
    if framework == Framework::Sqitch {
        return Some(dir.parent()?.join(name).to_string_lossy().into_owned());
    }
    if name == "up.sql" || name == "down.sql" {
        return Some(dir.to_string_lossy().into_owned());
    }
    if let Some(stem) = name
        .strip_suffix(".up.sql")
        .or_else(|| name.strip_suffix(".down.sql"))
    {
        return Some(dir.join(stem).to_string_lossy().into_owned());
    }
    flyway_kind(name)?;
    let (head, _) = name.split_once("__")?;
    let version = head.get(1..).filter(|v| !v.is_empty())?;
    Some(format!("{}\0{version}", dir.to_string_lossy()))
}

/// Recognises the framework of one file. `path` is None for standard input.
pub fn detect(path: Option<&Path>, src: &str, dir: DirFacts) -> Framework {
    let first = first_line(src);
    if lower_starts(
        first.trim_start_matches('-').trim(),
        "liquibase formatted sql",
    ) {
        return Framework::Liquibase;
    }
    let markers = marker_lines(src);
    let has = |prefix: &str| markers.iter().any(|m| lower_starts(m.text, prefix));
    if has("+goose up") || has("+goose down") {
        return Framework::Goose;
    }
    if has("migrate:up") || has("migrate:down") {
        return Framework::Dbmate;
    }
    // `-- atlas:nolint` and friends also appear in files that Atlas generated and another
    // tool runs: a golang-migrate name without `atlas.sum` beside it is golang-migrate's.
    let golang_migrate_name = matches!(numbered(file_name(path)), Some(Some(_)));
    if dir.atlas_sum || (has("atlas:") && !golang_migrate_name) {
        return Framework::Atlas;
    }
    if dir.sqitch.is_some() {
        return Framework::Sqitch;
    }
    let name = file_name(path);
    if name == "migration.sql" && dir.prisma_lock {
        return Framework::Prisma;
    }
    if name == "up.sql" || name == "down.sql" {
        return Framework::Diesel;
    }
    if flyway_kind(name).is_some() {
        return Framework::Flyway;
    }
    if let Some(direction) = numbered(name) {
        let sqlx_marker = first.eq_ignore_ascii_case("-- no-transaction");
        return match direction {
            _ if sqlx_marker || dir.sqlx_project => Framework::Sqlx,
            Some(_) => Framework::GolangMigrate,
            None => Framework::Plain,
        };
    }
    if name == "migration.sql" {
        return Framework::Prisma;
    }
    Framework::Plain
}

fn whole(src: &str, direction: Direction, tx: TxMode, reason: impl Into<String>) -> Vec<Section> {
    vec![Section {
        keep: std::iter::once(0..src.len()).collect(),
        blank: Vec::new(),
        direction,
        tx,
        reason: reason.into(),
    }]
}

/// Reads Flyway's per-script configuration (`V1__x.sql.conf`): `executeInTransaction`.
fn flyway_execute_in_transaction(path: Option<&Path>) -> Option<bool> {
    let path = path?;
    let mut conf = path.as_os_str().to_owned();
    conf.push(".conf");
    let text = std::fs::read_to_string(PathBuf::from(conf)).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "executeInTransaction").then(|| !v.trim().eq_ignore_ascii_case("false"))
    })
}

/// Plans how `framework` runs the file at `path` with text `src`.
pub fn plan(framework: Framework, path: Option<&Path>, src: &str, dir: DirFacts) -> FilePlan {
    let name = file_name(path);
    let sections = match framework {
        Framework::Plain => whole(src, Direction::Up, TxMode::Default, ""),
        Framework::Flyway => {
            let direction = flyway_kind(name).unwrap_or(Direction::Up);
            match flyway_execute_in_transaction(path) {
                Some(false) => whole(
                    src,
                    direction,
                    TxMode::None,
                    "`executeInTransaction=false` in the script's `.sql.conf`",
                ),
                _ => whole(
                    src,
                    direction,
                    TxMode::FlywayAuto,
                    "Flyway runs each migration in a transaction",
                ),
            }
        }
        Framework::GolangMigrate => whole(
            src,
            numbered(name).flatten().unwrap_or(Direction::Up),
            TxMode::Implicit,
            "golang-migrate sends the file as one multi-statement query, which runs as one implicit transaction",
        ),
        Framework::Prisma => whole(
            src,
            Direction::Up,
            TxMode::Implicit,
            "Prisma sends the file as one multi-statement script, which runs as one implicit transaction",
        ),
        Framework::Sqlx => {
            let direction = numbered(name).flatten().unwrap_or(Direction::Up);
            if first_line(src).eq_ignore_ascii_case("-- no-transaction") {
                whole(src, direction, TxMode::None, "`-- no-transaction`")
            } else {
                whole(
                    src,
                    direction,
                    TxMode::Wrapped,
                    "sqlx runs each migration in a transaction",
                )
            }
        }
        Framework::Diesel => {
            let direction = if name == "down.sql" {
                Direction::Down
            } else {
                Direction::Up
            };
            if dir.diesel_no_tx {
                whole(
                    src,
                    direction,
                    TxMode::None,
                    "`run_in_transaction = false` in `metadata.toml`",
                )
            } else {
                whole(
                    src,
                    direction,
                    TxMode::Wrapped,
                    "diesel runs each migration in a transaction",
                )
            }
        }
        Framework::Atlas => {
            let none = marker_lines(src).iter().any(|m| {
                lower_starts(m.text, "atlas:txmode")
                    && m.text["atlas:txmode".len()..].trim().eq_ignore_ascii_case("none")
            });
            if none {
                whole(src, Direction::Up, TxMode::None, "`-- atlas:txmode none`")
            } else {
                whole(
                    src,
                    Direction::Up,
                    TxMode::Wrapped,
                    "Atlas runs each migration file in a transaction",
                )
            }
        }
        Framework::Sqitch => whole(
            src,
            dir.sqitch.unwrap_or(Direction::Up),
            TxMode::None,
            "sqitch runs the script as written",
        ),
        Framework::Goose => goose(src),
        Framework::Dbmate => dbmate(src),
        Framework::Liquibase => liquibase(src),
    };
    FilePlan {
        framework,
        sections,
    }
}

/// Splits at marker lines: each `(line range, direction, tx, reason)` starts a section that
/// runs to the next marker; text before the first marker joins the first section.
fn split_at(
    src: &str,
    starts: Vec<(Range<usize>, Direction, TxMode, String)>,
    default_tx: TxMode,
    default_reason: &str,
) -> Vec<Section> {
    if starts.is_empty() {
        return whole(src, Direction::Up, default_tx, default_reason);
    }
    let mut out = Vec::new();
    for (i, (line, direction, tx, reason)) in starts.iter().enumerate() {
        let begin = if i == 0 { 0 } else { line.start };
        let end = starts.get(i + 1).map_or(src.len(), |n| n.0.start);
        out.push(Section {
            keep: std::iter::once(begin..end).collect(),
            blank: Vec::new(),
            direction: *direction,
            tx: *tx,
            reason: reason.clone(),
        });
    }
    out
}

fn goose(src: &str) -> Vec<Section> {
    let markers = marker_lines(src);
    let no_tx = markers
        .iter()
        .any(|m| lower_starts(m.text, "+goose no transaction"));
    let (tx, reason) = if no_tx {
        (TxMode::None, "`-- +goose NO TRANSACTION`")
    } else {
        (
            TxMode::Wrapped,
            "goose runs each migration in a transaction",
        )
    };
    let starts = markers
        .iter()
        .filter_map(|m| {
            let d = if lower_starts(m.text, "+goose up") {
                Direction::Up
            } else if lower_starts(m.text, "+goose down") {
                Direction::Down
            } else {
                return None;
            };
            Some((m.line.clone(), d, tx, reason.to_string()))
        })
        .collect();
    split_at(src, starts, tx, reason)
}

fn dbmate(src: &str) -> Vec<Section> {
    let starts = marker_lines(src)
        .iter()
        .filter_map(|m| {
            let (d, rest) = if lower_starts(m.text, "migrate:up") {
                (Direction::Up, &m.text["migrate:up".len()..])
            } else if lower_starts(m.text, "migrate:down") {
                (Direction::Down, &m.text["migrate:down".len()..])
            } else {
                return None;
            };
            let no_tx = rest
                .split_whitespace()
                .any(|opt| opt.eq_ignore_ascii_case("transaction:false"));
            Some(if no_tx {
                (
                    m.line.clone(),
                    d,
                    TxMode::None,
                    "`transaction:false`".to_string(),
                )
            } else {
                (
                    m.line.clone(),
                    d,
                    TxMode::Wrapped,
                    "dbmate runs each migration in a transaction".to_string(),
                )
            })
        })
        .collect();
    split_at(
        src,
        starts,
        TxMode::Wrapped,
        "dbmate runs each migration in a transaction",
    )
}

const ROLLBACK_OPENER: &str = "/* liquibase rollback";

/// Liquibase formatted SQL: each `--changeset` is a section; its `--rollback` lines (and
/// `/* liquibase rollback … */` blocks) form a down section of their own.
fn liquibase(src: &str) -> Vec<Section> {
    // Line ranges of every line, with the text after leading spaces.
    let mut lines = Vec::new();
    let mut start = 0;
    for line in src.split_inclusive('\n') {
        lines.push((start..start + line.len(), line));
        start += line.len();
    }
    let mut out: Vec<Section> = Vec::new();
    let mut up: Option<Section> = None;
    let mut down: Option<Section> = None;
    let mut in_rollback_block = false;
    let flush = |out: &mut Vec<Section>, up: &mut Option<Section>, down: &mut Option<Section>| {
        out.extend(up.take());
        out.extend(down.take().filter(|d| !d.keep.is_empty()));
    };
    for (range, line) in lines {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        let dashes = t.strip_prefix("--").map(str::trim_start);
        if in_rollback_block {
            // The block is a comment in the up section: keep it there too.
            if let Some(last) = up.as_mut().and_then(|u| u.keep.last_mut()) {
                last.end = range.end;
            }
            let close = t.trim_end().ends_with("*/");
            if let Some(d) = down.as_mut() {
                if close {
                    let body_end = range.start + indent + t.trim_end().len() - 2;
                    d.keep.push(range.start..range.end);
                    d.blank.push(body_end..body_end + 2);
                } else {
                    d.keep.push(range.clone());
                }
            }
            in_rollback_block = !close;
            continue;
        }
        if let Some(rest) = dashes.filter(|r| lower_starts(r, "changeset")) {
            flush(&mut out, &mut up, &mut down);
            let no_tx = rest
                .split_whitespace()
                .any(|o| o.eq_ignore_ascii_case("runInTransaction:false"));
            let (tx, reason) = if no_tx {
                (TxMode::None, "`runInTransaction:false` on the changeset")
            } else {
                (
                    TxMode::Wrapped,
                    "Liquibase runs each changeset in a transaction",
                )
            };
            let begin = if out.is_empty() { 0 } else { range.start };
            up = Some(Section {
                keep: std::iter::once(begin..range.end).collect(),
                blank: Vec::new(),
                direction: Direction::Up,
                tx,
                reason: reason.into(),
            });
            down = Some(Section {
                keep: Vec::new(),
                blank: Vec::new(),
                direction: Direction::Down,
                tx,
                reason: reason.into(),
            });
            continue;
        }
        if let Some(rest) = dashes.filter(|r| lower_starts(r, "rollback")) {
            if let Some(d) = down.as_mut() {
                let body = rest["rollback".len()..].trim_start();
                let prefix_end = range.start + (line.len() - body.len());
                if !body.trim().is_empty() {
                    d.keep.push(range.clone());
                    d.blank.push(range.start..prefix_end);
                }
            }
            // The line stays in the up section too: it is a comment there.
        }
        if lower_starts(t, ROLLBACK_OPENER) {
            if let Some(d) = down.as_mut() {
                let at = range.start + indent;
                let opener = at..at + ROLLBACK_OPENER.len();
                let rest = &t[ROLLBACK_OPENER.len()..];
                let close = rest.trim_end().ends_with("*/");
                d.keep.push(range.clone());
                d.blank.push(opener);
                if close {
                    let body_end = range.start + indent + t.trim_end().len() - 2;
                    d.blank.push(body_end..body_end + 2);
                }
                in_rollback_block = !close;
            }
        }
        match up.as_mut() {
            Some(u) => {
                if let Some(last) = u.keep.last_mut() {
                    last.end = range.end;
                }
            }
            None => {
                // Text before the first changeset: a header of comments.
                up = Some(Section {
                    keep: std::iter::once(0..range.end).collect(),
                    blank: Vec::new(),
                    direction: Direction::Up,
                    tx: TxMode::Wrapped,
                    reason: "Liquibase runs each changeset in a transaction".into(),
                });
            }
        }
    }
    flush(&mut out, &mut up, &mut down);
    // The header before the first changeset belongs to the first changeset.
    if out.len() >= 2 && out[0].direction == Direction::Up && out[1].direction == Direction::Up {
        let header = out.remove(0);
        if let (Some(h), Some(first)) = (header.keep.first(), out[0].keep.first_mut()) {
            first.start = h.start;
        }
    }
    if out.is_empty() {
        return whole(
            src,
            Direction::Up,
            TxMode::Wrapped,
            "Liquibase runs each changeset in a transaction",
        );
    }
    out
}

/// The text a section is linted as: the file with every byte outside the section (and
/// every blanked range) replaced by a space, newlines kept, so byte offsets, lines and
/// columns stay those of the file. Lines holding `lockstep:` directives are kept in every
/// section, so `ignore-file` applies to all of them.
pub fn section_text(src: &str, s: &Section) -> String {
    let mut bytes = src.as_bytes().to_vec();
    let keep =
        |i: usize| s.keep.iter().any(|r| r.contains(&i)) && !s.blank.iter().any(|r| r.contains(&i));
    let mut directive_lines: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    for line in src.split_inclusive('\n') {
        if line.trim_start().starts_with("--") && line.contains("lockstep:") {
            directive_lines.push(start..start + line.len());
        }
        start += line.len();
    }
    for (i, b) in bytes.iter_mut().enumerate() {
        if *b != b'\n' && !keep(i) && !directive_lines.iter().any(|r| r.contains(&i)) {
            *b = b' ';
        }
    }
    // Only whole characters were replaced when ranges fall on character boundaries; any
    // stray continuation byte is replaced lossily rather than trusted.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<&Path> {
        Some(Path::new(s))
    }

    #[test]
    fn detects_by_name_and_markers() {
        let d = DirFacts::default();
        assert_eq!(detect(p("db/V1__init.sql"), "", d), Framework::Flyway);
        assert_eq!(detect(p("db/V1.2_3__init.sql"), "", d), Framework::Flyway);
        assert_eq!(detect(p("db/R__views.sql"), "", d), Framework::Flyway);
        assert_eq!(detect(p("db/Vx__init.sql"), "", d), Framework::Plain);
        assert_eq!(detect(p("m/1_a.up.sql"), "", d), Framework::GolangMigrate);
        assert_eq!(
            detect(p("m/1_a.up.sql"), "-- no-transaction\nSELECT 1;", d),
            Framework::Sqlx
        );
        let rust = DirFacts {
            sqlx_project: true,
            ..d
        };
        assert_eq!(detect(p("m/20240101_a.sql"), "", rust), Framework::Sqlx);
        assert_eq!(detect(p("m/20240101_a.sql"), "", d), Framework::Plain);
        assert_eq!(
            detect(p("x.sql"), "-- +goose Up\nSELECT 1;", d),
            Framework::Goose
        );
        assert_eq!(
            detect(p("x.sql"), "-- migrate:up\nSELECT 1;", d),
            Framework::Dbmate
        );
        assert_eq!(
            detect(p("x.sql"), "--liquibase formatted sql\n", d),
            Framework::Liquibase
        );
        assert_eq!(
            detect(p("x.sql"), "-- atlas:txmode none\n", d),
            Framework::Atlas
        );
        // Generated by Atlas, run by golang-migrate.
        assert_eq!(
            detect(p("m/1_a.up.sql"), "-- atlas:nolint DS103\nSELECT 1;", d),
            Framework::GolangMigrate
        );
        let atlas_dir = DirFacts {
            atlas_sum: true,
            ..d
        };
        assert_eq!(detect(p("m/1_a.up.sql"), "", atlas_dir), Framework::Atlas);
        assert_eq!(
            detect(p("m/2024-01-01-000000_a/up.sql"), "", d),
            Framework::Diesel
        );
        assert_eq!(
            detect(p("m/20240101_a/migration.sql"), "", d),
            Framework::Prisma
        );
        assert_eq!(detect(None, "SELECT 1;", d), Framework::Plain);
    }

    #[test]
    fn goose_sections_and_no_transaction() {
        let src = "-- header\n-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n";
        let plan = plan(Framework::Goose, None, src, DirFacts::default());
        assert_eq!(plan.sections.len(), 2);
        assert_eq!(plan.sections[0].direction, Direction::Up);
        assert_eq!(plan.sections[0].keep.len(), 1);
        assert_eq!(plan.sections[0].keep[0], 0..33);
        assert_eq!(plan.sections[1].direction, Direction::Down);
        assert_eq!(
            &src[plan.sections[1].keep[0].clone()],
            "-- +goose Down\nSELECT 2;\n"
        );
        assert_eq!(plan.sections[0].tx, TxMode::Wrapped);
        let src = "-- +goose NO TRANSACTION\n-- +goose Up\nSELECT 1;\n";
        let plan = super::plan(Framework::Goose, None, src, DirFacts::default());
        assert!(plan.sections.iter().all(|s| s.tx == TxMode::None));
    }

    #[test]
    fn dbmate_transaction_option_per_section() {
        let src = "-- migrate:up transaction:false\nSELECT 1;\n-- migrate:down\nSELECT 2;\n";
        let plan = plan(Framework::Dbmate, None, src, DirFacts::default());
        assert_eq!(plan.sections[0].tx, TxMode::None);
        assert_eq!(plan.sections[1].tx, TxMode::Wrapped);
        assert_eq!(plan.sections[1].direction, Direction::Down);
    }

    #[test]
    fn liquibase_changesets_and_rollbacks() {
        let src = "--liquibase formatted sql\n\
                   --changeset a:1\n\
                   CREATE TABLE t (id int);\n\
                   --rollback DROP TABLE t;\n\
                   --changeset a:2 runInTransaction:false\n\
                   CREATE INDEX CONCURRENTLY i ON t (id);\n\
                   /* liquibase rollback\n\
                   DROP INDEX CONCURRENTLY i;\n\
                   */\n";
        let plan = plan(Framework::Liquibase, None, src, DirFacts::default());
        let dirs: Vec<(Direction, TxMode)> =
            plan.sections.iter().map(|s| (s.direction, s.tx)).collect();
        assert_eq!(
            dirs,
            vec![
                (Direction::Up, TxMode::Wrapped),
                (Direction::Down, TxMode::Wrapped),
                (Direction::Up, TxMode::None),
                (Direction::Down, TxMode::None),
            ]
        );
        let down1 = section_text(src, &plan.sections[1]);
        assert_eq!(down1.trim(), "DROP TABLE t;");
        assert_eq!(down1.len(), src.len());
        let down2 = section_text(src, &plan.sections[3]);
        assert_eq!(down2.trim(), "DROP INDEX CONCURRENTLY i;");
        let up1 = section_text(src, &plan.sections[0]);
        assert!(up1.contains("CREATE TABLE t") && !up1.contains("CREATE INDEX"));
        assert!(
            up1.starts_with("--liquibase"),
            "the header joins changeset 1"
        );
    }

    #[test]
    fn section_text_keeps_offsets_and_directives() {
        let src =
            "-- lockstep: ignore-file x\n-- +goose Up\nSELECT 'é';\n-- +goose Down\nSELECT 2;\n";
        let plan = plan(Framework::Goose, None, src, DirFacts::default());
        let down = section_text(src, &plan.sections[1]);
        assert_eq!(down.len(), src.len());
        assert!(down.starts_with("-- lockstep: ignore-file x\n"));
        assert!(!down.contains("SELECT 'é'"));
        assert_eq!(down.matches('\n').count(), src.matches('\n').count());
    }

    #[test]
    fn names_round_trip() {
        for f in ALL {
            assert_eq!(Framework::parse(f.name()), Some(f));
        }
        assert_eq!(Framework::parse("Goose"), Some(Framework::Goose));
        assert_eq!(Framework::parse("rails"), None);
    }
}
