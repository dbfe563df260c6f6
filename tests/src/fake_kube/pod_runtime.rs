//! The container runtime of the fake kubelet for pods with init containers, sidecars,
//! several containers, loopback-registry images, `hostAliases` or env from Secrets (see
//! `containers`): the pod *sandbox* and its containers as real processes on this host.
//!
//! - The sandbox (the "pause" container) is a process in new network and UTS namespaces
//!   (`unshare --net --uts`): loopback up, the pod IP on `lo`, the hostname the pod's name.
//!   Every container and every exec of the pod joins them, so a sidecar listening on
//!   `localhost:6379` is reachable from an exec in `steps`, as in a real pod.
//! - Each container instance gets new PID and mount namespaces (`unshare --pid --fork
//!   --mount`) and its own root: a copy of the pulled image's root folder, or (for an image
//!   not on a loopback registry) bind mounts of the host's `/usr`, `/bin`, `/lib*`, `/etc`
//!   on a tmpfs, as the exec sandbox of the other pods; then `/proc`, `/dev`, the pod's
//!   volumes at their `mountPath`s and the kubelet-managed `/etc/hosts` bind-mounted in.
//!   Its command is PID 1 of its PID namespace (so, as in a container, a SIGTERM it has no
//!   handler for does nothing) and starts with every signal at its default disposition.
//! - An exec enters the container's namespaces and chroots into its root (`nsenter`, then
//!   `unshare --root --wd`), with the container's environment.
//! - `tcpSocket` and `httpGet` probes connect from a thread that joined the pod's network
//!   namespace (`setns`), to the pod IP, as the kubelet probes the pod IP.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use super::lock;

/// What a container is rooted on.
#[derive(Debug, Clone)]
pub(crate) enum RootKind {
    /// The host's system folders (an image not on a loopback registry).
    Host,
    /// A copy of this unpacked image root.
    Image(PathBuf),
}

/// One container instance to start.
#[derive(Debug)]
pub(crate) struct Start {
    pub name: String,
    pub instance: u32,
    pub root: RootKind,
    /// Host folder → path in the container.
    pub mounts: Vec<(PathBuf, String)>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
}

/// A running container instance, for execs and probes.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    /// The `unshare` process holding the instance's namespaces (its child is PID 1).
    pub pid: u32,
    pub root: PathBuf,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
}

/// A pod's sandbox: the process holding its network and UTS namespaces (killed on drop),
/// and its running containers.
#[derive(Debug)]
pub(crate) struct PodSandbox {
    holder: std::process::Child,
    pub dir: PathBuf,
    pub ip: String,
    /// The kubelet-managed hosts file every container mounts at `/etc/hosts`.
    pub hosts: PathBuf,
    running: Mutex<HashMap<String, Instance>>,
}

impl Drop for PodSandbox {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

const NSENTER: &str = "/usr/bin/nsenter";
const UNSHARE: &str = "/usr/bin/unshare";
const ENV: &str = "/usr/bin/env";

/// The default `PATH` of a container whose image sets none (containerd's default spec).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl PodSandbox {
    /// Starts the sandbox of a pod in `dir` (made here), with hostname `hostname`, pod IP
    /// `ip` and the hosts file content `hosts`.
    pub fn create(dir: &Path, hostname: &str, ip: &str, hosts: &str) -> Result<PodSandbox, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let hosts_file = dir.join("hosts");
        std::fs::write(&hosts_file, hosts)
            .map_err(|e| format!("cannot write {}: {e}", hosts_file.display()))?;
        let ready = dir.join("sandbox-ready");
        let script = format!(
            "set -e\n\
             /usr/sbin/ip link set lo up\n\
             /usr/sbin/ip addr add {ip}/32 dev lo\n\
             echo {host} > /proc/sys/kernel/hostname\n\
             : > {ready}\n\
             exec sleep 2147483647\n",
            ip = quote(ip),
            host = quote(hostname),
            ready = quote(&ready.to_string_lossy()),
        );
        let mut holder = std::process::Command::new(UNSHARE)
            .args(["--net", "--uts", "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the pod sandbox (unshare, needs root): {e}"))?;
        for _ in 0..500 {
            if ready.exists() {
                return Ok(PodSandbox {
                    holder,
                    dir: dir.to_path_buf(),
                    ip: ip.to_string(),
                    hosts: hosts_file,
                    running: Mutex::default(),
                });
            }
            if let Ok(Some(status)) = holder.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = holder.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!("the pod sandbox failed ({status}): {err}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = holder.kill();
        let _ = holder.wait();
        Err("the pod sandbox did not come up in 5 s".to_string())
    }

    fn ns(&self, kind: &str) -> String {
        format!("/proc/{}/ns/{kind}", self.holder.id())
    }

    /// Starts a container instance: its namespaces, its root, then its command as PID 1.
    /// Returns once the root is set up (as a runtime reports a container running only once
    /// it is created); the returned process (the namespace holder) exits with the command's
    /// status.
    pub async fn start(&self, s: &Start) -> Result<(tokio::process::Child, Instance), String> {
        let cdir = self.dir.join(format!("c-{}-{}", s.name, s.instance));
        let _ = std::fs::remove_dir_all(&cdir);
        let root = cdir.join("root");
        let ready = cdir.join("ready");
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let kind = match &s.root {
            RootKind::Host => "host",
            RootKind::Image(rootfs) => {
                let out = std::process::Command::new("cp")
                    .arg("-a")
                    .arg(format!("{}/.", rootfs.display()))
                    .arg(&root)
                    .output()
                    .map_err(|e| format!("cannot copy the image root: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "cannot copy the image root: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                "image"
            }
        };
        let working_dir = if s.working_dir.is_empty() {
            "/".to_string()
        } else {
            s.working_dir.clone()
        };
        let mut command = tokio::process::Command::new(NSENTER);
        command
            .arg(format!("--net={}", self.ns("net")))
            .arg(format!("--uts={}", self.ns("uts")))
            .arg("--")
            .arg(UNSHARE)
            .args([
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--propagation",
                "private",
            ])
            .arg("/bin/sh")
            .arg("-c")
            .arg(CONTAINER_SETUP)
            .arg("container")
            .arg(&root)
            .arg(&self.hosts)
            .arg(&working_dir)
            .arg(kind)
            .arg(&ready)
            .arg(s.mounts.len().to_string());
        for (host, path) in &s.mounts {
            command.arg(host).arg(path);
        }
        command
            .args(&s.argv)
            .env_clear()
            .envs(s.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the container: {e}"))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the container's setup failed ({status})"));
            }
            if tokio::time::Instant::now() > deadline {
                return Err("the container's root was not set up in 10 s".to_string());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let instance = Instance {
            pid: child.id().unwrap_or_default(),
            root,
            env: s.env.clone(),
            working_dir,
        };
        lock(&self.running).insert(s.name.clone(), instance.clone());
        Ok((child, instance))
    }

    /// Forgets a container's running instance (it ended).
    pub fn stopped(&self, name: &str, pid: u32) {
        let mut running = lock(&self.running);
        if running.get(name).is_some_and(|i| i.pid == pid) {
            running.remove(name);
        }
    }

    /// The running instance of a container, if any.
    pub fn running(&self, name: &str) -> Option<Instance> {
        lock(&self.running).get(name).cloned()
    }

    /// The command that runs `argv` inside a running container, with its environment, root
    /// and working folder, in the pod's network namespace.
    pub fn exec_command(&self, container: &str, argv: &[String]) -> Option<std::process::Command> {
        let instance = self.running(container)?;
        let mut command = std::process::Command::new(NSENTER);
        command
            .arg(format!("--mount=/proc/{}/ns/mnt", instance.pid))
            .arg(format!("--pid=/proc/{}/ns/pid_for_children", instance.pid))
            .arg(format!("--net={}", self.ns("net")))
            .arg(format!("--uts={}", self.ns("uts")))
            .arg("--")
            .arg(ENV)
            .arg("--default-signal")
            .arg(UNSHARE)
            .arg(format!("--root={}", instance.root.display()))
            .arg(format!("--wd={}", instance.working_dir))
            .arg("--")
            .args(argv)
            .env_clear()
            .envs(instance.env.iter().map(|(k, v)| (k, v)));
        Some(command)
    }

    /// Runs `probe` on a fresh thread that joined the pod's network namespace.
    async fn in_netns<T: Send + 'static>(
        &self,
        probe: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let netns = self.ns("net");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let joined = std::fs::File::open(&netns)
                .map_err(|e| format!("cannot open {netns}: {e}"))
                .and_then(|f| {
                    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| format!("cannot join the pod's network: {e}"))
                });
            let _ = tx.send(joined.map(|()| probe()));
        });
        rx.await
            .map_err(|_| "the probe thread died".to_string())
            .and_then(|r| r)
    }

    /// A `tcpSocket` probe: `Ok` when `host:port` accepts a connection within `timeout`;
    /// else Go's dial error text, as the kubelet's prober reports it.
    pub async fn tcp_probe(&self, host: &str, port: u16, timeout: Duration) -> Result<(), String> {
        let target = format!("{host}:{port}");
        self.in_netns(move || connect(&target, timeout).map(drop))
            .await
            .and_then(|r| r)
    }

    /// An `httpGet` probe: `Ok` on a status from 200 to 399 within `timeout`.
    pub async fn http_probe(
        &self,
        host: &str,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let target = format!("{host}:{port}");
        let url = format!("http://{target}{path}");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: kube-probe/1.31\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        self.in_netns(move || {
            use std::io::{Read, Write};
            let mut stream = connect(&target, timeout).map_err(|e| format!("Get \"{url}\": {e}"))?;
            let _ = stream.set_read_timeout(Some(timeout));
            let _ = stream.set_write_timeout(Some(timeout));
            stream
                .write_all(request.as_bytes())
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            let mut head = [0u8; 64];
            let n = stream.read(&mut head).map_err(|e| {
                format!(
                    "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers): {e}"
                )
            })?;
            let line = String::from_utf8_lossy(&head[..n]);
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("Get \"{url}\": malformed HTTP response {line:?}"))?;
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        })
        .await
        .and_then(|r| r)
    }
}

fn connect(target: &str, timeout: Duration) -> Result<std::net::TcpStream, String> {
    let addr: std::net::SocketAddr = target
        .parse()
        .map_err(|e| format!("dial tcp {target}: {e}"))?;
    std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial tcp {target}: connect: connection refused")
        }
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("dial tcp {target}: i/o timeout")
        }
        _ => format!("dial tcp {target}: {e}"),
    })
}

/// Sets up a container's root inside its new mount namespace, then runs its command as
/// PID 1 (`$1` root, `$2` hosts file, `$3` working folder, `$4` `host` or `image`, `$5` the
/// file made once all is mounted, `$6` the number of volume mounts, then that many
/// host-folder/path pairs, then the command).
/// Host tools are named by absolute path: `PATH` is the container's.
const CONTAINER_SETUP: &str = r#"set -e
r="$1"; hosts="$2"; wd="$3"; kind="$4"; ready="$5"; n="$6"; shift 6
if [ "$kind" = host ]; then
  /bin/mount -t tmpfs -o size=64m container-root "$r"
  for d in bin sbin lib lib32 lib64 libx32 usr etc; do
    if [ -L "/$d" ]; then /bin/ln -s "$(/bin/readlink "/$d")" "$r/$d"
    elif [ -d "/$d" ]; then /bin/mkdir -p "$r/$d"; /bin/mount --rbind "/$d" "$r/$d"; fi
  done
  /bin/mkdir -p "$r/tmp" "$r/root"
fi
/bin/mkdir -p "$r/proc" "$r/dev" "$r/etc"
/bin/mount -t proc proc "$r/proc"
/bin/mount --rbind /dev "$r/dev"
if [ ! -e "$r/etc/hosts" ]; then : > "$r/etc/hosts"; fi
/bin/mount --bind "$hosts" "$r/etc/hosts"
while [ "$n" -gt 0 ]; do
  /bin/mkdir -p "$r$2"
  /bin/mount --bind "$1" "$r$2"
  shift 2
  n=$((n - 1))
done
/bin/mkdir -p "$r$wd"
: > "$ready"
exec /usr/bin/env --default-signal /usr/bin/unshare --root="$r" --wd="$wd" -- "$@"
"#;

/// The pid of the first child of `parent` (the container's PID 1 seen from the host).
pub(crate) fn child_of(parent: u32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default();
    if let Some(pid) = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
    {
        return Some(pid);
    }
    // Kernels without CONFIG_PROC_CHILDREN: scan for a process whose parent it is.
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            return Some(pid);
        }
    }
    None
}
