//! Default expressions: which functions they call and whether adding a column with one
//! rewrites the table.

use crate::lint::catalog::Catalog;
use crate::sql::ir::{FunctionVolatility, Generated};

/// How safe a default expression is to add with a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volatility {
    /// Constants, casts of constants, stable functions such as `now()`.
    Safe,
    /// A known volatile function: every row gets its own value, so the table is rewritten.
    Volatile(String),
    /// A function whose volatility lockstep does not know (user functions).
    Unknown(String),
}

const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "random_normal",
    "gen_random_bytes",
];

const STABLE_OR_IMMUTABLE: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
    "transaction_timestamp",
    "statement_timestamp",
    "current_user",
    "session_user",
    "current_setting",
    "lower",
    "upper",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "concat",
    "concat_ws",
    "array",
    "to_jsonb",
    "to_json",
    "jsonb_build_object",
    "jsonb_build_array",
    "json_build_object",
    "json_build_array",
    "make_interval",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "to_timestamp",
    "to_date",
    "to_char",
    "date_trunc",
    "length",
    "md5",
    "round",
    "abs",
    "timezone",
    "cast",
    "interval",
    "date",
    "timestamp",
    "timestamptz",
    "numeric",
    "varchar",
    "char",
    "row",
    "extract",
    "substring",
    "trim",
    "replace",
    "format",
    "array_fill",
    "pi",
    "txid_current",
    "pg_current_xact_id",
];

/// Classifies a default expression by the functions it calls: built-in ones lockstep
/// knows, then functions whose `CREATE FUNCTION` the migration set holds (`catalog`; one
/// that declares no volatility is `VOLATILE`).
pub fn default_volatility(expr: &str, catalog: &Catalog) -> Volatility {
    let mut unknown = None;
    for f in called_functions(expr) {
        let declared = catalog.function_volatility(&f);
        if VOLATILE.contains(&f.as_str())
            || (declared == Some(FunctionVolatility::Volatile)
                && !STABLE_OR_IMMUTABLE.contains(&f.as_str()))
        {
            return Volatility::Volatile(f);
        }
        if !STABLE_OR_IMMUTABLE.contains(&f.as_str()) && declared.is_none() && unknown.is_none() {
            unknown = Some(f);
        }
    }
    unknown.map_or(Volatility::Safe, Volatility::Unknown)
}

/// Names (lower case, schema dropped) of functions called in an expression's text.
fn called_functions(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'"' => {
                let s = i;
                if c == b'"' {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < b.len()
                        && (b[i].is_ascii_alphanumeric()
                            || b[i] == b'_'
                            || b[i] == b'.'
                            || b[i] == b'$')
                    {
                        i += 1;
                    }
                }
                let word = &expr[s..i.min(expr.len())];
                let mut j = i;
                while j < b.len() && b[j] == b' ' {
                    j += 1;
                }
                // A cast target (`::type(…)`) is not a call.
                let is_cast = s >= 2 && &b[s - 2..s] == b"::";
                if b.get(j) == Some(&b'(') && !is_cast {
                    let name = word.rsplit('.').next().unwrap_or(word);
                    out.push(name.trim_matches('"').to_ascii_lowercase());
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether adding this column rewrites the table (and why), for the target version.
pub fn add_column_rewrites(
    col: &crate::sql::ir::ColumnDef,
    pg_version: u32,
    catalog: &Catalog,
) -> Option<String> {
    if col.is_serial() {
        return Some(format!(
            "a `{}` column fills every row from a sequence",
            col.data_type
        ));
    }
    if col.identity {
        return Some("an identity column fills every row from a sequence".into());
    }
    if col.generated == Some(Generated::Stored)
        || (col.generated == Some(Generated::Virtual) && pg_version < 18)
    {
        return Some("a stored generated column is computed for every row".into());
    }
    let default = col.default.as_deref()?;
    if default.trim().eq_ignore_ascii_case("null") {
        return None;
    }
    if pg_version < 11 {
        return Some("before PostgreSQL 11 any non-null default rewrites the table".into());
    }
    match default_volatility(default, catalog) {
        Volatility::Safe => None,
        Volatility::Volatile(f) => {
            Some(format!("`{f}()` is volatile: every row gets its own value"))
        }
        Volatility::Unknown(f) => Some(format!(
            "`{f}()` may be volatile: if it is, every row gets its own value"
        )),
    }
}
