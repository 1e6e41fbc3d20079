use std::io::{self, Write};

use clap::Args;

use crate::lint::rules::RULES;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep rules\n  lockstep rules | grep warning\n  lockstep explain set-not-null-scan    # one rule's documentation"
)]
pub struct RulesArgs {}

#[inline(never)] // see `cli::main`
pub fn run(_args: RulesArgs) -> anyhow::Result<u8> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let width = RULES.iter().map(|r| r.name.len()).max().unwrap_or(0);
    writeln!(out, "{:width$}  {:8}  summary", "rule", "default")?;
    for r in RULES {
        let sev = r.default_severity.map_or("off", |s| s.as_str());
        writeln!(out, "{:width$}  {:8}  {}", r.name, sev, r.summary)?;
    }
    writeln!(
        out,
        "\n{} rules. `lockstep explain <rule>` prints a rule's documentation.",
        RULES.len()
    )?;
    out.flush()?;
    Ok(super::EXIT_OK)
}
