//! The playbook file (TOML): the kind, the table, the settings every kind shares, and the
//! kind's own table, which its module parses (`kinds/`). Unknown keys and bad values are
//! errors naming the file and the key path (`backfill.batch_size`), with a "did you mean"
//! for a misspelt key.
//!
//! ```toml
//! kind = "partition"
//! table = "public.events"            # schema-qualified or not (then: search_path)
//!
//! [partition]                        # the kind's own table (see its module)
//! column = "created_at"
//! strategy = "range"
//! interval = "1 month"
//!
//! [backfill]
//! batch_size = 5000                  # rows in the first batch
//! target_batch_ms = 100              # later batches are sized to take about this long
//! max_rows_per_second = 0            # 0: no limit
//! duty_cycle = 0.6                   # share of the time the runner works while the
//!                                    # application is busy: after a batch that took t it
//!                                    # rests t × (1 − d) / d (1: never rest)
//! max_replica_lag = "30s"            # pause the copy while a replica lags more
//! workers = 2                        # shadow kinds: connections that copy, build indexes
//!                                    # and verify at once (1 to 16)
//!
//! [swap]
//! lock_timeout = "200ms"
//! attempts = 30
//! backoff = "200ms"                  # doubled after each failure, with jitter
//! max_backoff = "5s"
//! mode = "auto"                      # "manual": once verified, keep catching up and wait
//!                                    # for `lockstep swap` (kinds that swap)
//! reverse = "deferred"               # shadow kinds, after the swap until finalize: log the
//!                                    # changed keys, applied to the old table by `lockstep
//!                                    # rollback` | "sync": apply each change to the old
//!                                    # table in the writer's transaction
//!
//! [capture]                          # shadow kinds (partition, column-type, rebuild)
//! mode = "trigger"                   # a trigger logs changed keys (the default) | "auto":
//!                                    # logical decoding where possible, else the trigger |
//!                                    # "logical" (refuse if not possible)
//! max_retained_wal = "4GiB"          # logical: the most WAL the run's slot may hold back
//!
//! [hooks]                            # see hooks.rs: commands and a webhook on events
//! command = "notify"
//! webhook = "http://hooks.internal:8080/lockstep"
//!
//! [dependents]                       # partition
//! views = "recreate"                 # recreate dependent views on the new table | "refuse"
//! foreign_keys = "repoint"           # re-point inbound foreign keys (NOT VALID, then
//!                                    # validated) | "refuse"
//! publications = "carry"             # publications of the table follow it | "publish-copy"
//!                                    # (also when the copy would be published) | "refuse"
//! ```

mod error;
mod hooks;
pub(crate) use error::toml_message;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use super::settings::{
    parse_table_name, Backfill, Capture, CaptureMode, Common, Dependents, Parse, ReverseSync,
    SpecError, Swap, DEFAULT_DUTY_CYCLE, MAX_WORKERS,
};

use super::kinds::{KindName, RawPlaybook, Spec};
use super::settings;
use crate::lint::did_you_mean;

/// A validated playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub common: Common,
    pub kind: Spec,
}

impl Playbook {
    /// The playbook's kind.
    pub fn kind_name(&self) -> KindName {
        self.kind.name()
    }
}

/// Reads and validates a playbook file.
pub fn load(path: &Path) -> Result<Playbook, SpecError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
        path: shown.clone(),
        message: crate::files::io_message(&e),
    })?;
    parse(&text, &shown)
}

/// Parses playbook text; `path` is for messages.
pub fn parse(text: &str, path: &str) -> Result<Playbook, SpecError> {
    let raw: RawPlaybook = toml::from_str(text).map_err(|e| SpecError::Parse {
        path: path.to_string(),
        message: error::toml_message(&e, text),
    })?;
    let p = Parse { path };
    let all = KindName::all();
    let names: Vec<&str> = all.iter().map(|k| k.name()).collect();
    let Some(kind) = KindName::parse(&raw.kind) else {
        let hint = did_you_mean(&raw.kind, names.iter().copied())
            .map_or(String::new(), |m| format!(" (did you mean `{m}`?)"));
        return Err(p.bad(
            "kind",
            format!(
                "unknown kind `{}`{hint}; expected one of {}",
                raw.kind,
                names.join(", ")
            ),
        ));
    };
    // Each kind has its own table; another kind's table is a mistake.
    for (other, present) in raw.sections() {
        if present && other != kind {
            return Err(p.bad(
                other.section(),
                format!(
                    "a [{}] table belongs to kind = \"{other}\", not `{kind}`",
                    other.section()
                ),
            ));
        }
    }
    let table = p.table("table", &raw.table)?;
    let (backfill, swap) = settings::settings((&raw.backfill, &raw.swap), path)?;
    let only_for = |applies: fn(KindName) -> bool| {
        all.iter()
            .filter(|k| applies(**k))
            .map(|k| format!("kind = \"{k}\""))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let dependents = if kind.dependents() {
        settings::dependents(&raw.dependents, &p)?
    } else if raw.dependents.views.is_some()
        || raw.dependents.foreign_keys.is_some()
        || raw.dependents.publications.is_some()
    {
        return Err(p.bad(
            "dependents",
            format!("only for {}", only_for(KindName::dependents)),
        ));
    } else {
        Dependents::default()
    };
    let capture = if kind.dependents() {
        settings::capture(&raw.capture, &p)?
    } else if raw.capture.mode.is_some() || raw.capture.max_retained_wal.is_some() {
        return Err(p.bad(
            "capture",
            format!("only for {}", only_for(KindName::dependents)),
        ));
    } else {
        Capture::default()
    };
    if raw.backfill.workers.is_some() && !kind.workers() {
        return Err(p.bad(
            "backfill.workers",
            format!(
                "only for {}: kind = \"{kind}\" works with one connection",
                only_for(KindName::workers)
            ),
        ));
    }
    if swap.manual && !kind.swaps() {
        return Err(p.bad(
            "swap.mode",
            format!(
                "\"manual\" is only for {}: kind = \"{kind}\" has no swap to wait for",
                only_for(KindName::swaps)
            ),
        ));
    }
    let hooks = hooks::parse(&raw.hooks, &p)?;
    let spec = raw.parse_kind(kind, &p)?;
    Ok(Playbook {
        common: Common {
            table,
            backfill,
            swap,
            dependents,
            capture,
            hooks,
        },
        kind: spec,
    })
}
