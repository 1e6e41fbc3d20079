//! The reverse sync by logical decoding (`[swap] reverse = "logical"`, the default with
//! logical capture): nothing on the writers' path after the swap. Before the swap's lock,
//! a publication of the new table (its partitions' changes published as the table's own)
//! and a replication slot; from the swap on, the slot keeps every change to the table, and
//! [`Reverse::pump`] moves their keys into the reverse log that reverse.rs applies.
//!
//! - The slot moves on only past keys committed to the log: a rollback killed at any point
//!   reads the same changes again.
//! - The slot also keeps the runner's own last replays into the new table before the swap:
//!   applying a key copies the new table's row as it is, so an extra key costs a write.
//! - Under the swap back's lock, the last keys come up to a token committed after the lock
//!   was granted, waited for [`SWAP_WAIT`](super::logical::SWAP_WAIT) at most.
//! - The slot holds back WAL until it is read (`lockstep sync-back`), and goes with the
//!   swap back, a rollback before the swap, or finalize.

use std::cell::RefCell;
use std::rc::Rc;

use tokio_postgres::Client;

use super::logical::{
    discard_sql, open_decoder, reached_under_lock, retained_by, send_token, slot_name, write_keys,
    PumpError,
};
use super::stream::{Batch, Decoder, Patience};
use super::swap::Attempt;
use super::ShadowPlan;
use crate::playbook::exec::{dberr, in_transaction, Conn, EngineError, Exec};
use crate::playbook::keyset::Keyset;
use crate::playbook::names::quote_ident as q;
use crate::playbook::settings::ReverseSync;

impl ShadowPlan {
    /// The slot and the publication (one name) that keep the new table's changes after the
    /// swap, with `reverse = "logical"`.
    pub(super) fn reverse_slot(&self) -> Option<String> {
        (self.reverse == ReverseSync::Logical).then(|| slot_name("lockstep_r", &self.names.run_id))
    }

    /// The reverse slot and its publication gone (idempotent; a stream still open ends).
    pub(super) fn reverse_discard_sql(&self) -> Vec<String> {
        self.reverse_slot()
            .map(|n| discard_sql(&n, &n))
            .unwrap_or_default()
    }
}

/// With `reverse = "logical"`, before the swap and outside its lock: the publication of the
/// new table (its partitions' changes published as the table's own), then the slot, which
/// waits for the transactions running now to end. Both are made once: a slot must never
/// decode a change of a moment its publication did not exist.
pub(super) async fn install(conn: Conn<'_, '_>, plan: &ShadowPlan) -> Result<(), EngineError> {
    let Some(name) = plan.reverse_slot() else {
        return Ok(());
    };
    let c = conn.client;
    let published: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&name],
        )
        .await
        .map_err(dberr("swap"))?
        .get(0);
    if !published {
        c.batch_execute(&format!(
            "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)",
            q(&name),
            plan.shadow()
        ))
        .await
        .map_err(dberr("swap"))?;
    }
    conn.note(&format!(
        "reverse sync: after the swap, slot {name} keeps the changes for a rollback, with no trigger (waiting for the transactions running now to end)"
    ));
    c.execute(
        "SELECT pg_create_logical_replication_slot($1, 'pgoutput') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
        &[&name],
    )
    .await
    .map_err(dberr("swap"))?;
    Ok(())
}

/// Drops the reverse slot and its publication if they exist; whether they did.
pub(crate) async fn drop_reverse_slot(
    client: &Client,
    plan: &ShadowPlan,
) -> Result<bool, EngineError> {
    let Some(name) = plan.reverse_slot() else {
        return Ok(false);
    };
    let found: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) OR EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&name],
        )
        .await
        .map_err(dberr("rollback"))?
        .get(0);
    if found {
        for s in plan.reverse_discard_sql() {
            client.batch_execute(&s).await.map_err(dberr("rollback"))?;
        }
    }
    Ok(found)
}

/// The WAL the reverse slot holds back, in bytes (`None` without one).
pub(crate) async fn retained(client: &Client, plan: &ShadowPlan) -> Option<(String, i64)> {
    let slot = plan.reverse_slot()?;
    let held = retained_by(client, &slot).await?;
    Some((slot, held))
}

/// The stream of the reverse slot (`reverse = "logical"`), opened when first needed and
/// again after it broke.
pub(super) struct Reverse<'p> {
    plan: &'p ShadowPlan,
    slot: Option<String>,
    decoder: RefCell<Option<Rc<Decoder>>>,
}

impl<'p> Reverse<'p> {
    pub(super) fn new(plan: &'p ShadowPlan) -> Self {
        Reverse {
            plan,
            slot: plan.reverse_slot(),
            decoder: RefCell::new(None),
        }
    }

    async fn decoder(
        &self,
        c: &Client,
        exec: &Exec<'_>,
        slot: &str,
    ) -> Result<Rc<Decoder>, EngineError> {
        if let Some(d) = self.decoder.borrow().clone() {
            match d.failed() {
                None => return Ok(d),
                Some(why) => exec.note(&format!(
                    "reverse replay: the replication stream stopped ({why}): reading the slot again from where it was confirmed"
                )),
            }
        }
        self.decoder.borrow_mut().take();
        let exists: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
                &[&slot],
            )
            .await
            .map_err(dberr("reverse replay"))?
            .get(0);
        if !exists {
            return Err(EngineError::State(format!(
                "the reverse slot {slot} is gone: the changes made since the swap cannot reach {}, and swapping back would lose them. {} has them all: `lockstep finalize` keeps it",
                self.plan.old(),
                self.plan.source()
            )));
        }
        let keys = self
            .plan
            .reverse_keys()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let d = Rc::new(open_decoder(c, exec, slot, slot, keys, "reverse replay").await?);
        *self.decoder.borrow_mut() = Some(d.clone());
        Ok(d)
    }

    /// Moves the keys the slot holds for changes committed up to now into the reverse
    /// log, a transaction at a time (the slot moves on only past keys committed to the
    /// log). Returns the keys logged.
    pub(super) async fn pump(&self, conn: Conn<'_, '_>) -> Result<u64, EngineError> {
        let Some(slot) = &self.slot else {
            return Ok(0);
        };
        let c = conn.client;
        let mut logged = 0;
        let mut patience = Patience::new();
        let mut noted = std::time::Instant::now();
        'start: loop {
            let d = self.decoder(c, conn.exec, slot).await?;
            let (n, token) = d.token();
            send_token(c, conn.exec, false, &token)
                .await
                .map_err(dberr("reverse replay"))?;
            loop {
                // A second at a time: the keys read meanwhile are written before the wait
                // goes on (a week of changes does not wait in memory).
                let since = std::time::Instant::now();
                let waited = d
                    .wait_for(n, || {
                        conn.check().map_err(Some)?;
                        if since.elapsed() > std::time::Duration::from_secs(1) {
                            Err(None)
                        } else {
                            Ok(())
                        }
                    })
                    .await;
                logged += self.flush(c, &d).await?;
                // Days of changes take a while to read: say how far it got.
                if noted.elapsed().as_secs() >= 5 {
                    noted = std::time::Instant::now();
                    conn.note(&format!(
                        "reverse replay: {logged} changed keys read from slot {slot} so far"
                    ));
                }
                match waited {
                    Ok(Ok(())) => return Ok(logged),
                    Ok(Err(why)) => match patience.after_failure() {
                        Some(wait) => {
                            tokio::time::sleep(wait).await;
                            continue 'start;
                        }
                        None => {
                            return Err(EngineError::Db {
                                step: "reverse replay".into(),
                                message: format!("logical decoding: {why}"),
                            })
                        }
                    },
                    Err(None) => {}
                    Err(Some(e)) => return Err(e),
                }
            }
        }
    }

    /// Writes the keys `d` holds to the reverse log and commits, then lets the slot move
    /// past them.
    async fn flush(&self, c: &Client, d: &Decoder) -> Result<u64, EngineError> {
        let (batch, _writing) = d.take().await;
        let n = batch.keys.len() as u64;
        if !batch.keys.is_empty() || batch.truncated {
            let write = self.write(c, &batch);
            if let Err(e) = in_transaction(c, "BEGIN", write).await {
                d.abandon("writing the keys to the reverse log failed");
                return Err(dberr("reverse replay")(e));
            }
        }
        if let Some(upto) = batch.upto {
            d.confirm(upto);
        }
        Ok(n)
    }

    async fn write(&self, c: &Client, batch: &Batch) -> Result<(), tokio_postgres::Error> {
        let plan = self.plan;
        let ks = Keyset {
            columns: plan.reverse_keys(),
        };
        // The new table emptied: so is the old one, and the keys before go.
        let truncate = format!("TRUNCATE {}, {}", plan.old(), plan.reverse_log());
        write_keys(c, &plan.reverse_log(), &ks, batch, &truncate).await
    }

    /// Under the swap back's lock (nothing writes the new table now): the keys of every
    /// change committed before, into the reverse log in the swap back's transaction. A
    /// stream not ready in time ([`reached_under_lock`]) is [`Attempt::Again`]: the lock
    /// goes, and the next attempt's catch-up opens it again.
    pub(super) async fn under_lock(&self, client: &Client, exec: &Exec<'_>) -> Result<(), Attempt> {
        if self.slot.is_none() {
            return Ok(());
        }
        let healthy = self.decoder.borrow().clone();
        let d = reached_under_lock(
            healthy,
            client,
            exec,
            "the reverse slot's replication stream",
        )
        .await
        .map_err(|e| match e {
            PumpError::Db(e) => Attempt::Db(e),
            PumpError::NotNow(why) => Attempt::Again(why),
            PumpError::Engine(e) => Attempt::Stop(e),
        })?;
        let (batch, _writing) = d.peek().await;
        self.write(client, &batch).await?;
        Ok(())
    }

    /// Ends the stream (before the slot is dropped).
    pub(super) async fn stop(&self) {
        let d = self.decoder.borrow_mut().take();
        if let Some(d) = d.and_then(|d| Rc::try_unwrap(d).ok()) {
            d.stop().await;
        }
    }
}
