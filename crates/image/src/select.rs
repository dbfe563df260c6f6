//! Which builder runs a build: the one the user named (`--builder`, the `builder` config
//! key), or for `auto` the first usable of Kubernetes (a kubeconfig or in-cluster config
//! is present and the cluster can be reached), buildah, podman, docker (only when its
//! daemon answers). When none is usable the error lists what was tried and why each
//! was passed over.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::kaniko::{KanikoBuilder, KanikoConfig};
use super::local::{LocalBuilder, LocalTool};
use super::{BuildError, BuilderChoice, ImageBuilder};

/// Where the service-account token of an in-cluster pod is mounted.
pub const IN_CLUSTER_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How long `docker version` may take to tell whether its daemon answers.
const DOCKER_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What selection looks at. [`SelectOptions::from_process`] fills it from this process's
/// environment; tests fill it themselves.
#[derive(Debug, Clone, Default)]
pub struct SelectOptions {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (`--context`), else the current one.
    pub kube_context: Option<String>,
    /// How builds run on the cluster when Kubernetes is chosen.
    pub kaniko: KanikoConfig,
    /// `KUBECONFIG`.
    pub kubeconfig_env: Option<OsString>,
    /// `HOME`, for `~/.kube/config`.
    pub home: Option<PathBuf>,
    /// `KUBERNETES_SERVICE_HOST` (set inside a pod).
    pub service_host: Option<String>,
    /// The service-account token file [`IN_CLUSTER_TOKEN`] (tests point it elsewhere).
    pub token_path: PathBuf,
    /// `PATH`, searched for buildah, podman and docker.
    pub path: Option<OsString>,
}

impl SelectOptions {
    /// The options as this process's environment gives them.
    pub fn from_process(kubeconfig: Option<PathBuf>, kaniko: KanikoConfig) -> SelectOptions {
        SelectOptions {
            kubeconfig,
            kube_context: None,
            kaniko,
            kubeconfig_env: std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
            service_host: std::env::var("KUBERNETES_SERVICE_HOST")
                .ok()
                .filter(|v| !v.is_empty()),
            token_path: PathBuf::from(IN_CLUSTER_TOKEN),
            path: std::env::var_os("PATH"),
        }
    }
}

/// Where the Kubernetes configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeSource {
    /// A kubeconfig file (from `--kubeconfig`, `KUBECONFIG` or `~/.kube/config`).
    Kubeconfig(PathBuf),
    /// `KUBERNETES_SERVICE_HOST` plus the mounted service-account token.
    InCluster,
}

/// The Kubernetes configuration present, in kubectl's order: `--kubeconfig`, the first
/// existing file in `KUBECONFIG`, `~/.kube/config`, then in-cluster. `Err` says why there
/// is none.
pub fn kube_source(options: &SelectOptions) -> Result<KubeSource, String> {
    if let Some(path) = &options.kubeconfig {
        return Ok(KubeSource::Kubeconfig(path.clone()));
    }
    if let Some(list) = &options.kubeconfig_env
        && let Some(path) = std::env::split_paths(list).find(|p| p.is_file())
    {
        return Ok(KubeSource::Kubeconfig(path));
    }
    if let Some(home) = &options.home {
        let path = home.join(".kube/config");
        if path.is_file() {
            return Ok(KubeSource::Kubeconfig(path));
        }
    }
    if options.service_host.is_some() && options.token_path.is_file() {
        return Ok(KubeSource::InCluster);
    }
    Err(
        "no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not in a cluster (KUBERNETES_SERVICE_HOST and a service-account token)"
            .to_string(),
    )
}

/// The first executable file named `name` in the `PATH` list.
pub fn find_program(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    let path = path?;
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One builder selection considers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    Kaniko(KubeSource),
    Local(LocalBuilder),
    /// Not usable for a reason known without trying it.
    Missing {
        builder: &'static str,
        why: String,
    },
}

/// The builders to try for `choice`, in order, from what is present (pure: no process,
/// no network). `auto` lists Kubernetes first, then buildah, podman, docker.
pub fn candidates(
    choice: BuilderChoice,
    kube: &Result<KubeSource, String>,
    found: &dyn Fn(LocalTool) -> Option<PathBuf>,
) -> Vec<Candidate> {
    let kaniko = || match kube {
        Ok(source) => Candidate::Kaniko(source.clone()),
        Err(why) => Candidate::Missing {
            builder: "kaniko",
            why: why.clone(),
        },
    };
    let local = |tool: LocalTool| match found(tool) {
        Some(program) => Candidate::Local(LocalBuilder::new(tool, program)),
        None => Candidate::Missing {
            builder: tool.as_str(),
            why: format!("`{tool}` is not on PATH"),
        },
    };
    match choice {
        BuilderChoice::Auto => std::iter::once(kaniko())
            .chain(LocalTool::ALL.into_iter().map(local))
            .collect(),
        BuilderChoice::Kaniko => vec![kaniko()],
        BuilderChoice::Buildah => vec![local(LocalTool::Buildah)],
        BuilderChoice::Podman => vec![local(LocalTool::Podman)],
        BuilderChoice::Docker => vec![local(LocalTool::Docker)],
    }
}

/// The builder for `choice`: the first candidate that is usable. Kubernetes must connect;
/// docker's daemon must answer `docker version`; buildah and podman need only be on
/// `PATH`. The error lists every candidate and why it was passed over.
pub async fn select_builder(
    choice: BuilderChoice,
    options: &SelectOptions,
) -> Result<ImageBuilder, BuildError> {
    let kube = kube_source(options);
    let path = options.path.clone();
    let found = move |tool: LocalTool| find_program(tool.as_str(), path.as_deref());
    let mut passed_over = Vec::new();
    for candidate in candidates(choice, &kube, &found) {
        match candidate {
            Candidate::Kaniko(source) => match connect_kaniko(&source, options).await {
                Ok(builder) => return Ok(builder),
                Err(error) => passed_over.push(("kaniko", error.to_string())),
            },
            Candidate::Local(builder) if builder.tool == LocalTool::Docker => {
                match docker_daemon_answers(&builder.program).await {
                    Ok(()) => return Ok(ImageBuilder::Local(builder)),
                    Err(why) => passed_over.push(("docker", why)),
                }
            }
            Candidate::Local(builder) => return Ok(ImageBuilder::Local(builder)),
            Candidate::Missing { builder, why } => passed_over.push((builder, why)),
        }
    }
    Err(nothing_usable(choice, &passed_over))
}

fn nothing_usable(choice: BuilderChoice, passed_over: &[(&'static str, String)]) -> BuildError {
    let tried: Vec<String> = passed_over
        .iter()
        .map(|(name, why)| format!("{name}: {why}"))
        .collect();
    let remedy = match choice {
        BuilderChoice::Auto => {
            "point --kubeconfig at a cluster, or install buildah or podman (or start Docker)"
        }
        BuilderChoice::Kaniko => "check the kubeconfig and that the cluster answers",
        _ => "install it, or pick another --builder",
    };
    let message = match (choice, passed_over) {
        (BuilderChoice::Auto, _) | (_, []) => {
            format!("no usable builder; tried {}; {remedy}", tried.join("; "))
        }
        (_, [(_, why)]) => format!("{why}; {remedy}"),
        (_, _) => format!("{}; {remedy}", tried.join("; ")),
    };
    BuildError::Unavailable {
        builder: choice.as_str(),
        message,
    }
}

/// Connects to the cluster `source` describes and returns the Kaniko builder once the API
/// server has answered (`/version`).
async fn connect_kaniko(
    source: &KubeSource,
    options: &SelectOptions,
) -> Result<ImageBuilder, BuildError> {
    let kubeconfig = match source {
        KubeSource::Kubeconfig(path) => Some(path.as_path()),
        KubeSource::InCluster => None,
    };
    let unavailable = |e: &dyn std::error::Error| {
        let mut message = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        BuildError::Unavailable {
            builder: "kaniko",
            message,
        }
    };
    let builder = KanikoBuilder::connect(
        kubeconfig,
        options.kube_context.as_deref(),
        options.kaniko.clone(),
    )
    .await
    .map_err(|e| unavailable(&e))?;
    builder
        .server_version()
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(ImageBuilder::Kaniko(builder))
}

/// `Ok` when `docker version` reaches a daemon; `Err` says why not.
async fn docker_daemon_answers(program: &Path) -> Result<(), String> {
    let probe = tokio::process::Command::new(program)
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(DOCKER_PROBE_TIMEOUT, probe).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            Err(format!(
                "the docker client is installed but no daemon answers ({})",
                first.trim()
            ))
        }
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", program.display())),
        Err(_) => Err(format!(
            "`docker version` did not answer within {}s",
            DOCKER_PROBE_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[Candidate]) -> Vec<String> {
        list.iter()
            .map(|c| match c {
                Candidate::Kaniko(_) => "kaniko".to_string(),
                Candidate::Local(b) => b.tool.as_str().to_string(),
                Candidate::Missing { builder, .. } => format!("-{builder}"),
            })
            .collect()
    }

    #[test]
    fn auto_tries_kubernetes_then_buildah_podman_docker() {
        let all = |tool: LocalTool| Some(PathBuf::from(format!("/bin/{tool}")));
        let kube = Ok(KubeSource::InCluster);
        assert_eq!(
            names(&candidates(BuilderChoice::Auto, &kube, &all)),
            ["kaniko", "buildah", "podman", "docker"]
        );
        let only_docker = |tool: LocalTool| (tool == LocalTool::Docker).then(|| "/d".into());
        let no_kube = Err("none".to_string());
        assert_eq!(
            names(&candidates(BuilderChoice::Auto, &no_kube, &only_docker)),
            ["-kaniko", "-buildah", "-podman", "docker"]
        );
        assert_eq!(
            names(&candidates(BuilderChoice::Podman, &kube, &only_docker)),
            ["-podman"]
        );
        assert_eq!(
            names(&candidates(BuilderChoice::Kaniko, &no_kube, &all)),
            ["-kaniko"]
        );
    }

    fn options(dir: &Path) -> SelectOptions {
        SelectOptions {
            token_path: dir.join("token"),
            ..SelectOptions::default()
        }
    }

    #[test]
    fn kube_source_follows_kubectls_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        assert!(kube_source(&opts).is_err());

        opts.service_host = Some("10.0.0.1".into());
        assert!(
            kube_source(&opts).is_err(),
            "a host without a token is not in-cluster"
        );
        std::fs::write(dir.path().join("token"), "t").unwrap();
        assert_eq!(kube_source(&opts), Ok(KubeSource::InCluster));

        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".kube")).unwrap();
        std::fs::write(home.join(".kube/config"), "").unwrap();
        opts.home = Some(home.clone());
        assert_eq!(
            kube_source(&opts),
            Ok(KubeSource::Kubeconfig(home.join(".kube/config")))
        );

        let env_file = dir.path().join("env-config");
        std::fs::write(&env_file, "").unwrap();
        opts.kubeconfig_env =
            Some(std::env::join_paths([dir.path().join("absent"), env_file.clone()]).unwrap());
        assert_eq!(kube_source(&opts), Ok(KubeSource::Kubeconfig(env_file)));

        opts.kubeconfig = Some("/flag/config".into());
        assert_eq!(
            kube_source(&opts),
            Ok(KubeSource::Kubeconfig("/flag/config".into()))
        );
    }

    #[test]
    fn find_program_wants_an_executable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("podman");
        std::fs::write(&plain, "").unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(find_program("podman", Some(&path)), None);
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("podman", Some(&path)), Some(plain));
        assert_eq!(find_program("buildah", Some(&path)), None);
        assert_eq!(find_program("podman", None), None);
    }

    #[tokio::test]
    async fn nothing_usable_lists_every_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        opts.path = Some(std::env::join_paths([dir.path()]).unwrap());
        let error = select_builder(BuilderChoice::Auto, &opts)
            .await
            .unwrap_err();
        let text = error.to_string();
        for needle in [
            "kaniko: no kubeconfig",
            "buildah: `buildah` is not on PATH",
            "podman:",
            "docker:",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
    }

    #[tokio::test]
    async fn an_unusable_kubeconfig_falls_through_to_a_local_builder() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let buildah = dir.path().join("buildah");
        std::fs::write(&buildah, "").unwrap();
        std::fs::set_permissions(&buildah, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut opts = options(dir.path());
        opts.kubeconfig = Some(dir.path().join("kubeconfig"));
        opts.path = Some(std::env::join_paths([dir.path()]).unwrap());
        let chosen = select_builder(BuilderChoice::Auto, &opts).await.unwrap();
        assert_eq!(chosen.name(), "buildah");
        let error = select_builder(BuilderChoice::Kaniko, &opts)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("cannot load the kubeconfig"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn docker_counts_only_when_its_daemon_answers() {
        let path = std::env::var_os("PATH");
        let Some(docker) = find_program("docker", path.as_deref()) else {
            return; // no docker client on this machine: nothing to probe
        };
        let daemon = std::process::Command::new(&docker)
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .is_ok_and(|o| o.status.success());
        let opts = SelectOptions {
            path,
            ..options(Path::new("/nonexistent"))
        };
        let chosen = select_builder(BuilderChoice::Docker, &opts).await;
        if daemon {
            assert_eq!(chosen.unwrap().name(), "docker");
        } else {
            let error = chosen.unwrap_err().to_string();
            assert!(
                error.contains("docker: the docker client is installed but no daemon answers"),
                "{error}"
            );
        }
    }
}
