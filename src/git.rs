//! Which files changed, for `lint --changed-since REF`: files added, copied, modified or
//! renamed since the merge base of `REF` and `HEAD` (committed, staged or not), plus
//! untracked files that are not ignored. Runs the `git` command.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run `git` ({0}); --changed-since needs git installed")]
    Spawn(std::io::Error),
    #[error("{dir} is not inside a git repository (--changed-since needs one)")]
    NotARepo { dir: String },
    #[error("--changed-since {reference}: {message}")]
    Ref { reference: String, message: String },
    #[error("`git {args}` failed: {message}")]
    Failed { args: String, message: String },
}

fn git(dir: &Path, args: &[&str]) -> Result<Result<String, String>, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        Ok(Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("unknown error")
            .trim()
            .trim_start_matches("fatal: ")
            .to_string()))
    }
}

fn must(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    git(dir, args)?.map_err(|message| GitError::Failed {
        args: args.join(" "),
        message,
    })
}

/// The files changed since the merge base of `reference` and `HEAD`, as absolute paths
/// (canonicalised where they exist), for the repository containing `cwd`.
pub fn changed_since(cwd: &Path, reference: &str) -> Result<HashSet<PathBuf>, GitError> {
    let root = match git(cwd, &["rev-parse", "--show-toplevel"])? {
        Ok(r) => PathBuf::from(r.trim_end_matches(['\n', '\r'])),
        Err(_) => {
            return Err(GitError::NotARepo {
                dir: cwd.display().to_string(),
            })
        }
    };
    let base = match git(&root, &["merge-base", reference, "HEAD"])? {
        Ok(b) => b.trim().to_string(),
        Err(message) => {
            // `merge-base` says little when the ref is unknown: ask rev-parse for the reason.
            let message = match git(&root, &["rev-parse", "--verify", "--quiet", reference])? {
                Ok(_) => format!("no common ancestor with HEAD ({message})"),
                Err(_) => format!(
                    "unknown revision `{reference}` (in CI, fetch it first or clone with enough depth)"
                ),
            };
            return Err(GitError::Ref {
                reference: reference.to_string(),
                message,
            });
        }
    };
    // `-z` and `core.quotePath=false`: paths exactly as stored, whatever characters they hold.
    let diff = must(
        &root,
        &[
            "-c",
            "core.quotePath=false",
            "diff",
            "--name-only",
            "-z",
            "--diff-filter=ACMR",
            &base,
            "--",
        ],
    )?;
    let untracked = must(
        &root,
        &[
            "-c",
            "core.quotePath=false",
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
        ],
    )?;
    Ok(diff
        .split('\0')
        .chain(untracked.split('\0'))
        .filter(|p| !p.is_empty())
        .map(|p| {
            let abs = root.join(p);
            abs.canonicalize().unwrap_or(abs)
        })
        .collect())
}
