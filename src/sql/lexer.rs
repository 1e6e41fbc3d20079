//! A byte-level tokenizer that reads PostgreSQL exactly as sqlparser's tokenizer does
//! (`PostgreSqlDialect`, unescaping on): the same tokens with the same locations, without a
//! `String` per character run, a binary search of the keyword table per word, or dollar-quoted
//! bodies built one character at a time.
//!
//! It reads only what it is certain of. Anything else (an unterminated literal or comment,
//! a backslash escape other than the plain ones, `0x` numbers, `&>`, non-ASCII letters
//! right after `$` …) makes [`scan`] give up, and the caller asks sqlparser's tokenizer,
//! which has the last word (and the error message). A test compares the two on every
//! statement of the corpus of real migration histories.

use std::borrow::Cow;

use sqlparser::ast::DollarQuotedString;
use sqlparser::keywords::{Keyword, ALL_KEYWORDS, ALL_KEYWORDS_INDEX};
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Whitespace, Word};

/// One token, borrowing its text from the input where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Lexeme<'a> {
    Space,
    Newline,
    Tab,
    /// `-- …` (without the `--` and the line break).
    LineComment(&'a str),
    /// `/* … */` (without the outer delimiters; nested ones kept).
    BlockComment(&'a str),
    /// An unquoted word and its index in `ALL_KEYWORDS` when it is a keyword.
    Word(&'a str, Option<usize>),
    /// A `"quoted"` identifier's value.
    QuotedIdent(Cow<'a, str>),
    /// A number as written, and whether an `L` followed it.
    Number(&'a str, bool),
    /// `'…'`
    Single(Cow<'a, str>),
    /// `N'…'`
    National(Cow<'a, str>),
    /// `E'…'`, unescaped.
    Escaped(Cow<'a, str>),
    /// `U&'…'` (without backslash escapes).
    Unicode(Cow<'a, str>),
    /// `X'…'`
    Hex(Cow<'a, str>),
    /// `B'…'`
    ByteSingle(Cow<'a, str>),
    /// `B"…"`
    ByteDouble(Cow<'a, str>),
    /// `$$…$$` or `$tag$…$tag$`.
    Dollar {
        value: &'a str,
        tag: Option<&'a str>,
    },
    /// `$1`, `$name`, `$`.
    Placeholder(&'a str),
    /// An operator sqlparser does not name (`-|-`, `<~>` …).
    Custom(Cow<'a, str>),
    /// A character nothing else reads.
    Char(char),
    /// A token without data (`(`, `::`, `->>` …) and its text.
    Punct(Token, &'static str),
}

/// Why [`scan`] gave up: the text needs sqlparser's tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsure;

/// Reads `text`, handing each token (whitespace and comments included) to `emit` with its
/// byte range, in order; the ranges cover the text. `Err` when some part of the text is not
/// read with certainty (then what was emitted must be dropped).
pub fn scan<'a>(text: &'a str, emit: impl FnMut(Lexeme<'a>, usize, usize)) -> Result<(), Unsure> {
    scan_with(text, false, emit)
}

/// [`scan`] that steps over runs of blanks (space, tab, line breaks, vertical tab, form
/// feed) without handing them to `emit`.
pub fn scan_significant<'a>(
    text: &'a str,
    emit: impl FnMut(Lexeme<'a>, usize, usize),
) -> Result<(), Unsure> {
    scan_with(text, true, emit)
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn scan_with<'a>(
    text: &'a str,
    skip_blanks: bool,
    mut emit: impl FnMut(Lexeme<'a>, usize, usize),
) -> Result<(), Unsure> {
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut i = 0;
    let mut prev_word = false;
    while i < b.len() {
        let start = i;
        let c = b[i];
        if skip_blanks && is_blank(c) {
            i += b[i..].iter().take_while(|&&c| is_blank(c)).count();
            prev_word = false;
            continue;
        }
        let next = at(i + 1);
        let (lexeme, end) = match c {
            b' ' => (Lexeme::Space, i + 1),
            b'\t' => (Lexeme::Tab, i + 1),
            b'\n' => (Lexeme::Newline, i + 1),
            b'\r' => (Lexeme::Newline, if next == b'\n' { i + 2 } else { i + 1 }),
            0x0b | 0x0c => (Lexeme::Space, i + 1),
            b'\'' => {
                let (v, e) = quoted(text, i, b'\'', false)?;
                (Lexeme::Single(v), e)
            }
            b'"' => {
                let (v, e) = quoted(text, i, b'"', false)?;
                (Lexeme::QuotedIdent(v), e)
            }
            b'B' | b'b' if next == b'\'' => {
                let (v, e) = quoted(text, i + 1, b'\'', false)?;
                (Lexeme::ByteSingle(v), e)
            }
            b'B' | b'b' if next == b'"' => {
                let (v, e) = quoted(text, i + 1, b'"', false)?;
                (Lexeme::ByteDouble(v), e)
            }
            b'N' | b'n' if next == b'\'' => {
                let (v, e) = quoted(text, i + 1, b'\'', false)?;
                (Lexeme::National(v), e)
            }
            b'E' | b'e' if next == b'\'' => {
                let (v, e) = escaped(text, i + 1)?;
                (Lexeme::Escaped(v), e)
            }
            b'U' | b'u' if next == b'&' && at(i + 2) == b'\'' => {
                let (v, e) = quoted(text, i + 2, b'\'', true)?;
                (Lexeme::Unicode(v), e)
            }
            b'X' | b'x' if next == b'\'' => {
                let (v, e) = quoted(text, i + 1, b'\'', true)?;
                (Lexeme::Hex(v), e)
            }
            b'0'..=b'9' | b'.' => number(text, i, prev_word)?,
            b'$' => dollar(text, i)?,
            b'-' if next == b'-' => {
                let e = memchr::memchr2(b'\n', b'\r', &b[i + 2..]).map_or(b.len(), |p| i + 2 + p);
                (Lexeme::LineComment(&text[i + 2..e]), e)
            }
            b'/' if next == b'*' => {
                let e = block_comment_end(b, i + 2)?;
                (Lexeme::BlockComment(&text[i + 2..e - 2]), e)
            }
            b'(' => punct(Token::LParen, "(", i + 1),
            b')' => punct(Token::RParen, ")", i + 1),
            b',' => punct(Token::Comma, ",", i + 1),
            b';' => punct(Token::SemiColon, ";", i + 1),
            b'[' => punct(Token::LBracket, "[", i + 1),
            b']' => punct(Token::RBracket, "]", i + 1),
            b'{' => punct(Token::LBrace, "{", i + 1),
            b'}' => punct(Token::RBrace, "}", i + 1),
            b'\\' => punct(Token::Backslash, "\\", i + 1),
            b'+' => punct(Token::Plus, "+", i + 1),
            b'*' => punct(Token::Mul, "*", i + 1),
            b'/' => punct(Token::Div, "/", i + 1),
            b':' => match next {
                b':' => punct(Token::DoubleColon, "::", i + 2),
                b'=' => punct(Token::Assignment, ":=", i + 2),
                _ => punct(Token::Colon, ":", i + 1),
            },
            b'=' => match next {
                b'>' => punct(Token::RArrow, "=>", i + 2),
                b'=' => punct(Token::DoubleEq, "==", i + 2),
                _ => punct(Token::Eq, "=", i + 1),
            },
            b'^' => match next {
                b'@' => punct(Token::CaretAt, "^@", i + 2),
                _ => punct(Token::Caret, "^", i + 1),
            },
            b'!' => match (next, at(i + 2), at(i + 3)) {
                (b'=', _, _) => punct(Token::Neq, "<>", i + 2),
                (b'!', _, _) => punct(Token::DoubleExclamationMark, "!!", i + 2),
                (b'~', b'*', _) => punct(Token::ExclamationMarkTildeAsterisk, "!~*", i + 3),
                (b'~', b'~', b'*') => {
                    punct(Token::ExclamationMarkDoubleTildeAsterisk, "!~~*", i + 4)
                }
                (b'~', b'~', _) => punct(Token::ExclamationMarkDoubleTilde, "!~~", i + 3),
                (b'~', _, _) => punct(Token::ExclamationMarkTilde, "!~", i + 2),
                _ => punct(Token::ExclamationMark, "!", i + 1),
            },
            b'?' => match (next, at(i + 2)) {
                (b'|', b'|') => punct(Token::QuestionMarkDoubleVerticalBar, "?||", i + 3),
                (b'|', _) => punct(Token::QuestionPipe, "?|", i + 2),
                (b'&', _) => punct(Token::QuestionAnd, "?&", i + 2),
                (b'-', b'|') => punct(Token::QuestionMarkDashVerticalBar, "?-|", i + 3),
                (b'-', _) => punct(Token::QuestionMarkDash, "?-", i + 2),
                (b'#', _) => punct(Token::QuestionMarkSharp, "?#", i + 2),
                _ => punct(Token::Question, "?", i + 1),
            },
            b'@' => match (next, at(i + 2)) {
                (b'@', _) => punct(Token::AtAt, "@@", i + 2),
                (b'-', b'@') => punct(Token::AtDashAt, "@-@", i + 3),
                (b'-', _) => binop(text, start, i + 2, "@-", None)?,
                (b'>', _) => punct(Token::AtArrow, "@>", i + 2),
                (b'?', _) => punct(Token::AtQuestion, "@?", i + 2),
                _ => punct(Token::AtSign, "@", i + 1),
            },
            b'-' => match (next, at(i + 2)) {
                (b'>', b'>') => binop(text, i, i + 3, "->>", Some((Token::LongArrow, "->>")))?,
                (b'>', _) => binop(text, i, i + 2, "->", Some((Token::Arrow, "->")))?,
                _ => binop(text, i, i + 1, "-", Some((Token::Minus, "-")))?,
            },
            b'%' => binop(text, i, i + 1, "%", Some((Token::Mod, "%")))?,
            b'|' => match (next, at(i + 2)) {
                (b'/', _) => binop(text, i, i + 2, "|/", Some((Token::PGSquareRoot, "|/")))?,
                (b'|', b'/') => binop(text, i, i + 3, "||/", Some((Token::PGCubeRoot, "||/")))?,
                (b'|', _) => binop(text, i, i + 2, "||", Some((Token::StringConcat, "||")))?,
                (b'&', b'>') => binop(
                    text,
                    i,
                    i + 3,
                    "|&>",
                    Some((Token::VerticalBarAmpersandRightAngleBracket, "|&>")),
                )?,
                (b'&', _) => binop(text, i, i + 2, "|&", None)?,
                (b'>', b'>') => binop(
                    text,
                    i,
                    i + 3,
                    "|>>",
                    Some((Token::VerticalBarShiftRight, "|>>")),
                )?,
                (b'>', _) => binop(text, i, i + 2, "|>", None)?,
                _ => binop(text, i, i + 1, "|", Some((Token::Pipe, "|")))?,
            },
            b'<' => match (next, at(i + 2)) {
                (b'=', b'>') => binop(text, i, i + 3, "<=>", Some((Token::Spaceship, "<=>")))?,
                (b'=', b'+' | b'-') => punct(Token::LtEq, "<=", i + 2),
                (b'=', _) => binop(text, i, i + 2, "<=", Some((Token::LtEq, "<=")))?,
                // sqlparser names `<|` `<<|` (and so does a custom operator starting with it).
                (b'|', _) => binop(
                    text,
                    i,
                    i + 2,
                    "<<|",
                    Some((Token::ShiftLeftVerticalBar, "<<|")),
                )?,
                (b'>', _) => binop(text, i, i + 2, "<>", Some((Token::Neq, "<>")))?,
                (b'<', b'|') => binop(
                    text,
                    i,
                    i + 3,
                    "<<|",
                    Some((Token::ShiftLeftVerticalBar, "<<|")),
                )?,
                (b'<', _) => binop(text, i, i + 2, "<<", Some((Token::ShiftLeft, "<<")))?,
                (b'+', _) => punct(Token::Lt, "<", i + 1),
                (b'-', b'>') => binop(text, i, i + 3, "<->", Some((Token::TwoWayArrow, "<->")))?,
                (b'-', _) => punct(Token::Lt, "<", i + 1),
                (b'^', _) => binop(
                    text,
                    i,
                    i + 2,
                    "<^",
                    Some((Token::LeftAngleBracketCaret, "<^")),
                )?,
                (b'@', _) => binop(text, i, i + 2, "<@", Some((Token::ArrowAt, "<@")))?,
                _ => binop(text, i, i + 1, "<", Some((Token::Lt, "<")))?,
            },
            b'>' => match next {
                b'=' => binop(text, i, i + 2, ">=", Some((Token::GtEq, ">=")))?,
                b'>' => binop(text, i, i + 2, ">>", Some((Token::ShiftRight, ">>")))?,
                b'^' => binop(
                    text,
                    i,
                    i + 2,
                    ">^",
                    Some((Token::RightAngleBracketCaret, ">^")),
                )?,
                _ => binop(text, i, i + 1, ">", Some((Token::Gt, ">")))?,
            },
            b'&' => match (next, at(i + 2)) {
                // sqlparser takes the character after `&>` too.
                (b'>', _) => return Err(Unsure),
                (b'<', b'|') => punct(Token::AmpersandLeftAngleBracketVerticalBar, "&<|", i + 3),
                (b'<', _) => binop(
                    text,
                    i,
                    i + 2,
                    "&<",
                    Some((Token::AmpersandLeftAngleBracket, "&<")),
                )?,
                (b'&', _) => binop(text, i, i + 2, "&&", Some((Token::Overlap, "&&")))?,
                _ => binop(text, i, i + 1, "&", Some((Token::Ampersand, "&")))?,
            },
            b'#' => match (next, at(i + 2)) {
                (b'-', _) => binop(text, i, i + 2, "#-", Some((Token::HashMinus, "#-")))?,
                (b'>', b'>') => binop(text, i, i + 3, "#>>", Some((Token::HashLongArrow, "#>>")))?,
                (b'>', _) => binop(text, i, i + 2, "#>", Some((Token::HashArrow, "#>")))?,
                (b' ', _) => punct(Token::Sharp, "#", i + 1),
                (b'#', _) => binop(text, i, i + 2, "##", Some((Token::DoubleSharp, "##")))?,
                _ => binop(text, i, i + 1, "#", Some((Token::Sharp, "#")))?,
            },
            b'~' => match (next, at(i + 2)) {
                (b'*', _) => binop(text, i, i + 2, "~*", Some((Token::TildeAsterisk, "~*")))?,
                (b'=', _) => binop(text, i, i + 2, "~=", Some((Token::TildeEqual, "~=")))?,
                (b'~', b'*') => binop(
                    text,
                    i,
                    i + 3,
                    "~~*",
                    Some((Token::DoubleTildeAsterisk, "~~*")),
                )?,
                (b'~', _) => binop(text, i, i + 2, "~~", Some((Token::DoubleTilde, "~~")))?,
                _ => binop(text, i, i + 1, "~", Some((Token::Tilde, "~")))?,
            },
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let e = word_end(b, i + 1);
                let w = &text[i..e];
                (Lexeme::Word(w, keyword(w)), e)
            }
            // Other ASCII: `` ` ``, control characters.
            c => (Lexeme::Char(char::from(c)), i + 1),
        };
        prev_word = matches!(lexeme, Lexeme::Word(..) | Lexeme::QuotedIdent(_));
        emit(lexeme, start, end);
        i = end;
    }
    Ok(())
}

fn punct(t: Token, text: &'static str, end: usize) -> (Lexeme<'static>, usize) {
    (Lexeme::Punct(t, text), end)
}

/// sqlparser's `start_binop`: after an operator `prefix` (which ends at `from`), any more
/// operator characters make a custom operator named `prefix` and them; without any, the
/// operator is `default` (none: an error).
fn binop<'a>(
    text: &'a str,
    start: usize,
    from: usize,
    prefix: &'static str,
    default: Option<(Token, &'static str)>,
) -> Result<(Lexeme<'a>, usize), Unsure> {
    let b = text.as_bytes();
    let end = from
        + b[from..]
            .iter()
            .take_while(|&&c| {
                matches!(
                    c,
                    b'+' | b'-'
                        | b'*'
                        | b'/'
                        | b'<'
                        | b'>'
                        | b'='
                        | b'~'
                        | b'!'
                        | b'@'
                        | b'#'
                        | b'%'
                        | b'^'
                        | b'&'
                        | b'|'
                        | b'`'
                        | b'?'
                )
            })
            .count();
    if end > from {
        let name = if &text[start..from] == prefix {
            Cow::Borrowed(&text[start..end])
        } else {
            Cow::Owned(format!("{prefix}{}", &text[from..end]))
        };
        return Ok((Lexeme::Custom(name), end));
    }
    match default {
        Some((t, s)) => Ok((Lexeme::Punct(t, s), end)),
        None => Err(Unsure),
    }
}

/// The end of a word whose first character ends at `i`.
fn word_end(b: &[u8], i: usize) -> usize {
    i + b[i..]
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'$' || c == b'_' || c >= 0x80)
        .count()
}

/// A `q`-quoted literal or identifier whose opening quote is at `open`: its value (a doubled
/// quote is one) and the end. Unterminated, or `no_backslash` and a backslash inside: `Err`.
fn quoted(
    text: &str,
    open: usize,
    q: u8,
    no_backslash: bool,
) -> Result<(Cow<'_, str>, usize), Unsure> {
    let b = text.as_bytes();
    let from = open + 1;
    let mut i = from;
    let mut doubled = false;
    loop {
        let p = if no_backslash {
            memchr::memchr2(q, b'\\', &b[i..])
        } else {
            memchr::memchr(q, &b[i..])
        }
        .ok_or(Unsure)?;
        i += p;
        if b[i] != q {
            return Err(Unsure);
        }
        if b.get(i + 1) == Some(&q) {
            doubled = true;
            i += 2;
        } else {
            break;
        }
    }
    let raw = &text[from..i];
    let value = if doubled {
        let quote = char::from(q);
        Cow::Owned(raw.replace(&format!("{quote}{quote}"), &quote.to_string()))
    } else {
        Cow::Borrowed(raw)
    };
    Ok((value, i + 1))
}

/// An `E'…'` literal whose opening quote is at `open`: its unescaped value and the end. The
/// escapes read are `\b \f \n \r \t` and a backslash before any other character but a digit,
/// `u`, `U` or `x` (itself); others: `Err`.
fn escaped(text: &str, open: usize) -> Result<(Cow<'_, str>, usize), Unsure> {
    let b = text.as_bytes();
    let from = open + 1;
    let special = memchr::memchr2(b'\'', b'\\', &b[from..]).ok_or(Unsure)?;
    let first = from + special;
    if b[first] == b'\'' && b.get(first + 1) != Some(&b'\'') {
        return Ok((Cow::Borrowed(&text[from..first]), first + 1));
    }
    let mut value = String::with_capacity(first - from + 16);
    value.push_str(&text[from..first]);
    let mut rest = text[first..].char_indices();
    while let Some((_, c)) = rest.next() {
        match c {
            '\'' => {
                if rest.as_str().starts_with('\'') {
                    rest.next();
                    value.push('\'');
                } else {
                    let end = text.len() - rest.as_str().len();
                    return Ok((Cow::Owned(value), end));
                }
            }
            '\\' => {
                let (_, d) = rest.next().ok_or(Unsure)?;
                value.push(match d {
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' | 'U' | 'x' | '\0' => return Err(Unsure),
                    d if d.is_ascii_digit() => return Err(Unsure),
                    d => d,
                });
            }
            c => value.push(c),
        }
    }
    Err(Unsure)
}

/// The end of a (nested) block comment whose content starts at `from`.
fn block_comment_end(b: &[u8], from: usize) -> Result<usize, Unsure> {
    let mut depth = 1;
    let mut i = from;
    while let Some(p) = memchr::memchr2(b'/', b'*', &b[i..]) {
        i += p;
        match (b[i], b.get(i + 1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(Unsure)
}

/// The digits of a number part from `i`: sqlparser's `tokenize_number_part`, where `_`
/// separates digits (one after a digit and before one; elsewhere an error).
fn digits(b: &[u8], mut i: usize) -> Result<usize, Unsure> {
    let from = i;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => i += 1,
            b'_' if i > from && b.get(i + 1).is_some_and(u8::is_ascii_digit) => i += 1,
            b'_' => return Err(Unsure),
            _ => break,
        }
    }
    Ok(i)
}

/// A number or a period at `i`.
fn number(text: &str, i: usize, prev_word: bool) -> Result<(Lexeme<'_>, usize), Unsure> {
    let b = text.as_bytes();
    if b[i] == b'.' && b.get(i + 1) == Some(&b'_') {
        return if prev_word {
            Ok(punct(Token::Period, ".", i + 1))
        } else {
            Err(Unsure)
        };
    }
    let mut j = digits(b, i)?;
    if &text[i..j] == "0" && b.get(j) == Some(&b'x') {
        return Err(Unsure);
    }
    if b.get(j) == Some(&b'.') {
        j += 1;
    }
    j = digits(b, j)?;
    if j == i + 1 && b[i] == b'.' {
        return Ok(punct(Token::Period, ".", j));
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        match b.get(k) {
            Some(b'0'..=b'9') => j = digits(b, k)?,
            Some(b'_') => return Err(Unsure),
            _ => {}
        }
    }
    if b.get(j) == Some(&b'L') {
        Ok((Lexeme::Number(&text[i..j], true), j + 1))
    } else {
        Ok((Lexeme::Number(&text[i..j], false), j))
    }
}

/// A dollar-quoted string or a placeholder at `i`.
fn dollar(text: &str, i: usize) -> Result<(Lexeme<'_>, usize), Unsure> {
    let b = text.as_bytes();
    if b.get(i + 1) == Some(&b'$') {
        let from = i + 2;
        let p = memchr::memmem::find(&b[from..], b"$$").ok_or(Unsure)?;
        return Ok((
            Lexeme::Dollar {
                value: &text[from..from + p],
                tag: None,
            },
            from + p + 2,
        ));
    }
    let tag_end = i
        + 1
        + b[i + 1..]
            .iter()
            .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'_')
            .count();
    match b.get(tag_end) {
        // Tags of letters that are not ASCII: sqlparser's notion of alphanumeric.
        Some(&c) if c >= 0x80 => Err(Unsure),
        Some(b'$') => {
            let delimiter = &text[i..=tag_end];
            let from = tag_end + 1;
            let p = memchr::memmem::find(&b[from..], delimiter.as_bytes()).ok_or(Unsure)?;
            Ok((
                Lexeme::Dollar {
                    value: &text[from..from + p],
                    tag: Some(&text[i + 1..tag_end]),
                },
                from + p + delimiter.len(),
            ))
        }
        _ => Ok((Lexeme::Placeholder(&text[i..tag_end]), tag_end)),
    }
}

const SLOTS: usize = 4096;
/// The longest keyword, in bytes.
const LONGEST_KEYWORD: usize = 48;

const fn hash_step(h: u32, c: u8) -> u32 {
    // FNV-1a.
    (h ^ c as u32).wrapping_mul(0x0100_0193)
}

const HASH_SEED: u32 = 0x811c_9dc5;

/// Keywords by hash of their upper-case text, with linear probing: `(index in
/// ALL_KEYWORDS) + 1`, 0 for an empty slot. Built when lockstep is compiled.
static KEYWORD_SLOTS: [u16; SLOTS] = keyword_slots();

const fn keyword_slots() -> [u16; SLOTS] {
    // Room to probe, and indices that fit.
    assert!(ALL_KEYWORDS.len() < SLOTS / 2);
    let mut slots = [0u16; SLOTS];
    let mut i = 0;
    while i < ALL_KEYWORDS.len() {
        let k = ALL_KEYWORDS[i].as_bytes();
        assert!(k.len() <= LONGEST_KEYWORD);
        let mut h = HASH_SEED;
        let mut j = 0;
        while j < k.len() {
            h = hash_step(h, k[j]);
            j += 1;
        }
        let mut slot = h as usize & (SLOTS - 1);
        while slots[slot] != 0 {
            slot = (slot + 1) & (SLOTS - 1);
        }
        slots[slot] = (i + 1) as u16;
        i += 1;
    }
    slots
}

/// The index in `ALL_KEYWORDS` of the keyword `word` is (case-insensitive), if any.
pub fn keyword(word: &str) -> Option<usize> {
    let w = word.as_bytes();
    if w.len() > LONGEST_KEYWORD {
        return None;
    }
    let mut buf = [0u8; LONGEST_KEYWORD];
    let mut h = HASH_SEED;
    for (u, &c) in buf.iter_mut().zip(w) {
        *u = c.to_ascii_uppercase();
        h = hash_step(h, *u);
    }
    let upper = &buf[..w.len()];
    let mut slot = h as usize & (SLOTS - 1);
    loop {
        let k = ALL_KEYWORDS.get(usize::from(KEYWORD_SLOTS[slot]).checked_sub(1)?)?;
        if k.as_bytes() == upper {
            return Some(usize::from(KEYWORD_SLOTS[slot]) - 1);
        }
        slot = (slot + 1) & (SLOTS - 1);
    }
}

/// sqlparser's token for a lexeme.
pub fn token(lexeme: Lexeme<'_>) -> Token {
    let s = |c: Cow<'_, str>| c.into_owned();
    match lexeme {
        Lexeme::Space => Token::Whitespace(Whitespace::Space),
        Lexeme::Newline => Token::Whitespace(Whitespace::Newline),
        Lexeme::Tab => Token::Whitespace(Whitespace::Tab),
        Lexeme::LineComment(c) => Token::Whitespace(Whitespace::SingleLineComment {
            comment: c.to_string(),
            prefix: "--".to_string(),
        }),
        Lexeme::BlockComment(c) => Token::Whitespace(Whitespace::MultiLineComment(c.to_string())),
        Lexeme::Word(w, k) => Token::Word(Word {
            value: w.to_string(),
            quote_style: None,
            keyword: k
                .and_then(|i| ALL_KEYWORDS_INDEX.get(i).copied())
                .unwrap_or(Keyword::NoKeyword),
        }),
        Lexeme::QuotedIdent(v) => Token::Word(Word {
            value: s(v),
            quote_style: Some('"'),
            keyword: Keyword::NoKeyword,
        }),
        Lexeme::Number(n, long) => Token::Number(n.to_string(), long),
        Lexeme::Single(v) => Token::SingleQuotedString(s(v)),
        Lexeme::National(v) => Token::NationalStringLiteral(s(v)),
        Lexeme::Escaped(v) => Token::EscapedStringLiteral(s(v)),
        Lexeme::Unicode(v) => Token::UnicodeStringLiteral(s(v)),
        Lexeme::Hex(v) => Token::HexStringLiteral(s(v)),
        Lexeme::ByteSingle(v) => Token::SingleQuotedByteStringLiteral(s(v)),
        Lexeme::ByteDouble(v) => Token::DoubleQuotedByteStringLiteral(s(v)),
        Lexeme::Dollar { value, tag } => Token::DollarQuotedString(DollarQuotedString {
            value: value.to_string(),
            tag: tag.map(str::to_string),
        }),
        Lexeme::Placeholder(p) => Token::Placeholder(p.to_string()),
        Lexeme::Custom(op) => Token::CustomBinaryOperator(s(op)),
        Lexeme::Char(c) => Token::Char(c),
        Lexeme::Punct(t, _) => t,
    }
}

/// Tracks the location (1-based line, column in characters) of a byte offset, moving
/// forward only.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
    column: u64,
}

impl Cursor<'_> {
    fn advance(&mut self, to: usize) -> Location {
        for &c in &self.text[self.at..to] {
            if c == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if c & 0xc0 != 0x80 {
                self.column += 1;
            }
        }
        self.at = to;
        Location::new(self.line, self.column)
    }
}

/// sqlparser's tokens of `text` with their locations, or `None` when [`scan`] is unsure.
pub fn tokens(text: &str) -> Option<Vec<TokenWithSpan>> {
    let mut out = Vec::with_capacity((text.len() / 3).clamp(4, 1024));
    let mut cursor = Cursor {
        text: text.as_bytes(),
        at: 0,
        line: 1,
        column: 1,
    };
    let mut start = cursor.advance(0);
    scan(text, |lexeme, _, end| {
        let stop = cursor.advance(end);
        out.push(TokenWithSpan::new(token(lexeme), Span::new(start, stop)));
        start = stop;
    })
    .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn located(t: &[TokenWithSpan]) -> Vec<(Token, Span)> {
        t.iter().map(|r| (r.token.clone(), r.span)).collect()
    }

    fn sqlparser(text: &str) -> Result<Vec<TokenWithSpan>, String> {
        Tokenizer::new(&PostgreSqlDialect {}, text)
            .with_unescape(true)
            .tokenize_with_location()
            .map_err(|e| e.to_string())
    }

    /// Reads `text` as sqlparser does: the same tokens and locations, and for each token
    /// without data the text sqlparser writes for it.
    #[track_caller]
    fn same(text: &str) {
        let ours = tokens(text).unwrap_or_else(|| panic!("unsure of {text:?}"));
        let theirs = sqlparser(text).unwrap();
        assert_eq!(located(&ours), located(&theirs), "{text:?}");
        // The significant tokens too, read with blanks stepped over.
        let toks = crate::sql::tokens::tokenize(text, 3).unwrap().toks;
        assert_eq!(
            toks,
            crate::sql::tokens::reference(text, 3).unwrap().1,
            "{text:?}"
        );
        scan(text, |l, _, _| {
            if let Lexeme::Punct(t, s) = l {
                assert_eq!(t.to_string(), s, "{text:?}");
            }
        })
        .unwrap();
    }

    /// Leaves `text` to sqlparser.
    #[track_caller]
    fn unsure(text: &str) {
        assert_eq!(tokens(text), None, "{text:?}");
    }

    #[test]
    fn escape_strings() {
        same(r"SELECT E'a\nb\tc\\d\'e''f\bg\fh\ri\qj', e'plain', E'', E'it''s'");
        same("SELECT E'é\\é', E'line\nbreak'");
        // Octal, hex and unicode escapes, a NUL, and an unterminated one: sqlparser's.
        for text in [
            r"SELECT E'\x41'",
            r"SELECT E'\101'",
            r"SELECT E'\u0041'",
            r"SELECT E'\U00000041'",
            "SELECT E'\\\0'",
            r"SELECT E'abc",
            r"SELECT E'abc\",
        ] {
            unsure(text);
        }
    }

    #[test]
    fn other_string_literals() {
        same("SELECT 'a''b', '', '''', 'multi\nline\r\n', N'nat', n'x''y', B'0101', b\"x\"\"y\", X'ff', x'00'");
        same("SELECT U&'d0061t', u&'it''s', U&'', u&x, U & 'x'");
        unsure(r"SELECT U&'d\0061t'");
        unsure(r"SELECT X'a\b'");
        unsure("SELECT 'abc");
        unsure("SELECT 'abc''");
        unsure("SELECT N'abc");
    }

    #[test]
    fn dollar_quotes_and_placeholders() {
        same("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql");
        same("DO $body$ BEGIN RAISE NOTICE '$$ $x$'; END $body$");
        same("SELECT $a$ x $b$ y $b$ z $a$, $$$$, $$a$$$, $$ $ $$, $_x$ $_ $_x$");
        same("SELECT $1, $22 + $3::int, $, $ 1, a$b, $1$x$1$");
        same("SELECT $$line\none\r\ntwo é$$ || $t$é\n$t$");
        unsure("SELECT $$abc");
        unsure("SELECT $$abc$");
        unsure("SELECT $a$abc$b$");
        unsure("SELECT $é$ x $é$");
    }

    #[test]
    fn comments() {
        same("/* a /* nested */ still */ SELECT 1 /*/ x */ -- trailing");
        same("SELECT 1 --");
        same("SELECT 1 -- a\r\nSELECT 2 --b\rc\n--\n");
        same("SELECT /**/ 1 /* é\n */");
        unsure("SELECT 1 /* open");
        unsure("SELECT 1 /* /* */");
    }

    #[test]
    fn numbers_and_periods() {
        same("SELECT 1e10, .5, 1..2, 1.e3, 2E+5, 3e-2, 4e, 5e+, 6L, 1_000, 0.5e-3, 12.34.56");
        same("SELECT a.b, a.1, x.y.z, t.*, 1.5a, 00, 0, 0.0, 1_2_3.4_5e6_7");
        same("SELECT a._b, \"a\"._b");
        unsure("SELECT ._b");
        unsure("SELECT 0x1F");
        unsure("SELECT 1_");
        unsure("SELECT 1__0");
        unsure("SELECT 1e_5");
        unsure("SELECT 1._5");
    }

    #[test]
    fn operators() {
        same(
            "SELECT a::int, j->>'k', j->'k', j#>>'{a}', j#>'{a}', j#-'{a}', j @> k, k <@ j, \
             a <=> b, a != b, a <> b, a ~~* b, a !~~* b, a ~* b, a ~~ b, a !~ b, a !~* b, \
             a !~~ b, a || b, |/ a, ||/ a, a && b, a << b, a >> b, a <-> b, a @@ b, a @? b, \
             a ? b, a ?| b, a ?& b, a ?-| b, a ?- b, a ?# b, a ?|| b, a <<| b, a &<| b, \
             a &< b, a ^@ b, a >= b, a <= b, f(a => 1), x := 1, 3 !, !! 3, a ~= b, a <^ b, \
             a >^ b, a |>> b, a |&> b, @-@ a, a ## b, # a, a # b, a = b, a == b, a % b, \
             a ^ b, a & b, a | b, a ~ b, @ a, a * b / c + d - e, a[1:2], {x}, \\ ; :a",
        );
        // Custom operators: a prefix and more operator characters.
        same("SELECT a -|- b, a <~> b, a === b, a !== b, a <|> b, a +- b, a -> b, a ->>> b");
        same("SELECT a <=+ b, a <=- b, a <+ b, a <- b, a <<= b, a >-- b, a *-- b\n, 1");
        same("SELECT a @-- b, a |&- b, a |>- b, a=- 1, a%-1, a#-1, a ~~~ b, a `op` b");
        unsure("SELECT a |& b");
        unsure("SELECT a |> b");
        unsure("SELECT a @- b");
        unsure("SELECT a &> b");
    }

    #[test]
    fn identifiers_and_keywords() {
        same("SELECT \"a\"\"b\", \"\", \"Mixed Case\", \"é\", \"line\nbreak\" FROM \"s\".\"t\"");
        same("SELECT tablé, éa, ñ日本, x\u{a0}y, _x, x$1, ÉCOLE, straße FROM t");
        same("select Select SELECT sElEcT current_date CURRENT_TIMESTAMP int8 xyzzy");
        same("SELECT `x`, \u{1}, \u{7f}, a\u{b}b\u{c}c");
        unsure("SELECT \"abc");
        unsure("SELECT \"abc\"\"");
    }

    #[test]
    fn keywords_are_sqlparsers() {
        for (i, k) in ALL_KEYWORDS.iter().enumerate() {
            assert_eq!(keyword(k), Some(i), "{k}");
            assert_eq!(keyword(&k.to_ascii_lowercase()), Some(i), "{k}");
            // sqlparser's own lookup finds the keyword at the same place.
            let Token::Word(w) = Token::make_word(k, None) else {
                panic!("{k}")
            };
            assert_eq!(w.keyword, ALL_KEYWORDS_INDEX[i], "{k}");
        }
        for w in [
            "",
            "x",
            "selectx",
            "selec",
            "SELECT_",
            "é",
            &"A".repeat(100),
        ] {
            assert_eq!(keyword(w), None, "{w}");
        }
    }

    #[test]
    fn whitespace_and_line_breaks() {
        same("SELECT\t1,\r\n2,\r3,\n\n4\u{b}\u{c}");
        same("");
        same("  \n ");
        same("é\né");
    }

    #[test]
    fn tokens_cover_the_text_in_order() {
        let text = "SELECT 'a''b', $$x$$ -- c\n/* d */ \"e\"";
        let mut at = 0;
        scan(text, |_, start, end| {
            assert_eq!(start, at);
            assert!(end > start);
            at = end;
        })
        .unwrap();
        assert_eq!(at, text.len());
    }
}
