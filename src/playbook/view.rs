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

/// `1.5 MiB`: the same units as every other size lockstep prints (and reads: `16MiB`).
pub fn human_bytes(b: i64) -> String {
    crate::files::format_size(u64::try_from(b).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5 GiB");
        assert_eq!(human_bytes(3 << 40), "3 TiB");
        assert_eq!(human_bytes(-3), "0 bytes");
        // What `max_retained_wal = "4GB"` reads as, shown in the unit it is printed in.
        let four_gb = crate::config::parse_size("4GB").unwrap();
        assert_eq!(human_bytes(four_gb as i64), "3.7 GiB");
    }
}
