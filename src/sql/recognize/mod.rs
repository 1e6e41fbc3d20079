//! Token-level recognizer for statements sqlparser rejects or does not model.
//!
//! It reads just enough of a statement's shape to give the rules and the lock model what
//! they need; anything it cannot place returns `None` and becomes `unparsed-statement`.
//!
//! `cursor`: the token cursor and token helpers; `create`: `CREATE` statements (tables,
//! functions and the rest); `alter`: `ALTER` statements and `ALTER TABLE` actions;
//! `column`: column definitions and their options, shared by `CREATE TABLE` and
//! `ADD COLUMN`. This module dispatches on the first keyword and reads the small statements.

mod alter;
mod column;
mod create;
mod cursor;

pub(crate) use column::COLUMN_OPTION_STARTS;
pub use cursor::toks_text;

use super::ir::*;
use super::parse::trim_semicolon;
use super::tokens::{split_top_level_commas, Tok, TokKind};
use alter::alter;
use create::create;
use cursor::Cur;

/// Index of the first token after `ALTER TABLE [IF EXISTS] [ONLY] name [*]`.
pub fn alter_table_body_start(toks: &[Tok]) -> Option<usize> {
    let mut c = Cur::new(toks);
    if !c.eat_seq(&["ALTER", "TABLE"]) {
        return None;
    }
    c.eat_seq(&["IF", "EXISTS"]);
    c.eat("ONLY");
    c.name()?;
    c.eat_punct("*");
    Some(c.i)
}

/// Recognizes a statement from its tokens.
pub fn recognize(toks: &[Tok]) -> Option<StmtKind> {
    let toks = trim_semicolon(toks);
    let mut c = Cur::new(toks);
    let first = c.peek()?;
    let kw = match &first.kind {
        TokKind::Word { upper, .. } => upper.to_string(),
        TokKind::Punct(p) if p == "(" => return Some(StmtKind::Query),
        _ => return None,
    };
    c.i += 1;
    match kw.as_str() {
        "CREATE" => create(&mut c),
        "DROP" => drop(&mut c),
        "ALTER" => alter(&mut c, toks),
        "REINDEX" => {
            if let Some(_opts) = c.parens() {}
            let target = if c.eat("INDEX") {
                ReindexTarget::Index
            } else if c.eat("TABLE") {
                ReindexTarget::Table
            } else if c.eat("SCHEMA") {
                ReindexTarget::Schema
            } else if c.eat("DATABASE") {
                ReindexTarget::Database
            } else if c.eat("SYSTEM") {
                ReindexTarget::System
            } else {
                return None;
            };
            let concurrently = c.t.iter().any(|t| t.is("CONCURRENTLY"));
            c.eat("CONCURRENTLY");
            let name = c.name().unwrap_or_else(|| ObjName::new(""));
            Some(StmtKind::Reindex {
                target,
                name,
                concurrently,
            })
        }
        "CLUSTER" => {
            c.eat("VERBOSE");
            c.parens();
            let table = c.name();
            Some(StmtKind::Cluster { table })
        }
        "VACUUM" => {
            let mut full = false;
            loop {
                if c.eat("FULL") {
                    full = true;
                } else if c.eat("FREEZE")
                    || c.eat("VERBOSE")
                    || c.eat("ANALYZE")
                    || c.eat("ANALYSE")
                {
                } else if let Some(opts) = c.parens() {
                    for part in split_top_level_commas(opts) {
                        if part.first().is_some_and(|t| t.is("FULL"))
                            && !part.get(1).is_some_and(|t| {
                                t.is("FALSE")
                                    || t.is("OFF")
                                    || matches!(&t.kind, TokKind::Number(n) if n == "0")
                            })
                        {
                            full = true;
                        }
                    }
                } else {
                    break;
                }
            }
            let mut tables = Vec::new();
            while let Some(n) = c.name() {
                tables.push(n);
                c.parens();
                if !c.eat_punct(",") {
                    break;
                }
            }
            Some(StmtKind::Vacuum { full, tables })
        }
        "ANALYZE" | "ANALYSE" => Some(StmtKind::Analyze),
        "REFRESH" => {
            if !c.eat_seq(&["MATERIALIZED", "VIEW"]) {
                return None;
            }
            let concurrently = c.eat("CONCURRENTLY");
            Some(StmtKind::RefreshMatView {
                name: c.name()?,
                concurrently,
            })
        }
        "LOCK" => {
            c.eat("TABLE");
            let tables = c.names();
            if tables.is_empty() {
                return None;
            }
            let mode = if c.eat("IN") {
                let mut words = Vec::new();
                while let Some(t) = c.peek() {
                    if t.is("MODE") {
                        break;
                    }
                    words.push(match &t.kind {
                        TokKind::Word { upper, .. } => upper.to_string(),
                        _ => return None,
                    });
                    c.i += 1;
                }
                LockMode::from_sql(&words.join(" "))?
            } else {
                LockMode::AccessExclusive
            };
            Some(StmtKind::Lock { tables, mode })
        }
        "DO" => Some(StmtKind::Do),
        "COMMENT" => {
            if !c.eat("ON") {
                return None;
            }
            let table = if c.eat("TABLE") || c.eat_seq(&["MATERIALIZED", "VIEW"]) {
                c.name()
            } else {
                None
            };
            Some(StmtKind::Comment { table })
        }
        "BEGIN" | "START" => Some(StmtKind::Begin),
        // Two-phase commit ends a prepared transaction, not the current one.
        "COMMIT" | "ROLLBACK" if c.peek_is("PREPARED") => Some(StmtKind::Other {
            what: format!("{kw} PREPARED"),
        }),
        "COMMIT" | "END" => Some(StmtKind::Commit),
        "ROLLBACK" | "ABORT" => {
            if c.contains("TO") {
                Some(StmtKind::Other {
                    what: "ROLLBACK TO SAVEPOINT".into(),
                })
            } else {
                Some(StmtKind::Rollback)
            }
        }
        "SET" => {
            let local = c.eat("LOCAL");
            c.eat("SESSION");
            let mut name = c.word()?;
            if name == "time" && c.eat("ZONE") {
                name = "timezone".into();
            } else if !(c.eat_punct("=") || c.eat("TO")) {
                return Some(StmtKind::Other { what: "SET".into() });
            }
            let value = c
                .rest()
                .iter()
                .map(|t| match &t.kind {
                    TokKind::Str(s) => s.to_string(),
                    TokKind::Word { value, .. } => value.to_string(),
                    TokKind::Number(n) => n.to_string(),
                    TokKind::Punct(p) => p.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            Some(StmtKind::Set { name, value, local })
        }
        "RESET" => {
            let name = c.word()?;
            Some(StmtKind::Reset {
                name: (name != "all").then_some(name),
            })
        }
        "TRUNCATE" => {
            c.eat("TABLE");
            let tables = c.names();
            Some(StmtKind::Truncate {
                tables,
                cascade: c.contains("CASCADE"),
            })
        }
        "UPDATE" => {
            c.eat("ONLY");
            let table = c.name()?;
            Some(StmtKind::Update {
                table,
                has_where: c.contains("WHERE"),
            })
        }
        "DELETE" => {
            c.eat("FROM");
            c.eat("ONLY");
            let table = c.name()?;
            Some(StmtKind::Delete {
                table,
                has_where: c.contains("WHERE"),
            })
        }
        "INSERT" => {
            c.eat("INTO");
            Some(StmtKind::Insert { table: c.name()? })
        }
        "SELECT" | "WITH" | "VALUES" | "TABLE" | "EXPLAIN" | "SHOW" => Some(StmtKind::Query),
        "COPY" => Some(StmtKind::Copy),
        "GRANT" | "REVOKE" | "SAVEPOINT" | "RELEASE" | "CALL" | "NOTIFY" | "LISTEN"
        | "UNLISTEN" | "DISCARD" | "PREPARE" | "EXECUTE" | "DEALLOCATE" | "CHECKPOINT"
        | "SECURITY" | "IMPORT" | "REASSIGN" | "LOAD" | "DECLARE" | "FETCH" | "CLOSE" | "MOVE" => {
            Some(StmtKind::Other { what: kw })
        }
        _ => None,
    }
}

/// Relations a query reads (see [`super::dml`]).
pub(super) fn query_sources(toks: &[Tok]) -> Vec<ObjName> {
    super::dml::access(toks).reads
}

fn drop(c: &mut Cur) -> Option<StmtKind> {
    if c.eat("INDEX") {
        let concurrently = c.eat("CONCURRENTLY");
        c.eat_seq(&["IF", "EXISTS"]);
        let names = c.names();
        if names.is_empty() {
            return None;
        }
        return Some(StmtKind::DropIndex {
            names,
            concurrently,
        });
    }
    if c.eat("TRIGGER") {
        c.eat_seq(&["IF", "EXISTS"]);
        let name = c.word()?;
        if !c.eat("ON") {
            return None;
        }
        return Some(StmtKind::DropTrigger {
            table: c.name()?,
            name,
        });
    }
    if c.eat("FUNCTION") || c.eat("PROCEDURE") || c.eat("ROUTINE") {
        c.eat_seq(&["IF", "EXISTS"]);
        // Names, each with an optional argument list.
        let mut names = Vec::new();
        while let Some(n) = c.name() {
            names.push(n);
            c.parens();
            if !c.eat_punct(",") {
                break;
            }
        }
        return Some(StmtKind::Drop {
            kind: DropKind::Function,
            names,
            cascade: c.contains("CASCADE"),
        });
    }
    let kind = if c.eat("TABLE") {
        DropKind::Table
    } else if c.eat("VIEW") {
        DropKind::View
    } else if c.eat_seq(&["MATERIALIZED", "VIEW"]) {
        DropKind::MaterializedView
    } else if c.eat("SCHEMA") {
        DropKind::Schema
    } else if c.eat("DATABASE") {
        DropKind::Database
    } else if c.eat("SEQUENCE") {
        DropKind::Sequence
    } else if c.eat("TYPE") {
        DropKind::Type
    } else {
        c.word()?;
        DropKind::Other
    };
    c.eat_seq(&["IF", "EXISTS"]);
    let names = if kind == DropKind::Other {
        Vec::new()
    } else {
        c.names()
    };
    Some(StmtKind::Drop {
        kind,
        names,
        cascade: c.contains("CASCADE"),
    })
}
