use std::io::{self, Write};

use clap::Args;

use crate::lint::did_you_mean;
use crate::lint::rules::{self, RULES};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lockstep explain create-index-non-concurrently\n  lockstep explain missing-lock-timeout | less\n  lockstep rules                  # every rule name"
)]
pub struct ExplainArgs {
    /// Rule name, as listed by `lockstep rules`
    pub rule: String,
}

#[inline(never)] // see `cli::main`
pub fn run(args: ExplainArgs) -> anyhow::Result<u8> {
    let Some(rule) = rules::find(&args.rule) else {
        let hint = did_you_mean(&args.rule, RULES.iter().map(|r| r.name))
            .map_or(String::new(), |m| format!("; did you mean `{m}`?"));
        super::eprint_error(
            false,
            &format!(
                "unknown rule `{}`{hint} (`lockstep rules` lists them all)",
                args.rule
            ),
        );
        return Ok(super::EXIT_ERROR);
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let sev = rule
        .default_severity
        .map_or("off (enable with --select)", |s| s.as_str());
    writeln!(
        out,
        "# {}\n\nDefault severity: {sev}\n\n{}\n",
        rule.name, rule.summary
    )?;
    write!(out, "{}", rule.docs)?;
    out.flush()?;
    Ok(super::EXIT_OK)
}
