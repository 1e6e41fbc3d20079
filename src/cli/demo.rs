//! `lockstep demo`: flags, the throwaway cluster and its signals, and the screen. What the
//! demo does is `crate::demo`.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::interrupt;
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_OK};
use crate::demo::{self, group_digits, Report, Screen, StepTime};

/// The width the demo's output keeps within.
const WIDTH: usize = 100;

/// The first thing to try: a throwaway PostgreSQL, a busy table, converted online.
#[derive(Debug, Args)]
#[command(
    after_help = "Starts a throwaway PostgreSQL (nothing to set up; it is removed afterwards, also on\n\
Ctrl-C, SIGTERM or SIGHUP), fills a telemetry table, runs a write workload against it,\n\
converts the table to monthly partitions with lockstep's online engine while the workload\n\
keeps writing, checks the result row for row, and prints before/after and what the workload\n\
saw.\n\n\
--bench also times the naive way (one INSERT … SELECT into a partitioned copy that already\n\
has all its indexes, with no workload) on the same data, converts once with no workload as\n\
well (then swaps back) for a like-for-like time, and prints the ratios.\n\n\
Examples:\n  lockstep demo\n  lockstep demo --rows 100000 --measure 2\n  lockstep demo --rows 5000000 --bench\n  lockstep demo --writers 4 --workers 1 --duty-cycle 1\n  lockstep demo --capture trigger    # the change-capture trigger instead of logical decoding"
)]
pub struct DemoArgs {
    /// Rows in the sample table
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub rows: u64,
    /// Foreground writer connections
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub writers: u32,
    /// The playbook's `[backfill] duty_cycle`: the share of the time the conversion works
    /// (default: the playbook default)
    #[arg(long, value_name = "SHARE")]
    pub duty_cycle: Option<f64>,
    /// The playbook's `[backfill] workers`: connections that copy, build indexes and verify
    /// at once (default: the playbook default)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub workers: Option<u32>,
    /// The playbook's `[capture] mode`: how changes made during the copy are captured
    #[arg(long, value_name = "MODE", value_parser = ["auto", "logical", "trigger"])]
    pub capture: Option<String>,
    /// Also measure the naive conversion and print the ratios
    #[arg(long)]
    pub bench: bool,
    /// Seconds the workload is measured alone before the conversion, and after the swap
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub measure: u64,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[inline(never)] // see `cli::main`
pub fn run(args: DemoArgs) -> anyhow::Result<u8> {
    let color = args.color.enabled();
    // Before the cluster exists: from here on a signal cannot leave it running.
    let (rt, mut interrupts) = interrupt::runtime()?;
    let _ = writeln!(io::stderr(), "demo: starting a throwaway PostgreSQL …");
    let Some((cluster, conn)) = interrupt::start_cluster(color) else {
        return Ok(EXIT_ERROR);
    };
    let options = demo::Options {
        rows: args.rows,
        writers: args.writers,
        duty_cycle: args.duty_cycle,
        workers: args.workers,
        capture: args.capture,
        bench: args.bench,
        measure: Duration::from_secs(args.measure),
    };
    let mut screen = Term::new();
    let outcome = rt.block_on(async {
        tokio::select! {
            r = demo::run(&conn, &options, &mut screen) => Ok(r),
            signal = interrupts.recv() => Err(signal),
        }
    });
    drop(screen);
    drop(rt);
    drop(cluster);
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            eprint_error(color, &e.to_string());
            return Ok(EXIT_ERROR);
        }
        Err(signal) => {
            eprint_error(
                color,
                &format!(
                    "demo {}: stopped; the throwaway PostgreSQL is removed",
                    signal.name()
                ),
            );
            return Ok(signal.exit_code());
        }
    };
    let mut out = io::stdout().lock();
    for line in summary(&report) {
        writeln!(out, "{line}")?;
    }
    if report.differing != 0 {
        eprint_error(color, "the conversion lost or changed rows");
        return Ok(EXIT_ERROR);
    }
    if report.errors > 0 {
        eprint_error(
            color,
            "some workload statements failed during the conversion",
        );
        return Ok(EXIT_ERROR);
    }
    Ok(EXIT_OK)
}

/// The report, in lines of at most [`WIDTH`] columns.
fn summary(r: &Report) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut para = |text: String, indent: usize| out.extend(wrap(&text, indent));
    para(
        format!(
            "before: telemetry, one table of {} rows ({}), primary key (id)",
            group_digits(r.rows),
            r.size_before
        ),
        8,
    );
    para(
        format!(
            "after:  telemetry partitioned by month on recorded_at: {} partitions, {} rows, primary key (id, recorded_at); the original was kept as telemetry_old ({}) with the changes since the swap kept for a rollback and applied to it before the check, as a rollback would, so that a rollback would have lost nothing",
            r.partitions,
            group_digits(r.rows_after.max(0) as u64),
            r.size_old
        ),
        8,
    );
    para(
        if r.differing == 0 {
            format!(
                "check:  telemetry and telemetry_old are identical, row for row ({} rows)",
                group_digits(r.rows_after.max(0) as u64)
            )
        } else {
            format!(
                "check:  {} rows differ between telemetry and telemetry_old",
                r.differing
            )
        },
        8,
    );
    para(String::new(), 0);
    para(
        format!(
            "conversion took {:.1} s: {}",
            r.conversion.as_secs_f64(),
            step_list(&r.steps)
        ),
        2,
    );
    let before = r.before.ops_per_sec.max(1.0);
    if r.writers > 0 {
        para(
            format!(
                "workload ({} writer{}): {} ops/s before (worst {:.1} ms), {} ops/s during ({:.2}x, worst {:.1} ms), {} ops/s after the swap, until finalize ({:.2}x)",
                r.writers,
                plural(r.writers),
                count(r.before.ops_per_sec),
                ms(r.before.worst),
                count(r.during.ops_per_sec),
                r.during.ops_per_sec / before,
                ms(r.during.worst),
                count(r.after.ops_per_sec),
                r.after.ops_per_sec / before,
            ),
            2,
        );
        para(
            format!(
                "workload throughput per step, relative to before: {}",
                r.steps
                    .iter()
                    .filter(|s| s.secs >= 0.5)
                    .map(|s| format!("{} {:.2}x", s.name, s.ops / s.secs / before))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            2,
        );
    } else {
        para("workload: none (--writers 0)".to_string(), 2);
    }
    para(format!("workload errors: {}", r.errors), 2);
    if let Some(w) = r.swap_worst {
        para(
            format!(
                "worst foreground latency while the swap ran: {:.1} ms",
                ms(w)
            ),
            2,
        );
    }
    if let Some(b) = &r.bench {
        let naive = b.naive.as_secs_f64().max(0.001);
        para(String::new(), 0);
        para(
            format!(
                "bench: naive INSERT … SELECT into an indexed partitioned copy: {:.1} s (no workload; in practice the table is locked against writes)",
                b.naive.as_secs_f64()
            ),
            7,
        );
        let (idle_secs, idle_steps) = match &b.idle {
            Some((t, steps)) => (t.as_secs_f64(), steps.as_slice()),
            None => (r.conversion.as_secs_f64(), r.steps.as_slice()),
        };
        para(
            format!(
                "       lockstep, no workload: {idle_secs:.1} s ({}); conversion / naive: {:.2}x",
                step_list(idle_steps),
                idle_secs / naive
            ),
            7,
        );
        if r.writers > 0 {
            para(
                format!(
                    "       lockstep, {} writer{}, duty cycle {}: {:.1} s ({:.2}x naive); workload throughput during / before: {:.2}x; reverse sync overhead after the swap: {:.0}%",
                    r.writers,
                    plural(r.writers),
                    r.duty_cycle,
                    r.conversion.as_secs_f64(),
                    r.conversion.as_secs_f64() / naive,
                    r.during.ops_per_sec / before,
                    (1.0 - r.after.ops_per_sec / before) * 100.0
                ),
                7,
            );
        }
    }
    out
}

/// `shadow 0.1 s, capture 0.0 s, …` for the steps that took 0.05 s or more.
fn step_list(steps: &[StepTime]) -> String {
    steps
        .iter()
        .filter(|s| s.secs >= 0.05)
        .map(|s| format!("{} {:.1} s", s.name, s.secs))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A count or rate in at most five characters: `950`, `38.6k`, `1.2M`.
pub(super) fn count(x: f64) -> String {
    if x < 1_000.0 {
        format!("{x:.0}")
    } else if x < 999_950.0 {
        format!("{:.1}k", x / 1_000.0)
    } else {
        format!("{:.1}M", x / 1_000_000.0)
    }
}

/// Splits `text` at spaces into lines of at most [`WIDTH`] columns, continuation lines
/// indented by `indent`. Spaces are kept as written within a line (`after:  ` keeps its
/// alignment).
fn wrap(text: &str, indent: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let gap_len = rest.len() - rest.trim_start_matches(' ').len();
        let (gap, after) = rest.split_at(gap_len);
        let (word, next) = after.split_at(after.find(' ').unwrap_or(after.len()));
        rest = next;
        let width = line.chars().count() + gap.len() + word.chars().count();
        if !word.is_empty() && !line.trim().is_empty() && width > WIDTH {
            lines.push(std::mem::replace(&mut line, " ".repeat(indent)));
        } else {
            line.push_str(gap);
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// The demo's screen on standard error: on a terminal one bar per step with counts and rate,
/// left on the screen when the step ends; otherwise a line per step and a progress line
/// every five seconds (CI logs).
struct Term {
    tty: bool,
    bar: Option<ProgressBar>,
    step: String,
    last_line: Instant,
}

impl Term {
    fn new() -> Term {
        Term {
            tty: io::stderr().is_terminal(),
            bar: None,
            step: String::new(),
            last_line: Instant::now(),
        }
    }

    /// Leaves the current bar on the screen as it stands (a step that ended has already
    /// reported its last count; an interrupted one keeps the count it reached).
    fn end_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.abandon();
        }
    }

    fn line(&self, text: &str) {
        let text = truncate(text, WIDTH);
        match &self.bar {
            Some(b) => b.println(text),
            None => {
                let _ = writeln!(io::stderr(), "{text}");
            }
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.end_bar();
    }
}

/// At most `width` characters, with `…` when cut.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width - 1).collect();
    s.push('…');
    s
}

/// `12.3k/1.0M rows  38.6k rows/s` (the rate when known).
fn counts(done: u64, total: u64, unit: &str, rate: Option<f64>) -> String {
    let mut s = format!(
        "{}/{} {unit}",
        group_digits(done),
        group_digits(total.max(done))
    );
    if let Some(r) = rate {
        s.push_str(&format!("  {} {unit}/s", count(r)));
    }
    s
}

impl Screen for Term {
    fn phase(&mut self, message: &str) {
        self.end_bar();
        self.step.clear();
        self.line(&format!("demo: {message} …"));
    }

    fn step(&mut self, name: &str, detail: &str) {
        self.end_bar();
        self.step = name.to_string();
        self.line(&format!("{name}: {detail}"));
        self.last_line = Instant::now();
    }

    fn progress(&mut self, done: u64, total: u64, unit: &str, rate: Option<f64>) {
        let total = total.max(done).max(1);
        if !self.tty {
            if self.last_line.elapsed() >= Duration::from_secs(5) || done >= total {
                self.last_line = Instant::now();
                let rate = rate
                    .map(|r| format!(", {} {unit}/s", count(r)))
                    .unwrap_or_default();
                self.line(&format!(
                    "{}: {}/{} {unit} ({:.0}%){rate}",
                    self.step,
                    group_digits(done),
                    group_digits(total),
                    done as f64 * 100.0 / total as f64
                ));
            }
            return;
        }
        let step = self.step.clone();
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("  {prefix:9} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(step);
            b
        });
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(counts(done, total, unit, rate));
    }

    fn note(&mut self, message: &str) {
        self.line(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_short() {
        assert_eq!(count(12.4), "12");
        assert_eq!(count(38_551.529), "38.6k");
        assert_eq!(count(999_999.0), "1.0M");
        assert_eq!(count(2_345_678.0), "2.3M");
        assert_eq!(
            counts(500, 1000, "rows", Some(38_551.5)),
            "500/1,000 rows  38.6k rows/s"
        );
    }

    #[test]
    fn wrapped_lines_fit_the_width_and_keep_every_word() {
        let text = format!("after:  {}", "word ".repeat(60));
        let lines = wrap(&text, 8);
        assert!(lines.len() > 1);
        assert!(lines[0].starts_with("after:  word word"), "{lines:?}");
        assert!(
            lines.iter().all(|l| l.chars().count() <= WIDTH),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("        word"));
        let words: usize = lines.iter().map(|l| l.split_whitespace().count()).sum();
        assert_eq!(words, 61);
    }
}
