//! What the online-conversion commands share: the database connection, the async runtime,
//! Ctrl-C handling, and progress drawing (bars on a terminal, status lines in CI logs).

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IsTerminal, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_OK};
use crate::db::connect::ConnectOptions;
use crate::http::{self, Page};
use crate::playbook::engine::{self, EngineError, Finished, Progress};
use crate::playbook::hooks::Event;
use crate::report::run_status::{self, RunnerMetrics};

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// The database (URL or `key=value` string) [default: DATABASE_URL, else the libpq
    /// environment: PGHOST, PGPORT, PGUSER, PGDATABASE …]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl DbArgs {
    pub fn options(&self) -> Result<ConnectOptions, String> {
        let url = self
            .database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok());
        let o = ConnectOptions::resolve(url.as_deref()).map_err(|e| e.to_string())?;
        for w in o.warnings() {
            let _ = writeln!(io::stderr(), "warning: {w}");
        }
        Ok(o)
    }
}

/// Which run a command acts on, and where the database is.
#[derive(Debug, Clone, Args)]
pub struct RunRef {
    /// The run id [default: the most recent run]
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// `--takeover` of the commands that take a run's lock.
#[derive(Debug, Clone, Args)]
pub struct TakeoverArg {
    /// When another session holds the run's lock but is provably not a live runner (idle,
    /// outside a transaction, no runner heartbeat for 15 s: a client killed behind a pooler,
    /// or a lost network connection), end that session and go on
    #[arg(long)]
    pub takeover: bool,
}

/// Connects (errors: one line, exit 2) and runs `f` with the client on a fresh runtime.
pub fn with_client<F, Fut>(db: &DbArgs, color: bool, f: F) -> anyhow::Result<u8>
where
    F: FnOnce(tokio_postgres::Client) -> Fut,
    Fut: Future<Output = u8>,
{
    connect_then(db, color, false, |c, _, _| f(c))
}

/// Connects twice (the second connection watches long statements; without it there is
/// simply less progress) and runs `f` with both, and the options to connect again (for the
/// lanes of a partition run).
pub fn with_clients<F, Fut>(db: &DbArgs, color: bool, f: F) -> anyhow::Result<u8>
where
    F: FnOnce(tokio_postgres::Client, Option<tokio_postgres::Client>, ConnectOptions) -> Fut,
    Fut: Future<Output = u8>,
{
    connect_then(db, color, true, f)
}

fn connect_then<F, Fut>(db: &DbArgs, color: bool, monitor: bool, f: F) -> anyhow::Result<u8>
where
    F: FnOnce(tokio_postgres::Client, Option<tokio_postgres::Client>, ConnectOptions) -> Fut,
    Fut: Future<Output = u8>,
{
    let conn = match db.options() {
        Ok(c) => c,
        Err(m) => {
            eprint_error(color, &m);
            return Ok(EXIT_ERROR);
        }
    };
    block_on(async {
        match conn.connect().await {
            Ok(client) => {
                let monitor = if monitor {
                    conn.connect().await.ok()
                } else {
                    None
                };
                f(client, monitor, conn.clone()).await
            }
            Err(e) => {
                eprint_error(color, &e.to_string());
                EXIT_ERROR
            }
        }
    })
}

/// Prints the outcome's sentence on success, or the error, for an engine command.
/// The commands that end what a run did, one way or the other: the same connections and
/// progress, one engine call each.
#[derive(Debug, Clone, Copy)]
pub enum Ending {
    Rollback,
    SyncBack,
    Finalize,
}

/// Runs `which` on the run `t` names (the latest by default) and prints how it ended.
pub fn end_run(which: Ending, t: RunRef, takeover: &TakeoverArg) -> anyhow::Result<u8> {
    let color = t.color.enabled();
    let takeover = takeover.takeover;
    with_clients(&t.db, color, |client, monitor, conn| async move {
        let stop = AtomicBool::new(false);
        let mut drawer = Drawer::new();
        let mut ctx = engine::Ctx {
            client: &client,
            progress: &mut drawer,
            stop: &stop,
            monitor: monitor.as_ref(),
            connect: Some(&conn),
            takeover,
        };
        let id = t.run.as_deref();
        let r = match which {
            Ending::Rollback => engine::rollback(&mut ctx, id).await,
            Ending::SyncBack => engine::sync_back(&mut ctx, id).await,
            Ending::Finalize => engine::finalize(&mut ctx, id).await,
        };
        drop(drawer);
        finished(color, r)
    })
}

pub fn finished(color: bool, r: Result<Finished, EngineError>) -> u8 {
    match r {
        Ok(f) => {
            let _ = writeln!(io::stdout(), "{}", f.message);
            EXIT_OK
        }
        Err(e) => fail(color, &e),
    }
}

/// Prints `done(id)` on success, or the error, for an engine command.
pub fn report(color: bool, r: Result<String, EngineError>, done: impl Fn(&str) -> String) -> u8 {
    match r {
        Ok(id) => {
            let _ = writeln!(io::stdout(), "{}", done(&id));
            EXIT_OK
        }
        Err(e) => fail(color, &e),
    }
}

/// Runs `f` on a fresh single-threaded runtime.
pub fn block_on<T>(f: impl Future<Output = T>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(rt.block_on(f))
}

/// A flag set by the first Ctrl-C (stop at the next safe point); a second one exits.
pub fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            ask_to_stop(&f, "Ctrl-C", 130);
        }
    });
    // SIGTERM (systemd, CI runners, `kill`) stops at a safe point the same way.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            let f = flag.clone();
            tokio::spawn(async move {
                while term.recv().await.is_some() {
                    ask_to_stop(&f, "SIGTERM", 143);
                }
            });
        }
    }
    flag
}

/// The first signal asks the run to stop at its next safe point; a second one exits at once
/// with `code` (nothing is lost: the run resumes from its last checkpoint).
fn ask_to_stop(flag: &AtomicBool, what: &str, code: i32) {
    if flag.swap(true, Ordering::SeqCst) {
        let _ = writeln!(
            io::stderr(),
            "\nsecond {what}: exiting now (the run can be resumed)"
        );
        std::process::exit(code);
    }
    let _ = writeln!(
        io::stderr(),
        "\n{what}: stopping at the next safe point ({what} again to exit at once)…"
    );
}

/// Prints an engine error and returns the exit code for it.
pub fn fail(color: bool, e: &EngineError) -> u8 {
    eprint_error(color, &e.to_string());
    match e {
        EngineError::Stopped(_) => 130,
        EngineError::Refused(_) | EngineError::Mismatch { .. } | EngineError::SwapGaveUp { .. } => {
            1
        }
        _ => EXIT_ERROR,
    }
}

/// Draws progress: indicatif bars on a terminal, a plain line every few seconds otherwise.
pub struct Drawer {
    bar: Option<ProgressBar>,
    tty: bool,
    last_line: Instant,
    step: String,
    /// Without a terminal: the latest progress line not printed yet (lines come every 5 s),
    /// printed when the step ends so that the log shows where it ended.
    pending: Option<String>,
}

impl Drawer {
    pub fn new() -> Drawer {
        Drawer {
            bar: None,
            tty: io::stderr().is_terminal(),
            last_line: Instant::now() - Duration::from_secs(60),
            step: String::new(),
            pending: None,
        }
    }

    fn finish_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
        if let Some(line) = self.pending.take() {
            let _ = writeln!(io::stderr(), "{line}");
        }
    }
}

impl Default for Drawer {
    fn default() -> Self {
        Drawer::new()
    }
}

impl Drop for Drawer {
    fn drop(&mut self) {
        self.finish_bar();
    }
}

impl Progress for Drawer {
    fn step(&mut self, name: &str, detail: &str) {
        if name != self.step {
            self.finish_bar();
        }
        self.step = name.to_string();
        let line = format!("{name}: {detail}");
        match &self.bar {
            Some(b) if self.tty => b.set_message(line),
            _ => {
                let _ = writeln!(io::stderr(), "{line}");
            }
        }
    }

    fn copy(&mut self, copied: i64, total: i64, rate: f64) {
        let total = total.max(copied).max(1) as u64;
        if self.tty {
            let bar = self.bar.get_or_insert_with(|| {
                let b = ProgressBar::new(total);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg:12} [{bar:40}] {human_pos}/{human_len} rows  {per_sec}  ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b
            });
            bar.set_message(self.step.clone());
            bar.set_length(total);
            bar.set_position(copied as u64);
        } else {
            let eta = if rate > 0.0 {
                format!(
                    ", ETA {:.0} s",
                    (total as f64 - copied as f64).max(0.0) / rate
                )
            } else {
                String::new()
            };
            let line = format!(
                "{}: {copied}/{total} rows ({:.0}%){}{eta}",
                self.step,
                copied as f64 * 100.0 / total as f64,
                if rate > 0.0 {
                    format!(", {rate:.0} rows/s")
                } else {
                    String::new()
                }
            );
            if self.last_line.elapsed() >= Duration::from_secs(5) {
                self.last_line = Instant::now();
                self.pending = None;
                let _ = writeln!(io::stderr(), "{line}");
            } else {
                self.pending = Some(line);
            }
        }
    }

    fn note(&mut self, message: &str) {
        match &self.bar {
            Some(b) if self.tty => b.println(message),
            _ => {
                let _ = writeln!(io::stderr(), "{message}");
            }
        }
    }
}

/// `--metrics-listen`, for the commands that run a playbook.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics while the run works (ADDR is
    /// host:port; port 0 picks a free one, printed on standard error)
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

impl MetricsArgs {
    /// Binds the address, before the run starts (an error is one line, exit 2).
    pub async fn listen(&self) -> Result<Option<tokio::net::TcpListener>, String> {
        let Some(addr) = &self.metrics_listen else {
            return Ok(None);
        };
        let l = tokio::net::TcpListener::bind(addr.as_str())
            .await
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        if let Ok(a) = l.local_addr() {
            let _ = writeln!(io::stderr(), "metrics: serving http://{a}/metrics");
        }
        Ok(Some(l))
    }
}

/// A progress sink that also counts what `/metrics` shows.
pub struct Metered<'a> {
    inner: &'a mut dyn Progress,
    metrics: Rc<RefCell<RunnerMetrics>>,
}

impl<'a> Metered<'a> {
    pub fn new(inner: &'a mut dyn Progress, metrics: Rc<RefCell<RunnerMetrics>>) -> Metered<'a> {
        Metered { inner, metrics }
    }
}

impl Progress for Metered<'_> {
    fn step(&mut self, name: &str, detail: &str) {
        self.metrics.borrow_mut().step = name.to_string();
        self.inner.step(name, detail);
    }

    fn copy(&mut self, copied: i64, total: i64, rows_per_sec: f64) {
        {
            let mut m = self.metrics.borrow_mut();
            m.rows_done = copied;
            m.rows_total = total.max(copied);
            m.rows_per_second = rows_per_sec;
        }
        self.inner.copy(copied, total, rows_per_sec);
    }

    fn note(&mut self, message: &str) {
        self.inner.note(message);
    }

    fn event(&mut self, event: &Event) {
        self.metrics.borrow_mut().event(event);
        self.inner.event(event);
    }
}

/// Runs `work`, serving `/metrics` on `listener` meanwhile: the runner's own counters and
/// the state of every run with a live runner, read on a connection of its own at each
/// scrape.
pub async fn serving<T>(
    listener: Option<tokio::net::TcpListener>,
    conn: &ConnectOptions,
    metrics: Rc<RefCell<RunnerMetrics>>,
    work: impl Future<Output = T>,
) -> T {
    let Some(listener) = listener else {
        return work.await;
    };
    let client = conn
        .with_application_name("lockstep metrics")
        .connect()
        .await
        .ok()
        .map(Rc::new);
    let page = move |path: String| {
        let metrics = metrics.clone();
        let client = client.clone();
        async move {
            if path != "/metrics" && !path.starts_with("/metrics?") {
                return Page {
                    status: 404,
                    content_type: "text/plain; charset=utf-8",
                    body: "lockstep serves /metrics only\n".to_string(),
                };
            }
            let mut body = run_status::runner_prometheus(&metrics.borrow());
            if let Some(c) = &client {
                if let Ok(runs) = engine::status_all(c).await {
                    let live: Vec<_> = runs.into_iter().filter(|r| r.runner().is_some()).collect();
                    body.push_str(&run_status::prometheus(&live));
                }
            }
            Page {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body,
            }
        }
    };
    tokio::select! {
        r = work => r,
        () = http::serve(listener, page) => unreachable!("the server never ends"),
    }
}
