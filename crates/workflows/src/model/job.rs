//! `jobs.<id>`: telling a runner job from a reusable-workflow call by its keys (as
//! GitHub does), then reading every key of either kind.

use crate::yaml::{Node, NodeValue};

use super::container::{read_container, read_services};
use super::dialect::{Dialect, after_host};
use super::expressions::{Scope, check_condition};
use super::reader::{Entry, Reader};
use super::settings::{read_cache_mode, read_concurrency, read_defaults, read_permissions};
use super::step::read_steps;
use super::strategy::read_strategy;
use super::suggest::did_you_mean;
use super::types::{CallSecrets, Environment, Job, Located, RunsOn};

const RUNNER_JOB_KEYS: &[&str] = &[
    "needs",
    "if",
    "strategy",
    "name",
    "runs-on",
    "timeout-minutes",
    "cancel-timeout-minutes",
    "continue-on-error",
    "container",
    "services",
    "env",
    "environment",
    "permissions",
    "concurrency",
    "outputs",
    "defaults",
    "steps",
    "snapshot",
    "cache-mode",
];

/// The keys a reusable-workflow call takes on Gitea and Forgejo besides GitHub's: Forgejo's
/// schema's `workflow-job` has them, and neither server expands the call: a runner chosen by
/// `runs-on` runs it.
const FORGE_CALL_JOB_EXTRA: &[&str] = &["runs-on", "container"];

const CALL_JOB_KEYS: &[&str] = &[
    "name",
    "uses",
    "with",
    "secrets",
    "needs",
    "if",
    "permissions",
    "concurrency",
    "strategy",
    "cache-mode",
];

/// How to write a valid identifier.
pub(crate) const IDENTIFIER_RULES: &str = "Rename it: start with a letter or '_', then use only letters, digits, '_' and '-' (fewer than 100 characters, not starting with '__').";

/// What to do when a job mixes the keys of both kinds.
const JOB_KINDS: &str = "A job either runs steps on a runner ('runs-on', 'steps', ...) or calls a reusable workflow ('uses', 'with', 'secrets'): keep the keys of one kind, or split it into two jobs.";

/// Why an identifier is rejected, in GitHub's words; `None` when it is valid.
pub(crate) fn identifier_problem(id: &str) -> Option<String> {
    let mut chars = id.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !first_ok || !rest_ok || id.chars().count() >= 100 {
        return Some(format!(
            "The identifier '{id}' is invalid. IDs may only contain alphanumeric characters, '_', and '-'. IDs must start with a letter or '_' and and must be less than 100 characters."
        ));
    }
    if id.starts_with("__") {
        return Some(format!(
            "The identifier '{id}' is invalid. IDs starting with '__' are reserved."
        ));
    }
    None
}

/// Splits `entries` between candidate kinds the way GitHub does: each key narrows the
/// candidates to those that know it; a key no remaining candidate knows is unexpected.
/// Returns the index of the single remaining kind, or every remaining index.
/// `mixed_kinds` is the help for a key that belongs to a kind already ruled out.
pub(crate) fn discriminate<'a>(
    r: &mut Reader,
    entries: Vec<Entry<'a>>,
    kinds: &[&[&str]],
    mixed_kinds: &str,
) -> (Vec<usize>, Vec<Entry<'a>>) {
    let mut remaining: Vec<usize> = (0..kinds.len()).collect();
    let mut kept = Vec::with_capacity(entries.len());
    for entry in entries {
        let narrowed: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|&i| kinds[i].contains(&entry.0))
            .collect();
        if narrowed.is_empty() {
            let help = if kinds.iter().any(|k| k.contains(&entry.0)) {
                mixed_kinds.to_string()
            } else {
                let mut allowed: Vec<&str> = Vec::new();
                for key in remaining.iter().flat_map(|&i| kinds[i].iter().copied()) {
                    if !allowed.contains(&key) {
                        allowed.push(key);
                    }
                }
                did_you_mean(entry.0, &allowed, "keys")
            };
            r.unexpected(entry.1, help);
            continue;
        }
        remaining = narrowed;
        kept.push(entry);
    }
    (remaining, kept)
}

pub(crate) fn read_jobs(r: &mut Reader, node: &Node) -> Vec<Job> {
    let Some(entries) = r.mapping(node, None) else {
        return Vec::new();
    };
    let mut jobs = Vec::with_capacity(entries.len());
    for (id, key, value) in entries {
        if let Some(problem) = identifier_problem(id) {
            r.error(key.location, problem, IDENTIFIER_RULES);
        }
        let id = Located::new(id.to_string(), key.location);
        if let Some(job) = read_job(r, id, value) {
            jobs.push(job);
        }
    }
    jobs
}

fn read_job(r: &mut Reader, id: Located<String>, node: &Node) -> Option<Job> {
    let entries = r.mapping(node, None)?;
    let mut call_keys = CALL_JOB_KEYS.to_vec();
    if r.dialect.is_forge() {
        call_keys.extend_from_slice(FORGE_CALL_JOB_EXTRA);
    }
    let (mut kinds, entries) = discriminate(r, entries, &[RUNNER_JOB_KEYS, &call_keys], JOB_KINDS);
    // `runs-on` and `container`, which both kinds take on Gitea and Forgejo, do not make a
    // job a call without `uses`.
    if r.dialect.is_forge()
        && kinds.len() > 1
        && entries
            .iter()
            .any(|(key, _, _)| matches!(*key, "runs-on" | "container"))
    {
        kinds = vec![0];
    }
    let mut job = Job {
        id,
        name: None,
        needs: Vec::new(),
        condition: None,
        runs_on: None,
        environment: None,
        outputs: None,
        env: None,
        defaults: None,
        timeout_minutes: None,
        cancel_timeout_minutes: None,
        strategy: None,
        continue_on_error: None,
        container: None,
        services: Vec::new(),
        permissions: None,
        concurrency: None,
        cache_mode: None,
        uses: None,
        with: Vec::new(),
        secrets: None,
        steps: Vec::new(),
        location: node.location,
    };
    for (key, _, value) in entries {
        read_job_key(r, &mut job, key, value);
    }
    match kinds.as_slice() {
        // Gitea hands a job without `runs-on` to any runner (`models/actions/runner.go`);
        // Forgejo never runs it, GitHub refuses it.
        [0] if job.runs_on.is_none() && r.dialect != Dialect::Gitea => {
            r.missing(node.location, "runs-on");
        }
        [1] if job.uses.is_none() => r.missing(node.location, "uses"),
        [0] | [1] => {}
        _ => r.error(
            node.location,
            "There's not enough info to determine what you meant. Add one of these properties: cancel-timeout-minutes, container, continue-on-error, defaults, env, environment, outputs, runs-on, secrets, services, snapshot, steps, timeout-minutes, uses, with",
            "Add 'runs-on:' and 'steps:' to run steps on a runner, or 'uses:' to call a reusable workflow.",
        ),
    }
    Some(job)
}

fn read_job_key(r: &mut Reader, job: &mut Job, key: &str, value: &Node) {
    match key {
        "name" => job.name = r.string(value, Scope::JobStrategy),
        "needs" => job.needs = r.string_list(value, Scope::None, true).unwrap_or_default(),
        "if" => job.condition = read_condition(r, value, Scope::JobIf),
        "runs-on" => job.runs_on = read_runs_on(r, value),
        "environment" => job.environment = read_environment(r, value),
        "outputs" => job.outputs = r.string_map(value, Scope::Runner),
        "env" => job.env = r.string_map(value, Scope::JobEnv),
        "defaults" => job.defaults = read_defaults(r, value, Scope::JobDefaults),
        "timeout-minutes" => job.timeout_minutes = r.number(value, Scope::JobStrategy),
        "cancel-timeout-minutes" => {
            job.cancel_timeout_minutes = r.number(value, Scope::JobStrategy);
        }
        "strategy" => job.strategy = read_strategy(r, value),
        "continue-on-error" => job.continue_on_error = r.boolean(value, Scope::JobStrategy),
        "container" => job.container = read_container(r, value, false),
        "services" => job.services = read_services(r, value),
        "permissions" => job.permissions = read_permissions(r, value),
        "concurrency" => job.concurrency = read_concurrency(r, value, Scope::JobStrategy),
        "cache-mode" => job.cache_mode = read_cache_mode(r, value),
        "uses" => {
            job.uses = r.non_empty_string(value, Scope::None);
            if let Some(uses) = &job.uses {
                check_workflow_reference(r, uses);
            }
        }
        "with" => {
            for (name, key, v) in r.mapping(value, None).unwrap_or_default() {
                if v.as_mapping().is_some() || v.as_sequence().is_some() {
                    r.unexpected(
                        v,
                        "Inputs of a reusable workflow are strings, numbers or booleans: pass a list or mapping as JSON text and read it with fromJSON().",
                    );
                    continue;
                }
                r.string(v, Scope::JobStrategy);
                job.with
                    .push((Located::new(name.to_string(), key.location), v.clone()));
            }
        }
        "secrets" => job.secrets = read_call_secrets(r, value),
        "steps" => job.steps = read_steps(r, value),
        // `snapshot` (custom images) is checked as GitHub checks it and not used by this
        // runner.
        "snapshot" => read_snapshot(r, value),
        _ => {}
    }
}

/// `snapshot:` as GitHub's schema has it: an image name, or a mapping of `image-name`
/// (required), `version` and `if` (evaluated with the job's strategy contexts).
fn read_snapshot(r: &mut Reader, node: &Node) {
    if node.as_mapping().is_none() {
        r.non_empty_string(node, Scope::JobStrategy);
        return;
    }
    let Some(entries) = r.mapping(node, Some(&["image-name", "version", "if"])) else {
        return;
    };
    let mut has_name = false;
    for (key, _, value) in entries {
        match key {
            "image-name" => has_name = r.non_empty_string(value, Scope::JobStrategy).is_some(),
            "version" => {
                r.non_empty_string(value, Scope::None);
            }
            _ => {
                read_condition(r, value, Scope::JobStrategy);
            }
        }
    }
    if !has_name && node.get("image-name").is_none() {
        r.missing(node.location, "image-name");
    }
}

/// A called workflow is `./<path>` or `$/<path>` (GitHub's self-repository form) in this
/// repository, or `{owner}/{repo}/<path>@{ref}`.
fn check_workflow_reference(r: &mut Reader, uses: &Located<String>) {
    let full = uses.value.as_str();
    if full.starts_with("./") || full.len() > 2 && full.starts_with("$/") {
        return;
    }
    // Gitea's and Forgejo's runners also take the host in front (act's
    // `reusable_workflow.go`) and their own workflow folders.
    let absolute = r
        .dialect
        .is_forge()
        .then(|| after_host(full, &["https://", "http://"]))
        .flatten();
    let text = absolute.unwrap_or(full);
    let valid = text.split_once('@').is_some_and(|(path, reference)| {
        let parts: Vec<&str> = path.split('/').collect();
        parts.len() >= 3 && parts.iter().all(|p| !p.is_empty()) && !reference.is_empty()
    });
    if !valid {
        r.error(
            uses.location,
            format!(
                "Invalid workflow reference '{full}'. Use '{{owner}}/{{repo}}/.github/workflows/{{file}}@{{ref}}' or './.github/workflows/{{file}}'."
            ),
            "For example 'octo-org/ci/.github/workflows/build.yml@v1' or './.github/workflows/build.yml'.",
        );
    }
}

/// An `if:` value: a string (no `${{ }}` needed), or a literal that GitHub reads as text.
pub(crate) fn read_condition(r: &mut Reader, node: &Node, scope: Scope) -> Option<Located<String>> {
    let text = match &node.value {
        NodeValue::Sequence(_) | NodeValue::Mapping(_) => {
            r.unexpected(
                node,
                "Write the condition as one string, like `github.ref == 'refs/heads/main'`.",
            );
            return None;
        }
        NodeValue::String(s) => s.clone(),
        _ => node.scalar_text().unwrap_or_default(),
    };
    if let Err(problem) = check_condition(&text, scope, r.dialect) {
        r.problem(node.location, problem);
    }
    Some(Located::new(text, node.location))
}

fn read_call_secrets(r: &mut Reader, node: &Node) -> Option<CallSecrets> {
    match &node.value {
        NodeValue::String(s) if s == "inherit" => Some(CallSecrets::Inherit),
        NodeValue::Mapping(_) => r.string_map(node, Scope::JobSecrets).map(CallSecrets::Map),
        _ => {
            r.unexpected(
                node,
                "Write 'secrets: inherit' or a mapping of secret names to values.",
            );
            None
        }
    }
}

fn read_runs_on(r: &mut Reader, node: &Node) -> Option<RunsOn> {
    let scope = Scope::JobStrategy;
    if node.as_mapping().is_none() {
        let labels = r.string_list(node, scope, true)?;
        return Some(RunsOn {
            group: None,
            labels,
            location: node.location,
        });
    }
    let mut runs_on = RunsOn {
        group: None,
        labels: Vec::new(),
        location: node.location,
    };
    for (key, _, value) in r.mapping(node, Some(&["group", "labels"]))? {
        match key {
            "group" => {
                runs_on.group = r.non_empty_string(value, scope);
                if let Some(group) = &runs_on.group {
                    check_runner_group(r, group);
                }
            }
            _ => runs_on.labels = r.string_list(value, scope, true).unwrap_or_default(),
        }
    }
    Some(runs_on)
}

/// A group name may carry one `organization/` or `enterprise/` prefix (or `org/`, `ent/`).
fn check_runner_group(r: &mut Reader, group: &Located<String>) {
    let name = group.value.as_str();
    let Some((prefix, rest)) = name.split_once('/') else {
        return;
    };
    if rest.is_empty() {
        r.error(
            group.location,
            format!("Invalid runs-on group name '{name}'."),
            "Write the group's name after the '/', like 'organization/my-group', or drop the prefix.",
        );
    } else if !matches!(prefix, "organization" | "enterprise" | "org" | "ent") || rest.contains('/')
    {
        r.error(
            group.location,
            format!("Invalid runs-on group name '{name}'. Please use 'organization/' or 'enterprise/' prefix to target a single runner group."),
            "Write 'my-group', 'organization/my-group' or 'enterprise/my-group'.",
        );
    }
}

fn read_environment(r: &mut Reader, node: &Node) -> Option<Environment> {
    let scope = Scope::JobStrategy;
    if node.as_mapping().is_none() {
        return r
            .string(node, scope)
            .map(|name| Environment { name, url: None });
    }
    let mut name = None;
    let mut url = None;
    for (key, _, value) in r.mapping(node, Some(&["name", "url", "deployment"]))? {
        match key {
            "name" => name = r.string(value, scope),
            "url" => url = r.string(value, Scope::RunnerNoSecrets),
            _ => {
                r.boolean(value, scope);
            }
        }
    }
    match name {
        Some(name) => Some(Environment { name, url }),
        None => {
            r.missing(node.location, "name");
            None
        }
    }
}
