//! Names and literals in generated SQL: identifiers cut to PostgreSQL's limit, and string
//! literals. Every identifier lockstep generates is quoted with [`quote_ident`].

pub use crate::sql::ir::quote_ident;

/// PostgreSQL's identifier limit.
const NAMEDATALEN: usize = 63;

/// `name` cut to fit PostgreSQL's 63 bytes, with a short hash when cut so names stay unique.
pub fn fit(name: &str) -> String {
    if name.len() <= NAMEDATALEN {
        return name.to_string();
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let mut cut = NAMEDATALEN - 9;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{h:08x}", &name[..cut])
}

/// A SQL string literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `a, b` with every name quoted.
pub fn list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| quote_ident(n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_fit() {
        let long = "x".repeat(80);
        let a = fit(&format!("{long}_a"));
        let b = fit(&format!("{long}_b"));
        assert!(a.len() <= 63 && b.len() <= 63 && a != b);
        assert_eq!(fit("short"), "short");
    }

    #[test]
    fn literals_and_lists_are_quoted() {
        assert_eq!(lit("it's"), "'it''s'");
        assert_eq!(list(&["a", "B c", "select"]), "a, \"B c\", \"select\"");
    }
}
