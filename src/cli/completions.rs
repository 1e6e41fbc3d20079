//! `lockstep completions <shell>`: print a shell completion script.

use std::io::{self, Write};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, EXIT_OK};

#[derive(Debug, Args)]
#[command(after_help = "Where to put the script:\n  \
bash        lockstep completions bash > ~/.local/share/bash-completion/completions/lockstep\n  \
zsh         lockstep completions zsh > ~/.zfunc/_lockstep\n              \
(and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath))\n  \
fish        lockstep completions fish > ~/.config/fish/completions/lockstep.fish\n  \
powershell  lockstep completions powershell >> $PROFILE\n  \
elvish      lockstep completions elvish > ~/.config/elvish/lib/lockstep.elv\n              \
(and in ~/.config/elvish/rc.elv: use lockstep)\n\n\
Open a new shell afterwards. Regenerate the script after upgrading lockstep.")]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<u8> {
    // clap_complete panics on a failed write (a closed pipe, for one), so generate into
    // memory and write it out ourselves.
    let mut script = Vec::new();
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "lockstep", &mut script);
    let mut out = io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(EXIT_OK)
}
