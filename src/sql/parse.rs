//! Turns one raw statement into a [`Statement`]: tokens, then sqlparser, then (for what
//! sqlparser rejects or does not model) the token-level recognizer.

use std::ops::Range;

use sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, Expr, ObjectName, ObjectType,
    TableConstraint, TableFactor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use super::ir::*;
use super::recognize;
use super::tokens::{self, split_top_level_commas, Tok};

/// sqlparser's recursion limit; deeper nesting is reported, never a stack overflow.
const RECURSION_LIMIT: usize = 64;

/// A statement, understood as far as possible.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Byte span in the file.
    pub span: Range<usize>,
    /// Significant tokens with file byte spans (empty if tokenizing failed).
    pub toks: Vec<Tok>,
    pub kind: StmtKind,
    pub source: Source,
    /// sqlparser's complaint, when it rejected the statement.
    pub parse_error: Option<String>,
}

impl Statement {
    /// Byte span from the first token of `kws` to the last, or the statement's first line.
    pub fn span_of(&self, kws: &[&str]) -> Range<usize> {
        match tokens::find_seq(&self.toks, kws) {
            Some(i) => self.toks[i].span.start..self.toks[i + kws.len() - 1].span.end,
            None => self.head_span(),
        }
    }

    /// The same statement read `by` bytes further into the file (a body's statement, analyzed
    /// in the body's own offsets, at its place in the file).
    pub fn shifted(&self, by: usize) -> Statement {
        let shift = |r: &Range<usize>| r.start + by..r.end + by;
        let mut st = self.clone();
        st.span = shift(&st.span);
        for t in &mut st.toks {
            t.span = shift(&t.span);
        }
        if let StmtKind::AlterTable { actions, .. } = &mut st.kind {
            for a in actions {
                a.span = shift(&a.span);
            }
        }
        st
    }

    /// The first few tokens, a sensible place to point at the statement as a whole.
    pub fn head_span(&self) -> Range<usize> {
        match (self.toks.first(), self.toks.get(2).or(self.toks.last())) {
            (Some(a), Some(b)) => a.span.start..b.span.end,
            _ => self.span.start..self.span.end.min(self.span.start + 1),
        }
    }
}

/// Statements longer than this whose kind the recognizer decides from their first words
/// keep only their first [`HEAD_TOKENS`] tokens and their string literals.
pub const LARGE_STATEMENT: usize = 1 << 20;
/// Tokens kept from the start of a large statement.
pub const HEAD_TOKENS: usize = 1000;

/// Understands the statement `src[span]`.
pub fn analyze(src: &str, span: Range<usize>) -> Statement {
    let text = &src[span.clone()];
    if text.len() > LARGE_STATEMENT {
        if let Some(st) = analyze_large(text, span.clone()) {
            return st;
        }
    }
    let tokenized = match tokens::tokenize(text, span.start) {
        Ok(t) => t,
        Err(e) => {
            return Statement {
                span,
                toks: Vec::new(),
                kind: StmtKind::Unparsed {
                    reason: format!("cannot tokenize: {e}"),
                },
                source: Source::None,
                parse_error: Some(e),
            }
        }
    };
    analyze_tokens(span, tokenized)
}

/// Understands the statement at `span`, from its tokens (what [`tokens::tokenize`] gives for
/// its text).
pub fn analyze_tokens(span: Range<usize>, tokenized: tokens::Tokenized<'_>) -> Statement {
    if recognizer_decides(&tokenized.toks) {
        if let Some(kind) = recognize::recognize(&tokenized.toks) {
            return Statement {
                span,
                toks: tokenized.toks,
                kind,
                source: Source::Recognizer,
                parse_error: None,
            };
        }
    }
    let parsed = match tokenized.raw() {
        Ok(raw) => Parser::new(&PostgreSqlDialect {})
            .with_recursion_limit(RECURSION_LIMIT)
            .with_tokens_with_locations(raw)
            .parse_statements(),
        Err(e) => Err(ParserError::TokenizerError(e)),
    };
    let toks = tokenized.toks;
    let (kind, source, parse_error) = match parsed {
        Ok(stmts) if stmts.len() == 1 => match from_ast(&stmts[0], &toks) {
            Some(kind) => (kind, Source::Parser, None),
            None => match recognize::recognize(&toks) {
                Some(kind) => (kind, Source::Recognizer, None),
                None => (
                    StmtKind::Other {
                        what: leading_words(&toks),
                    },
                    Source::Parser,
                    None,
                ),
            },
        },
        Ok(stmts) => {
            let reason = format!("parsed as {} statements", stmts.len());
            match recognize::recognize(&toks) {
                Some(kind) => (kind, Source::Recognizer, Some(reason)),
                None => (
                    StmtKind::Unparsed {
                        reason: reason.clone(),
                    },
                    Source::None,
                    Some(reason),
                ),
            }
        }
        Err(e) => {
            let reason = clean_parser_error(&e.to_string());
            match recognize::recognize(&toks) {
                Some(kind) => (kind, Source::Recognizer, Some(reason)),
                None => (
                    StmtKind::Unparsed {
                        reason: reason.clone(),
                    },
                    Source::None,
                    Some(reason),
                ),
            }
        }
    };
    Statement {
        span,
        toks,
        kind,
        source,
        parse_error,
    }
}

/// A data statement of megabytes (`INSERT … VALUES`, `COPY`, a query), tokenized a piece
/// at a time and recognized from its first words, never parsed: its memory stays a small
/// fraction of its length. `None` for other statements.
fn analyze_large(text: &str, span: Range<usize>) -> Option<Statement> {
    if !first_word(text).is_some_and(|w| recognizer_decides_word(&w)) {
        return None;
    }
    let (toks, kind, parse_error) = match tokens::tokenize_head(text, span.start, HEAD_TOKENS) {
        Ok(toks) => {
            let kind = recognize::recognize(&toks)?;
            (toks, kind, None)
        }
        Err(e) => (
            Vec::new(),
            StmtKind::Unparsed {
                reason: format!("cannot tokenize: {e}"),
            },
            Some(e),
        ),
    };
    Some(Statement {
        span,
        toks,
        kind,
        source: Source::Recognizer,
        parse_error,
    })
}

/// Statements whose kind the recognizer decides whatever sqlparser makes of them: queries,
/// `INSERT`, `COPY` and the statements the AST conversion does not model. sqlparser's AST
/// would add nothing, so they are not parsed, which is most of the time spent on data
/// migrations and test scripts.
fn recognizer_decides(toks: &[Tok]) -> bool {
    let Some(first) = toks.first() else {
        return false;
    };
    match &first.kind {
        tokens::TokKind::Word { upper, .. } => {
            recognizer_decides_word(upper) || not_converted(toks)
        }
        _ => first.is_punct("("),
    }
}

/// Statements whose sqlparser AST [`from_ast`] has no conversion for, by their first words:
/// `DO`; `CREATE [OR REPLACE]` and then `FUNCTION`, `PROCEDURE`, `TRIGGER` (also constraint
/// and event triggers), `POLICY`, `VIEW`, `MATERIALIZED VIEW`, `SCHEMA`, `SEQUENCE`,
/// `TYPE`, `DOMAIN`, `EXTENSION` or `ROLE`; `ALTER` and then `DEFAULT PRIVILEGES`, `ROLE`,
/// `FUNCTION`, `SEQUENCE`. Their kind is the recognizer's whether sqlparser reads them or
/// not, so the function bodies and view queries of a schema are not parsed for nothing.
fn not_converted(toks: &[Tok]) -> bool {
    let word = |i: usize, kw: &str| toks.get(i).is_some_and(|t| t.is(kw));
    if word(0, "DO") {
        return true;
    }
    if word(0, "ALTER") {
        return word(1, "DEFAULT") && word(2, "PRIVILEGES")
            || ["ROLE", "FUNCTION", "SEQUENCE"].iter().any(|k| word(1, k));
    }
    if !word(0, "CREATE") {
        return false;
    }
    let i = if word(1, "OR") && word(2, "REPLACE") {
        3
    } else {
        1
    };
    const OBJECTS: [&str; 11] = [
        "FUNCTION",
        "PROCEDURE",
        "TRIGGER",
        "POLICY",
        "VIEW",
        "SCHEMA",
        "SEQUENCE",
        "TYPE",
        "DOMAIN",
        "EXTENSION",
        "ROLE",
    ];
    OBJECTS.iter().any(|k| word(i, k))
        || (word(i, "CONSTRAINT") || word(i, "EVENT")) && word(i + 1, "TRIGGER")
        || word(i, "MATERIALIZED") && word(i + 1, "VIEW")
}

/// The first word of a statement's text, upper-cased (`(` for a parenthesized query), after
/// blanks and comments.
fn first_word(text: &str) -> Option<String> {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |i| &r[i..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
        } else {
            break;
        }
    }
    if rest.starts_with('(') {
        return Some("(".into());
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then(|| word.to_ascii_uppercase())
}

fn recognizer_decides_word(upper: &str) -> bool {
    matches!(
        upper,
        "(" | "SELECT"
            | "WITH"
            | "VALUES"
            | "TABLE"
            | "EXPLAIN"
            | "SHOW"
            | "INSERT"
            | "COPY"
            | "GRANT"
            | "REVOKE"
            | "SAVEPOINT"
            | "RELEASE"
            | "CALL"
            | "NOTIFY"
            | "LISTEN"
            | "UNLISTEN"
            | "DISCARD"
            | "PREPARE"
            | "EXECUTE"
            | "DEALLOCATE"
            | "CHECKPOINT"
            | "SECURITY"
            | "IMPORT"
            | "REASSIGN"
            | "LOAD"
            | "DECLARE"
            | "FETCH"
            | "CLOSE"
            | "MOVE"
    )
}

fn clean_parser_error(e: &str) -> String {
    let e = e.strip_prefix("sql parser error: ").unwrap_or(e);
    // sqlparser appends its own (statement-relative) position; ours is file-relative.
    match e.rfind(" at Line: ") {
        Some(i) => e[..i].to_string(),
        None => e.to_string(),
    }
}

/// The first words, upper-cased, to name a statement kind (`CREATE FUNCTION`,
/// `CREATE UNIQUE INDEX`).
pub fn leading_words(toks: &[Tok]) -> String {
    // Modifiers that do not name the kind on their own: take one more word.
    let modifier = toks.get(1).is_some_and(|t| {
        [
            "UNIQUE",
            "OR",
            "MATERIALIZED",
            "TEMP",
            "TEMPORARY",
            "UNLOGGED",
        ]
        .iter()
        .any(|k| t.is(k))
    });
    toks.iter()
        .take(if modifier { 3 } else { 2 })
        .filter_map(|t| match &t.kind {
            tokens::TokKind::Word { upper, .. } if !upper.is_empty() => Some(&**upper),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

pub(crate) fn obj_name(n: &ObjectName) -> ObjName {
    let parts: Vec<String> = n.0.iter().filter_map(|p| p.as_ident().map(ident)).collect();
    match parts.as_slice() {
        [] => ObjName::new(n.to_string()),
        [one] => ObjName::new(one.clone()),
        [.., schema, name] => ObjName {
            schema: Some(schema.clone()),
            name: name.clone(),
        },
    }
}

fn type_text(t: &ast::DataType) -> String {
    normalize_type(&t.to_string())
}

/// Lower-cases a type name and squeezes spaces (`VARCHAR (20)` → `varchar(20)`).
pub fn normalize_type(t: &str) -> String {
    let lower = t.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for part in lower.split_whitespace() {
        if !out.is_empty() && !part.starts_with('(') && !out.ends_with('(') {
            out.push(' ');
        }
        out.push_str(part);
    }
    out.replace(", ", ",")
}

fn index_columns(cols: &[ast::IndexColumn]) -> Vec<String> {
    cols.iter()
        .map(|c| match &c.column.expr {
            Expr::Identifier(i) => ident(i),
            other => other.to_string(),
        })
        .collect()
}

fn idents(v: &[ast::Ident]) -> Vec<String> {
    v.iter().map(ident).collect()
}

fn column_def(c: &ast::ColumnDef) -> ColumnDef {
    let mut out = ColumnDef {
        name: ident(&c.name),
        data_type: type_text(&c.data_type),
        ..ColumnDef::default()
    };
    for opt in &c.options {
        match &opt.option {
            ColumnOption::NotNull => out.not_null = true,
            ColumnOption::Default(e) => out.default = Some(e.to_string()),
            ColumnOption::PrimaryKey(_) => {
                out.primary_key = true;
                out.not_null = true;
            }
            ColumnOption::Unique(_) => out.unique = true,
            ColumnOption::Check(c) => out.check = Some(c.expr.to_string()),
            ColumnOption::ForeignKey(fk) => {
                out.references = Some(ForeignKeyRef {
                    table: obj_name(&fk.foreign_table),
                    columns: idents(&fk.referred_columns),
                    on_delete: ref_action(fk.on_delete.as_ref()),
                    on_update: ref_action(fk.on_update.as_ref()),
                    name: opt.name.as_ref().map(ident),
                })
            }
            ColumnOption::Generated {
                generation_expr,
                generation_expr_mode,
                ..
            } => {
                if generation_expr.is_some() {
                    out.generated = Some(match generation_expr_mode {
                        Some(ast::GeneratedExpressionMode::Virtual) => Generated::Virtual,
                        Some(ast::GeneratedExpressionMode::Stored) => Generated::Stored,
                        None => Generated::Virtual,
                    });
                } else {
                    out.identity = true;
                }
            }
            _ => {}
        }
    }
    out
}

/// `column`, `(column)` or `column::new_type`.
fn is_column_ref(e: &Expr, column: &str, new_type: &str) -> bool {
    match e {
        Expr::Identifier(i) => ident(i) == column,
        Expr::Nested(inner) => is_column_ref(inner, column, new_type),
        Expr::Cast {
            expr, data_type, ..
        } => type_text(data_type) == new_type && is_column_ref(expr, column, new_type),
        _ => false,
    }
}

fn ref_action(a: Option<&ast::ReferentialAction>) -> RefAction {
    match a {
        Some(ast::ReferentialAction::Restrict) => RefAction::Restrict,
        Some(ast::ReferentialAction::Cascade) => RefAction::Cascade,
        Some(ast::ReferentialAction::SetNull) => RefAction::SetNull,
        Some(ast::ReferentialAction::SetDefault) => RefAction::SetDefault,
        Some(ast::ReferentialAction::NoAction) | None => RefAction::NoAction,
    }
}

fn constraint(c: &TableConstraint) -> Option<(Option<String>, Constraint)> {
    Some(match c {
        TableConstraint::Check(c) => (
            c.name.as_ref().map(ident),
            Constraint::Check {
                expr: c.expr.to_string(),
            },
        ),
        TableConstraint::ForeignKey(fk) => (
            fk.name.as_ref().map(ident),
            Constraint::ForeignKey {
                columns: idents(&fk.columns),
                references: ForeignKeyRef {
                    table: obj_name(&fk.foreign_table),
                    columns: idents(&fk.referred_columns),
                    on_delete: ref_action(fk.on_delete.as_ref()),
                    on_update: ref_action(fk.on_update.as_ref()),
                    name: None,
                },
            },
        ),
        TableConstraint::Unique(u) => (
            u.name.as_ref().map(ident),
            Constraint::Unique {
                columns: index_columns(&u.columns),
                using_index: None,
            },
        ),
        TableConstraint::PrimaryKey(p) => (
            p.name.as_ref().map(ident),
            Constraint::PrimaryKey {
                columns: index_columns(&p.columns),
                using_index: None,
            },
        ),
        TableConstraint::UniqueUsingIndex(u) => (
            u.name.as_ref().map(ident),
            Constraint::Unique {
                columns: Vec::new(),
                using_index: Some(ident(&u.index_name)),
            },
        ),
        TableConstraint::PrimaryKeyUsingIndex(u) => (
            u.name.as_ref().map(ident),
            Constraint::PrimaryKey {
                columns: Vec::new(),
                using_index: Some(ident(&u.index_name)),
            },
        ),
        TableConstraint::Exclude(e) => (e.name.as_ref().map(ident), Constraint::Exclude),
        _ => return None,
    })
}

fn table_factor_name(t: &ast::TableWithJoins) -> Option<ObjName> {
    match &t.relation {
        TableFactor::Table { name, .. } => Some(obj_name(name)),
        _ => None,
    }
}

/// Converts the sqlparser AST. `None` hands the statement to the recognizer.
fn from_ast(stmt: &ast::Statement, toks: &[Tok]) -> Option<StmtKind> {
    use ast::Statement as S;
    Some(match stmt {
        S::CreateTable(ct) => {
            let mut columns = Vec::new();
            let mut constraints = Vec::new();
            for c in &ct.columns {
                columns.push(column_def(c));
            }
            for c in &ct.constraints {
                if let Some(c) = constraint(c) {
                    constraints.push(c);
                }
            }
            // sqlparser reads only `(LIKE source [INCLUDING|EXCLUDING DEFAULTS])`; other
            // `INCLUDING` options go through the recognizer.
            let like = match &ct.like {
                Some(ast::CreateTableLikeKind::Parenthesized(l))
                | Some(ast::CreateTableLikeKind::Plain(l)) => vec![LikeSource {
                    table: obj_name(&l.name),
                    indexes: false,
                    constraints: false,
                }],
                None => Vec::new(),
            };
            StmtKind::CreateTable {
                name: obj_name(&ct.name),
                partition_of: ct.partition_of.as_ref().map(obj_name),
                columns,
                constraints,
                like,
                temporary: ct.temporary,
            }
        }
        S::CreateIndex(ci) => StmtKind::CreateIndex {
            name: ci.name.as_ref().map(|n| obj_name(n).name),
            table: obj_name(&ci.table_name),
            unique: ci.unique,
            concurrently: ci.concurrently,
            if_not_exists: ci.if_not_exists,
            only: false,
            columns: index_columns(&ci.columns),
        },
        S::AlterTable(at) => {
            let table = obj_name(&at.name);
            let spans = action_spans(toks, at.operations.len());
            let mut actions = Vec::new();
            for (op, span) in at.operations.iter().zip(spans) {
                actions.push(Action {
                    span,
                    kind: action(op)?,
                });
            }
            StmtKind::AlterTable { table, actions }
        }
        S::Drop {
            object_type,
            names,
            cascade,
            ..
        } => {
            let names = names.iter().map(obj_name).collect();
            let kind = match object_type {
                ObjectType::Index => {
                    return Some(StmtKind::DropIndex {
                        names,
                        concurrently: false,
                    })
                }
                ObjectType::Table => DropKind::Table,
                ObjectType::View => DropKind::View,
                ObjectType::MaterializedView => DropKind::MaterializedView,
                ObjectType::Schema => DropKind::Schema,
                ObjectType::Database => DropKind::Database,
                ObjectType::Sequence => DropKind::Sequence,
                ObjectType::Type => DropKind::Type,
                _ => DropKind::Other,
            };
            StmtKind::Drop {
                kind,
                names,
                cascade: *cascade,
            }
        }
        // sqlparser reads `UPDATE ONLY t` / `DELETE FROM ONLY t` as table `only` aliased
        // `t`: the recognizer handles `ONLY`.
        S::Update(_) if toks.get(1).is_some_and(|t| t.is("ONLY")) => return None,
        S::Delete(_) if toks.get(2).is_some_and(|t| t.is("ONLY")) => return None,
        S::Update(u) => StmtKind::Update {
            table: table_factor_name(&u.table)?,
            has_where: u.selection.is_some(),
        },
        S::Delete(d) => {
            let from = match &d.from {
                ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
            };
            StmtKind::Delete {
                table: from.first().and_then(table_factor_name)?,
                has_where: d.selection.is_some(),
            }
        }
        S::Insert(i) => match &i.table {
            ast::TableObject::TableName(n) => StmtKind::Insert { table: obj_name(n) },
            _ => return None,
        },
        S::Query(_) => StmtKind::Query,
        S::Copy { .. } => StmtKind::Copy,
        S::StartTransaction { .. } => StmtKind::Begin,
        S::Commit { .. } => StmtKind::Commit,
        S::Rollback {
            savepoint: None, ..
        } => StmtKind::Rollback,
        S::Set(ast::Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        }) => StmtKind::Set {
            name: obj_name(variable).name,
            value: values
                .iter()
                .map(|v| match v {
                    Expr::Value(v) => match &v.value {
                        ast::Value::SingleQuotedString(s) => s.clone(),
                        other => other.to_string(),
                    },
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            local: matches!(scope, Some(ast::ContextModifier::Local)),
        },
        S::Set(ast::Set::SetTimeZone { local, value }) => StmtKind::Set {
            name: "timezone".into(),
            value: match value {
                Expr::Value(v) => match &v.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                },
                other => other.to_string(),
            },
            local: *local,
        },
        S::Reset(r) => StmtKind::Reset {
            name: match &r.reset {
                ast::Reset::ConfigurationParameter(n) => Some(obj_name(n).name),
                _ => None,
            },
        },
        S::Lock(l) => StmtKind::Lock {
            tables: l.tables.iter().map(|t| obj_name(&t.name)).collect(),
            mode: l
                .lock_mode
                .as_ref()
                .and_then(|m| LockMode::from_sql(&m.to_string().to_uppercase()))
                .unwrap_or(LockMode::AccessExclusive),
        },
        S::Truncate(t) => StmtKind::Truncate {
            tables: t.table_names.iter().map(|t| obj_name(&t.name)).collect(),
            cascade: matches!(t.cascade, Some(ast::CascadeOption::Cascade)),
        },
        S::Vacuum(v) => StmtKind::Vacuum {
            full: v.full,
            tables: v.table_name.iter().map(obj_name).collect(),
        },
        S::Analyze(_) => StmtKind::Analyze,
        S::AlterType(at) => match &at.operation {
            ast::AlterTypeOperation::AddValue(_) => StmtKind::AlterTypeAddValue {
                name: obj_name(&at.name),
            },
            _ => StmtKind::Other {
                what: "ALTER TYPE".into(),
            },
        },
        S::Comment {
            object_type,
            object_name,
            ..
        } => StmtKind::Comment {
            table: match object_type {
                ast::CommentObject::Table | ast::CommentObject::MaterializedView => {
                    Some(obj_name(object_name))
                }
                ast::CommentObject::Column => {
                    let n = obj_name(object_name);
                    // `schema.table.column` or `table.column`: drop the column part.
                    n.schema.map(ObjName::new)
                }
                _ => None,
            },
        },
        S::CreateDatabase { .. } => StmtKind::CreateDatabase,
        _ => return None,
    })
}

/// Spans of the `n` comma-separated actions of an `ALTER TABLE` (whole statement if the
/// token shape does not match).
fn action_spans(toks: &[Tok], n: usize) -> Vec<Range<usize>> {
    let whole = match (toks.first(), toks.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => 0..0,
    };
    let body_start = recognize::alter_table_body_start(toks);
    let parts: Vec<&[Tok]> = match body_start {
        Some(i) => split_top_level_commas(trim_semicolon(&toks[i..])),
        None => Vec::new(),
    };
    if parts.len() == n && parts.iter().all(|p| !p.is_empty()) {
        parts
            .iter()
            .map(|p| p[0].span.start..p[p.len() - 1].span.end)
            .collect()
    } else {
        vec![whole; n]
    }
}

pub(crate) fn trim_semicolon(toks: &[Tok]) -> &[Tok] {
    match toks.last() {
        Some(t) if t.is_punct(";") => &toks[..toks.len() - 1],
        _ => toks,
    }
}

fn action(op: &AlterTableOperation) -> Option<ActionKind> {
    use AlterTableOperation as O;
    Some(match op {
        O::AddColumn {
            column_def: def,
            if_not_exists,
            ..
        } => ActionKind::AddColumn {
            column: column_def(def),
            if_not_exists: *if_not_exists,
        },
        O::AddConstraint {
            constraint: c,
            not_valid,
        } => {
            let (name, constraint) = constraint(c)?;
            ActionKind::AddConstraint {
                name,
                constraint,
                not_valid: *not_valid,
            }
        }
        O::DropColumn { column_names, .. } => ActionKind::DropColumn {
            names: idents(column_names),
        },
        O::DropConstraint { name, .. } => ActionKind::DropConstraint { name: ident(name) },
        O::ValidateConstraint { name } => ActionKind::ValidateConstraint { name: ident(name) },
        O::RenameColumn {
            old_column_name,
            new_column_name,
        } => ActionKind::RenameColumn {
            from: ident(old_column_name),
            to: ident(new_column_name),
        },
        O::RenameTable { table_name } => ActionKind::RenameTable {
            to: match table_name {
                ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => {
                    obj_name(n).name
                }
            },
        },
        O::RenameConstraint { .. } => ActionKind::RenameConstraint,
        O::AlterColumn { column_name, op } => {
            let column = ident(column_name);
            match op {
                AlterColumnOperation::SetNotNull => ActionKind::SetNotNull { column },
                AlterColumnOperation::DropNotNull => ActionKind::DropNotNull { column },
                AlterColumnOperation::SetDefault { value } => ActionKind::SetDefault {
                    column,
                    expr: value.to_string(),
                },
                AlterColumnOperation::DropDefault => ActionKind::DropDefault { column },
                AlterColumnOperation::SetDataType {
                    data_type, using, ..
                } => {
                    let new_type = type_text(data_type);
                    // `USING col` (or `col::new_type`) converts like no `USING` at all.
                    let using = using
                        .as_ref()
                        .is_some_and(|e| !is_column_ref(e, &column, &new_type));
                    ActionKind::AlterColumnType {
                        column,
                        new_type,
                        using,
                    }
                }
                AlterColumnOperation::AddGenerated { .. } => ActionKind::AddIdentity { column },
            }
        }
        O::SetLogged => ActionKind::SetLogged,
        O::SetUnlogged => ActionKind::SetUnlogged,
        O::SetOptionsParens { .. } => ActionKind::SetStorageParams,
        O::EnableRowLevelSecurity
        | O::DisableRowLevelSecurity
        | O::ForceRowLevelSecurity
        | O::NoForceRowLevelSecurity => ActionKind::RowLevelSecurity,
        O::EnableTrigger { .. }
        | O::DisableTrigger { .. }
        | O::EnableAlwaysTrigger { .. }
        | O::EnableReplicaTrigger { .. } => ActionKind::Trigger,
        O::ReplicaIdentity { .. } => ActionKind::ReplicaIdentity,
        O::OwnerTo { .. } => ActionKind::OwnerTo,
        other => ActionKind::Other(other.to_string()),
    })
}

#[cfg(test)]
mod shift_tests {
    use super::*;

    #[test]
    fn statements_decided_by_their_first_words_have_no_ast_conversion() {
        // The recognizer decides these without sqlparser: whatever sqlparser reads, the
        // conversion of its AST gives nothing, so the recognizer decided them before too.
        let statements = [
            "DO $$ BEGIN ALTER TABLE a ADD COLUMN b int; END $$",
            "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS $$ SELECT a $$",
            "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NEW; END $f$",
            "CREATE PROCEDURE p() LANGUAGE sql AS $$ UPDATE a SET b = 1 $$",
            "CREATE OR REPLACE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN END $$",
            "CREATE TRIGGER t BEFORE UPDATE ON a FOR EACH ROW EXECUTE FUNCTION f()",
            "CREATE OR REPLACE TRIGGER t AFTER INSERT ON a FOR EACH ROW EXECUTE PROCEDURE f()",
            "CREATE CONSTRAINT TRIGGER t AFTER INSERT ON a FOR EACH ROW EXECUTE FUNCTION f()",
            "CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION f()",
            "CREATE POLICY p ON a FOR SELECT USING (true)",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO r",
            "ALTER ROLE r SET statement_timeout = '1s'",
            "ALTER FUNCTION f(int) OWNER TO r",
            "ALTER SEQUENCE s RESTART WITH 10",
            "CREATE VIEW v AS SELECT a, b FROM t JOIN u USING (id) WHERE c > 1",
            "CREATE OR REPLACE VIEW v (x) AS SELECT 1",
            "CREATE MATERIALIZED VIEW m AS SELECT * FROM t WITH NO DATA",
            "CREATE SCHEMA IF NOT EXISTS s",
            "CREATE SEQUENCE s START 1",
            "CREATE TYPE mood AS ENUM ('sad', 'ok')",
            "CREATE TYPE pair AS (a int, b text)",
            "CREATE DOMAIN d AS text CHECK (VALUE <> '')",
            "CREATE EXTENSION IF NOT EXISTS pgcrypto",
            "CREATE ROLE r NOLOGIN",
        ];
        for sql in statements {
            let toks = tokens::tokenize(sql, 0).unwrap().toks;
            assert!(recognizer_decides(&toks), "{sql}");
            if let Ok(ast) = Parser::parse_sql(&PostgreSqlDialect {}, sql) {
                assert!(
                    ast.iter().all(|s| from_ast(s, &toks).is_none()),
                    "{sql}: {ast:?}"
                );
            }
            let st = analyze(sql, 0..sql.len());
            assert_eq!(st.source, Source::Recognizer, "{sql}");
        }
        // Not these: their AST is converted.
        for sql in [
            "CREATE TABLE t (a int)",
            "CREATE TEMP VIEW v AS SELECT 1",
            "ALTER TABLE a ADD COLUMN b int",
            "ALTER TYPE mood ADD VALUE 'happy'",
            "CREATE INDEX i ON a (b)",
        ] {
            let toks = tokens::tokenize(sql, 0).unwrap().toks;
            assert!(!recognizer_decides(&toks), "{sql}");
        }
    }

    #[test]
    fn a_shifted_statement_is_the_statement_analyzed_further_into_the_file() {
        let sql = "ALTER TABLE a ADD COLUMN b int, ALTER COLUMN c SET NOT NULL";
        let at = 17;
        let far = format!("{}{sql}", " ".repeat(at));
        let shifted = analyze(sql, 0..sql.len()).shifted(at);
        let analyzed = analyze(&far, at..far.len());
        assert!(
            matches!(&analyzed.kind, StmtKind::AlterTable { actions, .. } if actions.len() == 2)
        );
        assert_eq!(format!("{shifted:?}"), format!("{analyzed:?}"));
    }
}
