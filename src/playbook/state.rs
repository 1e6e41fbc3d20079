//! The state table (`lockstep.runs`): one row per run, checkpointed after every step and
//! every batch, in the same transaction as the work it records. A run's kind, step and status
//! are stored as text and parsed on load ([`Status`] here; the kind and the step by the
//! registry and the run's engine, which know their values). A shadow rebuild's copy works in
//! key ranges (`lockstep.lanes`), each with its own high-water mark, so that several
//! connections can copy at once. An advisory lock per table keeps two runners apart (`lock.rs`),
//! and `lockstep.runners` keeps each runner's heartbeat.

use tokio_postgres::{Client, GenericClient};

use crate::db::tx::in_transaction;

/// Creates the `lockstep` schema and state table when missing.
pub const SCHEMA_SQL: &str = "
CREATE SCHEMA IF NOT EXISTS lockstep;
CREATE TABLE IF NOT EXISTS lockstep.runs (
    id            text PRIMARY KEY,
    kind          text NOT NULL,
    table_name    text NOT NULL,
    playbook      text NOT NULL,
    plan          jsonb NOT NULL,
    step          text NOT NULL,
    status        text NOT NULL,
    paused        boolean NOT NULL DEFAULT false,
    max_key       text[],
    high_water    text[],
    rows_copied   bigint NOT NULL DEFAULT 0,
    rows_estimate bigint NOT NULL DEFAULT 0,
    batch_size    integer,
    rows_per_sec  double precision,
    throttle      text,
    message       text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS lockstep.lanes (
    run_id        text NOT NULL,
    lane          integer NOT NULL,
    upper_key     text[] NOT NULL,
    high_water    text[],
    PRIMARY KEY (run_id, lane)
);
ALTER TABLE lockstep.runs ADD COLUMN IF NOT EXISTS swaps jsonb;
ALTER TABLE lockstep.runs ADD COLUMN IF NOT EXISTS replay jsonb;
CREATE TABLE IF NOT EXISTS lockstep.controls (
    run_id              text PRIMARY KEY,
    max_rows_per_second bigint,
    target_batch_ms     bigint,
    duty_cycle          double precision,
    swap_requested_at   timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
)";

/// The runners' heartbeat table: one row per table, written every two seconds by its
/// runner (`lock.rs`).
const RUNNERS_SQL: &str = "CREATE TABLE IF NOT EXISTS lockstep.runners (
    table_name    text PRIMARY KEY,
    run_id        text NOT NULL,
    backend_pid   integer NOT NULL,
    process       text NOT NULL,
    beat_at       timestamptz NOT NULL
)";

/// The `step` of a run that has not completed any step yet.
pub const CREATED: &str = "created";
/// The `step` of a run that was rolled back.
pub const ROLLED_BACK: &str = "rolled_back";
/// The `step` of a run that was finalized.
pub const FINALIZED: &str = "finalized";

/// What a run is doing, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A runner works on it (or worked on it until it was killed).
    Running,
    /// `lockstep pause`: the copy waits, the capture goes on.
    Paused,
    /// Stopped at a safe point (Ctrl-C, SIGTERM).
    Stopped,
    Failed,
    /// Every step ran (in-place kinds).
    Done,
    /// Swapped (shadow kinds): the old table is kept current until finalize.
    Swapped,
    /// `[swap] mode = "manual"`: verified and caught up, waiting for `lockstep swap`.
    ReadyToSwap,
    RollingBack,
    RolledBack,
    Finalized,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Running,
        Status::Paused,
        Status::Stopped,
        Status::Failed,
        Status::Done,
        Status::Swapped,
        Status::ReadyToSwap,
        Status::RollingBack,
        Status::RolledBack,
        Status::Finalized,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
            Status::Failed => "failed",
            Status::Done => "done",
            Status::Swapped => "swapped",
            Status::ReadyToSwap => "ready_to_swap",
            Status::RollingBack => "rolling_back",
            Status::RolledBack => "rolled_back",
            Status::Finalized => "finalized",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the state table, as stored.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub kind: String,
    pub table_name: String,
    pub playbook: String,
    pub plan: serde_json::Value,
    pub step: String,
    pub status: String,
    pub paused: bool,
    pub copy: CopyState,
    pub rows_per_sec: Option<f64>,
    pub throttle: Option<String>,
    pub message: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    /// The same times in UTC, RFC 3339, and as Unix time (for machine-readable status).
    pub started_utc: String,
    pub updated_utc: String,
    pub started_epoch: f64,
    pub updated_epoch: f64,
    /// The attempts at the swap (and at the swap back), in order.
    pub swaps: Vec<SwapAttempt>,
    /// What the replay last measured of its backlog (a shadow rebuild).
    pub replay: Option<ReplayWatch>,
}

/// What a replay measured of its backlog, as the runner recorded it (about once a second
/// while it replays).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplayWatch {
    /// Entries waiting, from the log's statistics.
    pub backlog: i64,
    /// Their growth per second over the last few seconds (none: not measured yet).
    pub per_second: Option<f64>,
    /// The log grew faster than it was replayed: the replay works without rest and the
    /// run's other connections wait.
    pub behind: bool,
    /// How long ago the runner recorded it, in seconds.
    #[serde(default)]
    pub age_seconds: f64,
}

/// One attempt at a swap: how long it waited for its locks, how long it held them (none
/// when they were not granted), and why it failed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SwapAttempt {
    /// `swap` or `swap back`.
    pub what: String,
    pub waited_ms: f64,
    pub held_ms: Option<f64>,
    pub error: Option<String>,
}

/// How far a run's batches got (the current batched step's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyState {
    /// The highest key when the batches began: their upper bound.
    pub max_key: Option<Vec<String>>,
    /// The last key done (a run copied before lanes existed keeps it here).
    pub high_water: Option<Vec<String>>,
    pub rows_copied: i64,
    pub rows_estimate: i64,
    /// The last batch size.
    pub batch_size: Option<i32>,
}

const COLUMNS: &str = "id, kind, table_name, playbook, plan, step, status, paused, max_key, high_water,
    rows_copied, rows_estimate, batch_size, rows_per_sec, throttle, message,
    to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'), to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS TZ'),
    to_jsonb(runs.*) -> 'swaps',
    to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
    extract(epoch FROM started_at)::float8, extract(epoch FROM updated_at)::float8,
    to_jsonb(runs.*) -> 'replay' || jsonb_build_object('age_seconds',
        extract(epoch FROM now() - (to_jsonb(runs.*) -> 'replay' ->> 'at')::timestamptz)::float8)";

fn from_row(r: &tokio_postgres::Row) -> Row {
    Row {
        id: r.get(0),
        kind: r.get(1),
        table_name: r.get(2),
        playbook: r.get(3),
        plan: r.get(4),
        step: r.get(5),
        status: r.get(6),
        paused: r.get(7),
        copy: CopyState {
            max_key: r.get(8),
            high_water: r.get(9),
            rows_copied: r.get(10),
            rows_estimate: r.get(11),
            batch_size: r.get(12),
        },
        rows_per_sec: r.get(13),
        throttle: r.get(14),
        message: r.get(15),
        started_at: r.get(16),
        updated_at: r.get(17),
        started_utc: r.get(19),
        updated_utc: r.get(20),
        started_epoch: r.get(21),
        updated_epoch: r.get(22),
        // Read through to_jsonb: a state table made by an older version has no column.
        swaps: r
            .get::<_, Option<serde_json::Value>>(18)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        replay: r
            .get::<_, Option<serde_json::Value>>(23)
            .and_then(|v| serde_json::from_value(v).ok()),
    }
}

/// Appends an attempt to a run's swap attempts.
pub async fn add_swap_attempt(
    c: &Client,
    id: &str,
    attempt: &SwapAttempt,
) -> Result<(), tokio_postgres::Error> {
    let v = serde_json::to_value(attempt).unwrap_or_default();
    c.execute(
        "UPDATE lockstep.runs SET swaps = coalesce(swaps, '[]') || jsonb_build_array($2::jsonb) WHERE id = $1",
        &[&id, &v],
    )
    .await?;
    Ok(())
}

/// Creates the state tables when missing. Runners that start at once on several tables or
/// schemas of one database (a fleet) take turns: concurrent `CREATE … IF NOT EXISTS` of the
/// same table can fail.
pub async fn ensure(c: &Client) -> Result<(), tokio_postgres::Error> {
    in_transaction(c, "BEGIN", async {
        c.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtextextended('lockstep:schema', 0)); {SCHEMA_SQL}; {RUNNERS_SQL}"
        ))
        .await
    })
    .await
}

/// Creates the heartbeat table when missing (also for a state table made by an older
/// version).
pub async fn ensure_runners(c: &Client) -> Result<(), tokio_postgres::Error> {
    c.batch_execute(RUNNERS_SQL).await
}

/// Whether the state table exists yet.
pub async fn exists(c: &Client) -> Result<bool, tokio_postgres::Error> {
    Ok(
        c.query_one("SELECT to_regclass('lockstep.runs') IS NOT NULL", &[])
            .await?
            .get(0),
    )
}

/// A new run, at step `created`, running.
pub struct NewRun<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub table_name: &'a str,
    pub playbook: &'a str,
    pub plan: &'a serde_json::Value,
    pub rows_estimate: i64,
}

/// Records a new run.
pub async fn insert(c: &Client, run: &NewRun<'_>) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "INSERT INTO lockstep.runs (id, kind, table_name, playbook, plan, step, status, rows_estimate)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &run.id,
            &run.kind,
            &run.table_name,
            &run.playbook,
            run.plan,
            &CREATED,
            &Status::Running.as_str(),
            &run.rows_estimate,
        ],
    )
    .await?;
    Ok(())
}

/// A run by id, or (with `None`) the most recent one.
pub async fn load(
    c: &impl GenericClient,
    id: Option<&str>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let row = match id {
        Some(id) => {
            c.query_opt(
                &format!("SELECT {COLUMNS} FROM lockstep.runs WHERE id = $1"),
                &[&id],
            )
            .await?
        }
        None => {
            c.query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM lockstep.runs ORDER BY started_at DESC, id DESC LIMIT 1"
                ),
                &[],
            )
            .await?
        }
    };
    Ok(row.as_ref().map(from_row))
}

/// Runs on `table_name` that are neither finished nor rolled back (an in-place run that is
/// `done` does not hold the table: its remaining finalize or rollback is optional).
pub async fn open_runs(c: &Client, table_name: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(c.query(
        "SELECT id FROM lockstep.runs WHERE table_name = $1 AND step NOT IN ('finalized', 'rolled_back', 'done')",
        &[&table_name],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Records a completed step (and status / message).
pub async fn set_step(
    c: &impl GenericClient,
    id: &str,
    step: &str,
    status: Status,
    message: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE lockstep.runs SET step = $2, status = $3, message = $4, updated_at = now() WHERE id = $1",
        &[&id, &step, &status.as_str(), &message],
    )
    .await?;
    Ok(())
}

/// The statement that records `step` as completed (and the status), for the end of a step's
/// own transaction.
pub fn set_step_sql(id: &str, step: &str, status: Option<Status>) -> String {
    let status = status.map_or(String::new(), |s| format!(", status = {}", lit(s.as_str())));
    format!(
        "UPDATE lockstep.runs SET step = {}{status}, updated_at = now() WHERE id = {}",
        lit(step),
        lit(id)
    )
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Sets the status (and message) without changing the step.
pub async fn set_status(
    c: &impl GenericClient,
    id: &str,
    status: Status,
    message: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE lockstep.runs SET status = $2, message = $3, updated_at = now() WHERE id = $1",
        &[&id, &status.as_str(), &message],
    )
    .await?;
    Ok(())
}

/// Asks a running copy to pause (or to go on).
pub async fn set_paused(c: &Client, id: &str, paused: bool) -> Result<u64, tokio_postgres::Error> {
    c.execute(
        "UPDATE lockstep.runs SET paused = $2, updated_at = now() WHERE id = $1",
        &[&id, &paused],
    )
    .await
}

/// The latest run on `table_name` (qualified, as stored).
pub async fn latest_for_table(
    c: &impl GenericClient,
    table_name: &str,
) -> Result<Option<Row>, tokio_postgres::Error> {
    Ok(c
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM lockstep.runs WHERE table_name = $1 ORDER BY started_at DESC, id DESC LIMIT 1"
            ),
            &[&table_name],
        )
        .await?
        .as_ref()
        .map(from_row))
}

/// Every run, oldest first.
pub async fn load_all(c: &impl GenericClient) -> Result<Vec<Row>, tokio_postgres::Error> {
    Ok(c.query(
        &format!("SELECT {COLUMNS} FROM lockstep.runs ORDER BY started_at, id"),
        &[],
    )
    .await?
    .iter()
    .map(from_row)
    .collect())
}

/// What `lockstep set` and `lockstep swap` asked of a run while it works: settings that
/// override the playbook's, and a swap on command (`lockstep.controls`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Controls {
    pub max_rows_per_second: Option<i64>,
    pub target_batch_ms: Option<i64>,
    pub duty_cycle: Option<f64>,
    /// `lockstep swap` was asked.
    pub swap_requested: bool,
}

/// The controls of a run (none when the table does not exist yet).
pub async fn controls(c: &impl GenericClient, id: &str) -> Result<Controls, tokio_postgres::Error> {
    let exists: bool = c
        .query_one("SELECT to_regclass('lockstep.controls') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(Controls::default());
    }
    Ok(c.query_opt(
        "SELECT max_rows_per_second, target_batch_ms, duty_cycle, swap_requested_at IS NOT NULL
         FROM lockstep.controls WHERE run_id = $1",
        &[&id],
    )
    .await?
    .map(|r| Controls {
        max_rows_per_second: r.get(0),
        target_batch_ms: r.get(1),
        duty_cycle: r.get(2),
        swap_requested: r.get(3),
    })
    .unwrap_or_default())
}

/// A setting `lockstep set` can change while a run works.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    MaxRowsPerSecond(i64),
    TargetBatchMs(i64),
    DutyCycle(f64),
}

impl Control {
    /// The keys `lockstep set` knows.
    pub const KEYS: [&'static str; 3] = ["max_rows_per_second", "target_batch_ms", "duty_cycle"];

    /// `key=value`: `max_rows_per_second=500` (0: no limit), `target_batch_ms=200` (or a
    /// duration, `batch_time=200ms`), `duty_cycle=0.5`.
    pub fn parse(s: &str) -> Result<Control, String> {
        let Some((key, value)) = s.split_once('=') else {
            return Err(format!(
                "`{s}`: expected KEY=VALUE, with KEY one of {}",
                Control::KEYS.join(", ")
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let int = |what: &str| {
            value
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| format!("`{key}`: expected {what}, found `{value}`"))
        };
        match key {
            "max_rows_per_second" | "rows_per_second" => Ok(Control::MaxRowsPerSecond(int(
                "a number of rows (0: no limit)",
            )?)),
            "target_batch_ms" | "batch_time" => {
                let ms = value
                    .parse::<i64>()
                    .ok()
                    .or_else(|| crate::lint::context::parse_duration_ms(value).map(|v| v as i64))
                    .filter(|v| *v > 0)
                    .ok_or_else(|| {
                        format!("`{key}`: expected milliseconds or a duration such as 200ms, found `{value}`")
                    })?;
                Ok(Control::TargetBatchMs(ms))
            }
            "duty_cycle" => match value.parse::<f64>() {
                Ok(v) if v > 0.0 && v <= 1.0 => Ok(Control::DutyCycle(v)),
                _ => Err(format!(
                    "`duty_cycle`: must be more than 0 and at most 1 (1: never rest), found `{value}`"
                )),
            },
            other => {
                let hint = crate::lint::did_you_mean(other, Control::KEYS.iter().copied())
                    .map_or(String::new(), |m| format!(" (did you mean `{m}`?)"));
                Err(format!(
                    "unknown setting `{other}`{hint}; expected one of {}",
                    Control::KEYS.join(", ")
                ))
            }
        }
    }
}

/// Records `control` for run `id` (creating the controls table when missing).
pub async fn set_control(
    c: &Client,
    id: &str,
    control: Control,
) -> Result<(), tokio_postgres::Error> {
    ensure(c).await?;
    let sql = |column: &str| {
        format!(
            "INSERT INTO lockstep.controls (run_id, {column}) VALUES ($1, $2)
             ON CONFLICT (run_id) DO UPDATE SET {column} = EXCLUDED.{column}, updated_at = now()"
        )
    };
    match control {
        Control::MaxRowsPerSecond(v) => c.execute(&sql("max_rows_per_second"), &[&id, &v]).await?,
        Control::TargetBatchMs(v) => c.execute(&sql("target_batch_ms"), &[&id, &v]).await?,
        Control::DutyCycle(v) => c.execute(&sql("duty_cycle"), &[&id, &v]).await?,
    };
    Ok(())
}

/// Asks the runner of run `id` to swap (`[swap] mode = "manual"`).
pub async fn request_swap(c: &Client, id: &str) -> Result<(), tokio_postgres::Error> {
    ensure(c).await?;
    c.execute(
        "INSERT INTO lockstep.controls (run_id, swap_requested_at) VALUES ($1, now())
         ON CONFLICT (run_id) DO UPDATE SET swap_requested_at = now(), updated_at = now()",
        &[&id],
    )
    .await?;
    Ok(())
}

/// Records the upper bound of a run's batches.
pub async fn set_max_key(
    c: &Client,
    id: &str,
    key: &[String],
    reset_count: bool,
) -> Result<(), tokio_postgres::Error> {
    let sql = if reset_count {
        "UPDATE lockstep.runs SET max_key = $2, rows_copied = 0, updated_at = now() WHERE id = $1"
    } else {
        "UPDATE lockstep.runs SET max_key = $2, updated_at = now() WHERE id = $1"
    };
    c.execute(sql, &[&id, &key]).await?;
    Ok(())
}

/// The worst replay lag of the replicas in milliseconds (`None` without replicas).
pub async fn replica_lag_ms(c: &Client) -> Option<i64> {
    c.query_one(
        "SELECT (max(extract(epoch FROM replay_lag) * 1000))::bigint FROM pg_stat_replication",
        &[],
    )
    .await
    .ok()
    .and_then(|r| r.get::<_, Option<i64>>(0))
}

/// One key range of a shadow rebuild's copy: `(previous lane's upper key, upper_key]`,
/// copied up to `high_water`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub lane: i32,
    pub upper: Vec<String>,
    /// The last key copied (the lower bound until the first batch; `None` from the start).
    pub high_water: Option<Vec<String>>,
}

/// The lanes of a run, in key order (none before its copy starts).
pub async fn lanes(c: &impl GenericClient, id: &str) -> Result<Vec<Lane>, tokio_postgres::Error> {
    Ok(c.query(
        "SELECT lane, upper_key, high_water FROM lockstep.lanes WHERE run_id = $1 ORDER BY lane",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| Lane {
        lane: r.get(0),
        upper: r.get(1),
        high_water: r.get(2),
    })
    .collect())
}

/// Records the lanes of a run, all at once: `bounds` are the upper keys in order, each lane
/// starting after the one before, the first after `start` (from the start with `None`).
pub async fn create_lanes(
    c: &Client,
    id: &str,
    start: Option<&[String]>,
    bounds: &[Vec<String>],
) -> Result<Vec<Lane>, tokio_postgres::Error> {
    let lanes: Vec<Lane> = bounds
        .iter()
        .enumerate()
        .map(|(i, upper)| Lane {
            lane: i as i32,
            upper: upper.clone(),
            high_water: match i.checked_sub(1) {
                Some(p) => Some(bounds[p].clone()),
                None => start.map(<[String]>::to_vec),
            },
        })
        .collect();
    in_transaction(c, "BEGIN", async {
        for l in &lanes {
            c.execute(
                "INSERT INTO lockstep.lanes (run_id, lane, upper_key, high_water) VALUES ($1, $2, $3, $4)",
                &[&id, &l.lane, &l.upper, &l.high_water],
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    Ok(lanes)
}

/// Forgets the lanes of a run (after its copy, or when it is rolled back). A state table
/// from before lanes existed has nothing to forget.
pub async fn drop_lanes(c: &Client, id: &str) -> Result<(), tokio_postgres::Error> {
    let exists: bool = c
        .query_one("SELECT to_regclass('lockstep.lanes') IS NOT NULL", &[])
        .await?
        .get(0);
    if exists {
        c.execute("DELETE FROM lockstep.lanes WHERE run_id = $1", &[&id])
            .await?;
    }
    Ok(())
}

/// How far the lanes of a copy are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneCounts {
    pub total: i64,
    pub copied: i64,
    pub under_way: i64,
}

/// The lanes of a run's copy: how many, copied, under way (`None` when it has none).
pub async fn lane_counts(c: &Client, id: &str) -> Option<LaneCounts> {
    let exists = c
        .query_one("SELECT to_regclass('lockstep.lanes') IS NOT NULL", &[])
        .await
        .ok()?
        .get::<_, bool>(0);
    if !exists {
        return None;
    }
    c.query_one(
        "SELECT count(*),
                count(*) FILTER (WHERE h.high_water = h.upper_key),
                count(*) FILTER (WHERE h.high_water IS DISTINCT FROM p.upper_key
                                   AND h.high_water IS DISTINCT FROM h.upper_key)
         FROM lockstep.lanes h
         LEFT JOIN lockstep.lanes p ON p.run_id = h.run_id AND p.lane = h.lane - 1
         WHERE h.run_id = $1",
        &[&id],
    )
    .await
    .ok()
    .map(|r| LaneCounts {
        total: r.get(0),
        copied: r.get(1),
        under_way: r.get(2),
    })
    .filter(|l| l.total > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_parse_with_clear_errors() {
        assert_eq!(
            Control::parse("max_rows_per_second=500"),
            Ok(Control::MaxRowsPerSecond(500))
        );
        assert_eq!(
            Control::parse("batch_time=2s"),
            Ok(Control::TargetBatchMs(2000))
        );
        assert_eq!(
            Control::parse("target_batch_ms=150"),
            Ok(Control::TargetBatchMs(150))
        );
        assert_eq!(
            Control::parse("duty_cycle=0.5"),
            Ok(Control::DutyCycle(0.5))
        );
        assert!(Control::parse("duty_cycle=0")
            .unwrap_err()
            .contains("more than 0"));
        assert!(Control::parse("max_rows_per_secnd=5")
            .unwrap_err()
            .contains("did you mean `max_rows_per_second`"));
        assert!(Control::parse("max_rows_per_second=-1").is_err());
        assert!(Control::parse("workers").unwrap_err().contains("KEY=VALUE"));
    }

    #[test]
    fn statuses_read_back_as_written() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("exploded"), None);
    }
}
