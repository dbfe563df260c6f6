//! Copying an image between repositories or registries: every blob the manifest names
//! (mounted from the source repository when both are on the same registry, else read and
//! uploaded), then the manifest's exact bytes, so the copy has the same digest.
//!
//! Blobs pass through memory one at a time (the images built here are small; a streaming
//! copy is the next step if that changes). A multi-platform index is not copied.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};

use super::{ImageRef, Manifest, RegistryClient, RegistryError, connect, sha256_digest};

impl Manifest {
    /// The blobs a single-image manifest names: its config, then its layers; `None` for an
    /// index (or bytes that are not a manifest).
    pub fn blobs(&self) -> Option<Vec<String>> {
        let json: serde_json::Value = serde_json::from_slice(&self.bytes).ok()?;
        if json.get("manifests").is_some() {
            return None;
        }
        let mut blobs = vec![json["config"]["digest"].as_str()?.to_string()];
        for layer in json["layers"].as_array()? {
            blobs.push(layer["digest"].as_str()?.to_string());
        }
        Some(blobs)
    }
}

impl RegistryClient {
    /// `docker tag FROM TO` + `docker push TO` for an image that is in a registry: the blobs
    /// go over when `to` is another repository, then the manifest bytes, so `to` has the same
    /// digest as `from`. Returns that digest.
    pub async fn copy_image(
        &self,
        from: &ImageRef,
        to: &ImageRef,
    ) -> Result<String, RegistryError> {
        let manifest = self.manifest(from).await?;
        if !from.same_repository(to) {
            let blobs = manifest.blobs().ok_or_else(|| RegistryError::Copy {
                from: from.to_string(),
                to: to.to_string(),
                message: "it is a multi-platform index, which is not copied; build with the target tag instead".to_string(),
            })?;
            for digest in blobs {
                self.copy_blob(from, to, &digest).await?;
            }
        }
        self.put_manifest(to, &manifest).await
    }

    /// One blob into `to`'s repository, unless it is there already.
    async fn copy_blob(
        &self,
        from: &ImageRef,
        to: &ImageRef,
        digest: &str,
    ) -> Result<(), RegistryError> {
        let failed = |message: String| RegistryError::Copy {
            from: from.to_string(),
            to: to.to_string(),
            message: format!("blob {digest}: {message}"),
        };
        let target = format!("{}/blobs/{digest}", self.base_url(to));
        let present = self.send(to, true, |http| http.head(&target)).await?;
        if present.status().is_success() {
            return Ok(());
        }
        let uploads = format!("{}/blobs/uploads/", self.base_url(to));
        let start = if from.registry == to.registry {
            format!("{uploads}?mount={digest}&from={}", from.repository)
        } else {
            uploads
        };
        let started = self
            .send(to, true, |http| http.post(&start).header(CONTENT_LENGTH, 0))
            .await?;
        match started.status() {
            // Mounted from the source repository: nothing to upload.
            StatusCode::CREATED => return Ok(()),
            StatusCode::ACCEPTED => {}
            status => return Err(failed(format!("starting the upload answered {status}"))),
        }
        let location = started
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| failed("the upload answer has no Location".to_string()))?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.origin(to))
        } else {
            location.to_string()
        };
        let source = format!("{}/blobs/{digest}", self.base_url(from));
        let blob = self.send(from, false, |http| http.get(&source)).await?;
        if !blob.status().is_success() {
            return Err(failed(format!("reading it answered {}", blob.status())));
        }
        let bytes = blob.bytes().await.map_err(|e| connect(from, &e))?;
        if digest.starts_with("sha256:") && sha256_digest(&bytes) != digest {
            return Err(failed("the bytes read do not match the digest".to_string()));
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let finish = format!("{location}{separator}digest={digest}");
        let done = self
            .send(to, true, |http| {
                http.put(&finish)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        if !done.status().is_success() {
            return Err(failed(format!("the upload answered {}", done.status())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn manifest(json: &str) -> Manifest {
        Manifest {
            media_type: String::new(),
            digest: sha256_digest(json.as_bytes()),
            bytes: json.as_bytes().to_vec(),
        }
    }

    #[test]
    fn blobs_are_the_config_then_the_layers_and_an_index_has_none() {
        let image = manifest(
            r#"{"config":{"digest":"sha256:c"},"layers":[{"digest":"sha256:l1"},{"digest":"sha256:l2"}]}"#,
        );
        assert_eq!(
            image.blobs(),
            Some(vec![
                "sha256:c".to_string(),
                "sha256:l1".to_string(),
                "sha256:l2".to_string()
            ])
        );
        assert_eq!(
            manifest(r#"{"manifests":[{"digest":"sha256:a"}]}"#).blobs(),
            None
        );
        assert_eq!(manifest("not json").blobs(), None);
    }
}
