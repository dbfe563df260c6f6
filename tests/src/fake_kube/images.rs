//! Image pulls of the fake kubelet from a registry on loopback (`127.0.0.1:PORT/...`,
//! `localhost:PORT/...`), over plain HTTP with the Docker Registry v2 API as containerd's
//! resolver speaks it: the manifest asked for with the OCI and Docker v2 manifest and index
//! types, `linux/amd64` picked from an index, the config and the layers (tar, tar+gzip)
//! fetched by digest and unpacked in order, honouring `.wh.` whiteouts and `.wh..wh..opq`
//! opaque folders. A 401 with a `WWW-Authenticate: Basic` challenge is answered with the
//! credentials of the pod's `imagePullSecrets` for that registry. The unpacked root is
//! cached per manifest digest in the fake's work folder; failures read as containerd's
//! through the CRI (`rpc error: code = ... desc = failed to pull and unpack image ...`).
//! [`describe`] stops after the manifest and the config (what the simulated kubelet of
//! workload pods needs); a `repo:tag@digest` reference pulls the digest, as containerd's
//! `ParseDockerRef` drops the tag.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

/// The Accept header of containerd's resolver.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, */*";

/// An image reference on a loopback registry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reference {
    /// `127.0.0.1:5000`.
    pub registry: String,
    /// `library/busybox`.
    pub repo: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
    /// The reference as containerd names it (`:latest` added when there was no tag).
    pub full: String,
}

/// `Some` when `image` is on a loopback registry.
pub(crate) fn loopback_reference(image: &str) -> Option<Reference> {
    let (host, rest) = image.split_once('/')?;
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if !matches!(hostname, "127.0.0.1" | "localhost" | "[::1]") {
        return None;
    }
    let (repo, reference, sep) = if let Some((r, d)) = rest.split_once('@') {
        // `repo:tag@digest`: the digest wins and the tag is dropped, as
        // `reference.ParseDockerRef` (containerd's CRI) names it.
        let r = match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => r,
        };
        (r, d.to_string(), '@')
    } else {
        match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, t.to_string(), ':'),
            _ => (rest, "latest".to_string(), ':'),
        }
    };
    Some(Reference {
        registry: host.to_string(),
        repo: repo.to_string(),
        full: format!("{host}/{repo}{sep}{reference}"),
        reference,
    })
}

/// A pulled image: its root folder and the parts of its config a container starts from.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    /// `127.0.0.1:5000/busybox@sha256:...`, the status' `imageID`.
    pub id: String,
    pub rootfs: PathBuf,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub size: u64,
}

/// Registry credentials: `(user, password)`.
pub(crate) type Credentials = (String, String);

/// The credentials for `registry` in a `.dockerconfigjson` document (`auths` keys may carry
/// a scheme or a path, as docker's keyring matches them).
pub(crate) fn credentials_for(config: &Value, registry: &str) -> Option<Credentials> {
    for (key, entry) in config["auths"].as_object().into_iter().flatten() {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        if host != registry {
            continue;
        }
        if let Some(auth) = entry["auth"].as_str() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())?;
            let (u, p) = decoded.split_once(':')?;
            return Some((u.to_string(), p.to_string()));
        }
        if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
            return Some((u.to_string(), p.to_string()));
        }
    }
    None
}

/// The credentials for `registry` that the pod's `imagePullSecrets` hold, in their order
/// (`kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg` Secrets of the pod's
/// namespace), and the names of the Secrets that do not exist.
pub(crate) fn pull_secret_credentials(
    shared: &super::Shared,
    pod: &Value,
    registry: &str,
) -> (Vec<Credentials>, Vec<String>) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let decode = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for s in pod["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = s["name"].as_str().unwrap_or_default();
        let key = super::store::Key::new(super::kubelet::rt("secrets"), ns, name);
        let Some(secret) = shared.read(|st| st.get(&key).cloned()) else {
            missing.push(name.to_string());
            continue;
        };
        let config: Option<Value> = match secret["type"].as_str() {
            Some("kubernetes.io/dockerconfigjson") => {
                serde_json::from_slice(&decode(&secret["data"][".dockerconfigjson"])).ok()
            }
            Some("kubernetes.io/dockercfg") => {
                serde_json::from_slice(&decode(&secret["data"][".dockercfg"]))
                    .ok()
                    .map(|auths: Value| serde_json::json!({"auths": auths}))
            }
            _ => None,
        };
        found.extend(config.and_then(|c| credentials_for(&c, registry)));
    }
    (found, missing)
}

/// The kubelet's `FailedToRetrieveImagePullSecret` warning on `pod` for Secrets that do not
/// exist (none when `missing` is empty).
pub(crate) fn record_missing_pull_secrets(shared: &super::Shared, pod: &Value, missing: &[String]) {
    if missing.is_empty() {
        return;
    }
    super::events::record(
        shared,
        pod,
        "kubelet",
        true,
        "FailedToRetrieveImagePullSecret",
        &format!(
            "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
            missing.join(", ")
        ),
    );
}

/// Why a pull failed: the gRPC code containerd answers with and its message.
fn failure(code: &str, r: &Reference, detail: &str) -> String {
    format!(
        "rpc error: code = {code} desc = failed to pull and unpack image \"{}\": {detail}",
        r.full
    )
}

struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Vec<Credentials>,
    auth: Option<String>,
}

impl Client {
    /// GETs `url`, answering a Basic challenge once with the first credentials.
    async fn get(&mut self, url: &str, accept: Option<&str>) -> Result<reqwest::Response, String> {
        loop {
            let mut request = self.http.get(url);
            if let Some(a) = accept {
                request = request.header("Accept", a);
            }
            if let Some(auth) = &self.auth {
                request = request.header("Authorization", auth);
            }
            let response = request.send().await.map_err(|e| {
                let cause = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| e.to_string());
                format!("failed to do request: Head \"{url}\": {cause}")
            })?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && self.auth.is_none() {
                let challenge = response
                    .headers()
                    .get("WWW-Authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if challenge.to_ascii_lowercase().starts_with("basic")
                    && let Some((u, p)) = self.credentials.first()
                {
                    let token =
                        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                    self.auth = Some(format!("Basic {token}"));
                    continue;
                }
            }
            return Ok(response);
        }
    }

    async fn blob(&mut self, repo: &str, digest: &str) -> Result<Vec<u8>, String> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let response = self.get(&url, None).await?;
        if !response.status().is_success() {
            return Err(format!(
                "failed to copy: httpReadSeeker: failed open: unexpected status code {url}: {}",
                status_text(response.status())
            ));
        }
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("failed to copy: {e}"))
    }
}

fn status_text(s: reqwest::StatusCode) -> String {
    format!(
        "{} {}",
        s.as_u16(),
        s.canonical_reason().unwrap_or_default()
    )
}

/// An image as its registry describes it, without its layers: the digest of the
/// (`linux/amd64`) manifest, the manifest, and the config blob.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    pub digest: String,
    pub manifest: Value,
    pub config_bytes: Vec<u8>,
    pub config: Value,
}

impl Described {
    /// The layers' sizes plus the config's, as the kubelet's `Pulled` event counts them.
    pub fn size(&self) -> u64 {
        self.manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["size"].as_u64().unwrap_or_default())
            .sum::<u64>()
            + self.config_bytes.len() as u64
    }

    /// `127.0.0.1:5000/busybox@sha256:...`, the status' `imageID`.
    pub fn id(&self, r: &Reference) -> String {
        format!("{}/{}@{}", r.registry, r.repo, self.digest)
    }
}

fn client_for(r: &Reference, credentials: Vec<Credentials>) -> Result<Client, String> {
    crate::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| failure("Unknown", r, &e.to_string()))?;
    Ok(Client {
        http,
        base: format!("http://{}", r.registry),
        credentials,
        auth: None,
    })
}

/// Resolves `r` in its registry (trying `credentials` on a Basic challenge): the manifest
/// (`linux/amd64` from an index) and the config blob, no layers. Failures read as
/// containerd's.
pub(crate) async fn describe(
    r: &Reference,
    credentials: Vec<Credentials>,
) -> Result<Described, String> {
    let mut client = client_for(r, credentials)?;
    resolve(&mut client, r).await
}

/// Pulls `r` (trying `credentials` on a Basic challenge) and unpacks it under `work`
/// (reusing the root of a digest unpacked before).
pub(crate) async fn pull(
    work: &Path,
    r: &Reference,
    credentials: Vec<Credentials>,
) -> Result<Image, String> {
    let mut client = client_for(r, credentials)?;
    let Described {
        digest,
        manifest,
        config_bytes,
        config,
    } = resolve(&mut client, r).await?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let layers: Vec<(String, String, u64)> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["digest"].as_str().unwrap_or_default().to_string(),
                l["mediaType"].as_str().unwrap_or_default().to_string(),
                l["size"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let size = layers.iter().map(|l| l.2).sum::<u64>() + config_bytes.len() as u64;
    let hex = digest.trim_start_matches("sha256:");
    let dir = work.join("images").join(hex);
    let rootfs = dir.join("rootfs");
    if !rootfs.is_dir() {
        let staging = work.join("images").join(format!(
            "{hex}.part-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let unpacked = staging.join("rootfs");
        std::fs::create_dir_all(&unpacked).map_err(|e| failure("Unknown", r, &e.to_string()))?;
        for (i, (layer, media_type, _)) in layers.iter().enumerate() {
            let bytes = client
                .blob(&r.repo, layer)
                .await
                .map_err(|e| failure("Unknown", r, &e))?;
            let file = staging.join(format!("layer-{i}"));
            std::fs::write(&file, &bytes).map_err(|e| failure("Unknown", r, &e.to_string()))?;
            let gzip = bytes.starts_with(&[0x1f, 0x8b]);
            if media_type.contains("zstd") {
                return Err(failure(
                    "Unknown",
                    r,
                    &format!(
                        "failed to extract layer {layer}: zstd layers are not supported by the fake kubelet"
                    ),
                ));
            }
            apply_layer(&file, gzip, &unpacked).await.map_err(|e| {
                failure(
                    "Unknown",
                    r,
                    &format!("failed to extract layer {layer}: {e}"),
                )
            })?;
            let _ = std::fs::remove_file(&file);
        }
        std::fs::create_dir_all(&dir).map_err(|e| failure("Unknown", r, &e.to_string()))?;
        if std::fs::rename(&unpacked, &rootfs).is_err() && !rootfs.is_dir() {
            return Err(failure("Unknown", r, "cannot store the unpacked image"));
        }
        let _ = std::fs::remove_dir_all(&staging);
    }
    let c = &config["config"];
    Ok(Image {
        id: format!("{}/{}@{digest}", r.registry, r.repo),
        rootfs,
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        env: strings(&c["Env"]),
        working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
        size,
    })
}

/// The manifest (`linux/amd64` from an index), its digest and the config of `r`.
async fn resolve(client: &mut Client, r: &Reference) -> Result<Described, String> {
    let url = format!("{}/v2/{}/manifests/{}", client.base, r.repo, r.reference);
    let resolve = |detail: String| format!("failed to resolve reference \"{}\": {detail}", r.full);
    let response = client
        .get(&url, Some(ACCEPT))
        .await
        .map_err(|e| failure("Unknown", r, &resolve(e)))?;
    match response.status() {
        s if s.is_success() => {}
        reqwest::StatusCode::NOT_FOUND => {
            return Err(failure(
                "NotFound",
                r,
                &resolve(format!("{}: not found", r.full)),
            ));
        }
        s => {
            return Err(failure(
                "Unknown",
                r,
                &resolve(format!(
                    "unexpected status from HEAD request to {url}: {}",
                    status_text(s)
                )),
            ));
        }
    }
    let mut digest = response
        .headers()
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .bytes()
        .await
        .map_err(|e| failure("Unknown", r, &e.to_string()))?;
    let mut manifest: Value =
        serde_json::from_slice(&body).map_err(|e| failure("Unknown", r, &e.to_string()))?;
    if manifest["manifests"].is_array() {
        let chosen = manifest["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64")
            .and_then(|m| m["digest"].as_str())
            .ok_or_else(|| {
                failure(
                    "NotFound",
                    r,
                    "no match for platform in manifest: not found",
                )
            })?
            .to_string();
        let url = format!("{}/v2/{}/manifests/{chosen}", client.base, r.repo);
        let response = client
            .get(&url, Some(ACCEPT))
            .await
            .map_err(|e| failure("Unknown", r, &e))?;
        if !response.status().is_success() {
            return Err(failure(
                "Unknown",
                r,
                &format!(
                    "unexpected status from GET request to {url}: {}",
                    status_text(response.status())
                ),
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| failure("Unknown", r, &e.to_string()))?;
        manifest =
            serde_json::from_slice(&body).map_err(|e| failure("Unknown", r, &e.to_string()))?;
        digest = Some(chosen);
    }
    let digest = digest.unwrap_or_else(|| r.reference.clone());
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let config_bytes = client
        .blob(&r.repo, &config_digest)
        .await
        .map_err(|e| failure("Unknown", r, &e))?;
    let config: Value =
        serde_json::from_slice(&config_bytes).map_err(|e| failure("Unknown", r, &e.to_string()))?;
    Ok(Described {
        digest,
        manifest,
        config_bytes,
        config,
    })
}

/// Applies one layer to `root`: its whiteouts first (a `.wh.NAME` removes `NAME`, a
/// `.wh..wh..opq` empties its folder of what lower layers put there), then its files.
async fn apply_layer(file: &Path, gzip: bool, root: &Path) -> Result<(), String> {
    let flag = if gzip { "-tzf" } else { "-tf" };
    let list = tokio::process::Command::new("tar")
        .arg(flag)
        .arg(file)
        .output()
        .await
        .map_err(|e| format!("tar: {e}"))?;
    if !list.status.success() {
        return Err(String::from_utf8_lossy(&list.stderr).into_owned());
    }
    for entry in String::from_utf8_lossy(&list.stdout).lines() {
        let entry = entry.trim_start_matches("./");
        let (dir, base) = entry.rsplit_once('/').unwrap_or(("", entry));
        let Some(hidden) = base.strip_prefix(".wh.") else {
            continue;
        };
        let parent = root.join(dir);
        if hidden == ".wh..opq" {
            for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                remove(&child.path());
            }
        } else if !hidden.contains('/') && !hidden.is_empty() {
            remove(&parent.join(hidden));
        }
    }
    let flag = if gzip { "-xzf" } else { "-xf" };
    let out = tokio::process::Command::new("tar")
        .arg(flag)
        .arg(file)
        .arg("-C")
        .arg(root)
        .args(["--numeric-owner", "--same-permissions", "--exclude=.wh.*"])
        .output()
        .await
        .map_err(|e| format!("tar: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_references_parse_as_containerd_names_them() {
        let r = loopback_reference("127.0.0.1:5000/busybox:1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "busybox", "1")
        );
        let r = loopback_reference("localhost:5000/a/b").unwrap();
        assert_eq!(r.full, "localhost:5000/a/b:latest");
        let r = loopback_reference("127.0.0.1:5000/x@sha256:abc").unwrap();
        assert_eq!(r.reference, "sha256:abc");
        // Tag and digest: the digest wins, the tag goes.
        let r = loopback_reference("127.0.0.1:5000/a/x:1@sha256:abc").unwrap();
        assert_eq!(
            (r.repo.as_str(), r.reference.as_str()),
            ("a/x", "sha256:abc")
        );
        assert_eq!(r.full, "127.0.0.1:5000/a/x@sha256:abc");
        assert_eq!(loopback_reference("node:20"), None);
        assert_eq!(loopback_reference("docker.io/library/busybox:1"), None);
    }

    #[test]
    fn credentials_match_the_registry_host() {
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p");
        let config = serde_json::json!({"auths": {"http://127.0.0.1:5000/v2/": {"auth": auth}}});
        assert_eq!(
            credentials_for(&config, "127.0.0.1:5000"),
            Some(("u".to_string(), "p".to_string()))
        );
        assert_eq!(credentials_for(&config, "127.0.0.1:5001"), None);
    }
}
