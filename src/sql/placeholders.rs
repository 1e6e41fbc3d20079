//! Template placeholders in migration files: Flyway's `${name}`, templating engines'
//! `{{ … }}` and psql variables (`:name`, `:'name'`, `:"name"`).
//!
//! They are not SQL, so before parsing each one outside quotes and comments is replaced by
//! text of the same byte length that parses: an identifier made of the placeholder's
//! letters (`${schema}` → `__schema_`), a string literal for `:'name'` and a quoted
//! identifier for `:"name"`. Offsets, lines and columns stay those of the file.

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn identify(bytes: &mut [u8]) {
    for b in bytes {
        if !is_ident(*b) {
            *b = b'_';
        }
    }
}

/// End (exclusive) of the dollar-quote tag starting at `i` (`$tag$` or `$$`), if one starts.
fn dollar_tag(s: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_ident(s[i - 1]) {
        return None;
    }
    let mut j = i + 1;
    if j < s.len() && (s[j].is_ascii_alphabetic() || s[j] == b'_') {
        while j < s.len() && is_ident(s[j]) {
            j += 1;
        }
    }
    (j < s.len() && s[j] == b'$').then_some(j + 1)
}

fn find_on_line(s: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    let mut j = from;
    while j + pat.len() <= s.len() {
        if s[j] == b'\n' {
            return None;
        }
        if &s[j..j + pat.len()] == pat {
            return Some(j);
        }
        j += 1;
    }
    None
}

fn name_end(s: &[u8], from: usize) -> usize {
    let mut j = from;
    while j < s.len() && is_ident(s[j]) {
        j += 1;
    }
    j
}

/// The text with placeholders made parseable, or `None` when it holds none.
pub fn neutralize(src: &str) -> Option<String> {
    let s = src.as_bytes();
    if !s.iter().any(|&b| b == b'{' || b == b':') {
        return None;
    }
    let mut out = s.to_vec();
    let mut changed = false;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match b {
            b'-' if s.get(i + 1) == Some(&b'-') => {
                while i < s.len() && s[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < s.len() {
                    if s[i] == b'/' && s.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if s[i] == b'*' && s.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => {
                let escapes = i > 0 && matches!(s[i - 1], b'e' | b'E');
                i += 1;
                while i < s.len() {
                    if escapes && s[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if s[i] == b'\'' {
                        if s.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'"' => {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    i += 1;
                }
                i += 1;
            }
            b'$' if s.get(i + 1) == Some(&b'{') => match find_on_line(s, i + 2, b"}") {
                Some(close) => {
                    identify(&mut out[i..=close]);
                    changed = true;
                    i = close + 1;
                }
                None => i += 1,
            },
            b'$' => match dollar_tag(s, i) {
                Some(tag_end) => {
                    let tag = &s[i..tag_end];
                    i = memchr::memmem::find(&s[tag_end..], tag)
                        .map_or(s.len(), |at| tag_end + at + tag.len());
                }
                None => i += 1,
            },
            b'{' if s.get(i + 1) == Some(&b'{') => match find_on_line(s, i + 2, b"}}") {
                Some(close) => {
                    identify(&mut out[i..close + 2]);
                    changed = true;
                    i = close + 2;
                }
                None => i += 1,
            },
            b':' => {
                let prev_ok =
                    i == 0 || !(is_ident(s[i - 1]) || matches!(s[i - 1], b':' | b']' | b')'));
                let next = s.get(i + 1).copied();
                match next {
                    Some(q @ (b'\'' | b'"')) if prev_ok => {
                        let end = name_end(s, i + 2);
                        if end > i + 2 && s.get(end) == Some(&q) {
                            // `:'name'` → `'_name'`, `:"name"` → `"_name"`
                            out[i] = q;
                            out[i + 1] = b'_';
                            changed = true;
                            i = end + 1;
                        } else {
                            i += 1;
                        }
                    }
                    Some(c) if prev_ok && (c.is_ascii_alphabetic() || c == b'_') => {
                        // `:name` → `_name`
                        out[i] = b'_';
                        changed = true;
                        i = name_end(s, i + 1);
                    }
                    _ => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    // Only ASCII bytes replaced ASCII bytes, or whole placeholders (which may hold
    // multi-byte characters) became ASCII: the result is valid UTF-8.
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::neutralize;

    fn n(s: &str) -> String {
        neutralize(s).unwrap_or_else(|| s.to_string())
    }

    #[test]
    fn replaces_placeholders_with_same_length_sql() {
        assert_eq!(
            n("CREATE TABLE ${schema}.t (a int);"),
            "CREATE TABLE __schema_.t (a int);"
        );
        assert_eq!(
            n("ALTER TABLE {{ .Table }} ADD c int;"),
            "ALTER TABLE ____Table___ ADD c int;"
        );
        assert_eq!(
            n("GRANT SELECT ON t TO :role;"),
            "GRANT SELECT ON t TO _role;"
        );
        assert_eq!(n("SET search_path = :'s';"), "SET search_path = '_s';");
        assert_eq!(n("CREATE SCHEMA :\"s\";"), "CREATE SCHEMA \"_s\";");
        assert_eq!(
            n("SELECT ${flyway:defaultSchema};"),
            "SELECT __flyway_defaultSchema_;"
        );
    }

    #[test]
    fn leaves_sql_alone() {
        for s in [
            "SELECT a::int, b[1:2], c[lo:hi] FROM t;",
            "SELECT ':x', '${y}', \"{{z}}\" -- :w ${v}\n;",
            "CREATE FUNCTION f() RETURNS int AS $$ BEGIN x := 1; RETURN ${a}; END $$ LANGUAGE plpgsql;",
            "SELECT E'it\\'s :x';",
            "/* {{ a }} /* :b */ */ SELECT 1;",
            "SELECT $1, $2::text;",
        ] {
            assert_eq!(neutralize(s), None, "{s}");
        }
    }

    #[test]
    fn dollar_quoted_bodies_end_at_their_own_tag() {
        // `$$` inside `$f$ … $f$` does not end it; after the tag, placeholders count again.
        assert_eq!(
            n("SELECT $f$ $$ :a $f$, :b, $$ {{c}} $$;"),
            "SELECT $f$ $$ :a $f$, _b, $$ {{c}} $$;"
        );
        // A body left open runs to the end of the file.
        assert_eq!(neutralize("SELECT $f$ :a ${b} $$ :c"), None);
    }

    #[test]
    fn keeps_length_and_utf8() {
        let s = "SELECT {{ é }}, 'ü';\n";
        let out = n(s);
        assert_eq!(out.len(), s.len());
        assert!(out.ends_with(", 'ü';\n"));
    }
}
