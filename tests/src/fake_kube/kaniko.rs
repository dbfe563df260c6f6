//! What the Kaniko executor container does, done for real on the host: read its flags,
//! fetch the `tar://` context from the volume it names (a ConfigMap key or a persistent
//! volume's file), unpack it, build it with buildah (vfs storage, chroot isolation, private
//! storage folders), push every `--destination`, and report the digest through the
//! termination message when `--digest-file` is the termination message path. Everything
//! buildah prints becomes the container's log, live.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::logs::LogKey;
use super::store::Key;
use super::{Shared, lock};

/// What a container reads from its stdin: chunks until every attach closed it.
pub(crate) type Stdin = tokio::sync::mpsc::UnboundedReceiver<axum::body::Bytes>;

/// How the container ended.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub exit_code: i32,
    /// The termination message.
    pub message: Option<String>,
}

impl Outcome {
    pub fn failed(exit_code: i32) -> Self {
        Outcome {
            exit_code,
            message: None,
        }
    }
}

/// The executor flags the fake acts on or checks (others are accepted and ignored; the
/// cache flags are only checked, the fake keeps no layer cache).
#[derive(Debug, Default)]
struct Flags {
    context: Option<String>,
    dockerfile: Option<String>,
    destinations: Vec<String>,
    build_args: Vec<String>,
    target: Option<String>,
    labels: Vec<String>,
    insecure_registries: Vec<String>,
    insecure: bool,
    /// `--insecure-pull`: every base image over plain HTTP.
    insecure_pull: bool,
    digest_file: Option<String>,
    no_push: bool,
    cache: bool,
    cache_repo: Option<String>,
    no_push_cache: bool,
}

fn parse_flags(args: &[String]) -> Flags {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let boolean = matches!(
            name.as_str(),
            "--insecure"
                | "--skip-tls-verify"
                | "--insecure-pull"
                | "--skip-tls-verify-pull"
                | "--no-push"
                | "--no-push-cache"
                | "--cache"
                | "--reproducible"
                | "--single-snapshot"
                | "--use-new-run"
                | "--cleanup"
        );
        let value = match value {
            Some(v) => v,
            None if boolean => "true".to_string(),
            None => {
                i += 1;
                args.get(i).cloned().unwrap_or_default()
            }
        };
        match name.as_str() {
            "--context" | "-c" => f.context = Some(value),
            "--dockerfile" | "-f" => f.dockerfile = Some(value),
            "--destination" | "-d" => f.destinations.push(value),
            "--build-arg" => f.build_args.push(value),
            "--target" => f.target = Some(value),
            "--label" => f.labels.push(value),
            "--insecure-registry" | "--skip-tls-verify-registry" => {
                f.insecure_registries.push(value)
            }
            "--insecure" | "--skip-tls-verify" => f.insecure = value == "true",
            "--insecure-pull" | "--skip-tls-verify-pull" => f.insecure_pull = value == "true",
            "--digest-file" => f.digest_file = Some(value),
            "--no-push" => f.no_push = value == "true",
            "--cache" => f.cache = value == "true",
            "--cache-repo" => f.cache_repo = Some(value).filter(|v| !v.is_empty()),
            "--no-push-cache" => f.no_push_cache = value == "true",
            _ => {}
        }
        i += 1;
    }
    f
}

pub(crate) fn say(shared: &Shared, log: &LogKey, line: &str) {
    shared.logs.append(log, format!("{line}\n").as_bytes());
}

fn error(shared: &Shared, log: &LogKey, line: &str) -> Outcome {
    say(shared, log, &format!("ERROR {line}"));
    Outcome::failed(1)
}

/// Runs the Kaniko executor's work for `container` of `pod`.
pub(crate) async fn run(
    shared: &Shared,
    pod: &Value,
    container: &Value,
    log: &LogKey,
    stdin: Option<Stdin>,
) -> Outcome {
    let args: Vec<String> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let flags = parse_flags(&args);
    let Some(context) = flags.context.clone() else {
        return error(
            shared,
            log,
            "the fake kubelet runs Kaniko executors only: no --context among the container's args",
        );
    };
    if let Some(reason) = shared.faults().build_failure {
        return error(shared, log, &format!("error building image: {reason}"));
    }
    if flags.destinations.is_empty() && !flags.no_push {
        return error(
            shared,
            log,
            "you must provide --destination, or use --no-push",
        );
    }
    // Kaniko's cacheFlagsValid (cmd/executor/cmd/root.go, v1.28.3): checked before the
    // context is read; cobra prints the error with its `Error: ` prefix and exits 1.
    if flags.cache && flags.no_push && !flags.no_push_cache && flags.cache_repo.is_none() {
        say(
            shared,
            log,
            "Error: cache flags invalid: if using cache with --no-push, specify cache repo with --cache-repo",
        );
        return Outcome::failed(1);
    }
    let ns = log.0.clone();
    let work = shared.work_dir.join(format!(
        "{}-{}",
        ns,
        pod["metadata"]["name"].as_str().unwrap_or_default()
    ));
    let outcome = build(shared, pod, container, log, &flags, &context, &work, stdin).await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn build(
    shared: &Shared,
    pod: &Value,
    container: &Value,
    log: &LogKey,
    flags: &Flags,
    context: &str,
    work: &Path,
    stdin: Option<Stdin>,
) -> Outcome {
    let Some(path) = context.strip_prefix("tar://") else {
        return error(
            shared,
            log,
            &format!("the fake kubelet supports only tar:// contexts (got {context})"),
        );
    };
    let bytes = if path == "stdin" {
        let Some(mut stdin) = stdin else {
            return error(
                shared,
                log,
                "tar://stdin: the container has no stdin (set stdin: true)",
            );
        };
        say(shared, log, "INFO To simulate EOF and exit, press 'Ctrl+D'");
        let mut bytes = Vec::new();
        while let Some(chunk) = stdin.recv().await {
            bytes.extend_from_slice(&chunk);
        }
        bytes
    } else {
        match volume_file(shared, pod, container, &log.0, path) {
            Ok(b) => b,
            Err(e) => return error(shared, log, &e),
        }
    };
    let ctx = work.join("context");
    if let Err(e) = tokio::fs::create_dir_all(&ctx).await {
        return error(
            shared,
            log,
            &format!("cannot create {}: {e}", ctx.display()),
        );
    }
    let archive = work.join("context.tar.gz");
    if let Err(e) = tokio::fs::write(&archive, &bytes).await {
        return error(
            shared,
            log,
            &format!("cannot write {}: {e}", archive.display()),
        );
    }
    say(
        shared,
        log,
        &format!(
            "INFO Retrieving the build context from {path} ({} bytes)",
            bytes.len()
        ),
    );
    let mut untar = Command::new("tar");
    untar.arg("-xzf").arg(&archive).arg("-C").arg(&ctx);
    if run_logged(shared, log, untar).await != 0 {
        return error(
            shared,
            log,
            "cannot unpack the context: it is not a gzip-compressed tar",
        );
    }
    let dockerfile = flags
        .dockerfile
        .clone()
        .unwrap_or_else(|| "Dockerfile".to_string());
    let dockerfile_path = ctx.join(dockerfile.trim_start_matches('/'));
    let storage = work.join("storage");
    let local = format!("localhost/fake-kaniko/{}:build", log.1);
    let mut bud = buildah(&storage);
    // Kaniko's `--insecure-registry` covers the base images it pulls as well as its pushes
    // (pkg/image/remote/remote.go `RetrieveRemoteImage` names the registry insecure when
    // `opts.InsecureRegistries` holds it), `--insecure-pull` every pull: buildah gets the
    // same through a registries.conf of its own.
    let registries = work.join("registries.conf");
    let mut conf = String::new();
    for r in &flags.insecure_registries {
        conf.push_str(&format!(
            "[[registry]]\nlocation = \"{r}\"\ninsecure = true\n"
        ));
    }
    if std::fs::write(&registries, conf).is_ok() {
        bud.env("CONTAINERS_REGISTRIES_CONF", &registries);
    }
    if flags.insecure_pull {
        bud.arg("--tls-verify=false");
    }
    bud.args(["bud", "--isolation", "chroot", "-f"])
        .arg(&dockerfile_path)
        .args(["-t", &local]);
    for a in &flags.build_args {
        bud.arg(format!("--build-arg={a}"));
    }
    if let Some(t) = &flags.target {
        bud.arg(format!("--target={t}"));
    }
    for l in &flags.labels {
        bud.arg(format!("--label={l}"));
    }
    bud.arg(&ctx);
    say(shared, log, &format!("INFO Building {dockerfile}"));
    let code = run_logged(shared, log, bud).await;
    if code != 0 {
        say(
            shared,
            log,
            &format!("ERROR error building image: buildah exited with {code}"),
        );
        return Outcome::failed(code);
    }
    if flags.no_push {
        say(
            shared,
            log,
            "INFO Skipping push to container registry due to --no-push flag",
        );
        return Outcome::failed(0);
    }
    let authfile = docker_config(shared, pod, &log.0, work).await;
    let mut digest = None;
    for dest in &flags.destinations {
        let registry = dest.split('/').next().unwrap_or_default();
        let tls = !(flags.insecure || flags.insecure_registries.iter().any(|r| r == registry));
        let digest_file = work.join("digest");
        let mut push = buildah(&storage);
        push.arg("push")
            .arg(format!("--tls-verify={tls}"))
            .arg("--digestfile")
            .arg(&digest_file);
        if let Some(a) = &authfile {
            push.arg("--authfile").arg(a);
        }
        push.arg(&local).arg(format!("docker://{dest}"));
        say(shared, log, &format!("INFO Pushing image to {dest}"));
        let code = run_logged(shared, log, push).await;
        if code != 0 {
            say(
                shared,
                log,
                &format!("ERROR error pushing image: failed to push to destination {dest}"),
            );
            return Outcome::failed(1);
        }
        let d = tokio::fs::read_to_string(&digest_file)
            .await
            .unwrap_or_default()
            .trim()
            .to_string();
        say(
            shared,
            log,
            &format!(
                "INFO Pushed {}@{d}",
                dest.rsplit_once(':')
                    .filter(|(_, t)| !t.contains('/'))
                    .map_or(dest.as_str(), |(r, _)| r)
            ),
        );
        digest.get_or_insert(d);
    }
    let termination_path = container["terminationMessagePath"]
        .as_str()
        .unwrap_or("/dev/termination-log");
    let message = digest.filter(|_| flags.digest_file.as_deref() == Some(termination_path));
    Outcome {
        exit_code: 0,
        message,
    }
}

fn buildah(storage: &Path) -> Command {
    let mut c = Command::new("buildah");
    c.arg("--storage-driver")
        .arg("vfs")
        .arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("runroot"));
    c
}

/// Runs `cmd`, appending its stdout and stderr to the log line by line; its exit code
/// (127 when it cannot start, 137 when killed).
pub(crate) async fn run_logged(shared: &Shared, log: &LogKey, mut cmd: Command) -> i32 {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            say(
                shared,
                log,
                &format!("ERROR cannot start {:?}: {e}", cmd.as_std().get_program()),
            );
            return 127;
        }
    };
    let _group = ProcessGroup::of(&child);
    let out = child.stdout.take();
    let err = child.stderr.take();
    tokio::join!(pump(shared, log, out), pump(shared, log, err));
    match child.wait().await {
        Ok(status) => status.code().unwrap_or(137),
        Err(_) => 137,
    }
}

/// Kills a child's whole process group when dropped (a killed container kills everything
/// it started, not just its first process). Harmless once the group is gone.
#[derive(Debug)]
pub(crate) struct ProcessGroup(Option<nix::unistd::Pid>);

impl ProcessGroup {
    /// The group of `child`, which was spawned with `process_group(0)`.
    pub(crate) fn of(child: &tokio::process::Child) -> Self {
        ProcessGroup(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(nix::unistd::Pid::from_raw),
        )
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

pub(crate) async fn pump(shared: &Shared, log: &LogKey, stream: Option<impl AsyncRead + Unpin>) {
    let Some(stream) = stream else {
        return;
    };
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        say(shared, log, &line);
    }
}

/// The bytes of `path` as the container sees it through its volume mounts.
fn volume_file(
    shared: &Shared,
    pod: &Value,
    container: &Value,
    ns: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    let mount = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            let mp = m["mountPath"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('/');
            path.starts_with(&format!("{mp}/"))
        })
        .max_by_key(|m| m["mountPath"].as_str().unwrap_or_default().len())
        .ok_or_else(|| format!("no volume is mounted at {path}"))?;
    let mount_path = mount["mountPath"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/');
    let rel = path[mount_path.len() + 1..].to_string();
    let volume_name = mount["name"].as_str().unwrap_or_default();
    let volume = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == volume_name)
        .ok_or_else(|| format!("the pod has no volume {volume_name}"))?;
    if let Some(cm) = volume["configMap"]["name"].as_str() {
        let key = match volume["configMap"]["items"].as_array() {
            Some(items) => items
                .iter()
                .find(|i| i["path"] == rel.as_str())
                .and_then(|i| i["key"].as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    format!("{path}: no such file (ConfigMap {cm} projects no item to {rel})")
                })?,
            None => rel.clone(),
        };
        let obj = shared
            .read(|s| {
                s.get(&Key::new(
                    super::api::resource_named("configmaps").unwrap_or(&super::api::RESOURCES[1]),
                    ns,
                    cm,
                ))
                .cloned()
            })
            .ok_or_else(|| format!("configmap {cm} not found"))?;
        if let Some(b64) = obj["binaryData"][&key].as_str() {
            let bytes: k8s_openapi::ByteString =
                serde_json::from_value(Value::String(b64.to_string())).map_err(|e| {
                    format!("binaryData.{key} of ConfigMap {cm} is not base64: {e}")
                })?;
            return Ok(bytes.0);
        }
        if let Some(text) = obj["data"][&key].as_str() {
            return Ok(text.as_bytes().to_vec());
        }
        return Err(format!(
            "{path}: no such file (ConfigMap {cm} has no key {key})"
        ));
    }
    if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
        return lock(&shared.volumes)
            .get(&(ns.to_string(), claim.to_string()))
            .and_then(|files| files.get(&rel).cloned())
            .ok_or_else(|| format!("{path}: no such file in volume {claim}"));
    }
    Err(format!(
        "volume {volume_name} is neither a ConfigMap nor a persistent volume claim"
    ))
}

/// The registry credentials mounted from a `kubernetes.io/dockerconfigjson` Secret, written
/// to a file for `buildah --authfile`.
async fn docker_config(shared: &Shared, pod: &Value, ns: &str, work: &Path) -> Option<PathBuf> {
    let secret_name = pod["spec"]["volumes"]
        .as_array()?
        .iter()
        .find_map(|v| v["secret"]["secretName"].as_str())?
        .to_string();
    let rt = super::api::resource_named("secrets")?;
    let secret = shared.read(|s| s.get(&Key::new(rt, ns, &secret_name)).cloned())?;
    let b64 = secret["data"][".dockerconfigjson"].as_str()?;
    let bytes: k8s_openapi::ByteString =
        serde_json::from_value(Value::String(b64.to_string())).ok()?;
    let path = work.join("auth.json");
    tokio::fs::write(&path, bytes.0).await.ok()?;
    Some(path)
}
