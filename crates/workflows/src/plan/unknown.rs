//! Values a plan or a dry run does not have: the outputs of jobs that have not run, the
//! inputs of a workflow that nobody gave, and in a dry run the results of steps that did
//! not really run and the variables set from any of these. A matrix that fails on one of
//! them is computed at run time ([`super::Legs::Deferred`]), not a problem of the
//! workflow; a dry run's step or job that fails on one goes on as it would run.

use std::fmt;

use crate::expression::template::{Part, parse_template};
use crate::expression::{Allowed, ErrorKind, Expr, ExprError, Object};
use crate::model::Workflow;
use crate::yaml::{Node, NodeValue};

/// What is not known where a value is evaluated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unknowns {
    /// `needs.<id>.outputs` are unknown (a plan, a dry run: the steps that set them do
    /// not run); `needs.<id>.result` stays known.
    pub job_outputs: bool,
    /// The inputs the workflow declares that have no value.
    pub inputs: Vec<String>,
    /// Steps that did not really run (a dry run's): their `steps.<id>` results (`outputs`,
    /// `outcome`, `conclusion`) are unknown.
    pub steps: Vec<String>,
    /// Environment variables whose value only a real run has (set from an unknown value,
    /// or by a step that did not really run): `env.<name>` is unknown.
    pub env: Vec<String>,
}

/// An expression that reads a value not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRead {
    /// The expression, as written inside `${{ }}`.
    pub expression: String,
    /// What it reads: `needs.gen.outputs.matrix`, `inputs.targets`.
    pub value: String,
}

/// "`fromJSON(inputs.targets)` reads inputs.targets, which has a value only at run time".
impl fmt::Display for UnknownRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` reads {}, which has a value only at run time",
            self.expression, self.value
        )
    }
}

impl Unknowns {
    /// The inputs `workflow` declares (`on.workflow_call.inputs`,
    /// `on.workflow_dispatch.inputs`) that `inputs` holds no value for, in declared order.
    pub fn missing_inputs(workflow: &Workflow, inputs: &Object) -> Vec<String> {
        let mut missing: Vec<String> = Vec::new();
        for event in &workflow.on.events {
            let declared = event
                .dispatch_inputs
                .iter()
                .chain(event.call.iter().flat_map(|c| c.inputs.iter()));
            for input in declared {
                let name = &input.name.value;
                if !inputs.contains_key(name)
                    && !missing.iter().any(|m| m.eq_ignore_ascii_case(name))
                {
                    missing.push(name.clone());
                }
            }
        }
        missing
    }

    /// Whether nothing is unknown.
    pub fn is_empty(&self) -> bool {
        !self.job_outputs && self.inputs.is_empty() && self.steps.is_empty() && self.env.is_empty()
    }

    /// The first expression in `node` (any `${{ }}` of its strings and keys) that reads
    /// an unknown value.
    pub fn read_in(&self, node: &Node) -> Option<UnknownRead> {
        if self.is_empty() {
            return None;
        }
        match &node.value {
            NodeValue::String(s) => self.read_in_text(s),
            NodeValue::Sequence(items) => items.iter().find_map(|n| self.read_in(n)),
            NodeValue::Mapping(entries) => entries
                .iter()
                .find_map(|(k, v)| self.read_in(k).or_else(|| self.read_in(v))),
            _ => None,
        }
    }

    /// The first `${{ }}` of `text` that reads an unknown value.
    pub fn read_in_text(&self, text: &str) -> Option<UnknownRead> {
        if self.is_empty() || !text.contains("${{") {
            return None;
        }
        let template = parse_template(text, &Allowed::everything()).ok()?;
        template.parts.iter().find_map(|part| match part {
            Part::Expression(expr) => self.read_in_expression(expr),
            Part::Literal(_) => None,
        })
    }

    /// The first unknown value an `if:` condition reads: a bare expression, or one with
    /// `${{ }}`.
    pub fn read_in_condition(&self, condition: &str) -> Option<UnknownRead> {
        if self.is_empty() {
            return None;
        }
        if condition.contains("${{") {
            return self.read_in_text(condition);
        }
        let expr = crate::expression::parse(condition.trim(), &Allowed::everything()).ok()?;
        self.read_in_expression(&expr)
    }

    /// The first unknown value `expr` reads.
    pub fn read_in_expression(&self, expr: &Expr) -> Option<UnknownRead> {
        expr.context_paths()
            .into_iter()
            .find(|path| self.is_unknown(path))
            .map(|path| UnknownRead {
                expression: expr.source().to_string(),
                value: path.join("."),
            })
    }

    /// The unknown value that the expression that failed with `error` reads: an error of
    /// its evaluation (`fromJSON` of an output that is empty before a real run) may be
    /// one's; one of lexing or parsing never is.
    pub fn read_in_error(&self, error: &ExprError) -> Option<UnknownRead> {
        if self.is_empty() || error.kind != ErrorKind::Evaluation {
            return None;
        }
        let expr = crate::expression::parse(&error.expression, &Allowed::everything()).ok()?;
        self.read_in_expression(&expr)
    }

    /// Whether a context path (`needs`, `gen`, `outputs`, ...) reaches an unknown value:
    /// a whole context or object that holds one counts.
    fn is_unknown(&self, path: &[String]) -> bool {
        let Some(context) = path.first() else {
            return false;
        };
        // `jobs`: a called workflow's outputs read its jobs' outputs.
        if context.eq_ignore_ascii_case("needs") || context.eq_ignore_ascii_case("jobs") {
            return self.job_outputs
                && path
                    .get(2)
                    .is_none_or(|key| key.eq_ignore_ascii_case("outputs"));
        }
        let names = match context.to_ascii_lowercase().as_str() {
            "inputs" => &self.inputs,
            "steps" => &self.steps,
            "env" => &self.env,
            _ => return false,
        };
        match path.get(1) {
            None => !names.is_empty(),
            Some(name) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn unknowns() -> Unknowns {
        Unknowns {
            job_outputs: true,
            inputs: vec!["targets".into()],
            ..Unknowns::default()
        }
    }

    #[test]
    fn job_outputs_and_missing_inputs_are_unknown() {
        let u = unknowns();
        let read = u
            .read_in_text("${{ fromJson(needs.gen.outputs.matrix) }}")
            .unwrap();
        assert_eq!(read.expression, "fromJson(needs.gen.outputs.matrix)");
        assert_eq!(read.value, "needs.gen.outputs.matrix");
        assert_eq!(
            read.to_string(),
            "`fromJson(needs.gen.outputs.matrix)` reads needs.gen.outputs.matrix, which has a value only at run time"
        );
        assert_eq!(
            u.read_in_text("a ${{ inputs.other }} ${{ fromJSON(Inputs.TARGETS) }}")
                .unwrap()
                .value,
            "Inputs.TARGETS"
        );
        assert!(u.read_in_text("${{ toJSON(needs) }}").is_some());
        assert!(u.read_in_text("${{ needs.gen.result }}").is_none());
        assert!(u.read_in_text("${{ inputs.other }}").is_none());
        assert!(u.read_in_text("no expression").is_none());
        assert!(
            Unknowns::default()
                .read_in_text("${{ needs.a.outputs.b }}")
                .is_none()
        );
        assert_eq!(
            u.read_in_condition(" fromJSON(needs.check.outputs.go)\n")
                .unwrap()
                .value,
            "needs.check.outputs.go"
        );
        assert!(
            u.read_in_condition("needs.check.result == 'success'")
                .is_none()
        );
    }

    #[test]
    fn steps_that_did_not_run_and_variables_set_from_unknowns_are_unknown() {
        let u = Unknowns {
            steps: vec!["prev".into()],
            env: vec!["LIST".into()],
            ..Unknowns::default()
        };
        let value = |text: &str| u.read_in_text(text).map(|r| r.value);
        assert_eq!(
            value("${{ fromJSON(steps.Prev.outputs.x)[0] }}").as_deref(),
            Some("steps.Prev.outputs.x")
        );
        assert!(value("${{ steps.prev.outcome }}").is_some());
        assert!(value("${{ toJSON(steps) }}").is_some());
        assert!(value("${{ steps.other.outputs.x }}").is_none());
        assert_eq!(value("${{ env.list }}").as_deref(), Some("env.list"));
        assert!(value("${{ env.OTHER }}").is_none());
        assert!(value("${{ needs.a.outputs.b }}").is_none());
        let outputs = Unknowns {
            job_outputs: true,
            ..Unknowns::default()
        };
        assert!(
            outputs
                .read_in_text("${{ jobs.build.outputs.x }}")
                .is_some()
        );
    }

    #[test]
    fn an_evaluation_error_is_unknown_only_when_its_expression_reads_one() {
        use crate::expression::{EvalContext, JobStatus, template::parse_template};
        let contexts = Object::new();
        let ctx = EvalContext {
            contexts: &contexts,
            status: JobStatus::Success,
            host: None,
        };
        let error = |text: &str| {
            parse_template(text, &Allowed::everything())
                .unwrap()
                .evaluate_to_string(&ctx)
                .unwrap_err()
        };
        let u = unknowns();
        let failed = error("a ${{ 1 }} ${{ fromJSON(needs.gen.outputs.list)[0] }}");
        let read = u.read_in_error(&failed).unwrap();
        assert_eq!(read.expression, "fromJSON(needs.gen.outputs.list)[0]");
        assert_eq!(read.value, "needs.gen.outputs.list");
        // Another expression of the same text fails for real.
        let genuine = error("${{ fromJSON('{bad') }} ${{ needs.gen.outputs.list }}");
        assert!(u.read_in_error(&genuine).is_none(), "{genuine}");
        let syntax =
            parse_template("${{ needs.gen.outputs.list == }}", &Allowed::everything()).unwrap_err();
        assert!(u.read_in_error(&syntax).is_none());
    }

    #[test]
    fn nodes_are_searched_in_keys_and_values() {
        let node = crate::yaml::parse(
            "os: [a, b]\ninclude: ${{ fromJSON(inputs.targets) }}\n",
            "m.yml",
        )
        .unwrap();
        assert_eq!(unknowns().read_in(&node).unwrap().value, "inputs.targets");
    }

    #[test]
    fn missing_inputs_are_the_declared_ones_without_a_value() {
        let workflow = crate::model::load(
            "on:\n  workflow_call:\n    inputs:\n      a: {type: string}\n      b: {type: string}\n  workflow_dispatch:\n    inputs:\n      b: {type: string}\n      c: {type: string}\njobs:\n  j:\n    runs-on: x\n    steps: [{run: echo}]\n",
            "w.yml",
        )
        .unwrap();
        let mut given = Object::new();
        given.insert("A", crate::expression::Value::from("x"));
        assert_eq!(Unknowns::missing_inputs(&workflow, &given), ["b", "c"]);
    }
}
