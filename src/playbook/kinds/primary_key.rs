//! `primary-key`: a primary key added without blocking writes (see `key.rs`); nullable
//! columns are made NOT NULL first without a scan under ACCESS EXCLUSIVE.
//!
//! ```toml
//! [primary_key]
//! columns = ["id"]
//! ```

use tokio_postgres::Client;

use super::key::{self, Key, RawKey};
use crate::playbook::exec::EngineError;
use crate::playbook::facts::Facts;
use crate::playbook::kind::Kind;
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{self, InPlace, PlanCx, StepPlan};

/// A `primary-key` playbook's `[primary_key]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryKey(pub Key);

impl Kind for PrimaryKey {
    const NAME: &'static str = "primary-key";
    type Raw = RawKey;
    type Plan = StepPlan;

    fn parse(raw: RawKey, p: &Parse<'_>) -> Result<Self, SpecError> {
        Key::parse(raw, "primary_key", p).map(PrimaryKey)
    }

    async fn prepare(
        &self,
        pb: &Common,
        client: &Client,
        run_id: &str,
    ) -> Result<(StepPlan, Vec<String>), EngineError> {
        steps::prepare(self, Self::NAME, pb, client, run_id).await
    }
}

impl InPlace for PrimaryKey {
    fn wanted(&self, facts: &Facts) -> Vec<String> {
        vec![key::constraint_name(&self.0, true, facts)]
    }

    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
        key::plan(&self.0, true, cx, p, refusals);
    }
}
