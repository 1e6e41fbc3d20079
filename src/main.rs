use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(lockstep::cli::main())
}
