//! Statement splitter: each quoting form, exact spans and lines.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use lockstep::sql::{split, LineIndex};

/// The statements' texts.
fn texts(src: &str) -> Vec<&str> {
    split(src)
        .statements
        .iter()
        .map(|s| &src[s.span.clone()])
        .collect()
}

#[test]
fn plain_statements_with_exact_spans() {
    let src = "SELECT 1;\n  SELECT 2 ;\nSELECT 3";
    let s = split(src);
    assert_eq!(s.statements.len(), 3);
    assert_eq!(s.statements[0].span, 0..9);
    assert_eq!(&src[s.statements[1].span.clone()], "SELECT 2 ;");
    assert_eq!(s.statements[1].span.start, 12);
    assert_eq!(&src[s.statements[2].span.clone()], "SELECT 3");
    let idx = LineIndex::new(src);
    assert_eq!(idx.line_col(src, s.statements[1].span.start), (2, 3));
    assert_eq!(idx.line_col(src, s.statements[2].span.start), (3, 1));
}

#[test]
fn semicolons_inside_single_quotes_and_doubled_quotes() {
    let src = "INSERT INTO t VALUES ('a;b', 'it''s; fine');SELECT 2;";
    assert_eq!(
        texts(src),
        ["INSERT INTO t VALUES ('a;b', 'it''s; fine');", "SELECT 2;"]
    );
}

#[test]
fn escape_strings_with_backslashes() {
    let src = "SELECT E'a\\';b';SELECT e'\\\\';SELECT 3;";
    assert_eq!(
        texts(src),
        ["SELECT E'a\\';b';", "SELECT e'\\\\';", "SELECT 3;"]
    );
    // A plain string ending in a backslash is not an escape string.
    let src = "SELECT 'a\\';SELECT 2;";
    assert_eq!(texts(src), ["SELECT 'a\\';", "SELECT 2;"]);
    // An identifier ending in E before a quote is not an E'' prefix.
    let src = "SELECT name'x\\';SELECT 2;";
    assert_eq!(texts(src).len(), 2);
}

#[test]
fn double_quoted_identifiers() {
    let src = "CREATE TABLE \"a;b\"\"c\" (id int);SELECT 1;";
    assert_eq!(
        texts(src),
        ["CREATE TABLE \"a;b\"\"c\" (id int);", "SELECT 1;"]
    );
}

#[test]
fn dollar_quotes_with_and_without_tags() {
    let src = "DO $$ BEGIN PERFORM 1; END $$;\nCREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $x$ ; $body$ LANGUAGE sql;\nSELECT $1;";
    let t = texts(src);
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(t[1].ends_with("LANGUAGE sql;"));
    assert_eq!(t[2], "SELECT $1;");
    // `$` inside an identifier is not a dollar quote.
    assert_eq!(texts("SELECT a$b$ FROM t; SELECT 2;").len(), 2);
}

#[test]
fn nested_block_comments_and_line_comments() {
    let src = "/* outer /* inner ; */ still ; */ SELECT 1; -- trailing ; comment\nSELECT 2;";
    let s = split(src);
    assert_eq!(s.statements.len(), 2);
    assert_eq!(&src[s.statements[0].span.clone()], "SELECT 1;");
    assert_eq!(s.comments.len(), 2);
    assert_eq!(&src[s.comments[1].span.clone()], "-- trailing ; comment");
}

#[test]
fn begin_atomic_bodies() {
    let src = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN true THEN 1 END;\n  SELECT 2;\nEND;\nSELECT 3;";
    let t = texts(src);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t[0].ends_with("END;"));
    // BEGIN as a transaction statement is unaffected.
    assert_eq!(texts("BEGIN; SELECT 1; COMMIT;").len(), 3);
}

#[test]
fn psql_meta_commands_are_not_statements() {
    let src = "\\set ON_ERROR_STOP on\nSELECT 1;\n\\i other.sql\nSELECT 2;";
    let s = split(src);
    assert_eq!(s.statements.len(), 2);
    assert_eq!(s.meta_lines.len(), 2);
    assert_eq!(&src[s.meta_lines[0].clone()], "\\set ON_ERROR_STOP on");
}

#[test]
fn copy_from_stdin_data_is_skipped() {
    let src = "COPY t (a, b) FROM stdin;\n1\tx;y\n2\t'unbalanced\n\\.\nSELECT 1;";
    let s = split(src);
    assert_eq!(s.statements.len(), 2, "{:?}", s.statements);
    assert_eq!(&src[s.statements[1].span.clone()], "SELECT 1;");
    assert_eq!(&src[s.copy_data[0].clone()], "1\tx;y\n2\t'unbalanced\n");
}

#[test]
fn unterminated_constructs_are_reported_on_the_last_statement() {
    for (src, what, opener) in [
        ("SELECT 1; SELECT 'abc", "string", "'"),
        ("SELECT 1; DO $$ BEGIN", "dollar-quoted string `$$`", "$$"),
        ("SELECT 1; SELECT \"abc", "quoted identifier", "\""),
        ("SELECT 1; /* never closed", "block comment", "/*"),
    ] {
        let s = split(src);
        assert_eq!(s.statements.len(), 2, "{src}");
        assert!(s.statements[0].unterminated.is_none());
        let u = s.statements[1].unterminated.as_ref().expect(src);
        assert_eq!(u.what, what);
        assert_eq!(u.at, src.find(opener).unwrap(), "{src}");
    }
}

#[test]
fn line_index_counts_characters_not_bytes() {
    let src = "-- héllo\nSELECT 'é'; SELECT 2;";
    let s = split(src);
    let idx = LineIndex::new(src);
    assert_eq!(idx.line_col(src, s.statements[1].span.start), (2, 13));
    assert_eq!(idx.line_count(), 2);
}

#[test]
fn crlf_line_endings() {
    let src = "SELECT 1;\r\nSELECT 2;\r\n";
    let s = split(src);
    assert_eq!(s.statements.len(), 2);
    let idx = LineIndex::new(src);
    assert_eq!(idx.line_col(src, s.statements[1].span.start), (2, 1));
    assert_eq!(&src[idx.line_range(src, 1)], "SELECT 1;");
}

#[test]
fn columns_count_characters_on_long_lines_of_any_text() {
    // Lines of megabytes, with multi-byte characters, and short ones.
    let mut src = String::new();
    for i in 0..3 {
        src.push_str(&"aé€𝄞 ;".repeat(3000 + i * 777));
        src.push('\n');
        src.push_str("short line\n");
    }
    let index = LineIndex::new(&src);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut at = (seed % src.len() as u64) as usize;
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        let line = 1 + src[..at].matches('\n').count();
        let start = src[..at].rfind('\n').map_or(0, |i| i + 1);
        let col = 1 + src[start..at].chars().count();
        assert_eq!(index.line_col(&src, at), (line, col), "offset {at}");
    }
}
