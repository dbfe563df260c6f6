//! What `hybrid-runner build` builds: one service from a folder, or the services of a
//! services file, each turned into a [`BuildJob`] through the same lowering the
//! `hybrid-runner/build` action uses (dual tags, extra tags, build args).
//!
//! The services file is a YAML list; paths are relative to the file's folder:
//!
//! ```yaml
//! - name: api                 # required, unique
//!   context: services/api     # default "."
//!   dockerfile: Dockerfile    # relative to context, default "Dockerfile"; variant k8s
//!                             # is built from "<dockerfile>.k8s" when it exists
//!   namespace: shop           # the service's Kubernetes namespace (part of the default image)
//!   image: reg:5000/shop/api  # default: <--registry>/<namespace>/<name>
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use actions::image_build::{TagTemplates, from_dual_inputs};
use serde::Deserialize;

use crate::cli::UsageError;
use hr_cluster::TaskIds;
use hr_image::BuildJob;

/// The services file read when `--services` is not given.
pub const DEFAULT_SERVICES_FILE: &str = "services.yaml";

/// One entry of the services file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    pub name: String,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// The workloads `deploy` sets the image on (default: a Deployment named like the
    /// service in its namespace).
    #[serde(default)]
    pub deploy: Option<Vec<DeployEntry>>,
}

/// One workload of a service's `deploy:` list.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeployEntry {
    /// Deployment (default), StatefulSet or DaemonSet.
    #[serde(default)]
    pub kind: Option<String>,
    /// Default: the service's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Default: the service's namespace, else the kube context's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Default: the container named like the workload, else its only container.
    #[serde(default)]
    pub container: Option<String>,
}

/// One service ready to build.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub name: String,
    pub image: String,
    pub namespace: Option<String>,
    pub job: BuildJob,
    /// The services-file entry (its `deploy:` list is what `build --deploy` sets).
    pub entry: ServiceEntry,
}

/// What every service of one invocation shares.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `--sha`, else `GITHUB_SHA`; `None`: the HEAD of the git repository of each context.
    pub sha: Option<String>,
    pub short_sha: Option<usize>,
    /// `--docker-tag-template` / `--k8s-tag-template`: replace that variant's templates.
    pub docker_tag_templates: Vec<String>,
    pub k8s_tag_templates: Vec<String>,
    pub extra_tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
    pub target: Option<String>,
    pub push: bool,
    pub cache: bool,
    /// `--skip-unchanged`: reuse an image built from the same inputs (see `build::avoidance`).
    pub skip_unchanged: bool,
    pub insecure_registries: Vec<String>,
    pub timeout: Duration,
    /// The task id of this run ([`unique_task_id`](hr_cluster::run_ids::unique_task_id)):
    /// every service's namespace is named from it and the service, so a rebuild or a
    /// concurrent build of the same service never meets an earlier run's namespace.
    pub task: String,
}

/// The commit of the tags: `--sha`, else `GITHUB_SHA`; `None`: each context's git HEAD.
pub fn flag_or_env_sha(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string).or_else(|| {
        std::env::var("GITHUB_SHA")
            .ok()
            .filter(|s| !s.trim().is_empty())
    })
}

/// Reads and checks a services file (unique names, at least one service).
pub fn read_services(path: &Path) -> Result<Vec<ServiceEntry>, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "cannot read the services file {}: {e}; pass --services FILE",
            path.display()
        ))
    })?;
    let entries: Vec<ServiceEntry> = serde_saphyr::from_str(&text).map_err(|e| {
        UsageError(format!(
            "{}: not a list of services (name, context, dockerfile, namespace, image, deploy): {e}",
            path.display()
        ))
    })?;
    if entries.is_empty() {
        return Err(UsageError(format!("{} lists no service", path.display())));
    }
    for (i, entry) in entries.iter().enumerate() {
        if entry.name.trim().is_empty() {
            return Err(UsageError(format!(
                "{}: service #{} has an empty name",
                path.display(),
                i + 1
            )));
        }
        if entries[..i].iter().any(|e| e.name == entry.name) {
            return Err(UsageError(format!(
                "{}: service `{}` is listed twice",
                path.display(),
                entry.name
            )));
        }
    }
    Ok(entries)
}

/// The entries `--only a,b` keeps (all when empty), in file order; an unknown name is an
/// error that lists the known ones.
pub fn select_services(
    entries: Vec<ServiceEntry>,
    only: &[String],
) -> Result<Vec<ServiceEntry>, UsageError> {
    if let Some(unknown) = only.iter().find(|n| !entries.iter().any(|e| &e.name == *n)) {
        let known: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        return Err(UsageError(format!(
            "--only {unknown}: no such service; the services file lists {}",
            known.join(", ")
        )));
    }
    Ok(entries
        .into_iter()
        .filter(|e| only.is_empty() || only.contains(&e.name))
        .collect())
}

/// The plan of the one service in `dir` (`build [PATH] --image NAME`).
pub fn plan_folder(
    dir: &Path,
    image: &str,
    options: &PlanOptions,
) -> Result<ServicePlan, UsageError> {
    let dir = absolute(dir)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "service".to_string());
    let entry = ServiceEntry {
        name,
        context: None,
        dockerfile: None,
        namespace: None,
        image: Some(image.to_string()),
        deploy: None,
    };
    plan_service(&dir, &entry, None, options)
}

/// `path` made absolute (symlinks resolved), so commands and messages name real folders.
fn absolute(path: &Path) -> Result<PathBuf, UsageError> {
    std::fs::canonicalize(path)
        .map_err(|e| UsageError(format!("{}: {e}; pass an existing folder", path.display())))
}

/// The plan of one services-file entry; `base` is the file's folder, `registry` the
/// `--registry` default images are placed under.
pub fn plan_service(
    base: &Path,
    entry: &ServiceEntry,
    registry: Option<&str>,
    options: &PlanOptions,
) -> Result<ServicePlan, UsageError> {
    let service = &entry.name;
    let image = service_image(entry, registry)?;
    let context = entry.context.clone().unwrap_or_else(|| ".".to_string());
    let dockerfile = entry
        .dockerfile
        .clone()
        .unwrap_or_else(|| "Dockerfile".to_string());
    let context_dir = base.join(&context);
    if !context_dir.is_dir() {
        return Err(UsageError(format!(
            "service `{service}`: the context {} is not a folder",
            context_dir.display()
        )));
    }
    if !context_dir.join(&dockerfile).is_file() {
        return Err(UsageError(format!(
            "service `{service}`: {} has no {dockerfile}; pass the folder of the image to build",
            context_dir.display()
        )));
    }
    let k8s_dockerfile = format!("{dockerfile}.k8s");
    let k8s_exists = context_dir.join(&k8s_dockerfile).is_file();
    let sha = match &options.sha {
        Some(sha) => sha.clone(),
        None => super::super::render::head_sha(&context_dir)
            .map_err(|e| UsageError(format!("service `{service}`: {e}")))?,
    };

    let mut inputs = vec![
        ("image".to_string(), image.clone()),
        ("context".to_string(), context.clone()),
        ("dockerfile".to_string(), dockerfile),
        ("push".to_string(), options.push.to_string()),
        ("cache".to_string(), options.cache.to_string()),
        (
            "skip-unchanged".to_string(),
            options.skip_unchanged.to_string(),
        ),
        ("tags".to_string(), options.extra_tags.join("\n")),
        (
            "build-args".to_string(),
            options
                .build_args
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ];
    if k8s_exists {
        inputs.push(("k8s-dockerfile".to_string(), k8s_dockerfile));
    }
    if let Some(target) = &options.target {
        inputs.push(("target".to_string(), target.clone()));
    }
    let mut templates = TagTemplates {
        sha_length: options.short_sha,
        ..TagTemplates::default()
    };
    if !options.docker_tag_templates.is_empty() {
        templates.docker = options.docker_tag_templates.clone();
    }
    if !options.k8s_tag_templates.is_empty() {
        templates.k8s = options.k8s_tag_templates.clone();
    }
    let request = from_dual_inputs(&inputs, &sha, k8s_exists, &templates)
        .map_err(|e| UsageError(format!("service `{service}`: {e}")))?;
    Ok(ServicePlan {
        name: service.clone(),
        image,
        entry: entry.clone(),
        namespace: entry.namespace.clone(),
        job: BuildJob {
            request,
            workspace: base.to_path_buf(),
            sha,
            task: TaskIds {
                task: options.task.clone(),
                job: service.clone(),
                started_at: SystemTime::now(),
            },
            timeout: options.timeout,
            insecure_registries: options.insecure_registries.clone(),
        },
    })
}

/// The image repository of a service: its `image`, else `<registry>/<namespace>/<name>`.
pub fn service_image(entry: &ServiceEntry, registry: Option<&str>) -> Result<String, UsageError> {
    let service = &entry.name;
    match (&entry.image, registry) {
        (Some(image), _) => Ok(image.clone()),
        (None, Some(registry)) => {
            let registry = registry.trim_end_matches('/');
            Ok(match entry.namespace.as_deref().filter(|n| !n.is_empty()) {
                Some(namespace) => format!("{registry}/{namespace}/{service}"),
                None => format!("{registry}/{service}"),
            })
        }
        (None, None) => Err(UsageError(format!(
            "service `{service}` has no `image`; set it in the services file or pass --registry"
        ))),
    }
}

/// Whether a service builds the k8s variant: its context holds `<dockerfile>.k8s`.
pub fn has_k8s_dockerfile(base: &Path, entry: &ServiceEntry) -> bool {
    let context = base.join(entry.context.as_deref().unwrap_or("."));
    let dockerfile = entry.dockerfile.as_deref().unwrap_or("Dockerfile");
    context.join(format!("{dockerfile}.k8s")).is_file()
}

/// The folder git is asked for the commit of a service (`--sha` not given).
pub fn service_context(base: &Path, entry: &ServiceEntry) -> PathBuf {
    base.join(entry.context.as_deref().unwrap_or("."))
}

/// `KEY=VALUE` pairs of `--build-arg`.
pub fn parse_build_args(pairs: &[String]) -> Result<Vec<(String, String)>, UsageError> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(UsageError(format!(
                "--build-arg {pair}: expected KEY=VALUE"
            ))),
        })
        .collect()
}

/// The folder the services file lives in (its paths start there), absolute.
pub fn services_base(file: &Path) -> Result<PathBuf, UsageError> {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => absolute(parent),
        _ => absolute(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use actions::image_build::Variant;

    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn options() -> PlanOptions {
        PlanOptions {
            sha: Some(SHA.to_string()),
            short_sha: Some(7),
            docker_tag_templates: Vec::new(),
            k8s_tag_templates: Vec::new(),
            extra_tags: vec!["v1".to_string()],
            build_args: vec![("A".into(), "1".into())],
            target: None,
            push: true,
            cache: true,
            skip_unchanged: false,
            insecure_registries: Vec::new(),
            timeout: Duration::from_secs(60),
            task: "build-test".to_string(),
        }
    }

    #[test]
    fn tag_templates_replace_a_variants_default_tags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("Dockerfile.k8s"), "FROM scratch\n").unwrap();
        let options = PlanOptions {
            docker_tag_templates: vec!["stable".into(), "git-{sha}".into()],
            extra_tags: Vec::new(),
            ..options()
        };
        let plan = plan_folder(dir.path(), "reg:5000/app", &options).unwrap();
        let variants = &plan.job.request.variants;
        assert_eq!(
            variants[0].tags,
            ["reg:5000/app:stable", "reg:5000/app:git-0123456"]
        );
        assert_eq!(
            variants[1].tags,
            ["reg:5000/app:k8s-latest", "reg:5000/app:k8s-0123456"]
        );
        let bad = PlanOptions {
            k8s_tag_templates: vec!["bad tag".into()],
            ..options
        };
        assert!(plan_folder(dir.path(), "reg:5000/app", &bad).is_err());
    }

    #[test]
    fn a_folder_with_both_dockerfiles_plans_the_dual_tags_and_extras() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("Dockerfile.k8s"), "FROM scratch\n").unwrap();
        let plan = plan_folder(dir.path(), "reg:5000/app", &options()).unwrap();
        let variants = &plan.job.request.variants;
        assert_eq!(variants.len(), 2);
        assert_eq!(variants[0].variant, Variant::Docker);
        assert_eq!(
            variants[0].tags,
            [
                "reg:5000/app:latest",
                "reg:5000/app:docker-latest",
                "reg:5000/app:docker-0123456",
                "reg:5000/app:v1"
            ]
        );
        assert_eq!(
            variants[1].tags,
            [
                "reg:5000/app:k8s-latest",
                "reg:5000/app:k8s-0123456",
                "reg:5000/app:k8s-v1"
            ]
        );
        assert_eq!(variants[1].dockerfile, "Dockerfile.k8s");
        assert_eq!(
            plan.job.request.build_args,
            [("A".to_string(), "1".to_string())]
        );
    }

    #[test]
    fn services_file_entries_plan_with_default_images_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let svc = dir.path().join("svc/api");
        std::fs::create_dir_all(&svc).unwrap();
        std::fs::write(svc.join("api.Dockerfile"), "FROM scratch\n").unwrap();
        let file = dir.path().join("services.yaml");
        std::fs::write(
            &file,
            "- name: api\n  context: svc/api\n  dockerfile: api.Dockerfile\n  namespace: shop\n- name: web\n  image: reg/web\n",
        )
        .unwrap();
        let entries = read_services(&file).unwrap();
        let only = select_services(entries.clone(), &["api".to_string()]).unwrap();
        assert_eq!(only.len(), 1);
        let plan = plan_service(dir.path(), &only[0], Some("reg:5000/"), &options()).unwrap();
        assert_eq!(plan.image, "reg:5000/shop/api");
        assert_eq!(plan.job.request.variants.len(), 1, "no api.Dockerfile.k8s");
        assert_eq!(
            plan.job.request.variants[0].dockerfile,
            "svc/api/api.Dockerfile"
        );
        assert_eq!(plan.job.context_dir(), dir.path().join("svc/api"));

        let error = select_services(entries.clone(), &["nope".to_string()]).unwrap_err();
        assert!(error.0.contains("lists api, web"), "{error}");
        let error = plan_service(dir.path(), &entries[0], None, &options()).unwrap_err();
        assert!(error.0.contains("--registry"), "{error}");
        let error = plan_service(dir.path(), &entries[1], None, &options()).unwrap_err();
        assert!(error.0.contains("has no Dockerfile"), "{error}");
    }

    #[test]
    fn bad_services_files_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        for (text, needle) in [
            ("- name: a\n- name: a\n", "listed twice"),
            ("- name: a\n  colour: red\n", "not a list of services"),
            ("[]\n", "lists no service"),
        ] {
            std::fs::write(&file, text).unwrap();
            let error = read_services(&file).unwrap_err();
            assert!(error.0.contains(needle), "{text}: {error}");
        }
        let error = read_services(&dir.path().join("absent.yaml")).unwrap_err();
        assert!(error.0.contains("--services FILE"), "{error}");
    }

    #[test]
    fn build_args_need_a_key_and_equals() {
        assert_eq!(
            parse_build_args(&["A=1=2".into()]).unwrap(),
            [("A".to_string(), "1=2".to_string())]
        );
        assert!(parse_build_args(&["A".into()]).is_err());
        assert!(parse_build_args(&["=1".into()]).is_err());
    }
}
