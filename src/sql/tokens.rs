//! Tokens of one statement with byte spans in the file: lockstep's tokenizer
//! ([`super::lexer`]), which reads like sqlparser's, and sqlparser's where it is unsure.

use std::borrow::Cow;
use std::ops::Range;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::{ALL_KEYWORDS, ALL_KEYWORDS_INDEX};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};

use super::lexer::{self, Lexeme};
use super::text::Text;

/// One significant token (whitespace and comments dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    /// Byte span in the file.
    pub span: Range<usize>,
    pub kind: TokKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokKind {
    /// A keyword or identifier. `upper` is the unquoted word upper-cased (empty for quoted
    /// identifiers, which never match keywords); `value` is the identifier as PostgreSQL
    /// sees it (folded to lower case unless quoted).
    Word {
        upper: Text,
        value: Text,
        quoted: bool,
    },
    Number(Text),
    /// A string literal's content.
    Str(Text),
    /// Any other token, as written (`(`, `)`, `,`, `::`, `=`, `.` …).
    Punct(Cow<'static, str>),
}

impl Tok {
    /// True if this token is the (unquoted) keyword `kw` (upper case).
    pub fn is(&self, kw: &str) -> bool {
        matches!(&self.kind, TokKind::Word { upper, .. } if upper.as_bytes() == kw.as_bytes())
    }

    pub fn is_punct(&self, p: &str) -> bool {
        matches!(&self.kind, TokKind::Punct(s) if s == p)
    }

    /// The identifier value of a word token.
    pub fn ident(&self) -> Option<&str> {
        match &self.kind {
            TokKind::Word { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// The tokens of a statement, and its text for the parser's tokens.
pub struct Tokenized<'a> {
    pub toks: Vec<Tok>,
    /// The text read, at byte `base` of the file.
    text: &'a str,
    base: usize,
}

impl<'a> Tokenized<'a> {
    /// sqlparser's tokens of the text, with locations counted from its start, for the
    /// parser. Read again from the text: most statements are decided without the parser.
    pub fn raw(&self) -> Result<Vec<TokenWithSpan>, String> {
        raw_tokens(self.text)
    }

    /// The tokens `range` (indices into `toks`), as [`tokenize`] gives them for the text from
    /// the first one's start to the last one's end read alone. `None` for an empty range and
    /// when the first token is not a word (sqlparser reads a few tokens differently after a
    /// word or a period; a word reads the same whatever precedes it).
    pub fn slice(&self, range: Range<usize>) -> Option<Tokenized<'a>> {
        let text = self.slice_text(&range)?;
        Some(Tokenized {
            toks: self.toks[range].to_vec(),
            ..text
        })
    }

    /// [`Tokenized::slice`] that moves the tokens out (the others stay).
    pub fn take(&mut self, range: Range<usize>) -> Option<Tokenized<'a>> {
        let text = self.slice_text(&range)?;
        Some(Tokenized {
            toks: self.toks.drain(range).collect(),
            ..text
        })
    }

    /// The text of the tokens `range`, without tokens, if it can be sliced.
    fn slice_text(&self, range: &Range<usize>) -> Option<Tokenized<'a>> {
        let first = self.toks.get(range.start)?;
        if range.is_empty()
            || range.end > self.toks.len()
            || !matches!(first.kind, TokKind::Word { .. })
        {
            return None;
        }
        let from = first.span.start - self.base;
        let to = self.toks[range.end - 1].span.end - self.base;
        Some(Tokenized {
            toks: Vec::new(),
            text: self.text.get(from..to)?,
            base: self.base + from,
        })
    }
}

/// Tokenizes the statement `text`, which starts at byte `base` of the file.
pub fn tokenize(text: &str, base: usize) -> Result<Tokenized<'_>, String> {
    Ok(Tokenized {
        toks: toks(text, base)?,
        text,
        base,
    })
}

/// The significant tokens of `text` (at byte `base` of the file): lockstep's tokenizer, or
/// sqlparser's where that one is unsure.
fn toks(text: &str, base: usize) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::with_capacity((text.len() / 6).clamp(4, 1024));
    let fast = lexer::scan_significant(text, |lexeme, start, end| {
        if let Some(kind) = tok_kind(lexeme) {
            toks.push(Tok {
                span: base + start..base + end,
                kind,
            });
        }
    });
    if fast.is_err() {
        toks = reference(text, base)?.1;
    }
    // A file's statements are held until they are checked: no slack.
    toks.shrink_to_fit();
    Ok(toks)
}

/// sqlparser's tokens of `text`: lockstep's tokenizer, or sqlparser's where that one is
/// unsure.
fn raw_tokens(text: &str) -> Result<Vec<TokenWithSpan>, String> {
    match lexer::tokens(text) {
        Some(raw) => Ok(raw),
        None => sqlparser_tokens(text),
    }
}

fn sqlparser_tokens(text: &str) -> Result<Vec<TokenWithSpan>, String> {
    Tokenizer::new(&PostgreSqlDialect {}, text)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| e.to_string())
}

/// What sqlparser's tokenizer alone makes of `text` (at byte `base` of the file): its
/// tokens, and the significant tokens from them. The reference [`tokenize`] and
/// [`Tokenized::raw`] agree with.
pub fn reference(text: &str, base: usize) -> Result<(Vec<TokenWithSpan>, Vec<Tok>), String> {
    let raw = sqlparser_tokens(text)?;
    let mut toks = Vec::new();
    convert(text, base, &raw, |t| toks.push(t));
    Ok((raw, toks))
}

/// Bytes tokenized at a time by [`tokenize_head`].
const PIECE: usize = 64 * 1024;

/// Tokenizes a very large statement a piece at a time, keeping the first `head` tokens and,
/// after them, only string literals: what the recognizer and the rules read of a data
/// statement (`INSERT … VALUES` of a million rows, a `SELECT` of megabytes), in memory
/// that does not grow with its length. Pieces end at top-level commas, between tokens.
pub fn tokenize_head(text: &str, base: usize, head: usize) -> Result<Vec<Tok>, String> {
    let mut kept = Vec::with_capacity(head);
    let mut at = 0;
    while at < text.len() {
        let end = at + super::split::comma_cut(&text[at..], PIECE);
        for t in toks(&text[at..end], base + at)? {
            if kept.len() < head || matches!(t.kind, TokKind::Str(_)) {
                kept.push(t);
            }
        }
        at = end;
    }
    Ok(kept)
}

/// The significant token of a lexeme (`None` for whitespace and comments): what
/// [`convert`] makes of sqlparser's token for it.
fn tok_kind(lexeme: Lexeme<'_>) -> Option<TokKind> {
    Some(match lexeme {
        Lexeme::Space
        | Lexeme::Newline
        | Lexeme::Tab
        | Lexeme::LineComment(_)
        | Lexeme::BlockComment(_) => return None,
        Lexeme::Word(w, keyword) => TokKind::Word {
            upper: match keyword.and_then(|i| ALL_KEYWORDS.get(i)) {
                Some(k) => Text::from_static(k),
                None => Text::ascii_upper(w),
            },
            value: lower_case(w),
            quoted: false,
        },
        Lexeme::QuotedIdent(v) => TokKind::Word {
            upper: Text::EMPTY,
            value: Text::from(v),
            quoted: true,
        },
        Lexeme::Number(n, _) => TokKind::Number(Text::new(n)),
        Lexeme::Single(v) | Lexeme::National(v) | Lexeme::Escaped(v) | Lexeme::Unicode(v) => {
            TokKind::Str(Text::from(v))
        }
        Lexeme::Dollar { value, .. } => TokKind::Str(Text::new(value)),
        Lexeme::Hex(v) => TokKind::Punct(Cow::Owned(format!("X'{v}'"))),
        Lexeme::ByteSingle(v) => TokKind::Punct(Cow::Owned(format!("B'{v}'"))),
        Lexeme::ByteDouble(v) => TokKind::Punct(Cow::Owned(format!("B\"{v}\""))),
        Lexeme::Placeholder(p) => TokKind::Punct(Cow::Owned(p.to_string())),
        Lexeme::Custom(op) => TokKind::Punct(Cow::Owned(op.into_owned())),
        Lexeme::Char(c) => TokKind::Punct(Cow::Owned(c.to_string())),
        Lexeme::Punct(_, text) => TokKind::Punct(Cow::Borrowed(text)),
    })
}

/// An unquoted identifier as PostgreSQL folds it.
fn lower_case(w: &str) -> Text {
    if w.is_ascii() {
        Text::ascii_lower(w)
    } else {
        Text::from(w.to_lowercase())
    }
}

/// Converts sqlparser's tokens of `text` (at byte `base` of the file) to [`Tok`]s.
fn convert(text: &str, base: usize, raw: &[TokenWithSpan], mut emit: impl FnMut(Tok)) {
    let map = OffsetMap::new(text);
    for t in raw {
        let kind = match &t.token {
            Token::Whitespace(_) | Token::EOF => continue,
            Token::Word(w) => {
                let quoted = w.quote_style.is_some();
                TokKind::Word {
                    upper: if quoted { Text::EMPTY } else { upper_case(w) },
                    value: if quoted {
                        Text::new(&w.value)
                    } else {
                        lower_case(&w.value)
                    },
                    quoted,
                }
            }
            Token::Number(n, _) => TokKind::Number(Text::new(n)),
            Token::SingleQuotedString(s)
            | Token::EscapedStringLiteral(s)
            | Token::NationalStringLiteral(s)
            | Token::UnicodeStringLiteral(s) => TokKind::Str(Text::new(s)),
            Token::DollarQuotedString(d) => TokKind::Str(Text::new(&d.value)),
            other => TokKind::Punct(punct_text(other)),
        };
        let start = map.offset(t.span.start.line, t.span.start.column);
        let end = map.offset(t.span.end.line, t.span.end.column).max(start);
        emit(Tok {
            span: base + start..base + end,
            kind,
        });
    }
}

/// An unquoted word in upper case: a keyword's is sqlparser's own (no copy to make).
fn upper_case(w: &Word) -> Text {
    // `Keyword` lists its variants in the order of `ALL_KEYWORDS`, after `NoKeyword`.
    let keyword = (w.keyword as usize)
        .checked_sub(1)
        .filter(|&i| ALL_KEYWORDS_INDEX.get(i) == Some(&w.keyword))
        .and_then(|i| ALL_KEYWORDS.get(i))
        .filter(|k| k.len() == w.value.len() && k.eq_ignore_ascii_case(&w.value));
    match keyword {
        Some(k) => Text::from_static(k),
        None => Text::ascii_upper(&w.value),
    }
}

/// The text of a punctuation or operator token, as sqlparser writes it; the common ones
/// without going through `Display` (or a copy).
fn punct_text(t: &Token) -> Cow<'static, str> {
    let s = match t {
        Token::Comma => ",",
        Token::LParen => "(",
        Token::RParen => ")",
        Token::SemiColon => ";",
        Token::Period => ".",
        Token::Eq => "=",
        Token::DoubleColon => "::",
        Token::Mul => "*",
        Token::LBracket => "[",
        Token::RBracket => "]",
        Token::Plus => "+",
        Token::Minus => "-",
        Token::Div => "/",
        Token::Lt => "<",
        Token::Gt => ">",
        Token::LtEq => "<=",
        Token::GtEq => ">=",
        Token::Neq => "<>",
        Token::Colon => ":",
        Token::StringConcat => "||",
        _ => return Cow::Owned(t.to_string()),
    };
    Cow::Borrowed(s)
}

/// Converts sqlparser's 1-based (line, column-in-characters) locations to byte offsets.
struct OffsetMap<'a> {
    text: &'a str,
    starts: Vec<usize>,
    ascii: bool,
}

impl<'a> OffsetMap<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, c)| c == b'\n')
                .map(|(i, _)| i + 1),
        );
        OffsetMap {
            text,
            starts,
            ascii: text.is_ascii(),
        }
    }

    fn offset(&self, line: u64, column: u64) -> usize {
        let Some(&start) = self.starts.get((line as usize).saturating_sub(1)) else {
            return self.text.len();
        };
        let col = (column as usize).saturating_sub(1);
        if self.ascii {
            return (start + col).min(self.text.len());
        }
        self.text[start..]
            .char_indices()
            .nth(col)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

/// Splits `toks` at top-level commas (outside parentheses/brackets).
pub fn split_top_level_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut from = 0;
    for (i, t) in toks.iter().enumerate() {
        if let TokKind::Punct(p) = &t.kind {
            match &**p {
                "(" | "[" => depth += 1,
                ")" | "]" => depth -= 1,
                "," if depth == 0 => {
                    parts.push(&toks[from..i]);
                    from = i + 1;
                }
                _ => {}
            }
        }
    }
    parts.push(&toks[from..]);
    parts
}

/// Index of the first token that starts the keyword sequence `kws`.
pub fn find_seq(toks: &[Tok], kws: &[&str]) -> Option<usize> {
    if kws.is_empty() || toks.len() < kws.len() {
        return None;
    }
    (0..=toks.len() - kws.len()).find(|&i| kws.iter().enumerate().all(|(j, k)| toks[i + j].is(k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::tokenizer::Span;

    /// sqlparser's tokens of `t` with their locations (its `PartialEq` leaves spans out).
    fn located(t: &Tokenized) -> Vec<(Token, Span)> {
        t.raw()
            .unwrap()
            .iter()
            .map(|r| (r.token.clone(), r.span))
            .collect()
    }

    #[test]
    fn a_slice_is_what_tokenizing_its_text_alone_gives() {
        // A body's statement after control words, on the first line and on later ones,
        // with comments, a non-ASCII identifier before it and a dollar-quoted string.
        let text = "IF ok THEN /* é */ \"tablé\".x := 1; ALTER TABLE a\n  ADD COLUMN b int -- note\n  DEFAULT 'é', ADD CONSTRAINT c CHECK (b > $x$1$x$);";
        let all = tokenize(text, 100).unwrap();
        for word in ["ALTER", "ADD", "DEFAULT"] {
            let from = all.toks.iter().position(|t| t.is(word)).unwrap();
            let to = all.toks.len() - 1; // without the `;`
            let start = all.toks[from].span.start - 100;
            let end = all.toks[to - 1].span.end - 100;
            let sliced = all.slice(from..to).unwrap();
            let mut again = tokenize(text, 100).unwrap();
            let taken = again.take(from..to).unwrap();
            assert_eq!(taken.toks, sliced.toks, "{word}");
            assert_eq!(located(&taken), located(&sliced), "{word}");
            assert_eq!(again.toks.len(), all.toks.len() - (to - from));
            let fresh = tokenize(&text[start..end], 100 + start).unwrap();
            assert_eq!(sliced.toks, fresh.toks, "{word}");
            assert_eq!(located(&sliced), located(&fresh), "{word}");
        }
        // Not from a token that is not a word, nor an empty range.
        let comma = all.toks.iter().position(|t| t.is_punct(",")).unwrap();
        assert!(all.slice(comma..comma + 2).is_none());
        assert!(all.slice(3..3).is_none());
    }
}
