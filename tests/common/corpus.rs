//! The corpus of real migration histories, `../shared/corpus` from the repository root.

use std::path::{Path, PathBuf};

/// The corpus directory, or `None` (with a message saying the test is skipped) when absent.
pub fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (the corpus of real migration histories)",
            dir.display()
        );
        None
    }
}
