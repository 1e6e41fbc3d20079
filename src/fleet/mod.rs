//! Fleets: the same change on many databases or schemas (`lockstep fleet plan|run|status|
//! resume FLEET.toml`).
//!
//! ```toml
//! migrations = "migrations"          # a directory of SQL migrations (relative to this file)
//! # playbook = "playbooks/x.toml"    # or a playbook, run on every target
//! allow_lint_errors = false          # migrations: a target refuses lint errors in the
//!                                    # migrations it has yet to apply (and fails)
//!
//! [targets]
//! urls = ["postgres://app@shard1.internal/app", "service=shard2"]
//!
//! [[targets.discover]]               # one target per database the query returns
//! url = "postgres://admin@tenants.internal/postgres"
//! databases = "SELECT datname FROM pg_database WHERE datname LIKE 'tenant_%' ORDER BY 1"
//!
//! [[targets.discover]]               # one target per schema the query returns
//! url = "postgres://admin@shared.internal/app"
//! schemas = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_%' ORDER BY 1"
//!
//! [rollout]
//! canary = 1                         # the first targets, alone, before any wave
//! wave_size = 10                     # targets per wave after the canary (0: all the rest)
//! concurrency = 4                    # targets at once within a wave
//! error_budget = 0                   # failed targets tolerated ("5%" of the targets, or a
//!                                    # count); one more halts the rollout
//! lock_budget = "30s"                # per target: the most time spent waiting for locks
//!
//! [locks]                            # migrations: every statement's lock_timeout, retries
//! lock_timeout = "500ms"
//! attempts = 20
//! backoff = "200ms"
//! max_backoff = "5s"
//! ```
//!
//! The targets are the `urls` in order, then each discovery query's rows in order. Each
//! target keeps its own record (`lockstep.migrations`, or `lockstep.runs` for a playbook),
//! so `fleet status` rebuilds the rollout's state from the targets, from any machine, and
//! `fleet resume` continues where a halted or interrupted rollout stopped.

mod rollout;
mod status;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use rollout::{run, Job, Outcome, Progress, Report, TargetResult};
pub use status::{status, FleetStatus, TargetState, TargetStatus};

use crate::apply::{self, Target};
use crate::db::connect::ConnectOptions;
use crate::lint::context::parse_duration_ms;
use crate::playbook::spec::{self, Playbook};

/// What is wrong with a fleet, or could not be done before its rollout.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{path}: {message}")]
    Spec { path: String, message: String },
    #[error("{0}")]
    Apply(#[from] apply::ApplyError),
    #[error("{0}")]
    Playbook(#[from] crate::playbook::spec::SpecError),
    #[error("discovery on {target}: {message}")]
    Discover { target: String, message: String },
    #[error("{0}")]
    Refused(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    migrations: Option<String>,
    playbook: Option<String>,
    allow_lint_errors: Option<bool>,
    #[serde(default)]
    targets: RawTargets,
    #[serde(default)]
    rollout: RawRollout,
    #[serde(default)]
    locks: RawLocks,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    discover: Vec<RawDiscover>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscover {
    url: Option<String>,
    databases: Option<String>,
    schemas: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollout {
    canary: Option<usize>,
    wave_size: Option<usize>,
    concurrency: Option<usize>,
    error_budget: Option<toml::Value>,
    lock_budget: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocks {
    lock_timeout: Option<String>,
    attempts: Option<u32>,
    backoff: Option<String>,
    max_backoff: Option<String>,
}

/// What runs on every target.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// A directory of SQL migrations.
    Migrations(PathBuf),
    /// A playbook: its path, text and parsed form.
    Playbook {
        path: PathBuf,
        text: String,
        playbook: Box<Playbook>,
    },
}

/// Where the targets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Url(String),
    /// A query on a connection (`None`: the command line's / the environment's) returning
    /// database names.
    Databases {
        url: Option<String>,
        query: String,
    },
    /// Schema names: one target per schema of that database.
    Schemas {
        url: Option<String>,
        query: String,
    },
}

/// How many failed targets the rollout tolerates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    Count(usize),
    /// A share of the targets, in percent.
    Percent(f64),
}

impl Budget {
    /// The failures tolerated among `targets`.
    pub fn tolerated(self, targets: usize) -> usize {
        match self {
            Budget::Count(n) => n,
            Budget::Percent(p) => (targets as f64 * p / 100.0).floor() as usize,
        }
    }
}

/// The rollout's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub canary: usize,
    /// 0: one wave for every target after the canary.
    pub wave_size: usize,
    pub concurrency: usize,
    pub error_budget: Budget,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            canary: 1,
            wave_size: 0,
            concurrency: 4,
            error_budget: Budget::Count(0),
        }
    }
}

/// A fleet file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// The file, for messages.
    pub path: PathBuf,
    pub work: Work,
    pub sources: Vec<Source>,
    pub rollout: Rollout,
    /// Migrations: how statements wait for locks (and the per-target lock budget), and
    /// `allow_lint_errors`.
    pub locks: apply::Settings,
}

/// Reads and validates a fleet file; errors name the file and the key.
pub fn load(path: &Path) -> Result<Fleet, FleetError> {
    let shown = path.display().to_string();
    let bad = |message: String| FleetError::Spec {
        path: shown.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(crate::files::io_message(&e)))?;
    parse(&text, path)
}

/// Parses fleet text; `path` is for messages and relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Fleet, FleetError> {
    let shown = path.display().to_string();
    let bad = |key: &str, message: String| FleetError::Spec {
        path: shown.clone(),
        message: format!("`{key}`: {message}"),
    };
    let raw: RawFleet = toml::from_str(text).map_err(|e| FleetError::Spec {
        path: shown.clone(),
        message: spec::toml_message(&e, text),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let rel = |p: &str| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            base.join(p)
        }
    };
    let work = match (&raw.migrations, &raw.playbook) {
        (Some(m), None) => Work::Migrations(rel(m)),
        (None, Some(p)) => {
            let file = rel(p);
            let text = std::fs::read_to_string(&file).map_err(|e| {
                bad(
                    "playbook",
                    format!("{}: {}", file.display(), crate::files::io_message(&e)),
                )
            })?;
            let playbook = spec::parse(&text, &file.display().to_string())?;
            Work::Playbook {
                path: file,
                text,
                playbook: Box::new(playbook),
            }
        }
        (Some(_), Some(_)) => {
            return Err(bad(
                "playbook",
                "a fleet runs either `migrations` or a `playbook`, not both".into(),
            ))
        }
        (None, None) => {
            return Err(FleetError::Spec {
                path: shown.clone(),
                message: "say what to run: `migrations = \"DIR\"` or `playbook = \"FILE\"`".into(),
            })
        }
    };
    let mut sources: Vec<Source> = raw
        .targets
        .urls
        .iter()
        .map(|u| Source::Url(u.clone()))
        .collect();
    for (i, d) in raw.targets.discover.iter().enumerate() {
        let key = format!("targets.discover[{i}]");
        sources.push(match (&d.databases, &d.schemas) {
            (Some(q), None) => Source::Databases {
                url: d.url.clone(),
                query: q.clone(),
            },
            (None, Some(q)) => Source::Schemas {
                url: d.url.clone(),
                query: q.clone(),
            },
            _ => {
                return Err(bad(
                    &key,
                    "needs exactly one of `databases` (a query returning database names) or `schemas` (a query returning schema names)".into(),
                ))
            }
        });
    }
    if sources.is_empty() {
        return Err(bad(
            "targets",
            "no targets: give `urls` or a `[[targets.discover]]` query".into(),
        ));
    }
    let d = Rollout::default();
    let r = &raw.rollout;
    let concurrency = r.concurrency.unwrap_or(d.concurrency);
    if concurrency == 0 {
        return Err(bad("rollout.concurrency", "must be at least 1".into()));
    }
    let error_budget = match &r.error_budget {
        None => d.error_budget,
        Some(toml::Value::Integer(n)) if *n >= 0 => Budget::Count(*n as usize),
        Some(toml::Value::String(s)) => match s.trim().strip_suffix('%').map(|p| p.trim().parse::<f64>()) {
            Some(Ok(p)) if (0.0..=100.0).contains(&p) => Budget::Percent(p),
            _ => {
                return Err(bad(
                    "rollout.error_budget",
                    format!("expected a count (0: halt on the first failure) or a percentage such as \"5%\", found `{s}`"),
                ))
            }
        },
        Some(v) => {
            return Err(bad(
                "rollout.error_budget",
                format!("expected a count (0: halt on the first failure) or a percentage such as \"5%\", found `{v}`"),
            ))
        }
    };
    let ms = |key: &str, v: &Option<String>, default: u64| -> Result<u64, FleetError> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration_ms(s).filter(|ms| *ms > 0).ok_or_else(|| {
                bad(
                    key,
                    format!(
                        "expected a duration above zero such as \"500ms\" or \"5s\", found `{s}`"
                    ),
                )
            }),
        }
    };
    let ld = apply::Settings::default();
    let locks = apply::Settings {
        lock_timeout_ms: ms(
            "locks.lock_timeout",
            &raw.locks.lock_timeout,
            ld.lock_timeout_ms,
        )?,
        attempts: match raw.locks.attempts {
            Some(0) => return Err(bad("locks.attempts", "must be at least 1".into())),
            Some(n) => n,
            None => ld.attempts,
        },
        backoff_ms: ms("locks.backoff", &raw.locks.backoff, ld.backoff_ms)?,
        max_backoff_ms: ms(
            "locks.max_backoff",
            &raw.locks.max_backoff,
            ld.max_backoff_ms,
        )?,
        lock_budget: match &r.lock_budget {
            None => None,
            s => Some(Duration::from_millis(ms("rollout.lock_budget", s, 0)?)),
        },
        retry_failed: false,
        allow_lint_errors: raw.allow_lint_errors.unwrap_or(false),
    };
    Ok(Fleet {
        path: path.to_path_buf(),
        work,
        sources,
        rollout: Rollout {
            canary: r.canary.unwrap_or(d.canary),
            wave_size: r.wave_size.unwrap_or(d.wave_size),
            concurrency,
            error_budget,
        },
        locks,
    })
}

/// One wave of a rollout: its name and the targets in it (indexes into the target list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    pub name: String,
    pub targets: std::ops::Range<usize>,
}

/// The waves of `n` targets: the canary, then waves of `wave_size`.
pub fn waves(n: usize, r: &Rollout) -> Vec<Wave> {
    let mut out = Vec::new();
    let canary = r.canary.min(n);
    if canary > 0 {
        out.push(Wave {
            name: "canary".into(),
            targets: 0..canary,
        });
    }
    let size = if r.wave_size == 0 {
        n.max(1)
    } else {
        r.wave_size
    };
    let mut start = canary;
    let mut i = 1;
    while start < n {
        let end = (start + size).min(n);
        out.push(Wave {
            name: format!("wave {i}"),
            targets: start..end,
        });
        start = end;
        i += 1;
    }
    out
}

/// The connection of `url` (`None`: the default one).
fn options(url: Option<&str>, default: &ConnectOptions) -> Result<ConnectOptions, String> {
    match url {
        None => Ok(default.clone()),
        Some(u) => ConnectOptions::resolve(Some(u)).map_err(|e| e.to_string()),
    }
}

/// The targets of the fleet: its `urls`, then each discovery query's rows, in order;
/// a target named twice counts once. `default` is the connection of the command line (or
/// the environment) for entries without a `url`.
pub async fn targets(fleet: &Fleet, default: &ConnectOptions) -> Result<Vec<Target>, FleetError> {
    let mut out: Vec<Target> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |t: Target, out: &mut Vec<Target>| {
        if seen.insert(t.label.clone()) {
            out.push(t);
        }
    };
    for s in &fleet.sources {
        match s {
            Source::Url(u) => {
                let o = options(Some(u), default).map_err(|m| FleetError::Spec {
                    path: fleet.path.display().to_string(),
                    message: format!("`targets.urls`: {m}"),
                })?;
                push(Target::new(o, None), &mut out);
            }
            Source::Databases { url, query } | Source::Schemas { url, query } => {
                let o = options(url.as_deref(), default).map_err(|m| FleetError::Spec {
                    path: fleet.path.display().to_string(),
                    message: format!("`targets.discover`: {m}"),
                })?;
                let here = Target::new(o.clone(), None).label;
                let fail = |message: String| FleetError::Discover {
                    target: here.clone(),
                    message,
                };
                let client = o
                    .with_application_name("lockstep discovery")
                    .connect()
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let rows = client.query(query.as_str(), &[]).await.map_err(|e| {
                    fail(match e.as_db_error() {
                        Some(d) => format!("`{query}`: {}", d.message()),
                        None => e.to_string(),
                    })
                })?;
                for r in rows {
                    let name: String = r.try_get(0).map_err(|_| {
                        fail(format!("`{query}`: its first column must be text (a name)"))
                    })?;
                    let t = match s {
                        Source::Databases { .. } => Target::new(o.with_dbname(&name), None),
                        _ => Target::new(o.clone(), Some(name)),
                    };
                    push(t, &mut out);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Fleet, FleetError> {
        parse(text, Path::new("/x/fleet.toml"))
    }

    #[test]
    fn a_fleet_file_parses_with_defaults() {
        let f = p("migrations = \"m\"\n[targets]\nurls = [\"postgres://a@h/db\"]\n[[targets.discover]]\nurl = \"postgres://a@h/postgres\"\nschemas = \"SELECT 'x'\"\n[rollout]\nerror_budget = \"5%\"\nlock_budget = \"30s\"\n").unwrap();
        assert_eq!(f.work, Work::Migrations(PathBuf::from("/x/m")));
        assert_eq!(f.sources.len(), 2);
        assert_eq!(f.rollout.error_budget, Budget::Percent(5.0));
        assert_eq!(f.rollout.error_budget.tolerated(230), 11);
        assert_eq!(f.locks.lock_budget, Some(Duration::from_secs(30)));
        assert_eq!(f.locks.lock_timeout_ms, 500);
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            ("[targets]\nurls = [\"x\"]", "say what to run"),
            ("migrations = \"m\"", "`targets`: no targets"),
            ("migrations = \"m\"\nplaybook = \"p\"\n[targets]\nurls = [\"x\"]", "not both"),
            ("migrations = \"m\"\n[targets]\n[[targets.discover]]\ndatabases = \"q\"\nschemas = \"q\"", "`targets.discover[0]`"),
            ("migrations = \"m\"\n[targets]\nurls = [\"x\"]\n[rollout]\nconcurency = 2", "did you mean `concurrency`"),
            ("migrations = \"m\"\n[targets]\nurls = [\"x\"]\n[rollout]\nerror_budget = \"lots\"", "`rollout.error_budget`"),
            ("migrations = \"m\"\n[targets]\nurls = [\"x\"]\n[locks]\nlock_timeout = \"0s\"", "`locks.lock_timeout`"),
            ("migrations = \"m\"\n[targets]\nurls = [\"x\"]\n[rollout]\nconcurrency = 0", "`rollout.concurrency`"),
        ];
        for (text, want) in cases {
            let e = p(text).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.starts_with("/x/fleet.toml"),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn waves_start_with_the_canary() {
        let r = Rollout {
            canary: 1,
            wave_size: 4,
            ..Rollout::default()
        };
        let w = waves(10, &r);
        let shape: Vec<(&str, std::ops::Range<usize>)> = w
            .iter()
            .map(|w| (w.name.as_str(), w.targets.clone()))
            .collect();
        assert_eq!(
            shape,
            [
                ("canary", 0..1),
                ("wave 1", 1..5),
                ("wave 2", 5..9),
                ("wave 3", 9..10)
            ]
        );
        let all_rest = waves(3, &Rollout::default());
        assert_eq!(all_rest.len(), 2);
        assert_eq!(all_rest[1].targets, 1..3);
        assert!(waves(0, &Rollout::default()).is_empty());
    }
}
