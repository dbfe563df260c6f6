//! One container's life: start, supervise, restart with back-off, terminate.

use super::*;

/// How a container instance ended.
pub(super) enum End {
    Exited(i32),
    ProbeFailed,
    Stopped,
}

pub(super) fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
}

/// SIGTERM to the container's PID 1, SIGKILL after `grace`; the exit code.
pub(super) async fn terminate(child: &mut tokio::process::Child, grace: Duration) -> i32 {
    if let Some(pid) = child.id().and_then(child_of) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if let Ok(Ok(status)) = tokio::time::timeout(grace, child.wait()).await {
        return exit_code(status);
    }
    let _ = child.start_kill();
    child.wait().await.map(exit_code).unwrap_or(137)
}

/// Keeps one container going as its role and the pod's restart policy say; returns the
/// exit code it ended with for good.
pub(super) async fn supervise(
    ctx: Arc<Ctx>,
    spec: Value,
    role: Role,
    started_tx: watch::Sender<bool>,
) -> i32 {
    let name = spec["name"].as_str().unwrap_or_default().to_string();
    let pod_policy = ctx.pod["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always")
        .to_string();
    let restarts = |code: i32| match role {
        Role::Sidecar => true,
        Role::Init => pod_policy != "Never" && code != 0,
        Role::Ephemeral => false,
        Role::Main => match pod_policy.as_str() {
            "Always" => true,
            "OnFailure" => code != 0,
            _ => false,
        },
    };
    let grace_of = |v: &Value| Duration::from_secs(v.as_u64().unwrap_or(30));
    let pod_grace = grace_of(&ctx.pod["spec"]["terminationGracePeriodSeconds"]);
    let log = ctx.log_key(&name);
    let step = ctx.shared.options.kubelet_step;
    let mut instance = 0u32;
    let mut back_off: Option<Duration> = None;
    loop {
        let Some(image) = ensure_image(&ctx, &spec, role).await else {
            return 137;
        };
        let mut reported: Option<String> = None;
        let env = loop {
            match container_env(&ctx, &spec, image.as_ref()) {
                Ok(env) => break env,
                Err(msg) => {
                    if reported.as_deref() != Some(msg.as_str()) {
                        ctx.event(role, &name, true, "Failed", &format!("Error: {msg}"));
                        ctx.waiting(&name, "CreateContainerConfigError", Some(&msg));
                        reported = Some(msg);
                    }
                    if !pause(&ctx, step * 4).await {
                        return 137;
                    }
                }
            }
        };
        let argv = argv(&spec, image.as_ref(), &env);
        if argv.is_empty() {
            let msg = if image.is_none() {
                format!(
                    "failed to generate container spec: no command specified (the fake kubelet knows no Entrypoint or Cmd of \"{}\": it is not on a loopback registry)",
                    spec["image"].as_str().unwrap_or_default()
                )
            } else {
                "failed to generate container spec: no command specified".to_string()
            };
            ctx.event(role, &name, true, "Failed", &format!("Error: {msg}"));
            ctx.waiting(&name, "CreateContainerError", Some(&msg));
            ctx.stop.cancelled().await;
            return 128;
        }
        let working_dir = spec["workingDir"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                image
                    .as_ref()
                    .map(|i| i.working_dir.clone())
                    .filter(|w| !w.is_empty())
            })
            .unwrap_or_else(|| "/".to_string());
        let mut mounts = Vec::new();
        for vm in spec["volumeMounts"].as_array().into_iter().flatten() {
            let Some(host) = vm["name"].as_str().and_then(|v| ctx.volumes.get(v)) else {
                continue;
            };
            let host = match vm["subPath"].as_str().filter(|s| !s.is_empty()) {
                Some(sub) => {
                    let p = host.join(sub);
                    let _ = std::fs::create_dir_all(&p);
                    p
                }
                None => host.clone(),
            };
            mounts.push((host, vm["mountPath"].as_str().unwrap_or("/").to_string()));
        }
        instance += 1;
        if instance > 1 {
            shared_logs_rotate(&ctx, &log);
        }
        let start = Start {
            name: name.clone(),
            instance,
            root: match &image {
                Some(i) => RootKind::Image(i.rootfs.clone()),
                None => RootKind::Host,
            },
            mounts,
            argv,
            env,
            working_dir,
        };
        let container_id = format!("containerd://{}-{name}-{instance}", ctx.uid());
        let started_at = now();
        let (end, mut child_opt) = match ctx.sandbox.start(&start).await {
            Err(e) => {
                ctx.event(role, &name, true, "Failed", &format!("Error: {e}"));
                (End::Exited(128), None)
            }
            Ok((child, _)) => (End::Stopped, Some(child)),
        };
        let mut end = end;
        if let Some(child) = child_opt.as_mut() {
            ctx.shared.logs.append(&log, b"");
            let mut pumps = Vec::new();
            for stream in [
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            ] {
                let shared = Arc::clone(&ctx.shared);
                let log = log.clone();
                pumps.push(tokio::spawn(
                    async move { pump(&shared, &log, stream).await },
                ));
            }
            ctx.event(
                role,
                &name,
                false,
                "Created",
                &format!("Created container: {name}"),
            );
            ctx.event(
                role,
                &name,
                false,
                "Started",
                &format!("Started container {name}"),
            );
            // An ephemeral container has no probes (the API server forbids them).
            let probe = spec
                .get("startupProbe")
                .filter(|p| p.is_object() && role != Role::Ephemeral)
                .cloned();
            let image_id = image.as_ref().map(|i| i.id.clone()).unwrap_or_default();
            let restart_count = instance - 1;
            let cid = container_id.clone();
            let at = started_at.clone();
            ctx.update(&name, |s| {
                s.state = json!({"running": {"startedAt": at}});
                s.container_id = Some(cid);
                s.image_id = image_id;
                s.restart_count = restart_count;
                s.started = probe.is_none();
                s.ready = probe.is_none() && role != Role::Ephemeral;
            });
            if probe.is_none() {
                let _ = started_tx.send(true);
            }
            if role == Role::Main {
                let mut state = lock(&ctx.state);
                if state.phase == "Pending" {
                    state.phase = "Running";
                }
            }
            ctx.publish();
            let probing = async {
                match &probe {
                    None => std::future::pending::<()>().await,
                    Some(p) => {
                        if startup_probe(&ctx, &spec, p, role).await {
                            ctx.update(&name, |s| {
                                s.started = true;
                                s.ready = true;
                            });
                            let _ = started_tx.send(true);
                            std::future::pending::<()>().await;
                        }
                    }
                }
            };
            end = tokio::select! {
                status = child.wait() => End::Exited(status.map(exit_code).unwrap_or(137)),
                () = probing => End::ProbeFailed,
                _ = ctx.stop.cancelled() => End::Stopped,
            };
            let code = match end {
                End::Exited(code) => code,
                End::ProbeFailed => {
                    ctx.event(
                        role,
                        &name,
                        false,
                        "Killing",
                        &format!("Container {name} failed startup probe, will be restarted"),
                    );
                    let grace = spec["startupProbe"]
                        .get("terminationGracePeriodSeconds")
                        .map_or(pod_grace, grace_of);
                    terminate(child, grace).await
                }
                End::Stopped => {
                    ctx.event(
                        role,
                        &name,
                        false,
                        "Killing",
                        &format!("Stopping container {name}"),
                    );
                    terminate(child, pod_grace).await
                }
            };
            for p in pumps {
                let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
            }
            // The instance ended: its log is whole, and a follower stops at its end, as the
            // kubelet's log reader stops following a container that is no longer running.
            ctx.shared.logs.finish(&log);
            ctx.sandbox.stopped(&name, child.id().unwrap_or_default());
            end = match end {
                End::Stopped => End::Stopped,
                _ => End::Exited(code),
            };
            let terminated = json!({"terminated": {
                "exitCode": code,
                "reason": if code == 0 { "Completed" } else { "Error" },
                "startedAt": started_at, "finishedAt": now(),
                "containerID": container_id,
            }});
            ctx.update(&name, |s| {
                s.state = terminated;
                s.started = false;
                s.ready = false;
            });
            if matches!(end, End::Stopped) {
                return code;
            }
        }
        let code = match end {
            End::Exited(c) => c,
            _ => 137,
        };
        if ctx.stop.is_cancelled() || !restarts(code) {
            return code;
        }
        // The terminated instance becomes the last state; the next one starts at once the
        // first time, after a doubling back-off after that.
        ctx.update(&name, |s| s.last_state = s.state.clone());
        if let Some(d) = back_off {
            let message = format!(
                "back-off {} restarting failed container={name} pod={}",
                go_duration(d),
                ctx.pod_name()
            );
            ctx.event(
                role,
                &name,
                true,
                "BackOff",
                &format!(
                    "Back-off restarting failed container {name} in pod {}",
                    ctx.pod_name()
                ),
            );
            ctx.waiting(&name, "CrashLoopBackOff", Some(&message));
            if !pause(&ctx, d).await {
                return code;
            }
        }
        back_off = Some(back_off.map_or(ctx.back_off_start(), |d| (d * 2).min(MAX_BACK_OFF)));
    }
}

pub(super) fn shared_logs_rotate(ctx: &Ctx, log: &LogKey) {
    ctx.shared.logs.rotate(log);
}
