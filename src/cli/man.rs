//! `lockstep man`: print (or write) roff man pages generated from the clap definitions.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, CommandFactory};
use clap_mangen::Man;

use super::{Cli, EXIT_OK};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lockstep man | man -l -                  read the main page\n  \
lockstep man lint | man -l -             read the page of `lockstep lint`\n  \
lockstep man --dir ~/.local/share/man/man1\n                                           \
install lockstep.1, lockstep-lint.1, ... (then: man lockstep-lint)")]
pub struct ManArgs {
    /// Print the page of this subcommand (e.g. `lint`) instead of the main page
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
    pub subcommand: Option<String>,

    /// Write lockstep.1 and one lockstep-<subcommand>.1 per subcommand into DIR
    /// (created if missing) instead of printing
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The top-level command as the man pages describe it: built (so subcommands carry their
/// `lockstep-<name>` display names and full usage) and without clap's `help` subcommand.
fn root() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every page: the main one first, then one per visible subcommand (recursively).
fn pages(cmd: &clap::Command) -> Vec<clap::Command> {
    fn walk(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
        out.push(cmd.clone());
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, &mut out);
    out
}

/// A page with lockstep's name and version in its footer (clap_mangen would put the bare
/// subcommand name there, since subcommands carry no version of their own).
fn man(cmd: clap::Command) -> Man {
    Man::new(cmd)
        .source(format!("lockstep {}", env!("CARGO_PKG_VERSION")))
        .manual("lockstep manual")
}

fn render(cmd: clap::Command) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    man(cmd).render(&mut buf)?;
    Ok(buf)
}

fn write_dir(root: &clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut written = Vec::new();
    for cmd in pages(root) {
        let page = man(cmd);
        let path = dir.join(page.get_filename());
        let mut buf = Vec::new();
        page.render(&mut buf)?;
        fs::write(&path, buf).with_context(|| format!("cannot write `{}`", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[inline(never)] // see `cli::main`
pub fn run(args: ManArgs) -> anyhow::Result<u8> {
    let root = root();
    if let Some(dir) = &args.dir {
        let written = write_dir(&root, dir)?;
        let mut err = io::stderr().lock();
        for path in written {
            writeln!(err, "wrote {}", path.display())?;
        }
        return Ok(EXIT_OK);
    }
    let page = match &args.subcommand {
        None => render(root)?,
        Some(name) => {
            let Some(sub) = root.find_subcommand(name).filter(|s| !s.is_hide_set()) else {
                let names: Vec<&str> = root
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(|s| s.get_name())
                    .collect();
                bail!(
                    "no subcommand `{name}`; man pages exist for: {}",
                    names.join(", ")
                );
            };
            render(sub.clone())?
        }
    };
    let mut out = io::stdout().lock();
    out.write_all(&page)?;
    out.flush()?;
    Ok(EXIT_OK)
}
