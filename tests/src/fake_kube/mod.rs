//! A loopback fake of the Kubernetes API server with a simulated scheduler, kubelet and Job
//! controller, for the tests of the Kaniko builder. It serves what kube-rs calls (discovery,
//! core v1, batch/v1 Jobs, SelfSubjectAccessReviews, watches, Events, `pods/log`,
//! `pods/attach`) over plain HTTP on `127.0.0.1:<port>`, with the real API's paths, JSON and
//! status codes, and runs the Kaniko executor's work for real: the Job's pod takes its
//! `tar://` context from the ConfigMap or persistent volume it mounts (or from stdin over an
//! attach), builds it with buildah and pushes every `--destination` to a real registry. Pods
//! that run a shell (the context loader) run it on the host with their volumes mapped.
//! A CI job's pod (init containers, native sidecars, several containers, images on a
//! loopback registry, `hostAliases`, env from Secrets) is run by the container manager
//! (`containers`, `pod_runtime`, `images`): one network namespace per pod, a root per
//! container from its pulled image, sidecars started in order behind their startup probes,
//! crash loops, per-container logs and exec into any running container, ephemeral
//! containers added through `pods/ephemeralcontainers` (`ephemeral`) run once in the
//! running pod, with the kubelet's reasons, messages and events; the API server validates
//! those fields with its texts (`pod_validation`) and applies strategic merge and JSON
//! patches (`patches`).
//! apps/v1 Deployments, ReplicaSets, StatefulSets, DaemonSets and ControllerRevisions are
//! served with their defaults, validation and controllers (`workloads`); their pods run a
//! simulated lifecycle decided by the real loopback registry (present, absent, or an image
//! labelled [`CRASH_LABEL`] that crash-loops) instead of the container manager.
//!
//! Faults ([`Faults`]) are set in [`FakeKubeOptions`] or changed while it runs with
//! [`FakeKube::update_faults`] and [`FakeKube::fail_next`].
//!
//! The server runs on its own thread and runtime, so [`FakeKube`] works from plain `#[test]`s
//! and from `#[tokio::test]`s alike; it stops when the value drops.

mod admission;
mod api;
mod attach;
mod containers;
mod ephemeral;
mod events;
mod exec;
mod faults;
mod images;
mod jobs;
mod kaniko;
mod kubelet;
mod logs;
mod patches;
mod pod_runtime;
mod pod_validation;
mod routes;
mod shell;
mod store;
mod validate;
mod verbs;
mod watch;
mod workloads;

use crate::loopback::LoopbackServer;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use exec::sandbox_available;
pub use faults::{ApiFault, DenyRule, Faults};
pub use validate::{kubernetes_validate, validate_manifests};
pub use workloads::CRASH_LABEL;

use logs::Logs;
use store::{Key, Store};

/// How the fake cluster behaves.
#[derive(Debug, Clone)]
pub struct FakeKubeOptions {
    /// Faults in force from the start (change them later with [`FakeKube::update_faults`]).
    pub faults: Faults,
    /// How long a deleted namespace stays `Terminating` (unless
    /// [`Faults::namespace_deletion_delay`] says otherwise).
    pub namespace_deletion_delay: Duration,
    /// The pause between the kubelet's steps (scheduled, container creating, running), so
    /// watchers see each phase.
    pub kubelet_step: Duration,
    /// `gitVersion` served at `/version`.
    pub version: String,
    /// The WebSocket subprotocols `pods/attach` and `pods/exec` accept, in the server's
    /// order of preference (default [`STREAM_PROTOCOLS`]: `v5.channel.k8s.io`, then
    /// `v4.channel.k8s.io`). `vec![V4.into()]` is an API server of Kubernetes 1.29 or
    /// older (or one with the v5 gate off): there a stdin close frame (channel 255) means
    /// nothing, so a client can end stdin only by closing the whole socket, which loses
    /// the command's output and exit status.
    pub stream_protocols: Vec<String>,
    /// The first crash-loop (and image pull) back-off of the kubelet: 10 s, as in the
    /// kubelet, doubling up to 5 min. A test may shorten it (the `CrashLoopBackOff` message
    /// then names the shorter back-off).
    pub crash_loop_back_off: Duration,
    /// The first image pull back-off of the simulated kubelet that runs the pods of
    /// Deployments, StatefulSets and DaemonSets (`ImagePullBackOff` between pulls): 10 s,
    /// as in the kubelet, doubling up to 5 min. A test may shorten it.
    pub image_pull_back_off: Duration,
}

/// Kubernetes' `StreamProtocolV5Name` (adds the close signal, channel 255).
pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
/// Kubernetes' `StreamProtocolV4Name` (exit codes as a `Status`; no close signal).
pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
/// What a current API server offers, preferred first.
pub const STREAM_PROTOCOLS: [&str; 2] = [V5_CHANNEL, V4_CHANNEL];

impl Default for FakeKubeOptions {
    fn default() -> Self {
        FakeKubeOptions {
            faults: Faults::default(),
            namespace_deletion_delay: Duration::from_millis(200),
            kubelet_step: Duration::from_millis(50),
            version: "v1.31.0".to_string(),
            stream_protocols: STREAM_PROTOCOLS.iter().map(|p| p.to_string()).collect(),
            crash_loop_back_off: Duration::from_secs(10),
            image_pull_back_off: Duration::from_secs(10),
        }
    }
}

/// One request the fake received, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: String,
    /// The path without the query, e.g. `/api/v1/namespaces/ns/configmaps`.
    pub path: String,
    /// The decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// The `Content-Type` header, when sent.
    pub content_type: Option<String>,
    /// The body as JSON (YAML bodies are converted); `None` when empty or unreadable.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// The first value of query parameter `key`.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The files of one persistent volume: path in the volume → bytes.
type VolumeFiles = BTreeMap<String, Vec<u8>>;

/// State shared by the HTTP handlers, the kubelet and the test's handle.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Mutex<Store>,
    changes: tokio::sync::watch::Sender<u64>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
    manifests: Mutex<Vec<Value>>,
    logs: Logs,
    /// Cancels the kubelet's work on a pod (deletion, deadline, namespace removal).
    pods: Mutex<HashMap<Key, CancellationToken>>,
    /// The stdin of running containers that have `stdin: true`, until an attach takes it.
    stdin: Mutex<HashMap<logs::LogKey, tokio::sync::mpsc::UnboundedSender<axum::body::Bytes>>>,
    /// Files written to persistent volumes: `(namespace, claim)` → path in the volume → bytes.
    volumes: Mutex<HashMap<(String, String), VolumeFiles>>,
    /// The sandboxes `pods/exec` runs commands in, by pod (see the `exec` module).
    sandboxes: Mutex<HashMap<Key, exec::Sandbox>>,
    /// The sandboxes of pods run by the container manager (`containers`), by pod.
    runtimes: Mutex<HashMap<Key, Arc<pod_runtime::PodSandbox>>>,
    /// Images pulled from loopback registries, by reference (`IfNotPresent` reuses them).
    images: Mutex<HashMap<String, images::Image>>,
    /// The apps/v1 controllers' state and the simulated kubelet's images (`workloads`).
    workloads: workloads::Workloads,
    options: FakeKubeOptions,
    work_dir: PathBuf,
    /// Itself, for tasks started from code that holds only a reference.
    me: std::sync::Weak<Shared>,
    addr: SocketAddr,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Runs `f` on the store and wakes every watch.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let (result, rv) = {
            let mut store = lock(&self.store);
            let r = f(&mut store);
            (r, store.resource_version())
        };
        self.changes.send_replace(rv);
        result
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&lock(&self.store))
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub(crate) fn namespace_deletion_delay(&self) -> Duration {
        lock(&self.faults)
            .namespace_deletion_delay
            .unwrap_or(self.options.namespace_deletion_delay)
    }
}

/// The running fake cluster. Dropping it stops the server and kills running builds.
#[derive(Debug)]
pub struct FakeKube {
    shared: Arc<Shared>,
    _server: LoopbackServer,
    _work: tempfile::TempDir,
}

impl FakeKube {
    /// Starts the server on a free loopback port, with the namespaces `default` and
    /// `kube-system` in place.
    pub fn start(options: FakeKubeOptions) -> FakeKube {
        let work = tempfile::tempdir().expect("a work folder for the fake kubelet");
        let listener = LoopbackServer::bind("fake-kube");
        let addr = listener.addr();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64)
            ^ u64::from(addr.port());
        let shared = Arc::new_cyclic(|me| Shared {
            store: Mutex::new(Store::new(seed)),
            changes: tokio::sync::watch::channel(0).0,
            faults: Mutex::new(options.faults.clone()),
            requests: Mutex::default(),
            manifests: Mutex::default(),
            logs: Logs::default(),
            pods: Mutex::default(),
            stdin: Mutex::default(),
            volumes: Mutex::default(),
            sandboxes: Mutex::default(),
            runtimes: Mutex::default(),
            images: Mutex::default(),
            workloads: workloads::Workloads::default(),
            options,
            work_dir: work.path().to_path_buf(),
            addr,
            me: me.clone(),
        });
        routes::seed_namespaces(&shared);
        let server = listener.serve(routes::router(Arc::clone(&shared)));
        FakeKube {
            shared,
            _server: server,
            _work: work,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Writes `dir/kubeconfig`: one cluster at [`Self::url`], a token user, current
    /// context set (namespace `default`). Returns its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: fake-kube\n    cluster:\n      server: {}\nusers:\n  - name: fake-user\n    user:\n      token: fake-token\ncontexts:\n  - name: fake-kube\n    context:\n      cluster: fake-kube\n      user: fake-user\n      namespace: default\ncurrent-context: fake-kube\npreferences: {{}}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    /// A kube-rs client for this server. Call it inside a tokio runtime (kube's client
    /// spawns its buffer task there).
    pub fn client(&self) -> kube::Client {
        crate::install_crypto_provider();
        let config = kube::Config::new(self.url().parse().expect("the fake's URL"));
        kube::Client::try_from(config).expect("a kube client for the fake API")
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Every object body sent to be created (POST), replaced (PUT) or applied (server-side
    /// apply), as sent and in order, whether or not the API accepted it (SelfSubjectAccess
    /// Reviews, status writes and dry runs excluded); for [`validate_manifests`].
    pub fn sent_manifests(&self) -> Vec<Value> {
        lock(&self.shared.manifests).clone()
    }

    /// `(name, status.phase)` of every namespace, sorted by name.
    pub fn namespaces(&self) -> Vec<(String, String)> {
        self.shared.read(|s| {
            s.list("namespaces", None)
                .iter()
                .map(|n| {
                    (
                        n["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        n["status"]["phase"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
    }

    /// Waits up to 30 s until no namespace but Kubernetes' own is left; panics naming
    /// those left.
    pub fn assert_no_namespace_left(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left: Vec<_> = self
                .namespaces()
                .into_iter()
                .filter(|(n, _)| !matches!(n.as_str(), "default" | "kube-system" | "kube-public"))
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "namespaces left: {left:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The stored objects of `kind` (a kind such as `Job` or a plural such as `jobs`), in
    /// `namespace` or in all namespaces when `None`, as the API would return them.
    pub fn objects(&self, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        match api::resource_named(kind) {
            Some(rt) => self.shared.read(|s| s.list(rt.plural, namespace)),
            None => panic!("the fake serves no kind {kind}"),
        }
    }

    /// One stored object, if it exists.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt =
            api::resource_named(kind).unwrap_or_else(|| panic!("the fake serves no kind {kind}"));
        self.shared
            .read(|s| s.get(&Key::new(rt, namespace, name)).cloned())
    }

    /// The log of a container so far, if it has one.
    pub fn pod_log(&self, namespace: &str, pod: &str, container: &str) -> Option<String> {
        self.shared
            .logs
            .read_from(&(namespace.into(), pod.into(), container.into()), 0)
            .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The faults now in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Changes the faults while the cluster runs, e.g.
    /// `fake.update_faults(|f| f.unschedulable = false)`.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut lock(&self.shared.faults));
    }

    /// The next `count` requests with `method` (any when empty) whose path contains
    /// `path_contains` answer 500 with an `InternalError` Status.
    pub fn fail_next(&self, method: &str, path_contains: &str, count: usize) {
        self.update_faults(|f| {
            f.api_errors.push(ApiFault {
                method: method.to_string(),
                path_contains: path_contains.to_string(),
                remaining: count,
            })
        });
    }

    /// The bytes a pod wrote at `path` in the persistent volume `claim`, if any.
    pub fn volume_file(&self, namespace: &str, claim: &str, path: &str) -> Option<Vec<u8>> {
        lock(&self.shared.volumes)
            .get(&(namespace.to_string(), claim.to_string()))
            .and_then(|files| files.get(path).cloned())
    }
}
