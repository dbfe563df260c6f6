//! `hybrid-runner check --images` over manifests: a `helm template`-style multi-document file
//! whose one image name is wrong (the outage of the issue: the chart expected a name the
//! build never produced) and one tag that was never pushed, against a real registry.

use std::io::Write as _;
use std::process::{Output, Stdio};

use serde_json::{Value, json};

use harness::cli;
use harness::images::OciImage;
use harness::registry::Registry;

/// A layerless image (config only): enough for a registry lookup.
pub fn tiny_image(labels: Value) -> OciImage {
    OciImage {
        config: json!({"architecture": "amd64", "os": "linux",
                       "config": {"Labels": labels},
                       "rootfs": {"type": "layers", "diff_ids": []}}),
        layers: Vec::new(),
    }
}

fn chart(host: &str) -> String {
    format!(
        r#"---
# Source: hive/templates/api.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: hive
spec:
  selector:
    matchLabels: {{app: api}}
  template:
    metadata:
      labels: {{app: api}}
    spec:
      initContainers:
        - name: migrate
          image: {host}/hive/api:1.0.0
      containers:
        - name: api
          image: {host}/hive/api:1.0.0
---
# Source: hive/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  ports: [{{port: 80}}]
---
# Source: hive/templates/consensus.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: consensus
  namespace: hive
spec:
  serviceName: consensus
  selector:
    matchLabels: {{app: consensus}}
  template:
    metadata:
      labels: {{app: consensus}}
    spec:
      containers:
        - name: consensus
          image: {host}/neural-hive-mind/consensus-engine:1.0.0
---
# Source: hive/templates/report.yaml
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: hive
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: report
              image: {host}/hive/report:2.0.0
"#
    )
}

fn check(args: &[&str], stdin: Option<&str>, docker_config: &std::path::Path) -> Output {
    let mut command = cli::command();
    command
        .arg("check")
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start hybrid-runner check");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write the manifests");
    }
    child.wait_with_output().expect("check ran")
}

#[test]
fn images_of_a_chart_are_present_or_missing_with_what_is_missing() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let host = registry.host.clone();
    tiny_image(json!({})).push(&registry, "hive/api", "1.0.0");
    // The build produced this name; the chart expects another.
    tiny_image(json!({})).push(&registry, "hive/consensus", "1.0.0");
    // The repository exists, the tag the chart names was never pushed.
    tiny_image(json!({})).push(&registry, "hive/report", "1.9.0");
    let api_digest = registry.digest("hive/api", "1.0.0").expect("pushed");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.yaml");
    std::fs::write(&file, chart(&host)).unwrap();
    let file_arg = file.to_str().unwrap();

    let out = check(
        &["--images", "-f", file_arg, "--insecure-registry", &host],
        None,
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "one line per distinct image: {stdout}");
    let line = |needle: &str| {
        *lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line for {needle}: {stdout}"))
    };
    let api = line("hive/api:1.0.0");
    assert!(api.starts_with("present "), "{api}");
    assert!(api.contains(&api_digest), "{api}");
    assert!(
        api.contains("Deployment hive/api (init container migrate)")
            && api.contains("Deployment hive/api (container api)"),
        "{api}"
    );
    let wrong = line("consensus-engine");
    assert!(wrong.starts_with("missing "), "{wrong}");
    assert!(wrong.contains("no such repository"), "{wrong}");
    assert!(wrong.contains("StatefulSet hive/consensus"), "{wrong}");
    let untagged = line("hive/report:2.0.0");
    assert!(
        untagged.contains("no such tag in the registry (the repository has tags 1.9.0)"),
        "{untagged}"
    );
    assert!(untagged.contains("CronJob hive/report"), "{untagged}");
    assert!(stderr.contains("2 of 3 images are missing"), "{stderr}");

    // The same from stdin, as JSON (`helm template . | hybrid-runner check --images`).
    let out = check(
        &["--images", "--json", "--insecure-registry", &host],
        Some(&chart(&host)),
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["missing"], 2);
    let images = doc["images"].as_array().unwrap();
    let api = images
        .iter()
        .find(|i| i["image"] == format!("{host}/hive/api:1.0.0"))
        .unwrap();
    assert_eq!(api["status"], "present");
    assert_eq!(api["digest"], api_digest.as_str());
    assert_eq!(api["used_by"].as_array().unwrap().len(), 2);
    let wrong = images
        .iter()
        .find(|i| i["image"].as_str().unwrap().contains("consensus-engine"))
        .unwrap();
    assert_eq!(wrong["status"], "missing");
    assert_eq!(wrong["missing"], "no such repository");
    let untagged = images
        .iter()
        .find(|i| i["image"] == format!("{host}/hive/report:2.0.0"))
        .unwrap();
    assert_eq!(untagged["missing"], "no such tag");
    assert_eq!(untagged["tags"], json!(["1.9.0"]));

    // Once the chart names what was built, the gate opens.
    let fixed = chart(&host)
        .replace("neural-hive-mind/consensus-engine", "hive/consensus")
        .replace("report:2.0.0", "report:1.9.0");
    let out = check(
        &["--images", "--insecure-registry", &host],
        Some(&fixed),
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_unreachable_registry_is_not_present_and_bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n    - {{name: c, image: {host}/app:1}}\n"
    );
    let out = check(
        &["--images", "--insecure-registry", &host],
        Some(&manifest),
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("unreachable "), "{stdout}");
    assert!(stdout.contains("cannot reach the registry"), "{stdout}");

    let out = check(&["-n", "default"], None, dir.path());
    assert_eq!(out.status.code(), Some(2), "-n needs --images");
    let missing = dir.path().join("absent.yaml");
    let out = check(
        &["--images", "-f", missing.to_str().unwrap()],
        None,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass an existing file"));
    let out = check(&["--images"], Some(""), dir.path());
    assert_eq!(out.status.code(), Some(2), "an empty gate must not pass");
    assert!(String::from_utf8_lossy(&out.stderr).contains("read nothing on stdin"));
    let out = check(&["--images"], Some("kind: [unclosed"), dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin: not YAML"));
}

#[test]
fn a_registry_with_credentials_is_asked_with_the_runners_docker_config() {
    let Some(registry) = Registry::start_with_auth("builder", "s3cret-pass") else {
        return;
    };
    let host = registry.host.clone();
    tiny_image(json!({})).push(&registry, "team/app", "1");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n    - {{name: c, image: {host}/team/app:1}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = check(
        &["--images", "--insecure-registry", &host],
        Some(&manifest),
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("denied "), "{stdout}");
    assert!(stdout.contains("docker login"), "the remedy: {stdout}");

    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "builder:s3cret-pass",
    );
    std::fs::write(
        dir.path().join("config.json"),
        json!({"auths": {host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let out = check(
        &["--images", "--insecure-registry", &host],
        Some(&manifest),
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("present "), "{stdout}");
    assert!(!stdout.contains("s3cret"), "{stdout}");
}
