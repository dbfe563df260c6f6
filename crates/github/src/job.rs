//! A V2 job message (`AgentJobRequestMessage`, actions/runner
//! `src/Sdk/DTPipelines/Pipelines/AgentJobRequestMessage.cs`, `ActionStep.cs`,
//! `ActionStepDefinitionReference.cs`) read into what the job engine needs: the job's
//! identity and tokens, its contexts, variables and secrets, and its steps written back as
//! workflow YAML ([`JobMessage::workflow_yaml`]) so that the engine's own loader and
//! expression evaluator run them, as they run a Gitea task's payload.
//!
//! Steps arrive as `{type: "action", id, displayNameToken, contextName, reference: {type:
//! "script" | "repository" | "containerRegistry" (or 3, 1, 2), name, ref, path, image},
//! inputs, environment, condition, continueOnError, timeoutInMinutes}`; a script step keeps
//! its script in `inputs.script` (with `shell` and `workingDirectory`).

use serde_json::{Map, Value, json};

use crate::message::{MessageError, TemplateToken, context_data};

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn text(object: &Map<String, Value>, name: &str) -> Option<String> {
    match field(object, name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn token(object: &Map<String, Value>, name: &str) -> Result<Option<TemplateToken>, MessageError> {
    field(object, name)
        .filter(|v| !v.is_null())
        .map(TemplateToken::parse)
        .transpose()
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    /// A `run:` script.
    Script,
    /// `uses: name[/path]@ref` (`name` is `owner/repo`, or `self` for a local action).
    Repository {
        name: String,
        git_ref: String,
        path: String,
    },
    /// `uses: docker://image`.
    Container { image: String },
}

/// One step of the job.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    /// The step's `id:` (actions/runner names anonymous steps `__run`, `__run_2`, …).
    pub context_name: String,
    pub display_name: Option<TemplateToken>,
    pub action: StepAction,
    pub inputs: Option<TemplateToken>,
    pub environment: Option<TemplateToken>,
    pub condition: Option<String>,
    pub continue_on_error: Option<TemplateToken>,
    pub timeout_in_minutes: Option<TemplateToken>,
}

/// The job's connection to the service: the run-service base and the job's token.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemConnection {
    pub url: String,
    pub access_token: String,
    /// `CacheServerUrl`, `ResultsServiceUrl`, `GenerateIdTokenUrl`, `FeedStreamUrl`, …
    pub data: Map<String, Value>,
}

/// A variable of the job message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: String,
    pub is_secret: bool,
}

/// A job message, read.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMessage {
    pub plan_id: String,
    pub job_id: String,
    pub job_display_name: String,
    /// The job's id in the workflow (`jobName`… actions/runner calls it the job's name).
    pub job_name: String,
    pub request_id: u64,
    pub connection: SystemConnection,
    pub variables: Vec<Variable>,
    /// Values to mask besides the secret variables (`mask[].value`).
    pub mask_hints: Vec<String>,
    /// Every context the service gives (`github`, `matrix`, `strategy`, `needs`, `inputs`,
    /// `vars`, …) as plain JSON.
    pub contexts: Map<String, Value>,
    /// Layers of `env` (workflow, then job), in order.
    pub environment: Vec<TemplateToken>,
    /// Layers of `defaults` (workflow, then job).
    pub defaults: Vec<TemplateToken>,
    pub job_outputs: Option<TemplateToken>,
    pub job_container: Option<TemplateToken>,
    pub service_containers: Option<TemplateToken>,
    pub steps: Vec<Step>,
}

/// A step's `reference`. A self-repository one (`uses: $/path`, `repositoryType:
/// selfRepository`) names the workflow's repository at the commit that is running: the job
/// context's `workflow_repository` and `workflow_sha`, as actions/runner's
/// `ActionManager.ResolveSelfRepositoryReferences` resolves it.
fn reference(
    step: &Map<String, Value>,
    contexts: &Map<String, Value>,
) -> Result<StepAction, MessageError> {
    let reference = field(step, "reference")
        .and_then(Value::as_object)
        .ok_or_else(|| MessageError("a step has no reference".into()))?;
    let kind = match field(reference, "type") {
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(1) => "repository".into(),
            Some(2) => "containerregistry".into(),
            Some(3) => "script".into(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    Ok(match kind.as_str() {
        "script" => StepAction::Script,
        "repository"
            if text(reference, "repositoryType")
                .is_some_and(|t| t.eq_ignore_ascii_case("selfRepository")) =>
        {
            let job = contexts.get("job").and_then(Value::as_object);
            let of_job = |key: &str| {
                job.and_then(|j| j.get(key))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            match (of_job("workflow_repository"), of_job("workflow_sha")) {
                (Some(name), Some(git_ref)) => StepAction::Repository {
                    name,
                    git_ref,
                    path: text(reference, "path").unwrap_or_default(),
                },
                _ => {
                    return Err(MessageError(
                        "Unable to resolve self-reference '$/'. This can occur when the server does not support this syntax, the feature flag is disabled, or the workflow context (repository/SHA) is unavailable.".into(),
                    ));
                }
            }
        }
        "repository" => StepAction::Repository {
            name: text(reference, "name").unwrap_or_default(),
            git_ref: text(reference, "ref").unwrap_or_default(),
            path: text(reference, "path").unwrap_or_default(),
        },
        "containerregistry" => StepAction::Container {
            image: text(reference, "image").unwrap_or_default(),
        },
        other => {
            return Err(MessageError(format!(
                "a step of unknown reference type `{other}`"
            )));
        }
    })
}

fn tokens(value: Option<&Value>) -> Result<Vec<TemplateToken>, MessageError> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(TemplateToken::parse)
        .collect()
}

impl JobMessage {
    pub fn parse(message: &Value) -> Result<JobMessage, MessageError> {
        let m = message
            .as_object()
            .ok_or_else(|| MessageError("not a JSON object".into()))?;
        let plan = field(m, "plan").and_then(Value::as_object);
        let plan_id = plan
            .and_then(|p| text(p, "planId"))
            .ok_or_else(|| MessageError("no plan.planId".into()))?;
        let job_id = text(m, "jobId").ok_or_else(|| MessageError("no jobId".into()))?;
        let endpoints = field(
            field(m, "resources")
                .and_then(Value::as_object)
                .unwrap_or(&Map::new()),
            "endpoints",
        )
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
        let system = endpoints
            .iter()
            .filter_map(Value::as_object)
            .find(|e| text(e, "name").as_deref() == Some("SystemVssConnection"))
            .ok_or_else(|| MessageError("no SystemVssConnection endpoint".into()))?;
        let access_token = field(system, "authorization")
            .and_then(Value::as_object)
            .and_then(|a| field(a, "parameters"))
            .and_then(Value::as_object)
            .and_then(|p| text(p, "AccessToken"))
            .ok_or_else(|| MessageError("the SystemVssConnection has no AccessToken".into()))?;
        let connection = SystemConnection {
            url: text(system, "url").unwrap_or_default(),
            access_token,
            data: field(system, "data")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        };
        let mut variables = Vec::new();
        for (name, v) in field(m, "variables")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let (value, is_secret) = match v {
                Value::Object(o) => (
                    text(o, "value").unwrap_or_default(),
                    field(o, "isSecret")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                ),
                Value::String(s) => (s.clone(), false),
                _ => continue,
            };
            variables.push(Variable {
                name: name.clone(),
                value,
                is_secret,
            });
        }
        let mask_hints = field(m, "mask")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_object().and_then(|o| text(o, "value")))
            .filter(|v| !v.is_empty())
            .collect();
        let mut contexts = Map::new();
        for (name, v) in field(m, "contextData")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            contexts.insert(name.clone(), context_data(v)?);
        }
        let mut steps = Vec::new();
        for step in field(m, "steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = step
                .as_object()
                .ok_or_else(|| MessageError("a step is not an object".into()))?;
            if text(s, "type").is_some_and(|t| !t.eq_ignore_ascii_case("action")) {
                return Err(MessageError(format!(
                    "a step of type `{}`; only action steps are supported",
                    text(s, "type").unwrap_or_default()
                )));
            }
            steps.push(Step {
                id: text(s, "id").unwrap_or_default(),
                context_name: text(s, "contextName").unwrap_or_default(),
                display_name: token(s, "displayNameToken")?,
                action: reference(s, &contexts)?,
                inputs: token(s, "inputs")?,
                environment: token(s, "environment")?,
                condition: text(s, "condition"),
                continue_on_error: token(s, "continueOnError")?,
                timeout_in_minutes: token(s, "timeoutInMinutes")?,
            });
        }
        Ok(JobMessage {
            plan_id,
            job_id,
            job_display_name: text(m, "jobDisplayName").unwrap_or_default(),
            job_name: text(m, "jobName").unwrap_or_default(),
            request_id: field(m, "requestId")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            connection,
            variables,
            mask_hints,
            contexts,
            environment: tokens(field(m, "environmentVariables"))?,
            defaults: tokens(field(m, "defaults"))?,
            job_outputs: token(m, "jobOutputs")?,
            job_container: token(m, "jobContainer")?,
            service_containers: token(m, "jobServiceContainers")?,
            steps,
        })
    }

    /// A variable's value.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
            .map(|v| v.value.as_str())
    }

    /// The job's id in the workflow file: `jobName`, else `job`.
    pub fn job_key(&self) -> String {
        let name = self.job_name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            "job".to_string()
        } else {
            name.to_string()
        }
    }

    /// The job as a workflow with one job, for the engine's loader: `env`, `defaults`,
    /// `outputs`, the matrix combination (one `include`, so `matrix.*` evaluates to the
    /// service's values), and each step with its `id`, `name`, `if`, `env`, `with`,
    /// `continue-on-error`, `timeout-minutes`, and `run:` (with `shell:` and
    /// `working-directory:`) or `uses:`. Expressions stay `${{ }}` text.
    pub fn workflow_yaml(&self) -> Result<String, MessageError> {
        let mut job = Map::new();
        if !self.job_display_name.is_empty() {
            job.insert("name".into(), json!(self.job_display_name));
        }
        job.insert("runs-on".into(), json!("self-hosted"));
        let mut env = Map::new();
        for layer in &self.environment {
            if let Value::Object(o) = layer.to_json() {
                env.extend(o);
            }
        }
        if !env.is_empty() {
            job.insert("env".into(), Value::Object(env));
        }
        let mut defaults = Map::new();
        for layer in &self.defaults {
            if let Value::Object(o) = layer.to_json() {
                for (k, v) in o {
                    match (defaults.get_mut(&k), v) {
                        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
                        (_, v) => {
                            defaults.insert(k, v);
                        }
                    }
                }
            }
        }
        if !defaults.is_empty() {
            job.insert("defaults".into(), Value::Object(defaults));
        }
        if let Some(outputs) = &self.job_outputs {
            job.insert("outputs".into(), outputs.to_json());
        }
        if let Some(container) = &self.job_container {
            job.insert("container".into(), container.to_json());
        }
        if let Some(services) = &self.service_containers {
            job.insert("services".into(), services.to_json());
        }
        if let Some(Value::Object(matrix)) = self.contexts.get("matrix")
            && !matrix.is_empty()
        {
            job.insert(
                "strategy".into(),
                json!({"matrix": {"include": [Value::Object(matrix.clone())]}}),
            );
        }
        let steps: Vec<Value> = self.steps.iter().map(step_yaml).collect::<Result<_, _>>()?;
        job.insert("steps".into(), Value::Array(steps));
        let mut workflow = Map::new();
        let name = self
            .contexts
            .get("github")
            .and_then(|g| g.get("workflow"))
            .and_then(Value::as_str)
            .unwrap_or("workflow");
        workflow.insert("name".into(), json!(name));
        workflow.insert("on".into(), json!("workflow_dispatch"));
        workflow.insert("jobs".into(), json!({ self.job_key(): Value::Object(job) }));
        serde_saphyr::to_string(&Value::Object(workflow))
            .map_err(|e| MessageError(format!("cannot write the job as YAML: {e}")))
    }
}

fn step_yaml(step: &Step) -> Result<Value, MessageError> {
    let mut s = Map::new();
    if !step.context_name.is_empty() && !step.context_name.starts_with("__") {
        s.insert("id".into(), json!(step.context_name));
    }
    if let Some(name) = &step.display_name {
        s.insert("name".into(), json!(name.to_workflow_text()));
    }
    if let Some(condition) = step.condition.as_deref().filter(|c| !c.trim().is_empty()) {
        s.insert("if".into(), json!(condition));
    }
    if let Some(env) = &step.environment {
        s.insert("env".into(), env.to_json());
    }
    if let Some(c) = &step.continue_on_error {
        s.insert("continue-on-error".into(), c.to_json());
    }
    if let Some(t) = &step.timeout_in_minutes {
        s.insert("timeout-minutes".into(), t.to_json());
    }
    let inputs = match step.inputs.as_ref().map(TemplateToken::to_json) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    match &step.action {
        StepAction::Script => {
            let script = inputs
                .get("script")
                .and_then(Value::as_str)
                .ok_or_else(|| MessageError("a script step has no inputs.script".into()))?;
            s.insert("run".into(), json!(script));
            if let Some(shell) = inputs.get("shell") {
                s.insert("shell".into(), shell.clone());
            }
            if let Some(dir) = inputs.get("workingDirectory") {
                s.insert("working-directory".into(), dir.clone());
            }
        }
        StepAction::Repository {
            name,
            git_ref,
            path,
        } => {
            let uses = if name.eq_ignore_ascii_case("self") || name.is_empty() {
                let path = path.trim_start_matches("./");
                format!("./{path}")
            } else if path.is_empty() {
                format!("{name}@{git_ref}")
            } else {
                format!("{name}/{}@{git_ref}", path.trim_matches('/'))
            };
            s.insert("uses".into(), json!(uses));
            if !inputs.is_empty() {
                s.insert("with".into(), Value::Object(inputs));
            }
        }
        StepAction::Container { image } => {
            s.insert("uses".into(), json!(format!("docker://{image}")));
            if !inputs.is_empty() {
                s.insert("with".into(), Value::Object(inputs));
            }
        }
    }
    Ok(Value::Object(s))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Value {
        json!({
            "messageType": "PipelineAgentJobRequest",
            "plan": {"planId": "p-1", "planType": "actions"},
            "jobId": "j-1",
            "jobDisplayName": "build (linux)",
            "jobName": "build",
            "requestId": 42,
            "resources": {"endpoints": [{
                "name": "SystemVssConnection",
                "url": "https://run.example/",
                "authorization": {"scheme": "OAuth", "parameters": {"AccessToken": "JOBTOKEN"}},
                "data": {"ResultsServiceUrl": "https://results.example/"}
            }]},
            "variables": {
                "system.github.token": {"value": "ghs_secret", "isSecret": true},
                "system.github.results_endpoint": {"value": "https://results.example/"}
            },
            "mask": [{"type": "regex", "value": "hunter2"}],
            "contextData": {
                "github": {"t": 2, "d": [{"k": "workflow", "v": "CI"}, {"k": "sha", "v": "abc"}]},
                "matrix": {"t": 2, "d": [{"k": "os", "v": "linux"}]}
            },
            "environmentVariables": [{"type": 2, "map": [{"key": "A", "value": "1"}]}, {"type": 2, "map": [{"key": "B", "value": {"type": 3, "expr": "matrix.os"}}]}],
            "defaults": [{"type": 2, "map": [{"key": "run", "value": {"type": 2, "map": [{"key": "shell", "value": "bash"}]}}]}],
            "jobOutputs": {"type": 2, "map": [{"key": "out", "value": {"type": 3, "expr": "steps.make.outputs.v"}}]},
            "steps": [
                {"type": "action", "id": "s1", "contextName": "__actions_checkout", "reference": {"type": "repository", "name": "actions/checkout", "ref": "v4", "repositoryType": "GitHub"},
                 "inputs": {"type": 2, "map": [{"key": "fetch-depth", "value": {"type": 6, "num": 0}}]}, "condition": "success()"},
                {"type": "action", "id": "s2", "contextName": "make", "displayNameToken": {"type": 0, "lit": "Make it"},
                 "reference": {"type": "script"},
                 "inputs": {"type": 2, "map": [{"key": "script", "value": "make\necho \"v=1\" >> $GITHUB_OUTPUT"}, {"key": "shell", "value": "bash"}]},
                 "environment": {"type": 2, "map": [{"key": "TOKEN", "value": {"type": 3, "expr": "secrets.GITHUB_TOKEN"}}]},
                 "condition": "success() && matrix.os == 'linux'", "continueOnError": true, "timeoutInMinutes": {"type": 6, "num": 5}},
                {"type": "action", "id": "s3", "contextName": "__self", "reference": {"type": 1, "name": "self", "path": "./.github/actions/local"}},
                {"type": "action", "id": "s4", "contextName": "__docker", "reference": {"type": "containerRegistry", "image": "alpine:3"}}
            ]
        })
    }

    #[test]
    fn a_self_repository_step_is_the_workflow_repository_at_its_commit() {
        let mut message = sample();
        let step = json!({"type": "action", "id": "s5", "contextName": "__self_repo",
            "reference": {"type": 1, "repositoryType": "selfRepository", "path": ".github/actions/build"}});
        message["steps"].as_array_mut().unwrap().push(step);
        // Without the job context's workflow repository and sha: the runner's error.
        let error = JobMessage::parse(&message).unwrap_err().to_string();
        assert!(
            error.contains("Unable to resolve self-reference '$/'"),
            "{error}"
        );
        message["contextData"]["job"] = json!({"t": 2, "d": [
            {"k": "workflow_repository", "v": "octo/app"},
            {"k": "workflow_sha", "v": "0123456789abcdef0123456789abcdef01234567"}]});
        let job = JobMessage::parse(&message).unwrap();
        assert_eq!(
            job.steps.last().unwrap().action,
            StepAction::Repository {
                name: "octo/app".into(),
                git_ref: "0123456789abcdef0123456789abcdef01234567".into(),
                path: ".github/actions/build".into(),
            }
        );
    }

    #[test]
    fn a_job_message_reads_into_its_parts() {
        let job = JobMessage::parse(&sample()).unwrap();
        assert_eq!(job.plan_id, "p-1");
        assert_eq!(job.job_key(), "build");
        assert_eq!(job.connection.access_token, "JOBTOKEN");
        assert_eq!(
            job.variable("system.github.results_endpoint"),
            Some("https://results.example/")
        );
        assert!(
            job.variables
                .iter()
                .any(|v| v.name == "system.github.token" && v.is_secret)
        );
        assert_eq!(job.mask_hints, ["hunter2"]);
        assert_eq!(job.contexts["github"]["sha"], "abc");
        assert_eq!(job.steps.len(), 4);
        assert_eq!(
            job.steps[3].action,
            StepAction::Container {
                image: "alpine:3".into()
            }
        );
    }

    #[test]
    fn the_job_becomes_a_one_job_workflow() {
        let yaml = JobMessage::parse(&sample())
            .unwrap()
            .workflow_yaml()
            .unwrap();
        let doc: Value = serde_saphyr::from_str(&yaml).unwrap();
        let job = &doc["jobs"]["build"];
        assert_eq!(doc["name"], "CI");
        assert_eq!(job["env"], json!({"A": "1", "B": "${{ matrix.os }}"}));
        assert_eq!(job["defaults"]["run"]["shell"], "bash");
        assert_eq!(job["outputs"]["out"], "${{ steps.make.outputs.v }}");
        assert_eq!(job["strategy"]["matrix"]["include"][0]["os"], "linux");
        let steps = job["steps"].as_array().unwrap();
        assert_eq!(steps[0]["uses"], "actions/checkout@v4");
        assert_eq!(steps[0]["with"]["fetch-depth"], 0);
        assert!(steps[0].get("id").is_none());
        assert_eq!(steps[1]["id"], "make");
        assert_eq!(steps[1]["name"], "Make it");
        assert_eq!(steps[1]["if"], "success() && matrix.os == 'linux'");
        assert_eq!(steps[1]["env"]["TOKEN"], "${{ secrets.GITHUB_TOKEN }}");
        assert_eq!(steps[1]["continue-on-error"], true);
        assert_eq!(steps[1]["timeout-minutes"], 5);
        assert_eq!(steps[1]["shell"], "bash");
        assert!(steps[1]["run"].as_str().unwrap().contains("GITHUB_OUTPUT"));
        assert_eq!(steps[2]["uses"], "./.github/actions/local");
        assert_eq!(steps[3]["uses"], "docker://alpine:3");
    }

    #[test]
    fn broken_messages_name_what_is_missing() {
        let mut m = sample();
        m["resources"]["endpoints"] = json!([]);
        assert!(
            JobMessage::parse(&m)
                .unwrap_err()
                .to_string()
                .contains("SystemVssConnection")
        );
        let mut m = sample();
        m["steps"][0]["reference"]["type"] = json!("magic");
        assert!(
            JobMessage::parse(&m)
                .unwrap_err()
                .to_string()
                .contains("`magic`")
        );
        let mut m = sample();
        m["steps"][1]["inputs"] = json!({"type": 2, "map": []});
        let job = JobMessage::parse(&m).unwrap();
        assert!(
            job.workflow_yaml()
                .unwrap_err()
                .to_string()
                .contains("inputs.script")
        );
    }
}
