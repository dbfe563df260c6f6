//! The `pods/{name}/ephemeralcontainers` subresource, as kubernetes/kubernetes serves it
//! since the subresource takes a whole Pod (KEP-277, Kubernetes 1.22+;
//! pkg/registry/core/pod/storage/storage.go `EphemeralContainersREST`,
//! pkg/registry/core/pod/strategy.go `podEphemeralContainersStrategy`):
//!
//! - `GET` returns the pod; `PUT` takes a pod, `PATCH` a patch of the pod (strategic
//!   merge, merge key `name` on `spec.ephemeralContainers`; JSON merge patch; JSON patch);
//!   both answer with the stored pod.
//! - `PrepareForUpdate` (`dropNonEphemeralContainerUpdates`) keeps everything of the
//!   stored pod but `spec.ephemeralContainers`: whatever else the body changes is dropped.
//!   The new containers get the container defaults (`SetDefaults_EphemeralContainer`).
//! - `ValidateUpdate` (`ValidatePodEphemeralContainersUpdate`, pkg/apis/core/validation/
//!   validation.go at 000f26050b9be6fb3d79fae95e06b47fc96128cd): the whole spec, the
//!   ephemeral containers' own rules (no ports, probes, lifecycle, resources, no
//!   `subPath`), and no existing ephemeral container removed or changed; a 422 `Invalid`
//!   otherwise (see `pod_validation`).
//! - A `resourceVersion` in the body is a precondition (409 `Conflict`).
//!
//! RBAC: `get`, `update` and `patch` on `pods/ephemeralcontainers` (the router checks the
//! deny rules). The API server adds containers to a pod in any phase; the kubelet starts
//! them only in a pod it still runs, and only in pods of the container manager
//! (`containers`; the Kaniko and shell pods of `kubelet` never start them).
//!
//! Not modelled: server-side apply on the subresource (415), the mirror-pod rule ("static
//! pods do not support ephemeral containers"), metadata update checks.

use std::sync::Arc;

use axum::http::Method;
use axum::response::Response;
use serde_json::json;

use super::api::ApiError;
use super::routes::{Call, Target, json_response};
use super::verbs::{
    PATCH_TYPES, apply_patch, default_container, dry_run, media_type, patch_body, put_body,
    record_manifest, sets_resource_version,
};
use super::{Shared, pod_validation};

/// `PUT` or `PATCH` of the subresource.
pub(crate) fn write(
    shared: &Arc<Shared>,
    target: &Target,
    call: &Call,
) -> Result<Response, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    let old = shared
        .read(|s| s.get(&target.key()).cloned())
        .ok_or_else(|| ApiError::not_found(target.rt, name))?;
    let sent = if call.method == Method::PUT {
        let body = put_body(call, name)?;
        if !dry_run(call) {
            record_manifest(shared, &body);
        }
        body
    } else {
        let ct = media_type(call);
        if !PATCH_TYPES.contains(&ct) {
            return Err(ApiError::unsupported_media_type(ct));
        }
        let body = patch_body(call, ct)?;
        let mut patched = apply_patch(ct, &old, &body)?;
        if !sets_resource_version(&body) {
            patched["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        }
        patched
    };
    if let Some(rv) = sent["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(target.rt, name));
    }
    let mut new = old.clone();
    match sent["spec"]["ephemeralContainers"].as_array() {
        Some(list) if !list.is_empty() => {
            let mut list = list.clone();
            for c in &mut list {
                default_container(c);
            }
            new["spec"]["ephemeralContainers"] = json!(list);
        }
        _ => {
            if let Some(spec) = new["spec"].as_object_mut() {
                spec.remove("ephemeralContainers");
            }
        }
    }
    let errors = pod_validation::validate_ephemeral_update(&new, &old);
    if !errors.is_empty() {
        return Err(pod_validation::invalid_error(target.rt, name, &errors));
    }
    if dry_run(call) {
        return Ok(json_response(200, &new));
    }
    let stored = shared
        .write(|s| s.replace(&target.key(), new))
        .ok_or_else(|| ApiError::not_found(target.rt, name))?;
    Ok(json_response(200, &stored))
}
