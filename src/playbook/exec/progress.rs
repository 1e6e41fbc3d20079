//! What a run reports while it works; the CLI draws bars or prints status lines.

use crate::playbook::hooks::Event;

/// A sink for a run's progress.
pub trait Progress {
    /// A step starts.
    fn step(&mut self, name: &str, detail: &str);
    /// Rows done of a long step (copy, batches, verification).
    fn copy(&mut self, copied: i64, total: i64, rows_per_sec: f64);
    /// Anything worth a line: a retry, a pause, a warning.
    fn note(&mut self, message: &str);
    /// Something happened (the same events `[hooks]` get, and lock waits): for metrics.
    fn event(&mut self, _event: &Event) {}
}

/// A progress sink that discards everything.
pub struct Silent;

impl Progress for Silent {
    fn step(&mut self, _: &str, _: &str) {}
    fn copy(&mut self, _: i64, _: i64, _: f64) {}
    fn note(&mut self, _: &str) {}
}
