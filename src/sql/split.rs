//! Statement splitter: cuts a migration file into statements with exact byte spans.
//!
//! It understands everything that can hide a `;`: single- and double-quoted text, `E''`
//! strings with backslash escapes, dollar quoting with tags, nested block comments, line
//! comments, `BEGIN ATOMIC … END` function bodies, psql backslash lines and the data block
//! that follows `COPY … FROM stdin` up to `\.`. It never fails: an unterminated construct
//! ends the last statement at the end of the file and is reported on that statement.

use std::ops::Range;

/// One statement as found in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStatement {
    /// Byte span in the file, from the first token to the terminating `;` (inclusive) or
    /// the last non-blank byte when the file ends without one.
    pub span: Range<usize>,
    /// Set when the statement runs into the end of the file inside a quote or comment.
    pub unterminated: Option<Unterminated>,
}

/// An unterminated quote, comment or body: what it is and the byte offset where it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unterminated {
    pub what: String,
    pub at: usize,
}

/// A comment outside any statement text or inside one (both matter for suppressions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub span: Range<usize>,
}

/// The result of splitting one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Split {
    pub statements: Vec<RawStatement>,
    pub comments: Vec<Comment>,
    /// psql meta-command lines (`\set`, `\i`, …), not linted.
    pub meta_lines: Vec<Range<usize>>,
    /// `COPY … FROM stdin` data blocks, not linted.
    pub copy_data: Vec<Range<usize>>,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Tracks the first words of the current statement and `BEGIN ATOMIC` nesting.
#[derive(Default)]
struct WordState {
    /// The first four words, as far as they matter ([`FirstWord`]).
    first: [FirstWord; 4],
    seen: usize,
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`: its body may be `BEGIN ATOMIC … END`.
    routine: bool,
    atomic_depth: u32,
    prev_begin: bool,
}

/// What one of a statement's first words is, for [`WordState::routine`].
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum FirstWord {
    #[default]
    Other,
    Create,
    Or,
    Replace,
    Routine,
}

impl WordState {
    fn word(&mut self, w: &str) {
        if self.seen < self.first.len() {
            let is = |k: &str| w.eq_ignore_ascii_case(k);
            self.first[self.seen] = if is("CREATE") {
                FirstWord::Create
            } else if is("OR") {
                FirstWord::Or
            } else if is("REPLACE") {
                FirstWord::Replace
            } else if is("FUNCTION") || is("PROCEDURE") {
                FirstWord::Routine
            } else {
                FirstWord::Other
            };
            self.seen += 1;
            use FirstWord::*;
            self.routine = matches!(
                (self.seen, self.first),
                (2.., [Create, Routine, ..]) | (4, [Create, Or, Replace, Routine])
            );
        }
        if !self.routine {
            return;
        }
        let opens_atomic = self.prev_begin && w.eq_ignore_ascii_case("ATOMIC");
        let opens_case = self.atomic_depth > 0 && w.eq_ignore_ascii_case("CASE");
        if opens_atomic || opens_case {
            self.atomic_depth += 1;
        } else if self.atomic_depth > 0 && w.eq_ignore_ascii_case("END") {
            self.atomic_depth -= 1;
        }
        self.prev_begin = w.eq_ignore_ascii_case("BEGIN");
    }

    /// `COPY … FROM STDIN`, from the statement's words (their spans in `src`).
    fn is_copy_from_stdin(src: &str, words: &[Range<usize>]) -> bool {
        let is = |r: &Range<usize>, k: &str| src[r.clone()].eq_ignore_ascii_case(k);
        words.first().is_some_and(|w| is(w, "COPY"))
            && words
                .windows(2)
                .any(|p| is(&p[0], "FROM") && is(&p[1], "STDIN"))
    }
}

/// Splits `src` into statements, comments, psql meta lines and COPY data.
pub fn split(src: &str) -> Split {
    let b = src.as_bytes();
    let n = b.len();
    let mut out = Split::default();
    let mut i = 0;
    let mut start: Option<usize> = None;
    let mut words = WordState::default();
    let mut stmt_words: Vec<Range<usize>> = Vec::new();

    // Closes the current statement at `end` (exclusive).
    macro_rules! finish {
        ($end:expr, $unterminated:expr) => {{
            if let Some(s) = start.take() {
                out.statements.push(RawStatement {
                    span: s..$end,
                    unterminated: $unterminated,
                });
            }
            words = WordState::default();
            stmt_words.clear();
        }};
    }

    while i < n {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let end = memchr_nl(b, i);
                out.comments.push(Comment { span: i..end });
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let begin = i;
                let (end, closed) = skip_block_comment(b, i);
                i = end;
                out.comments.push(Comment { span: begin..i });
                if !closed {
                    let s = start.unwrap_or(begin);
                    start = Some(s);
                    finish!(
                        trim_end(b, s, n),
                        Some(Unterminated {
                            what: "block comment".into(),
                            at: begin
                        })
                    );
                }
            }
            b'\\' => {
                // psql meta-command: runs to the end of the line and ends any open statement.
                if let Some(s) = start {
                    finish!(trim_end(b, s, i), None);
                }
                let end = memchr_nl(b, i);
                out.meta_lines.push(i..end);
                i = end;
            }
            // A `;` with nothing before it is an empty statement, which PostgreSQL skips.
            b';' if start.is_none() => i += 1,
            b';' => {
                // A `;` with nothing before it ends an empty statement: nothing to lint.
                i += 1;
                if words.atomic_depth == 0 {
                    let copy = WordState::is_copy_from_stdin(src, &stmt_words);
                    finish!(i, None);
                    if copy {
                        i = skip_copy_data(b, i, &mut out.copy_data);
                    }
                }
            }
            b'\'' | b'"' => {
                start.get_or_insert(i);
                let escapes = c == b'\''
                    && i > 0
                    && (b[i - 1] == b'E' || b[i - 1] == b'e')
                    && (i < 2 || !is_ident_char(b[i - 2]));
                match skip_quoted(b, i, c, escapes) {
                    Ok(end) => i = end,
                    Err(()) => {
                        let what = if c == b'"' {
                            "quoted identifier"
                        } else {
                            "string"
                        };
                        let s = start.unwrap_or(i);
                        finish!(
                            trim_end(b, s, n),
                            Some(Unterminated {
                                what: what.into(),
                                at: i
                            })
                        );
                        i = n;
                    }
                }
            }
            b'$' if i == 0 || !is_ident_char(b[i - 1]) => {
                start.get_or_insert(i);
                match dollar_tag(b, i) {
                    Some(tag_end) => {
                        let tag = &b[i..tag_end];
                        match find(b, tag_end, tag) {
                            Some(close) => i = close + tag.len(),
                            None => {
                                let s = start.unwrap_or(i);
                                let tag = String::from_utf8_lossy(tag).into_owned();
                                let what = format!("dollar-quoted string `{tag}`");
                                finish!(trim_end(b, s, n), Some(Unterminated { what, at: i }));
                                i = n;
                            }
                        }
                    }
                    None => i += 1,
                }
            }
            _ if is_ident_start(c) => {
                start.get_or_insert(i);
                let ws = i;
                while i < n && is_ident_char(b[i]) {
                    i += 1;
                }
                let w = &src[ws..i];
                words.word(w);
                if stmt_words.len() < 64 {
                    stmt_words.push(ws..i);
                }
            }
            _ => {
                start.get_or_insert(i);
                i += 1;
            }
        }
    }
    if let Some(s) = start {
        let unterminated = (words.atomic_depth > 0).then(|| Unterminated {
            what: "`BEGIN ATOMIC` body (missing `END`)".into(),
            at: s,
        });
        out.statements.push(RawStatement {
            span: s..trim_end(b, s, n),
            unterminated,
        });
    }
    out
}

/// The end of the first top-level `,` (outside quotes, dollar quotes and comments) at or
/// after byte `min` of `text`, or the end of `text`. Cutting a statement there splits it
/// between two tokens, so its pieces can be tokenized one at a time.
pub(crate) fn comma_cut(text: &str, min: usize) -> usize {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        match b[i] {
            b',' if i >= min => return i + 1,
            b'-' if b.get(i + 1) == Some(&b'-') => i = memchr_nl(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i).0,
            q @ (b'\'' | b'"') => {
                let escapes = q == b'\''
                    && i > 0
                    && (b[i - 1] == b'E' || b[i - 1] == b'e')
                    && (i < 2 || !is_ident_char(b[i - 2]));
                i = skip_quoted(b, i, q, escapes).unwrap_or(n);
            }
            b'$' if i == 0 || !is_ident_char(b[i - 1]) => match dollar_tag(b, i) {
                Some(tag_end) => {
                    let tag = &b[i..tag_end];
                    i = find(b, tag_end, tag).map_or(n, |close| close + tag.len());
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    n
}

/// Skips the (nested) block comment opening at `open`: the index past it, and whether it
/// was closed before the end of `b`.
fn skip_block_comment(b: &[u8], open: usize) -> (usize, bool) {
    let mut depth = 1u32;
    let mut i = open + 2;
    while i < b.len() && depth > 0 {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    (i, depth == 0)
}

fn memchr_nl(b: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &b[from..]).map_or(b.len(), |p| from + p)
}

/// End of the statement text: strips trailing whitespace and comments before `end`.
fn trim_end(b: &[u8], start: usize, end: usize) -> usize {
    let mut e = end;
    while e > start && b[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    e.max(start + 1).min(b.len())
}

fn skip_quoted(b: &[u8], open: usize, q: u8, escapes: bool) -> Result<usize, ()> {
    let mut i = open + 1;
    while i < b.len() {
        let c = b[i];
        if escapes && c == b'\\' {
            i += 2;
            continue;
        }
        if c == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return Ok(i + 1);
        }
        i += 1;
    }
    Err(())
}

/// If a dollar-quote opening tag starts at `i`, returns the index just past it.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j) == Some(&b'$') {
        return Some(j + 1);
    }
    if !b.get(j).is_some_and(|&c| is_ident_start(c)) {
        return None;
    }
    while j < b.len() && (is_ident_start(b[j]) || b[j].is_ascii_digit()) {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay.get(from..)?, needle).map(|p| from + p)
}

/// Skips the data lines after `COPY … FROM stdin;` up to and including the `\.` line.
fn skip_copy_data(b: &[u8], after_semicolon: usize, data: &mut Vec<Range<usize>>) -> usize {
    // Data begins on the line after the statement.
    let first = memchr_nl(b, after_semicolon);
    if first >= b.len() {
        return b.len();
    }
    let begin = first + 1;
    let mut line = begin;
    while line < b.len() {
        let end = memchr_nl(b, line);
        let text = &b[line..end];
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text == b"\\." {
            data.push(begin..line);
            return end;
        }
        line = end + 1;
    }
    data.push(begin..b.len());
    b.len()
}

/// Maps byte offsets to 1-based line and column (columns count characters).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    /// For text that is not all ASCII: the number of characters before every
    /// `CHECKPOINT`-th byte (rounded down to a character boundary), so that a column on a
    /// line of megabytes costs a bounded count, not the whole line.
    chars: Option<Vec<(usize, usize)>>,
}

const CHECKPOINT: usize = 4096;

impl LineIndex {
    pub fn new(src: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', src.as_bytes()).map(|i| i + 1));
        let chars = (!src.is_ascii()).then(|| {
            let mut points = vec![(0, 0)];
            let mut at = 0;
            let mut count = 0;
            while at + CHECKPOINT < src.len() {
                let next = ceil_boundary(src, at + CHECKPOINT);
                count += src[at..next].chars().count();
                at = next;
                points.push((at, count));
            }
            points
        });
        LineIndex { starts, chars }
    }

    /// Number of characters in `src[..offset]` (`offset` on a character boundary).
    fn chars_before(&self, src: &str, offset: usize) -> usize {
        match &self.chars {
            None => offset,
            Some(points) => {
                let i = match points.binary_search_by_key(&offset, |p| p.0) {
                    Ok(i) => i,
                    Err(i) => i.saturating_sub(1),
                };
                let (at, count) = points[i];
                count + src.get(at..offset).map_or(0, |s| s.chars().count())
            }
        }
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(l) => l + 1,
            Err(l) => l,
        }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub fn line_col(&self, src: &str, offset: usize) -> (usize, usize) {
        let line = self.line(offset);
        let start = self.starts[line - 1];
        let offset = floor_char_boundary(src, offset.min(src.len()));
        let start = start.min(offset);
        let col = self.chars_before(src, offset) - self.chars_before(src, start) + 1;
        (line, col)
    }

    /// Byte offset where a 1-based line starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(usize::MAX)
    }

    /// Byte range of a 1-based line, without its newline.
    pub fn line_range(&self, src: &str, line: usize) -> Range<usize> {
        let start = self.line_start(line).min(src.len());
        let end = self.starts.get(line).map_or(src.len(), |&s| s - 1);
        let end = if end > start && src.as_bytes().get(end - 1) == Some(&b'\r') {
            end - 1
        } else {
            end
        };
        start..end.max(start)
    }

    pub fn line_count(&self) -> usize {
        self.starts.len()
    }
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
