//! Column definitions (`name type [options…]`), shared by `CREATE TABLE` and `ADD COLUMN`.

use super::create::ref_actions;
use super::cursor::{column_list, toks_text, Cur};
use crate::sql::ir::*;
use crate::sql::parse::normalize_type;

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
pub(super) fn column_def(c: &mut Cur) -> Option<ColumnDef> {
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
pub(super) fn column_options(c: &mut Cur, col: &mut ColumnDef) -> Option<()> {
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
