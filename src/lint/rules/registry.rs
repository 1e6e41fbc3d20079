//! The one list of rules. Order is the order of `lockstep rules`.

use super::*;

pub static RULES: &[Rule] = &[
    create_index_non_concurrently::RULE,
    add_column_volatile_default::RULE,
    set_not_null_scan::RULE,
    add_check_validating::RULE,
    add_foreign_key_validating::RULE,
    missing_lock_timeout::RULE,
    concurrently_in_transaction::RULE,
    unparsed_statement::RULE,
    unused_ignore::RULE,
];
