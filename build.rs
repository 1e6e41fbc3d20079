//! Links the `lockstep` binary with packed relative relocations (`-z pack-relative-relocs`)
//! where the toolchain and the C library support them (GNU ld or lld on glibc 2.36 or
//! later): the ten thousand relocations of the position-independent binary take 3 KB
//! instead of 230 KB, which the loader reads at every start. A short `lockstep lint` touches
//! 0.3 to 0.4 MiB less memory (README, Speed). Elsewhere the binary is linked as before.
//!
//! A release build linked by lld also gets `--symbol-ordering-file=scripts/hot-text.txt`:
//! the functions `lockstep lint` runs are placed side by side, so a short lint maps 2 MB of
//! code instead of 6 MB (see `scripts/hot-text.sh`, which writes the list). Names the
//! binary does not have are ignored; another linker links as before.

// A build script talks to Cargo on standard output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-gnu") {
        return;
    }
    if links_with_packed_relocations() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/hot-text.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    if std::env::var("PROFILE").as_deref() == Ok("release")
        && order.is_file()
        && rustc_links_with(&order_args(&order))
    {
        for arg in order_args(&order) {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}

fn order_args(order: &std::path::Path) -> [String; 2] {
    [
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_string(),
    ]
}

/// Links an empty Rust program for the target with `args` the way Cargo links the binary
/// (same rustc, target and flags): only lld knows `--symbol-ordering-file`.
fn rustc_links_with(args: &[String]) -> bool {
    let (Some(dir), Some(rustc)) = (
        std::env::var_os("OUT_DIR").map(PathBuf::from),
        std::env::var_os("RUSTC"),
    ) else {
        return false;
    };
    let src = dir.join("order_probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let mut cmd = Command::new(rustc);
    cmd.arg("--crate-type=bin")
        .arg("--out-dir")
        .arg(&dir)
        .arg(&src);
    if let Ok(target) = std::env::var("TARGET") {
        cmd.arg("--target").arg(target);
    }
    if let Some(linker) = std::env::var_os("RUSTC_LINKER") {
        cmd.arg("-C")
            .arg(format!("linker={}", linker.to_string_lossy()));
    }
    if let Ok(flags) = std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        cmd.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    }
    for a in args {
        cmd.arg("-C").arg(format!("link-arg={a}"));
    }
    matches!(cmd.output(), Ok(o) if o.status.success())
}

/// Links a small C program with the option: it must succeed without a word on standard
/// error (an older GNU ld ignores an unknown `-z` option with a warning; a C library without
/// `GLIBC_ABI_DT_RELR` fails the link).
fn links_with_packed_relocations() -> bool {
    let Some(dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let src = dir.join("relr_probe.c");
    let exe = dir.join("relr_probe");
    if std::fs::write(&src, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    let out = Command::new("cc")
        .arg("-pie")
        .arg("-fPIE")
        .arg("-Wl,-z,pack-relative-relocs")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output();
    matches!(out, Ok(o) if o.status.success() && o.stderr.is_empty())
        && Command::new(&exe).status().is_ok_and(|s| s.success())
}
