use super::{Checker, Rule};
use crate::lint::context::LockTimeout;
use crate::lint::fix::{line_start, Fix};
use crate::lint::Severity;

pub const RULE: Rule = Rule {
    name: "missing-lock-timeout",
    default_severity: Some(Severity::Error),
    summary: "a lock that blocks traffic is requested without a `lock_timeout`",
    docs: r#"## What it does
Flags the first statement of a file that requests a lock conflicting with writes (SHARE, SHARE
ROW EXCLUSIVE, EXCLUSIVE or ACCESS EXCLUSIVE) on an existing table when no `SET lock_timeout`
(or `SET LOCAL lock_timeout`) came before it. With `lock_timeout_max` configured, a timeout above
that limit, or `0`, does not count.

## Why is this bad?
A lock request waits behind any transaction that holds a conflicting lock, for instance a long
report reading the table. While it waits, every later query on that table queues behind it. So
even an instant `ALTER TABLE` can stop all traffic on the table for as long as the oldest
transaction runs: an outage caused by a statement that would take a millisecond.

## Example
```sql
ALTER TABLE orders ADD COLUMN note text;
```

## Use instead
```sql
SET lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN note text;
```
If the lock is not granted within the timeout, the statement fails instead of blocking traffic;
retry the migration later.
"#,
    check,
};

fn check(cx: &mut Checker) {
    if cx.ctx.unguarded_lock_seen || cx.ctx.has_effective_lock_timeout() {
        return;
    }
    let Some(lock) = cx
        .locks
        .locks
        .iter()
        .filter(|l| l.mode.blocks_writes() && (l.via_index || !cx.ctx.is_new_table(&l.table)))
        .max_by_key(|l| l.mode)
    else {
        return;
    };
    let target = if lock.via_index {
        format!("the table of index `{}`", lock.table)
    } else {
        format!("`{}`", lock.table)
    };
    let why = match (cx.ctx.lock_timeout(), cx.ctx.lock_timeout_max_ms) {
        (LockTimeout::Set(0), _) => " (`lock_timeout` is 0, which waits forever)".to_string(),
        (LockTimeout::Set(ms), Some(max)) if ms > max => {
            format!(" (`lock_timeout` is {ms}ms, above `lock_timeout_max` of {max}ms)")
        }
        _ => String::new(),
    };
    let at = line_start(cx.src, cx.stmt.span.start);
    // A `SET` beside a statement that must be alone in its file would break the file.
    let must_stay_alone = cx.ctx.alone_reason().is_some() && cx.others.any_non_transactional();
    let fix = (cx.src[at..cx.stmt.span.start].trim().is_empty() && !must_stay_alone)
        .then(|| Fix::new(vec![Fix::insert(at, "SET lock_timeout = '2s';\n")]));
    cx.report_fix(
        cx.stmt.head_span(),
        format!(
            "requests {} on {target} without a lock_timeout{why}: while it waits, all queries on the table queue behind it",
            lock.mode
        ),
        "start the migration with `SET lock_timeout = '2s';` and retry when it times out",
        fix,
    );
}
