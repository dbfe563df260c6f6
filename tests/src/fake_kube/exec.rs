//! `pods/{name}/exec` over WebSocket, as kube-rs's `Api::exec` speaks it (the channel
//! protocol of attach: `v5.channel.k8s.io` / `v4`, as `FakeKubeOptions::stream_protocols`
//! offers them; 0 stdin, 1 stdout, 2 stderr, 3 the exit `Status`, 255 close-channel in v5
//! only: on v4 it means nothing, as on a real v4 server).
//!
//! The command runs on this host inside the pod's *sandbox*, made at the pod's first exec:
//! a process in new PID and mount namespaces (`unshare`, needs root) whose root folder
//! `<work>/<ns>-<pod>-sandbox/root` holds bind mounts of the host's `/usr`, `/bin`, `/lib*`,
//! `/etc`, `/dev`, a `/proc` of its own, a fresh `/tmp`, and one host folder per volume
//! mount of the container at its `mountPath` (`/__w`, `/__t`, ...), which keep their files
//! from exec to exec. Every exec enters those namespaces (`nsenter`) and `chroot`s into the
//! root, so paths like `/__w` mean inside the exec what they mean in a real container, and
//! nothing is rewritten; signals start at their default disposition (`env
//! --default-signal`), as a container runtime starts them. Processes of every exec share the PID namespace (`kill` of a pid
//! another exec wrote works); they all end when the pod is deleted or ends (the sandbox's
//! first process dies, and with it the namespace). As with a kubelet, a session ends
//! only when the command has exited and every holder of its stdout and stderr has closed
//! them (kubernetes/kubernetes#44371: a background process keeps an exec open).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::api::ApiError;
use super::attach::upgrade_channel;
use super::kubelet::rt;
use super::routes::{error_response, record};
use super::store::Key;
use super::{Shared, lock};

/// A pod's sandbox: the `unshare` process holding its namespaces (killed on drop, which
/// ends every process of the pod) and the root folder.
#[derive(Debug)]
pub(crate) struct Sandbox {
    holder: std::process::Child,
    root: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}/exec");
    record(&shared, &method, &path, &query, &headers, None);
    match prepare(&shared, &ns, &name, &query) {
        Err(e) => error_response(&e),
        Ok(plan) => upgrade_channel(
            shared.options.stream_protocols.clone(),
            ws,
            "exec",
            move |socket, v5| session(socket, plan, v5),
        ),
    }
}

/// What an accepted exec runs.
struct Plan {
    command: std::process::Command,
    stdin: bool,
    /// The `stall_execs` fault: never run, never answer.
    stall: bool,
}

fn prepare(
    shared: &Shared,
    ns: &str,
    name: &str,
    query: &[(String, String)],
) -> Result<Plan, ApiError> {
    let q = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    if lock(&shared.faults).take_api_error("GET", &format!("/namespaces/{ns}/pods/{name}/exec")) {
        return Err(ApiError::internal(format!(
            "injected fault for exec in {ns}/{name}"
        )));
    }
    if lock(&shared.faults).denied("create", "pods/exec") {
        return Err(ApiError::rbac("create", "pods/exec", "", Some(ns)));
    }
    let argv: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if argv.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least 1 command".to_string(),
        ));
    }
    let joined = argv.join(" ");
    let stall = lock(&shared.faults)
        .stall_execs
        .iter()
        .any(|t| joined.contains(t.as_str()));
    let key = Key::new(rt("pods"), ns, name);
    let pod = shared
        .read(|s| s.get(&key).cloned())
        .ok_or_else(|| ApiError::not_found(rt("pods"), name))?;
    let container = super::logs::choose_container(&pod, q("container"), name)?;
    let runtime = lock(&shared.runtimes).get(&key).cloned();
    if let Some(sandbox) = runtime {
        // A pod of the container manager: any running container, sidecars included,
        // whatever the pod's phase (a sidecar runs while the pod is still Pending).
        let command = sandbox.exec_command(&container, &argv).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to upgrade connection: container not found (\"{container}\")"
            ))
        })?;
        return Ok(Plan {
            command,
            stdin: q("stdin") == Some("true"),
            stall,
        });
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase != "Running" {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found (pod {name} is {phase})"
        )));
    }
    let spec = pod["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == container.as_str()).cloned())
        .unwrap_or_default();
    let holder_pid = sandbox(shared, &key, &pod, &spec).map_err(ApiError::internal)?;
    let (holder_pid, root) = holder_pid;
    let mut command = std::process::Command::new("nsenter");
    command
        .arg(format!("--mount=/proc/{holder_pid}/ns/mnt"))
        .arg(format!("--pid=/proc/{holder_pid}/ns/pid_for_children"))
        .arg("--")
        .arg("chroot")
        .arg(&root)
        // A container's processes start with every signal at its default disposition,
        // whatever this test process ignores (e.g. SIGINT under `timeout`).
        .arg("env")
        .arg("--default-signal")
        .arg("sh")
        .arg("-c")
        .arg("cd \"$1\" 2>/dev/null || cd /; shift; exec \"$@\"")
        .arg("exec")
        .arg(spec["workingDir"].as_str().unwrap_or("/"))
        .args(&argv)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOSTNAME", name)
        .env("HOME", "/root");
    for e in spec["env"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (e["name"].as_str(), e["value"].as_str()) {
            command.env(k, v);
        }
    }
    Ok(Plan {
        command,
        stdin: q("stdin") == Some("true"),
        stall,
    })
}

/// The pod's sandbox, made on first use: (pid of the namespace holder, root folder).
fn sandbox(
    shared: &Shared,
    key: &Key,
    pod: &Value,
    container: &Value,
) -> Result<(u32, PathBuf), String> {
    let mut sandboxes = lock(&shared.sandboxes);
    if let Some(s) = sandboxes.get(key) {
        return Ok((s.holder.id(), s.root.clone()));
    }
    let _ = pod;
    let base = shared
        .work_dir
        .join(format!("{}-{}-sandbox", key.namespace, key.name));
    let root = base.join("root");
    let mut script = String::from(
        "set -e\n\
         r=\"$1\"\n\
         mkdir -p \"$r\"\n\
         mount -t tmpfs -o size=64m sandbox-root \"$r\"\n\
         for d in bin sbin lib lib32 lib64 libx32 usr etc dev; do\n\
           if [ -L \"/$d\" ]; then ln -s \"$(readlink \"/$d\")\" \"$r/$d\";\n\
           elif [ -d \"/$d\" ]; then mkdir -p \"$r/$d\"; mount --rbind \"/$d\" \"$r/$d\"; fi\n\
         done\n\
         mkdir -p \"$r/proc\" \"$r/tmp\" \"$r/root\"\n\
         mount -t proc proc \"$r/proc\"\n",
    );
    for (i, vm) in container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(path) = vm["mountPath"].as_str().filter(|p| p.starts_with('/')) else {
            continue;
        };
        let host = base.join(format!("volume-{i}"));
        std::fs::create_dir_all(&host)
            .map_err(|e| format!("cannot create {}: {e}", host.display()))?;
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        script.push_str(&format!(
            "mkdir -p \"$r\"{p}\nmount --bind {h} \"$r\"{p}\n",
            p = quote(path),
            h = quote(&host.to_string_lossy()),
        ));
    }
    let ready = base.join("ready");
    script.push_str(&format!(
        "touch '{}'\nexec sleep 2147483647\n",
        ready.to_string_lossy().replace('\'', r"'\''")
    ));
    let holder = std::process::Command::new("unshare")
        .args([
            "--kill-child",
            "--pid",
            "--fork",
            "--mount",
            "--propagation",
            "private",
        ])
        .arg("sh")
        .arg("-c")
        .arg(&script)
        .arg("sandbox")
        .arg(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the pod sandbox (unshare, needs root): {e}"))?;
    let mut sandbox = Sandbox { holder, root };
    for _ in 0..500 {
        if ready.exists() {
            let pid = sandbox.holder.id();
            let root = sandbox.root.clone();
            sandboxes.insert(key.clone(), sandbox);
            return Ok((pid, root));
        }
        if let Ok(Some(status)) = sandbox.holder.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = sandbox.holder.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(format!("the pod sandbox failed ({status}): {err}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err("the pod sandbox did not come up in 5 s".to_string())
}

async fn session(mut socket: WebSocket, plan: Plan, v5: bool) {
    if plan.stall {
        // Read (and drop) what the client sends until it goes away; answer nothing.
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
        return;
    }
    let mut command = tokio::process::Command::from(plan.command);
    command
        .stdin(if plan.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let status = failure(&format!("cannot start the command: {e}"), 127);
            send_status(&mut socket, &status).await;
            return;
        }
    };
    // Stdin through a task of its own, so a full pipe never stalls the socket.
    let (stdin_tx, mut stdin_rx) = tokio::sync::mpsc::unbounded_channel::<Option<Vec<u8>>>();
    if let Some(mut input) = child.stdin.take() {
        tokio::spawn(async move {
            while let Some(Some(chunk)) = stdin_rx.recv().await {
                if input.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = input.shutdown().await;
        });
    }
    let mut stdin_tx = Some(stdin_tx);
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    let mut exited: Option<std::process::ExitStatus> = None;
    // As a kubelet does, the session ends when the command has exited *and* every holder
    // of its stdout and stderr has closed them (a background process keeps it open).
    loop {
        if exited.is_some() && out.is_none() && err.is_none() {
            break;
        }
        tokio::select! {
            n = read(&mut out, &mut out_buf) => {
                if !forward(&mut socket, 1, &out_buf, n, &mut out).await { return; }
            }
            n = read(&mut err, &mut err_buf) => {
                if !forward(&mut socket, 2, &err_buf, n, &mut err).await { return; }
            }
            status = child.wait(), if exited.is_none() => {
                exited = Some(status.unwrap_or_default());
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => match b.first() {
                    Some(0) => {
                        if let Some(tx) = &stdin_tx {
                            let _ = tx.send(Some(b[1..].to_vec()));
                        }
                    }
                    Some(255) if v5 && b.get(1) == Some(&0) => {
                        if let Some(tx) = stdin_tx.take() {
                            let _ = tx.send(None);
                        }
                    }
                    _ => {}
                },
                // The client went away: the process goes on, as in a real container.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let code = exited.and_then(|s| s.code()).unwrap_or(137);
    let status = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        failure(
            &format!("command terminated with non-zero exit code: exit status {code}"),
            code,
        )
    };
    send_status(&mut socket, &status).await;
}

fn failure(message: &str, code: i32) -> Value {
    json!({
        "metadata": {}, "status": "Failure", "message": message,
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

async fn send_status(socket: &mut WebSocket, status: &Value) {
    let mut frame = vec![3u8];
    frame.extend_from_slice(status.to_string().as_bytes());
    let _ = socket.send(Message::Binary(frame.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn read<R: tokio::io::AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> usize {
    match pipe {
        Some(p) => p.read(buf).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

/// Sends `n` bytes of `buf` on `channel`; at end-of-file closes the pipe. False when the
/// socket is gone.
async fn forward<R>(
    socket: &mut WebSocket,
    channel: u8,
    buf: &[u8],
    n: usize,
    pipe: &mut Option<R>,
) -> bool {
    if n == 0 {
        *pipe = None;
        return true;
    }
    let mut frame = Vec::with_capacity(n + 1);
    frame.push(channel);
    frame.extend_from_slice(&buf[..n]);
    socket.send(Message::Binary(frame.into())).await.is_ok()
}

/// Whether exec can run here: the sandbox needs root, `unshare`, `nsenter` and `chroot`.
/// Says so on stderr when it cannot, for the test that skips.
pub fn sandbox_available() -> bool {
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "[ \"$(id -u)\" = 0 ] && command -v unshare && command -v nsenter && command -v chroot",
        )
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipped: the fake kubelet's exec sandbox needs root, unshare, nsenter and chroot"
        );
    }
    ok
}
