//! Keyset pagination over a table's primary key: the SQL pieces that batches, verification
//! and resumable updates share. Keys travel as `text[]` (one element per key column) and are
//! cast back to the column types in SQL, so any key type works.

use serde::{Deserialize, Serialize};

use super::facts::Facts;
use crate::sql::ir::quote_ident;

/// The key columns of a table, with their types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyset {
    /// (column name, type as `format_type` prints it)
    pub columns: Vec<(String, String)>,
}

impl Keyset {
    /// The primary key of the table in `facts`.
    pub fn primary(facts: &Facts) -> Keyset {
        Keyset {
            columns: facts
                .pk_columns
                .iter()
                .map(|c| {
                    let t = facts.column(c).map_or("text", |c| c.type_sql.as_str());
                    (c.clone(), t.to_string())
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// `a, b` (quoted).
    pub fn list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `prefix.a` or `(prefix.a, prefix.b)`; `prefix` includes its dot or is empty.
    pub fn row(&self, prefix: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(c, _)| format!("{prefix}{}", quote_ident(c)))
            .collect();
        if cols.len() == 1 {
            cols[0].clone()
        } else {
            format!("({})", cols.join(", "))
        }
    }

    /// `($1::text::t1, $2::text::t2)` for the key columns, parameters starting at `first`.
    pub fn params(&self, first: usize) -> String {
        let parts: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, t))| format!("${}::text::{t}", first + i))
            .collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("({})", parts.join(", "))
        }
    }

    /// The same with the values taken from a `text[]` expression instead of parameters.
    pub fn from_array(&self, array: &str) -> String {
        let parts: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, t))| format!("({array})[{}]::{t}", i + 1))
            .collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("({})", parts.join(", "))
        }
    }

    /// `ARRAY[prefix.a::text, …]`.
    pub fn text_array(&self, prefix: &str) -> String {
        format!(
            "ARRAY[{}]",
            self.columns
                .iter()
                .map(|(c, _)| format!("{prefix}{}::text", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// `a, b` or `a DESC, b DESC`.
    pub fn order(&self, desc: bool) -> String {
        self.columns
            .iter()
            .map(|(c, _)| format!("{}{}", quote_ident(c), if desc { " DESC" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The highest key now in `table`, as `text[]` (a batch loop's upper bound).
    pub fn max_key_sql(&self, table: &str) -> String {
        format!(
            "SELECT {} FROM {table} ORDER BY {} LIMIT 1",
            self.text_array(""),
            self.order(true)
        )
    }

    /// About `percent` % of the pages of `table` (`TABLESAMPLE SYSTEM`): their keys up to
    /// the upper bound (`$1..$k`), in key order, as `text[]`. Where to split a key range
    /// into parts of about equal size.
    pub fn sample_sql(&self, table: &str, percent: f64) -> String {
        format!(
            "SELECT {} FROM {table} TABLESAMPLE SYSTEM ({percent}) WHERE {} <= {} ORDER BY {}",
            self.text_array(""),
            self.row(""),
            self.params(1),
            self.order(false)
        )
    }

    /// `key > lower AND ` with the lower bound in the parameters after the upper bound's
    /// (empty from the start).
    pub fn lower_cond(&self, from_start: bool) -> String {
        if from_start {
            String::new()
        } else {
            format!("{} > {} AND ", self.row(""), self.params(self.len() + 1))
        }
    }

    /// `lower < key <= upper`: the upper bound in the parameters `$1..$k`, the lower one
    /// after it (none from the start).
    pub fn range_cond(&self, from_start: bool) -> String {
        format!(
            "{}{} <= {}",
            self.lower_cond(from_start),
            self.row(""),
            self.params(1)
        )
    }

    /// The first CTEs of a batch over `table`: `lockstep_bound` (the next `{limit}` keys up
    /// to the upper bound) and `lockstep_last` (the batch's last key). The batch covers
    /// `lower < key <= (SELECT … FROM lockstep_last)`, see [`Keyset::batch_cond`].
    pub fn batch_ctes(&self, table: &str, from_start: bool) -> String {
        format!(
            "lockstep_bound AS (SELECT {keys} FROM {table} WHERE {cond} ORDER BY {order} LIMIT {{limit}}),
lockstep_last AS (SELECT {keys} FROM lockstep_bound ORDER BY {desc} LIMIT 1)",
            keys = self.list(),
            cond = self.range_cond(from_start),
            order = self.order(false),
            desc = self.order(true),
        )
    }

    /// The key range of the batch (after [`Keyset::batch_ctes`]).
    pub fn batch_cond(&self, from_start: bool) -> String {
        format!(
            "{}{} <= (SELECT {} FROM lockstep_last)",
            self.lower_cond(from_start),
            self.row(""),
            self.list()
        )
    }

    /// The last key of the batch as `text[]` (NULL when the range is exhausted).
    pub fn batch_last(&self) -> String {
        format!("(SELECT {} FROM lockstep_last)", self.text_array(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks() -> Keyset {
        Keyset {
            columns: vec![
                ("Id".into(), "bigint".into()),
                ("select".into(), "text".into()),
            ],
        }
    }

    #[test]
    fn quotes_and_casts() {
        let k = ks();
        assert_eq!(k.list(), "\"Id\", \"select\"");
        assert_eq!(k.row("t."), "(t.\"Id\", t.\"select\")");
        assert_eq!(k.params(3), "($3::text::bigint, $4::text::text)");
        assert_eq!(k.from_array("x.k"), "((x.k)[1]::bigint, (x.k)[2]::text)");
        assert_eq!(k.lower_cond(true), "");
        assert!(k.lower_cond(false).contains("$3::text::bigint"));
        assert!(k.batch_ctes("s.t", false).contains("LIMIT {limit}"));
        assert_eq!(
            k.sample_sql("s.t", 0.5),
            "SELECT ARRAY[\"Id\"::text, \"select\"::text] FROM s.t TABLESAMPLE SYSTEM (0.5) WHERE (\"Id\", \"select\") <= ($1::text::bigint, $2::text::text) ORDER BY \"Id\", \"select\""
        );
    }
}
