//! Token-level recognizer for statements sqlparser rejects or does not model.
//!
//! It reads just enough of a statement's shape to give the rules and the lock model what
//! they need; anything it cannot place returns `None` and becomes `unparsed-statement`.

use super::ir::*;
use super::parse::{normalize_type, trim_semicolon};
use super::tokens::{split_top_level_commas, Tok, TokKind};

/// A cursor over a statement's tokens.
struct Cur<'a> {
    t: &'a [Tok],
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(t: &'a [Tok]) -> Self {
        Cur { t, i: 0 }
    }

    fn peek(&self) -> Option<&'a Tok> {
        self.t.get(self.i)
    }

    fn peek_is(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is(kw))
    }

    fn eat(&mut self, kw: &str) -> bool {
        if self.peek_is(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_seq(&mut self, kws: &[&str]) -> bool {
        let ok = kws
            .iter()
            .enumerate()
            .all(|(j, k)| self.t.get(self.i + j).is_some_and(|t| t.is(k)));
        if ok {
            self.i += kws.len();
        }
        ok
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_punct(p)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Option<String> {
        let v = self.peek()?.ident()?.to_string();
        self.i += 1;
        Some(v)
    }

    /// `name` or `schema.name` (or `db.schema.name`).
    fn name(&mut self) -> Option<ObjName> {
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
    fn names(&mut self) -> Vec<ObjName> {
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
    fn parens(&mut self) -> Option<&'a [Tok]> {
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

    fn rest(&self) -> &'a [Tok] {
        &self.t[self.i.min(self.t.len())..]
    }

    fn at_end(&self) -> bool {
        self.i >= self.t.len()
    }

    fn contains(&self, kw: &str) -> bool {
        self.rest().iter().any(|t| t.is(kw))
    }
}

/// Column names of a parenthesized list.
fn column_list(toks: &[Tok]) -> Vec<String> {
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
        TokKind::Word { upper, .. } => upper.clone(),
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
                        TokKind::Word { upper, .. } => upper.clone(),
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
                    TokKind::Str(s) => s.clone(),
                    TokKind::Word { value, .. } => value.clone(),
                    TokKind::Number(n) => n.clone(),
                    TokKind::Punct(p) => p.clone(),
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

fn create(c: &mut Cur) -> Option<StmtKind> {
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
        TokKind::Word { upper, .. } => upper.clone(),
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
fn ref_actions(rest: &[Tok]) -> (RefAction, RefAction) {
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

/// Relations a query reads (see [`super::dml`]).
fn query_sources(toks: &[Tok]) -> Vec<ObjName> {
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

fn alter(c: &mut Cur, toks: &[Tok]) -> Option<StmtKind> {
    if c.peek_is("TABLE") {
        let body = alter_table_body_start(toks)?;
        c.eat("TABLE");
        c.eat_seq(&["IF", "EXISTS"]);
        c.eat("ONLY");
        let table = c.name()?;
        let mut actions = Vec::new();
        for part in split_top_level_commas(&toks[body..]) {
            let (first, last) = (part.first()?, part.last()?);
            actions.push(Action {
                span: first.span.start..last.span.end,
                kind: alter_action(part)?,
            });
        }
        return Some(StmtKind::AlterTable { table, actions });
    }
    if c.eat("INDEX") {
        return Some(if c.contains("ATTACH") {
            StmtKind::AlterIndexAttachPartition
        } else {
            StmtKind::Other {
                what: "ALTER INDEX".into(),
            }
        });
    }
    if c.eat("SEQUENCE") {
        c.eat_seq(&["IF", "EXISTS"]);
        return Some(StmtKind::AlterSequence { name: c.name()? });
    }
    if c.eat("DOMAIN") {
        let name = c.name()?;
        if c.eat("ADD") {
            let not_valid = c
                .rest()
                .windows(2)
                .any(|w| w[0].is("NOT") && w[1].is("VALID"));
            return Some(StmtKind::AlterDomainAddConstraint { name, not_valid });
        }
        return Some(StmtKind::Other {
            what: "ALTER DOMAIN".into(),
        });
    }
    if c.eat("TYPE") {
        let name = c.name()?;
        if c.eat_seq(&["ADD", "VALUE"]) {
            return Some(StmtKind::AlterTypeAddValue { name });
        }
        return Some(StmtKind::Other {
            what: "ALTER TYPE".into(),
        });
    }
    let what = match &c.peek()?.kind {
        TokKind::Word { upper, .. } => upper.clone(),
        _ => return None,
    };
    const OTHER: &[&str] = &[
        "FUNCTION",
        "PROCEDURE",
        "ROUTINE",
        "ROLE",
        "USER",
        "GROUP",
        "SCHEMA",
        "EXTENSION",
        "DEFAULT",
        "PUBLICATION",
        "SUBSCRIPTION",
        "POLICY",
        "VIEW",
        "MATERIALIZED",
        "AGGREGATE",
        "OPERATOR",
        "COLLATION",
        "DATABASE",
        "SYSTEM",
        "SERVER",
        "FOREIGN",
        "TRIGGER",
        "RULE",
        "EVENT",
        "LANGUAGE",
        "LARGE",
        "TEXT",
        "STATISTICS",
        "TABLESPACE",
        "CONVERSION",
    ];
    OTHER.contains(&what.as_str()).then(|| StmtKind::Other {
        what: format!("ALTER {what}"),
    })
}

fn is_not_valid(t: &[Tok]) -> bool {
    t.len() >= 2 && t[t.len() - 2].is("NOT") && t[t.len() - 1].is("VALID")
}

/// One `ALTER TABLE` action.
fn alter_action(part: &[Tok]) -> Option<ActionKind> {
    let mut c = Cur::new(part);
    let text = || toks_text(part);
    if c.eat("ADD") {
        if c.eat("CONSTRAINT") {
            let name = c.word()?;
            return table_constraint(&mut c, Some(name), part);
        }
        if ["CHECK", "FOREIGN", "UNIQUE", "PRIMARY", "EXCLUDE"]
            .iter()
            .any(|k| c.peek_is(k))
        {
            return table_constraint(&mut c, None, part);
        }
        c.eat("COLUMN");
        let if_not_exists = c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let column = column_def(&mut c)?;
        return Some(ActionKind::AddColumn {
            column,
            if_not_exists,
        });
    }
    if c.eat_seq(&["ALTER", "CONSTRAINT"]) {
        return Some(ActionKind::AlterConstraint { name: c.word()? });
    }
    if c.eat("ALTER") {
        c.eat("COLUMN");
        let column = c.word()?;
        if c.eat("TYPE") || c.eat_seq(&["SET", "DATA", "TYPE"]) {
            let rest = c.rest();
            let using = rest.iter().position(|t| t.is("USING"));
            let collate = rest.iter().position(|t| t.is("COLLATE"));
            let end = [using, collate]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(rest.len());
            let new_type = normalize_type(&toks_text(&rest[..end]));
            // `USING col` (or `col::new_type`) converts like no `USING` at all.
            let using = using.is_some_and(|u| {
                let expr = &rest[u + 1..];
                let plain = expr.len() == 1 && expr[0].ident() == Some(column.as_str());
                let cast = expr.len() > 2
                    && expr[0].ident() == Some(column.as_str())
                    && expr[1].is_punct("::")
                    && normalize_type(&toks_text(&expr[2..])) == new_type;
                !(plain || cast)
            });
            return Some(ActionKind::AlterColumnType {
                column,
                new_type,
                using,
            });
        }
        if c.eat_seq(&["SET", "NOT", "NULL"]) {
            return Some(ActionKind::SetNotNull { column });
        }
        if c.eat_seq(&["DROP", "NOT", "NULL"]) {
            return Some(ActionKind::DropNotNull { column });
        }
        if c.eat_seq(&["SET", "DEFAULT"]) {
            return Some(ActionKind::SetDefault {
                column,
                expr: toks_text(c.rest()),
            });
        }
        if c.eat_seq(&["DROP", "DEFAULT"]) {
            return Some(ActionKind::DropDefault { column });
        }
        if c.eat_seq(&["ADD", "GENERATED"]) {
            return Some(ActionKind::AddIdentity { column });
        }
        if c.peek_is("SET") || c.peek_is("RESET") || c.peek_is("DROP") {
            return Some(ActionKind::AlterColumnOther { column });
        }
        return None;
    }
    if c.eat("DROP") {
        if c.eat("CONSTRAINT") {
            c.eat_seq(&["IF", "EXISTS"]);
            return Some(ActionKind::DropConstraint { name: c.word()? });
        }
        c.eat("COLUMN");
        c.eat_seq(&["IF", "EXISTS"]);
        return Some(ActionKind::DropColumn {
            names: vec![c.word()?],
        });
    }
    if c.eat_seq(&["VALIDATE", "CONSTRAINT"]) {
        return Some(ActionKind::ValidateConstraint { name: c.word()? });
    }
    if c.eat("RENAME") {
        if c.eat("TO") {
            return Some(ActionKind::RenameTable { to: c.word()? });
        }
        if c.eat("CONSTRAINT") {
            return Some(ActionKind::RenameConstraint);
        }
        c.eat("COLUMN");
        let from = c.word()?;
        c.eat("TO");
        return Some(ActionKind::RenameColumn {
            from,
            to: c.word()?,
        });
    }
    if c.eat_seq(&["ATTACH", "PARTITION"]) {
        return Some(ActionKind::AttachPartition {
            partition: c.name()?,
        });
    }
    if c.eat_seq(&["DETACH", "PARTITION"]) {
        let partition = c.name()?;
        return Some(ActionKind::DetachPartition {
            partition,
            concurrently: c.eat("CONCURRENTLY"),
            finalize: c.eat("FINALIZE"),
        });
    }
    if c.eat("SET") {
        if c.eat("TABLESPACE") {
            return Some(ActionKind::SetTablespace);
        }
        if c.eat("LOGGED") {
            return Some(ActionKind::SetLogged);
        }
        if c.eat("UNLOGGED") {
            return Some(ActionKind::SetUnlogged);
        }
        if c.eat_seq(&["WITHOUT", "CLUSTER"]) {
            return Some(ActionKind::Cluster);
        }
        if c.eat_seq(&["ACCESS", "METHOD"]) {
            return Some(ActionKind::SetTablespace);
        }
        if c.eat_seq(&["WITHOUT", "OIDS"]) || c.eat("SCHEMA") {
            return Some(ActionKind::Other(text()));
        }
        if c.parens().is_some() {
            return Some(ActionKind::SetStorageParams);
        }
        return None;
    }
    if c.eat("RESET") {
        return c.parens().map(|_| ActionKind::SetStorageParams);
    }
    if c.eat("ENABLE") || c.eat("DISABLE") {
        c.eat("REPLICA");
        c.eat("ALWAYS");
        if c.eat("TRIGGER") {
            return Some(ActionKind::Trigger);
        }
        if c.eat_seq(&["ROW", "LEVEL", "SECURITY"]) {
            return Some(ActionKind::RowLevelSecurity);
        }
        if c.eat("RULE") {
            return Some(ActionKind::Other(text()));
        }
        return None;
    }
    if c.eat("FORCE") || c.eat_seq(&["NO", "FORCE"]) {
        return Some(ActionKind::RowLevelSecurity);
    }
    if c.eat_seq(&["CLUSTER", "ON"]) {
        return Some(ActionKind::Cluster);
    }
    if c.eat("INHERIT") || c.eat_seq(&["NO", "INHERIT"]) {
        return Some(ActionKind::Inherit);
    }
    if c.eat_seq(&["REPLICA", "IDENTITY"]) {
        return Some(ActionKind::ReplicaIdentity);
    }
    if c.eat_seq(&["OWNER", "TO"]) {
        return Some(ActionKind::OwnerTo);
    }
    if c.eat("OF") || c.eat("NOT") {
        return Some(ActionKind::Other(text()));
    }
    None
}

/// After `ADD [CONSTRAINT name]`: the constraint body.
fn table_constraint(c: &mut Cur, name: Option<String>, part: &[Tok]) -> Option<ActionKind> {
    let not_valid = is_not_valid(part);
    let constraint = if c.eat("CHECK") {
        Constraint::Check {
            expr: toks_text(c.parens()?),
        }
    } else if c.eat_seq(&["FOREIGN", "KEY"]) {
        let columns = column_list(c.parens()?);
        if !c.eat("REFERENCES") {
            return None;
        }
        let table = c.name()?;
        let ref_cols = c.parens().map(column_list).unwrap_or_default();
        let (on_delete, on_update) = ref_actions(c.rest());
        Constraint::ForeignKey {
            columns,
            references: ForeignKeyRef {
                table,
                columns: ref_cols,
                on_delete,
                on_update,
                name: None,
            },
        }
    } else if c.eat("UNIQUE") || c.eat_seq(&["PRIMARY", "KEY"]) {
        let primary = part.iter().any(|t| t.is("PRIMARY"));
        c.eat_seq(&["NULLS", "NOT", "DISTINCT"]);
        c.eat_seq(&["NULLS", "DISTINCT"]);
        let (columns, using_index) = if c.eat_seq(&["USING", "INDEX"]) {
            (Vec::new(), Some(c.word()?))
        } else {
            (column_list(c.parens()?), None)
        };
        if primary {
            Constraint::PrimaryKey {
                columns,
                using_index,
            }
        } else {
            Constraint::Unique {
                columns,
                using_index,
            }
        }
    } else if c.eat("EXCLUDE") {
        Constraint::Exclude
    } else if c.eat_seq(&["NOT", "NULL"]) {
        Constraint::NotNull { column: c.word()? }
    } else {
        return None;
    };
    Some(ActionKind::AddConstraint {
        name,
        constraint,
        not_valid,
    })
}

/// Keywords that start a column option, and so end the column's type.
pub(crate) const COLUMN_OPTION_STARTS: &[&str] = &[
    "DEFAULT",
    "NOT",
    "NULL",
    "PRIMARY",
    "UNIQUE",
    "REFERENCES",
    "CHECK",
    "GENERATED",
    "COLLATE",
    "CONSTRAINT",
    "COMPRESSION",
    "STORAGE",
    "DEFERRABLE",
    "INITIALLY",
];

/// `name type [options…]` of a column definition.
fn column_def(c: &mut Cur) -> Option<ColumnDef> {
    let name = c.word()?;
    let start = c.i;
    while let Some(t) = c.peek() {
        if COLUMN_OPTION_STARTS.iter().any(|k| t.is(k)) {
            break;
        }
        c.i += 1;
    }
    let data_type = normalize_type(&toks_text(&c.t[start..c.i]));
    if data_type.is_empty() {
        return None;
    }
    let mut col = ColumnDef {
        name,
        data_type,
        ..ColumnDef::default()
    };
    column_options(c, &mut col)?;
    Some(col)
}

/// The options after a column's type (`DEFAULT …`, `NOT NULL`, `REFERENCES …`, …).
fn column_options(c: &mut Cur, col: &mut ColumnDef) -> Option<()> {
    // The name of the constraint that follows (`CONSTRAINT name …`).
    let mut named: Option<String> = None;
    while !c.at_end() {
        if c.eat("CONSTRAINT") {
            named = c.word();
            continue;
        }
        let name = named.take();
        if c.eat("DEFAULT") {
            let s = c.i;
            let mut depth = 0i32;
            while let Some(t) = c.peek() {
                if t.is_punct("(") {
                    depth += 1;
                } else if t.is_punct(")") {
                    depth -= 1;
                } else if depth == 0 && COLUMN_OPTION_STARTS.iter().any(|k| t.is(k)) {
                    break;
                }
                c.i += 1;
            }
            col.default = Some(toks_text(&c.t[s..c.i]));
        } else if c.eat_seq(&["NOT", "NULL"]) {
            col.not_null = true;
        } else if c.eat("NULL") {
        } else if c.eat_seq(&["PRIMARY", "KEY"]) {
            col.primary_key = true;
            col.not_null = true;
        } else if c.eat("UNIQUE") {
            col.unique = true;
        } else if c.eat("REFERENCES") {
            let table = c.name()?;
            let columns = c.parens().map(column_list).unwrap_or_default();
            let (on_delete, on_update) = ref_actions(c.rest());
            col.references = Some(ForeignKeyRef {
                table,
                columns,
                on_delete,
                on_update,
                name,
            });
        } else if c.eat("CHECK") {
            col.check = Some(toks_text(c.parens()?));
        } else if c.eat("GENERATED") {
            c.eat("ALWAYS");
            c.eat_seq(&["BY", "DEFAULT"]);
            c.eat("AS");
            if c.eat("IDENTITY") {
                col.identity = true;
                c.parens();
            } else {
                c.parens()?;
                col.generated = Some(if c.eat("STORED") {
                    Generated::Stored
                } else {
                    c.eat("VIRTUAL");
                    Generated::Virtual
                });
            }
        } else if c.eat("ON") {
            // `ON DELETE|UPDATE action`: `SET DEFAULT` here is no column default.
            c.i += 1;
            if c.eat("SET") {
                c.i += 1;
                c.parens();
            } else if !c.eat_seq(&["NO", "ACTION"]) {
                c.i += 1;
            }
        } else {
            // COLLATE x, MATCH …, DEFERRABLE …, COMPRESSION x: not lock-relevant.
            c.i += 1;
        }
    }
    Some(())
}
