//! A cursor over a statement's tokens, and helpers for token lists.

use crate::sql::ir::*;
use crate::sql::tokens::{split_top_level_commas, Tok, TokKind};

/// A cursor over a statement's tokens.
pub(super) struct Cur<'a> {
    pub(super) t: &'a [Tok],
    pub(super) i: usize,
}

impl<'a> Cur<'a> {
    pub(super) fn new(t: &'a [Tok]) -> Self {
        Cur { t, i: 0 }
    }

    pub(super) fn peek(&self) -> Option<&'a Tok> {
        self.t.get(self.i)
    }

    pub(super) fn peek_is(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is(kw))
    }

    pub(super) fn eat(&mut self, kw: &str) -> bool {
        if self.peek_is(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn eat_seq(&mut self, kws: &[&str]) -> bool {
        let ok = kws
            .iter()
            .enumerate()
            .all(|(j, k)| self.t.get(self.i + j).is_some_and(|t| t.is(k)));
        if ok {
            self.i += kws.len();
        }
        ok
    }

    pub(super) fn eat_punct(&mut self, p: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_punct(p)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn word(&mut self) -> Option<String> {
        let v = self.peek()?.ident()?.to_string();
        self.i += 1;
        Some(v)
    }

    /// `name` or `schema.name` (or `db.schema.name`).
    pub(super) fn name(&mut self) -> Option<ObjName> {
        let mut parts = vec![self.word()?];
        while self.eat_punct(".") {
            parts.push(self.word()?);
        }
        let name = parts.pop()?;
        Some(ObjName {
            schema: parts.pop(),
            name,
        })
    }

    /// Comma-separated names.
    pub(super) fn names(&mut self) -> Vec<ObjName> {
        let mut out = Vec::new();
        loop {
            self.eat("ONLY");
            match self.name() {
                Some(n) => out.push(n),
                None => break,
            }
            self.eat_punct("*");
            if !self.eat_punct(",") {
                break;
            }
        }
        out
    }

    /// If at `(`, skips to the matching `)` and returns the tokens inside.
    pub(super) fn parens(&mut self) -> Option<&'a [Tok]> {
        if !self.peek().is_some_and(|t| t.is_punct("(")) {
            return None;
        }
        let open = self.i;
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            if t.is_punct("(") {
                depth += 1;
            } else if t.is_punct(")") {
                depth -= 1;
                if depth == 0 {
                    self.i += 1;
                    return Some(&self.t[open + 1..self.i - 1]);
                }
            }
            self.i += 1;
        }
        Some(&self.t[open + 1..])
    }

    pub(super) fn rest(&self) -> &'a [Tok] {
        &self.t[self.i.min(self.t.len())..]
    }

    pub(super) fn at_end(&self) -> bool {
        self.i >= self.t.len()
    }

    pub(super) fn contains(&self, kw: &str) -> bool {
        self.rest().iter().any(|t| t.is(kw))
    }
}

/// Column names of a parenthesized list.
pub(super) fn column_list(toks: &[Tok]) -> Vec<String> {
    split_top_level_commas(toks)
        .into_iter()
        .filter_map(|p| p.first().and_then(Tok::ident).map(str::to_string))
        .collect()
}

/// Approximate SQL text of tokens (for expressions the rules inspect, never for output).
pub fn toks_text(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        if !s.is_empty() {
            s.push(' ');
        }
        match &t.kind {
            TokKind::Word { value, quoted, .. } => {
                if *quoted {
                    s.push_str(&quote_ident(value));
                } else {
                    s.push_str(value);
                }
            }
            TokKind::Number(n) => s.push_str(n),
            TokKind::Str(v) => {
                s.push('\'');
                s.push_str(&v.replace('\'', "''"));
                s.push('\'');
            }
            TokKind::Punct(p) => s.push_str(p),
        }
    }
    s.replace(" ( ", "(")
        .replace(" (", "(")
        .replace(" )", ")")
        .replace("( ", "(")
        .replace(" , ", ", ")
        .replace(" :: ", "::")
        .replace(" . ", ".")
}
