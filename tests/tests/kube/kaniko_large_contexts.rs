//! Contexts too large for a ConfigMap, through the Kaniko builder against the fake
//! Kubernetes API server: a PVC filled by the loader pod over `pods/attach` (whose
//! `sha256sum -c` runs for real), Kaniko reading `tar://stdin` over attach, the size error
//! when no configured mode fits, and cancel while the loader pod waits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::fake_kube::{FakeKubeOptions, validate_manifests};
use hr_image::BuildError;
use hr_image::kaniko::{CONFIGMAP_BUDGET_BYTES, ContextMode, KanikoConfig, ManifestError, Variant};
use tokio_util::sync::CancellationToken;

use harness::kaniko::*;

/// Bytes of the incompressible file that makes a context too large for a ConfigMap.
const LARGE: usize = 2 << 20;

/// `len` pseudo-random bytes (xorshift64*): gzip cannot shrink them.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A dual-build context with a 2 MiB incompressible file both Dockerfiles copy.
fn large_context(rig: &Rig, name: &str) -> PathBuf {
    let ctx = rig.context(
        name,
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY hello.txt /hello.txt\nCOPY blob.bin /blob.bin\n",
            ),
            (
                "Dockerfile.k8s",
                "FROM scratch\nCOPY hello.txt /hello-k8s.txt\nCOPY blob.bin /blob.bin\n",
            ),
            ("hello.txt", "a large context\n"),
        ],
    );
    std::fs::write(ctx.join("blob.bin"), noise(LARGE, name.len() as u64)).unwrap();
    ctx
}

/// Builds the large dual context under `config` and checks the five tags against the
/// reported digests, that no namespace is left and that every manifest sent is valid.
fn build_large_and_check(
    rig: &Rig,
    config: KanikoConfig,
    name: &str,
) -> (hr_image::kaniko::BuildTimings, Vec<hr_image::BuildLogLine>) {
    let ctx = large_context(rig, name);
    let image = rig.image(name);
    let job = rig.job(&ctx, &image, &Variant::ALL);
    let (result, lines) = build(rig, config, &job, CancellationToken::new());
    let (outcome, timings) = result.unwrap_or_else(|e| panic!("build failed: {e}\n{lines:#?}"));
    println!(
        "{name}: {} bytes packed; packed after {:?}, context loaded after {:?}, jobs created after {:?}, finished after {:?}",
        timings.context_bytes,
        timings.packed,
        timings.context_loaded,
        timings.jobs_created,
        timings.finished
    );
    assert!(
        timings.context_bytes > CONFIGMAP_BUDGET_BYTES as u64,
        "{timings:?}"
    );

    let mut tags = rig.registry.tags(name);
    tags.sort();
    let expected = harness::registry::five_dual_tags(SHA);
    assert_eq!(tags, expected);
    assert_eq!(outcome.images.len(), 2);
    for built in &outcome.images {
        assert!(built.digest.starts_with("sha256:"), "{built:?}");
        for tag in &built.tags {
            let tag = tag.rsplit(':').next().unwrap();
            assert_eq!(
                rig.registry.digest(name, tag).as_deref(),
                Some(built.digest.as_str()),
                "tag {tag}"
            );
        }
    }
    assert_ne!(outcome.images[0].digest, outcome.images[1].digest);
    for variant in Variant::ALL {
        assert!(
            lines.iter().any(|l| l.variant == Some(variant)),
            "no log line of {variant}: {lines:?}"
        );
    }
    // No ConfigMap carried the context.
    let requests = rig.fake.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/configmaps")),
        "a ConfigMap was sent"
    );
    rig.assert_no_namespace_left();
    validate_manifests(&rig.fake.sent_manifests());
    (timings, lines)
}

fn attaches(rig: &Rig) -> Vec<String> {
    rig.fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/attach"))
        .map(|r| r.path)
        .collect()
}

#[test]
fn a_large_context_builds_from_a_pvc_the_loader_pod_filled_over_attach() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    // context_mode auto, large contexts to a PVC: the defaults.
    let config = rig.config();
    assert_eq!(config.context_mode, ContextMode::Auto);
    let (timings, lines) = build_large_and_check(&rig, config, "pvc");
    assert!(
        lines.iter().any(|l| l.variant.is_none()
            && l.line
                .contains("in the volume build-context, its sha256 checked")),
        "{lines:#?}"
    );
    let loaded = timings.context_loaded.expect("the loader reported");
    assert!(loaded <= timings.jobs_created, "{timings:?}");

    let attached = attaches(&rig);
    assert_eq!(attached.len(), 1, "{attached:?}");
    assert!(attached[0].ends_with("/pods/context-loader/attach"));
    let requests = rig.fake.requests();
    let posted = |suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(posted("/persistentvolumeclaims"), 1);
    assert_eq!(posted("/pods"), 1);
    assert_eq!(posted("/jobs"), 2);
    // The loader was deleted once it had verified the upload, before the namespace went.
    assert!(
        requests
            .iter()
            .any(|r| r.method == "DELETE" && r.path.ends_with("/pods/context-loader")),
        "the loader pod was not deleted"
    );
    // The Jobs mount the claim and read the tarball from it.
    let job = rig
        .fake
        .sent_manifests()
        .into_iter()
        .find(|m| m["kind"] == "Job" && m["metadata"]["name"] == "kaniko-docker");
    let job = job.unwrap();
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "build-context"
    );
    assert!(
        pod["containers"][0]["args"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                "--context=tar:///context/context.tar.gz"
            ))
    );
}

#[test]
fn a_large_context_builds_from_stdin_when_configured() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let config = KanikoConfig {
        context_mode: ContextMode::Stdin,
        ..rig.config()
    };
    let (timings, _) = build_large_and_check(&rig, config, "stdin");
    assert_eq!(timings.context_loaded, None);
    let attached = attaches(&rig);
    assert_eq!(attached.len(), 2, "one attach per Kaniko pod: {attached:?}");
    for path in &attached {
        assert!(path.contains("/pods/kaniko-"), "{path}");
    }
    let requests = rig.fake.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/persistentvolumeclaims"))
    );
    for job in rig
        .fake
        .sent_manifests()
        .into_iter()
        .filter(|m| m["kind"] == "Job")
    {
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["stdin"], true);
        assert_eq!(container["stdinOnce"], true);
        assert!(
            container["args"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("--context=tar://stdin"))
        );
    }
}

/// On an API server that speaks only `v4.channel.k8s.io` (Kubernetes 1.29 and older, or
/// the v5 gate off) there is no close of the stdin channel: the client ends a `stdinOnce`
/// attach's input by closing the WebSocket, and the kubelet closes the container's stdin
/// only then (the fake does the same). Kaniko's `tar://stdin` and the PVC loader must
/// still get their whole context and its EOF; bounded, as a wait for an EOF that never
/// comes would hang.
#[test]
fn contexts_upload_over_the_v4_attach_protocol() {
    let Some(rig) = rig(FakeKubeOptions {
        stream_protocols: vec![harness::fake_kube::V4_CHANNEL.to_string()],
        ..FakeKubeOptions::default()
    }) else {
        return;
    };
    let rig = std::sync::Arc::new(rig);
    for mode in [ContextMode::Stdin, ContextMode::Pvc] {
        let config = KanikoConfig {
            context_mode: mode,
            ..rig.config()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = rig.clone();
        let name = format!("v4-{}", mode.as_str());
        std::thread::spawn(move || {
            let result = build_large_and_check(&shared, config, &name);
            let _ = tx.send(result.0.context_loaded);
        });
        let loaded = rx
            .recv_timeout(Duration::from_secs(180))
            .unwrap_or_else(|e| panic!("{}: no build in 180 s over v4: {e}", mode.as_str()));
        assert_eq!(
            loaded.is_some(),
            mode == ContextMode::Pvc,
            "{}",
            mode.as_str()
        );
    }
    let attached = attaches(&rig);
    assert_eq!(
        attached.len(),
        3,
        "two Kaniko pods, one loader: {attached:?}"
    );
}

#[test]
fn a_large_context_in_configmap_mode_fails_naming_the_size_and_the_limit() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = large_context(&rig, "forced");
    let job = rig.job(&ctx, &rig.image("forced"), &[Variant::Docker]);
    let config = KanikoConfig {
        context_mode: ContextMode::ConfigMap,
        ..rig.config()
    };
    let (result, _) = build(&rig, config, &job, CancellationToken::new());
    let message = match result {
        Err(BuildError::Manifests(ManifestError::ContextTooLarge(message))) => message,
        other => panic!("expected ContextTooLarge, got {other:?}"),
    };
    assert!(message.contains("context_mode configmap"), "{message}");
    // 2 MiB of noise does not shrink when gzipped, and is stored rather than grown.
    assert!(message.contains(" is 2.0 MiB packed"), "{message}");
    assert!(message.contains("bytes of data"), "{message}");
    assert!(
        message.contains(&format!("{CONFIGMAP_BUDGET_BYTES} bytes")),
        "{message}"
    );
    // Nothing was created.
    assert!(
        !rig.fake.requests().iter().any(|r| r.method == "POST"),
        "{:?}",
        rig.fake.requests()
    );

    // Auto mode with a PVC smaller than the context: both limits named.
    let mut config = rig.config();
    config.pvc.size_bytes = 1 << 20;
    let (result, _) = build(&rig, config, &job, CancellationToken::new());
    let message = match result {
        Err(e @ BuildError::Manifests(ManifestError::ContextTooLarge(_))) => e.to_string(),
        other => panic!("expected ContextTooLarge, got {other:?}"),
    };
    assert!(message.contains("context_mode auto"), "{message}");
    assert!(
        message.contains("context_mode pvc holds at most 1.0 MiB (1048576 bytes"),
        "{message}"
    );
    rig.assert_no_namespace_left();
}

#[test]
fn cancel_while_the_loader_pod_waits_deletes_the_namespace() {
    let Some(rig) = stuck_rig() else {
        return;
    };
    let ctx = large_context(&rig, "cancelled");
    let job = rig.job(&ctx, &rig.image("cancelled"), &[Variant::Docker]);
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    let loader_seen = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while rig.fake.objects("Pod", None).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let seen = !rig.fake.objects("Pod", None).is_empty();
            std::thread::sleep(Duration::from_millis(200));
            canceller.cancel();
            seen
        });
        let (result, _) = build(&rig, rig.config(), &job, cancel);
        assert!(
            matches!(result, Err(BuildError::Cancelled)),
            "expected Cancelled, got {result:?}"
        );
        watcher.join().unwrap()
    });
    assert!(loader_seen, "the loader pod was created before the cancel");
    assert!(
        rig.fake.objects("Job", None).is_empty(),
        "no Job was created"
    );
    rig.assert_no_namespace_left();
}

#[test]
fn a_corrupted_upload_is_caught_by_the_loaders_checksum() {
    let mut options = FakeKubeOptions::default();
    options.faults.corrupt_uploads = 1;
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = large_context(&rig, "corrupt");
    let job = rig.job(&ctx, &rig.image("corrupt"), &Variant::ALL);
    let (result, _) = build(&rig, rig.config(), &job, CancellationToken::new());
    let message = match result {
        Err(BuildError::Unavailable { builder, message }) => {
            assert_eq!(builder, "kaniko");
            message
        }
        other => panic!("expected the loader to fail, got {other:?}"),
    };
    assert!(
        message.contains("the context loader pod context-loader failed (exit code 1)"),
        "{message}"
    );
    // sha256sum -c said so, and the error names what was sent.
    assert!(message.contains("FAILED"), "{message}");
    assert!(message.contains("corrupted on the way"), "{message}");
    // No Job ran on the corrupt context; nothing was pushed; nothing is left.
    assert!(
        !rig.fake
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/jobs"))
    );
    assert!(rig.registry.tags("corrupt").is_empty());
    rig.assert_no_namespace_left();
}

#[test]
fn stdin_mode_without_the_attach_permission_fails_with_the_remedy() {
    let mut options = FakeKubeOptions::default();
    options
        .faults
        .deny
        .push(harness::fake_kube::DenyRule::new("create", "pods/attach"));
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = large_context(&rig, "denied");
    let job = rig.job(&ctx, &rig.image("denied"), &[Variant::Docker]);
    let config = KanikoConfig {
        context_mode: ContextMode::Stdin,
        ..rig.config()
    };
    let (result, _) = build(&rig, config, &job, CancellationToken::new());
    let message = match result {
        Err(BuildError::Unavailable { message, .. }) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    };
    assert!(
        message.contains("cannot attach to the pod kaniko-docker-"),
        "{message}"
    );
    assert!(message.contains("HTTP 403"), "{message}");
    assert!(
        message.contains("get and create on pods/attach (`hybrid-runner check`)"),
        "{message}"
    );
    assert!(rig.registry.tags("denied").is_empty());
    rig.assert_no_namespace_left();
}

/// Upload throughput through the fake's attach (kube-rs WebSocket, 64 KiB writes) for a
/// 32 MiB incompressible context, PVC and stdin; run with
/// `cargo test -p hybrid-runner-tests --test kube -- --ignored --nocapture measure_upload_time`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_upload_time_of_a_32_mib_context() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let ctx = rig.context(
        "measure",
        &[
            ("Dockerfile", "FROM scratch\nCOPY hello.txt /hello.txt\n"),
            ("hello.txt", "x\n"),
        ],
    );
    std::fs::write(ctx.join("blob.bin"), noise(32 << 20, 7)).unwrap();
    for mode in [ContextMode::Pvc, ContextMode::Stdin] {
        let job = rig.job(&ctx, &rig.image("measure"), &[Variant::Docker]);
        let config = KanikoConfig {
            context_mode: mode,
            ..rig.config()
        };
        let (result, _) = build(&rig, config, &job, CancellationToken::new());
        let (_, t) = result.unwrap_or_else(|e| panic!("build failed: {e}"));
        println!(
            "{}: {} bytes packed; packed {:?}, context loaded {:?}, jobs created {:?}, finished {:?}",
            mode.as_str(),
            t.context_bytes,
            t.packed,
            t.context_loaded,
            t.jobs_created,
            t.finished
        );
        rig.assert_no_namespace_left();
    }
}

/// MiB of incompressible data in the context of
/// [`build_command_streams_a_large_context_in_bounded_memory`]; `HR_KANIKO_CONTEXT_MIB`
/// overrides it (500 for the figure in docs/performance.md).
const STREAMED_CONTEXT_MIB: u64 = 128;
/// The runner's peak RSS bound for that build, whatever the context's size.
const STREAMED_PEAK_BOUND_KIB: u64 = 100 * 1024;

/// Writes `mib` MiB of [`noise`] to `path`, a MiB at a time.
fn write_noise(path: &std::path::Path, mib: u64) {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..mib {
        file.write_all(&noise(1 << 20, i + 1)).unwrap();
    }
    file.flush().unwrap();
}

/// `hybrid-runner build --builder kaniko` of a context far past the ConfigMap budget (by
/// default 128 MiB of random bytes, PVC mode): the packed context is streamed from a file
/// to the loader pod, so the runner's peak RSS stays under 100 MiB; a runner holding the
/// tar.gz in memory needs more than the context's size.
#[test]
fn build_command_streams_a_large_context_in_bounded_memory() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let mib = std::env::var("HR_KANIKO_CONTEXT_MIB")
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .expect("HR_KANIKO_CONTEXT_MIB is a number of MiB")
        })
        .unwrap_or(STREAMED_CONTEXT_MIB);
    // Only the Dockerfile and hello.txt reach the image: the build itself stays cheap.
    let ctx = rig.context(
        "streamed",
        &[("Dockerfile", DOCKERFILE), ("hello.txt", "streamed\n")],
    );
    write_noise(&ctx.join("blob.bin"), mib);
    let image = rig.image("streamed");
    let started = Instant::now();
    let mut command = harness::cli::command();
    command
        .arg("build")
        .arg(&ctx)
        .args(["--image", &image, "--builder", "kaniko", "--sha", SHA])
        .args(["--insecure-registry", &rig.registry.host])
        .arg("--kubeconfig")
        .arg(&rig.kubeconfig)
        .env_remove("KUBECONFIG");
    let (out, peak_kib) =
        harness::daemon_process::output_with_peak_rss(command, Duration::from_millis(20));
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "build --builder kaniko of a {mib} MiB context: {wall:?}, peak RSS {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("into the volume build-context")
            || stdout.contains("into the volume build-context"),
        "not loaded through the PVC: {stdout}\n{stderr}"
    );
    assert!(!rig.registry.tags("streamed").is_empty(), "nothing pushed");
    assert!(peak_kib > 0, "no RSS sample of the build process");
    assert!(
        peak_kib < STREAMED_PEAK_BOUND_KIB,
        "peak RSS {peak_kib} KiB for a {mib} MiB context, bound {STREAMED_PEAK_BOUND_KIB} KiB"
    );
    rig.assert_no_namespace_left();
}
