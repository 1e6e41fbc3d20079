//! Statements that cannot run in a transaction block (`CREATE INDEX CONCURRENTLY` and its
//! kin): they wait for older transactions themselves, so the run waits for those first, in
//! view (naming them), and then runs the statement without a lock_timeout: its SHARE UPDATE
//! EXCLUSIVE lock lets reads and writes go on.

use std::time::{Duration, Instant};

use super::conn::Conn;
use super::error::{dberr, EngineError};
use super::hold::hold_point;
use crate::playbook::state::{self, Status};

impl Conn<'_, '_> {
    /// Waits until the transactions of this database that hold a snapshot now have ended;
    /// after a second, says which ones it waits for.
    pub(crate) async fn wait_for_older_transactions(&self, step: &str) -> Result<(), EngineError> {
        let run_id = &self.exec.run_id;
        let since: String = self
            .query_one("SELECT clock_timestamp()::text", &[], step)
            .await?
            .get(0);
        let started = Instant::now();
        let mut noted = false;
        loop {
            let rows = self
                .query(
                    "SELECT pid, coalesce(state, '?'), extract(epoch FROM now() - xact_start)::bigint,
                            left(regexp_replace(coalesce(query, ''), '\\s+', ' ', 'g'), 80)
                     FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()
                       AND backend_type = 'client backend' AND backend_xmin IS NOT NULL
                       AND xact_start < $1::text::timestamptz
                     ORDER BY xact_start LIMIT 3",
                    &[&since],
                    step,
                )
                .await?;
            if rows.is_empty() {
                if noted {
                    let _ = state::set_status(self.client, run_id, Status::Running, None).await;
                }
                return Ok(());
            }
            if !noted && started.elapsed() >= Duration::from_secs(1) {
                let who = rows
                    .iter()
                    .map(|r| {
                        format!(
                            "backend pid {} ({}, transaction open {} s, `{}`)",
                            r.get::<_, i32>(0),
                            r.get::<_, String>(1),
                            r.get::<_, i64>(2),
                            r.get::<_, String>(3)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let msg = format!("index builds wait for older transactions to end: {who}");
                self.note(&msg);
                let _ = state::set_status(self.client, run_id, Status::Running, Some(&msg)).await;
                noted = true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.check()?;
        }
    }

    /// A statement that cannot run in a transaction block, after the older transactions
    /// ended, without lock_timeout.
    pub(crate) async fn concurrent(&self, sql: &str, step: &str) -> Result<(), EngineError> {
        self.wait_for_older_transactions(step).await?;
        self.batch("SET lock_timeout = 0", step).await?;
        let r = self.client.batch_execute(sql).await;
        let reset = self.client.batch_execute("RESET lock_timeout").await;
        r.and(reset).map_err(dberr(step))
    }

    /// Builds `index` (qualified) with `sql` (`CREATE … INDEX CONCURRENTLY`) unless a valid
    /// one exists; an INVALID leftover of an interrupted build is dropped first. Progress
    /// from `pg_stat_progress_create_index`, when the run has a monitor connection.
    pub(crate) async fn build_index_concurrently(
        &self,
        index: &str,
        sql: &str,
        step: &str,
    ) -> Result<(), EngineError> {
        let valid: Option<bool> = self
            .query_opt(
                "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
                &[&index],
                step,
            )
            .await?
            .map(|r| r.get(0));
        if valid == Some(true) {
            return Ok(());
        }
        if valid == Some(false) {
            self.note(&format!(
                "{index} is INVALID (an interrupted build): dropping and building it again"
            ));
            self.concurrent(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"), step)
                .await?;
        }
        self.wait_for_older_transactions(step).await?;
        self.batch("SET lock_timeout = 0", step).await?;
        let pid: i32 = self
            .query_one("SELECT pg_backend_pid()", &[], step)
            .await?
            .get(0);
        let build = self.client.batch_execute(sql);
        tokio::pin!(build);
        let r = match self.exec.monitor {
            None => build.await,
            Some(m) => loop {
                tokio::select! {
                    r = &mut build => break r,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {
                        if let Ok(Some(row)) = m.query_opt(
                            "SELECT phase, coalesce(blocks_done, 0) + coalesce(tuples_done, 0),
                                    coalesce(blocks_total, 0) + coalesce(tuples_total, 0)
                             FROM pg_stat_progress_create_index WHERE pid = $1",
                            &[&pid],
                        ).await {
                            let (phase, done, total): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
                            self.exec.step(step, &format!("{index}: {phase}"));
                            if total > 0 {
                                self.exec.copy(done, total, 0.0);
                            }
                        }
                    }
                }
            },
        };
        let reset = self.client.batch_execute("RESET lock_timeout").await;
        r.and(reset).map_err(dberr(step))?;
        hold_point("indexes").await;
        Ok(())
    }
}
