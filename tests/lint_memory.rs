//! Linting a long file holds memory in proportion to its text and its largest statement,
//! not a parsed form of every statement. Measured by counting the bytes the process has
//! allocated (a counting global allocator): a state, not a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use lockstep::files::{lint_each, Input};
use lockstep::lint::LintOptions;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The statements of `bench/lint_speed.py --sets hostile`'s repeated file.
const MIGRATION: &str = "\
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);
CREATE INDEX orders_total_idx ON orders (total);
ALTER TABLE orders ADD COLUMN note text;
INSERT INTO orders (id, total) VALUES (1, 2.5), (2, 3.5);
SELECT * FROM orders WHERE id = 42;
DROP TABLE orders;
";

/// Bytes allocated at the peak of linting `text` beyond what was live before, and the
/// number of statements checked.
fn peak_of_lint(text: &str, opts: &LintOptions) -> (usize, usize) {
    let input = Input::Stdin {
        display: "long.sql".into(),
        text: text.as_bytes().to_vec(),
    };
    let inputs = [input];
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let mut statements = 0;
    lint_each(&inputs, opts, |r| {
        statements += r.statements;
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap();
    (PEAK.load(Ordering::SeqCst) - before, statements)
}

#[test]
fn a_file_of_many_small_statements_costs_a_few_bytes_per_statement_beyond_its_text() {
    // About 1 MB, 23k statements: parsed and held, they took about 25 bytes per byte.
    let text = MIGRATION.repeat(1_000_000 / MIGRATION.len());
    let statements = 6 * (1_000_000 / MIGRATION.len());
    let opts = LintOptions {
        lock_reports: false,
        ..LintOptions::default()
    };
    let (peak, checked) = peak_of_lint(&text, &opts);
    assert_eq!(checked, statements);
    // The text (read and kept for the report), a span per statement, a line index:
    // under four times the text. One parsed statement or lock report kept per statement
    // (several hundred bytes each) is far above.
    let bound = 4 * text.len();
    assert!(
        peak < bound,
        "peak {peak} bytes allocated for a {} byte file of {statements} statements (bound {bound})",
        text.len()
    );
    // Lock reports, when a report prints them, are kept per statement: the same count
    // sees them.
    let with_locks = LintOptions::default();
    let (peak_locks, _) = peak_of_lint(&text, &with_locks);
    assert!(
        peak_locks > peak + 100 * statements,
        "lock reports: {peak_locks} bytes, without: {peak}"
    );
}
