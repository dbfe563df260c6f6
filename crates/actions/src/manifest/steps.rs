//! The steps of a composite action (`runs.steps`): a workflow step's syntax, minus what
//! GitHub does not allow there (`timeout-minutes`), and `run` steps must name a `shell`.

use workflows::yaml::{Node, NodeValue};

use super::Reader;

/// One step of a composite action.
#[derive(Debug, Clone, Default)]
pub struct CompositeStep {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `if:`, as written (an expression with or without `${{ }}`).
    pub condition: Option<String>,
    pub run: Option<String>,
    pub shell: Option<String>,
    pub uses: Option<String>,
    pub with: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub working_directory: Option<String>,
    /// `"true"`/`"false"` or an expression.
    pub continue_on_error: Option<String>,
}

const KEYS: [&str; 10] = [
    "id",
    "name",
    "if",
    "run",
    "shell",
    "uses",
    "with",
    "env",
    "working-directory",
    "continue-on-error",
];

impl Reader<'_> {
    pub(super) fn composite_steps(&mut self, node: &Node) -> Vec<CompositeStep> {
        let Some(items) = node.as_sequence() else {
            self.problem(
                node,
                format!(
                    "`runs.steps` must be a list of steps, not a {}",
                    node.value.kind_name()
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.composite_step(item))
            .collect()
    }

    fn composite_step(&mut self, node: &Node) -> Option<CompositeStep> {
        if !matches!(node.value, NodeValue::Mapping(_)) {
            self.problem(
                node,
                format!(
                    "a composite step must be a mapping (`- run: ...` with `shell:`, or `- uses: ...`), not a {}",
                    node.value.kind_name()
                ),
            );
            return None;
        }
        let mut step = CompositeStep::default();
        for (key, value) in self.mapping(node, "a step") {
            let Some(name) = key.as_str() else {
                self.problem(key, "a step key must be a string");
                continue;
            };
            match name {
                "id" => step.id = self.text(value, "`id`"),
                "name" => step.name = self.text(value, "`name`"),
                "if" => step.condition = self.text(value, "`if`"),
                "run" => step.run = self.text(value, "`run`"),
                "shell" => step.shell = self.text(value, "`shell`"),
                "uses" => step.uses = self.text(value, "`uses`"),
                "with" => step.with = self.string_map(value, "`with`"),
                "env" => step.env = self.string_map(value, "`env`"),
                "working-directory" => {
                    step.working_directory = self.text(value, "`working-directory`");
                }
                "continue-on-error" => {
                    step.continue_on_error = self.text(value, "`continue-on-error`");
                }
                other => self.problem(
                    key,
                    format!(
                        "`{other}` is not allowed in a composite action step; allowed keys: {}",
                        KEYS.join(", ")
                    ),
                ),
            }
        }
        match (&step.run, &step.uses) {
            (Some(_), Some(_)) => {
                self.problem(
                    node,
                    "a step has both `run` and `uses`: split it into two steps",
                );
                return None;
            }
            (None, None) => {
                self.problem(node, "a step needs `run:` (with `shell:`) or `uses:`");
                return None;
            }
            (Some(_), None) if step.shell.is_none() => {
                self.problem(
                    node,
                    "a `run` step in a composite action needs `shell:` (e.g. `shell: bash`): composite actions have no default shell",
                );
                return None;
            }
            (None, Some(_)) if step.shell.is_some() || step.working_directory.is_some() => {
                self.problem(
                    node,
                    "`shell` and `working-directory` only apply to `run` steps; remove them from this `uses` step",
                );
                return None;
            }
            _ => {}
        }
        Some(step)
    }
}
