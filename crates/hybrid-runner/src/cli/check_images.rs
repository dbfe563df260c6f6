//! `hybrid-runner check --images`: every image the workloads of namespaces (`-n`,
//! `--all-namespaces`) or of manifests (`-f FILE`, stdin; e.g. `helm template` output)
//! reference, looked up in its registry: one line per image, `present` with its digest or
//! `missing` with what is missing, then the pods that cannot pull an image now.
//!
//! Exit status: 0 when every image exists, 1 when any is missing (or its registry cannot be
//! reached), 2 on usage errors: a gate before `helm upgrade`.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::UsageError;
use super::deploy::{connect, registry_client};
use super::kube_args::{KubeArgs, runtime};
use hr_rollout::image_uses::{ImageUse, PullFailure, cluster_images, manifest_image_uses};
use hr_rollout::{ImageCheck, resolve_images};

/// Where the workloads are.
#[derive(Debug, Clone)]
pub struct ImageSources {
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    pub files: Vec<PathBuf>,
    pub insecure_registries: Vec<String>,
    pub json: bool,
}

/// One image, where it is used, and what the registry said.
struct ImageLine<'a> {
    check: &'a ImageCheck,
    uses: Vec<&'a ImageUse>,
}

pub fn run(sources: ImageSources, kube: &KubeArgs) -> anyhow::Result<ExitCode> {
    let mut files = sources.files.clone();
    if files.is_empty() && sources.namespaces.is_empty() && !sources.all_namespaces {
        if std::io::stdin().is_terminal() {
            return Err(UsageError(
                "check --images needs workloads: -n NAMESPACE, --all-namespaces, -f FILE, or manifests on stdin (e.g. `helm template . | hybrid-runner check --images`)".to_string(),
            )
            .into());
        }
        files.push(PathBuf::from("-"));
    }
    let implicit_stdin = sources.files.is_empty() && files.len() == 1;
    let mut uses = Vec::new();
    for file in &files {
        let (text, name) = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| UsageError(format!("cannot read manifests from stdin: {e}")))?;
            if implicit_stdin && text.trim().is_empty() {
                // A gate fed nothing must not pass: a CI step that forgot its input.
                return Err(UsageError(
                    "check --images read nothing on stdin; pipe manifests in (`helm template . | hybrid-runner check --images`) or pass -f FILE, -n NAMESPACE or --all-namespaces".to_string(),
                )
                .into());
            }
            (text, "stdin".to_string())
        } else {
            let text = std::fs::read_to_string(file).map_err(|e| {
                UsageError(format!(
                    "cannot read the manifests {}: {e}; pass an existing file to -f",
                    file.display()
                ))
            })?;
            (text, file.display().to_string())
        };
        uses.extend(manifest_image_uses(&text, &name).map_err(|e| UsageError(e.to_string()))?);
    }
    runtime()?.block_on(async {
        let mut failures: Vec<PullFailure> = Vec::new();
        if !sources.namespaces.is_empty() || sources.all_namespaces {
            let cluster = connect(kube).await?;
            let scopes: Vec<Option<&str>> = if sources.all_namespaces {
                vec![None]
            } else {
                sources
                    .namespaces
                    .iter()
                    .map(|n| Some(n.as_str()))
                    .collect()
            };
            for scope in scopes {
                let place =
                    scope.map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
                let found = cluster_images(&cluster.client, scope).await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot list the workloads of {place}: {}",
                        hr_cluster::describe(&e)
                    )
                })?;
                uses.extend(found.uses);
                failures.extend(found.pull_failures);
            }
        }
        let mut images: Vec<String> = uses.iter().map(|u| u.image.clone()).collect();
        images.sort();
        images.dedup();
        let registry = registry_client(&sources.insecure_registries)?;
        let checks = resolve_images(&registry, &images).await;
        let lines: Vec<ImageLine<'_>> = checks
            .iter()
            .map(|check| ImageLine {
                check,
                uses: uses.iter().filter(|u| u.image == check.image).collect(),
            })
            .collect();
        let missing = checks.iter().filter(|c| c.result.is_err()).count();
        if sources.json {
            print_json(&lines, &failures, missing)?;
        } else {
            print_text(&lines, &failures, missing);
        }
        Ok(if missing > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn used_by(uses: &[&ImageUse]) -> String {
    let mut places: Vec<String> = uses.iter().map(|u| u.describe()).collect();
    places.dedup();
    places.join(", ")
}

fn print_text(lines: &[ImageLine<'_>], failures: &[PullFailure], missing: usize) {
    let width = lines.iter().map(|l| l.check.image.len()).max().unwrap_or(0);
    for line in lines {
        let image = &line.check.image;
        match &line.check.result {
            Ok(digest) => println!(
                "present  {image:width$}  {digest}  used by {}",
                used_by(&line.uses)
            ),
            Err(problem) => println!(
                "{:8} {image:width$}  {}  used by {}",
                problem.status(),
                problem_detail(problem),
                used_by(&line.uses)
            ),
        }
    }
    for f in failures {
        println!(
            "pulling  {}/{} container {} ({}): {}: {}",
            f.namespace, f.pod, f.container, f.image, f.reason, f.message
        );
    }
    if lines.is_empty() {
        println!("no workload references an image");
    }
    if missing > 0 {
        eprintln!(
            "error: {missing} of {} images are missing; build and push them, or fix the names the manifests use",
            lines.len()
        );
    }
}

/// What is missing, without repeating the image.
fn problem_detail(problem: &hr_rollout::ImageProblem) -> String {
    match problem {
        hr_rollout::ImageProblem::Missing { absence, tags, .. } => {
            hr_rollout::error::missing_detail(*absence, tags)
        }
        hr_rollout::ImageProblem::Unreachable { message, .. }
        | hr_rollout::ImageProblem::Denied { message, .. }
        | hr_rollout::ImageProblem::Reference { message, .. } => message.clone(),
    }
}

fn print_json(
    lines: &[ImageLine<'_>],
    failures: &[PullFailure],
    missing: usize,
) -> anyhow::Result<()> {
    let images: Vec<_> = lines
        .iter()
        .map(|line| {
            let used_by: Vec<_> = line
                .uses
                .iter()
                .map(|u| {
                    json!({"kind": u.kind, "namespace": u.namespace, "name": u.name,
                           "container": u.container, "init": u.init})
                })
                .collect();
            match &line.check.result {
                Ok(digest) => json!({"image": line.check.image, "status": "present",
                                     "digest": digest, "used_by": used_by}),
                Err(problem) => {
                    let mut v = json!({"image": line.check.image, "status": problem.status(),
                                       "error": problem_detail(problem), "used_by": used_by});
                    if let hr_rollout::ImageProblem::Missing { absence, tags, .. } = problem {
                        v["missing"] = json!(absence.as_str());
                        v["tags"] = json!(tags);
                    }
                    v
                }
            }
        })
        .collect();
    let pulls: Vec<_> = failures
        .iter()
        .map(|f| {
            json!({"namespace": f.namespace, "pod": f.pod, "container": f.container,
                   "image": f.image, "reason": f.reason, "message": f.message})
        })
        .collect();
    let doc =
        json!({"ok": missing == 0, "missing": missing, "images": images, "pull_failures": pulls});
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
