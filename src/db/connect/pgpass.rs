//! The password file (`~/.pgpass`), libpq's `passwordFromFile`.

use std::path::Path;

pub(super) enum PgPass {
    Found(String),
    NoMatch,
    /// Not used; the warning says why.
    Ignored(String),
}

/// Looks up the password file (libpq's `passwordFromFile`). A missing or unreadable file is
/// no match; one with group or world permissions is ignored with a warning.
pub(super) fn lookup_pgpass(
    file: &Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> PgPass {
    let Ok(meta) = std::fs::metadata(file) else {
        return PgPass::NoMatch;
    };
    if !meta.is_file() {
        return PgPass::Ignored(format!(
            "password file {} is not a plain file; ignoring it",
            file.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return PgPass::Ignored(format!(
                "password file {} has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                file.display()
            ));
        }
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return PgPass::NoMatch;
    };
    match pgpass_find(&text, host, &port.to_string(), dbname, user) {
        Some(p) => PgPass::Found(p),
        None => PgPass::NoMatch,
    }
}

/// The password of the first line matching `host:port:dbname:user`.
fn pgpass_find(text: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    'lines: for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut rest = line;
        for want in [host, port, dbname, user] {
            match pgpass_field(rest, want) {
                Some(after) => rest = after,
                None => continue 'lines,
            }
        }
        // The password runs to the next unescaped `:` or the end of the line.
        let mut password = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                ':' => break,
                '\\' => match chars.next() {
                    Some(e) => password.push(e),
                    None => password.push('\\'),
                },
                c => password.push(c),
            }
        }
        return Some(password);
    }
    None
}

/// If the field at the start of `line` matches `want` (`*` matches anything), the rest of
/// the line after its `:`.
fn pgpass_field<'a>(line: &'a str, want: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut field = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => field.push(chars.next()?.1),
            ':' => return (field == want).then(|| &line[i + 1..]),
            c => field.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_matching() {
        let text = "# comment\n\
                    db\\:1:*:*:bob:colon\\:pw\n\
                    *:5432:app:*:first\n\
                    *:5432:app:*:second\n\
                    localhost:*:*:*:local\\\\pw\n";
        assert_eq!(
            pgpass_find(text, "db:1", "5432", "x", "bob").as_deref(),
            Some("colon:pw")
        );
        assert_eq!(
            pgpass_find(text, "h", "5432", "app", "u").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_find(text, "localhost", "1", "x", "u").as_deref(),
            Some("local\\pw")
        );
        assert_eq!(pgpass_find(text, "other", "1", "x", "u"), None);
        // `*` is a wildcard only as a whole field.
        assert_eq!(pgpass_find("a*:*:*:*:pw", "ab", "1", "d", "u"), None);
    }
}
