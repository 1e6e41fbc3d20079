//! Linting a long file holds memory in proportion to its text and its largest statement,
//! not a parsed form of every statement. Measured by counting the bytes the process has
//! allocated (a counting global allocator): a state, not a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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

/// The tests of this file run one at a time: the count is the process's, and memory one
/// test frees while another measures would lower the other's figure.
static MEASURING: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    MEASURING.lock().unwrap_or_else(|e| e.into_inner())
}

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
    peak_of_inputs(&[input], opts)
}

/// Bytes allocated at the peak of linting `inputs` in one run beyond what was live before,
/// and the number of statements checked.
fn peak_of_inputs(inputs: &[Input], opts: &LintOptions) -> (usize, usize) {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let mut statements = 0;
    lint_each(inputs, opts, |r| {
        statements += r.statements;
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap();
    (PEAK.load(Ordering::SeqCst) - before, statements)
}

#[test]
fn a_file_of_many_small_statements_costs_a_few_bytes_per_statement_beyond_its_text() {
    let _alone = alone();
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

fn stdin(name: &str, text: &str) -> Input {
    Input::Stdin {
        display: name.into(),
        text: text.as_bytes().to_vec(),
    }
}

#[test]
fn small_files_read_on_one_thread_are_held_one_at_a_time() {
    let _alone = alone();
    // Sixteen files of 11 KB: one window, small enough to be read on one thread. Each file
    // is read, parsed and checked before the next is read, so the peak is about one
    // file's, not the window's (holding all sixteen parsed took sixteen times as much).
    let text = MIGRATION.repeat(40);
    let opts = LintOptions {
        lock_reports: false,
        ..LintOptions::default()
    };
    let (one, _) = peak_of_inputs(&[stdin("0.sql", &text)], &opts);
    let files: Vec<Input> = (0..16).map(|i| stdin(&format!("{i}.sql"), &text)).collect();
    let (sixteen, checked) = peak_of_inputs(&files, &opts);
    assert_eq!(checked, 16 * 6 * 40);
    assert!(
        sixteen < 2 * one,
        "sixteen files peaked at {sixteen} bytes, one at {one}"
    );
}

#[test]
fn files_read_one_at_a_time_find_what_a_parallel_window_finds() {
    // The schema replays from file to file (a trigger's function, a table's columns), so
    // each file's findings depend on the files before it.
    let files = [
        stdin(
            "1.sql",
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n\
             CREATE TABLE audit (n int);\n\
             CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\n\
             BEGIN UPDATE audit SET n = n + 1; RETURN NEW; END $$;\n\
             CREATE TRIGGER t BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();\n",
        ),
        stdin(
            "2.sql",
            "DO $$ BEGIN\n  ALTER TABLE accounts ADD COLUMN note text NOT NULL DEFAULT clock_timestamp()::text;\n  \
             EXECUTE format('DROP TABLE %I', 'x');\nEND $$;\nUPDATE accounts SET email = lower(email);\n",
        ),
        stdin(
            "3.sql",
            "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;\nCREATE INDEX ON accounts (email);\n\
             ALTER TABLE accounts ALTER COLUMN id TYPE int;\n",
        ),
    ];
    let _alone = alone();
    let opts = LintOptions::default();
    let reports = |inputs: &[Input]| {
        let mut out = Vec::new();
        lint_each(inputs, &opts, |r| {
            if r.path != "padding.sql" {
                out.push(format!("{r:?}"));
            }
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap();
        out
    };
    let one_at_a_time = reports(&files);
    // A file of 300 KB of comments (no statements) in the same window: the window is read
    // and parsed in parallel before its files are checked.
    let mut padded = vec![stdin("padding.sql", &"-- padding\n".repeat(30_000))];
    padded.extend(files.iter().cloned());
    let parallel = reports(&padded);
    assert_eq!(one_at_a_time.len(), 3);
    // What the schema of the files before says: the trigger of 1.sql writes `audit` when
    // 2.sql updates `accounts`; 3.sql's `id` was a `bigint`.
    assert!(
        one_at_a_time[1].contains("name: \"audit\""),
        "{one_at_a_time:#?}"
    );
    assert!(
        one_at_a_time[2].contains("from `bigint` to `int`"),
        "{one_at_a_time:#?}"
    );
    assert_eq!(one_at_a_time, parallel);
}
