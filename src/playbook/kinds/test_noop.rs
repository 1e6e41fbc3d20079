//! A kind that exists only in unit tests: it shows what adding a kind takes (this module and
//! its line in the list in `kinds/mod.rs`), and that the list, the parser and the step engine's
//! planning take any kind. It plans one step that changes nothing.

use serde::Deserialize;
use tokio_postgres::Client;

use crate::playbook::exec::EngineError;
use crate::playbook::kind::Kind;
use crate::playbook::settings::{Common, Parse, SpecError};
use crate::playbook::steps::{self, definition, Action, InPlace, PlanCx, Step, StepPlan};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTestNoop {
    note: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestNoop {
    pub note: String,
}

impl Kind for TestNoop {
    const NAME: &'static str = "test-noop";
    type Raw = RawTestNoop;
    type Plan = StepPlan;

    fn parse(raw: RawTestNoop, p: &Parse<'_>) -> Result<Self, SpecError> {
        Ok(TestNoop {
            note: p.nonempty("test_noop.note", &raw.note)?,
        })
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

impl InPlace for TestNoop {
    fn plan(&self, cx: &PlanCx<'_>, p: &mut StepPlan, _: &mut Vec<String>) {
        p.steps.push(Step {
            name: "nothing".into(),
            what: self.note.clone(),
            actions: vec![Action::Tx(vec!["SELECT 1".into()])],
            undo: Vec::new(),
            swap: false,
            kept: None,
        });
        p.before = definition(cx.facts, &[]);
        p.after = p.before.clone();
    }
}

#[cfg(test)]
mod tests {
    use crate::playbook::kinds::KindName;
    use crate::playbook::spec::parse;
    use crate::playbook::steps::{make, PlanCx};

    #[test]
    fn a_kind_added_in_one_module_and_one_line_parses_and_plans() {
        let pb = parse(
            "kind = \"test-noop\"\ntable = \"t\"\n[test_noop]\nnote = \"hello\"\n",
            "p.toml",
        )
        .unwrap();
        assert_eq!(pb.kind_name(), KindName::TestNoop);
        assert_eq!(KindName::parse("test-noop"), Some(KindName::TestNoop));
        let crate::playbook::kinds::Spec::TestNoop(k) = &pb.kind else {
            panic!("{:?}", pb.kind)
        };
        let facts = crate::playbook::facts::example();
        let cx = PlanCx {
            pb: &pb.common,
            facts: &facts,
            extra: &Default::default(),
            run_id: "r",
        };
        let (plan, refusals) = make(k, "test-noop", &cx);
        assert!(refusals.is_empty());
        assert_eq!(plan.steps[0].what, "hello");
        // Its table belongs to it alone.
        let e = parse(
            "kind = \"check\"\ntable = \"t\"\n[check]\nexpression = \"true\"\n[test_noop]\nnote = \"x\"\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("[test_noop] table belongs to kind = \"test-noop\""),
            "{e}"
        );
    }
}
