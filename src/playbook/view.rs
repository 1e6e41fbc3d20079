//! A plan as `lockstep plan` shows it: every step with its SQL and locks, estimates, notes,
//! and the table's definition before and after. Each engine describes its plans this way;
//! the CLI prints them.

/// A plan, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanView {
    /// What the plan does to which table, with sizes and estimates (may span lines).
    pub headline: String,
    /// Things the user should know (each printed as `note: …`).
    pub notes: Vec<String>,
    /// A paragraph before the steps.
    pub preamble: Option<String>,
    pub steps: Vec<StepView>,
    /// What `lockstep finalize` runs, when it is not one of the steps.
    pub finalize: Option<Vec<String>>,
    /// The table, quoted and qualified.
    pub table: String,
    /// Its definition before and after.
    pub before: String,
    pub after: String,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepView {
    pub name: String,
    /// What it does, which locks it takes, how long.
    pub what: String,
    /// Its SQL (a statement may span lines).
    pub sql: Vec<String>,
    /// How a rollback undoes it: a label (`rollback`, `rollback (swap back)`) and its SQL.
    pub undo: Option<(String, Vec<String>)>,
}

/// `1.5 MB`.
pub fn human_bytes(b: i64) -> String {
    let mut v = b.max(0) as f64;
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0.0 B");
        assert_eq!(human_bytes(1536), "1.5 kB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GB");
        assert_eq!(human_bytes(-3), "0.0 B");
    }
}
