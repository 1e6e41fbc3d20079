//! `lockstep completions <shell>`: print a shell completion script.

use std::io::{self, Write};

use clap::builder::PossibleValuesParser;
use clap::{Args, Command, CommandFactory};
use clap_complete::Shell;

use super::{Cli, EXIT_OK};

#[derive(Debug, Args)]
#[command(after_help = "Examples (and where each shell expects the script):\n  \
bash        lockstep completions bash > ~/.local/share/bash-completion/completions/lockstep\n  \
zsh         lockstep completions zsh > ~/.zfunc/_lockstep\n              \
(and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath))\n  \
fish        lockstep completions fish > ~/.config/fish/completions/lockstep.fish\n  \
powershell  lockstep completions powershell >> $PROFILE\n  \
elvish      lockstep completions elvish > ~/.config/elvish/lib/lockstep.elv\n              \
(and in ~/.config/elvish/rc.elv: use lockstep)\n\n\
Open a new shell afterwards. Regenerate the script after upgrading lockstep. Rule names\n\
complete after `lockstep explain`, `--select` and `--ignore`.")]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

#[inline(never)] // see `cli::main`
pub fn run(args: CompletionsArgs) -> anyhow::Result<u8> {
    // clap_complete panics on a failed write (a closed pipe, for one), so generate into
    // memory and write it out ourselves.
    let mut script = Vec::new();
    let mut cmd = with_rule_names(Cli::command());
    clap_complete::generate(args.shell, &mut cmd, "lockstep", &mut script);
    let mut out = io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(EXIT_OK)
}

/// The command line as the completion scripts see it: rule names as the possible values of
/// `explain RULE`, `lint --select` and `lint --ignore` (with `all` for the two flags). Only
/// the scripts get them: parsing keeps lockstep's own checks, with their "did you mean".
fn with_rule_names(cmd: Command) -> Command {
    let names: Vec<&'static str> = crate::lint::rules::RULES.iter().map(|r| r.name).collect();
    let with_all: Vec<&'static str> = std::iter::once("all")
        .chain(names.iter().copied())
        .collect();
    cmd.mut_subcommand("explain", |c| {
        c.mut_arg("rule", |a| {
            a.value_parser(PossibleValuesParser::new(names.clone()))
        })
    })
    .mut_subcommand("lint", |c| {
        c.mut_arg("select", |a| {
            a.value_parser(PossibleValuesParser::new(with_all.clone()))
        })
        .mut_arg("ignore", |a| {
            a.value_parser(PossibleValuesParser::new(with_all.clone()))
        })
    })
}
