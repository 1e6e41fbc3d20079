//! Inline suppressions:
//!
//! - `-- lockstep: ignore rule-a, rule-b -- reason` on the line(s) above a statement, or at
//!   the end of (or inside) a statement, covers that whole statement;
//! - `-- lockstep: ignore-file rule-a` (usually at the top) covers the whole file;
//!   `ignore-file all` covers every rule.
//!
//! Suppressions that suppress nothing, or name unknown rules, are reported.

use std::ops::Range;

use super::rules::{self, Finding, RULES};
use super::{did_you_mean, LintOptions};
use crate::sql::split::Comment;
use crate::sql::LineIndex;

#[derive(Debug)]
struct Named {
    name: String,
    known: bool,
    used: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Scope {
    File,
    /// Index of the statement covered; `None` if no statement follows the comment.
    Statement(Option<usize>),
}

#[derive(Debug)]
struct Entry {
    span: Range<usize>,
    scope: Scope,
    all: bool,
    used_all: bool,
    rules: Vec<Named>,
}

#[derive(Debug, Default)]
pub struct Suppressions {
    entries: Vec<Entry>,
}

/// Parses the directive in a comment's text, if it is one:
/// `(file?, rule names)`.
fn parse_directive(comment: &str) -> Option<(bool, Vec<String>)> {
    let body = if let Some(b) = comment.strip_prefix("--") {
        b
    } else {
        comment.strip_prefix("/*")?.strip_suffix("*/").unwrap_or("")
    };
    let body = body.trim_start();
    let rest = body.strip_prefix("lockstep:")?.trim_start();
    let (file, rest) = if let Some(r) = rest.strip_prefix("ignore-file") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix("ignore") {
        (false, r)
    } else {
        return None;
    };
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let list = rest.split("--").next().unwrap_or("");
    let rules = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some((file, rules))
}

impl Suppressions {
    pub fn collect(
        src: &str,
        comments: &[Comment],
        statements: &[Range<usize>],
        index: &LineIndex,
    ) -> Self {
        let mut entries = Vec::new();
        for c in comments {
            let Some((file, names)) = parse_directive(&src[c.span.clone()]) else {
                continue;
            };
            let all = names.iter().any(|n| n == "all");
            let rules = names
                .into_iter()
                .filter(|n| n != "all")
                .map(|name| Named {
                    known: rules::find(&name).is_some(),
                    name,
                    used: false,
                })
                .collect();
            let scope = if file {
                Scope::File
            } else {
                Scope::Statement(target_statement(c.span.start, statements, index))
            };
            entries.push(Entry {
                span: c.span.clone(),
                scope,
                all,
                used_all: false,
                rules,
            });
        }
        Suppressions { entries }
    }

    /// True if `rule` is suppressed for statement `stmt`; records the use.
    pub fn suppresses(&mut self, rule: &str, stmt: usize) -> bool {
        let mut hit = false;
        for e in &mut self.entries {
            let applies = match e.scope {
                Scope::File => true,
                Scope::Statement(s) => s == Some(stmt),
            };
            if !applies {
                continue;
            }
            if let Some(n) = e.rules.iter_mut().find(|n| n.name == rule) {
                n.used = true;
                hit = true;
            } else if e.all {
                e.used_all = true;
                hit = true;
            }
        }
        hit
    }

    /// Findings for suppressions that suppressed nothing or name unknown rules.
    pub fn unused(&self, opts: &LintOptions) -> Vec<Finding> {
        let mut out = Vec::new();
        for e in &self.entries {
            if e.rules.is_empty() && !e.all {
                out.push(Finding {
                    span: e.span.clone(),
                    message: "`lockstep: ignore` names no rule, so it suppresses nothing".into(),
                    help: Some(
                        "list the rules to ignore: `-- lockstep: ignore rule-name -- reason`"
                            .into(),
                    ),
                    fix: None,
                    playbook: None,
                });
                continue;
            }
            if e.all && !e.used_all && e.rules.is_empty() {
                out.push(Finding {
                    span: e.span.clone(),
                    message: "`lockstep: ignore all` suppresses nothing".into(),
                    help: Some("remove the comment".into()),
                    fix: None,
                    playbook: None,
                });
            }
            for n in &e.rules {
                if !n.known {
                    let hint = did_you_mean(&n.name, RULES.iter().map(|r| r.name))
                        .map_or(String::new(), |m| format!(" (did you mean `{m}`?)"));
                    out.push(Finding {
                        span: e.span.clone(),
                        message: format!("unknown rule `{}` in ignore comment{hint}", n.name),
                        help: Some("`lockstep rules` lists every rule".into()),
                        fix: None,
                        playbook: None,
                    });
                } else if !n.used && opts.severity_of(&n.name).is_some() {
                    let what = match e.scope {
                        Scope::File => "this file",
                        Scope::Statement(_) => "this statement",
                    };
                    out.push(Finding {
                        span: e.span.clone(),
                        message: format!(
                            "`{}` is ignored here but reports nothing for {what}",
                            n.name
                        ),
                        help: Some("remove it from the ignore comment".into()),
                        fix: None,
                        playbook: None,
                    });
                }
            }
        }
        out
    }
}

/// The statement an ignore comment at `pos` covers: the one containing it, the one ending
/// earlier on the same line (a trailing comment), or else the next one.
fn target_statement(pos: usize, statements: &[Range<usize>], index: &LineIndex) -> Option<usize> {
    let next = statements.partition_point(|s| s.start <= pos);
    if next > 0 {
        let prev = &statements[next - 1];
        if pos < prev.end || index.line(prev.end.saturating_sub(1)) == index.line(pos) {
            return Some(next - 1);
        }
    }
    (next < statements.len()).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::parse_directive;

    #[test]
    fn directives() {
        assert_eq!(
            parse_directive("-- lockstep: ignore a-b, c -- because"),
            Some((false, vec!["a-b".into(), "c".into()]))
        );
        assert_eq!(
            parse_directive("-- lockstep: ignore-file x"),
            Some((true, vec!["x".into()]))
        );
        assert_eq!(
            parse_directive("/* lockstep: ignore x */"),
            Some((false, vec!["x".into()]))
        );
        assert_eq!(parse_directive("-- lockstep: ignored x"), None);
        assert_eq!(parse_directive("-- just a comment"), None);
    }
}
