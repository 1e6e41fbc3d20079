//! The signals that end a command owning a throwaway PostgreSQL (`trace`, `demo`): SIGINT
//! (Ctrl-C), SIGTERM (`kill`, CI runners, systemd) and SIGHUP (the terminal closed). Once
//! [`Interrupts::register`] has run, none of them kills the process: the command notices,
//! stops its work, removes the cluster and exits with 128 + the signal's number. A signal that
//! arrives while the cluster is still starting is remembered and acted on as soon as it is up.
//! What no handler can see (SIGKILL) is the cluster's watchdog's job (`db::cluster`).

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::eprint_error;
use crate::db::cluster::TempCluster;
use crate::db::connect::ConnectOptions;

/// One of the handled signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    Int,
    Term,
    Hup,
}

impl Interrupt {
    /// How the message names it.
    pub fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "interrupted (SIGINT)",
            Interrupt::Term => "terminated (SIGTERM)",
            Interrupt::Hup => "hung up (SIGHUP)",
        }
    }

    /// The exit code: 128 + the signal's number, as a shell reports a death by it.
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::Int => 130,
            Interrupt::Term => 143,
            Interrupt::Hup => 129,
        }
    }
}

/// The registered handlers.
pub struct Interrupts {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Interrupts {
    /// Registers the handlers; call inside a tokio runtime (`Runtime::enter`), before starting
    /// anything that must be cleaned up.
    pub fn register() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal (at once if one came since registration).
    pub async fn recv(&mut self) -> Interrupt {
        tokio::select! {
            _ = self.int.recv() => Interrupt::Int,
            _ = self.term.recv() => Interrupt::Term,
            _ = self.hup.recv() => Interrupt::Hup,
        }
    }
}

/// A single-threaded runtime with the handlers registered in it: call before starting a
/// throwaway cluster.
pub fn runtime() -> anyhow::Result<(tokio::runtime::Runtime, Interrupts)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let interrupts = {
        let _in_runtime = rt.enter();
        Interrupts::register().context("cannot install the signal handlers")?
    };
    Ok((rt, interrupts))
}

/// Starts a throwaway cluster and resolves how to connect to its `postgres` database; on
/// failure prints the error and returns `None`.
pub fn start_cluster(color: bool) -> Option<(TempCluster, ConnectOptions)> {
    let cluster = match TempCluster::start() {
        Ok(c) => c,
        Err(e) => {
            eprint_error(color, &format!("cannot start a throwaway PostgreSQL: {e}"));
            return None;
        }
    };
    match cluster.connect_options("postgres") {
        Ok(conn) => Some((cluster, conn)),
        Err(e) => {
            eprint_error(color, &e.to_string());
            None
        }
    }
}
