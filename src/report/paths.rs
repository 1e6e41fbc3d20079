//! Paths as CI systems want them: relative to the repository root, with `/` separators.
//!
//! The repository root is the first directory, walking up from the working directory, that
//! holds a `.git` entry (a directory, or a file in a worktree or submodule); without one, the
//! working directory itself. A file's path is made absolute against the working directory,
//! normalised lexically (`.` and `..` removed, symlinks not resolved), then made relative to
//! that root. A file outside the root keeps its absolute path.

use std::path::{Component, Path, PathBuf};

use crate::files::normalize;

/// The first directory at or above `cwd` holding `.git`, else `cwd`.
pub fn repo_root(cwd: &Path) -> PathBuf {
    cwd.ancestors()
        .find(|d| d.join(".git").symlink_metadata().is_ok())
        .unwrap_or(cwd)
        .to_path_buf()
}

/// Turns displayed paths into repository-relative ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPaths {
    cwd: PathBuf,
    root: PathBuf,
}

/// A file's location for a CI report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoPath {
    /// Below the repository root: `migrations/0001_init.sql`.
    Relative(String),
    /// Outside it: `/srv/other/0001_init.sql`.
    Absolute(String),
}

impl RepoPath {
    /// The path with `/` separators (absolute ones start with `/`).
    pub fn as_str(&self) -> &str {
        match self {
            RepoPath::Relative(s) | RepoPath::Absolute(s) => s,
        }
    }

    /// The path as a URI reference: relative paths percent-encoded, absolute ones as
    /// `file://` URIs.
    pub fn uri(&self) -> String {
        match self {
            RepoPath::Relative(s) => percent_encode_path(s),
            RepoPath::Absolute(s) if s.starts_with('/') => {
                format!("file://{}", percent_encode_path(s))
            }
            // A Windows path such as `C:/x`: `file:///C:/x`.
            RepoPath::Absolute(s) => format!("file:///{}", percent_encode_path(s)),
        }
    }
}

impl RepoPaths {
    /// Paths relative to `root`, for a run started in `cwd`.
    pub fn new(cwd: &Path, root: &Path) -> RepoPaths {
        RepoPaths {
            cwd: cwd.to_path_buf(),
            root: normalize(root, cwd),
        }
    }

    /// Finds the repository root from `cwd`.
    pub fn discover(cwd: &Path) -> RepoPaths {
        RepoPaths::new(cwd, &repo_root(cwd))
    }

    /// The repository-relative form of a path as displayed in reports.
    pub fn of(&self, displayed: &str) -> RepoPath {
        let abs = normalize(Path::new(displayed), &self.cwd);
        match abs.strip_prefix(&self.root) {
            Ok(rel) => RepoPath::Relative(slash_join(rel)),
            Err(_) => RepoPath::Absolute(slash_join(&abs)),
        }
    }
}

/// Joins the components of `p` with `/` (a Unix root stays a leading `/`).
fn slash_join(p: &Path) -> String {
    let mut out = String::new();
    for c in p.components() {
        match c {
            Component::RootDir => out.push('/'),
            Component::Prefix(pre) => out.push_str(&pre.as_os_str().to_string_lossy()),
            Component::CurDir => {}
            Component::ParentDir => push_part(&mut out, ".."),
            Component::Normal(s) => push_part(&mut out, &s.to_string_lossy()),
        }
    }
    out
}

fn push_part(out: &mut String, part: &str) {
    if !out.is_empty() && !out.ends_with('/') {
        out.push('/');
    }
    out.push_str(part);
}

/// Percent-encodes everything in a path but unreserved characters (RFC 3986: letters, digits,
/// `-._~`) and `/`, so the result is a valid URI reference whatever the file is called
/// (spaces, `%`, `#`, `?`, a `:` in the first segment, non-ASCII).
pub fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_root_with_forward_slashes() {
        let p = RepoPaths::new(Path::new("/repo/db"), Path::new("/repo"));
        assert_eq!(
            p.of("migrations/./a.sql"),
            RepoPath::Relative("db/migrations/a.sql".into())
        );
        assert_eq!(
            p.of("../other/x.sql"),
            RepoPath::Relative("other/x.sql".into())
        );
        assert_eq!(
            p.of("/repo/db/m/1.sql"),
            RepoPath::Relative("db/m/1.sql".into())
        );
        assert_eq!(
            p.of("/elsewhere/1.sql"),
            RepoPath::Absolute("/elsewhere/1.sql".into())
        );
        assert_eq!(p.of("../../x.sql").uri(), "file:///x.sql");
    }

    #[test]
    fn uris_are_percent_encoded() {
        let rel = RepoPath::Relative("db/my file%#?:ü.sql".into());
        assert_eq!(rel.uri(), "db/my%20file%25%23%3F%3A%C3%BC.sql");
        let abs = RepoPath::Absolute("/tmp/a b.sql".into());
        assert_eq!(abs.uri(), "file:///tmp/a%20b.sql");
    }

    #[test]
    fn the_root_is_the_nearest_directory_with_git() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(dir.path().join("a/.git"), "gitdir: elsewhere\n").unwrap();
        assert_eq!(repo_root(&sub), dir.path().join("a"));
        let plain = tempfile::tempdir().unwrap();
        // No .git above a fresh temp dir (unless the temp dir lives in a repository).
        if plain.path().ancestors().all(|d| !d.join(".git").exists()) {
            assert_eq!(repo_root(plain.path()), plain.path());
        }
    }
}
