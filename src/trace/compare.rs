//! Comparing a lint prediction with what PostgreSQL did.

use std::collections::{BTreeMap, BTreeSet};

use super::Effect;
use crate::sql::ir::LockMode;

/// Whether a predicted effect matches what was seen. `held` are locks the transaction held
/// before the statement: a predicted lock already held at least as strongly is satisfied.
/// Every lock above ACCESS SHARE PostgreSQL took must be predicted with its mode (always
/// or conditionally); every lock predicted to be always taken must have been taken (for
/// ACCESS SHARE: any lock on the table); rewrites and scans must be the predicted ones,
/// give or take those predicted as possible.
pub fn compare(predicted: &Effect, seen: &Effect, held: &BTreeMap<String, LockMode>) -> bool {
    let mut index_locks = predicted.index_locks.clone();
    for (table, mode) in &seen.locks {
        if predicted.locks.get(table) == Some(mode)
            || predicted.conditional.get(table) == Some(mode)
        {
            continue;
        }
        match index_locks.iter().position(|(m, _)| m == mode) {
            Some(i) => {
                index_locks.remove(i);
            }
            None => return false,
        }
    }
    let locks_taken = predicted.locks.iter().all(|(table, mode)| {
        if *mode == LockMode::AccessShare {
            seen.touched.contains(table) || held.contains_key(table)
        } else {
            seen.locks.get(table) == Some(mode) || held.get(table).is_some_and(|h| h >= mode)
        }
    });
    let index_taken = index_locks
        .iter()
        .filter(|(_, conditional)| !conditional)
        .all(|(m, _)| held.values().any(|h| h >= m));
    let within = |must: &BTreeSet<String>, may: &BTreeSet<String>, seen: &BTreeSet<String>| {
        must.is_subset(seen) && seen.iter().all(|t| must.contains(t) || may.contains(t))
    };
    locks_taken
        && index_taken
        && within(&predicted.rewrites, &predicted.may_rewrite, &seen.rewrites)
        && within(&predicted.scans, &predicted.may_scan, &seen.scans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(locks: &[(&str, LockMode)], rewrites: &[&str], scans: &[&str]) -> Effect {
        Effect {
            locks: locks.iter().map(|(t, m)| (t.to_string(), *m)).collect(),
            index_locks: Vec::new(),
            rewrites: rewrites.iter().map(|s| s.to_string()).collect(),
            scans: scans.iter().map(|s| s.to_string()).collect(),
            ..Effect::default()
        }
    }

    #[test]
    fn conditional_locks_and_possible_scans_may_or_may_not_happen() {
        let mut p = effect(&[("t", LockMode::RowExclusive)], &[], &[]);
        p.conditional.insert("child".into(), LockMode::RowShare);
        p.may_scan.insert("t".into());
        let none = BTreeMap::new();
        let plain = effect(&[("t", LockMode::RowExclusive)], &[], &[]);
        assert!(compare(&p, &plain, &none));
        let all = effect(
            &[("t", LockMode::RowExclusive), ("child", LockMode::RowShare)],
            &[],
            &["t"],
        );
        assert!(compare(&p, &all, &none));
        let wrong_mode = effect(
            &[
                ("t", LockMode::RowExclusive),
                ("child", LockMode::RowExclusive),
            ],
            &[],
            &[],
        );
        assert!(!compare(&p, &wrong_mode, &none));
        let other_scan = effect(&[("t", LockMode::RowExclusive)], &[], &["child"]);
        assert!(!compare(&p, &other_scan, &none));
        // A predicted read (ACCESS SHARE) needs some lock on the table.
        let mut reads = effect(&[("src", LockMode::AccessShare)], &[], &[]);
        reads.may_scan.insert("src".into());
        let mut seen = effect(&[], &[], &[]);
        assert!(!compare(&reads, &seen, &none));
        seen.touched.insert("src".into());
        assert!(compare(&reads, &seen, &none));
    }

    #[test]
    fn compare_requires_the_same_locks_rewrites_and_scans() {
        let p = effect(&[("t", LockMode::AccessExclusive)], &["t"], &[]);
        let none = BTreeMap::new();
        assert!(compare(&p, &p.clone(), &none));
        let weaker = effect(&[("t", LockMode::Share)], &["t"], &[]);
        assert!(!compare(&p, &weaker, &none));
        let no_rewrite = effect(&[("t", LockMode::AccessExclusive)], &[], &[]);
        assert!(!compare(&p, &no_rewrite, &none));
        let extra = effect(
            &[("t", LockMode::AccessExclusive), ("u", LockMode::RowShare)],
            &["t"],
            &[],
        );
        assert!(!compare(&p, &extra, &none));
    }

    #[test]
    fn a_lock_already_held_counts_as_taken() {
        let p = effect(&[("t", LockMode::ShareUpdateExclusive)], &[], &[]);
        let seen = effect(&[], &[], &[]);
        let held: BTreeMap<String, LockMode> =
            [("t".to_string(), LockMode::AccessExclusive)].into();
        assert!(compare(&p, &seen, &held));
        assert!(!compare(&p, &seen, &BTreeMap::new()));
    }

    #[test]
    fn index_locks_match_any_table() {
        let mut p = effect(&[], &[], &[]);
        p.index_locks.push((LockMode::AccessExclusive, false));
        let seen = effect(&[("orders", LockMode::AccessExclusive)], &[], &[]);
        assert!(compare(&p, &seen, &BTreeMap::new()));
        let other = effect(&[("orders", LockMode::Share)], &[], &[]);
        assert!(!compare(&p, &other, &BTreeMap::new()));
    }
}
