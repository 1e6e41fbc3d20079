//! `ALTER …`: tables (each action of `ALTER TABLE`), and the other objects the lint model
//! tracks.

use super::alter_table_body_start;
use super::column::column_def;
use super::create::ref_actions;
use super::cursor::{column_list, toks_text, Cur};
use crate::sql::ir::*;
use crate::sql::parse::normalize_type;
use crate::sql::tokens::{split_top_level_commas, Tok, TokKind};

pub(super) fn alter(c: &mut Cur, toks: &[Tok]) -> Option<StmtKind> {
    if c.peek_is("TABLE") {
        let body = alter_table_body_start(toks)?;
        c.eat("TABLE");
        c.eat_seq(&["IF", "EXISTS"]);
        c.eat("ONLY");
        let table = c.name()?;
        let mut actions = Vec::new();
        for part in split_top_level_commas(&toks[body..]) {
            let (first, last) = (part.first()?, part.last()?);
            actions.push(Action {
                span: first.span.start..last.span.end,
                kind: alter_action(part)?,
            });
        }
        return Some(StmtKind::AlterTable { table, actions });
    }
    if c.eat("INDEX") {
        return Some(if c.contains("ATTACH") {
            StmtKind::AlterIndexAttachPartition
        } else {
            StmtKind::Other {
                what: "ALTER INDEX".into(),
            }
        });
    }
    if c.eat("SEQUENCE") {
        c.eat_seq(&["IF", "EXISTS"]);
        return Some(StmtKind::AlterSequence { name: c.name()? });
    }
    if c.eat("DOMAIN") {
        let name = c.name()?;
        if c.eat("ADD") {
            let not_valid = c
                .rest()
                .windows(2)
                .any(|w| w[0].is("NOT") && w[1].is("VALID"));
            return Some(StmtKind::AlterDomainAddConstraint { name, not_valid });
        }
        return Some(StmtKind::Other {
            what: "ALTER DOMAIN".into(),
        });
    }
    if c.eat("TYPE") {
        let name = c.name()?;
        if c.eat_seq(&["ADD", "VALUE"]) {
            return Some(StmtKind::AlterTypeAddValue { name });
        }
        return Some(StmtKind::Other {
            what: "ALTER TYPE".into(),
        });
    }
    let what = match &c.peek()?.kind {
        TokKind::Word { upper, .. } => upper.to_string(),
        _ => return None,
    };
    const OTHER: &[&str] = &[
        "FUNCTION",
        "PROCEDURE",
        "ROUTINE",
        "ROLE",
        "USER",
        "GROUP",
        "SCHEMA",
        "EXTENSION",
        "DEFAULT",
        "PUBLICATION",
        "SUBSCRIPTION",
        "POLICY",
        "VIEW",
        "MATERIALIZED",
        "AGGREGATE",
        "OPERATOR",
        "COLLATION",
        "DATABASE",
        "SYSTEM",
        "SERVER",
        "FOREIGN",
        "TRIGGER",
        "RULE",
        "EVENT",
        "LANGUAGE",
        "LARGE",
        "TEXT",
        "STATISTICS",
        "TABLESPACE",
        "CONVERSION",
    ];
    OTHER.contains(&what.as_str()).then(|| StmtKind::Other {
        what: format!("ALTER {what}"),
    })
}

fn is_not_valid(t: &[Tok]) -> bool {
    t.len() >= 2 && t[t.len() - 2].is("NOT") && t[t.len() - 1].is("VALID")
}

/// One `ALTER TABLE` action.
fn alter_action(part: &[Tok]) -> Option<ActionKind> {
    let mut c = Cur::new(part);
    let text = || toks_text(part);
    if c.eat("ADD") {
        if c.eat("CONSTRAINT") {
            let name = c.word()?;
            return table_constraint(&mut c, Some(name), part);
        }
        if ["CHECK", "FOREIGN", "UNIQUE", "PRIMARY", "EXCLUDE"]
            .iter()
            .any(|k| c.peek_is(k))
        {
            return table_constraint(&mut c, None, part);
        }
        c.eat("COLUMN");
        let if_not_exists = c.eat_seq(&["IF", "NOT", "EXISTS"]);
        let column = column_def(&mut c)?;
        return Some(ActionKind::AddColumn {
            column,
            if_not_exists,
        });
    }
    if c.eat_seq(&["ALTER", "CONSTRAINT"]) {
        return Some(ActionKind::AlterConstraint { name: c.word()? });
    }
    if c.eat("ALTER") {
        c.eat("COLUMN");
        let column = c.word()?;
        if c.eat("TYPE") || c.eat_seq(&["SET", "DATA", "TYPE"]) {
            let rest = c.rest();
            let using = rest.iter().position(|t| t.is("USING"));
            let collate = rest.iter().position(|t| t.is("COLLATE"));
            let end = [using, collate]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(rest.len());
            let new_type = normalize_type(&toks_text(&rest[..end]));
            // `USING col` (or `col::new_type`) converts like no `USING` at all.
            let using = using.is_some_and(|u| {
                let expr = &rest[u + 1..];
                let plain = expr.len() == 1 && expr[0].ident() == Some(column.as_str());
                let cast = expr.len() > 2
                    && expr[0].ident() == Some(column.as_str())
                    && expr[1].is_punct("::")
                    && normalize_type(&toks_text(&expr[2..])) == new_type;
                !(plain || cast)
            });
            return Some(ActionKind::AlterColumnType {
                column,
                new_type,
                using,
            });
        }
        if c.eat_seq(&["SET", "NOT", "NULL"]) {
            return Some(ActionKind::SetNotNull { column });
        }
        if c.eat_seq(&["DROP", "NOT", "NULL"]) {
            return Some(ActionKind::DropNotNull { column });
        }
        if c.eat_seq(&["SET", "DEFAULT"]) {
            return Some(ActionKind::SetDefault {
                column,
                expr: toks_text(c.rest()),
            });
        }
        if c.eat_seq(&["DROP", "DEFAULT"]) {
            return Some(ActionKind::DropDefault { column });
        }
        if c.eat_seq(&["ADD", "GENERATED"]) {
            return Some(ActionKind::AddIdentity { column });
        }
        if c.peek_is("SET") || c.peek_is("RESET") || c.peek_is("DROP") {
            return Some(ActionKind::AlterColumnOther { column });
        }
        return None;
    }
    if c.eat("DROP") {
        if c.eat("CONSTRAINT") {
            c.eat_seq(&["IF", "EXISTS"]);
            return Some(ActionKind::DropConstraint { name: c.word()? });
        }
        c.eat("COLUMN");
        c.eat_seq(&["IF", "EXISTS"]);
        return Some(ActionKind::DropColumn {
            names: vec![c.word()?],
        });
    }
    if c.eat_seq(&["VALIDATE", "CONSTRAINT"]) {
        return Some(ActionKind::ValidateConstraint { name: c.word()? });
    }
    if c.eat("RENAME") {
        if c.eat("TO") {
            return Some(ActionKind::RenameTable { to: c.word()? });
        }
        if c.eat("CONSTRAINT") {
            return Some(ActionKind::RenameConstraint);
        }
        c.eat("COLUMN");
        let from = c.word()?;
        c.eat("TO");
        return Some(ActionKind::RenameColumn {
            from,
            to: c.word()?,
        });
    }
    if c.eat_seq(&["ATTACH", "PARTITION"]) {
        return Some(ActionKind::AttachPartition {
            partition: c.name()?,
        });
    }
    if c.eat_seq(&["DETACH", "PARTITION"]) {
        let partition = c.name()?;
        return Some(ActionKind::DetachPartition {
            partition,
            concurrently: c.eat("CONCURRENTLY"),
            finalize: c.eat("FINALIZE"),
        });
    }
    if c.eat("SET") {
        if c.eat("TABLESPACE") {
            return Some(ActionKind::SetTablespace);
        }
        if c.eat("LOGGED") {
            return Some(ActionKind::SetLogged);
        }
        if c.eat("UNLOGGED") {
            return Some(ActionKind::SetUnlogged);
        }
        if c.eat_seq(&["WITHOUT", "CLUSTER"]) {
            return Some(ActionKind::Cluster);
        }
        if c.eat_seq(&["ACCESS", "METHOD"]) {
            return Some(ActionKind::SetTablespace);
        }
        if c.eat_seq(&["WITHOUT", "OIDS"]) || c.eat("SCHEMA") {
            return Some(ActionKind::Other(text()));
        }
        if c.parens().is_some() {
            return Some(ActionKind::SetStorageParams);
        }
        return None;
    }
    if c.eat("RESET") {
        return c.parens().map(|_| ActionKind::SetStorageParams);
    }
    if c.eat("ENABLE") || c.eat("DISABLE") {
        c.eat("REPLICA");
        c.eat("ALWAYS");
        if c.eat("TRIGGER") {
            return Some(ActionKind::Trigger);
        }
        if c.eat_seq(&["ROW", "LEVEL", "SECURITY"]) {
            return Some(ActionKind::RowLevelSecurity);
        }
        if c.eat("RULE") {
            return Some(ActionKind::Other(text()));
        }
        return None;
    }
    if c.eat("FORCE") || c.eat_seq(&["NO", "FORCE"]) {
        return Some(ActionKind::RowLevelSecurity);
    }
    if c.eat_seq(&["CLUSTER", "ON"]) {
        return Some(ActionKind::Cluster);
    }
    if c.eat("INHERIT") || c.eat_seq(&["NO", "INHERIT"]) {
        return Some(ActionKind::Inherit);
    }
    if c.eat_seq(&["REPLICA", "IDENTITY"]) {
        return Some(ActionKind::ReplicaIdentity);
    }
    if c.eat_seq(&["OWNER", "TO"]) {
        return Some(ActionKind::OwnerTo);
    }
    if c.eat("OF") || c.eat("NOT") {
        return Some(ActionKind::Other(text()));
    }
    None
}

/// After `ADD [CONSTRAINT name]`: the constraint body.
pub(super) fn table_constraint(
    c: &mut Cur,
    name: Option<String>,
    part: &[Tok],
) -> Option<ActionKind> {
    let not_valid = is_not_valid(part);
    let constraint = if c.eat("CHECK") {
        Constraint::Check {
            expr: toks_text(c.parens()?),
        }
    } else if c.eat_seq(&["FOREIGN", "KEY"]) {
        let columns = column_list(c.parens()?);
        if !c.eat("REFERENCES") {
            return None;
        }
        let table = c.name()?;
        let ref_cols = c.parens().map(column_list).unwrap_or_default();
        let (on_delete, on_update) = ref_actions(c.rest());
        Constraint::ForeignKey {
            columns,
            references: ForeignKeyRef {
                table,
                columns: ref_cols,
                on_delete,
                on_update,
                name: None,
            },
        }
    } else if c.eat("UNIQUE") || c.eat_seq(&["PRIMARY", "KEY"]) {
        let primary = part.iter().any(|t| t.is("PRIMARY"));
        c.eat_seq(&["NULLS", "NOT", "DISTINCT"]);
        c.eat_seq(&["NULLS", "DISTINCT"]);
        let (columns, using_index) = if c.eat_seq(&["USING", "INDEX"]) {
            (Vec::new(), Some(c.word()?))
        } else {
            (column_list(c.parens()?), None)
        };
        if primary {
            Constraint::PrimaryKey {
                columns,
                using_index,
            }
        } else {
            Constraint::Unique {
                columns,
                using_index,
            }
        }
    } else if c.eat("EXCLUDE") {
        Constraint::Exclude
    } else if c.eat_seq(&["NOT", "NULL"]) {
        Constraint::NotNull { column: c.word()? }
    } else {
        return None;
    };
    Some(ActionKind::AddConstraint {
        name,
        constraint,
        not_valid,
    })
}
