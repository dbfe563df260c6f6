//! The typed workflow: what the loader produces once every key has been checked.
//! Expressions stay as source text with their location; the planner evaluates them.

use crate::diagnostic::Location;
use crate::yaml::Node;

/// A value and where it starts in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub location: Location,
}

impl<T> Located<T> {
    pub fn new(value: T, location: Location) -> Self {
        Located { value, location }
    }
}

impl Located<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// A typed value that may also be written as one `${{ }}` expression
/// (`timeout-minutes: ${{ matrix.t }}`).
#[derive(Debug, Clone, PartialEq)]
pub enum OrExpression<T> {
    Literal(T),
    /// The full source text, `${{ }}` included.
    Expression(String),
}

/// String values by key (`env`, `with`, `outputs`), in source order. Literal numbers
/// and booleans become their text. `inserts` are expressions whose mapping result is
/// merged in: a `${{ insert }}` key's value, or the whole value written as one expression.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StringMap {
    pub entries: Vec<(Located<String>, Located<String>)>,
    pub inserts: Vec<Located<String>>,
}

impl StringMap {
    /// The value of `key` (exact spelling), if present as a literal entry.
    pub fn get(&self, key: &str) -> Option<&Located<String>> {
        self.entries
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(_, v)| v)
    }
}

/// One workflow file.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The file name used in diagnostics.
    pub file: String,
    pub name: Option<Located<String>>,
    pub description: Option<Located<String>>,
    pub run_name: Option<Located<String>>,
    pub on: Triggers,
    pub permissions: Option<Located<Permissions>>,
    pub env: Option<StringMap>,
    pub defaults: Option<Defaults>,
    pub concurrency: Option<Concurrency>,
    /// `cache-mode:` of every job that sets none.
    pub cache_mode: Option<Located<CacheMode>>,
    /// Forgejo's `enable-email-notifications:` (Gitea reads and ignores it).
    pub email_notifications: Option<bool>,
    /// The platform whose rules the file was read by.
    pub dialect: super::Dialect,
    /// Jobs in source order.
    pub jobs: Vec<Job>,
}

/// `cache-mode:` (GitHub, GA 2026-09-10): what a job may do with the Actions cache. The
/// runner exports it to actions as `ACTIONS_CACHE_MODE` and the cache service enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Restores only (GitHub's default for low-trust events such as `pull_request_target`).
    Read,
    /// Restores and saves (the default for trusted events such as `push`).
    Write,
    /// Saves only.
    WriteOnly,
    /// No cache access.
    None,
}

impl CacheMode {
    pub const ALL: [CacheMode; 4] = [
        CacheMode::Read,
        CacheMode::Write,
        CacheMode::WriteOnly,
        CacheMode::None,
    ];

    /// The value as written in workflows and exported in `ACTIONS_CACHE_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Read => "read",
            CacheMode::Write => "write",
            CacheMode::WriteOnly => "write-only",
            CacheMode::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<CacheMode> {
        CacheMode::ALL.into_iter().find(|m| m.as_str() == text)
    }

    pub fn may_restore(self) -> bool {
        matches!(self, CacheMode::Read | CacheMode::Write)
    }

    pub fn may_save(self) -> bool {
        matches!(self, CacheMode::Write | CacheMode::WriteOnly)
    }
}

/// The `on:` section: every event the workflow listens to, in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    pub events: Vec<Event>,
}

/// One event with its filters (`on: push` has none).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub name: Located<String>,
    pub types: Vec<Located<String>>,
    pub branches: Option<Vec<Located<String>>>,
    pub branches_ignore: Option<Vec<Located<String>>>,
    pub tags: Option<Vec<Located<String>>>,
    pub tags_ignore: Option<Vec<Located<String>>>,
    pub paths: Option<Vec<Located<String>>>,
    pub paths_ignore: Option<Vec<Located<String>>>,
    /// `image_version.names`.
    pub names: Option<Vec<Located<String>>>,
    /// `image_version.versions`.
    pub versions: Option<Vec<Located<String>>>,
    /// `workflow_run.workflows`.
    pub workflows: Vec<Located<String>>,
    /// `schedule` cron entries.
    pub schedule: Vec<Cron>,
    /// `workflow_dispatch.inputs`.
    pub dispatch_inputs: Vec<Input>,
    /// `workflow_call` inputs, outputs and secrets.
    pub call: Option<WorkflowCall>,
}

impl Default for Located<String> {
    fn default() -> Self {
        Located::new(String::new(), Location::default())
    }
}

/// One `schedule` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    pub cron: Located<String>,
    pub timezone: Option<Located<String>>,
}

/// The type of a `workflow_dispatch` or `workflow_call` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputType {
    #[default]
    String,
    Boolean,
    Number,
    Choice,
    Environment,
}

/// One input definition of `workflow_dispatch` or `workflow_call`.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: Located<String>,
    pub description: Option<String>,
    pub input_type: InputType,
    pub required: bool,
    /// The default as written (string, boolean or number, or an expression string).
    pub default: Option<Node>,
    /// `choice` options.
    pub options: Vec<String>,
}

/// `on.workflow_call`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowCall {
    pub inputs: Vec<Input>,
    pub outputs: Vec<CallOutput>,
    pub secrets: Vec<CallSecret>,
}

/// One `workflow_call.outputs` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    pub name: Located<String>,
    pub description: Option<String>,
    pub value: Located<String>,
}

/// One `workflow_call.secrets` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSecret {
    pub name: Located<String>,
    pub description: Option<String>,
    pub required: bool,
}

/// `permissions:` at workflow or job level.
#[derive(Debug, Clone, PartialEq)]
pub enum Permissions {
    ReadAll,
    WriteAll,
    /// Scopes in source order; scopes not named get `none`.
    Scopes(Vec<(String, PermissionLevel)>),
}

/// The access of one permission scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionLevel {
    None,
    Read,
    Write,
}

/// `defaults.run`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Defaults {
    pub shell: Option<Located<String>>,
    pub working_directory: Option<Located<String>>,
}

/// `concurrency:` as a group name (possibly an expression) or a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    pub group: Located<String>,
    pub cancel_in_progress: Option<Located<OrExpression<bool>>>,
}

/// One job: either steps on a runner (`runs-on`) or a reusable workflow call (`uses`).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: Located<String>,
    pub name: Option<Located<String>>,
    pub needs: Vec<Located<String>>,
    /// `if:` as written (no `${{ }}` needed); `None` means `success()`.
    pub condition: Option<Located<String>>,
    pub runs_on: Option<RunsOn>,
    pub environment: Option<Environment>,
    pub outputs: Option<StringMap>,
    pub env: Option<StringMap>,
    pub defaults: Option<Defaults>,
    pub timeout_minutes: Option<Located<OrExpression<f64>>>,
    pub cancel_timeout_minutes: Option<Located<OrExpression<f64>>>,
    pub strategy: Option<Strategy>,
    pub continue_on_error: Option<Located<OrExpression<bool>>>,
    pub container: Option<Container>,
    /// Service containers by name, in source order.
    pub services: Vec<(Located<String>, Container)>,
    pub permissions: Option<Located<Permissions>>,
    pub concurrency: Option<Concurrency>,
    /// `cache-mode:`; overrides the workflow's.
    pub cache_mode: Option<Located<CacheMode>>,
    /// Reusable workflow reference (`owner/repo/.github/workflows/x.yml@ref` or `./...`).
    pub uses: Option<Located<String>>,
    /// Inputs of a reusable workflow call, as written.
    pub with: Vec<(Located<String>, Node)>,
    pub secrets: Option<CallSecrets>,
    pub steps: Vec<Step>,
    /// Where the job's mapping starts.
    pub location: Location,
}

impl Job {
    /// The name shown for the job: `name:` when given, else the id.
    pub fn effective_name(&self) -> &str {
        match &self.name {
            Some(n) => &n.value,
            None => &self.id.value,
        }
    }

    /// Whether this job calls a reusable workflow instead of running steps.
    pub fn is_workflow_call(&self) -> bool {
        self.uses.is_some()
    }

    /// The job's `if:`, or GitHub's default `success()`.
    pub fn condition_text(&self) -> &str {
        self.condition
            .as_ref()
            .map_or("success()", |c| c.value.as_str())
    }
}

/// `runs-on`: labels (each may be an expression), optionally with a runner group.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsOn {
    pub group: Option<Located<String>>,
    pub labels: Vec<Located<String>>,
    pub location: Location,
}

/// `environment:` as a name or `{name, url}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: Located<String>,
    pub url: Option<Located<String>>,
}

/// `strategy:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// The matrix as written (a mapping, or a `${{ }}` string); the planner evaluates it.
    pub matrix: Option<Node>,
    pub fail_fast: Option<Located<OrExpression<bool>>>,
    pub max_parallel: Option<Located<OrExpression<f64>>>,
    pub location: Location,
}

/// `container:` or one `services.<name>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Container {
    pub image: Option<Located<String>>,
    pub options: Option<Located<String>>,
    pub env: Option<StringMap>,
    pub ports: Vec<Located<String>>,
    pub volumes: Vec<Located<String>>,
    pub credentials: Option<Credentials>,
    pub entrypoint: Option<Located<String>>,
    pub command: Option<Located<String>>,
    /// Gitea's and Forgejo's `cmd:`, a list of arguments that replaces the image's `CMD`
    /// (services only; act_runner and forgejo-runner ignore it on the job container).
    pub cmd: Vec<Located<String>>,
    pub location: Location,
}

/// Registry credentials of a container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Credentials {
    pub username: Option<Located<String>>,
    pub password: Option<Located<String>>,
    /// `credentials: ${{ ... }}`: one expression that gives the mapping at run time.
    pub whole: Option<Located<String>>,
}

/// `secrets:` of a reusable workflow call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallSecrets {
    Inherit,
    Map(StringMap),
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `id:` as written.
    pub id: Option<Located<String>>,
    /// The id used at run time: `id:` when given, else GitHub's generated one
    /// (`__run`, `__run_2`, `__actions_checkout`, ...).
    pub effective_id: String,
    pub name: Option<Located<String>>,
    /// `if:` as written; `None` means `success()`.
    pub condition: Option<Located<String>>,
    pub uses: Option<Located<String>>,
    pub run: Option<Located<String>>,
    pub shell: Option<Located<String>>,
    pub with: Option<StringMap>,
    pub env: Option<StringMap>,
    pub working_directory: Option<Located<String>>,
    pub continue_on_error: Option<Located<OrExpression<bool>>>,
    pub timeout_minutes: Option<Located<OrExpression<f64>>>,
    pub location: Location,
}

impl Step {
    /// The step's id as the `steps` context knows it.
    pub fn id(&self) -> &str {
        &self.effective_id
    }

    /// The step's `if:`, or GitHub's default `success()`.
    pub fn condition_text(&self) -> &str {
        self.condition
            .as_ref()
            .map_or("success()", |c| c.value.as_str())
    }
}
