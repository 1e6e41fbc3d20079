//! Which framework a file is written for: its name, its directory, its marker comments.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{Direction, Framework};

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
pub(super) struct Marker<'a> {
    pub(super) line: Range<usize>,
    pub(super) text: &'a str,
}

pub(super) fn marker_lines(src: &str) -> Vec<Marker<'_>> {
    let mut out = Vec::new();
    // Only a line with `--` in it can be one: each such line, once.
    let b = src.as_bytes();
    let mut from = 0;
    while let Some(p) = memchr::memmem::find(&b[from..], b"--") {
        let dash = from + p;
        let start = memchr::memrchr(b'\n', &b[..dash]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &b[dash..]).map_or(b.len(), |i| dash + i + 1);
        if let Some(rest) = src[start..end].trim_start().strip_prefix("--") {
            out.push(Marker {
                line: start..end,
                text: rest.trim(),
            });
        }
        from = end;
    }
    out
}

pub(super) fn lower_starts(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

pub(super) fn first_line(src: &str) -> &str {
    src.trim_start_matches('\u{feff}')
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

pub(super) fn file_name(path: Option<&Path>) -> &str {
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
