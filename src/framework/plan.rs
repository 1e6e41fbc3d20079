//! How a framework runs a file: its sections, each with a direction and a transaction
//! mode, and the text each section is linted as.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::detect::*;
use super::markers::{dbmate, goose, liquibase};
use super::{DirFacts, Direction, FilePlan, Framework, Section, TxMode};

pub(super) fn whole(
    src: &str,
    direction: Direction,
    tx: TxMode,
    reason: impl Into<String>,
) -> Vec<Section> {
    vec![Section {
        keep: std::iter::once(0..src.len()).collect(),
        blank: Vec::new(),
        direction,
        tx,
        reason: reason.into(),
    }]
}

/// Reads Flyway's per-script configuration (`V1__x.sql.conf`): `executeInTransaction`.
pub(super) fn flyway_execute_in_transaction(path: Option<&Path>) -> Option<bool> {
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
pub(super) fn split_at(
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

/// The text a section is linted as: the file with every byte outside the section (and
/// every blanked range) replaced by a space, newlines kept, so byte offsets, lines and
/// columns stay those of the file. Lines holding `lockstep:` directives are kept in every
/// section, so `ignore-file` applies to all of them.
pub fn section_text(src: &str, s: &Section) -> String {
    let n = src.len();
    // Which bytes stay: the section's, less the blanked ones, and the directive lines.
    let mut stays = vec![false; n];
    let mut mark = |r: &Range<usize>, v: bool| {
        let r = r.start.min(n)..r.end.min(n);
        if r.start < r.end {
            stays[r].fill(v);
        }
    };
    for r in &s.keep {
        mark(r, true);
    }
    for r in &s.blank {
        mark(r, false);
    }
    let b = src.as_bytes();
    let mut from = 0;
    while let Some(p) = memchr::memmem::find(&b[from..], b"lockstep:") {
        let at = from + p;
        let start = memchr::memrchr(b'\n', &b[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &b[at..]).map_or(n, |i| at + i + 1);
        if src[start..end].trim_start().starts_with("--") {
            mark(&(start..end), true);
        }
        from = end;
    }
    let mut bytes = b.to_vec();
    for (c, &stay) in bytes.iter_mut().zip(&stays) {
        if !stay && *c != b'\n' {
            *c = b' ';
        }
    }
    // Only whole characters were replaced when ranges fall on character boundaries; any
    // stray continuation byte is replaced lossily rather than trusted.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
