#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `hybrid-runner generate-manifests` as a command (YAML for kubectl, `--json`, usage errors
//! with exit 2), and the registration its init container does: `register --keep-existing`
//! against the fake Gitea, and the init container's exact rendered arguments.

use std::path::Path;
use std::process::{Command, Output};

use crate::deploy_common::{IMAGE, INSTANCE, flag, register};
use harness::fake_gitea::{FakeGitea, FakeGiteaOptions};
use hr_gitea::registration::Registration;
use hybrid_runner::deploy::{CONFIG_KEY, DeploySettings, deploy_manifests};

fn cli(args: &[&str]) -> Output {
    harness::cli::command().args(args).output().unwrap()
}

#[test]
fn the_cli_prints_manifests_for_kubectl_and_refuses_bad_flags() {
    let base = [
        "generate-manifests",
        "--instance",
        INSTANCE,
        "--image",
        IMAGE,
    ];
    let out = cli(&[
        &base[..],
        &[
            "--kind",
            "deployment",
            "--replicas",
            "2",
            "--labels",
            "a:host, b:kubernetes",
        ],
    ]
    .concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.starts_with("---\n"));
    assert!(yaml.contains("kind: Deployment") && !yaml.contains("kind: StatefulSet"));
    assert!(yaml.contains("- a:host,b:kubernetes"), "{yaml}");
    // The YAML as kubectl would read it.
    if harness::fake_kube::kubernetes_validate().is_some() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deploy.yaml");
        std::fs::write(&path, &yaml).unwrap();
        let check = Command::new("kubernetes-validate")
            .arg("--strict")
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{report}");
        assert_eq!(report.matches("passed for resource").count(), 7, "{report}");
    }

    let out = cli(&[&base[..], &["--json", "--capacity", "3"]].concat());
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    assert_eq!(items[6]["kind"], "StatefulSet");
    assert!(
        items[4]["data"]["config.yaml"]
            .as_str()
            .unwrap()
            .contains("capacity: 3")
    );

    for (extra, needle) in [
        (&["--capacity", "0"][..], "--capacity: must be 1 or more"),
        (&["--replicas", "0"], "--replicas: must be 1 or more"),
        (
            &["--namespace", "CI_Runners"],
            "--namespace: \"CI_Runners\"",
        ),
        (&["--name", &"r".repeat(53)], "--name:"),
        (
            &["--instance", "gitea.example.com"],
            "--instance: \"gitea.example.com\"",
        ),
        (
            &["--labels", "a:kubernetes:img"],
            "--labels: label \"a:kubernetes:img\": the image must follow `//`",
        ),
        (&["--labels", ","], "--labels: give at least one label"),
        (&["--shutdown-timeout", "forever"], "--shutdown-timeout:"),
        (&["--storage", "1GB"], "--storage: \"1GB\""),
        (&["--registry-secret", "Reg_Cred"], "--registry-secret:"),
        (
            &["--template-dir", "/nonexistent/templates"],
            "--template-dir:",
        ),
        (&["--kind", "daemonset"], "invalid value 'daemonset'"),
    ] {
        let args: Vec<&str> = if extra[0] == "--instance" {
            [&["generate-manifests", "--image", IMAGE][..], extra].concat()
        } else {
            [&base[..], extra].concat()
        };
        let out = cli(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{extra:?}: nothing half-printed");
    }
    let out = cli(&["generate-manifests", "--instance", INSTANCE]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--image"));
}

fn register_cli(dir: &Path, instance: &str, token: &str, extra: &[&str]) -> Output {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("runner:\n  file: {}\n", dir.join(".runner").display()),
    )
    .unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).unwrap();
    harness::cli::command()
        .arg("register")
        .args(["--config", config.to_str().unwrap(), "--no-interactive"])
        .args(["--instance", instance])
        .args(["--token-file", token_file.to_str().unwrap()])
        .args(["--name", "hybrid-runner-0", "--labels", "linux:host"])
        .args(extra)
        .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn register_keep_existing_registers_once_and_then_keeps_the_file() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let keep = ["--keep-existing"];
    // First start: no file, so it registers.
    let out = register_cli(
        dir.path(),
        &fake.url(),
        FakeGitea::REGISTRATION_TOKEN,
        &keep,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = Registration::load(&dir.path().join(".runner")).unwrap();
    assert_eq!(first.name, "hybrid-runner-0");
    let calls = fake.requests().len();

    // A restart: the file is kept, the server is not called, even with a stale token.
    let out = register_cli(dir.path(), &fake.url(), "expired-token", &keep);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("kept the registration of hybrid-runner-0"),
        "{stderr}"
    );
    assert_eq!(fake.requests().len(), calls);
    assert_eq!(
        Registration::load(&dir.path().join(".runner")).unwrap(),
        first
    );

    // Without the flag the same call registers again, and the stale token is refused.
    let out = register_cli(dir.path(), &fake.url(), "expired-token", &[]);
    assert!(!out.status.success());
    assert!(fake.requests().len() > calls);

    // A damaged file is not kept silently.
    std::fs::write(dir.path().join(".runner"), "{ not json").unwrap();
    let out = register_cli(
        dir.path(),
        &fake.url(),
        FakeGitea::REGISTRATION_TOKEN,
        &keep,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("delete it to register again"), "{stderr}");
}

#[test]
fn the_init_container_registers_with_exactly_its_rendered_arguments() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let mut settings = DeploySettings::new(&fake.url(), IMAGE);
    settings.labels = vec!["linux:host".into(), "k8s:kubernetes".into()];
    let m = deploy_manifests(&settings).unwrap();
    let args = register(&m).args.clone().unwrap();

    // The pod's paths, moved into a temporary folder; everything else as rendered.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let moved = |path: &str| format!("{root}{path}");
    let config_file = flag(&args, "--config").to_string();
    let token_file = flag(&args, "--token-file").to_string();
    let runner_file = m.config.runner.file.to_str().unwrap().to_string();
    let text =
        m.config_map.data.as_ref().unwrap()[CONFIG_KEY].replace(&runner_file, &moved(&runner_file));
    for (path, content) in [
        (&config_file, text.as_str()),
        (&token_file, FakeGitea::REGISTRATION_TOKEN),
    ] {
        let path = moved(path);
        std::fs::create_dir_all(Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    std::fs::create_dir_all(Path::new(&moved(&runner_file)).parent().unwrap()).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.as_str() {
            a if a == config_file || a == token_file => moved(a),
            // What the kubelet makes of `$(POD_NAME)` from the fieldRef.
            "$(POD_NAME)" => format!("{}-0", settings.name),
            a => a.to_string(),
        })
        .collect();
    let run = || {
        harness::cli::command()
            .args(&args)
            .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN")
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registration = Registration::load(Path::new(&moved(&runner_file))).unwrap();
    assert_eq!(registration.name, "hybrid-runner-0");
    assert_eq!(registration.labels, ["linux:host", "k8s:kubernetes"]);
    let runner = fake.runner(&registration.uuid).unwrap();
    assert_eq!(runner.labels, ["linux", "k8s"]);
    // The pod's next start keeps it.
    let calls = fake.requests().len();
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.requests().len(), calls);
}
