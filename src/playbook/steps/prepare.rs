//! Preparing an in-place run: what a kind reads besides the table's facts, its plan, and the
//! playbook's SQL expressions tried against the table, so that a typo is a refusal naming
//! the key instead of a run that fails half way. Nothing is written.

use tokio_postgres::Client;

use super::StepPlan;
use crate::playbook::exec::{dberr, EngineError};
use crate::playbook::facts::{self, Extra, Facts, FactsError};
use crate::playbook::names::quote_ident;
use crate::playbook::settings::Common;

/// One of the playbook's expressions, tried before anything is changed: the playbook key it
/// comes from and a statement that uses it without reading or changing a row.
pub(crate) struct Probe {
    pub key: &'static str,
    pub sql: String,
}

/// What an in-place kind contributes to its preparation.
#[allow(async_fn_in_trait)]
pub(crate) trait InPlace {
    /// Whether the kind works on a partitioned table.
    const PARTITIONED: bool = false;

    /// Reads what the plan needs beyond the table's facts and [`Extra`]'s common part.
    async fn read(
        &self,
        _client: &Client,
        _facts: &Facts,
        _extra: &mut Extra,
    ) -> Result<(), FactsError> {
        Ok(())
    }

    /// Names of relations in the table's schema that the plan creates (checked free).
    fn wanted(&self, _facts: &Facts) -> Vec<String> {
        Vec::new()
    }

    /// Adds the kind's steps to `p` (pure), and its reasons to refuse.
    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>);

    /// The playbook's SQL expressions, as statements to try against the table.
    fn probes(&self, _facts: &Facts) -> Vec<Probe> {
        Vec::new()
    }
}

/// What a plan is made from.
pub(crate) struct PlanCx<'a> {
    pub pb: &'a Common,
    pub facts: &'a Facts,
    pub extra: &'a Extra,
    pub run_id: &'a str,
}

/// The plan of `kind` (named `name`) and the reasons to refuse it (empty: go). Pure.
pub(crate) fn make<K: InPlace>(kind: &K, name: &str, cx: &PlanCx<'_>) -> (StepPlan, Vec<String>) {
    let f = cx.facts;
    let mut p = StepPlan::new(name, f);
    let mut refusals = Vec::new();
    if f.partitioned && !K::PARTITIONED {
        refusals.push(format!(
            "{} is a partitioned table; kind `{name}` works on ordinary tables (run it on each partition)",
            f.qualified()
        ));
    }
    kind.plan(cx, &mut p, &mut refusals);
    for t in &cx.extra.taken {
        refusals.push(format!(
            "{}.{} already exists (a leftover of an earlier run? `lockstep status` lists runs; drop it or roll that run back)",
            quote_ident(&f.schema),
            quote_ident(t)
        ));
    }
    (p, refusals)
}

/// Reads the table and what the kind needs, and returns the plan and the refusals.
pub(crate) async fn prepare<K: InPlace>(
    kind: &K,
    name: &str,
    pb: &Common,
    client: &Client,
    run_id: &str,
) -> Result<(StepPlan, Vec<String>), EngineError> {
    let f = facts::read_table(client, &pb.table, K::PARTITIONED).await?;
    let mut extra = Extra {
        server_version: facts::server_version(client).await?,
        constraints: facts::constraint_names(client, &f).await?,
        ..Extra::default()
    };
    if f.partitioned {
        extra.partitions = facts::partitions(client, &f).await?;
    }
    extra.taken = facts::taken(client, &f, &kind.wanted(&f))
        .await
        .map_err(dberr("preflight"))?;
    kind.read(client, &f, &mut extra).await?;
    let cx = PlanCx {
        pb,
        facts: &f,
        extra: &extra,
        run_id,
    };
    let (plan, mut refusals) = make(kind, name, &cx);
    if refusals.is_empty() {
        refusals.extend(try_probes(client, pb.swap.lock_timeout_ms, &f, kind.probes(&f)).await);
    }
    Ok((plan, refusals))
}

/// Tries each probe in a read-only transaction that is rolled back; a failure is a refusal.
pub(crate) async fn try_probes(
    client: &Client,
    lock_timeout_ms: u64,
    f: &Facts,
    probes: Vec<Probe>,
) -> Vec<String> {
    let t = f.qualified();
    let mut out = Vec::new();
    for Probe { key, sql } in probes {
        // One statement through the extended protocol: an expression that smuggles in a
        // `; COMMIT; …` of its own is rejected instead of run.
        let r = match client
            .batch_execute(&format!(
                "BEGIN READ ONLY; SET LOCAL lock_timeout = '{lock_timeout_ms}ms'"
            ))
            .await
        {
            Ok(()) => client.execute(sql.as_str(), &[]).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let _ = client.batch_execute("ROLLBACK").await;
        if let Err(e) = r {
            let msg = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string());
            out.push(format!("`{key}` does not work on {t}: {msg}"));
        }
    }
    out
}
