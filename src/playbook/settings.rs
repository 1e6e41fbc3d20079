//! What every playbook has besides its kind's own section: the table, and the `[backfill]`,
//! `[swap]` and `[dependents]` settings; the helpers kinds use to validate their section, and
//! the error of a playbook file.

use serde::{Deserialize, Serialize};

use crate::lint::context::parse_duration_ms;
use crate::sql::ir::ObjName;

/// What is wrong with a playbook file: each error names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

/// The parts of a playbook every kind has.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub table: ObjName,
    pub backfill: Backfill,
    pub swap: Swap,
    pub dependents: Dependents,
    /// `[capture]`: how a shadow run captures the application's changes.
    pub capture: Capture,
    /// `[hooks]`: commands and a webhook told about the run's events.
    pub hooks: super::hooks::Hooks,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDependents {
    pub views: Option<String>,
    pub foreign_keys: Option<String>,
    pub publications: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCapture {
    pub mode: Option<String>,
    pub max_retained_wal: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackfill {
    pub batch_size: Option<u32>,
    pub target_batch_ms: Option<u64>,
    pub max_rows_per_second: Option<u64>,
    pub max_replica_lag: Option<String>,
    pub duty_cycle: Option<f64>,
    pub workers: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSwap {
    pub lock_timeout: Option<String>,
    pub attempts: Option<u32>,
    pub backoff: Option<String>,
    pub max_backoff: Option<String>,
    pub mode: Option<String>,
    pub reverse: Option<String>,
}

/// What to do with objects that depend on the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependents {
    /// Recreate dependent views on the new table at the swap (false: refuse in preflight).
    pub recreate_views: bool,
    /// Re-point inbound foreign keys to the new table (false: refuse in preflight).
    pub repoint_foreign_keys: bool,
    pub publications: Publications,
}

/// What to do about logical replication of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publications {
    /// Publications that name the table move to the new table at the swap; a publication of
    /// all tables or of the table's schema, or a logical slot with an output plugin that
    /// does not read publications, refuses the conversion (their consumers would receive
    /// the copy, or the new table under other names).
    Carry,
    /// As `Carry`, and go ahead where the consumers would receive the copy: they are known
    /// to filter by table name.
    PublishCopy,
    /// Any publication of the table refuses the conversion.
    Refuse,
}

/// How a shadow run captures the changes the application makes while it copies (`[capture]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    pub mode: CaptureMode,
    /// Logical capture: the most WAL its replication slot may hold back. Past 80 % the copy
    /// waits for the capture to catch up; past the limit the run stops and drops the slot.
    pub max_retained_wal: u64,
}

/// `[capture] mode`. The default is `auto`: logical decoding (streamed, nothing in the
/// application's transactions) where the server and the role allow it, else the trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMode {
    /// Logical decoding where the server and the role allow it, else the trigger.
    Auto,
    /// Logical decoding, or refuse in preflight saying why it is not possible.
    Logical,
    /// A row trigger on the table logs the changed keys.
    Trigger,
}

/// The default `[capture] max_retained_wal`: 4 GiB.
pub const DEFAULT_MAX_RETAINED_WAL: u64 = 4 << 30;

impl Default for Capture {
    fn default() -> Self {
        Capture {
            mode: CaptureMode::Auto,
            max_retained_wal: DEFAULT_MAX_RETAINED_WAL,
        }
    }
}

/// The `[capture]` settings.
pub(crate) fn capture(raw: &RawCapture, p: &Parse<'_>) -> Result<Capture, SpecError> {
    let mode = match raw.mode.as_deref() {
        None | Some("auto") => CaptureMode::Auto,
        Some("logical") => CaptureMode::Logical,
        Some("trigger") => CaptureMode::Trigger,
        Some(x) => {
            return Err(p.bad(
                "capture.mode",
                format!("expected \"auto\", \"logical\" or \"trigger\", found `{x}`"),
            ))
        }
    };
    let max_retained_wal = match &raw.max_retained_wal {
        None => DEFAULT_MAX_RETAINED_WAL,
        Some(t) => {
            crate::config::parse_size(t).map_err(|m| p.bad("capture.max_retained_wal", m))?
        }
    };
    Ok(Capture {
        mode,
        max_retained_wal,
    })
}

impl Default for Dependents {
    fn default() -> Self {
        Dependents {
            recreate_views: true,
            repoint_foreign_keys: true,
            publications: Publications::Carry,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    pub batch_size: u32,
    pub target_batch_ms: u64,
    pub max_rows_per_second: u64,
    pub max_replica_lag_ms: Option<u64>,
    /// The share of the time the runner works (batches, index builds, verified ranges) while
    /// the application is busy; it rests the rest, leaving the CPU and the disks to the
    /// application.
    pub duty_cycle: f64,
    /// How many connections copy, build indexes and verify at once (partition only). While
    /// the application is busy they share the duty cycle: together they work no more than
    /// one connection would.
    pub workers: u32,
}

/// The most connections a partition run works with.
pub const MAX_WORKERS: u32 = 16;

#[derive(Debug, Clone, PartialEq)]
pub struct Swap {
    pub lock_timeout_ms: u64,
    pub attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// `mode = "manual"`: once verified, the run keeps catching up and waits for
    /// `lockstep swap` (kinds that swap).
    pub manual: bool,
    /// How a shadow run keeps the old table for a swap back until `finalize`.
    pub reverse: ReverseSync,
}

/// `[swap] reverse`: how the old table is kept after the swap, for `lockstep rollback`. A
/// playbook asks for one; a plan holds what was chosen (never `Auto`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReverseSync {
    /// `Logical` where the run captures by logical decoding, `Sync` otherwise.
    Auto,
    /// No trigger: a replication slot made before the swap keeps the new table's changes;
    /// `lockstep rollback` (or `lockstep sync-back`) applies them to the old table. The
    /// writers pay nothing; the slot holds back WAL until then.
    Logical,
    /// A row trigger logs the key of every changed row to a bare log; `lockstep rollback`
    /// applies the log to the old table (in batches, then the rest under the swap back's
    /// lock). The writers pay for one small insert per change.
    Deferred,
    /// A row trigger applies every change to the old table in the writer's transaction. What
    /// a plan made before this setting existed holds.
    #[default]
    Sync,
}

impl ReverseSync {
    pub fn is_sync(&self) -> bool {
        *self == ReverseSync::Sync
    }

    /// The old table is brought up to date by the rollback from a log of keys (filled by a
    /// trigger or from the slot), not kept current by a trigger.
    pub fn is_deferred(&self) -> bool {
        matches!(self, ReverseSync::Deferred | ReverseSync::Logical)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ReverseSync::Auto => "auto",
            ReverseSync::Logical => "logical",
            ReverseSync::Deferred => "deferred",
            ReverseSync::Sync => "sync",
        }
    }
}

/// The default share of the time the runner works while the application is busy. On a
/// machine whose cores the application keeps busy, the runner's one backend takes a core's
/// worth from it: working flat out left the writers of `lockstep demo --bench` 0.66x of
/// their throughput, 0.75 left them 0.69x to 0.73x, 0.6 left them 0.74x to 0.77x.
pub const DEFAULT_DUTY_CYCLE: f64 = 0.6;

impl Default for Backfill {
    fn default() -> Self {
        Backfill {
            batch_size: 5000,
            target_batch_ms: 100,
            max_rows_per_second: 0,
            max_replica_lag_ms: None,
            duty_cycle: DEFAULT_DUTY_CYCLE,
            workers: 2,
        }
    }
}

impl Default for Swap {
    fn default() -> Self {
        Swap {
            lock_timeout_ms: 200,
            attempts: 30,
            backoff_ms: 200,
            max_backoff_ms: 5000,
            manual: false,
            reverse: ReverseSync::Auto,
        }
    }
}

/// Validates a kind's section, naming the file and the key in every error.
#[derive(Debug, Clone, Copy)]
pub struct Parse<'a> {
    /// The file, for messages.
    pub path: &'a str,
}

impl Parse<'_> {
    /// An error about `key`.
    pub fn bad(&self, key: &str, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            path: self.path.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// `v` trimmed; an error when it is empty.
    pub fn nonempty(&self, key: &str, v: &str) -> Result<String, SpecError> {
        let t = v.trim();
        if t.is_empty() {
            Err(self.bad(key, "must not be empty"))
        } else {
            Ok(t.to_string())
        }
    }

    /// An optional `v`, trimmed and not empty when given.
    pub fn optional(&self, key: &str, v: Option<&str>) -> Result<Option<String>, SpecError> {
        v.map(|v| self.nonempty(key, v)).transpose()
    }

    /// At least one column name, none empty.
    pub fn columns(&self, key: &str, v: &[String]) -> Result<Vec<String>, SpecError> {
        if v.is_empty() || v.iter().any(|c| c.is_empty()) {
            return Err(self.bad(key, "needs at least one column name"));
        }
        Ok(v.to_vec())
    }

    /// A table name such as `events` or `app."Events"`.
    pub fn table(&self, key: &str, v: &str) -> Result<ObjName, SpecError> {
        parse_table_name(v).ok_or_else(|| {
            self.bad(
                key,
                format!("expected a table name such as events or app.\"Events\", found `{v}`"),
            )
        })
    }

    /// The section of a kind that needs one, or an error saying it is missing.
    pub fn required<T>(&self, section: &str, kind: &str, v: Option<T>) -> Result<T, SpecError> {
        v.ok_or_else(|| {
            self.bad(
                section,
                format!("kind = \"{kind}\" needs a [{section}] table"),
            )
        })
    }
}

/// Splits `schema.table` (either part may be double-quoted).
pub fn parse_table_name(s: &str) -> Option<ObjName> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.trim().chars().peekable();
    let mut quoted_any = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted_any = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cur.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => cur.push(ch),
                        None => return None,
                    }
                }
            }
            '.' => parts.push(std::mem::take(&mut cur)),
            c if c.is_whitespace() => return None,
            c => cur.extend(c.to_lowercase()),
        }
    }
    parts.push(cur);
    if parts.iter().any(String::is_empty)
        || (parts.len() == 1 && parts[0].is_empty() && !quoted_any)
    {
        return None;
    }
    match parts.as_slice() {
        [name] => Some(ObjName {
            schema: None,
            name: name.clone(),
        }),
        [schema, name] => Some(ObjName {
            schema: Some(schema.clone()),
            name: name.clone(),
        }),
        _ => None,
    }
}

pub(crate) fn literal(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(format!("'{}'", s.replace('\'', "''"))),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `[backfill]` and `[swap]` settings every kind shares.
pub(crate) fn settings(
    (backfill, swap): (&RawBackfill, &RawSwap),
    path: &str,
) -> Result<(Backfill, Swap), SpecError> {
    let bad = |key: &str, message: String| SpecError::Invalid {
        path: path.to_string(),
        key: key.to_string(),
        message,
    };
    let ms = |key: &str, v: &Option<String>, default: u64| -> Result<u64, SpecError> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration_ms(s).ok_or_else(|| {
                bad(
                    key,
                    format!("expected a duration such as \"200ms\" or \"5s\", found `{s}`"),
                )
            }),
        }
    };
    let d = Backfill::default();
    let batch_size = backfill.batch_size.unwrap_or(d.batch_size);
    if batch_size == 0 {
        return Err(bad("backfill.batch_size", "must be at least 1".into()));
    }
    let backfill = Backfill {
        batch_size,
        target_batch_ms: backfill.target_batch_ms.unwrap_or(d.target_batch_ms),
        max_rows_per_second: backfill
            .max_rows_per_second
            .unwrap_or(d.max_rows_per_second),
        max_replica_lag_ms: match &backfill.max_replica_lag {
            None => None,
            s => Some(ms("backfill.max_replica_lag", s, 0)?),
        },
        duty_cycle: match backfill.duty_cycle {
            None => d.duty_cycle,
            Some(x) if x > 0.0 && x <= 1.0 => x,
            Some(x) => {
                return Err(bad(
                    "backfill.duty_cycle",
                    format!("must be more than 0 and at most 1 (1: never rest), found {x}"),
                ))
            }
        },
        workers: match backfill.workers {
            None => d.workers,
            Some(n) if (1..=MAX_WORKERS).contains(&n) => n,
            Some(n) => {
                return Err(bad(
                    "backfill.workers",
                    format!("must be from 1 to {MAX_WORKERS}, found {n}"),
                ))
            }
        },
    };
    let sd = Swap::default();
    let swap = Swap {
        lock_timeout_ms: ms("swap.lock_timeout", &swap.lock_timeout, sd.lock_timeout_ms)?,
        attempts: swap.attempts.unwrap_or(sd.attempts),
        backoff_ms: ms("swap.backoff", &swap.backoff, sd.backoff_ms)?,
        max_backoff_ms: ms("swap.max_backoff", &swap.max_backoff, sd.max_backoff_ms)?,
        manual: match swap.mode.as_deref() {
            None | Some("auto") => false,
            Some("manual") => true,
            Some(x) => {
                return Err(bad(
                    "swap.mode",
                    format!("expected \"auto\" or \"manual\", found `{x}`"),
                ))
            }
        },
        reverse: match swap.reverse.as_deref() {
            None | Some("auto") => ReverseSync::Auto,
            Some("logical") => ReverseSync::Logical,
            Some("deferred") => ReverseSync::Deferred,
            Some("sync") => ReverseSync::Sync,
            Some(x) => {
                return Err(bad(
                    "swap.reverse",
                    format!(
                        "expected \"auto\", \"logical\", \"deferred\" or \"sync\", found `{x}`"
                    ),
                ))
            }
        },
    };
    if swap.lock_timeout_ms == 0 {
        return Err(bad(
            "swap.lock_timeout",
            "must be above zero: the swap never waits for a lock without a timeout".into(),
        ));
    }
    if swap.attempts == 0 {
        return Err(bad("swap.attempts", "must be at least 1".into()));
    }
    Ok((backfill, swap))
}

/// The `[dependents]` settings.
pub(crate) fn dependents(raw: &RawDependents, p: &Parse<'_>) -> Result<Dependents, SpecError> {
    let choice = |key: &str, v: &Option<String>, yes: &str| -> Result<bool, SpecError> {
        match v.as_deref() {
            None => Ok(true),
            Some(x) if x == yes => Ok(true),
            Some("refuse") => Ok(false),
            Some(x) => Err(p.bad(
                key,
                format!("expected \"{yes}\" or \"refuse\", found `{x}`"),
            )),
        }
    };
    let publications = match raw.publications.as_deref() {
        None | Some("carry") => Publications::Carry,
        Some("publish-copy") => Publications::PublishCopy,
        Some("refuse") => Publications::Refuse,
        Some(x) => {
            return Err(p.bad(
                "dependents.publications",
                format!("expected \"carry\", \"publish-copy\" or \"refuse\", found `{x}`"),
            ))
        }
    };
    Ok(Dependents {
        recreate_views: choice("dependents.views", &raw.views, "recreate")?,
        repoint_foreign_keys: choice("dependents.foreign_keys", &raw.foreign_keys, "repoint")?,
        publications,
    })
}
