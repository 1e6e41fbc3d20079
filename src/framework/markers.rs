//! Frameworks that mark sections with comments in the file: goose (`-- +goose Up`),
//! dbmate (`-- migrate:up`) and Liquibase formatted SQL (`--changeset`, `--rollback`).

use super::detect::*;
use super::plan::{split_at, whole};
use super::{Direction, Section, TxMode};

pub(super) fn goose(src: &str) -> Vec<Section> {
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

pub(super) fn dbmate(src: &str) -> Vec<Section> {
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

pub(super) const ROLLBACK_OPENER: &str = "/* liquibase rollback";

/// Liquibase formatted SQL: each `--changeset` is a section; its `--rollback` lines (and
/// `/* liquibase rollback … */` blocks) form a down section of their own.
pub(super) fn liquibase(src: &str) -> Vec<Section> {
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
