//! Lint rules: one file per rule, listed once in [`registry`].

pub mod add_check_validating;
pub mod add_column_generated_stored;
pub mod add_column_not_null_without_default;
pub mod add_column_serial;
pub mod add_column_volatile_default;
pub mod add_enum_value_in_transaction;
pub mod add_exclusion_constraint;
pub mod add_foreign_key_validating;
pub mod add_unique_constraint_locking;
pub mod alter_column_type_rewrite;
pub mod attach_partition_scan;
pub mod char_column;
pub mod concurrently_if_not_exists;
pub mod concurrently_in_transaction;
pub mod create_index_non_concurrently;
pub mod detach_partition_blocking;
pub mod domain_constraint_validating;
pub mod drop_column;
pub mod drop_index_non_concurrently;
pub mod drop_table;
pub mod foreign_key_without_index;
pub mod json_column;
pub mod lock_table;
pub mod missing_lock_timeout;
pub mod prefer_bigint_id;
pub mod prefer_identity;
pub mod prefer_text;
pub mod prefer_timestamptz;
pub mod refresh_matview_blocking;
pub mod registry;
pub mod reindex_non_concurrently;
pub mod rename_column;
pub mod rename_table;
pub mod set_not_null_scan;
pub mod statements_after_access_exclusive;
pub mod table_rewrite_command;
pub mod transaction_nesting;
pub mod truncate_table;
pub mod unbatched_data_migration;
pub mod unchecked_dynamic_sql;
pub mod unparsed_statement;
pub mod unused_ignore;
pub mod validate_in_same_transaction;

use std::ops::Range;

use super::context::FileContext;
use super::fix::Fix;
use super::locks::LockReport;
use super::neighbours::View;
use super::Severity;
use crate::sql::parse::Statement;

pub use registry::RULES;

/// A lint rule: data plus a check function. Its docs are user documentation with the
/// headings *What it does*, *Why is this bad?*, *Example*, *Use instead*.
pub struct Rule {
    /// Stable kebab-case id naming the bad pattern.
    pub name: &'static str,
    /// Default severity; `None` means the rule is off unless selected.
    pub default_severity: Option<Severity>,
    /// One line for `lockstep rules`.
    pub summary: &'static str,
    /// Markdown docs for `lockstep explain`.
    pub docs: &'static str,
    pub check: fn(&mut Checker),
}

/// A finding before it is located and filtered.
#[derive(Debug, Clone)]
pub struct Finding {
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
    /// A mechanical rewrite into the safe form, when one exists.
    pub fix: Option<Fix>,
    /// The online playbook kind that makes this change without blocking, when one exists.
    pub playbook: Option<&'static str>,
}

/// How a help text names an online playbook kind: ``a `not-null` playbook (`lockstep run`)``.
pub fn playbook_ref(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o']) {
        "an"
    } else {
        "a"
    };
    format!("{article} `{kind}` playbook (`lockstep run`)")
}

/// What a rule's check function sees: the statement, the file context before it, and a
/// place to report findings.
pub struct Checker<'a> {
    pub ctx: &'a FileContext,
    pub stmt: &'a Statement,
    pub src: &'a str,
    /// The lock model's prediction for this statement.
    pub locks: &'a LockReport,
    /// The other statements of the same file (section) or block body.
    pub others: View<'a>,
    findings: Vec<Finding>,
}

impl<'a> Checker<'a> {
    pub fn new(
        ctx: &'a FileContext,
        stmt: &'a Statement,
        src: &'a str,
        locks: &'a LockReport,
        others: View<'a>,
    ) -> Self {
        Checker {
            ctx,
            stmt,
            src,
            locks,
            others,
            findings: Vec::new(),
        }
    }

    pub fn report(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let help = help.into();
        self.findings.push(Finding {
            span,
            message: message.into(),
            help: (!help.is_empty()).then_some(help),
            fix: None,
            playbook: None,
        });
    }

    /// Reports a finding with a suggested fix (`None` when no safe rewrite applies here).
    pub fn report_fix(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
        fix: Option<Fix>,
    ) {
        self.report(span, message, help);
        if let Some(f) = self.findings.last_mut() {
            f.fix = fix;
        }
    }

    /// Names the online playbook `kind` on the last finding: records it, and appends
    /// ``; or {how} online with a `kind` playbook (`lockstep run`)`` to its help.
    pub fn online(&mut self, kind: &'static str, how: &str) {
        if let Some(f) = self.findings.last_mut() {
            let hint = format!("{how} online with {}", playbook_ref(kind));
            f.help = Some(match f.help.take() {
                Some(h) => format!("{h}; or {hint}"),
                None => hint,
            });
            f.playbook = Some(kind);
        }
    }

    /// Records the online playbook `kind` on the last finding, whose help already names it.
    pub fn playbook(&mut self, kind: &'static str) {
        if let Some(f) = self.findings.last_mut() {
            f.playbook = Some(kind);
        }
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }
}

/// Position of a rule in the registry.
pub fn index_of(name: &str) -> Option<usize> {
    RULES.iter().position(|r| r.name == name)
}

/// Whether `rule` looks at a `DO` block as a whole; the other rules look at the statements
/// inside it.
pub fn applies_to_blocks(rule: &Rule) -> bool {
    rule.name == unchecked_dynamic_sql::RULE.name || rule.name == unparsed_statement::RULE.name
}

/// Looks a rule up by name.
pub fn find(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// `(message, help)` of `rule`'s findings in `src` for a target version (unit tests).
#[cfg(test)]
pub(crate) fn test_findings(rule: &str, src: &str, pg_version: u32) -> Vec<(String, String)> {
    let opts = super::LintOptions {
        pg_version,
        ..super::LintOptions::default()
    };
    super::lint_source(src, &opts)
        .diagnostics
        .into_iter()
        .filter(|d| d.rule == rule)
        .map(|d| (d.message, d.help.unwrap_or_default()))
        .collect()
}
