//! A real OCI registry for the build tests: Debian's `docker-registry` (the CNCF
//! distribution registry) serving plain HTTP on a free loopback port, storing into a
//! temporary folder, stopped when the value drops.
//!
//! Tests that need it call [`Registry::start`]; when the program is missing it returns
//! `None` after printing a notice (CI installs it, so there a missing registry panics).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::under_ci;

/// The Accept header that makes the registry answer with the manifest's own media type,
/// so `Docker-Content-Digest` is the digest a push reported.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`, the registry host as image references spell it.
    pub host: String,
    _storage: tempfile::TempDir,
    client: reqwest::blocking::Client,
    /// `(user, password)` when the registry requires Basic auth ([`Registry::start_with_auth`]).
    pub credentials: Option<(String, String)>,
}

/// Whether `program` is on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The path of `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `None` with a notice when a tool a test needs is missing outside CI; a panic under CI.
pub fn require_program(program: &str, why: &str) -> bool {
    if on_path(program) {
        return true;
    }
    if under_ci() {
        panic!("{program} is required under CI ({why}); .ci/test installs it");
    }
    eprintln!("notice: {program} not found; skipping ({why})");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Registry {
    /// Start a registry on a free loopback port and wait until `/v2/` answers.
    pub fn start() -> Option<Registry> {
        Self::start_inner(None)
    }

    /// A registry that answers 401 with `WWW-Authenticate: Basic` unless a request carries
    /// `user:password` (docker-registry's htpasswd auth; the bcrypt entry is made with
    /// apache2-utils' `htpasswd -nbB`, which .ci/test installs).
    pub fn start_with_auth(user: &str, password: &str) -> Option<Registry> {
        Self::start_inner(Some((user.to_string(), password.to_string())))
    }

    fn start_inner(credentials: Option<(String, String)>) -> Option<Registry> {
        if !require_program("docker-registry", "the build tests push to a real registry") {
            return None;
        }
        if credentials.is_some()
            && !require_program(
                "htpasswd",
                "a registry with Basic auth needs a bcrypt htpasswd file",
            )
        {
            return None;
        }
        crate::install_crypto_provider();
        // The port is free when picked, but another test may pick it too before either
        // registry binds it: the loser exits ("address already in use") while the winner
        // answers its readiness probe. So a registry counts as started only if its own
        // process still runs after answering; otherwise it starts again on another port.
        for attempt in 1.. {
            let (mut registry, answered) = Self::spawn(credentials.clone());
            if answered {
                std::thread::sleep(Duration::from_millis(200));
            }
            if answered && matches!(registry.child.try_wait(), Ok(None)) {
                return Some(registry);
            }
            let log = registry.log();
            assert!(
                attempt < 5 && log.contains("address already in use"),
                "docker-registry did not answer on {}:\n{log}",
                registry.host
            );
        }
        None
    }

    /// Starts one registry on a free port; the registry and whether it (or another on
    /// its port) answered.
    fn spawn(credentials: Option<(String, String)>) -> (Registry, bool) {
        let storage = tempfile::tempdir().expect("registry storage folder");
        let port = free_port();
        let config = storage.path().join("config.yml");
        let mut yaml = config_yaml(&storage.path().join("data"), port);
        if let Some((user, password)) = &credentials {
            let out = Command::new("htpasswd")
                .args(["-nbB", user, password])
                .output()
                .expect("run htpasswd");
            assert!(
                out.status.success(),
                "htpasswd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let file = storage.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write the htpasswd file");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: fake-registry\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(&config, yaml).expect("write the registry config");
        let log =
            std::fs::File::create(storage.path().join("registry.log")).expect("registry log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            _storage: storage,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            credentials,
        };
        let answered = registry.wait_ready(Duration::from_secs(15));
        (registry, answered)
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = self.client.get(format!("http://{}/v2/", self.host)).send()
                && (r.status().is_success()
                    || (self.credentials.is_some()
                        && r.status() == reqwest::StatusCode::UNAUTHORIZED))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The tags of `repo` (e.g. `app`), sorted; empty when the repository does not exist.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let url = format!("http://{}/v2/{repo}/tags/list", self.host);
        let response = self.client.get(url).send().expect("tags/list request");
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Vec::new();
        }
        let body: serde_json::Value = response.json().expect("tags/list JSON");
        let mut tags: Vec<String> = body["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// The manifest digest (`sha256:<hex>`) of `repo:tag`, or `None` when it is not there.
    pub fn digest(&self, repo: &str, tag: &str) -> Option<String> {
        let url = format!("http://{}/v2/{repo}/manifests/{tag}", self.host);
        let response = self
            .client
            .head(url)
            .header("Accept", MANIFEST_ACCEPT)
            .send()
            .expect("manifest HEAD request");
        if !response.status().is_success() {
            return None;
        }
        response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The registry's own log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._storage.path().join("registry.log")).unwrap_or_default()
    }

    /// Where the registry keeps its files.
    pub fn storage(&self) -> PathBuf {
        self._storage.path().join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_yaml(root: &Path, port: u16) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        root.display()
    )
}

/// The five tags a dual build of commit `sha` pushes with the default templates, sorted:
/// `latest`, `docker-latest`, `docker-<sha>` from `Dockerfile`, `k8s-latest`, `k8s-<sha>`
/// from `Dockerfile.k8s`. Written out here, not taken from the runner, so a test of the
/// runner's tags compares them with this list: `latest`, `docker-latest`, `docker-<sha>`, `k8s-latest`, `k8s-<sha>`.
pub fn five_dual_tags(sha: &str) -> Vec<String> {
    let mut tags = vec![
        "latest".to_string(),
        "docker-latest".to_string(),
        format!("docker-{sha}"),
        "k8s-latest".to_string(),
        format!("k8s-{sha}"),
    ];
    tags.sort();
    tags
}
