//! The new table's indexes, built once the copy is done: each index of the target built per
//! partition, several at once (one per connection), then attached to the parent's index one
//! at a time. A build and what goes with it are one transaction, so an existing index is
//! complete; an INVALID one (a concurrent build interrupted by hand) is built again.

use std::collections::VecDeque;
use std::time::Instant;

use super::runner::Runner;
use super::ChildIndex;
use crate::playbook::exec::{hold_point, Conn, EngineError};

impl Runner<'_, '_> {
    pub(super) async fn indexes(&mut self) -> Result<(), EngineError> {
        let jobs = self.plan.index_sql();
        let total: usize = jobs.iter().map(|j| j.children.len()).sum();
        if jobs.iter().any(|j| j.children.len() > 1) {
            self.exec.crew().await;
        }
        if self.plan.reordered()
            && !self
                .exec
                .main()
                .exists(&self.plan.rel(&self.plan.names.shadow_pk), "indexes")
                .await?
        {
            self.exec.step(
                "indexes",
                "clearing the logged keys from the copy (an update during the copy may have copied a row twice; the replay copies them again)",
            );
            // Every change committed so far is logged before the purge reads the log.
            self.pump_now(self.exec.main(), true).await?;
            self.exec
                .main()
                .with_retry(&self.capture.purge_sql(), "indexes")
                .await?;
        }
        let mut started = 0;
        for job in &jobs {
            if job.unique {
                self.exec.step(
                    "replay",
                    "every logged change, so that the copy matches the table at one moment before a unique index is built",
                );
                // The last batch of a catch-up takes every entry its snapshot sees.
                self.catch_up(false).await?;
            }
            let main = self.exec.main();
            if let Some(first) = &job.first {
                main.with_retry(std::slice::from_ref(first), "indexes")
                    .await?;
            }
            // The partitions' builds, in lanes.
            let queue: VecDeque<(usize, &ChildIndex)> = job
                .children
                .iter()
                .map(|child| {
                    started += 1;
                    (started, child)
                })
                .collect();
            let this = &*self;
            this.exec
                .in_lanes(queue, async |conn, _, (n, child)| {
                    this.build(conn, child, (n, total)).await
                })
                .await?;
            // Then each attaches to the parent's index, one at a time: each takes a lock on it.
            for child in &job.children {
                let Some(attach) = &child.attach else {
                    continue;
                };
                let attached: bool = main
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1))",
                        &[&self.plan.rel(&child.name)],
                        "indexes",
                    )
                    .await?
                    .get(0);
                if !attached {
                    main.with_retry(std::slice::from_ref(attach), "indexes")
                        .await?;
                }
            }
            if let Some((sql, rel)) = &job.last {
                if !main.exists(rel, "indexes").await? {
                    main.with_retry(std::slice::from_ref(sql), "indexes")
                        .await?;
                }
            }
        }
        // Their comments (under the new table's names, which the swap renames).
        let extras = self.plan.index_extras_sql();
        if !extras.is_empty() {
            self.exec.main().with_retry(&extras, "indexes").await?;
        }
        Ok(())
    }

    /// Builds one index of one partition (the `started`-th of `total`), unless it exists.
    async fn build(
        &self,
        conn: Conn<'_, '_>,
        child: &ChildIndex,
        (started, total): (usize, usize),
    ) -> Result<(), EngineError> {
        conn.check()?;
        self.exec
            .step("indexes", &format!("{started}/{total}: {}", child.name));
        let rel = self.plan.rel(&child.name);
        let valid: Option<bool> = conn
            .query_opt(
                "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
                &[&rel],
                "indexes",
            )
            .await?
            .map(|r| r.get(0));
        if valid == Some(false) {
            conn.note(&format!(
                "{rel} is INVALID (an interrupted build): dropping and building it again"
            ));
            conn.with_retry(&[format!("DROP INDEX IF EXISTS {rel}")], "indexes")
                .await?;
        }
        if valid != Some(true) {
            let t0 = Instant::now();
            conn.with_retry(&child.build, "indexes").await?;
            conn.rest(t0.elapsed()).await;
        }
        if started == 1 {
            hold_point("indexes").await;
        }
        Ok(())
    }
}
