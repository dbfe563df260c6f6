//! Whether a registry has an image, and which digest a reference points at, asked the way
//! `kubectl`-side preflights and `crane digest` ask: `HEAD /v2/<name>/manifests/<reference>`
//! with every manifest type in `Accept`, the digest read from `Docker-Content-Digest`.
//!
//! A `404` says nothing of which part is missing, and distribution answers a manifest of an
//! unknown repository with `MANIFEST_UNKNOWN` too (docker-registry 2.8); so the repository's
//! tag list is asked next (`GET /v2/<name>/tags/list`): `404` (`NAME_UNKNOWN`) means no
//! such repository, a list means no such tag, and the tags it has go into the message
//! (the OCI distribution-spec's "Listing Tags" and "Error Codes").

use reqwest::StatusCode;
use reqwest::header::ACCEPT;

use super::{ImageRef, MANIFEST_ACCEPT, RegistryClient, RegistryError, header};

/// What the registry answered for one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The reference resolves to this manifest digest (`sha256:…`).
    Present { digest: String },
    /// The registry answered 404; `tags` are those the repository has (sorted, at most
    /// [`TAGS_SHOWN`]), empty when it does not exist.
    Missing { absence: Absence, tags: Vec<String> },
}

/// How many of a repository's tags a missing-tag answer carries.
pub const TAGS_SHOWN: usize = 10;

/// Which part of a reference the registry does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// `NAME_UNKNOWN`: no image was ever pushed under this name.
    Repository,
    /// `MANIFEST_UNKNOWN`: the repository exists, the tag (or digest) does not.
    Tag,
    /// A 404 without a code the spec names.
    Unknown,
}

impl Absence {
    /// `no such repository`, `no such tag`, `not found`: for one-line reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Absence::Repository => "no such repository",
            Absence::Tag => "no such tag",
            Absence::Unknown => "not found",
        }
    }
}

impl RegistryClient {
    /// The digest `image` resolves to, or which part of it the registry lacks. A digest
    /// reference (`name:tag@sha256:…`) is looked up by its digest, as a kubelet pulls it.
    pub async fn resolve(&self, image: &ImageRef) -> Result<Presence, RegistryError> {
        let url = format!("{}/manifests/{}", self.base_url(image), image.reference);
        let response = self
            .send(image, false, |http| {
                http.head(&url).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let status = response.status();
        if status.is_success() {
            if let Some(digest) = header(response.headers(), "docker-content-digest") {
                return Ok(Presence::Present { digest });
            }
            // A registry that leaves the header out: hash the manifest's bytes instead.
            let manifest = self.manifest(image).await?;
            return Ok(Presence::Present {
                digest: manifest.digest,
            });
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            // No credentials for it (a challenge `send` could not answer), or refused ones.
            return Err(RegistryError::Auth {
                registry: image.registry.clone(),
                status,
            });
        }
        if status != StatusCode::NOT_FOUND {
            return Err(RegistryError::ManifestGet {
                reference: image.to_string(),
                status,
                body: String::new(),
            });
        }
        let tags_url = format!("{}/tags/list", self.base_url(image));
        let response = self.send(image, false, |http| http.get(&tags_url)).await?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let mut tags: Vec<String> = json["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
            tags.sort();
            tags.truncate(TAGS_SHOWN);
            return Ok(Presence::Missing {
                absence: Absence::Tag,
                tags,
            });
        }
        let absence = match absence(&body) {
            Absence::Unknown if status == StatusCode::NOT_FOUND => Absence::Repository,
            other => other,
        };
        Ok(Presence::Missing {
            absence,
            tags: Vec::new(),
        })
    }
}

/// The first error code of a registry's error body (`{"errors":[{"code":…}]}`).
fn absence(body: &[u8]) -> Absence {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let codes = json["errors"].as_array().into_iter().flatten();
    for error in codes {
        match error["code"].as_str() {
            Some("NAME_UNKNOWN") => return Absence::Repository,
            Some("MANIFEST_UNKNOWN") => return Absence::Tag,
            _ => {}
        }
    }
    Absence::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_say_which_part_is_missing() {
        let name = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"shop/x"}}]}"#;
        assert_eq!(absence(name), Absence::Repository);
        let tag = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert_eq!(absence(tag), Absence::Tag);
        assert_eq!(absence(b""), Absence::Unknown);
    }
}
