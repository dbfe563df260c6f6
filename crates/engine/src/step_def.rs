//! One step as the engine runs it, whether it came from a workflow job or from a
//! composite action: fields still as written (expressions unevaluated).

use workflows::model::{OrExpression, Step, StringMap};

/// A step before evaluation. `with`, `env` keep source order; `inserts` are whole-map
/// expressions (`env: ${{ fromJSON(...) }}`) merged in after the entries.
#[derive(Debug, Clone, Default)]
pub struct StepDef {
    /// `id:`, or GitHub's generated id (`__run`, `__actions_checkout`, ...).
    pub id: String,
    /// Whether `id` was written by the user (generated ids do not appear in `steps`).
    pub explicit_id: bool,
    pub name: Option<String>,
    pub condition: Option<String>,
    pub run: Option<String>,
    pub shell: Option<String>,
    pub uses: Option<String>,
    pub with: Vec<(String, String)>,
    pub with_inserts: Vec<String>,
    pub env: Vec<(String, String)>,
    pub env_inserts: Vec<String>,
    pub working_directory: Option<String>,
    /// `true`/`false` or an expression.
    pub continue_on_error: Option<String>,
    /// Minutes, or an expression.
    pub timeout_minutes: Option<String>,
}

fn entries(map: &Option<StringMap>) -> (Vec<(String, String)>, Vec<String>) {
    map.as_ref().map_or_else(Default::default, |m| {
        (
            m.entries
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect(),
            m.inserts.iter().map(|i| i.value.clone()).collect(),
        )
    })
}

fn or_expression<T: ToString>(v: &OrExpression<T>) -> String {
    match v {
        OrExpression::Literal(l) => l.to_string(),
        OrExpression::Expression(e) => e.clone(),
    }
}

impl From<&Step> for StepDef {
    fn from(step: &Step) -> Self {
        let (with, with_inserts) = entries(&step.with);
        let (env, env_inserts) = entries(&step.env);
        StepDef {
            id: step.effective_id.clone(),
            explicit_id: step.id.is_some(),
            name: step.name.as_ref().map(|n| n.value.clone()),
            condition: step.condition.as_ref().map(|c| c.value.clone()),
            run: step.run.as_ref().map(|r| r.value.clone()),
            shell: step.shell.as_ref().map(|s| s.value.clone()),
            uses: step.uses.as_ref().map(|u| u.value.clone()),
            with,
            with_inserts,
            env,
            env_inserts,
            working_directory: step.working_directory.as_ref().map(|w| w.value.clone()),
            continue_on_error: step
                .continue_on_error
                .as_ref()
                .map(|c| or_expression(&c.value)),
            timeout_minutes: step
                .timeout_minutes
                .as_ref()
                .map(|t| or_expression(&t.value)),
        }
    }
}

impl StepDef {
    /// A composite action's step; ids are generated GitHub's way when absent.
    pub fn from_composite(step: &actions::CompositeStep, index: usize) -> Self {
        let id = step.id.clone().unwrap_or_else(|| match &step.uses {
            Some(u) => format!("__{}", u.split('@').next().unwrap_or(u).replace('/', "_")),
            None if index == 0 => "__run".to_string(),
            None => format!("__run_{}", index + 1),
        });
        StepDef {
            id,
            explicit_id: step.id.is_some(),
            name: step.name.clone(),
            condition: step.condition.clone(),
            run: step.run.clone(),
            shell: step.shell.clone(),
            uses: step.uses.clone(),
            with: step.with.clone(),
            with_inserts: Vec::new(),
            env: step.env.clone(),
            env_inserts: Vec::new(),
            working_directory: step.working_directory.clone(),
            continue_on_error: step.continue_on_error.clone(),
            timeout_minutes: None,
        }
    }

    /// The name shown for the step: `name:`, else `Run <first line>` or `Run <uses>`.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        if let Some(run) = &self.run {
            let first = run
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            return format!("Run {first}");
        }
        match &self.uses {
            Some(u) => format!("Run {u}"),
            None => self.id.clone(),
        }
    }
}
