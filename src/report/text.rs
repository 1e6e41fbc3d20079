//! The default, compiler-style text output.

use std::io::{self, Write};

use super::Summary;
use crate::files::FileReport;
use crate::lint::{Diagnostic, Severity};
use crate::sql::LineIndex;

/// At most this many source lines are shown for one finding.
const MAX_LINES: usize = 8;
/// Longer source lines are shown as a window of about this many bytes around the finding.
const MAX_WIDTH: usize = 200;
/// How much of a long line the window shows before the finding.
const LEAD: usize = 60;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn severity_code(sev: Severity) -> &'static str {
        match sev {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Note => "1;36",
        }
    }
}

/// Writes the findings and problems of one file.
pub fn write_file(out: &mut dyn Write, r: &FileReport, style: Style) -> io::Result<()> {
    if let Some(p) = &r.problem {
        let (label, code) = if p.fatal {
            ("error", "1;31")
        } else {
            ("warning", "1;33")
        };
        writeln!(
            out,
            "{}: {}: {}",
            style.paint(code, label),
            r.path,
            p.message
        )?;
        if p.fatal || r.diagnostics.is_empty() {
            writeln!(out)?;
        }
    }
    if r.diagnostics.is_empty() {
        return Ok(());
    }
    let index = LineIndex::new(&r.source);
    for d in &r.diagnostics {
        write_diagnostic(out, r, &index, d, style)?;
    }
    Ok(())
}

fn write_diagnostic(
    out: &mut dyn Write,
    r: &FileReport,
    index: &LineIndex,
    d: &Diagnostic,
    style: Style,
) -> io::Result<()> {
    let code = Style::severity_code(d.severity);
    writeln!(
        out,
        "{}{}: {}",
        style.paint(code, d.severity.as_str()),
        style.paint("1", &format!("[{}]", d.rule)),
        d.message
    )?;
    let (first, last) = match d.statement_lines {
        Some((a, b)) => (a.min(d.line), b.max(d.end_line)),
        None => (d.line, d.end_line),
    };
    let width = last.to_string().len();
    let pad = " ".repeat(width);
    writeln!(
        out,
        "{pad}{} {}:{}:{}",
        style.paint("1;34", "-->"),
        r.path,
        d.line,
        d.column
    )?;
    writeln!(out, "{pad} {}", style.paint("1;34", "|"))?;
    let shown: Vec<usize> = if last - first >= MAX_LINES {
        // Keep the lines of the finding plus the statement's first line.
        (first..=last)
            .filter(|&l| l == first || (l >= d.line && l <= d.end_line))
            .take(MAX_LINES)
            .collect()
    } else {
        (first..=last).collect()
    };
    let mut prev = None;
    for l in shown {
        if prev.is_some_and(|p: usize| l > p + 1) {
            writeln!(out, "{}", style.paint("1;34", "..."))?;
        }
        prev = Some(l);
        let range = index.line_range(&r.source, l);
        let anchor = if l == d.line {
            d.span.start
        } else {
            range.start
        };
        let shown = Window::of(&r.source, range, anchor);
        let text = shown.text.replace('\t', " ");
        writeln!(
            out,
            "{:>width$} {} {}",
            style.paint("1;34", &l.to_string()),
            style.paint("1;34", "|"),
            text
        )?;
        if l >= d.line && l <= d.end_line {
            let start_col = if l == d.line {
                shown.column(&r.source, d.span.start)
            } else {
                1 + leading_ws(&text)
            };
            let text_cols = text.chars().count();
            let end_col = if l == d.end_line {
                shown.column(&r.source, d.span.end.max(d.span.start))
            } else {
                text_cols + 1
            };
            if end_col > start_col {
                let marks = "^".repeat(end_col - start_col);
                writeln!(
                    out,
                    "{pad} {} {}{}",
                    style.paint("1;34", "|"),
                    " ".repeat(start_col - 1),
                    style.paint(code, &marks)
                )?;
            }
        }
    }
    if let Some(h) = &d.help {
        writeln!(
            out,
            "{pad} {} {}: {h}",
            style.paint("1;34", "="),
            style.paint("1", "help")
        )?;
    }
    writeln!(out)
}

/// The part of a source line that is printed: the whole line, or for a long line a window
/// around the finding with `…` where it was cut, so that a finding on a line of megabytes
/// prints a few hundred bytes.
struct Window {
    text: String,
    /// Byte range of the line shown.
    shown: std::ops::Range<usize>,
    /// Characters printed before `shown.start` (the `…`).
    lead: usize,
}

impl Window {
    fn of(src: &str, line: std::ops::Range<usize>, anchor: usize) -> Window {
        if line.len() <= MAX_WIDTH {
            return Window {
                text: src[line.clone()].to_string(),
                shown: line,
                lead: 0,
            };
        }
        let start = floor_char_boundary(src, anchor.saturating_sub(LEAD).max(line.start));
        let end = ceil_char_boundary(src, (start + MAX_WIDTH).min(line.end));
        let mut text = String::with_capacity(end - start + 8);
        if start > line.start {
            text.push('…');
        }
        text.push_str(&src[start..end]);
        if end < line.end {
            text.push('…');
        }
        Window {
            text,
            shown: start..end,
            lead: usize::from(start > line.start),
        }
    }

    /// The 1-based printed column of byte `offset` (clamped to the window).
    fn column(&self, src: &str, offset: usize) -> usize {
        let at = floor_char_boundary(src, offset.clamp(self.shown.start, self.shown.end));
        1 + self.lead + src[self.shown.start..at].chars().count()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

fn leading_ws(s: &str) -> usize {
    s.chars().take_while(|c| c.is_whitespace()).count()
}

/// Writes the closing summary line.
pub fn write_summary(out: &mut dyn Write, s: &Summary, style: Style) -> io::Result<()> {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    if s.errors > 0 {
        parts.push(style.paint("1;31", &plural(s.errors, "error")));
    }
    if s.warnings > 0 {
        parts.push(style.paint("1;33", &plural(s.warnings, "warning")));
    }
    if s.notes > 0 {
        parts.push(style.paint("1;36", &plural(s.notes, "note")));
    }
    let findings = if parts.is_empty() {
        "no findings".to_string()
    } else {
        parts.join(", ")
    };
    let skipped = if s.skipped > 0 {
        format!(" ({} not linted)", plural(s.skipped, "file"))
    } else {
        String::new()
    };
    let baselined = if s.baselined > 0 {
        format!(" ({} in the baseline)", plural(s.baselined, "more finding"))
    } else {
        String::new()
    };
    writeln!(
        out,
        "checked {}, {}{skipped}: {findings}{baselined}",
        plural(s.files, "file"),
        plural(s.statements, "statement")
    )
}

/// The compiler-style report, optionally preceded per file by the `--locks` table.
pub struct TextReporter {
    pub style: Style,
    pub locks: bool,
}

impl super::Reporter for TextReporter {
    fn wants_locks(&self) -> bool {
        self.locks
    }

    fn file(&mut self, out: &mut dyn Write, r: &FileReport) -> io::Result<()> {
        if self.locks {
            super::locks::write_file(out, r)?;
        }
        write_file(out, r, self.style)
    }

    fn finish(&mut self, out: &mut dyn Write, s: &Summary) -> io::Result<()> {
        write_summary(out, s, self.style)
    }
}
