//! Column type changes: which `ALTER COLUMN … TYPE` changes PostgreSQL applies in the catalog
//! only (binary-coercible, no rewrite) and which rewrite the table and all its indexes.
//!
//! PostgreSQL skips the rewrite when the conversion is a no-op relabeling: the same type with
//! a typmod its support function proves wider (`varchar`, `numeric`, `varbit`, the temporal
//! types), a binary-coercible cast (`varchar` → `text`, `cidr` → `inet`, `bit` → `varbit`), or
//! (PostgreSQL 12+) `timestamp` ↔ `timestamptz` when the session time zone is UTC (the
//! `timezone` setting says so; unknown, it "may rewrite"). Everything else, and anything
//! with `USING`, rewrites.
//!
//! The classification of every pair in the tests below was checked on PostgreSQL 15 by
//! comparing the table's `relfilenode` before and after the `ALTER`.

use super::catalog::Catalog;
use crate::sql::ir::ObjName;

/// What changing a column's type does to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeChange {
    /// Binary-coercible: a catalog change, no rewrite and no scan.
    NoRewrite,
    /// The table and all its indexes are rewritten; the reason, for messages.
    Rewrite(String),
    /// lockstep cannot tell (the old type is unknown, or a type it does not model); the
    /// reason, for messages.
    MayRewrite(String),
}

impl TypeChange {
    /// Rewrites, or may rewrite.
    pub fn may_rewrite(&self) -> bool {
        !matches!(self, TypeChange::NoRewrite)
    }
}

/// Classifies changing a column from `old` (None: not known from the migration set) to
/// `new`, both as written in SQL (`character varying(20)`, `numeric(10,2)`, `int4[]`), with
/// the session `timezone` when known.
pub fn classify(
    old: Option<&str>,
    new: &str,
    using: bool,
    pg_version: u32,
    timezone: Option<&str>,
) -> TypeChange {
    if using {
        return TypeChange::Rewrite("a `USING` expression always rewrites the table".into());
    }
    let Some(old) = old else {
        return TypeChange::MayRewrite("lockstep does not know the column's current type".into());
    };
    let (o, n) = (Ty::parse(old), Ty::parse(new));
    if o == n {
        return TypeChange::NoRewrite;
    }
    if !o.known || !n.known {
        let which = if o.known { new } else { old };
        return TypeChange::MayRewrite(format!(
            "lockstep does not know whether `{}` converts to `{}` without a rewrite (`{which}` is not a built-in type it models)",
            old.trim(),
            new.trim()
        ));
    }
    if o.array != n.array {
        return TypeChange::Rewrite(format!(
            "converting between `{}` and `{}` changes every value",
            old.trim(),
            new.trim()
        ));
    }
    if o.array {
        return TypeChange::Rewrite(
            "changing an array's element type or length converts every element".into(),
        );
    }
    scalar(&o, &n, old.trim(), new.trim(), pg_version, timezone)
}

/// Whether a `TimeZone` setting is UTC in PostgreSQL's sense for this conversion: a zone
/// whose offset is always zero.
pub fn is_utc(zone: &str) -> bool {
    let z = zone.trim().trim_matches('\'').to_ascii_lowercase();
    let z = z.strip_prefix("etc/").unwrap_or(&z);
    matches!(
        z,
        "utc"
            | "uct"
            | "gmt"
            | "gmt0"
            | "gmt+0"
            | "gmt-0"
            | "greenwich"
            | "universal"
            | "zulu"
            | "z"
            | "+00"
            | "-00"
            | "+00:00"
            | "-00:00"
            | "0"
            | "00:00"
    )
}

fn scalar(
    o: &Ty,
    n: &Ty,
    old: &str,
    new: &str,
    pg_version: u32,
    timezone: Option<&str>,
) -> TypeChange {
    let rewrite = |why: &str| TypeChange::Rewrite(why.to_string());
    match (o.base.as_str(), n.base.as_str()) {
        ("varchar", "varchar") | ("varbit", "varbit") => {
            let what = if o.base == "varchar" {
                "length"
            } else {
                "bit length"
            };
            match (o.len(), n.len()) {
                (_, None) => TypeChange::NoRewrite,
                (Some(a), Some(b)) if b >= a => TypeChange::NoRewrite,
                (Some(_), Some(_)) => rewrite(&format!(
                    "shrinking the maximum {what} from `{old}` to `{new}` checks and rewrites every row"
                )),
                (None, Some(_)) => rewrite(&format!(
                    "adding a maximum {what} (`{old}` to `{new}`) checks and rewrites every row"
                )),
            }
        }
        ("varchar", "text") | ("cidr", "inet") if n.mods.is_empty() => TypeChange::NoRewrite,
        ("text", "varchar") | ("bit", "varbit") if n.mods.is_empty() => TypeChange::NoRewrite,
        ("text", "varchar") => rewrite(&format!(
            "`{old}` to `{new}` adds a length limit: every row is checked and rewritten"
        )),
        ("numeric", "numeric") => match (o.numeric(), n.numeric()) {
            (_, Some(None)) => TypeChange::NoRewrite,
            (Some(Some((p1, s1))), Some(Some((p2, s2)))) if s1 == s2 && p2 >= p1 => {
                TypeChange::NoRewrite
            }
            (Some(Some((_, s1))), Some(Some((_, s2)))) if s1 != s2 => rewrite(&format!(
                "changing the numeric scale (`{old}` to `{new}`) rewrites every value"
            )),
            (Some(Some(_)), Some(Some(_))) => rewrite(&format!(
                "reducing the numeric precision (`{old}` to `{new}`) checks and rewrites every row"
            )),
            (Some(None), Some(Some(_))) => rewrite(&format!(
                "constraining an unconstrained `numeric` to `{new}` rounds and rewrites every value"
            )),
            _ => TypeChange::MayRewrite(format!(
                "lockstep cannot read the numeric precision of `{old}` or `{new}`"
            )),
        },
        ("timestamp" | "timestamptz" | "time" | "timetz", _) if o.base == n.base => {
            temporal_precision(o, n, old, new)
        }
        ("interval", "interval") => {
            if o.fields != n.fields && !(n.fields.is_none() && n.mods.is_empty()) {
                return TypeChange::MayRewrite(format!(
                    "lockstep does not model interval field changes (`{old}` to `{new}`)"
                ));
            }
            temporal_precision(o, n, old, new)
        }
        ("timestamp", "timestamptz") | ("timestamptz", "timestamp") => {
            if pg_version < 12 {
                rewrite(&format!(
                    "before PostgreSQL 12, `{old}` to `{new}` always rewrites every row"
                ))
            } else {
                match timezone {
                    Some(z) if is_utc(z) => temporal_precision(o, n, old, new),
                    Some(z) => rewrite(&format!(
                        "`{old}` to `{new}` rewrites every row: the session `TimeZone` is `{z}`, not UTC"
                    )),
                    None => TypeChange::MayRewrite(format!(
                        "`{old}` to `{new}` may rewrite every row unless the session `TimeZone` is UTC (say so with `timezone = \"UTC\"` in lockstep.toml or `--timezone UTC`)"
                    )),
                }
            }
        }
        (a, b) if a == b => {
            // `char` and `bit` without a modifier were read as `(1)`: empty mods here mean
            // an unconstrained type (`bpchar`), to which any length converts as is.
            if n.mods.is_empty() {
                TypeChange::NoRewrite
            } else {
                rewrite(&format!(
                    "changing the type modifier (`{old}` to `{new}`) converts every value"
                ))
            }
        }
        _ => rewrite(&format!(
            "`{old}` to `{new}` is not binary-coercible: every value is converted"
        )),
    }
}

/// Precision changes of `timestamp`, `timestamptz`, `time`, `timetz`, `interval`: no rewrite
/// when the new precision is unconstrained, at least 6 (the maximum), or not lower.
fn temporal_precision(o: &Ty, n: &Ty, old: &str, new: &str) -> TypeChange {
    const MAX_PRECISION: u32 = 6;
    match (o.len(), n.len()) {
        (_, None) => TypeChange::NoRewrite,
        (_, Some(b)) if b >= MAX_PRECISION => TypeChange::NoRewrite,
        (Some(a), Some(b)) if b >= a => TypeChange::NoRewrite,
        _ => TypeChange::Rewrite(format!(
            "reducing the fractional-second precision (`{old}` to `{new}`) rounds and rewrites every value"
        )),
    }
}

/// A type, canonicalized: `character varying(20)` → base `varchar`, mods `["20"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ty {
    base: String,
    mods: Vec<String>,
    /// Interval fields (`day to second`).
    fields: Option<String>,
    array: bool,
    /// A built-in type lockstep models.
    known: bool,
}

const KNOWN: &[&str] = &[
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "money",
    "varchar",
    "bpchar",
    "text",
    "\"char\"",
    "name",
    "bytea",
    "bool",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "json",
    "jsonb",
    "xml",
    "inet",
    "cidr",
    "macaddr",
    "macaddr8",
    "bit",
    "varbit",
    "tsvector",
    "tsquery",
    "point",
    "line",
    "lseg",
    "box",
    "path",
    "polygon",
    "circle",
    "oid",
    "int4range",
    "int8range",
    "numrange",
    "tsrange",
    "tstzrange",
    "daterange",
];

impl Ty {
    fn parse(t: &str) -> Ty {
        let mut s = t.trim().to_string();
        let mut array = false;
        loop {
            let trimmed = s.trim_end();
            if let Some(rest) = trimmed.strip_suffix(']') {
                if let Some(i) = rest.rfind('[') {
                    s = rest[..i].to_string();
                    array = true;
                    continue;
                }
            }
            let lower = trimmed.to_ascii_lowercase();
            if lower.ends_with(" array") {
                s = trimmed[..trimmed.len() - " array".len()].to_string();
                array = true;
                continue;
            }
            s = trimmed.to_string();
            break;
        }
        // Modifiers: the first parenthesized group, wherever it is (`timestamp(3) with time
        // zone`, `interval day to second(3)`).
        let mut mods = Vec::new();
        let mut words = s.clone();
        if let Some(open) = s.find('(') {
            if let Some(close) = s[open..].find(')').map(|c| open + c) {
                mods = s[open + 1..close]
                    .split(',')
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty())
                    .collect();
                words = format!("{} {}", &s[..open], &s[close + 1..]);
            }
        }
        let words: Vec<String> = words.split_whitespace().map(str::to_string).collect();
        let mut joined = words.join(" ");
        // `"char"` is the internal one-byte type; other quoted names mean the same type as
        // unquoted ones when they are lower case.
        let quoted_char = joined == "\"char\"";
        if !quoted_char {
            joined = joined.replace('"', "");
        }
        let name = joined
            .strip_prefix("pg_catalog.")
            .unwrap_or(&joined)
            .to_string();
        let (base, fields) = canonical(&name, &mods);
        let base = if quoted_char { "\"char\"".into() } else { base };
        let mods = match base.as_str() {
            // `float(p)` picks float4/float8 by precision; the modifier is gone.
            "float4" | "float8" => Vec::new(),
            "numeric" if mods.len() == 1 => vec![mods[0].clone(), "0".into()],
            "bpchar" | "bit" if mods.is_empty() && !matches!(name.as_str(), "bpchar") => {
                vec!["1".into()]
            }
            _ => mods,
        };
        let known = KNOWN.contains(&base.as_str());
        Ty {
            base,
            mods,
            fields,
            array,
            known,
        }
    }

    /// The single integer modifier (length or precision).
    fn len(&self) -> Option<u32> {
        self.mods.first().and_then(|m| m.parse().ok())
    }

    /// `Some(None)`: unconstrained; `Some(Some((p, s)))`; `None`: unreadable.
    fn numeric(&self) -> Option<Option<(u32, i32)>> {
        match self.mods.as_slice() {
            [] => Some(None),
            [p, s] => Some(Some((p.parse().ok()?, s.parse().ok()?))),
            _ => None,
        }
    }
}

/// Canonical base name (as `pg_type.typname`) and interval fields.
fn canonical(name: &str, mods: &[String]) -> (String, Option<String>) {
    let base = match name {
        "smallint" | "int2" | "smallserial" | "serial2" => "int2",
        "integer" | "int" | "int4" | "serial" | "serial4" => "int4",
        "bigint" | "int8" | "bigserial" | "serial8" => "int8",
        "real" | "float4" => "float4",
        "double precision" | "float8" => "float8",
        "float" => {
            let p: u32 = mods.first().and_then(|m| m.parse().ok()).unwrap_or(53);
            if p <= 24 {
                "float4"
            } else {
                "float8"
            }
        }
        "numeric" | "decimal" | "dec" => "numeric",
        "varchar"
        | "character varying"
        | "char varying"
        | "national character varying"
        | "national char varying"
        | "nchar varying" => "varchar",
        "char" | "character" | "bpchar" | "nchar" | "national character" | "national char" => {
            "bpchar"
        }
        "text" => "text",
        "boolean" | "bool" => "bool",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time" | "time without time zone" => "time",
        "timetz" | "time with time zone" => "timetz",
        "bit varying" | "varbit" => "varbit",
        _ => {
            if let Some(fields) = name.strip_prefix("interval ") {
                return ("interval".into(), Some(fields.to_string()));
            }
            return (name.to_string(), None);
        }
    };
    (base.to_string(), None)
}

/// Whether a conversion without a rewrite still rebuilds the column's indexes: the new type
/// indexes with another operator class (`timestamp` → `timestamptz`, `bit` → `varbit`),
/// unlike `varchar` ↔ `text` and `cidr` → `inet`, which share theirs. Measured on
/// PostgreSQL 15 by the scan counter of a table with and without an index on the column.
pub fn rebuilds_indexes(old: &str, new: &str) -> bool {
    let (o, n) = (Ty::parse(old), Ty::parse(new));
    fn family(b: &str) -> &str {
        match b {
            "varchar" | "text" | "bpchar" => "text",
            "cidr" | "inet" => "inet",
            other => other,
        }
    }
    o.array != n.array || family(&o.base) != family(&n.base)
}

/// Other tables whose foreign keys reference `table.column`: changing the column's type
/// rebuilds those foreign keys, which takes ACCESS EXCLUSIVE on each referencing table.
/// A foreign key without a column list references the primary key.
pub fn referencing_tables(catalog: &Catalog, table: &ObjName, column: &str) -> Vec<ObjName> {
    let mut out: Vec<ObjName> = Vec::new();
    let Some(parent) = catalog.table(table) else {
        return out;
    };
    for (t, fk) in catalog.referencing(table) {
        if t.name == table.name {
            continue;
        }
        let hit = parent.referenced_columns(fk).iter().any(|c| c == column);
        if hit && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no(old: &str, new: &str) {
        assert_eq!(
            classify(Some(old), new, false, 15, None),
            TypeChange::NoRewrite,
            "{old} -> {new} should not rewrite"
        );
    }

    fn yes(old: &str, new: &str) {
        let got = classify(Some(old), new, false, 15, None);
        assert!(
            matches!(got, TypeChange::Rewrite(_)),
            "{old} -> {new} should rewrite, got {got:?}"
        );
    }

    fn maybe(old: &str, new: &str) {
        let got = classify(Some(old), new, false, 15, None);
        assert!(
            matches!(got, TypeChange::MayRewrite(_)),
            "{old} -> {new} should be \"may rewrite\", got {got:?}"
        );
    }

    // The binary-coercible list of RULES.md, row by row.

    #[test]
    fn varchar_widening_is_binary_coercible() {
        no("varchar(100)", "varchar(200)");
        no("varchar(100)", "varchar(100)");
        no("character varying(20)", "varchar(255)");
        no("varchar(20)", "character varying(20)");
        no("pg_catalog.varchar(4)", "varchar(5)");
    }

    #[test]
    fn varchar_to_unconstrained_varchar_or_text() {
        no("varchar(100)", "varchar");
        no("varchar(100)", "text");
        no("character varying", "text");
        no("varchar", "character varying");
    }

    #[test]
    fn text_to_unconstrained_varchar() {
        no("text", "varchar");
        no("text", "character varying");
        no("text", "text");
    }

    #[test]
    fn numeric_precision_increase_with_same_scale() {
        no("numeric(10,2)", "numeric(12,2)");
        no("numeric(10, 2)", "decimal(12,2)");
        no("numeric(10)", "numeric(12,0)");
        no("numeric(10,2)", "numeric(10,2)");
    }

    #[test]
    fn numeric_to_unconstrained_numeric() {
        no("numeric(10,2)", "numeric");
        no("numeric", "numeric");
    }

    #[test]
    fn cidr_to_inet() {
        no("cidr", "inet");
        yes("inet", "cidr");
    }

    #[test]
    fn timestamp_to_timestamptz_depends_on_the_session_time_zone() {
        // 12+: no rewrite only when TimeZone is UTC, which a linter cannot know.
        maybe("timestamp", "timestamptz");
        maybe("timestamp without time zone", "timestamp with time zone");
        maybe("timestamptz", "timestamp");
        for v in [9, 10, 11] {
            assert!(matches!(
                classify(Some("timestamp"), "timestamptz", false, v, None),
                TypeChange::Rewrite(_)
            ));
        }
    }

    #[test]
    fn temporal_precision_increases() {
        no("timestamp(3)", "timestamp(6)");
        no("timestamp(0)", "timestamp");
        no("timestamp(3) without time zone", "timestamp(4)");
        no("timestamp(3) with time zone", "timestamptz(6)");
        no("timestamptz(2)", "timestamp(3) with time zone");
        no("time(0)", "time(3)");
        no("time(3)", "time");
        no("timetz(1)", "time(2) with time zone");
        no("interval(2)", "interval(4)");
        no("interval(2)", "interval");
        // 6 is the maximum precision: asking for it is a no-op even from unconstrained.
        no("timestamp", "timestamp(6)");
        no("timestamp", "timestamp");
        no("\"timestamp\"", "timestamp");
        no("interval day to second(3)", "interval");
    }

    #[test]
    fn varbit_widening() {
        no("varbit(8)", "varbit(16)");
        no("bit varying(8)", "varbit");
        no("bit(8)", "varbit");
        yes("varbit(16)", "varbit(8)");
        yes("varbit", "bit varying(8)");
    }

    #[test]
    fn type_aliases_are_the_same_type() {
        no("integer", "int4");
        no("int", "integer");
        no("int8", "bigint");
        no("bigserial", "bigint");
        no("serial", "int");
        no("smallint", "int2");
        no("double precision", "float8");
        no("float", "double precision");
        no("real", "float(10)");
        no("boolean", "bool");
        no("int[]", "integer[]");
        no("json", "json");
    }

    // The rewrite list of RULES.md.

    #[test]
    fn shrinking_a_length_rewrites() {
        yes("varchar(100)", "varchar(50)");
        yes("varchar", "varchar(50)");
    }

    #[test]
    fn text_to_bounded_varchar_rewrites() {
        yes("text", "varchar(300)");
        yes("text", "character varying(10)");
    }

    #[test]
    fn changing_numeric_scale_rewrites() {
        yes("numeric(10,2)", "numeric(12,3)");
        yes("numeric(10,2)", "numeric(10,0)");
        yes("numeric(10,2)", "numeric(8,2)");
        yes("numeric", "numeric(10,2)");
    }

    #[test]
    fn int_to_bigint_rewrites() {
        yes("int", "bigint");
        yes("integer", "int8");
        yes("serial", "bigint");
        yes("bigint", "int");
        yes("smallint", "integer");
    }

    #[test]
    fn using_always_rewrites() {
        for (old, new) in [("varchar(10)", "varchar(20)"), ("text", "text")] {
            assert!(matches!(
                classify(Some(old), new, true, 15, None),
                TypeChange::Rewrite(_)
            ));
        }
        assert!(matches!(
            classify(None, "text", true, 15, None),
            TypeChange::Rewrite(_)
        ));
    }

    #[test]
    fn other_rewrites() {
        yes("timestamp(6)", "timestamp(3)");
        yes("time", "time(2)");
        yes("char(10)", "char(20)");
        yes("char(10)", "char");
        no("char(5)", "bpchar");
        no("char", "character(1)");
        yes("char(10)", "text");
        yes("character", "varchar");
        yes("varchar(10)", "char(10)");
        yes("text", "jsonb");
        yes("json", "jsonb");
        yes("int", "text");
        yes("uuid", "text");
        yes("varchar(10)[]", "varchar(20)[]");
        yes("text", "text[]");
        yes("bit(8)", "bit(16)");
        yes("float4", "float8");
        yes("date", "timestamp");
    }

    #[test]
    fn unknown_types_may_rewrite() {
        assert!(matches!(
            classify(None, "bigint", false, 15, None),
            TypeChange::MayRewrite(_)
        ));
        maybe("text", "citext");
        maybe("order_status", "text");
        maybe("\"Status\"", "text");
        maybe("public.email", "text");
        maybe("interval day", "interval hour");
        no("order_status", "order_status");
    }

    #[test]
    fn referencing_tables_follow_explicit_and_primary_key_references() {
        let src = "CREATE TABLE customers (id int PRIMARY KEY, code text UNIQUE, note text);\n\
                   CREATE TABLE orders (id int, customer_id int REFERENCES customers);\n\
                   CREATE TABLE invoices (customer_code text REFERENCES customers (code));\n\
                   CREATE TABLE customers_self (id int PRIMARY KEY, parent int REFERENCES customers_self (id));\n";
        let opts = crate::lint::LintOptions::default();
        let (_, catalog) =
            crate::lint::check(src, crate::lint::prepare(src), &opts, Catalog::default());
        let names = |t: &str, c: &str| -> Vec<String> {
            referencing_tables(&catalog, &ObjName::new(t), c)
                .into_iter()
                .map(|n| n.name)
                .collect()
        };
        assert_eq!(names("customers", "id"), ["orders"]);
        assert_eq!(names("customers", "code"), ["invoices"]);
        assert!(names("customers", "note").is_empty());
        // A self-reference is the same table: no extra lock.
        assert!(names("customers_self", "id").is_empty());
    }

    #[test]
    fn internal_char_is_not_bpchar() {
        yes("\"char\"", "char");
        no("\"char\"", "\"char\"");
    }
}
