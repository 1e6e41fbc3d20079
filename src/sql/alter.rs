//! `ALTER TABLE` actions written on their own (`ALTER COLUMN amount TYPE numeric(14,2)`), as
//! a playbook lists them: what each one is, as the linter understands it, and the text of a
//! type change's `USING` expression.

use super::ir::{ActionKind, StmtKind};
use super::parse::analyze;
use super::tokens::TokKind;

/// One action of a list, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterAction {
    pub kind: ActionKind,
    /// The action as written.
    pub text: String,
    /// A type change's `USING` expression, as written.
    pub using: Option<String>,
}

/// The actions of `text` (one or several, separated by commas), or why they are not
/// understood.
pub fn actions(text: &str) -> Result<Vec<AlterAction>, String> {
    const PREFIX: &str = "ALTER TABLE lockstep_action ";
    let sql = format!("{PREFIX}{}", text.trim().trim_end_matches(';'));
    // One statement: an action must not smuggle in another (`…; DROP TABLE …`).
    if super::split(&sql).statements.len() != 1 {
        return Err(
            "one ALTER TABLE action (or several separated by commas), not several statements"
                .to_string(),
        );
    }
    let stmt = analyze(&sql, 0..sql.len());
    let StmtKind::AlterTable { actions, .. } = stmt.kind else {
        return Err(stmt
            .parse_error
            .unwrap_or_else(|| "not an ALTER TABLE action".to_string()));
    };
    if actions.is_empty() {
        return Err(stmt
            .parse_error
            .unwrap_or_else(|| "no ALTER TABLE action found".to_string()));
    }
    Ok(actions
        .into_iter()
        .map(|a| {
            let using = match a.kind {
                ActionKind::AlterColumnType { using: true, .. } => {
                    using_text(&sql, &stmt.toks, &a.span)
                }
                _ => None,
            };
            AlterAction {
                text: sql[a.span.clone()].trim().to_string(),
                kind: a.kind,
                using,
            }
        })
        .collect())
}

/// The text after the `USING` keyword at the top level of an action's tokens.
fn using_text(
    sql: &str,
    toks: &[super::tokens::Tok],
    span: &std::ops::Range<usize>,
) -> Option<String> {
    let mut depth = 0i32;
    for t in toks
        .iter()
        .filter(|t| t.span.start >= span.start && t.span.end <= span.end)
    {
        match &t.kind {
            TokKind::Punct(p) if p == "(" || p == "[" => depth += 1,
            TokKind::Punct(p) if p == ")" || p == "]" => depth -= 1,
            _ if depth == 0 && t.is("USING") => {
                let rest = sql[t.span.end..span.end].trim();
                return (!rest.is_empty()).then(|| rest.to_string());
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_changes_keep_their_using_expression() {
        let a =
            actions("ALTER COLUMN amount TYPE numeric(14,2) USING (amount * 100)::numeric(14,2)")
                .unwrap();
        assert_eq!(a.len(), 1);
        assert!(
            matches!(&a[0].kind, ActionKind::AlterColumnType { column, .. } if column == "amount")
        );
        assert_eq!(a[0].using.as_deref(), Some("(amount * 100)::numeric(14,2)"));
        let a = actions("ALTER COLUMN \"Note\" SET DATA TYPE text").unwrap();
        assert_eq!(a[0].using, None);
    }

    #[test]
    fn several_actions_and_what_is_not_an_action() {
        let a = actions("DROP COLUMN legacy, ADD CONSTRAINT positive CHECK (amount > 0);").unwrap();
        assert_eq!(a.len(), 2);
        assert!(matches!(&a[0].kind, ActionKind::DropColumn { names } if names == &["legacy"]));
        assert_eq!(a[1].text, "ADD CONSTRAINT positive CHECK (amount > 0)");
        assert!(actions("SELECT 1").is_err());
        assert!(actions("").is_err());
        assert!(actions("DROP COLUMN a; DROP TABLE other").is_err());
    }
}
