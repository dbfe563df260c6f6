//! Pulling a container's image as the kubelet's image manager does (`Pulling`, `Pulled`,
//! `ErrImagePull`, `ImagePullBackOff`), with the pod's pull Secrets.

use super::*;

/// The image a container runs from: `Some(None)` for an image not on a loopback registry
/// (the host's folders), `None` when the pod ended while pulling.
pub(super) async fn ensure_image(ctx: &Ctx, spec: &Value, role: Role) -> Option<Option<Image>> {
    let name = spec["name"].as_str().unwrap_or_default();
    let image = spec["image"].as_str().unwrap_or_default().to_string();
    let step = ctx.shared.options.kubelet_step;
    let mut back_off = ctx.back_off_start();
    let Some(reference) = loopback_reference(&image) else {
        let mut reported = false;
        while ctx.shared.faults().image_pull_failure {
            let msg =
                format!("failed to pull and unpack image \"{image}\": not found (injected fault)");
            if !reported {
                ctx.event(
                    role,
                    name,
                    true,
                    "Failed",
                    &format!("Failed to pull image \"{image}\": not found (injected fault)"),
                );
                ctx.event(role, name, true, "Failed", "Error: ErrImagePull");
                reported = true;
            }
            ctx.waiting(name, "ErrImagePull", Some(&msg));
            if !pause(ctx, step).await {
                return None;
            }
        }
        ctx.event(
            role,
            name,
            false,
            "Pulled",
            &format!("Container image \"{image}\" already present on machine"),
        );
        return Some(None);
    };
    let policy = spec["imagePullPolicy"]
        .as_str()
        .unwrap_or("IfNotPresent")
        .to_string();
    loop {
        let cached = lock(&ctx.shared.images).get(&reference.full).cloned();
        if policy != "Always"
            && let Some(img) = cached
        {
            ctx.event(
                role,
                name,
                false,
                "Pulled",
                &format!("Container image \"{image}\" already present on machine"),
            );
            return Some(Some(img));
        }
        if policy == "Never" {
            let msg =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            ctx.event(role, name, true, "ErrImageNeverPull", &msg);
            ctx.waiting(name, "ErrImageNeverPull", Some(&msg));
            if !pause(ctx, back_off).await {
                return None;
            }
            continue;
        }
        ctx.event(
            role,
            name,
            false,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        );
        let credentials = pull_credentials(ctx, &reference.registry);
        let started = Instant::now();
        let pulled = tokio::select! {
            r = images::pull(&ctx.shared.work_dir, &reference, credentials) => r,
            _ = ctx.stop.cancelled() => return None,
        };
        match pulled {
            Ok(img) => {
                let took = go_duration(Duration::from_millis(started.elapsed().as_millis() as u64));
                ctx.event(
                    role,
                    name,
                    false,
                    "Pulled",
                    &format!(
                        "Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {} bytes.",
                        img.size
                    ),
                );
                lock(&ctx.shared.images).insert(reference.full.clone(), img.clone());
                return Some(Some(img));
            }
            Err(msg) => {
                ctx.event(
                    role,
                    name,
                    true,
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {msg}"),
                );
                ctx.event(role, name, true, "Failed", "Error: ErrImagePull");
                ctx.waiting(name, "ErrImagePull", Some(&msg));
                // The next sync finds the image in back-off.
                if !pause(ctx, (step * 4).min(back_off)).await {
                    return None;
                }
                let backing = format!("Back-off pulling image \"{image}\"");
                ctx.event(role, name, false, "BackOff", &backing);
                ctx.event(role, name, true, "Failed", "Error: ImagePullBackOff");
                ctx.waiting(name, "ImagePullBackOff", Some(&backing));
                if !pause(ctx, back_off).await {
                    return None;
                }
                back_off = (back_off * 2).min(MAX_BACK_OFF);
            }
        }
    }
}

/// The credentials the pod's `imagePullSecrets` hold for `registry`, in their order; a
/// missing Secret is a `FailedToRetrieveImagePullSecret` event on the stored pod.
pub(super) fn pull_credentials(ctx: &Ctx, registry: &str) -> Vec<images::Credentials> {
    let (found, missing) = images::pull_secret_credentials(&ctx.shared, &ctx.pod, registry);
    if !missing.is_empty() {
        let pod = ctx
            .shared
            .read(|s| s.get(&ctx.key).cloned())
            .unwrap_or_default();
        images::record_missing_pull_secrets(&ctx.shared, &pod, &missing);
    }
    found
}
