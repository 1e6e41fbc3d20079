//! Running the `lockstep` binary in a test: a temporary directory with files in it, the
//! command with the colour variables removed, and its outcome.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

pub fn tmp() -> TempDir {
    tempfile::tempdir().expect("create temp dir")
}

/// Writes `contents` to `dir/rel`, creating parent directories.
pub fn write(dir: &Path, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    fs::write(&p, contents).expect("write file");
    p
}

/// The binary, run in `dir`, with colour-related variables and `DATABASE_URL` removed.
pub fn lockstep(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lockstep").expect("binary built");
    c.current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("DATABASE_URL");
    c
}

/// What a run printed and how it exited.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd`, asserting it did not panic.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run lockstep");
    let r = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked"),
        "lockstep panicked:\n{}",
        r.stderr
    );
    r
}
