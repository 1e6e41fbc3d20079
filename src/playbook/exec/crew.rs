//! Several connections at once: the helpers a run opens for `[backfill] workers`, and
//! [`Exec::in_lanes`], which works off a queue of jobs with all of them. The lanes run
//! concurrently on the one task ([`join_all`]); PostgreSQL does the work, so a thread per
//! connection would buy nothing.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use tokio_postgres::Client;

use super::conn::{Conn, Exec};
use super::error::{dberr, first_error, EngineError};

/// The session settings of every connection of a run. No row-level security: a statement
/// that it would affect fails instead of silently seeing (or changing) fewer rows. No JIT: a batch's plan often costs
/// more than `jit_above_cost`, and compiling it took longer than running it (half a second
/// per verified range, measured with `lockstep demo --bench`). No parallel workers for index
/// builds: the connections already build one index each, and workers would take cores the
/// duty cycle does not count.
pub(crate) async fn runner_session(client: &Client) -> Result<(), EngineError> {
    client
        .batch_execute(
            "SET row_security = off; SET jit = off; SET max_parallel_maintenance_workers = 0",
        )
        .await
        .map_err(dberr("session settings"))
}

/// A future of a lane.
type LaneFuture<'f, T> = Pin<Box<dyn Future<Output = T> + 'f>>;

/// Runs `futures` concurrently on this task; their results, in order.
async fn join_all<T>(futures: Vec<LaneFuture<'_, T>>) -> Vec<T> {
    let mut futures: Vec<Option<LaneFuture<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in futures.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

impl Exec<'_> {
    /// Learns the backends of the main connection and of the monitor (which writes the
    /// heartbeat every few seconds), before any work: the runner's own connections never
    /// make the database look busy, also to a run that works with one connection.
    pub(crate) async fn own_connections(&mut self) {
        for c in std::iter::once(self.client).chain(self.monitor) {
            if let Ok(r) = c.query_one("SELECT pg_backend_pid()", &[]).await {
                self.pids.push(r.get(0));
            }
        }
    }

    /// Opens the helper connections `[backfill] workers` asks for (once per run): fewer
    /// when the server refuses more, or when there is no way to connect again.
    pub(crate) async fn crew(&mut self) {
        if self.crewed {
            return;
        }
        self.crewed = true;
        let Some(connect) = self.connect else {
            return;
        };
        for _ in 1..self.backfill().workers {
            let helper = async {
                let c = connect.connect().await.map_err(|e| e.to_string())?;
                runner_session(&c).await.map_err(|e| e.to_string())?;
                let pid: i32 = c
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await
                    .map_err(|e| e.to_string())?
                    .get(0);
                Ok::<_, String>((c, pid))
            };
            match helper.await {
                Ok((c, pid)) => {
                    self.helpers.push(c);
                    self.pids.push(pid);
                }
                Err(e) => {
                    self.note(&format!(
                        "could not open another connection ({e}): working with {}",
                        1 + self.helpers.len()
                    ));
                    return;
                }
            }
        }
    }

    /// A connection of its own for short transactions beside the work (logical capture's
    /// tokens), opened by [`Exec::open_flusher`]: never in the middle of another
    /// transaction, as a helper or the monitor may be.
    pub(crate) fn flusher(&self) -> Option<&Client> {
        self.flusher.as_ref()
    }

    /// Opens [`Exec::flusher`] if there is a way to connect (a failure leaves the run
    /// without: callers then wait for the server instead).
    pub(crate) async fn open_flusher(&mut self) {
        if self.flusher.is_some() {
            return;
        }
        let Some(connect) = self.connect else {
            return;
        };
        let Ok(c) = connect.connect().await else {
            return;
        };
        if runner_session(&c).await.is_err() {
            return;
        }
        if let Ok(r) = c.query_one("SELECT pg_backend_pid()", &[]).await {
            self.pids.push(r.get(0));
        }
        self.flusher = Some(c);
    }

    /// How many connections the run has now.
    pub(crate) fn crew_size(&self) -> usize {
        1 + self.helpers.len()
    }

    /// Works off `queue` with every connection of the crew at once (as many as there are
    /// jobs): each takes the next job when done with one. The main connection (`index` 0)
    /// always works; a helper takes a job only while the application leaves the machine
    /// alone (with a duty cycle below 1): under load the duty cycle is the run's as a whole,
    /// and the main connection alone keeps to it. The first failure stops the others at
    /// their next safe point and is returned.
    pub(crate) async fn in_lanes<J>(
        &self,
        queue: VecDeque<J>,
        work: impl AsyncFn(Conn<'_, '_>, usize, J) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        self.lanes(queue, true, work).await
    }

    /// As [`Exec::in_lanes`], with the helpers taking their jobs at once: for work whose
    /// batches rest for the duty cycle themselves (shared by the connections working), and
    /// that must not be left to the main connection alone while the application is busy.
    pub(crate) async fn in_lanes_at_once<J>(
        &self,
        queue: VecDeque<J>,
        work: impl AsyncFn(Conn<'_, '_>, usize, J) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        self.lanes(queue, false, work).await
    }

    async fn lanes<J>(
        &self,
        queue: VecDeque<J>,
        helpers_wait: bool,
        work: impl AsyncFn(Conn<'_, '_>, usize, J) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let n = self.crew_size().min(queue.len()).max(1);
        let queue = RefCell::new(queue);
        self.abort.store(false, Ordering::SeqCst);
        self.working.store(n, Ordering::SeqCst);
        let clients: Vec<&Client> = std::iter::once(self.client)
            .chain(self.helpers.iter())
            .take(n)
            .collect();
        let work = &work;
        let futures: Vec<LaneFuture<'_, Result<(), EngineError>>> = clients
            .into_iter()
            .enumerate()
            .map(|(i, client)| {
                let conn = Conn { exec: self, client };
                let queue = &queue;
                Box::pin(async move {
                    loop {
                        if i > 0 && helpers_wait {
                            if let Err(e) = conn.wait_for_a_quiet_moment(queue).await {
                                self.abort.store(true, Ordering::SeqCst);
                                return Err(e);
                            }
                        }
                        let Some(job) = queue.borrow_mut().pop_front() else {
                            self.working.fetch_sub(1, Ordering::SeqCst);
                            return Ok(());
                        };
                        if let Err(e) = work(conn, i, job).await {
                            self.abort.store(true, Ordering::SeqCst);
                            return Err(e);
                        }
                    }
                }) as LaneFuture<'_, _>
            })
            .collect();
        let result = first_error(join_all(futures).await);
        self.working.store(1, Ordering::SeqCst);
        self.abort.store(false, Ordering::SeqCst);
        result
    }
}

impl Conn<'_, '_> {
    /// A helper's wait before its next job: while jobs are left and the application is busy
    /// (and the duty cycle asks for rest), or the replay is behind (see `backlog.rs`: the
    /// helper's work would compete with it), it does not count as working.
    async fn wait_for_a_quiet_moment<T>(
        &self,
        queue: &RefCell<VecDeque<T>>,
    ) -> Result<(), EngineError> {
        let rests = self.exec.backfill().duty_cycle < 1.0;
        let mut waiting = false;
        while !queue.borrow().is_empty()
            && (self.exec.backlog.behind() || (rests && self.busy().await))
        {
            if !waiting {
                self.exec.working.fetch_sub(1, Ordering::SeqCst);
                waiting = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.check()?;
        }
        if waiting {
            self.exec.working.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_all_keeps_the_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(join_all(vec![
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                1
            }) as LaneFuture<'_, i32>,
            Box::pin(async { 2 }),
        ]));
        assert_eq!(out, vec![1, 2]);
    }
}
