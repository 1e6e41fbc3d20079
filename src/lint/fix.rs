//! Suggested rewrites: a fix is a list of text edits attached to a finding. Fixes are
//! applied together when they do not overlap, and shown as unified diffs.

use std::ops::Range;

use similar::TextDiff;

use super::rules::Checker;

/// Replace `span` of the file with `text` (an empty span inserts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub span: Range<usize>,
    pub text: String,
}

/// The edits that together rewrite a hazard into its safe form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub edits: Vec<Edit>,
}

impl Fix {
    pub fn new(edits: Vec<Edit>) -> Self {
        Fix { edits }
    }

    pub fn insert(at: usize, text: impl Into<String>) -> Edit {
        Edit {
            span: at..at,
            text: text.into(),
        }
    }
}

/// Applies every fix whose edits do not overlap an earlier accepted fix's edits.
/// Returns the new text and how many fixes were applied.
pub fn apply<'a>(src: &str, fixes: impl IntoIterator<Item = &'a Fix>) -> (String, usize) {
    let (out, applied) = apply_each(src, fixes);
    (out, applied.len())
}

/// [`apply`], returning the positions (in `fixes`) of the fixes that were applied.
pub fn apply_each<'a>(src: &str, fixes: impl IntoIterator<Item = &'a Fix>) -> (String, Vec<usize>) {
    let mut accepted: Vec<&Edit> = Vec::new();
    let mut applied = Vec::new();
    for (i, fix) in fixes.into_iter().enumerate() {
        let clashes = fix.edits.iter().any(|e| {
            accepted.iter().any(|a| {
                let overlap = e.span.start < a.span.end && a.span.start < e.span.end;
                // Deleting or replacing text somebody else inserts into also clashes.
                let inside = |p: usize, r: &Range<usize>| r.start < p && p < r.end;
                overlap
                    || (e.span.is_empty() && inside(e.span.start, &a.span))
                    || (a.span.is_empty() && inside(a.span.start, &e.span))
            })
        });
        let in_bounds = fix.edits.iter().all(|e| {
            e.span.start <= e.span.end
                && e.span.end <= src.len()
                && src.is_char_boundary(e.span.start)
                && src.is_char_boundary(e.span.end)
        });
        if clashes || !in_bounds {
            continue;
        }
        accepted.extend(fix.edits.iter());
        applied.push(i);
    }
    // Apply from the end so earlier offsets stay valid; inserts at one point keep order.
    let mut order: Vec<(usize, &Edit)> = accepted.into_iter().enumerate().collect();
    order.sort_by(|(ia, a), (ib, b)| {
        (b.span.start, b.span.end, ib).cmp(&(a.span.start, a.span.end, ia))
    });
    let mut out = src.to_string();
    for (_, e) in order {
        out.replace_range(e.span.clone(), &e.text);
    }
    (out, applied)
}

/// A unified diff of a file before and after its fixes.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// Start of the line holding byte `pos`.
pub fn line_start(src: &str, pos: usize) -> usize {
    src[..pos.min(src.len())].rfind('\n').map_or(0, |i| i + 1)
}

/// End of the line holding byte `pos` (before its newline).
pub fn line_end(src: &str, pos: usize) -> usize {
    src[pos.min(src.len())..]
        .find('\n')
        .map_or(src.len(), |i| pos + i)
}

/// The statement's span widened to whole lines (including the newline), when nothing
/// else shares those lines; `None` otherwise.
pub fn statement_lines(src: &str, span: &Range<usize>) -> Option<Range<usize>> {
    let start = line_start(src, span.start);
    let end = line_end(src, span.end);
    let before_blank = src[start..span.start].trim().is_empty();
    let after_blank = src[span.end..end].trim().is_empty();
    (before_blank && after_blank).then(|| start..(end + 1).min(src.len()))
}

/// Where to put a statement that must run after the current explicit transaction: the
/// line after its `COMMIT`. `None` when the transaction never ends in this file.
pub fn after_commit(cx: &Checker) -> Option<usize> {
    let (span, commit) = cx.others.end_of_transaction()?;
    if !commit {
        return None;
    }
    let end = line_end(cx.src, span.end);
    Some((end + 1).min(cx.src.len()))
}

/// True when the migration tool runs a statement that cannot run in a transaction only
/// alone in its file (golang-migrate, Prisma, Flyway) and this file holds other statements:
/// making this statement non-transactional (`CONCURRENTLY`) would break the file.
pub fn must_be_alone_but_is_not(cx: &Checker) -> bool {
    cx.ctx.alone_reason().is_some() && !cx.others.alone()
}

/// Whether this statement can be made non-transactional (`CONCURRENTLY`) in place: not in a
/// transaction the tool wraps around the file, unless the tool runs a file whose only
/// statement is non-transactional without one (Flyway), and not where it must be alone in
/// its file but is not.
pub fn can_run_outside_transaction(cx: &Checker) -> bool {
    let alone_in_file = cx.ctx.alone_reason().is_some() && cx.others.alone();
    (!cx.ctx.implicit_transaction || alone_in_file) && !must_be_alone_but_is_not(cx)
}

/// Where the help sends a statement rewritten to run outside a transaction.
pub fn outside_transaction(cx: &Checker) -> String {
    match cx.ctx.alone_reason() {
        Some(reason) if must_be_alone_but_is_not(cx) => {
            format!("alone in its own migration file ({reason})")
        }
        _ => "in a migration that does not run in a transaction".to_string(),
    }
}

/// Where a statement that must run in its own transaction after this one goes, and the
/// text to insert there; `None` when the file runs as one transaction.
pub fn place_after(cx: &Checker, statement: &str) -> Option<Edit> {
    if cx.ctx.implicit_transaction {
        return None;
    }
    let at = if cx.ctx.explicit_transaction {
        after_commit(cx)?
    } else {
        (line_end(cx.src, cx.stmt.span.end) + 1).min(cx.src.len())
    };
    let needs_newline = at == cx.src.len() && !cx.src.ends_with('\n');
    Some(Fix::insert(
        at,
        format!("{}{statement}\n", if needs_newline { "\n" } else { "" }),
    ))
}

/// `… NOT VALID` on the action, and `ALTER TABLE t VALIDATE CONSTRAINT c;` in its own
/// transaction after it.
pub fn not_valid_then_validate(
    cx: &Checker,
    action: &crate::sql::ir::Action,
    table: &crate::sql::ir::ObjName,
    constraint: &str,
) -> Option<Fix> {
    let validate = format!(
        "ALTER TABLE {table} VALIDATE CONSTRAINT {};",
        crate::sql::ir::quote_ident(constraint)
    );
    Some(Fix::new(vec![
        Fix::insert(action.span.end, " NOT VALID"),
        place_after(cx, &validate)?,
    ]))
}

/// The SQL of a constraint name built from a table and a column, as PostgreSQL would name
/// it: truncated to 63 bytes.
pub fn constraint_name(table: &str, column: &str, suffix: &str) -> String {
    let mut base = format!("{table}_{column}");
    let max = 63 - suffix.len() - 1;
    while base.len() > max {
        base.pop();
    }
    format!("{base}_{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_fixes_are_skipped_and_inserts_keep_order() {
        let src = "abcdef";
        let a = Fix::new(vec![Fix::insert(1, "X"), Fix::insert(1, "Y")]);
        let b = Fix::new(vec![Edit {
            span: 0..3,
            text: "Z".into(),
        }]);
        let c = Fix::new(vec![Edit {
            span: 4..5,
            text: "".into(),
        }]);
        let (out, n) = apply(src, [&a, &b, &c]);
        assert_eq!(n, 2);
        assert_eq!(out, "aXYbcdf");
        assert_eq!(apply_each(src, [&a, &b, &c]), (out, vec![0, 2]));
    }

    #[test]
    fn diff_has_headers_and_changes() {
        let d = unified_diff("m.sql", "a\nb\n", "a\nc\n");
        assert!(d.contains("--- a/m.sql") && d.contains("+++ b/m.sql"));
        assert!(d.contains("-b\n") && d.contains("+c\n"));
    }

    #[test]
    fn names_are_truncated_to_63_bytes() {
        let n = constraint_name(&"t".repeat(60), "col", "not_null");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with("_not_null"));
    }
}
