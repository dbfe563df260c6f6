//! A small OCI distribution (registry v2) client for what the `docker` shim needs on top of
//! the builders: read a manifest, put it under another tag or copy the image to another
//! repository or registry (`docker tag a b` + `docker push b` without rebuilding, in
//! [`copy`]), and ask which digest a tag points at. Credentials and challenges: [`auth`].
//!
//! Plain HTTP for the registries named insecure (`--insecure-registry host:port`), HTTPS for
//! every other. Credentials come from the runner's own Docker config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, its `auths` entries; credential
//! helpers are not run): Basic for registries that ask for it, and the Bearer token dance
//! (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`) for those that hand out tokens.

mod auth;
mod copy;
mod presence;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use auth::basic;
pub use auth::{Challenge, Credential, DockerCredentials, parse_challenge};
pub use presence::{Absence, Presence};

/// Every manifest type a copy may meet, so the registry answers with the stored bytes.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Docker Hub's name in references, and where its API really is.
pub(crate) const DOCKER_HUB: &str = "docker.io";
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Why a registry operation failed; each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{reference}` is not an image reference: {problem}; write `registry/name:tag`")]
    Reference { reference: String, problem: String },
    #[error(
        "cannot read the Docker config {path}: {message}; fix the file or point DOCKER_CONFIG at another folder"
    )]
    Config { path: PathBuf, message: String },
    #[error("cannot create the HTTP client: {0}")]
    Client(String),
    #[error(
        "cannot reach the registry {registry}: {message}; check the address, and pass `--insecure-registry {registry}` for a plain-HTTP registry"
    )]
    Connect { registry: String, message: String },
    #[error(
        "the registry {registry} refused the credentials ({status}); log in on the runner host (`docker login {registry}` writes ~/.docker/config.json) or set DOCKER_CONFIG"
    )]
    Auth {
        registry: String,
        status: StatusCode,
    },
    #[error("reading the manifest of {reference} failed: {status} {body}")]
    ManifestGet {
        reference: String,
        status: StatusCode,
        body: String,
    },
    #[error("reading the blob {digest} of {reference} failed: {message}")]
    BlobGet {
        reference: String,
        digest: String,
        message: String,
    },
    #[error("copying {from} to {to} failed: {message}")]
    Copy {
        from: String,
        to: String,
        message: String,
    },
    #[error("writing the manifest {reference} failed: {status} {body}")]
    ManifestPut {
        reference: String,
        status: StatusCode,
        body: String,
    },
}

/// `registry/repository:tag` or `registry/repository@digest`, normalised the way Docker does
/// (`app` is `docker.io/library/app:latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    pub registry: String,
    pub repository: String,
    /// A tag, or a digest `sha256:…`.
    pub reference: String,
    /// The tag written before a digest (`name:tag@sha256:…`), kept for messages: the
    /// digest is what registries and kubelets fetch.
    pub tag: Option<String>,
}

impl ImageRef {
    pub fn parse(text: &str) -> Result<ImageRef, RegistryError> {
        let bad = |problem: &str| RegistryError::Reference {
            reference: text.to_string(),
            problem: problem.to_string(),
        };
        let text = text.trim();
        if text.is_empty() || text.chars().any(char::is_whitespace) {
            return Err(bad("it is empty or holds spaces"));
        }
        let split_tag = |name: &'_ str| -> (usize, Option<String>) {
            let last = name.rsplit('/').next().unwrap_or(name);
            match last.rsplit_once(':') {
                Some((_, tag)) => (name.len() - tag.len() - 1, Some(tag.to_string())),
                None => (name.len(), None),
            }
        };
        let (name, reference, tag) = match text.split_once('@') {
            Some((name, digest)) => {
                let (end, tag) = split_tag(name);
                if tag.as_deref() == Some("") {
                    return Err(bad("the tag before the digest is empty"));
                }
                (&name[..end], digest.to_string(), tag)
            }
            None => {
                let (end, tag) = split_tag(text);
                (
                    &text[..end],
                    tag.unwrap_or_else(|| "latest".to_string()),
                    None,
                )
            }
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        if repository.is_empty() || reference.is_empty() {
            return Err(bad("the name or the tag is empty"));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository names are lower case"));
        }
        Ok(ImageRef {
            registry,
            repository,
            reference,
            tag,
        })
    }

    /// The same image under another tag or digest.
    pub fn with_reference(&self, reference: &str) -> ImageRef {
        ImageRef {
            reference: reference.to_string(),
            tag: None,
            ..self.clone()
        }
    }

    /// Whether both name the same repository of the same registry.
    pub fn same_repository(&self, other: &ImageRef) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }

    fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let separator = if self.reference.contains(':') {
            '@'
        } else {
            ':'
        };
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = self.tag.as_deref().filter(|_| separator == '@') {
            write!(f, ":{tag}")?;
        }
        write!(f, "{separator}{}", self.reference)
    }
}

/// A manifest as the registry stores it: the exact bytes (so its digest stays the same
/// wherever it is put), their media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// The image config digest (what `docker images` calls the image id), for a single-image
    /// manifest; `None` for an index.
    pub fn config_digest(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.bytes).ok()?;
        json["config"]["digest"].as_str().map(str::to_string)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Talks to registries on behalf of the runner.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    insecure: Vec<String>,
    credentials: DockerCredentials,
    /// `Authorization` values that worked, by registry host and repository.
    authorizations: Mutex<HashMap<(String, String), String>>,
}

impl RegistryClient {
    pub fn new(
        insecure: &[String],
        credentials: DockerCredentials,
    ) -> Result<RegistryClient, RegistryError> {
        hr_cluster::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| RegistryError::Client(e.to_string()))?;
        Ok(RegistryClient {
            http,
            insecure: insecure.to_vec(),
            credentials,
            authorizations: Mutex::new(HashMap::new()),
        })
    }

    /// `http://host:port` for an insecure registry, `https://host` otherwise.
    fn origin(&self, image: &ImageRef) -> String {
        let scheme = if self.insecure.iter().any(|h| h == &image.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", image.api_host())
    }

    fn base_url(&self, image: &ImageRef) -> String {
        format!("{}/v2/{}", self.origin(image), image.repository)
    }

    /// The manifest `image` points at, with its exact bytes.
    pub async fn manifest(&self, image: &ImageRef) -> Result<Manifest, RegistryError> {
        let url = format!("{}/manifests/{}", self.base_url(image), image.reference);
        let response = self
            .send(image, false, |http| {
                http.get(&url).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let status = response.status();
        let media_type = header(response.headers(), CONTENT_TYPE.as_str());
        let bytes = response.bytes().await.map_err(|e| connect(image, &e))?;
        if !status.is_success() {
            return Err(RegistryError::ManifestGet {
                reference: image.to_string(),
                status,
                body: short_body(&bytes),
            });
        }
        let media_type = media_type
            .or_else(|| {
                let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
                json["mediaType"].as_str().map(str::to_string)
            })
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_string());
        Ok(Manifest {
            media_type,
            digest: sha256_digest(&bytes),
            bytes: bytes.to_vec(),
        })
    }

    /// The digest `image` points at, or `None` when the registry does not have it.
    pub async fn digest(&self, image: &ImageRef) -> Result<Option<String>, RegistryError> {
        match self.manifest(image).await {
            Ok(m) => Ok(Some(m.digest)),
            Err(RegistryError::ManifestGet { status, .. }) if status == StatusCode::NOT_FOUND => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes of blob `digest` of `image`'s repository (an image config, say), checked
    /// against the digest.
    pub async fn blob(&self, image: &ImageRef, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let failed = |message: String| RegistryError::BlobGet {
            reference: image.to_string(),
            digest: digest.to_string(),
            message,
        };
        let url = format!("{}/blobs/{digest}", self.base_url(image));
        let response = self.send(image, false, |http| http.get(&url)).await?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| connect(image, &e))?;
        if !status.is_success() {
            return Err(failed(format!("{status} {}", short_body(&bytes))));
        }
        if digest.starts_with("sha256:") && sha256_digest(&bytes) != digest {
            return Err(failed("the bytes read do not match the digest".to_string()));
        }
        Ok(bytes.to_vec())
    }

    /// Puts `manifest` under `image`'s tag; returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        image: &ImageRef,
        manifest: &Manifest,
    ) -> Result<String, RegistryError> {
        let url = format!("{}/manifests/{}", self.base_url(image), image.reference);
        let response = self
            .send(image, true, |http| {
                http.put(&url)
                    .header(CONTENT_TYPE, manifest.media_type.as_str())
                    .body(manifest.bytes.clone())
            })
            .await?;
        let status = response.status();
        let digest = header(response.headers(), "docker-content-digest");
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(RegistryError::ManifestPut {
                reference: image.to_string(),
                status,
                body: short_body(&body),
            });
        }
        Ok(digest.unwrap_or_else(|| manifest.digest.clone()))
    }

    /// Sends a request, answering one authentication challenge if the registry asks.
    async fn send(
        &self,
        image: &ImageRef,
        push: bool,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RegistryError> {
        let key = (image.registry.clone(), image.repository.clone());
        let known = self.authorizations.lock().await.get(&key).cloned();
        let mut builder = request(&self.http);
        if let Some(auth) = &known {
            builder = builder.header(AUTHORIZATION, auth);
        }
        let response = builder.send().await.map_err(|e| connect(image, &e))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge =
            header(response.headers(), WWW_AUTHENTICATE.as_str()).and_then(|h| parse_challenge(&h));
        let authorization = match challenge {
            Some(Challenge::Basic) => match self.credentials.get(&image.registry) {
                Some(c) => basic(c),
                None => return Ok(response),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: _,
            }) => {
                let actions = if push { "pull,push" } else { "pull" };
                let scope = format!("repository:{}:{actions}", image.repository);
                self.token(image, &realm, service.as_deref(), &scope)
                    .await?
            }
            None => return Ok(response),
        };
        let response = request(&self.http)
            .header(AUTHORIZATION, &authorization)
            .send()
            .await
            .map_err(|e| connect(image, &e))?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(RegistryError::Auth {
                registry: image.registry.clone(),
                status: response.status(),
            });
        }
        self.authorizations.lock().await.insert(key, authorization);
        Ok(response)
    }

    /// A Bearer token from the registry's token service.
    async fn token(
        &self,
        image: &ImageRef,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let mut url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Connect {
            registry: image.registry.clone(),
            message: format!("the token realm `{realm}` is not a URL: {e}"),
        })?;
        url.query_pairs_mut().append_pair("scope", scope);
        if let Some(service) = service {
            url.query_pairs_mut().append_pair("service", service);
        }
        let mut request = self.http.get(url);
        if let Some(c) = self.credentials.get(&image.registry) {
            request = request.header(AUTHORIZATION, basic(c));
        }
        let response = request.send().await.map_err(|e| connect(image, &e))?;
        if !response.status().is_success() {
            return Err(RegistryError::Auth {
                registry: image.registry.clone(),
                status: response.status(),
            });
        }
        let json: serde_json::Value = response.json().await.map_err(|e| connect(image, &e))?;
        let token = json["token"]
            .as_str()
            .or_else(|| json["access_token"].as_str())
            .unwrap_or_default();
        Ok(format!("Bearer {token}"))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        .filter(|v| !v.is_empty())
}

fn connect(image: &ImageRef, error: &reqwest::Error) -> RegistryError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    RegistryError::Connect {
        registry: image.registry.clone(),
        message,
    }
}

fn short_body(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> (String, String, String) {
        let r = ImageRef::parse(text).unwrap();
        (r.registry, r.repository, r.reference)
    }

    #[test]
    fn references_normalise_like_docker() {
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(parse("app"), t("docker.io", "library/app", "latest"));
        assert_eq!(parse("me/app:v1"), t("docker.io", "me/app", "v1"));
        assert_eq!(
            parse("127.0.0.1:5000/app"),
            t("127.0.0.1:5000", "app", "latest")
        );
        assert_eq!(
            parse("localhost/team/app:k8s-latest"),
            t("localhost", "team/app", "k8s-latest")
        );
        assert_eq!(
            parse("ghcr.io/o/app@sha256:abc"),
            t("ghcr.io", "o/app", "sha256:abc")
        );
        assert!(ImageRef::parse("Reg.io/App:v1").is_err());
        assert!(ImageRef::parse("a b").is_err());
        assert_eq!(
            ImageRef::parse("127.0.0.1:5000/app:v1")
                .unwrap()
                .to_string(),
            "127.0.0.1:5000/app:v1"
        );
        assert_eq!(
            ImageRef::parse("r.io/app@sha256:ab").unwrap().to_string(),
            "r.io/app@sha256:ab"
        );
        let pinned = ImageRef::parse("127.0.0.1:5000/shop/api:k8s-1a2b@sha256:ab").unwrap();
        assert_eq!(
            (pinned.repository.as_str(), pinned.reference.as_str()),
            ("shop/api", "sha256:ab")
        );
        assert_eq!(pinned.tag.as_deref(), Some("k8s-1a2b"));
        assert_eq!(
            pinned.to_string(),
            "127.0.0.1:5000/shop/api:k8s-1a2b@sha256:ab"
        );
        assert_eq!(
            pinned.with_reference("v2").to_string(),
            "127.0.0.1:5000/shop/api:v2"
        );
        assert!(ImageRef::parse("r.io/app:@sha256:ab").is_err());
    }

    #[test]
    fn digests_and_config_are_read_from_the_bytes() {
        let bytes = br#"{"schemaVersion":2,"config":{"digest":"sha256:c0"}}"#.to_vec();
        let m = Manifest {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: sha256_digest(&bytes),
            bytes,
        };
        assert_eq!(m.config_digest().as_deref(), Some("sha256:c0"));
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
