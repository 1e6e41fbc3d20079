//! A table's definition before and after a change, as the plan shows it (`lockstep plan`'s
//! diff), reduced to what statements depend on: the columns in order, the unique keys and
//! the partition key. Both definitions are read back with the project's SQL parser, so the
//! plans of every kind (and of kinds added later) are compared the same way.

use std::collections::BTreeSet;

use super::statement::{element, inside};
use crate::playbook::names::quote_ident;
use crate::sql::ir::{ActionKind, Constraint, StmtKind};
use crate::sql::parse::analyze;
use crate::sql::split;
use crate::sql::tokens::{find_seq, split_top_level_commas, tokenize, Tok, TokKind};

/// What statements depend on in a table's definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Column names in table order (empty when the definition has no `CREATE TABLE`).
    pub columns: Vec<String>,
    /// The primary key, unique constraints and unique indexes.
    pub keys: Vec<Key>,
    /// The columns or expressions of `PARTITION BY`, for a partitioned table.
    pub partition_key: Option<Vec<String>>,
}

/// A primary key, unique constraint or unique index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub primary: bool,
    /// Its columns or expressions, in order.
    pub elements: Vec<String>,
    /// A partial unique index (`WHERE …`).
    pub partial: bool,
}

impl Key {
    /// Its columns, when every element is a column of `shape`.
    pub fn columns(&self, shape: &Shape) -> Option<BTreeSet<String>> {
        self.elements
            .iter()
            .map(|e| shape.columns.contains(e).then(|| e.clone()))
            .collect()
    }

    /// Its elements as `fingerprint`s: what PostgreSQL matches an `ON CONFLICT` target
    /// against, whatever the spelling.
    pub fn fingerprints(&self) -> BTreeSet<String> {
        self.elements.iter().map(|e| fingerprint(e)).collect()
    }

    /// `the primary key events_pkey (id)`, `the unique key users_email (email)`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} ({})",
            if self.primary {
                "the primary key"
            } else {
                "the unique key"
            },
            quote_ident(&self.name),
            show(&self.elements)
        )
    }
}

/// Reads a definition (`CREATE TABLE`, then `ALTER TABLE … ADD CONSTRAINT`, `CREATE INDEX`
/// and `CREATE TABLE … PARTITION OF` statements); what it does not recognise is left out.
pub fn shape(definition: &str) -> Shape {
    let mut out = Shape::default();
    let mut table_seen = false;
    for raw in split(definition).statements {
        let st = analyze(definition, raw.span.clone());
        match st.kind {
            StmtKind::CreateTable {
                partition_of: None,
                columns,
                constraints,
                ..
            } if !table_seen => {
                table_seen = true;
                out.columns = columns.into_iter().map(|c| c.name).collect();
                for (name, c) in constraints {
                    out.keys.extend(constraint_key(name, &c));
                }
                out.partition_key = partition_key(definition, &st.toks);
            }
            StmtKind::AlterTable { actions, .. } => {
                for a in actions {
                    if let ActionKind::AddConstraint {
                        name, constraint, ..
                    } = a.kind
                    {
                        out.keys.extend(constraint_key(name, &constraint));
                    }
                }
            }
            StmtKind::CreateIndex {
                name: Some(name),
                unique: true,
                columns,
                ..
            } => out.keys.push(Key {
                name,
                primary: false,
                elements: index_elements(definition, &st.toks).unwrap_or(columns),
                partial: st.toks.iter().any(|t| t.is("WHERE")),
            }),
            _ => {}
        }
    }
    out
}

fn constraint_key(name: Option<String>, c: &Constraint) -> Option<Key> {
    let (primary, columns) = match c {
        Constraint::PrimaryKey { columns, .. } => (true, columns),
        Constraint::Unique { columns, .. } => (false, columns),
        _ => return None,
    };
    Some(Key {
        name: name.unwrap_or_default(),
        primary,
        elements: columns.clone(),
        partial: false,
    })
}

/// Elements as SQL: columns quoted, expressions as written.
pub fn show<S: AsRef<str>>(elements: &[S]) -> String {
    elements
        .iter()
        .map(|e| {
            let e = e.as_ref();
            if e.contains('(') {
                e.to_string()
            } else {
                quote_ident(e)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The elements of `CREATE [UNIQUE] INDEX … ON table [USING method] (…)`.
fn index_elements(src: &str, toks: &[Tok]) -> Option<Vec<String>> {
    let on = toks.iter().position(|t| t.is("ON"))?;
    let open = on + toks[on..].iter().position(|t| t.is_punct("("))?;
    Some(
        split_top_level_commas(inside(toks, open))
            .into_iter()
            .filter_map(|e| element(src, e))
            .collect(),
    )
}

/// An element reduced to what its meaning does not depend on. A column (any text without
/// parentheses: expressions in an index are always written in them) is its quoted name; an
/// expression loses the case of unquoted words, spacing, parentheses, casts
/// (`lower((email)::text)` as PostgreSQL prints an index and `lower(email)` as an
/// application writes it are the same) and a trailing order. Text that cannot be read stays
/// as it is.
pub fn fingerprint(element: &str) -> String {
    if !element.contains('(') {
        return quote_ident(element);
    }
    let Ok(t) = tokenize(element, 0) else {
        return element.to_string();
    };
    let mut out: Vec<String> = Vec::new();
    let mut toks = t.toks.iter().peekable();
    while let Some(tok) = toks.next() {
        match &tok.kind {
            TokKind::Punct(p) if p == "(" || p == ")" => {}
            TokKind::Punct(p) if p == "::" => {
                toks.next();
            }
            TokKind::Word { value, .. } => out.push(quote_ident(value)),
            TokKind::Number(n) => out.push(n.to_string()),
            TokKind::Str(v) => out.push(format!("'{v}'")),
            TokKind::Punct(p) => out.push(p.to_string()),
        }
    }
    while out.len() > 1
        && out
            .last()
            .is_some_and(|w| ["asc", "desc", "nulls", "first", "last"].contains(&w.as_str()))
    {
        out.pop();
    }
    out.join(" ")
}

/// The elements of `PARTITION BY method (…)`: a column's name, or an expression's text.
fn partition_key(src: &str, toks: &[Tok]) -> Option<Vec<String>> {
    let at = find_seq(toks, &["PARTITION", "BY"])?;
    // PARTITION BY method ( … )
    let open = at + 3;
    if !toks.get(open)?.is_punct("(") {
        return None;
    }
    Some(
        split_top_level_commas(inside(toks, open))
            .into_iter()
            .filter_map(|e| match e {
                [Tok {
                    kind: TokKind::Word { value, .. },
                    ..
                }] => Some(value.to_string()),
                [first, .., last] => Some(src[first.span.start..last.span.end].to_string()),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_columns_keys_and_the_partition_key() {
        let s = shape(
            "CREATE TABLE \"Sales Data\".\"Order\" (\n    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,\n    \"select\" timestamp with time zone NOT NULL,\n    \"Note\" character varying(20) DEFAULT 'x'::character varying\n) PARTITION BY RANGE (\"select\");\n\
             ALTER TABLE \"Sales Data\".\"Order\" ADD CONSTRAINT \"Order_pkey\" PRIMARY KEY (id, \"select\");\n\
             CREATE UNIQUE INDEX order_note ON \"Sales Data\".\"Order\" USING btree (\"Note\" text_pattern_ops, \"select\") WHERE (id > 0);\n\
             CREATE UNIQUE INDEX order_lower ON \"Sales Data\".\"Order\" USING btree (lower((\"Note\")::text));\n\
             CREATE INDEX order_plain ON \"Sales Data\".\"Order\" USING btree (id);\n\
             CREATE TABLE \"Sales Data\".\"Order_p202601\" PARTITION OF \"Sales Data\".\"Order\" FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');\n",
        );
        assert_eq!(s.columns, ["id", "select", "Note"]);
        assert_eq!(s.partition_key, Some(vec!["select".to_string()]));
        assert_eq!(s.keys.len(), 3, "{:?}", s.keys);
        assert_eq!(
            s.keys[0],
            Key {
                name: "Order_pkey".into(),
                primary: true,
                elements: vec!["id".into(), "select".into()],
                partial: false
            }
        );
        assert_eq!(s.keys[1].elements, ["Note", "select"]);
        assert!(s.keys[1].partial);
        assert_eq!(
            s.keys[0].columns(&s),
            Some(["id".to_string(), "select".to_string()].into())
        );
        // An expression is no column.
        assert_eq!(s.keys[2].columns(&s), None);
        assert_eq!(
            s.keys[0].describe(),
            "the primary key \"Order_pkey\" (id, \"select\")"
        );
    }

    #[test]
    fn a_table_that_is_not_partitioned_has_no_partition_key() {
        let s = shape("CREATE TABLE t (\n    a integer,\n    b text\n);\n");
        assert_eq!(s.columns, ["a", "b"]);
        assert_eq!(s.partition_key, None);
        assert!(s.keys.is_empty());
        assert_eq!(shape(""), Shape::default());
    }
}
