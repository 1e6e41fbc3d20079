//! The one list of rules. Order is the order of `lockstep rules`: the catalogue's sections
//! (A: blocking statements, B: lock hygiene and transactions, C: incompatible or
//! destructive changes, D: type design, off by default), then the always-present notes.

use super::*;

pub static RULES: &[Rule] = &[
    // A. Statements that block traffic on an existing table
    create_index_non_concurrently::RULE,
    drop_index_non_concurrently::RULE,
    reindex_non_concurrently::RULE,
    add_column_volatile_default::RULE,
    add_column_serial::RULE,
    add_column_generated_stored::RULE,
    add_column_not_null_without_default::RULE,
    alter_column_type_rewrite::RULE,
    set_not_null_scan::RULE,
    add_check_validating::RULE,
    add_foreign_key_validating::RULE,
    add_unique_constraint_locking::RULE,
    add_exclusion_constraint::RULE,
    table_rewrite_command::RULE,
    refresh_matview_blocking::RULE,
    attach_partition_scan::RULE,
    detach_partition_blocking::RULE,
    lock_table::RULE,
    domain_constraint_validating::RULE,
    unbatched_data_migration::RULE,
    // B. Lock hygiene and transactions
    missing_lock_timeout::RULE,
    statements_after_access_exclusive::RULE,
    validate_in_same_transaction::RULE,
    concurrently_in_transaction::RULE,
    add_enum_value_in_transaction::RULE,
    transaction_nesting::RULE,
    concurrently_if_not_exists::RULE,
    // C. Backward-incompatible or destructive
    rename_column::RULE,
    rename_table::RULE,
    drop_column::RULE,
    drop_table::RULE,
    truncate_table::RULE,
    json_column::RULE,
    foreign_key_without_index::RULE,
    // D. Type design (off by default)
    prefer_bigint_id::RULE,
    prefer_identity::RULE,
    prefer_timestamptz::RULE,
    prefer_text::RULE,
    char_column::RULE,
    // E. Always present
    unparsed_statement::RULE,
    unchecked_dynamic_sql::RULE,
    unused_ignore::RULE,
];
