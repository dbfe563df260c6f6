//! Tiny container images for the fake kubelet's tests: built once per test binary with real
//! buildah (`FROM scratch`, the host's static busybox with its applet links, `CMD ["sh"]`),
//! kept in memory as OCI blobs, and pushed over the Registry v2 API to whichever loopback
//! registry a test started (`Registry::start` or `start_with_auth`). Variants change only
//! the image config's `Cmd` (a TCP echo or HTTP service on a port, optionally after a
//! delay), so they share the busybox layer and cost one config blob and one manifest.

use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::buildah::PrivateStorage;
use crate::registry::{Registry, require_program};

/// An image as blobs: its config (JSON) and its layers (digest, media type, bytes).
#[derive(Debug, Clone)]
pub struct OciImage {
    pub config: Value,
    pub layers: Vec<(String, String, Vec<u8>)>,
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The static busybox image, built on first use; `None` (after a notice) when buildah or a
/// static busybox is missing outside CI (under CI=true that panics).
pub fn busybox() -> Option<&'static OciImage> {
    static IMAGE: OnceLock<Option<OciImage>> = OnceLock::new();
    IMAGE.get_or_init(build_busybox).as_ref()
}

fn build_busybox() -> Option<OciImage> {
    if !require_program(
        "buildah",
        "the fake kubelet's images are built with buildah",
    ) || !require_program(
        "busybox",
        "the fake kubelet's images hold a static busybox (busybox-static)",
    ) {
        return None;
    }
    let host = crate::registry::which("busybox").expect("busybox on PATH");
    let storage = PrivateStorage::new();
    let ctx = storage.path().join("busybox-ctx");
    let bin = ctx.join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("the image's /bin");
    for d in ["tmp", "etc", "root"] {
        std::fs::create_dir_all(ctx.join("rootfs").join(d)).expect("an image folder");
    }
    std::fs::copy(&host, bin.join("busybox")).expect("copy busybox into the context");
    let list = Command::new(&host)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() && !applet.contains('/') {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("an applet link");
        }
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCMD [\"sh\"]\n",
    )
    .expect("write the Dockerfile");
    let tag = "localhost/hr-test-busybox:1";
    let ctx = ctx.to_str().expect("a UTF-8 path");
    storage.run(
        &["bud", "--isolation", "chroot", "-t", tag, ctx],
        "building the busybox test image",
    );
    let layout = storage.path().join("layout");
    let dest = format!("oci:{}:1", layout.display());
    storage.run(
        &["push", "--compression-format", "gzip", tag, &dest],
        "writing the busybox image as an OCI layout",
    );
    let read = |digest: &str| -> Vec<u8> {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::read(layout.join("blobs/sha256").join(hex)).expect("a blob of the OCI layout")
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("a manifest in the layout");
    let manifest: Value =
        serde_json::from_slice(&read(manifest_digest)).expect("the manifest is JSON");
    let config: Value = serde_json::from_slice(&read(
        manifest["config"]["digest"].as_str().expect("a config"),
    ))
    .expect("the config is JSON");
    let layers = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().expect("a layer digest").to_string();
            let bytes = read(&digest);
            (
                digest,
                l["mediaType"].as_str().unwrap_or_default().to_string(),
                bytes,
            )
        })
        .collect();
    Some(OciImage { config, layers })
}

impl OciImage {
    /// The same image with `cmd` as its config's `Cmd`.
    pub fn with_cmd(&self, cmd: &[&str]) -> OciImage {
        let mut image = self.clone();
        image.config["config"]["Cmd"] = json!(cmd);
        image
    }

    /// The same image with `key=value` in its config's `Labels` (e.g. the fake kubelet's
    /// `CRASH_LABEL`).
    pub fn with_label(&self, key: &str, value: &str) -> OciImage {
        let mut image = self.clone();
        if !image.config["config"]["Labels"].is_object() {
            image.config["config"]["Labels"] = json!({});
        }
        image.config["config"]["Labels"][key] = json!(value);
        image
    }

    /// Pushes the image to `registry` as `repo:tag` (Basic auth when the registry has
    /// credentials); returns the reference (`127.0.0.1:PORT/repo:tag`).
    pub fn push(&self, registry: &Registry, repo: &str, tag: &str) -> String {
        crate::install_crypto_provider();
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let base = format!("http://{}", registry.host);
        let auth = registry.credentials.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let with_auth = |r: reqwest::blocking::RequestBuilder| match &auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        };
        let config = serde_json::to_vec(&self.config).expect("config JSON");
        let config_digest = sha256(&config);
        let mut blobs: Vec<(String, &[u8])> = vec![(config_digest.clone(), &config)];
        blobs.extend(
            self.layers
                .iter()
                .map(|(d, _, b)| (d.clone(), b.as_slice())),
        );
        for (digest, bytes) in blobs {
            let start = with_auth(client.post(format!("{base}/v2/{repo}/blobs/uploads/")))
                .send()
                .expect("start a blob upload");
            assert_eq!(
                start.status().as_u16(),
                202,
                "blob upload refused: {}",
                registry.log()
            );
            let location = start
                .headers()
                .get("Location")
                .and_then(|l| l.to_str().ok())
                .expect("an upload location")
                .to_string();
            let url = if location.starts_with('/') {
                format!("{base}{location}")
            } else {
                location
            };
            let sep = if url.contains('?') { '&' } else { '?' };
            let put = with_auth(client.put(format!("{url}{sep}digest={digest}")))
                .header("Content-Type", "application/octet-stream")
                .body(bytes.to_vec())
                .send()
                .expect("upload a blob");
            assert!(
                put.status().is_success(),
                "blob upload failed: {}",
                put.status()
            );
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": self.layers.iter().map(|(d, m, b)| json!({"mediaType": m, "digest": d, "size": b.len()})).collect::<Vec<_>>(),
        });
        let put = with_auth(client.put(format!("{base}/v2/{repo}/manifests/{tag}")))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(serde_json::to_vec(&manifest).expect("manifest JSON"))
            .send()
            .expect("put the manifest");
        assert!(
            put.status().is_success(),
            "manifest push failed: {}: {}",
            put.status(),
            registry.log()
        );
        format!("{}/{repo}:{tag}", registry.host)
    }
}

/// The busybox image pushed to `registry` as `busybox:1` (its Cmd is `sh`).
pub fn busybox_image(registry: &Registry) -> Option<String> {
    Some(busybox()?.push(registry, "busybox", "1"))
}

/// An image whose Cmd serves a TCP echo (`nc -ll -p PORT -e cat`) on `port`, listening only
/// after `delay_secs` (for startup probes that pass late).
pub fn echo_image(registry: &Registry, port: u16, delay_secs: u32) -> Option<String> {
    let script =
        format!("sleep {delay_secs}; echo listening on {port}; exec nc -ll -p {port} -e cat");
    let image = busybox()?.with_cmd(&["sh", "-c", &script]);
    Some(image.push(registry, &format!("echo-{port}-{delay_secs}"), "1"))
}

/// An image whose Cmd serves HTTP (`httpd -f -p PORT`, an `index.html` saying `ok`) on
/// `port` after `delay_secs`.
pub fn http_image(registry: &Registry, port: u16, delay_secs: u32) -> Option<String> {
    let script = format!(
        "sleep {delay_secs}; mkdir -p /tmp/www && echo ok > /tmp/www/index.html && echo serving on {port} && exec httpd -f -p {port} -h /tmp/www"
    );
    let image = busybox()?.with_cmd(&["sh", "-c", &script]);
    Some(image.push(registry, &format!("http-{port}-{delay_secs}"), "1"))
}
