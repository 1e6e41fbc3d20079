//! What one statement (a normalized text of pg_stat_statements, `$1` for its constants) does
//! with the table, in the forms a change of the table can break: inserts (their column list,
//! their `ON CONFLICT` clause), `ONLY`, `COPY … TO`, `ctid` in a condition, concurrent index
//! builds and `CLUSTER`. The statement is read with the project's parser (sqlparser, then
//! the token-level recognizer for what sqlparser rejects, such as `ON CONFLICT (…) WHERE` or
//! `OVERRIDING SYSTEM VALUE`); the clauses are read from its tokens.

use crate::sql::ir::{ObjName, StmtKind};
use crate::sql::parse::analyze;
use crate::sql::tokens::{find_seq, split_top_level_commas, Tok, TokKind};

/// The table the statements are read for.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// Whether an unqualified name means the table (it is what the name resolves to on the
    /// search_path of the role lockstep connects as).
    pub unqualified: bool,
}

impl Table {
    /// Whether `n` names the table.
    pub fn is(&self, n: &ObjName) -> bool {
        n.name == self.name
            && match &n.schema {
                Some(s) => *s == self.schema,
                None => self.unqualified,
            }
    }
}

/// A use of the table that a change can break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    Insert(Insert),
    /// `FROM ONLY t`, `UPDATE ONLY t`, `DELETE FROM ONLY t`.
    Only,
    /// `TRUNCATE ONLY t`.
    TruncateOnly,
    /// `COPY t TO …`.
    CopyTo,
    /// `ctid` of the table in a condition.
    Ctid,
    /// `CREATE INDEX CONCURRENTLY … ON t`.
    CreateIndexConcurrently,
    /// `CLUSTER t` without `USING`.
    Cluster,
    /// `ALTER TABLE t CLUSTER ON …`.
    ClusterOn,
}

/// An `INSERT INTO t`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Insert {
    /// Whether it names its columns.
    pub column_list: bool,
    /// The values of its first row, for `VALUES (…)`; `None` for a query.
    pub values: Option<usize>,
    /// `DEFAULT VALUES`.
    pub default_values: bool,
    pub conflict: Option<Conflict>,
}

/// An `ON CONFLICT` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub target: Target,
    /// The columns `DO UPDATE SET` assigns.
    pub sets: Vec<String>,
}

/// What an `ON CONFLICT` clause names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing (`ON CONFLICT DO NOTHING`).
    Any,
    /// `(a, b) [WHERE …]`: each element a column's name or an expression's text;
    /// `expressions` when an element is not a plain column.
    Columns {
        columns: Vec<String>,
        expressions: bool,
        predicate: bool,
    },
    /// `ON CONSTRAINT name`.
    Constraint(String),
}

/// The uses of `table` in `text` that a change can break; `Err` with the parser's reason
/// when the statement cannot be read.
pub fn uses(text: &str, table: &Table) -> Result<Vec<Use>, String> {
    let st = analyze(text, 0..text.len());
    if let StmtKind::Unparsed { reason } = &st.kind {
        return Err(reason.clone());
    }
    let toks = &st.toks;
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if toks[i].is("INSERT") && toks.get(i + 1).is_some_and(|t| t.is("INTO")) {
            if let Some(ins) = insert(text, toks, i, table) {
                out.push(Use::Insert(ins));
            }
        }
    }
    let first = toks.first();
    for (i, t) in toks.iter().enumerate() {
        if !t.is("ONLY") || i == 0 || !only_may_follow(&toks[i - 1]) {
            continue;
        }
        let at = if toks.get(i + 1).is_some_and(|t| t.is_punct("(")) {
            i + 2
        } else {
            i + 1
        };
        if !name_at(toks, at).is_some_and(|(n, _)| table.is(&n)) {
            continue;
        }
        match first {
            Some(f) if f.is("TRUNCATE") => out.push(Use::TruncateOnly),
            // `LOCK TABLE ONLY t`, `ALTER TABLE ONLY t`, `CREATE INDEX … ON ONLY t` do what
            // they did on the parent of a partitioned table.
            Some(f) if f.is("LOCK") || f.is("ALTER") || f.is("CREATE") => {}
            _ => out.push(Use::Only),
        }
    }
    match &st.kind {
        StmtKind::CreateIndex {
            table: t,
            concurrently: true,
            ..
        } if table.is(t) => out.push(Use::CreateIndexConcurrently),
        StmtKind::Cluster { table: Some(t) }
            if table.is(t) && !toks.iter().any(|t| t.is("USING")) =>
        {
            out.push(Use::Cluster)
        }
        StmtKind::AlterTable { table: t, .. }
            if table.is(t) && find_seq(toks, &["CLUSTER", "ON"]).is_some() =>
        {
            out.push(Use::ClusterOn)
        }
        _ => {}
    }
    if first.is_some_and(|f| f.is("COPY")) {
        if let Some((n, mut j)) = name_at(toks, 1) {
            if toks.get(j).is_some_and(|t| t.is_punct("(")) {
                j = close(toks, j);
            }
            if table.is(&n) && toks.get(j).is_some_and(|t| t.is("TO")) {
                out.push(Use::CopyTo);
            }
        }
    }
    if ctid(toks, table) {
        out.push(Use::Ctid);
    }
    Ok(out)
}

/// Whether `ONLY` after `t` belongs to a table reference (not `ROWS ONLY`, `READ ONLY`).
fn only_may_follow(t: &Tok) -> bool {
    ["FROM", "JOIN", "UPDATE", "TABLE", "TRUNCATE", "ON"]
        .iter()
        .any(|k| t.is(k))
        || t.is_punct(",")
}

/// `name` or `schema.name` (or `db.schema.name`) at `i`, and the index after it.
fn name_at(toks: &[Tok], i: usize) -> Option<(ObjName, usize)> {
    let word = |j: usize| match toks.get(j).map(|t| &t.kind) {
        Some(TokKind::Word { value, .. }) => Some(value.to_string()),
        _ => None,
    };
    let mut parts = vec![word(i)?];
    let mut j = i + 1;
    while toks.get(j).is_some_and(|t| t.is_punct(".")) {
        parts.push(word(j + 1)?);
        j += 2;
    }
    let name = parts.pop()?;
    Some((
        ObjName {
            schema: parts.pop(),
            name,
        },
        j,
    ))
}

/// The index after the `)` matching the `(` at `open` (the end when it is not closed).
fn close(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
    }
    toks.len()
}

/// The first index from `from` where `stop(token, next token)` holds outside the parentheses
/// opened after `from`, or where a `)` closes one opened before it.
fn top_level(
    toks: &[Tok],
    from: usize,
    stop: impl Fn(&Tok, Option<&Tok>) -> bool,
) -> Option<usize> {
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate().skip(from) {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
            if depth < 0 {
                return Some(k);
            }
        } else if depth == 0 && stop(t, toks.get(k + 1)) {
            return Some(k);
        }
    }
    None
}

/// The tokens inside the parentheses opening at `open`.
pub(super) fn inside(toks: &[Tok], open: usize) -> &[Tok] {
    let end = close(toks, open);
    let end = if toks.get(end - 1).is_some_and(|t| t.is_punct(")")) {
        end - 1
    } else {
        end
    };
    &toks[(open + 1).min(end)..end]
}

/// One element of an index or of an `ON CONFLICT (…)` target in `src`: a column's name
/// (without its operator class, collation or order), or an expression's text as written.
pub(super) fn element(src: &str, e: &[Tok]) -> Option<String> {
    let first = e.first()?;
    let last = e.last()?;
    let call = e.get(1).is_some_and(|n| n.is_punct("(") || n.is_punct("."));
    match &first.kind {
        TokKind::Word { value, .. } if !call => Some(value.to_string()),
        _ => Some(src[first.span.start..last.span.end].to_string()),
    }
}

/// A word token's identifier value.
fn word(t: &Tok) -> Option<&str> {
    match &t.kind {
        TokKind::Word { value, .. } => Some(value),
        _ => None,
    }
}

/// The `INSERT INTO` at `i`, when it inserts into `table`.
fn insert(src: &str, toks: &[Tok], i: usize, table: &Table) -> Option<Insert> {
    let (name, mut j) = name_at(toks, i + 2)?;
    if !table.is(&name) {
        return None;
    }
    // The end of the insert: the `)` that closes the parentheses it is in (a CTE), or the end.
    let end = top_level(toks, j, |_, _| false).unwrap_or(toks.len());
    let toks = &toks[..end];
    let mut ins = Insert::default();
    if toks.get(j).is_some_and(|t| t.is("AS")) {
        j += 2;
    }
    if toks.get(j).is_some_and(|t| t.is_punct("(")) {
        let first = toks.get(j + 1);
        if !first
            .is_some_and(|t| t.is("SELECT") || t.is("WITH") || t.is("VALUES") || t.is_punct("("))
        {
            ins.column_list = true;
            j = close(toks, j);
        }
    }
    if toks.get(j).is_some_and(|t| t.is("OVERRIDING")) {
        j += 3;
    }
    if toks.get(j).is_some_and(|t| t.is("DEFAULT"))
        && toks.get(j + 1).is_some_and(|t| t.is("VALUES"))
    {
        ins.default_values = true;
    } else if toks.get(j).is_some_and(|t| t.is("VALUES"))
        && toks.get(j + 1).is_some_and(|t| t.is_punct("("))
    {
        let row = inside(toks, j + 1);
        ins.values = Some(if row.is_empty() {
            0
        } else {
            split_top_level_commas(row).len()
        });
    }
    // `ON CONFLICT` outside any parentheses of the insert's own.
    if let Some(k) = top_level(toks, j, |t, next| {
        t.is("ON") && next.is_some_and(|n| n.is("CONFLICT"))
    }) {
        ins.conflict = Some(conflict(src, toks, k + 2));
    }
    Some(ins)
}

/// The `ON CONFLICT` clause whose target starts at `k`.
fn conflict(src: &str, toks: &[Tok], mut k: usize) -> Conflict {
    let target = if toks.get(k).is_some_and(|t| t.is_punct("(")) {
        let elements = split_top_level_commas(inside(toks, k));
        k = close(toks, k);
        let mut columns = Vec::new();
        let mut expressions = false;
        for e in elements {
            if !matches!(e, [t] if word(t).is_some()) {
                // An expression, or `col COLLATE "C"`, `col opclass`: not a plain column.
                expressions = true;
            }
            columns.extend(element(src, e));
        }
        Target::Columns {
            columns,
            expressions,
            predicate: toks.get(k).is_some_and(|t| t.is("WHERE")),
        }
    } else if toks.get(k).is_some_and(|t| t.is("ON"))
        && toks.get(k + 1).is_some_and(|t| t.is("CONSTRAINT"))
    {
        match toks.get(k + 2).and_then(word) {
            Some(n) => Target::Constraint(n.to_string()),
            None => Target::Any,
        }
    } else {
        Target::Any
    };
    // DO UPDATE SET a = …, (b, c) = … [WHERE …] [RETURNING …]
    let mut sets = Vec::new();
    if let Some(s) = find_seq(&toks[k..], &["DO", "UPDATE", "SET"]) {
        let from = k + s + 3;
        let until = top_level(toks, from, |t, _| {
            t.is("WHERE") || t.is("RETURNING") || t.is_punct(";")
        })
        .unwrap_or(toks.len());
        for a in split_top_level_commas(&toks[from..until]) {
            match a.first() {
                Some(t) if t.is_punct("(") => sets.extend(
                    split_top_level_commas(inside(a, 0))
                        .into_iter()
                        .filter_map(|c| c.first().and_then(word).map(str::to_string)),
                ),
                Some(t) => sets.extend(word(t).map(str::to_string)),
                None => {}
            }
        }
    }
    Conflict { target, sets }
}

/// Words that end a table reference (instead of being its alias).
const NOT_ALIAS: &[&str] = &[
    "WHERE",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "NATURAL",
    "ON",
    "USING",
    "GROUP",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "FETCH",
    "FOR",
    "WINDOW",
    "HAVING",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "RETURNING",
    "SET",
    "TABLESAMPLE",
    "LATERAL",
    "VALUES",
    "SELECT",
    "DEFAULT",
    "OVERRIDING",
    "DO",
    "WITH",
    "ONLY",
];

/// The table references of a statement (after `FROM`, `JOIN`, `UPDATE`, `INTO`, `USING`,
/// and the commas of a `FROM` list), each with its alias.
fn relations(toks: &[Tok]) -> Vec<(ObjName, Option<String>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let list = t.is("FROM") || t.is("USING");
        if !(list || t.is("JOIN") || t.is("UPDATE") || t.is("INTO")) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        loop {
            if toks.get(j).is_some_and(|t| t.is("ONLY")) {
                j += 1;
            }
            let Some((name, mut k)) = name_at(toks, j) else {
                break;
            };
            if toks.get(k).is_some_and(|t| t.is_punct("*")) {
                k += 1;
            }
            if toks.get(k).is_some_and(|t| t.is("AS")) {
                k += 1;
            }
            let alias = match toks.get(k).map(|t| &t.kind) {
                Some(TokKind::Word { upper, value, .. }) if !NOT_ALIAS.contains(&&**upper) => {
                    k += 1;
                    Some(value.to_string())
                }
                _ => None,
            };
            out.push((name, alias));
            j = k;
            if !(list && toks.get(j).is_some_and(|t| t.is_punct(","))) {
                break;
            }
            j += 1;
        }
        i = j.max(i + 1);
    }
    out
}

/// Whether the table's `ctid` appears in a condition (after `WHERE` or `ON`).
fn ctid(toks: &[Tok], table: &Table) -> bool {
    let Some(cond) = toks.iter().position(|t| t.is("WHERE") || t.is("ON")) else {
        return false;
    };
    let rels = relations(toks);
    let ours: Vec<&(ObjName, Option<String>)> = rels.iter().filter(|(n, _)| table.is(n)).collect();
    if ours.is_empty() {
        return false;
    }
    (cond..toks.len()).any(|k| {
        if word(&toks[k]) != Some("ctid") {
            return false;
        }
        let qualifier = (k >= 2 && toks[k - 1].is_punct("."))
            .then(|| word(&toks[k - 2]))
            .flatten();
        match qualifier {
            Some(q) => ours
                .iter()
                .any(|(n, alias)| alias.as_deref().unwrap_or(&n.name) == q),
            None => ours.len() == rels.len(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Table {
        Table {
            schema: "public".into(),
            name: "events".into(),
            unqualified: true,
        }
    }

    fn of(text: &str) -> Vec<Use> {
        uses(text, &events()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn insert_of(text: &str) -> Insert {
        match of(text).as_slice() {
            [Use::Insert(i)] => i.clone(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn inserts_their_column_lists_and_conflict_clauses() {
        let i = insert_of("INSERT INTO events VALUES ($1, $2, now()) ON CONFLICT (id) DO NOTHING");
        assert!(!i.column_list);
        assert_eq!(i.values, Some(3));
        assert_eq!(
            i.conflict,
            Some(Conflict {
                target: Target::Columns {
                    columns: vec!["id".into()],
                    expressions: false,
                    predicate: false
                },
                sets: vec![]
            })
        );
        let i = insert_of(
            "insert into public.events as e (id, \"Kind\", at) values ($1, $2, $3) on conflict (ID) where at > $4 do update set \"Kind\" = excluded.\"Kind\", (at, n) = (excluded.at, e.n + $5) where e.id > $6 returning *",
        );
        assert!(i.column_list);
        let c = i.conflict.unwrap();
        assert_eq!(
            c.target,
            Target::Columns {
                columns: vec!["id".into()],
                expressions: false,
                predicate: true
            }
        );
        assert_eq!(c.sets, ["Kind", "at", "n"]);
        let i = insert_of("INSERT INTO events OVERRIDING SYSTEM VALUE SELECT * FROM old_events ON CONFLICT ON CONSTRAINT events_pkey DO NOTHING");
        assert_eq!(i.values, None);
        assert!(!i.column_list);
        assert_eq!(
            i.conflict.unwrap().target,
            Target::Constraint("events_pkey".into())
        );
        let i = insert_of("INSERT INTO events VALUES ($1) ON CONFLICT ((lower(name))) DO NOTHING");
        assert!(matches!(
            i.conflict.unwrap().target,
            Target::Columns {
                expressions: true,
                ..
            }
        ));
        assert!(insert_of("INSERT INTO events DEFAULT VALUES").default_values);
        assert!(!insert_of("INSERT INTO events (SELECT 1, 2)").column_list);
        // In a CTE, and its ON CONFLICT only.
        let i = insert_of("WITH n AS (INSERT INTO events (id) VALUES ($1) RETURNING id) INSERT INTO other SELECT id FROM n ON CONFLICT (x) DO NOTHING");
        assert_eq!(i.conflict, None);
        // Other tables, and names that are not the table.
        assert!(of("INSERT INTO events_archive VALUES ($1)").is_empty());
        assert!(of("INSERT INTO other.events VALUES ($1)").is_empty());
        let hidden = Table {
            unqualified: false,
            ..events()
        };
        assert!(uses("INSERT INTO events VALUES ($1)", &hidden)
            .unwrap()
            .is_empty());
        assert_eq!(
            uses("INSERT INTO public.events VALUES ($1)", &hidden)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn only_copy_ctid_index_builds_and_cluster() {
        assert_eq!(of("SELECT count(*) FROM ONLY events"), [Use::Only]);
        assert_eq!(of("UPDATE ONLY public.events SET a = $1"), [Use::Only]);
        assert_eq!(of("DELETE FROM ONLY events WHERE id = $1"), [Use::Only]);
        assert_eq!(of("SELECT * FROM other, ONLY (events) e"), [Use::Only]);
        assert_eq!(of("TRUNCATE ONLY events"), [Use::TruncateOnly]);
        assert_eq!(of("TRUNCATE TABLE other, ONLY events"), [Use::TruncateOnly]);
        assert!(of("LOCK TABLE ONLY events IN SHARE MODE").is_empty());
        assert!(of("SELECT * FROM events FETCH FIRST 1 ROWS ONLY").is_empty());
        assert_eq!(of("COPY events TO STDOUT"), [Use::CopyTo]);
        assert_eq!(
            of("COPY public.events (id, at) TO STDOUT WITH (FORMAT csv)"),
            [Use::CopyTo]
        );
        assert!(of("COPY events FROM STDIN").is_empty());
        assert!(of("COPY (SELECT * FROM events) TO STDOUT").is_empty());
        assert_eq!(of("UPDATE events SET a = $1 WHERE ctid = $2"), [Use::Ctid]);
        assert_eq!(
            of("DELETE FROM events e USING other o WHERE e.ctid = ANY($1::tid[]) AND o.id = e.id"),
            [Use::Ctid]
        );
        assert!(of("SELECT id, ctid FROM events").is_empty());
        // lockstep's own replay: the ctid is the log's.
        assert!(of("SELECT id, at FROM public.events t WHERE EXISTS (SELECT 1 FROM lockstep.log_r1 l WHERE t.id = l.id AND l.ctid = ANY ($1::text::tid[]))").is_empty());
        assert!(
            of("SELECT * FROM events e JOIN other o ON o.id = e.id WHERE o.ctid = $1").is_empty()
        );
        assert!(of("SELECT * FROM events e, other o WHERE ctid = $1").is_empty());
        assert_eq!(
            of("CREATE INDEX CONCURRENTLY events_at ON events (at)"),
            [Use::CreateIndexConcurrently]
        );
        assert!(of("CREATE INDEX events_at ON events (at)").is_empty());
        assert_eq!(of("CLUSTER events"), [Use::Cluster]);
        assert!(of("CLUSTER events USING events_pkey").is_empty());
        assert_eq!(
            of("ALTER TABLE events CLUSTER ON events_pkey"),
            [Use::ClusterOn]
        );
    }

    #[test]
    fn what_cannot_be_read_says_why() {
        assert!(uses("SELECT 'unterminated", &events()).is_err());
        assert!(uses("FROBNICATE events", &events()).is_err());
    }
}
