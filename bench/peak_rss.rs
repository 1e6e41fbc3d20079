//! Runs a command and prints `<cpu seconds> <wall seconds> <peak RSS KiB>` of that command
//! alone, on standard error, with the command's own output discarded.
//!
//! A process's peak resident set (`ru_maxrss`) includes the memory of the process it was
//! forked from, so measuring from a large interpreter sets a floor under every figure. This
//! launcher is small, so the peak it reports is the command's. Linux only (64-bit).
//!
//! Built by bench/lint_speed.py: `rustc -O bench/peak_rss.rs -o target/bench/peak_rss`.

use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// `struct rusage` on 64-bit Linux: two `timeval`s, then fourteen `long`s.
#[repr(C)]
struct Rusage([i64; 18]);

extern "C" {
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: peak_rss COMMAND [ARG ...]");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let child = match Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("peak_rss: cannot run {program}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut status = 0;
    let mut usage = Rusage([0; 18]);
    // SAFETY: `child` is our child, not reaped yet; both pointers are valid for writes.
    let pid = unsafe { wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    if pid < 0 {
        eprintln!("peak_rss: wait4 failed: {}", std::io::Error::last_os_error());
        return ExitCode::from(2);
    }
    let u = &usage.0;
    let cpu = (u[0] + u[2]) as f64 + (u[1] + u[3]) as f64 / 1e6;
    eprintln!("{cpu:.6} {wall:.6} {}", u[4]);
    ExitCode::SUCCESS
}
