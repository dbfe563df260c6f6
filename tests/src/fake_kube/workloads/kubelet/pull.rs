//! Image pulls as pkg/kubelet/images/image_manager.go makes them: the pull policy, the
//! node's images, `Pulling`/`Pulled`/`Failed`/`BackOff` and the back-off between pulls.

use super::*;

/// The image of a container, pulled as its policy says; `None` when the pod stopped.
pub(super) async fn ensure_image(sim: &Sim, spec: &Value, role: Role) -> Option<Inspected> {
    let name = spec["name"].as_str().unwrap_or_default();
    let image = spec["image"].as_str().unwrap_or_default().to_string();
    let policy = spec["imagePullPolicy"].as_str().unwrap_or("IfNotPresent");
    let known = images::containerd_name(&image);
    let step = sim.shared.options.kubelet_step;
    let mut back_off = sim.shared.options.image_pull_back_off;
    loop {
        let cached = node_images(&sim.shared).get(&known).cloned();
        if policy != "Always"
            && let Some(img) = cached
        {
            let msg = format!("Container image \"{image}\" already present on machine");
            sim.event(role, name, false, "Pulled", &msg);
            return Some(img);
        }
        if policy == "Never" {
            let msg =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            sim.event(role, name, true, "ErrImageNeverPull", &msg);
            sim.waiting(name, "ErrImageNeverPull", &msg);
            if !sim.pause(back_off).await {
                return None;
            }
            continue;
        }
        sim.event(
            role,
            name,
            false,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        );
        let started = Instant::now();
        let pulled = tokio::select! {
            r = images::inspect(&sim.shared, &sim.pod, &image) => r,
            () = sim.stop.cancelled() => return None,
        };
        match pulled {
            Ok(img) => {
                let took = go_duration(Duration::from_millis(started.elapsed().as_millis() as u64));
                let msg = format!(
                    "Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {} bytes.",
                    img.size
                );
                sim.event(role, name, false, "Pulled", &msg);
                node_images(&sim.shared).insert(known.clone(), img.clone());
                return Some(img);
            }
            Err(err) => {
                sim.event(
                    role,
                    name,
                    true,
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {err}"),
                );
                sim.event(role, name, true, "Failed", "Error: ErrImagePull");
                sim.waiting(name, "ErrImagePull", &err);
                // The next sync finds the image in back-off.
                if !sim.pause((step * 4).min(back_off)).await {
                    return None;
                }
                let backing = format!("Back-off pulling image \"{image}\"");
                sim.event(role, name, false, "BackOff", &backing);
                sim.event(role, name, true, "Failed", "Error: ImagePullBackOff");
                sim.waiting(
                    name,
                    "ImagePullBackOff",
                    &format!("{backing}: ErrImagePull: {err}"),
                );
                if !sim.pause(back_off).await {
                    return None;
                }
                back_off = (back_off * 2).min(MAX_BACK_OFF);
            }
        }
    }
}
