//! `hybrid-runner build --dry-run`: what a build would do, without doing it. For a local
//! builder the command lines it would run; for Kaniko the manifests it would apply (the
//! same YAML `hybrid-runner render` prints).

use std::path::Path;

use serde_json::json;

use super::services::ServicePlan;
use crate::cli::UsageError;
use crate::cli::render::manifests_yaml;
use hr_image::ImageBuilder;
use hr_image::kaniko::{BuildSpec, KanikoConfig, VariantSpec};
use hr_image::local::LocalBuilder;

/// What `builder` would do for every service: a local builder's command lines, or the
/// manifests Kaniko would apply.
pub fn print_builder(
    builder: &ImageBuilder,
    plans: &[ServicePlan],
    config: &KanikoConfig,
    json: bool,
) -> anyhow::Result<()> {
    match builder {
        ImageBuilder::Local(local) => print_local(local, plans, json),
        // Unreachable until the Kaniko builder (`ImageBuilder::Kaniko`) is merged in; then
        // this arm prints its manifests.
        #[allow(unreachable_patterns)]
        _ => print_kaniko(plans, config, json),
    }
}

/// The command lines a local builder would run for every service.
fn print_local(local: &LocalBuilder, plans: &[ServicePlan], json: bool) -> anyhow::Result<()> {
    let name = local.tool.as_str();
    let mut services = Vec::new();
    for plan in plans {
        let commands = local.commands(&plan.job);
        if json {
            services.push(json!({
                "name": plan.name,
                "image": plan.image,
                "sha": plan.job.sha,
                "variants": commands.iter().map(|c| json!({
                    "variant": c.variant.as_str(),
                    "commands": std::iter::once(&c.build)
                        .chain(&c.pushes)
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }));
            continue;
        }
        println!(
            "# {}: {} with {name} (sha {})",
            plan.name, plan.image, plan.job.sha
        );
        for variant in &commands {
            println!("# variant {}", variant.variant);
            for command in std::iter::once(&variant.build).chain(&variant.pushes) {
                println!("{command}");
            }
        }
    }
    if json {
        print_json(name, services)?;
    }
    Ok(())
}

/// The Kaniko manifests of every service, as multi-document YAML.
pub fn print_kaniko(
    plans: &[ServicePlan],
    config: &KanikoConfig,
    json: bool,
) -> anyhow::Result<()> {
    let mut services = Vec::new();
    for plan in plans {
        let yaml = manifests_yaml(&kaniko_spec(plan)?, config, &plan.job.task)?;
        if json {
            services.push(json!({
                "name": plan.name,
                "image": plan.image,
                "sha": plan.job.sha,
                "manifests": yaml,
            }));
        } else {
            println!(
                "# {}: {} with kaniko (sha {})",
                plan.name, plan.image, plan.job.sha
            );
            print!("{yaml}");
        }
    }
    if json {
        print_json("kaniko", services)?;
    }
    Ok(())
}

fn print_json(builder: &str, services: Vec<serde_json::Value>) -> anyhow::Result<()> {
    let out = json!({ "dry_run": true, "builder": builder, "services": services });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The Kaniko view of a planned build: Dockerfiles relative to the context.
fn kaniko_spec(plan: &ServicePlan) -> Result<BuildSpec, UsageError> {
    let request = &plan.job.request;
    let variants = request
        .variants
        .iter()
        .map(|v| {
            let context = request.context.to_string_lossy();
            let context = context.trim_start_matches("./");
            let in_context = if context.is_empty() || context == "." {
                Ok(Path::new(&v.dockerfile))
            } else {
                Path::new(&v.dockerfile).strip_prefix(context)
            };
            let dockerfile = in_context
                .map_err(|_| {
                    UsageError(format!(
                        "service `{}`: {} is outside the context {}; Kaniko reads the Dockerfile from the context",
                        plan.name,
                        v.dockerfile,
                        request.context.display()
                    ))
                })?;
            Ok(VariantSpec {
                variant: v.variant,
                dockerfile: dockerfile.to_string_lossy().into_owned(),
                tags: v.tags.clone(),
            })
        })
        .collect::<Result<Vec<_>, UsageError>>()?;
    Ok(BuildSpec {
        image: plan.image.clone(),
        sha: plan.job.sha.clone(),
        context_dir: plan.job.context_dir(),
        variants,
        // Build args often carry tokens: the dry run shows their values as `***`, as the
        // local builders' dry runs do.
        build_args: request
            .build_args
            .iter()
            .map(|(key, _)| (key.clone(), "***".to_string()))
            .collect(),
        target: request.target.clone(),
        labels: request.labels.clone(),
        timeout: plan.job.timeout,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use actions::image_build::{BuildRequest, OutputsStyle, Variant, VariantRequest};

    use super::*;
    use hr_cluster::TaskIds;
    use hr_image::BuildJob;

    fn plan(context: &str, dockerfile: &str) -> ServicePlan {
        ServicePlan {
            name: "api".into(),
            image: "reg/api".into(),
            namespace: None,
            entry: super::super::services::ServiceEntry {
                name: "api".into(),
                context: None,
                dockerfile: None,
                namespace: None,
                image: Some("reg/api".into()),
                deploy: None,
            },
            job: BuildJob {
                request: BuildRequest {
                    context: PathBuf::from(context),
                    variants: vec![VariantRequest {
                        variant: Variant::Docker,
                        dockerfile: dockerfile.into(),
                        tags: vec!["reg/api:latest".into()],
                    }],
                    build_args: Vec::new(),
                    target: None,
                    labels: Vec::new(),
                    push: true,
                    cache: true,
                    skip_unchanged: false,
                    outputs_for: OutputsStyle::Dual,
                },
                workspace: PathBuf::from("/ws"),
                sha: "abc".into(),
                task: TaskIds {
                    task: "build".into(),
                    job: "api".into(),
                    started_at: SystemTime::UNIX_EPOCH,
                },
                timeout: Duration::from_secs(60),
                insecure_registries: Vec::new(),
            },
        }
    }

    #[test]
    fn kaniko_reads_dockerfiles_relative_to_the_context() {
        let spec = kaniko_spec(&plan("svc/api", "svc/api/docker/Dockerfile")).unwrap();
        assert_eq!(spec.variants[0].dockerfile, "docker/Dockerfile");
        assert_eq!(spec.context_dir, PathBuf::from("/ws/svc/api"));
        let spec = kaniko_spec(&plan(".", "Dockerfile")).unwrap();
        assert_eq!(spec.variants[0].dockerfile, "Dockerfile");
        let error = kaniko_spec(&plan("svc/api", "other/Dockerfile")).unwrap_err();
        assert!(error.0.contains("outside the context"), "{error}");
    }
}
