//! Static reading of procedural bodies: the SQL statements a `DO` block or a function body
//! runs with literal text, whether each runs only under a condition (inside `IF`, `CASE`, a
//! loop or an exception handler), and the `EXECUTE`s whose SQL is built at run time, which
//! cannot be checked.
//!
//! PL/pgSQL is read statement by statement (split at `;` like SQL, which respects quotes,
//! dollar quotes and comments); the control words in front of a statement (`BEGIN`,
//! `IF … THEN`, `ELSE`, `LOOP`, `FOR … LOOP`, `EXCEPTION WHEN … THEN`, labels) are stepped
//! over and tracked, and what remains is a SQL statement, a `PERFORM`, an `EXECUTE`, or
//! PL/pgSQL that touches no table (`RAISE`, `RETURN`, assignments …). A `LANGUAGE sql` body
//! is plain statements.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use super::ir::{Source, StmtKind};
use super::parse::{analyze, analyze_tokens, Statement, LARGE_STATEMENT};
use super::tokens::{self, Tok, TokKind, Tokenized};

/// The language of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    PlPgSql,
    Sql,
}

impl Lang {
    /// `plpgsql` or `sql` (case-insensitive); other languages are not read.
    pub fn parse(name: &str) -> Option<Lang> {
        match name.trim().to_ascii_lowercase().as_str() {
            "plpgsql" => Some(Lang::PlPgSql),
            "sql" => Some(Lang::Sql),
            _ => None,
        }
    }
}

/// One thing a body does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Where it is in the text read.
    pub span: Range<usize>,
    /// Runs only when a condition holds (a branch, a loop body, an exception handler).
    pub conditional: bool,
    pub kind: PieceKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceKind {
    /// A SQL statement at `span`.
    Sql,
    /// `EXECUTE 'literal'` whose literal does not map onto the text byte for byte (escapes):
    /// the SQL it runs.
    Literal(String),
    /// A query or expression evaluated for its value (`PERFORM …`, an `IF` or `WHILE`
    /// condition, the query of a `FOR` loop, an assignment's value, `RETURN QUERY …`):
    /// `span` is the query, without the PL/pgSQL words around it.
    Query,
    /// `EXECUTE` of SQL built at run time; `span` is the whole `EXECUTE` statement.
    Dynamic,
}

/// The body of a `DO` statement (its tokens): the content span of the string holding it,
/// and its language (`plpgsql` unless `LANGUAGE` says otherwise).
pub fn do_body(text: &str, toks: &[Tok]) -> Option<(Range<usize>, Option<Lang>)> {
    let mut lang = Some(Lang::PlPgSql);
    let mut body = None;
    for (i, t) in toks.iter().enumerate() {
        if t.is("LANGUAGE") {
            lang = toks.get(i + 1).and_then(|l| match &l.kind {
                TokKind::Word { value, .. } => Lang::parse(value),
                TokKind::Str(s) => Lang::parse(s),
                _ => None,
            });
        } else if matches!(t.kind, TokKind::Str(_)) && body.is_none() {
            body = string_content(text, t);
        }
    }
    body.map(|b| (b, lang))
}

/// The span of a string literal's content in `text`, when the content is the literal's
/// value byte for byte (a dollar-quoted string, or a quoted one without escapes).
pub fn string_content(text: &str, t: &Tok) -> Option<Range<usize>> {
    let TokKind::Str(value) = &t.kind else {
        return None;
    };
    let raw = text.get(t.span.clone())?;
    let inner = if let Some(after) = raw.strip_prefix('$') {
        let tag_end = after.find('$')? + 2;
        let tag = &raw[..tag_end];
        if raw.len() < 2 * tag_end || !raw.ends_with(tag) {
            return None;
        }
        t.span.start + tag_end..t.span.end - tag_end
    } else if raw.starts_with('\'') && raw.len() >= 2 {
        t.span.start + 1..t.span.end - 1
    } else {
        return None;
    };
    (text.get(inner.clone()) == Some(value.as_str())).then_some(inner)
}

/// Reads the body at `body` of `text`.
pub fn read(text: &str, body: Range<usize>, lang: Lang) -> Vec<Piece> {
    let mut out = Vec::new();
    read_each(text, body, lang, |p, _| out.push(p));
    out
}

/// Reads the body at `body` of `text`, handing each piece to `f` with the tokens of the
/// `;`-terminated part of the body it comes from.
fn read_each(text: &str, body: Range<usize>, lang: Lang, mut f: impl FnMut(Piece, &mut Tokenized)) {
    let Some(src) = text.get(body.clone()) else {
        return;
    };
    let split = super::split(src);
    let mut state = State::default();
    for raw in &split.statements {
        let span = raw.span.start + body.start..raw.span.end + body.start;
        let Ok(mut t) = tokens::tokenize(&text[span.clone()], span.start) else {
            continue;
        };
        let toks = super::parse::trim_semicolon(&t.toks);
        if toks.is_empty() {
            continue;
        }
        let pieces = match lang {
            Lang::Sql => vec![Piece {
                span: toks[0].span.start..toks[toks.len() - 1].span.end,
                conditional: false,
                kind: PieceKind::Sql,
            }],
            Lang::PlPgSql => state.statement(text, toks),
        };
        for p in pieces {
            f(p, &mut t);
        }
    }
}

/// A SQL piece's statement from the tokens it was read with (as if its text were tokenized
/// again; they are moved out, pieces do not overlap), else from its text.
fn sql_statement(text: &str, span: Range<usize>, t: &mut Tokenized) -> Statement {
    let from = t.toks.partition_point(|x| x.span.start < span.start);
    let to = t.toks.partition_point(|x| x.span.end <= span.end);
    let whole = t.toks.get(from).is_some_and(|x| x.span.start == span.start)
        && to > from
        && t.toks[to - 1].span.end == span.end;
    match whole.then(|| t.take(from..to)).flatten() {
        Some(sliced) if span.len() <= LARGE_STATEMENT => analyze_tokens(span, sliced),
        _ => analyze(text, span),
    }
}

/// A body read and its statements analyzed, in the body's own offsets (0 is its first
/// byte): what [`read`] finds, with the statement each piece runs.
#[derive(Debug)]
pub struct Body {
    pub pieces: Vec<BodyPiece>,
}

/// One piece of a [`Body`] and the statement it runs.
#[derive(Debug)]
pub struct BodyPiece {
    pub piece: Piece,
    /// [`PieceKind::Sql`]: the statement, analyzed. [`PieceKind::Literal`]: the literal's
    /// SQL, analyzed on its own (offsets in the literal). [`PieceKind::Query`]: its tokens,
    /// as a query. `None` for [`PieceKind::Dynamic`] and for a query that cannot be
    /// tokenized.
    pub stmt: Option<Statement>,
}

/// Bodies kept by [`read_body`]: a `DO` block is read for its locks, for its statements'
/// findings and for its dynamic SQL, one after the other, and a function's body each time a
/// statement calls it (or fires it as a trigger).
const BODIES_KEPT: usize = 8;

/// The bodies read last, newest last: `(text, language, body)`.
type Kept = Vec<(Rc<str>, Lang, Rc<Body>)>;

thread_local! {
    static BODIES: RefCell<Kept> = const { RefCell::new(Vec::new()) };
}

/// Reads the body `text` in `lang` and analyzes its statements; the result depends on the
/// text alone, so the last few bodies are kept and not read again.
pub fn read_body(text: &str, lang: Lang) -> Rc<Body> {
    let known = BODIES.with(|b| {
        b.borrow()
            .iter()
            .find(|(t, l, _)| *l == lang && **t == *text)
            .map(|(_, _, body)| Rc::clone(body))
    });
    if let Some(body) = known {
        return body;
    }
    let mut pieces = Vec::new();
    read_each(text, 0..text.len(), lang, |piece, t| {
        let stmt = match &piece.kind {
            PieceKind::Sql => Some(sql_statement(text, piece.span.clone(), t)),
            PieceKind::Literal(sql) => Some(analyze(sql, 0..sql.len())),
            PieceKind::Query => tokens::tokenize(&text[piece.span.clone()], piece.span.start)
                .ok()
                .map(|t| Statement {
                    span: piece.span.clone(),
                    toks: t.toks,
                    kind: StmtKind::Query,
                    source: Source::Recognizer,
                    parse_error: None,
                }),
            PieceKind::Dynamic => None,
        };
        pieces.push(BodyPiece { piece, stmt });
    });
    let body = Rc::new(Body { pieces });
    BODIES.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() >= BODIES_KEPT {
            b.remove(0);
        }
        b.push((Rc::from(text), lang, Rc::clone(&body)));
    });
    body
}

/// Where the reader is in the block structure.
#[derive(Debug, Default)]
struct State {
    /// In a `DECLARE` section (until its `BEGIN`).
    declare: bool,
    /// Open blocks: whether each is in its exception section.
    blocks: Vec<bool>,
    /// Open `IF`/`CASE`/loops.
    branches: usize,
}

impl State {
    fn conditional(&self) -> bool {
        self.branches > 0 || self.blocks.iter().any(|e| *e)
    }

    /// Steps over the control words in front of one `;`-terminated piece (reading the
    /// conditions and loop queries among them) and reads what remains.
    fn statement(&mut self, text: &str, toks: &[Tok]) -> Vec<Piece> {
        let mut out = Vec::new();
        let query = |from: usize, to: usize, conditional: bool| {
            (from < to).then(|| Piece {
                span: toks[from].span.start..toks[to - 1].span.end,
                conditional,
                kind: PieceKind::Query,
            })
        };
        let mut k = 0;
        while k < toks.len() {
            let t = &toks[k];
            if self.declare {
                match toks[k..].iter().position(|t| t.is("BEGIN")) {
                    Some(p) => {
                        self.declare = false;
                        self.blocks.push(false);
                        k += p + 1;
                        continue;
                    }
                    None => return out,
                }
            }
            if t.is("DECLARE") {
                self.declare = true;
                k += 1;
            } else if t.is("BEGIN") {
                self.blocks.push(false);
                k += 1;
            } else if t.is_punct("<<") {
                k += 3;
            } else if t.is("IF") || t.is("ELSIF") || t.is("ELSEIF") || t.is("WHILE") {
                let conditional = self.conditional() || !t.is("IF") && !t.is("WHILE");
                let end = if t.is("WHILE") {
                    toks[k..].iter().position(|t| t.is("LOOP")).map(|p| p + k)
                } else {
                    then_at(toks, k)
                };
                let Some(end) = end else { return out };
                out.extend(query(k + 1, end, conditional));
                if !t.is("ELSIF") && !t.is("ELSEIF") {
                    self.branches += 1;
                }
                k = end + 1;
            } else if t.is("CASE") {
                self.branches += 1;
                k += 1;
                // `CASE expr WHEN …`: step to the first WHEN.
                while k < toks.len() && !toks[k].is("WHEN") {
                    k += 1;
                }
            } else if t.is("WHEN") {
                k = then_at(toks, k).map_or(toks.len(), |e| e + 1);
            } else if t.is("ELSE") {
                k += 1;
            } else if t.is("LOOP") {
                self.branches += 1;
                k += 1;
            } else if t.is("FOR") || t.is("FOREACH") {
                let Some(end) = toks[k..].iter().position(|t| t.is("LOOP")).map(|p| p + k) else {
                    return out;
                };
                // `FOR r IN query LOOP`: the query runs once, when the loop starts.
                if let Some(i) = toks[k..end].iter().position(|t| t.is("IN")).map(|p| p + k) {
                    let first = toks.get(i + 1);
                    if first.is_some_and(|f| f.is("EXECUTE")) {
                        out.push(Piece {
                            span: toks[i + 1].span.start..toks[end - 1].span.end,
                            conditional: self.conditional(),
                            kind: PieceKind::Dynamic,
                        });
                    } else if first
                        .is_some_and(|f| f.is("SELECT") || f.is("WITH") || f.is_punct("("))
                    {
                        out.extend(query(i + 1, end, self.conditional()));
                    }
                }
                self.branches += 1;
                k = end + 1;
            } else if t.is("EXCEPTION") {
                if let Some(e) = self.blocks.last_mut() {
                    *e = true;
                }
                k += 1;
            } else if t.is("END") {
                let next = toks.get(k + 1);
                if next.is_some_and(|n| n.is("IF") || n.is("LOOP") || n.is("CASE")) {
                    self.branches = self.branches.saturating_sub(1);
                    k += 2;
                } else {
                    self.blocks.pop();
                    k += 1;
                    if next.is_some_and(|n| n.ident().is_some()) {
                        k += 1;
                    }
                }
            } else {
                break;
            }
        }
        let Some(rest) = toks.get(k..).filter(|r| !r.is_empty()) else {
            return out;
        };
        let first = &rest[0];
        let whole = first.span.start..rest[rest.len() - 1].span.end;
        let conditional = self.conditional();
        let mut piece = |span, kind| {
            out.push(Piece {
                span,
                conditional,
                kind,
            })
        };
        if first.is("EXECUTE") {
            let literal = rest.get(1).filter(|s| matches!(s.kind, TokKind::Str(_)));
            let plain = rest.get(2).is_none_or(|n| n.is("INTO") || n.is("USING"));
            match (literal, plain) {
                (Some(s), true) => match (string_content(text, s), &s.kind) {
                    (Some(content), _) => piece(content, PieceKind::Sql),
                    (None, TokKind::Str(v)) => piece(whole, PieceKind::Literal(v.to_string())),
                    (None, _) => piece(whole, PieceKind::Dynamic),
                },
                _ => piece(whole, PieceKind::Dynamic),
            }
            return out;
        }
        if first.is("PERFORM") || (first.is("RETURN") && rest.len() > 1) {
            // `RETURN QUERY …` / `RETURN expr` / `PERFORM …`.
            let skip = if rest.get(1).is_some_and(|t| t.is("QUERY")) {
                2
            } else {
                1
            };
            if let Some(q) = rest.get(skip) {
                if q.is("EXECUTE") {
                    piece(q.span.start..whole.end, PieceKind::Dynamic);
                } else {
                    piece(q.span.start..whole.end, PieceKind::Query);
                }
            }
            return out;
        }
        const NOT_SQL: &[&str] = &[
            "RAISE", "RETURN", "NULL", "EXIT", "CONTINUE", "GET", "OPEN", "FETCH", "CLOSE", "MOVE",
            "ASSERT", "COMMIT", "ROLLBACK",
        ];
        if NOT_SQL.iter().any(|w| first.is(w)) {
            return out;
        }
        // An assignment: `x := …`, `x = …`, `r.f := …`, `a[1] := …`: its value may query.
        const STATEMENTS: &[&str] = &[
            "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "ALTER", "CREATE", "DROP", "MERGE",
            "TRUNCATE", "LOCK", "COMMENT", "GRANT", "REVOKE", "SET", "RESET", "VALUES", "CALL",
            "REFRESH", "REINDEX", "VACUUM", "ANALYZE", "CLUSTER", "COPY",
        ];
        if !STATEMENTS.iter().any(|w| first.is(w)) {
            if let Some(eq) = rest
                .iter()
                .take(5)
                .position(|t| t.is_punct(":=") || t.is_punct("="))
            {
                let target = &rest[..eq];
                let simple = target.iter().all(|t| {
                    t.ident().is_some()
                        || t.is_punct(".")
                        || t.is_punct("[")
                        || t.is_punct("]")
                        || matches!(t.kind, TokKind::Number(_))
                });
                if simple && !target.is_empty() {
                    if let Some(v) = rest.get(eq + 1) {
                        piece(v.span.start..whole.end, PieceKind::Query);
                    }
                    return out;
                }
            }
        }
        piece(whole, PieceKind::Sql);
        out
    }
}

/// The index of the `THEN` that ends a condition starting at `from` (outside parentheses).
fn then_at(toks: &[Tok], from: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(from) {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        } else if depth == 0 && t.is("THEN") {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(src: &str) -> Vec<(String, bool, String)> {
        let toks = tokens::tokenize(src, 0).unwrap().toks;
        let (body, lang) = do_body(src, &toks).unwrap();
        read(src, body, lang.unwrap())
            .into_iter()
            .map(|p| {
                let kind = match &p.kind {
                    PieceKind::Sql => "sql".to_string(),
                    PieceKind::Literal(s) => format!("literal {s}"),
                    PieceKind::Query => "query".into(),
                    PieceKind::Dynamic => "dynamic".into(),
                };
                (src[p.span].to_string(), p.conditional, kind)
            })
            .collect()
    }

    #[test]
    fn statements_of_a_do_block_with_their_conditions() {
        let src = "DO $$\nDECLARE n int := 0;\nBEGIN\n  ALTER TABLE a ADD COLUMN x int;\n  \
                   IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'c') THEN\n    \
                   ALTER TABLE a ADD CONSTRAINT c CHECK (x > 0);\n  ELSE\n    UPDATE a SET x = 1;\n  \
                   END IF;\n  n := (SELECT count(*) FROM a);\n  RAISE NOTICE 'n %', n;\n  \
                   PERFORM refresh_all();\n  EXECUTE 'CREATE INDEX i ON a (x)';\n  \
                   EXECUTE format('DROP TABLE %I', 'b');\n  FOR r IN SELECT * FROM a LOOP\n    \
                   DELETE FROM b WHERE id = r.id;\n  END LOOP;\n\
                   EXCEPTION WHEN others THEN\n  DROP TABLE c;\nEND $$;";
        assert_eq!(
            pieces(src),
            [
                (
                    "ALTER TABLE a ADD COLUMN x int".to_string(),
                    false,
                    "sql".to_string()
                ),
                (
                    "NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'c')".into(),
                    false,
                    "query".into()
                ),
                (
                    "ALTER TABLE a ADD CONSTRAINT c CHECK (x > 0)".into(),
                    true,
                    "sql".into()
                ),
                ("UPDATE a SET x = 1".into(), true, "sql".into()),
                ("(SELECT count(*) FROM a)".into(), false, "query".into()),
                ("refresh_all()".into(), false, "query".into()),
                ("CREATE INDEX i ON a (x)".into(), false, "sql".into()),
                (
                    "EXECUTE format('DROP TABLE %I', 'b')".into(),
                    false,
                    "dynamic".into()
                ),
                ("SELECT * FROM a".into(), false, "query".into()),
                ("DELETE FROM b WHERE id = r.id".into(), true, "sql".into()),
                ("DROP TABLE c".into(), true, "sql".into()),
            ]
        );
    }

    #[test]
    fn a_body_read_once_holds_each_statement_as_its_text_analyzed_alone() {
        let body = "\nDECLARE n int;\nBEGIN\n  ALTER TABLE a ADD COLUMN x int;\n  IF n > 0 THEN ALTER TABLE a\n    \
                    ALTER COLUMN x SET NOT NULL; END IF;\n  n := (SELECT count(*) FROM a);\n  \
                    EXECUTE 'CREATE INDEX i ON a (x)';\n  EXECUTE 'COMMENT ON TABLE a IS ''é''';\n  \
                    EXECUTE format('DROP TABLE %I', 'b');\nEND\n";
        let read = read_body(body, Lang::PlPgSql);
        let kinds: Vec<_> = read.pieces.iter().map(|p| p.piece.kind.clone()).collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
        for p in &read.pieces {
            let expected = match &p.piece.kind {
                PieceKind::Sql => Some(analyze(body, p.piece.span.clone())),
                PieceKind::Literal(sql) => Some(analyze(sql, 0..sql.len())),
                PieceKind::Query => Some(Statement {
                    span: p.piece.span.clone(),
                    toks: tokens::tokenize(&body[p.piece.span.clone()], p.piece.span.start)
                        .unwrap()
                        .toks,
                    kind: StmtKind::Query,
                    source: Source::Recognizer,
                    parse_error: None,
                }),
                PieceKind::Dynamic => None,
            };
            assert_eq!(
                format!("{:?}", p.stmt),
                format!("{expected:?}"),
                "{:?}",
                &body[p.piece.span.clone()]
            );
        }
        // Read once: the same body again is the body kept.
        assert!(Rc::ptr_eq(&read, &read_body(body, Lang::PlPgSql)));
        assert!(!Rc::ptr_eq(&read, &read_body(body, Lang::Sql)));
    }

    #[test]
    fn escaped_literals_and_sql_bodies() {
        let src = "DO $$ BEGIN EXECUTE 'COMMENT ON TABLE a IS ''x'''; END $$;";
        assert_eq!(
            pieces(src),
            [(
                "EXECUTE 'COMMENT ON TABLE a IS ''x'''".to_string(),
                false,
                "literal COMMENT ON TABLE a IS 'x'".to_string()
            )]
        );
        let body = "UPDATE a SET x = 1; DELETE FROM b";
        let p = read(body, 0..body.len(), Lang::Sql);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| !p.conditional && p.kind == PieceKind::Sql));
        assert_eq!(&body[p[1].span.clone()], "DELETE FROM b");
    }
}
