use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::apply::load_and_lint;
use super::online::{self, DbArgs};
use super::{eprint_error, ColorChoice, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::apply::{Loaded, Target};
use crate::fleet::{self, Fleet, FleetStatus, Job, Outcome, Report, TargetResult, Wave, Work};

/// Roll a change out across many databases or schemas: a canary, then waves.
#[derive(Debug, Args)]
#[command(
    after_help = "The fleet file (TOML) names the targets (connection strings, services, and discovery\n\
queries returning databases or schemas) and what runs on each: a directory of SQL migrations\n\
(linted first, applied like `lockstep apply`) or a playbook. Every target keeps its own record,\n\
so `status` rebuilds the rollout from the targets, from any machine.\n\n\
Exit codes:\n  0  every target done\n  1  the rollout halted (a failed target, lint errors in what a target has to apply), or targets are left\n  2  usage error, bad fleet file, no connection for discovery\n\n\
Examples:\n  lockstep fleet plan fleet.toml\n  lockstep fleet run fleet.toml\n  lockstep fleet status fleet.toml --format json\n  lockstep fleet resume fleet.toml     # after fixing what halted it"
)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Lint, find the targets, and show the waves and what each target has left (no writes)
    Plan(FleetRef),
    /// Roll out: the canary, then each wave; halts past the error budget
    Run(FleetRef),
    /// Every target's state and migration version, rebuilt from the targets
    Status(FleetStatusArgs),
    /// Continue a halted or interrupted rollout, trying failed targets again
    Resume(FleetRef),
}

/// A fleet file and the default connection.
#[derive(Debug, Args)]
pub struct FleetRef {
    /// The fleet file (TOML)
    #[arg(value_name = "FLEET")]
    pub fleet: PathBuf,
    /// The connection for `[[targets.discover]]` entries without a `url`
    #[command(flatten)]
    pub db: DbArgs,
    /// When to colour error messages
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Args)]
pub struct FleetStatusArgs {
    #[command(flatten)]
    pub target: FleetRef,
    /// text or json (versioned schema, see the README)
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[inline(never)] // see `cli::main`
pub fn run(args: FleetArgs) -> anyhow::Result<u8> {
    match args.command {
        FleetCommand::Plan(r) => with_fleet(&r, plan),
        FleetCommand::Run(r) => with_fleet(&r, |f, l, t, c| roll(f, l, t, c, false)),
        FleetCommand::Resume(r) => with_fleet(&r, |f, l, t, c| roll(f, l, t, c, true)),
        FleetCommand::Status(s) => {
            let format = s.format;
            with_fleet(&s.target, move |f, l, t, c| status(f, l, t, c, format))
        }
    }
}

/// Loads the fleet (and lints its migrations, printing the findings), finds its targets,
/// and runs `then`.
fn with_fleet<F, Fut>(r: &FleetRef, then: F) -> anyhow::Result<u8>
where
    F: FnOnce(Fleet, Option<Loaded>, Vec<Target>, bool) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let color = r.color.enabled();
    let fail = |m: &str| {
        eprint_error(color, m);
        Ok(EXIT_ERROR)
    };
    let fleet = match fleet::load(&r.fleet) {
        Ok(f) => f,
        Err(e) => return fail(&e.to_string()),
    };
    let loaded = match &fleet.work {
        Work::Migrations(dir) => match load_and_lint(dir, color) {
            Ok(l) => Some(l),
            Err(m) => return fail(&m),
        },
        Work::Playbook { .. } => None,
    };
    let default = match r.db.options() {
        Ok(o) => o,
        Err(m) => return fail(&m),
    };
    online::block_on(async {
        let targets = match fleet::targets(&fleet, &default).await {
            Ok(t) if t.is_empty() => {
                eprint_error(
                    color,
                    "the fleet has no targets (the discovery queries returned nothing)",
                );
                return EXIT_ERROR;
            }
            Ok(t) => t,
            Err(e) => {
                eprint_error(color, &e.to_string());
                return EXIT_ERROR;
            }
        };
        then(fleet, loaded, targets, color).await
    })
}

fn job<'a>(fleet: &'a Fleet, loaded: &'a Option<Loaded>) -> Option<Job<'a>> {
    Job::of(fleet, loaded.as_ref())
}

/// How many targets are read at once for `plan` and `status`.
const READERS: usize = 16;

fn describe(fleet: &Fleet, loaded: &Option<Loaded>, targets: &[Target]) -> String {
    let what = match (&fleet.work, loaded) {
        (Work::Migrations(d), Some(l)) => format!(
            "{} migration{} from {} (lint: {} error{})",
            l.migrations.len(),
            if l.migrations.len() == 1 { "" } else { "s" },
            d.display(),
            l.errors().count(),
            if l.errors().count() == 1 { "" } else { "s" }
        ),
        (Work::Playbook { path, playbook, .. }, _) => format!(
            "playbook {} ({} on {})",
            path.display(),
            playbook.kind_name(),
            playbook.common.table
        ),
        _ => String::new(),
    };
    let schemas = targets.iter().filter(|t| t.schema.is_some()).count();
    format!(
        "fleet {}: {what}; {} target{} ({} database{}, {schemas} schema{})",
        fleet.path.display(),
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
        targets.len() - schemas,
        if targets.len() - schemas == 1 {
            ""
        } else {
            "s"
        },
        if schemas == 1 { "" } else { "s" },
    )
}

async fn plan(fleet: Fleet, loaded: Option<Loaded>, targets: Vec<Target>, _color: bool) -> u8 {
    let Some(job) = job(&fleet, &loaded) else {
        return EXIT_ERROR;
    };
    let st = fleet::status(&fleet, &job, &targets, READERS).await;
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", describe(&fleet, &loaded, &targets));
    let r = &fleet.rollout;
    let _ = writeln!(
        out,
        "rollout: canary {}, waves of {}, {} at once, error budget {} failed target(s); lock_timeout {} ms, {} attempts{}",
        r.canary.min(targets.len()),
        if r.wave_size == 0 {
            "all the rest".to_string()
        } else {
            r.wave_size.to_string()
        },
        r.concurrency,
        r.error_budget.tolerated(targets.len()),
        fleet.locks.lock_timeout_ms,
        fleet.locks.attempts,
        fleet
            .locks
            .lock_budget
            .map_or(String::new(), |b| format!(", lock budget {} ms per target", b.as_millis()))
    );
    for w in fleet::waves(targets.len(), &fleet.rollout) {
        let left = st.targets[w.targets.clone()]
            .iter()
            .filter(|t| t.state != fleet::TargetState::UpToDate)
            .count();
        let _ = writeln!(
            out,
            "{} ({} target{}, {left} with work left)",
            w.name,
            w.targets.len(),
            if w.targets.len() == 1 { "" } else { "s" }
        );
        for t in &st.targets[w.targets.clone()] {
            let _ = writeln!(out, "  {}", target_line(t, st.migrations));
        }
    }
    EXIT_OK
}

fn target_line(t: &fleet::TargetStatus, migrations: Option<usize>) -> String {
    let version = match (&t.version, migrations) {
        (Some(v), Some(n)) => format!(" at {v} ({}/{n})", t.applied),
        (None, Some(n)) => format!(" (0/{n})"),
        (Some(v), None) => format!(" at step {v}"),
        (None, None) => String::new(),
    };
    let error = t
        .error
        .as_deref()
        .map_or(String::new(), |e| format!(": {e}"));
    format!("{:<11} {}{version}{error}", t.state.as_str(), t.label)
}

async fn status(
    fleet: Fleet,
    loaded: Option<Loaded>,
    targets: Vec<Target>,
    _color: bool,
    format: Format,
) -> u8 {
    let Some(job) = job(&fleet, &loaded) else {
        return EXIT_ERROR;
    };
    let st = fleet::status(&fleet, &job, &targets, READERS).await;
    let mut out = io::stdout().lock();
    let r = match format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &st.json())
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Text => print_status(&mut out, &fleet, &loaded, &targets, &st),
    };
    match r {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => EXIT_ERROR,
        _ => EXIT_OK,
    }
}

fn print_status(
    out: &mut impl Write,
    fleet: &Fleet,
    loaded: &Option<Loaded>,
    targets: &[Target],
    st: &FleetStatus,
) -> io::Result<()> {
    writeln!(out, "{}", describe(fleet, loaded, targets))?;
    let mut wave = "";
    for t in &st.targets {
        if t.wave != wave {
            wave = &t.wave;
            writeln!(out, "{wave}")?;
        }
        writeln!(out, "  {}", target_line(t, st.migrations))?;
    }
    let summary: Vec<String> = st
        .summary()
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    writeln!(out, "rollout {}: {}", st.state(), summary.join(", "))
}

async fn roll(
    mut fleet: Fleet,
    loaded: Option<Loaded>,
    targets: Vec<Target>,
    color: bool,
    resume: bool,
) -> u8 {
    fleet.locks.retry_failed = resume;
    let Some(job) = job(&fleet, &loaded) else {
        return EXIT_ERROR;
    };
    let _ = writeln!(io::stderr(), "{}", describe(&fleet, &loaded, &targets));
    let stop = online::stop_on_ctrl_c();
    let started = Instant::now();
    let mut bars = Bars::new();
    let report = fleet::run(&fleet, &job, &targets, &stop, &mut bars).await;
    drop(bars);
    summarize(&report, started.elapsed(), color)
}

fn summarize(report: &Report, took: Duration, color: bool) -> u8 {
    let count = |f: fn(&Outcome) -> bool| report.results.iter().filter(|r| f(&r.outcome)).count();
    let done = count(|o| matches!(o, Outcome::Done { .. }));
    let current = count(|o| matches!(o, Outcome::UpToDate));
    let failed = report.failed();
    let stopped = count(|o| matches!(o, Outcome::Stopped(_)));
    println!(
        "{done} target(s) done, {current} already up to date, {failed} failed, {stopped} stopped, {} not started, in {:.1} s",
        report.untouched.len(),
        took.as_secs_f64()
    );
    if let Some(why) = &report.halted {
        eprint_error(
            color,
            &format!(
                "the rollout halted: {why}; the {} target(s) after it were not touched. Fix it, then `lockstep fleet resume`",
                report.untouched.len()
            ),
        );
        return EXIT_FINDINGS;
    }
    if report.stopped {
        return 130;
    }
    if report.complete() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

/// Progress of a rollout: a bar per wave on a terminal; otherwise a line per wave, per
/// failure, and every five seconds.
struct Bars {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    last_line: Instant,
    done: HashMap<String, (usize, usize)>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: io::stderr().is_terminal().then(MultiProgress::new),
            bars: HashMap::new(),
            last_line: Instant::now(),
            done: HashMap::new(),
        }
    }

    fn line(&self, s: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => {
                let _ = writeln!(io::stderr(), "{s}");
            }
        }
    }
}

impl fleet::Progress for Bars {
    fn wave(&mut self, wave: &Wave) {
        let n = wave.targets.len();
        self.done.insert(wave.name.clone(), (0, n));
        match &self.multi {
            Some(m) => {
                let b = m.add(ProgressBar::new(n as u64));
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg:8} [{bar:40}] {pos}/{len} targets  {elapsed}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b.set_message(wave.name.clone());
                self.bars.insert(wave.name.clone(), b);
            }
            None => self.line(&format!(
                "{}: {n} target{}",
                wave.name,
                if n == 1 { "" } else { "s" }
            )),
        }
    }

    fn started(&mut self, _wave: &Wave, _label: &str) {}

    fn finished(&mut self, wave: &Wave, r: &TargetResult) {
        for n in &r.notes {
            if self.multi.is_some() {
                continue;
            }
            self.line(&format!("  {n}"));
        }
        match &r.outcome {
            Outcome::Failed(e) => self.line(&format!("  failed: {e}")),
            Outcome::Stopped(e) => self.line(&format!("  stopped: {e}")),
            _ => {}
        }
        let entry = self.done.entry(wave.name.clone()).or_insert((0, 0));
        entry.0 += 1;
        let (done, total) = *entry;
        if let Some(b) = self.bars.get(&wave.name) {
            b.inc(1);
            if done == total {
                b.finish();
            }
        } else if done == total || self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            self.line(&format!("{}: {done}/{total} targets", wave.name));
        }
    }

    fn halted(&mut self, why: &str) {
        self.line(&format!("halting: {why}"));
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        for b in self.bars.values() {
            if !b.is_finished() {
                b.abandon();
            }
        }
    }
}
