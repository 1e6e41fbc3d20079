//! Token-level reading of what a statement does to rows: the tables it writes (`INSERT`,
//! `UPDATE`, `DELETE`, `MERGE`, also inside data-modifying `WITH` queries), the tables it
//! reads (`FROM`, `JOIN` and `USING` lists, at any depth), row locks (`FOR UPDATE`) and the
//! functions it calls. Names of common table expressions are left out. It works on tokens
//! because the statements it serves (queries, `INSERT`) are not parsed at all (see
//! [`super::parse`]), and because data-modifying CTEs need no more than this.

use super::ir::ObjName;
use super::tokens::{Tok, TokKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Insert,
    Update,
    Delete,
    Merge,
}

/// A table rows are written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub table: ObjName,
    pub kind: WriteKind,
    /// `UPDATE`/`DELETE` with a `WHERE` clause (which may use an index instead of a scan).
    pub has_where: bool,
    /// `UPDATE … SET` columns.
    pub columns: Vec<String>,
}

/// What a statement does to rows, as far as its tokens tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub writes: Vec<Write>,
    /// Relations read, in order of appearance, without duplicates (CTE names left out).
    pub reads: Vec<ObjName>,
    /// `FOR UPDATE`/`FOR SHARE`/`FOR [NO] KEY …`: the rows read are locked.
    pub row_locks: bool,
    /// Names (unqualified, lower case) of functions called.
    pub calls: Vec<String>,
}

fn word(t: &Tok) -> Option<&str> {
    t.ident()
}

/// `name` or `schema.name` at `toks[i..]`; the name and the index after it.
fn name_at(toks: &[Tok], i: usize) -> Option<(ObjName, usize)> {
    let first = toks.get(i)?;
    if !matches!(first.kind, TokKind::Word { .. }) || is_reserved_start(first) {
        return None;
    }
    let mut parts = vec![word(first)?.to_string()];
    let mut j = i + 1;
    while toks.get(j).is_some_and(|t| t.is_punct(".")) {
        let Some(next) = toks.get(j + 1).and_then(word) else {
            break;
        };
        parts.push(next.to_string());
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

/// Keywords that start something other than a relation name after `FROM`/`JOIN`.
fn is_reserved_start(t: &Tok) -> bool {
    const K: &[&str] = &[
        "SELECT",
        "LATERAL",
        "ONLY",
        "VALUES",
        "WITH",
        "ROWS",
        "UNNEST",
        "WHERE",
        "GROUP",
        "ORDER",
        "LIMIT",
        "JOIN",
        "ON",
        "USING",
        "SET",
        "RETURNING",
        "AND",
        "OR",
        "NOT",
        "NULL",
        "TRUE",
        "FALSE",
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "IN",
        "EXISTS",
        "ALL",
        "ANY",
        "DISTINCT",
        "CURRENT_DATE",
        "CURRENT_TIMESTAMP",
        "INTERVAL",
        "ARRAY",
        "ROW",
        "DEFAULT",
    ];
    matches!(&t.kind, TokKind::Word { upper, quoted: false, .. } if K.contains(&&**upper))
}

/// Words after which a following identifier is an alias, not a new clause.
fn is_clause_keyword(t: &Tok) -> bool {
    const K: &[&str] = &[
        "WHERE",
        "GROUP",
        "ORDER",
        "LIMIT",
        "OFFSET",
        "JOIN",
        "LEFT",
        "RIGHT",
        "INNER",
        "FULL",
        "CROSS",
        "NATURAL",
        "ON",
        "USING",
        "UNION",
        "EXCEPT",
        "INTERSECT",
        "HAVING",
        "WINDOW",
        "WITH",
        "SET",
        "RETURNING",
        "FOR",
        "FETCH",
        "TABLESAMPLE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "AND",
        "OR",
        "INTO",
        "VALUES",
        "SELECT",
        "DO",
        "LOOP",
    ];
    matches!(&t.kind, TokKind::Word { upper, quoted: false, .. } if K.contains(&&**upper))
}

/// Words that end a FROM list at its depth.
fn ends_from_list(t: &Tok) -> bool {
    const K: &[&str] = &[
        "WHERE",
        "GROUP",
        "ORDER",
        "LIMIT",
        "OFFSET",
        "HAVING",
        "WINDOW",
        "UNION",
        "EXCEPT",
        "INTERSECT",
        "RETURNING",
        "FOR",
        "FETCH",
        "SELECT",
        "SET",
        "VALUES",
        "DO",
    ];
    matches!(&t.kind, TokKind::Word { upper, quoted: false, .. } if K.contains(&&**upper))
        || t.is_punct(";")
}

/// Functions whose argument syntax uses `FROM` (`EXTRACT(x FROM y)`).
const FROM_IN_ARGS: &[&str] = &[
    "EXTRACT",
    "SUBSTRING",
    "TRIM",
    "OVERLAY",
    "SUBSTR",
    "NORMALIZE",
];

/// Reads a statement's (or a PL/pgSQL statement's) tokens.
pub fn access(toks: &[Tok]) -> Access {
    let mut out = Access::default();
    let ctes = cte_names(toks);
    // For each open parenthesis: the word before it (a function name, or empty).
    let mut parens: Vec<String> = Vec::new();
    // Parenthesis depths at which a FROM list is open (`FROM a JOIN b ON …, c`).
    let mut from_lists: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if from_lists.last() == Some(&parens.len()) {
            if t.is_punct(",") {
                i = out.read_list(toks, i + 1, &ctes);
                continue;
            }
            if ends_from_list(t) {
                from_lists.pop();
            }
        }
        if t.is_punct("(") {
            let before = i
                .checked_sub(1)
                .and_then(|j| match &toks[j].kind {
                    TokKind::Word { upper, .. } => Some(upper.to_string()),
                    _ => None,
                })
                .unwrap_or_default();
            parens.push(before);
            i += 1;
            continue;
        }
        if t.is_punct(")") {
            parens.pop();
            from_lists.retain(|d| *d <= parens.len());
            i += 1;
            continue;
        }
        let prev = i.checked_sub(1).map(|j| &toks[j]);
        let next = toks.get(i + 1);
        if t.is("INSERT") && next.is_some_and(|n| n.is("INTO")) {
            if let Some((table, j)) = name_at(toks, i + 2) {
                out.push_write(table, WriteKind::Insert, false, Vec::new());
                i = j;
                continue;
            }
        } else if t.is("MERGE") && next.is_some_and(|n| n.is("INTO")) {
            if let Some((table, j)) = name_at(toks, i + 2) {
                out.push_write(table, WriteKind::Merge, false, Vec::new());
                i = j;
                continue;
            }
        } else if t.is("DELETE") && next.is_some_and(|n| n.is("FROM")) {
            let k = if toks.get(i + 2).is_some_and(|n| n.is("ONLY")) {
                i + 3
            } else {
                i + 2
            };
            if let Some((table, j)) = name_at(toks, k) {
                let has_where = clause_follows(toks, j, "WHERE");
                out.push_write(table, WriteKind::Delete, has_where, Vec::new());
                i = j;
                continue;
            }
        } else if t.is("UPDATE") && !prev.is_some_and(|p| p.is("FOR") || p.is("KEY") || p.is("DO"))
        {
            let k = if next.is_some_and(|n| n.is("ONLY")) {
                i + 2
            } else {
                i + 1
            };
            if let Some((table, mut j)) = name_at(toks, k) {
                if toks.get(j).is_some_and(|t| t.is_punct("*")) {
                    j += 1;
                }
                // An alias, then SET.
                let mut s = j;
                if toks.get(s).is_some_and(|t| t.is("AS")) {
                    s += 1;
                }
                if toks
                    .get(s)
                    .is_some_and(|t| !t.is("SET") && word(t).is_some())
                {
                    s += 1;
                }
                if toks.get(s).is_some_and(|t| t.is("SET")) {
                    let has_where = clause_follows(toks, s, "WHERE");
                    let columns = set_columns(toks, s + 1);
                    out.push_write(table, WriteKind::Update, has_where, columns);
                    i = s + 1;
                    continue;
                }
            }
        } else if t.is("FOR")
            && next.is_some_and(|n| n.is("UPDATE") || n.is("SHARE") || n.is("NO") || n.is("KEY"))
            && !prev.is_some_and(|p| p.is("GRANTED"))
        {
            out.row_locks = true;
        } else if (t.is("FROM") || t.is("JOIN") || t.is("USING"))
            && !prev.is_some_and(|p| p.is("DISTINCT") || p.is("DELETE"))
            && !parens
                .last()
                .is_some_and(|f| FROM_IN_ARGS.contains(&f.as_str()))
        {
            if from_lists.last() != Some(&parens.len()) {
                from_lists.push(parens.len());
            }
            i = out.read_list(toks, i + 1, &ctes);
            continue;
        } else if next.is_some_and(|n| n.is_punct("("))
            && !prev.is_some_and(|p| p.is("INTO") || p.is("TABLE") || p.is_punct("::"))
        {
            if let TokKind::Word { value, .. } = &t.kind {
                if !out.calls.iter().any(|c| c == value.as_str()) {
                    out.calls.push(value.to_string());
                }
            }
        }
        i += 1;
    }
    out
}

impl Access {
    fn push_write(
        &mut self,
        table: ObjName,
        kind: WriteKind,
        has_where: bool,
        columns: Vec<String>,
    ) {
        self.writes.push(Write {
            table,
            kind,
            has_where,
            columns,
        });
    }

    /// A comma-separated list of relations (each with an optional alias) from `i`; returns
    /// the index after it.
    fn read_list(&mut self, toks: &[Tok], mut i: usize, ctes: &[String]) -> usize {
        loop {
            if toks.get(i).is_some_and(|t| t.is("ONLY")) {
                i += 1;
            }
            let Some((name, mut j)) = name_at(toks, i) else {
                return i;
            };
            // A function in FROM is a call, not a relation.
            if toks.get(j).is_some_and(|t| t.is_punct("(")) {
                if !self.calls.contains(&name.name) {
                    self.calls.push(name.name.clone());
                }
                return j;
            }
            if !ctes.contains(&name.name) && !self.reads.contains(&name) {
                self.reads.push(name);
            }
            if toks.get(j).is_some_and(|t| t.is_punct("*")) {
                j += 1;
            }
            if toks.get(j).is_some_and(|t| t.is("AS")) {
                j += 1;
            }
            if toks
                .get(j)
                .is_some_and(|t| word(t).is_some() && !is_clause_keyword(t))
            {
                j += 1;
                // Column aliases: `alias (a, b)`.
                if toks.get(j).is_some_and(|t| t.is_punct("(")) {
                    return j;
                }
            }
            if toks.get(j).is_some_and(|t| t.is_punct(",")) {
                i = j + 1;
                continue;
            }
            return j;
        }
    }
}

/// Names defined by `WITH name [(columns)] AS [[NOT] MATERIALIZED] (`.
fn cte_names(toks: &[Tok]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let Some(name) = word(t) else { continue };
        let mut j = i + 1;
        if toks.get(j).is_some_and(|t| t.is_punct("(")) {
            // Skip a column list.
            let mut depth = 0;
            while let Some(t) = toks.get(j) {
                if t.is_punct("(") {
                    depth += 1;
                } else if t.is_punct(")") {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                j += 1;
            }
            j += 1;
        }
        if !toks.get(j).is_some_and(|t| t.is("AS")) {
            continue;
        }
        j += 1;
        if toks.get(j).is_some_and(|t| t.is("NOT")) {
            j += 1;
        }
        if toks.get(j).is_some_and(|t| t.is("MATERIALIZED")) {
            j += 1;
        }
        if toks.get(j).is_some_and(|t| t.is_punct("(")) {
            out.push(name.to_string());
        }
    }
    out
}

/// Whether clause `kw` follows at the same parenthesis depth before that depth closes.
fn clause_follows(toks: &[Tok], from: usize, kw: &str) -> bool {
    let mut depth = 0i32;
    for t in toks.iter().skip(from) {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
            if depth < 0 {
                return false;
            }
        } else if depth == 0 && t.is(kw) {
            return true;
        } else if depth == 0 && t.is_punct(";") {
            return false;
        }
    }
    false
}

/// The columns an `UPDATE … SET` list assigns (`a = …, (b, c) = …`), from just after `SET`.
fn set_columns(toks: &[Tok], from: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut at_item = true;
    let mut i = from;
    while let Some(t) = toks.get(i) {
        if depth == 0 && (t.is("FROM") || t.is("WHERE") || t.is("RETURNING") || t.is_punct(";")) {
            break;
        }
        if t.is_punct("(") {
            if depth == 0 && at_item {
                // `(a, b) = …`
                let mut j = i + 1;
                while let Some(c) = toks.get(j) {
                    if c.is_punct(")") {
                        break;
                    }
                    if let Some(w) = word(c) {
                        out.push(w.to_string());
                    }
                    j += 1;
                }
                at_item = false;
                i = j + 1;
                continue;
            }
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
            if depth < 0 {
                break;
            }
        } else if depth == 0 && t.is_punct(",") {
            at_item = true;
            i += 1;
            continue;
        } else if depth == 0 && at_item {
            if let Some(w) = word(t) {
                out.push(w.to_string());
            }
            at_item = false;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(sql: &str) -> Access {
        let toks = crate::sql::tokens::tokenize(sql, 0).unwrap().toks;
        access(&toks)
    }

    fn names(v: &[ObjName]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn writes_in_data_modifying_ctes_and_reads_of_their_sources() {
        let a = read(
            "WITH gone AS (DELETE FROM sessions s WHERE s.expires < now() RETURNING user_id),
                  moved AS (INSERT INTO audit (user_id) SELECT user_id FROM gone)
             UPDATE users u SET active = false, (a, b) = (1, 2) FROM gone, profiles p
             WHERE u.id = gone.user_id",
        );
        let w: Vec<(String, WriteKind, bool)> = a
            .writes
            .iter()
            .map(|w| (w.table.to_string(), w.kind, w.has_where))
            .collect();
        assert_eq!(
            w,
            [
                ("sessions".into(), WriteKind::Delete, true),
                ("audit".into(), WriteKind::Insert, false),
                ("users".into(), WriteKind::Update, true),
            ]
        );
        assert_eq!(a.writes[2].columns, ["active", "a", "b"]);
        assert_eq!(names(&a.reads), ["profiles"], "CTE names are not tables");
    }

    #[test]
    fn from_lists_joins_and_what_is_not_a_table() {
        let a = read(
            "INSERT INTO t (a) SELECT extract(epoch FROM x.at), substring(y FROM 2)
             FROM public.x AS x JOIN y ON y.id = x.id, z, generate_series(1, 3) g
             WHERE x.a IS DISTINCT FROM x.b AND EXISTS (SELECT 1 FROM w)",
        );
        assert_eq!(names(&a.reads), ["public.x", "y", "z", "w"]);
        assert!(a.calls.contains(&"generate_series".to_string()));
        assert!(!a.row_locks);
        let a = read("SELECT * FROM t FOR UPDATE SKIP LOCKED");
        assert!(a.row_locks);
        let a = read("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1");
        assert_eq!(a.writes.len(), 1, "DO UPDATE is no second write");
    }
}
