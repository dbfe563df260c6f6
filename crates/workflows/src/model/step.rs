//! `jobs.<id>.steps`: run steps and `uses:` steps, their ids (checked, unique within
//! the job, and generated GitHub's way when absent), and the `uses:` reference syntax.

use std::collections::{HashMap, HashSet};

use crate::yaml::Node;

use super::dialect::{Dialect, after_host};
use super::expressions::Scope;
use super::job::{IDENTIFIER_RULES, discriminate, identifier_problem, read_condition};
use super::reader::{Reader, WANT_SEQUENCE};

/// What to do when a step mixes the keys of both kinds.
const STEP_KINDS: &str = "A step either runs a script ('run', 'shell', 'working-directory') or an action ('uses', 'with'): keep the keys of one kind, or split it into two steps.";
use super::types::{Located, Step};

const RUN_STEP_KEYS: &[&str] = &[
    "name",
    "id",
    "if",
    "timeout-minutes",
    "run",
    "continue-on-error",
    "env",
    "working-directory",
    "shell",
    "background",
];

const USES_STEP_KEYS: &[&str] = &[
    "name",
    "id",
    "if",
    "continue-on-error",
    "timeout-minutes",
    "uses",
    "with",
    "env",
    "background",
];

/// Generated ids never exceed this many characters (before a `_N` suffix).
const MAX_GENERATED_ID: usize = 100;

pub(crate) fn read_steps(r: &mut Reader, node: &Node) -> Vec<Step> {
    if node.is_null() {
        return Vec::new();
    }
    let Some(items) = node.as_sequence() else {
        r.unexpected(
            node,
            format!("'steps' is a list of steps, each starting with '- run:' or '- uses:'. {WANT_SEQUENCE}"),
        );
        return Vec::new();
    };
    let mut steps: Vec<Step> = items.iter().filter_map(|item| read_step(r, item)).collect();
    check_explicit_ids(r, &steps);
    generate_ids(&mut steps);
    steps
}

fn read_step(r: &mut Reader, node: &Node) -> Option<Step> {
    let entries = r.mapping(node, None)?;
    let (kinds, entries) = discriminate(r, entries, &[RUN_STEP_KEYS, USES_STEP_KEYS], STEP_KINDS);
    let mut step = Step {
        id: None,
        effective_id: String::new(),
        name: None,
        condition: None,
        uses: None,
        run: None,
        shell: None,
        with: None,
        env: None,
        working_directory: None,
        continue_on_error: None,
        timeout_minutes: None,
        location: node.location,
    };
    for (key, _, value) in entries {
        match key {
            "name" => step.name = r.string(value, Scope::Step),
            "id" => step.id = r.non_empty_string(value, Scope::None),
            "if" => step.condition = read_condition(r, value, Scope::StepIf),
            "timeout-minutes" => step.timeout_minutes = r.number(value, Scope::Step),
            "run" => step.run = r.string(value, Scope::Step),
            "continue-on-error" if r.dialect.is_forge() && value.as_str().is_some() => {
                // Gitea's and Forgejo's job parser decodes a step's `continue-on-error` as a
                // boolean (`jobparser/model.go`): an expression makes the run fail to start.
                r.error(
                    value.location,
                    "A step's continue-on-error must be true or false here",
                    format!(
                        "An expression in a step's continue-on-error is GitHub syntax; {}, whose server refuses the whole run ('Unable to parse jobs'). Write true or false.",
                        r.dialect.read_as()
                    ),
                );
            }
            "continue-on-error" => step.continue_on_error = r.boolean(value, Scope::Step),
            "env" => step.env = r.string_map(value, Scope::Step),
            "working-directory" => step.working_directory = r.non_empty_string(value, Scope::Step),
            "shell" => step.shell = r.non_empty_string(value, Scope::None),
            "uses" => {
                // Forgejo's schema gives `step-uses` the step's contexts and forgejo-runner
                // interpolates it before resolving (`step_action_remote.go`); GitHub reads
                // it literally.
                let scope = if r.dialect == Dialect::Forgejo {
                    Scope::Step
                } else {
                    Scope::None
                };
                step.uses = r.non_empty_string(value, scope);
                if let Some(uses) = step.uses.as_ref().filter(|u| !u.value.contains("${{")) {
                    check_uses(r, uses);
                }
            }
            "with" => step.with = r.string_map(value, Scope::Step),
            // `background` is an experimental feature this runner does not offer.
            _ => r.unexpected(
                value,
                "This runner does not offer background steps: remove 'background:'.",
            ),
        }
    }
    match kinds.as_slice() {
        [0] if step.run.is_none() => r.missing(node.location, "run"),
        [1] if step.uses.is_none() => r.missing(node.location, "uses"),
        [0] | [1] => {}
        _ => r.error(
            node.location,
            "There's not enough info to determine what you meant. Add one of these properties: parallel, run, shell, uses, with, working-directory",
            "Add 'run:' with a script to run, or 'uses:' with an action to call.",
        ),
    }
    Some(step)
}

/// `uses:` must be `docker://image`, a local path `./x`, GitHub's self-repository `$/x`, or
/// `{owner}/{repo}[/path]@ref`, the last also after `https://host/` or `http://host/` on
/// Gitea and Forgejo (their absolute action URLs; GitHub refuses those).
fn check_uses(r: &mut Reader, uses: &Located<String>) {
    let full = uses.value.as_str();
    if full.starts_with("docker://") || full.starts_with("./") || full.starts_with(".\\") {
        return;
    }
    if let Some(path) = full.strip_prefix("$/") {
        if path.trim_start_matches('/').is_empty() {
            r.error(
                uses.location,
                format!("Expected format {{org}}/{{repo}}[/path]@ref. Actual '{full}'"),
                "A self-repository reference names a path after '$/', like '$/.github/actions/build'.",
            );
        }
        return;
    }
    if !r.dialect.is_forge() && (full.starts_with("https://") || full.starts_with("http://")) {
        r.error(
            uses.location,
            format!("Expected format {{org}}/{{repo}}[/path]@ref. Actual '{full}'"),
            format!(
                "An action URL with its host is Gitea and Forgejo syntax; {}. Write 'owner/repo@ref'.",
                r.dialect.read_as()
            ),
        );
        return;
    }
    let text = after_host(full, r.dialect.action_url_schemes()).unwrap_or(full);
    let valid = match text.split_once('@') {
        Some((path, reference)) => {
            let mut parts = path.split('/');
            let owner = parts.next().unwrap_or_default();
            let repo = parts.next().unwrap_or_default();
            !owner.is_empty() && !repo.is_empty() && !reference.is_empty()
        }
        None => false,
    };
    if !valid {
        r.error(
            uses.location,
            format!("Expected format {{org}}/{{repo}}[/path]@ref. Actual '{full}'"),
            "For example 'actions/checkout@v4', './path/to/action', '$/path/to/action' or 'docker://alpine:3'.",
        );
    }
}

/// Explicit ids must be valid identifiers and, on GitHub, unique within the job (ignoring
/// case).
fn check_explicit_ids(r: &mut Reader, steps: &[Step]) {
    let mut seen: HashSet<String> = HashSet::new();
    for id in steps.iter().filter_map(|s| s.id.as_ref()) {
        if let Some(problem) = identifier_problem(&id.value) {
            r.error(id.location, problem, IDENTIFIER_RULES);
            continue;
        }
        // Gitea's and Forgejo's runners do not check it: a later step's results replace an
        // earlier one's.
        if !seen.insert(id.value.to_lowercase()) && !r.dialect.is_forge() {
            r.error(
                id.location,
                format!(
                    "The identifier '{}' may not be used more than once within the same scope.",
                    id.value
                ),
                format!(
                    "Rename one of the steps with id '{}': step ids must be unique within a job (ignoring case).",
                    id.value
                ),
            );
        }
    }
}

/// Gives every step its run-time id: the explicit one, else `__run`, `__<owner>_<repo>`
/// or `__<image>` with a `_2`, `_3`, ... suffix on collision (ignoring case). Each base
/// remembers the last suffix it tried: ids are only ever added, so a suffix taken once
/// stays taken, and each step costs one look-up instead of a scan per candidate.
fn generate_ids(steps: &mut [Step]) {
    let mut taken: HashSet<String> = steps
        .iter()
        .filter_map(|s| s.id.as_ref().map(|id| id.value.to_lowercase()))
        .collect();
    let mut next_suffix: HashMap<String, usize> = HashMap::new();
    for step in steps.iter_mut() {
        if let Some(id) = &step.id {
            step.effective_id = id.value.clone();
            continue;
        }
        let base = generated_base(step);
        let n = next_suffix.entry(base.to_lowercase()).or_insert(1);
        let mut candidate = if *n == 1 {
            base.clone()
        } else {
            format!("{base}_{n}")
        };
        while !taken.insert(candidate.to_lowercase()) {
            *n += 1;
            candidate = format!("{base}_{n}");
        }
        step.effective_id = candidate;
    }
}

fn generated_base(step: &Step) -> String {
    let Some(uses) = &step.uses else {
        return "__run".to_string();
    };
    let text = uses.value.as_str();
    let segment = if let Some(image) = text.strip_prefix("docker://") {
        image.to_string()
    } else if text.starts_with("./") || text.starts_with(".\\") {
        "self".to_string()
    } else {
        let path = text.split('@').next().unwrap_or_default();
        let mut parts = path.split('/');
        let owner = parts.next().unwrap_or_default();
        let repo = parts.next().unwrap_or_default();
        format!("{owner}/{repo}")
    };
    let mut id = String::from("__");
    id.extend(segment.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '_'
        }
    }));
    id.chars().take(MAX_GENERATED_ID).collect()
}
