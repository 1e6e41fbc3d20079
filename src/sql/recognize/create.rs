//! `CREATE …`: tables in the shapes sqlparser rejects, functions and procedures, and the
//! other objects whose creation matters to the lint model.

use super::alter::table_constraint;
use super::column::{column_def, column_options};
use super::cursor::{column_list, Cur};
use super::query_sources;
use crate::sql::ir::*;
use crate::sql::tokens::{split_top_level_commas, Tok, TokKind};

pub(super) fn create(c: &mut Cur) -> Option<StmtKind> {
    c.eat_seq(&["OR", "REPLACE"]);
    let unique = c.eat("UNIQUE");
    if c.eat("INDEX") {
        let concurrently = c.eat("CONCURRENTLY");
        let if_not_exists = c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let name = if c.peek_is("ON") {
            None
        } else {
            Some(c.name()?.name)
        };
        if !c.eat("ON") {
            return None;
        }
        let only = c.eat("ONLY");
        let table = c.name()?;
        if c.eat("USING") {
            c.word();
        }
        let columns = c.parens().map(column_list).unwrap_or_default();
        return Some(StmtKind::CreateIndex {
            name,
            table,
            unique,
            concurrently,
            if_not_exists,
            only,
            columns,
        });
    }
    if unique {
        return None;
    }
    if let Some(table) = create_table(c) {
        return Some(table);
    }
    if c.eat("DATABASE") {
        return Some(StmtKind::CreateDatabase);
    }
    if c.eat("STATISTICS") {
        let from = c.rest().iter().rposition(|t| t.is("FROM"));
        let table = from.and_then(|i| {
            let mut f = Cur::new(&c.rest()[i + 1..]);
            f.name()
        });
        return Some(StmtKind::CreateStatistics { table });
    }
    if c.eat_seq(&["MATERIALIZED", "VIEW"]) {
        c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let name = c.name()?;
        return Some(StmtKind::CreateMaterializedView {
            name,
            sources: query_sources(c.rest()),
        });
    }
    if c.eat("FUNCTION") || c.eat("PROCEDURE") {
        return create_function(c);
    }
    // CREATE [TEMP] [RECURSIVE] VIEW name [(columns)] [WITH (…)] AS query
    {
        let mut v = Cur::new(c.rest());
        let _ = v.eat("TEMP") || v.eat("TEMPORARY");
        v.eat("RECURSIVE");
        if v.eat("VIEW") {
            let name = v.name()?;
            return Some(StmtKind::CreateView {
                name,
                sources: query_sources(v.rest()),
            });
        }
    }
    // CREATE [CONSTRAINT] TRIGGER name … ON table … EXECUTE FUNCTION|PROCEDURE f(…)
    c.eat("CONSTRAINT");
    if c.eat("TRIGGER") {
        let name = c.word()?;
        while !c.at_end() && !c.peek_is("ON") {
            c.i += 1;
        }
        c.eat("ON");
        let table = c.name()?;
        let function = c.rest().iter().position(|t| t.is("EXECUTE")).and_then(|i| {
            let mut f = Cur::new(&c.rest()[i + 1..]);
            let _ = f.eat("FUNCTION") || f.eat("PROCEDURE");
            f.name()
        });
        return Some(StmtKind::CreateTrigger {
            table,
            name,
            function,
        });
    }
    let obj = c.peek()?;
    let what = match &obj.kind {
        TokKind::Word { upper, .. } => upper.to_string(),
        _ => return None,
    };
    const OTHER: &[&str] = &[
        "FUNCTION",
        "PROCEDURE",
        "TYPE",
        "DOMAIN",
        "SCHEMA",
        "EXTENSION",
        "SEQUENCE",
        "ROLE",
        "USER",
        "GROUP",
        "POLICY",
        "VIEW",
        "AGGREGATE",
        "OPERATOR",
        "CAST",
        "COLLATION",
        "PUBLICATION",
        "SUBSCRIPTION",
        "SERVER",
        "FOREIGN",
        "RULE",
        "MATERIALIZED",
        "TEXT",
        "CONVERSION",
        "LANGUAGE",
        "TRANSFORM",
        "EVENT",
        "ACCESS",
        "TABLESPACE",
        "TEMP",
        "TEMPORARY",
        "RECURSIVE",
    ];
    OTHER.contains(&what.as_str()).then(|| StmtKind::Other {
        what: format!("CREATE {what}"),
    })
}

/// `CREATE [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE …` in the shapes sqlparser rejects
/// (`USING heap`, `WITH (toast.…)`, `LIKE … INCLUDING …`, `COMPRESSION`, `OF type`,
/// `ON DELETE SET NULL (col)`, PostgreSQL 18's `CONSTRAINT c NOT NULL col` and `VIRTUAL`).
/// `None`, with the cursor where it was, when the statement creates something else.
fn create_table(c: &mut Cur) -> Option<StmtKind> {
    let start = c.i;
    let _ = c.eat("GLOBAL") || c.eat("LOCAL");
    let temporary = c.eat("TEMP") || c.eat("TEMPORARY");
    c.eat("UNLOGGED");
    if !c.eat("TABLE") {
        c.i = start;
        return None;
    }
    c.eat_seq(&["IF", "NOT", "EXISTS"]);
    let name = c.name()?;
    let mut partition_of = None;
    let mut typed = false;
    if c.eat_seq(&["PARTITION", "OF"]) {
        partition_of = Some(c.name()?);
        typed = true;
    } else if c.eat("OF") {
        // A typed table: its columns come from the composite type.
        c.name()?;
        typed = true;
    }
    let mut columns = Vec::new();
    let mut constraints = Vec::new();
    let mut like = Vec::new();
    if let Some(body) = c.parens() {
        // `CREATE TABLE t (a, b) AS query` names the columns of the query's result.
        let names_only = c.peek_is("AS");
        for part in split_top_level_commas(body) {
            if part.is_empty() || names_only {
                continue;
            }
            table_element(part, typed, &mut columns, &mut constraints, &mut like)?;
        }
    }
    // What may follow (`INHERITS`, `PARTITION BY`, `FOR VALUES`, `USING`, `WITH (…)`,
    // `ON COMMIT`, `TABLESPACE`, `AS query`) neither locks other tables nor changes columns.
    Some(StmtKind::CreateTable {
        name,
        partition_of,
        columns,
        constraints,
        like,
        temporary,
    })
}

/// One element of a `CREATE TABLE` list: a column, a table constraint or a `LIKE` clause.
/// In a typed table or a partition (`typed`) a column element adds options only.
fn table_element(
    part: &[Tok],
    typed: bool,
    columns: &mut Vec<ColumnDef>,
    constraints: &mut Vec<(Option<String>, Constraint)>,
    like: &mut Vec<LikeSource>,
) -> Option<()> {
    let mut e = Cur::new(part);
    if e.eat("LIKE") {
        let table = e.name()?;
        let (mut indexes, mut checks) = (false, false);
        while !e.at_end() {
            let including = if e.eat("INCLUDING") {
                true
            } else if e.eat("EXCLUDING") {
                false
            } else {
                return None;
            };
            match e.word()?.as_str() {
                "all" => (indexes, checks) = (including, including),
                "indexes" => indexes = including,
                "constraints" => checks = including,
                _ => {}
            }
        }
        like.push(LikeSource {
            table,
            indexes,
            constraints: checks,
        });
        return Some(());
    }
    let named = if e.eat("CONSTRAINT") {
        Some(e.word()?)
    } else {
        None
    };
    let starts_constraint = ["CHECK", "UNIQUE", "PRIMARY", "FOREIGN", "EXCLUDE"]
        .iter()
        .any(|k| e.peek_is(k))
        || (e.peek_is("NOT") && part.get(e.i + 1).is_some_and(|t| t.is("NULL")));
    if named.is_some() || starts_constraint {
        let ActionKind::AddConstraint {
            name, constraint, ..
        } = table_constraint(&mut e, named, part)?
        else {
            return None;
        };
        constraints.push((name, constraint));
        return Some(());
    }
    if typed {
        // `col WITH OPTIONS …` or `col …`: options of a column the type or parent defines.
        let mut col = ColumnDef {
            name: e.word()?,
            ..ColumnDef::default()
        };
        e.eat_seq(&["WITH", "OPTIONS"]);
        column_options(&mut e, &mut col)?;
        let name = col.name.clone();
        if col.primary_key {
            constraints.push((
                None,
                Constraint::PrimaryKey {
                    columns: vec![name.clone()],
                    using_index: None,
                },
            ));
        } else if col.unique {
            constraints.push((
                None,
                Constraint::Unique {
                    columns: vec![name.clone()],
                    using_index: None,
                },
            ));
        }
        if col.not_null {
            constraints.push((
                None,
                Constraint::NotNull {
                    column: name.clone(),
                },
            ));
        }
        if let Some(expr) = col.check {
            constraints.push((None, Constraint::Check { expr }));
        }
        if let Some(references) = col.references {
            constraints.push((
                None,
                Constraint::ForeignKey {
                    columns: vec![name],
                    references,
                },
            ));
        }
        return Some(());
    }
    columns.push(column_def(&mut e)?);
    Some(())
}

/// `ON DELETE …` and `ON UPDATE …` at the start of `rest` (a foreign key's options, after
/// the referenced columns), in any order, up to the next column option.
pub(super) fn ref_actions(rest: &[Tok]) -> (RefAction, RefAction) {
    let mut c = Cur::new(rest);
    let (mut on_delete, mut on_update) = (RefAction::NoAction, RefAction::NoAction);
    loop {
        if c.eat("MATCH") {
            c.word();
            continue;
        }
        if !c.eat("ON") {
            break;
        }
        let delete = c.eat("DELETE");
        if !delete && !c.eat("UPDATE") {
            break;
        }
        let action = if c.eat("CASCADE") {
            RefAction::Cascade
        } else if c.eat("RESTRICT") {
            RefAction::Restrict
        } else if c.eat_seq(&["SET", "NULL"]) {
            c.parens();
            RefAction::SetNull
        } else if c.eat_seq(&["SET", "DEFAULT"]) {
            c.parens();
            RefAction::SetDefault
        } else {
            c.eat_seq(&["NO", "ACTION"]);
            RefAction::NoAction
        };
        if delete {
            on_delete = action;
        } else {
            on_update = action;
        }
    }
    (on_delete, on_update)
}

/// After `CREATE [OR REPLACE] FUNCTION|PROCEDURE`: the name, the declared volatility and
/// language, and where the body is, read from the options outside the body (a quoted body
/// is one token; a `BEGIN ATOMIC` or `RETURN` body ends the options).
fn create_function(c: &mut Cur) -> Option<StmtKind> {
    let name = c.name()?;
    c.parens();
    let mut volatility = FunctionVolatility::Volatile;
    let mut language = None;
    let mut body = None;
    while let Some(t) = c.peek() {
        if t.is("RETURN") || (t.is("BEGIN") && c.t.get(c.i + 1).is_some_and(|n| n.is("ATOMIC"))) {
            break;
        }
        if t.is("IMMUTABLE") {
            volatility = FunctionVolatility::Immutable;
        } else if t.is("STABLE") {
            volatility = FunctionVolatility::Stable;
        } else if t.is("VOLATILE") {
            volatility = FunctionVolatility::Volatile;
        } else if t.is("LANGUAGE") {
            if let Some(l) = c.t.get(c.i + 1) {
                language = match &l.kind {
                    TokKind::Word { value, .. } => Some(value.to_ascii_lowercase()),
                    TokKind::Str(s) => Some(s.to_ascii_lowercase()),
                    _ => None,
                };
            }
        } else if t.is("AS")
            && c.t
                .get(c.i + 1)
                .is_some_and(|n| matches!(n.kind, TokKind::Str(_)))
        {
            body = Some(c.i + 1);
        }
        c.i += 1;
    }
    Some(StmtKind::CreateFunction {
        name,
        volatility,
        language,
        body,
    })
}
