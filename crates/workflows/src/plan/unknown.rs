//! Values a plan or a dry run does not have: the outputs of jobs that have not run, and
//! the inputs of a workflow that nobody gave. A matrix that fails on one of them is
//! computed at run time ([`super::Legs::Deferred`]), not a problem of the workflow.

use std::fmt;

use crate::expression::template::{Part, parse_template};
use crate::expression::{Allowed, Object};
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
        !self.job_outputs && self.inputs.is_empty()
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
        template.parts.iter().find_map(|part| {
            let Part::Expression(expr) = part else {
                return None;
            };
            expr.context_paths()
                .into_iter()
                .find(|path| self.is_unknown(path))
                .map(|path| UnknownRead {
                    expression: expr.source().to_string(),
                    value: path.join("."),
                })
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
        expr.context_paths()
            .into_iter()
            .find(|path| self.is_unknown(path))
            .map(|path| UnknownRead {
                expression: expr.source().to_string(),
                value: path.join("."),
            })
    }

    /// Whether a context path (`needs`, `gen`, `outputs`, ...) reaches an unknown value:
    /// a whole context or object that holds one counts.
    fn is_unknown(&self, path: &[String]) -> bool {
        let Some(context) = path.first() else {
            return false;
        };
        if context.eq_ignore_ascii_case("needs") {
            return self.job_outputs
                && path
                    .get(2)
                    .is_none_or(|key| key.eq_ignore_ascii_case("outputs"));
        }
        if context.eq_ignore_ascii_case("inputs") {
            return match path.get(1) {
                None => !self.inputs.is_empty(),
                Some(name) => self.inputs.iter().any(|i| i.eq_ignore_ascii_case(name)),
            };
        }
        false
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
