//! `unique`: a unique constraint added without blocking writes (see `key.rs`).
//!
//! ```toml
//! [unique]
//! columns = ["email"]
//! name = "users_email_key"           # default: <table>_<columns>_key
//! ```

use tokio_postgres::Client;

use super::key::{self, Key, RawKey};
use crate::playbook::exec::EngineError;
use crate::playbook::facts::Facts;
use crate::playbook::kind::Kind;
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{self, InPlace, PlanCx, StepPlan};

/// A `unique` playbook's `[unique]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Unique(pub Key);

impl Kind for Unique {
    const NAME: &'static str = "unique";
    type Raw = RawKey;
    type Plan = StepPlan;

    fn parse(raw: RawKey, p: &Parse<'_>) -> Result<Self, SpecError> {
        Key::parse(raw, "unique", p).map(Unique)
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

impl InPlace for Unique {
    fn wanted(&self, facts: &Facts) -> Vec<String> {
        vec![key::constraint_name(&self.0, false, facts)]
    }

    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, refusals: &mut Vec<String>) {
        key::plan(&self.0, false, cx, p, refusals);
    }
}
