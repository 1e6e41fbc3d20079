//! lockstep's tokenizer against sqlparser's on the corpus of real histories: for every
//! statement of every file, every statement of the bodies and string literals in them, and
//! every piece of a PL/pgSQL body that is read on its own, the same tokens with the same
//! locations (what the parser is fed) and the same significant tokens with the same byte
//! spans (what the recognizer and the rules read), unless it leaves the text to sqlparser.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};

use lockstep::sql::lexer;
use lockstep::sql::plpgsql::{read, string_content, Lang};
use lockstep::sql::split;
use lockstep::sql::tokens::{reference, tokenize};
use sqlparser::tokenizer::{Span, Token, TokenWithSpan};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.join("SOURCES.tsv").is_file().then_some(dir)
}

fn sql_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sql_files(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".sql") || n.ends_with(".sql.postgres"))
        {
            out.push(p);
        }
    }
}

fn located(t: &[TokenWithSpan]) -> Vec<(Token, Span)> {
    t.iter().map(|r| (r.token.clone(), r.span)).collect()
}

#[derive(Default)]
struct Tally {
    texts: usize,
    unsure: usize,
    mismatches: Vec<String>,
}

impl Tally {
    /// Compares the two tokenizers on `text`.
    fn check(&mut self, what: &str, text: &str) {
        self.texts += 1;
        let base = 1000;
        let expected = reference(text, base);
        let fast = lexer::tokens(text);
        match (&fast, &expected) {
            (None, _) => self.unsure += 1,
            (Some(ours), Ok((theirs, _))) => {
                let (ours, theirs) = (located(ours), located(theirs));
                if ours != theirs {
                    let at = ours.iter().zip(&theirs).position(|(a, b)| a != b);
                    let at = at.unwrap_or(ours.len().min(theirs.len()));
                    self.fail(format!(
                        "{what}: raw tokens differ at token {at}: ours {:?}, sqlparser's {:?}\n  in {:?}",
                        ours.get(at),
                        theirs.get(at),
                        short(text)
                    ));
                }
            }
            (Some(_), Err(e)) => self.fail(format!(
                "{what}: read what sqlparser rejects ({e}): {:?}",
                short(text)
            )),
        }
        match (tokenize(text, base), &expected) {
            (Ok(t), Ok((_, toks))) => {
                if &t.toks != toks {
                    let at = t.toks.iter().zip(toks).position(|(a, b)| a != b);
                    let at = at.unwrap_or(t.toks.len().min(toks.len()));
                    self.fail(format!(
                        "{what}: tokens differ at {at}: ours {:?}, sqlparser's {:?}\n  in {:?}",
                        t.toks.get(at),
                        toks.get(at),
                        short(text)
                    ));
                }
                // What the parser is fed: sqlparser's tokens, read again from the text.
                let raw = t.raw().expect("raw tokens of a tokenized text");
                if located(&raw) != located(&expected.as_ref().unwrap().0) {
                    self.fail(format!("{what}: parser tokens differ: {:?}", short(text)));
                }
            }
            (Err(a), Err(b)) if &a == b => {}
            (got, _) => self.fail(format!(
                "{what}: tokenize gives {:?}, sqlparser {:?}: {:?}",
                got.as_ref().err(),
                expected.as_ref().err(),
                short(text)
            )),
        }
    }

    fn fail(&mut self, message: String) {
        if self.mismatches.len() < 20 {
            eprintln!("{message}");
        }
        self.mismatches.push(message);
    }

    /// The statements of `text`, and those of the string literals in them (function and
    /// `DO` bodies, `EXECUTE` strings), and the pieces of those read as PL/pgSQL.
    fn statements(&mut self, what: &str, text: &str, depth: usize) {
        for st in split(text).statements {
            let stmt = &text[st.span.clone()];
            self.check(what, stmt);
            if depth >= 2 {
                continue;
            }
            let Ok(t) = tokenize(stmt, 0) else { continue };
            for tok in &t.toks {
                let Some(body) = string_content(stmt, tok) else {
                    continue;
                };
                let body = &stmt[body];
                if body.trim().is_empty() {
                    continue;
                }
                self.statements(what, body, depth + 1);
                for piece in read(body, 0..body.len(), Lang::PlPgSql) {
                    self.check(what, &body[piece.span]);
                }
            }
        }
    }
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

#[test]
fn lockstep_tokenizer_reads_the_corpus_as_sqlparser_does() {
    let Some(dir) = corpus() else {
        eprintln!("skipped: ../shared/corpus (the corpus of real histories) is absent");
        return;
    };
    let mut files = Vec::new();
    sql_files(&dir, &mut files);
    assert!(files.len() > 1000, "{} files", files.len());
    let mut tally = Tally::default();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue; // not UTF-8: lint refuses it before tokenizing
        };
        let what = f.strip_prefix(&dir).unwrap().display().to_string();
        tally.statements(&what, &text, 0);
    }
    println!(
        "{} files, {} texts, {} left to sqlparser ({:.3}%), {} mismatches",
        files.len(),
        tally.texts,
        tally.unsure,
        100.0 * tally.unsure as f64 / tally.texts as f64,
        tally.mismatches.len()
    );
    assert!(
        tally.mismatches.is_empty(),
        "{} mismatches",
        tally.mismatches.len()
    );
    // The fast path is the common path: a tokenizer that gave up everywhere would pass the
    // comparison above.
    assert!(
        tally.unsure * 100 < tally.texts,
        "{} of {} texts left to sqlparser",
        tally.unsure,
        tally.texts
    );
}
