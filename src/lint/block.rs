//! Statements that run inside another one: the SQL of a `DO` block, and the body of a
//! function this file creates and then calls (`SELECT f()`, `PERFORM f()`, `CALL p()`).
//! Those with literal text are linted like the file's own statements (at their place in the
//! file) and make up the outer statement's lock report; `EXECUTE` of SQL built at run time
//! is left to the `unchecked-dynamic-sql` note.

use std::collections::HashMap;
use std::ops::Range;

use super::context::FileContext;
use crate::sql::ir::StmtKind;
use crate::sql::parse::Statement;
use crate::sql::plpgsql::{self, Lang, PieceKind};
use crate::sql::tokens::TokKind;

/// A statement run by another one.
#[derive(Debug, Clone)]
pub struct Inner {
    pub stmt: Statement,
    /// Runs only when a branch is taken.
    pub conditional: bool,
    /// Its span is its place in the file: rules run on it (else only its locks count).
    pub checked: bool,
}

/// Bodies of the functions this file created, by name: where the body is and its
/// language, and whether its statements were linted already (they are reported once).
#[derive(Debug, Clone, Default)]
pub struct LocalFunctions {
    bodies: HashMap<String, (Range<usize>, Lang, bool)>,
}

impl LocalFunctions {
    /// Records the body of a `CREATE FUNCTION|PROCEDURE` statement.
    pub fn record(&mut self, src: &str, st: &Statement) {
        let StmtKind::CreateFunction {
            name,
            language,
            body: Some(b),
            ..
        } = &st.kind
        else {
            return;
        };
        let lang = language.as_deref().and_then(Lang::parse);
        let span = st
            .toks
            .get(*b)
            .and_then(|t| plpgsql::string_content(src, t));
        if let (Some(lang), Some(span)) = (lang, span) {
            self.bodies.insert(name.name.clone(), (span, lang, false));
        }
    }
}

/// The statements `st` runs from a body in this file: a `DO` block's, or those of the
/// functions of this file it calls.
pub fn inner_statements(src: &str, st: &Statement, ctx: &mut FileContext) -> Vec<Inner> {
    match &st.kind {
        StmtKind::Do => match plpgsql::do_body(src, &st.toks) {
            Some((body, Some(lang))) => read(src, body, lang, true),
            _ => Vec::new(),
        },
        StmtKind::Query | StmtKind::Other { .. } | StmtKind::Insert { .. } => {
            if ctx.local_functions.bodies.is_empty() {
                return Vec::new();
            }
            let calls = crate::sql::dml::access(&st.toks).calls;
            let mut out = Vec::new();
            for f in calls {
                let Some((body, lang, seen)) = ctx.local_functions.bodies.get_mut(&f) else {
                    continue;
                };
                let checked = !*seen;
                *seen = true;
                let (body, lang) = (body.clone(), *lang);
                out.extend(read(src, body, lang, checked));
            }
            out
        }
        _ => Vec::new(),
    }
}

fn read(src: &str, body: Range<usize>, lang: Lang, checked: bool) -> Vec<Inner> {
    let Some(text) = src.get(body.clone()) else {
        return Vec::new();
    };
    let read = plpgsql::read_body(text, lang);
    let mut out = Vec::new();
    for p in &read.pieces {
        let Some(stmt) = &p.stmt else { continue };
        let (stmt, in_file) = match &p.piece.kind {
            PieceKind::Sql | PieceKind::Query => (stmt.shifted(body.start), true),
            PieceKind::Literal(_) => (stmt.clone(), false),
            PieceKind::Dynamic => continue,
        };
        out.push(Inner {
            stmt,
            conditional: p.piece.conditional,
            checked: checked && in_file,
        });
    }
    out
}

/// The text of a function body held in a string token of a `CREATE FUNCTION` statement
/// (for the catalog, which follows calls from later files).
pub fn function_body(st: &Statement) -> Option<&str> {
    let StmtKind::CreateFunction { body: Some(b), .. } = &st.kind else {
        return None;
    };
    match &st.toks.get(*b)?.kind {
        TokKind::Str(s) => Some(s),
        _ => None,
    }
}
