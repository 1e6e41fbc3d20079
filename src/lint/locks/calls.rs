//! Data statements, `COPY`, `DO` blocks and function calls: what the statements they run
//! (or the bodies they call) lock.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::rows::row_effects;
use super::statement::{predict_at, read_relation};
use super::{Condition, LockReport};
use crate::lint::context::FileContext;
use crate::sql::dml::{self, WriteKind};
use crate::sql::ir::{LockMode, ObjName, StmtKind};
use crate::sql::parse::Statement;
use crate::sql::plpgsql::{self, Lang, PieceKind};
use crate::sql::tokens::{Tok, TokKind};

/// How deep function bodies are followed (a function calling a function …).
const MAX_DEPTH: u8 = 4;

/// What calling a function does, by name and depth (`None`: nothing known).
type CallEffects = HashMap<(String, u8), Option<LockReport>>;

thread_local! {
    /// What calling a function does, by name and depth, for one state of the catalog (its
    /// generation): worked out once while the catalog does not change (functions calling
    /// functions would otherwise cost their fan-out to the power of the depth, for every
    /// statement that calls them).
    static CALLS: RefCell<(u64, CallEffects)> =
        RefCell::new((0, HashMap::new()));
}

/// What a data statement does, from its tokens: ROW EXCLUSIVE on the tables it writes
/// (with what foreign keys and triggers do when rows change), ACCESS SHARE on the tables
/// it reads (ROW SHARE with `FOR UPDATE`), and what the functions it calls do.
pub(super) fn data_access(r: &mut LockReport, toks: &[Tok], ctx: &FileContext, depth: u8) {
    use LockMode::*;
    let a = dml::access(toks);
    for w in &a.writes {
        r.lock(&w.table, RowExclusive);
        match w.kind {
            WriteKind::Update | WriteKind::Delete if !w.has_where => r.scan(&w.table),
            WriteKind::Update | WriteKind::Delete | WriteKind::Merge => r.maybe_scan(&w.table),
            WriteKind::Insert => {}
        }
        row_effects(r, w, ctx, depth);
    }
    let mode = if a.row_locks { RowShare } else { AccessShare };
    for t in &a.reads {
        if a.writes.iter().any(|w| w.table.name == t.name) {
            r.maybe_scan(t);
            continue;
        }
        read_relation(r, t, ctx, mode, 0);
    }
    for f in &a.calls {
        call(r, f, ctx, depth);
    }
}

/// `COPY t FROM …` writes `t`; `COPY t TO …` reads all of it; `COPY (query) TO …` runs
/// the query.
pub(super) fn copy(r: &mut LockReport, toks: &[Tok], ctx: &FileContext, depth: u8) {
    if toks.get(1).is_some_and(|t| t.is_punct("(")) {
        data_access(r, &toks[1..], ctx, depth);
        return;
    }
    let Some(name) = toks.get(1).and_then(|t| t.ident()) else {
        return;
    };
    let mut table = ObjName::new(name);
    if toks.get(2).is_some_and(|t| t.is_punct(".")) {
        if let Some(n) = toks.get(3).and_then(|t| t.ident()) {
            table = ObjName {
                schema: Some(name.to_string()),
                name: n.to_string(),
            };
        }
    }
    let from = toks.iter().any(|t| t.is("FROM"));
    if from {
        r.lock(&table, LockMode::RowExclusive);
    } else {
        r.lock(&table, LockMode::AccessShare);
        r.scan(&table);
    }
}

/// What calling function `name` does, when the catalog holds its body.
pub(super) fn call(r: &mut LockReport, name: &str, ctx: &FileContext, depth: u8) {
    if let Some(e) = function_effects(name, ctx, depth) {
        r.merge(&e, Some(Condition::Call));
    }
}

/// The effects of running function `name`'s body (locks only), when the catalog holds it.
pub(super) fn function_effects(name: &str, ctx: &FileContext, depth: u8) -> Option<LockReport> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let generation = ctx.catalog.generation();
    let key = (name.to_string(), depth);
    let known = CALLS.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != generation {
            *c = (generation, HashMap::new());
        }
        c.1.get(&key).cloned()
    });
    if let Some(known) = known {
        return known;
    }
    let effects = (|| {
        let f = ctx.catalog.function(name)?;
        let body = f.body.clone()?;
        let lang = Lang::parse(f.language.as_deref().unwrap_or("sql"))?;
        Some(body_effects(&body, lang, ctx, depth + 1))
    })();
    CALLS.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 == generation {
            c.1.insert(key, effects.clone());
        }
    });
    effects
}

/// The combined effects of the statements of a procedural body (locks only; the catalog as
/// it is before the body runs).
pub(super) fn body_effects(text: &str, lang: Lang, ctx: &FileContext, depth: u8) -> LockReport {
    let mut r = LockReport::default();
    if depth >= MAX_DEPTH {
        return r;
    }
    let mut created: Vec<ObjName> = Vec::new();
    for p in &plpgsql::read_body(text, lang).pieces {
        let cond = p.piece.conditional.then_some(Condition::Branch);
        let inner = match (&p.piece.kind, &p.stmt) {
            (PieceKind::Dynamic, _) => {
                r.incomplete = true;
                continue;
            }
            (_, None) => continue,
            (PieceKind::Query, Some(q)) => {
                let mut e = LockReport::default();
                data_access(&mut e, &q.toks, ctx, depth);
                r.merge(&e, cond);
                continue;
            }
            (PieceKind::Sql | PieceKind::Literal(_), Some(st)) => st,
        };
        let mut e = predict_at(inner, ctx, depth);
        e.without(&created);
        r.merge(&e, cond);
        if let Some(t) = creates(&inner.kind) {
            created.push(t.clone());
        }
    }
    r
}

/// The relation a statement creates, if any.
pub fn creates(kind: &StmtKind) -> Option<&ObjName> {
    match kind {
        StmtKind::CreateTable { name, .. } | StmtKind::CreateMaterializedView { name, .. } => {
            Some(name)
        }
        _ => None,
    }
}

/// The body of a `DO` statement, from its tokens: the text and language.
pub(super) fn do_text(toks: &[Tok]) -> Option<(Arc<str>, Lang)> {
    let mut lang = Lang::PlPgSql;
    let mut text = None;
    for (i, t) in toks.iter().enumerate() {
        match &t.kind {
            TokKind::Str(s) if text.is_none() => text = Some(Arc::from(s.as_str())),
            _ if t.is("LANGUAGE") => {
                lang = toks
                    .get(i + 1)
                    .and_then(|l| l.ident().and_then(Lang::parse))?;
            }
            _ => {}
        }
    }
    text.map(|t| (t, lang))
}

/// `CREATE FUNCTION … LANGUAGE sql`: PostgreSQL parses the body's statements when the
/// function is created (`check_function_bodies`), which locks the tables they name.
pub(super) fn create_function(
    r: &mut LockReport,
    st: &Statement,
    language: Option<&str>,
    body: Option<usize>,
    ctx: &FileContext,
) {
    let atomic = crate::sql::tokens::find_seq(&st.toks, &["BEGIN", "ATOMIC"]);
    let toks: Vec<Tok> = if let Some(i) = atomic {
        st.toks[i + 2..].to_vec()
    } else if language == Some("sql") {
        let Some(TokKind::Str(text)) = body.and_then(|i| st.toks.get(i)).map(|t| &t.kind) else {
            return;
        };
        match crate::sql::tokens::tokenize(text, 0) {
            Ok(t) => t.toks,
            Err(_) => return,
        }
    } else {
        return;
    };
    let a = dml::access(&toks);
    for w in &a.writes {
        r.lock(&w.table, LockMode::RowExclusive);
    }
    for t in &a.reads {
        if !a.writes.iter().any(|w| w.table.name == t.name) {
            read_relation(r, t, ctx, LockMode::AccessShare, 0);
        }
    }
    r.may_scan.clear();
}
