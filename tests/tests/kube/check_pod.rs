//! The pod part of `hybrid-runner check`, as the real binary against the fake API server:
//! a pod started in the check's namespace, one exec round trip into it (on `v5` and on a
//! server that offers only `v4.channel.k8s.io`), the registry probed from inside it (up
//! and down), and a pod that never runs failing the check with the reason, in bounded time.

use std::time::{Duration, Instant};

use harness::fake_kube::{FakeKubeOptions, V4_CHANNEL, sandbox_available};
use harness::kaniko::*;

fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"))
}

/// A `host:port` on loopback where nothing listens.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    drop(listener);
    host
}

fn pod_round_trip_and_registry_from_a_pod(options: FakeKubeOptions, protocol: &str) {
    if !sandbox_available() {
        return;
    }
    let Some(rig) = rig(options) else {
        return;
    };
    let host = rig.registry.host.clone();
    let image = rig.image("checked");
    let args = ["check", "--image", &image, "--insecure-registry", &host];
    let (code, stdout, stderr) = run_cli(&rig, &args);
    assert_eq!(code, 0, "{protocol}: {stdout}\n{stderr}");
    let pod = line(&stdout, "ok   pod round trip (");
    assert!(pod.contains("busybox:1.36"), "{pod}");
    assert!(
        pod.contains("a nonce went in over an exec's stdin and came back"),
        "{pod}"
    );
    let from_pod = line(
        &stdout,
        &format!("ok   registry reachable from a pod (http://{host}/v2/) (HTTP 200, from pod "),
    );
    // After the probe from this host, before the executor.
    let order: Vec<&str> = stdout.lines().collect();
    let at = |l: &str| order.iter().position(|x| *x == l).unwrap();
    assert!(at(pod) > at(line(&stdout, "ok   configmap round trip")));
    assert!(at(from_pod) > at(line(&stdout, "ok   registry reachable (http")));
    assert!(at(from_pod) < at(line(&stdout, "ok   executor image configured")));
    // The pod passes Pod Security `restricted`, was sent valid, and is gone with its
    // namespace; the exec went to it.
    let sent = rig.fake.sent_manifests();
    let pods: Vec<_> = sent.iter().filter(|m| m["kind"] == "Pod").collect();
    assert_eq!(pods.len(), 1, "{protocol}");
    let spec = &pods[0]["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &spec["containers"][0];
    assert_eq!(container["image"], "busybox:1.36");
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    harness::fake_kube::validate_manifests(&sent);
    assert!(
        rig.fake
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/pods/job/exec")),
        "{protocol}"
    );
    assert!(active_namespaces(&rig).is_empty());

    // --json carries both checks, in the same format as the others.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, stdout, _) = run_cli(&rig, &json_args);
    assert_eq!(code, 0, "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let checks = doc["checks"].as_array().unwrap();
    for name in [
        "pod round trip".to_string(),
        format!("registry reachable from a pod (http://{host}/v2/)"),
    ] {
        let check = checks
            .iter()
            .find(|c| c["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no {name:?} in {stdout}"));
        assert_eq!(check["status"], "ok", "{check}");
        assert!(!check["detail"].as_str().unwrap().is_empty(), "{check}");
        assert_eq!(check.as_object().unwrap().len(), 3, "{check}");
    }
}

#[test]
fn check_runs_a_pod_round_trip_and_reaches_the_registry_from_the_pod() {
    pod_round_trip_and_registry_from_a_pod(FakeKubeOptions::default(), "v5");
}

/// Kubernetes 1.29 and older (or the v5 gate off): no stdin close, the round trip must end
/// its input in-band as steps do.
#[test]
fn check_runs_the_pod_round_trip_over_the_v4_exec_protocol() {
    let options = FakeKubeOptions {
        stream_protocols: vec![V4_CHANNEL.to_string()],
        ..FakeKubeOptions::default()
    };
    pod_round_trip_and_registry_from_a_pod(options, "v4");
}

#[test]
fn a_registry_down_fails_the_probe_from_the_pod() {
    if !sandbox_available() {
        return;
    }
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let down = closed_port();
    let args = ["check", "--registry", &down, "--insecure-registry", &down];
    let (code, stdout, stderr) = run_cli(&rig, &args);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("ok   pod round trip ("), "{stdout}");
    let from_pod = line(
        &stdout,
        &format!("FAIL registry reachable from a pod (http://{down}/v2/): pod "),
    );
    assert!(from_pod.contains("cannot reach it"), "{from_pod}");
    assert!(from_pod.to_lowercase().contains("refused"), "{from_pod}");
    assert!(active_namespaces(&rig).is_empty());

    // No registry given: skipped, not failed.
    let (code, stdout, _) = run_cli(&rig, &["check"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("skip registry reachable from a pod: no registry given"),
        "{stdout}"
    );
}

#[test]
fn a_pod_that_never_runs_fails_the_check_with_its_reason() {
    let Some(rig) = rig(FakeKubeOptions::default()) else {
        return;
    };
    let host = rig.registry.host.clone();
    let args = [
        "check",
        "--registry",
        &host,
        "--insecure-registry",
        &host,
        "--probe-timeout",
        "3",
    ];
    rig.fake.update_faults(|f| f.image_pull_failure = true);
    let started = Instant::now();
    let (code, stdout, stderr) = run_cli(&rig, &args);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let pod = line(&stdout, "FAIL pod round trip: ");
    assert!(
        pod.contains("ErrImagePull") || pod.contains("ImagePullBackOff"),
        "{pod}"
    );
    assert!(pod.contains("busybox:1.36"), "{pod}");
    assert!(
        stdout.contains(&format!(
            "skip registry reachable from a pod (http://{host}/v2/): the pod round trip failed"
        )),
        "{stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    rig.fake.update_faults(|f| {
        f.image_pull_failure = false;
        f.unschedulable = true;
    });
    let started = Instant::now();
    let (code, stdout, stderr) = run_cli(&rig, &args);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let pod = line(&stdout, "FAIL pod round trip: ");
    assert!(pod.contains("not running after 3 s"), "{pod}");
    assert!(
        pod.contains("Unschedulable: 0/1 nodes are available"),
        "{pod}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(active_namespaces(&rig).is_empty());
}
