#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The manifests of a Kaniko dual build: names, labels, Job fields, context size limits,
//! schema validation with `kubernetes-validate --strict`, and `hybrid-runner render`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use harness::fake_kube::kubernetes_validate;
use hr_cluster::TaskIds;
use hr_cluster::names::is_dns1123_label;
use hr_image::kaniko::{
    BuildManifests, BuildSpec, CONFIGMAP_BUDGET_BYTES, ContextMode, ContextObjects, KanikoConfig,
    LargeContextMode, LimitRangeConfig, TagTemplates, Variant, VariantSpec, build_manifests,
    configmap_data_size, dual_tags, to_yaml_documents,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, PodSpec};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const IMAGE: &str = "registry.local:5000/app";

fn spec(variants: &[Variant]) -> BuildSpec {
    let variants = dual_tags(IMAGE, SHA, variants, &TagTemplates::default())
        .into_iter()
        .map(|(variant, tags)| VariantSpec {
            variant,
            dockerfile: variant.default_dockerfile().to_string(),
            tags,
        })
        .collect();
    BuildSpec {
        image: IMAGE.to_string(),
        sha: SHA.to_string(),
        context_dir: PathBuf::from("/src/app"),
        variants,
        build_args: vec![("VERSION".into(), "1.2 beta".into())],
        target: Some("release".into()),
        labels: vec![("org.opencontainers.image.revision".into(), SHA.into())],
        timeout: Duration::from_secs(1800),
    }
}

fn task() -> TaskIds {
    TaskIds {
        task: "task-4711".into(),
        job: "build / image (linux)".into(),
        started_at: UNIX_EPOCH + Duration::from_secs(1_798_761_600),
    }
}

fn full_config() -> KanikoConfig {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    KanikoConfig {
        runner_id: "runner-eu-1".into(),
        registry_secret: Some(br#"{"auths":{"registry.local:5000":{"auth":"dTpw"}}}"#.to_vec()),
        cache: true,
        cache_repo: Some("registry.local:5000/app/cache".into()),
        insecure_registries: vec!["registry.local:5000".into()],
        skip_tls_verify_registries: vec!["registry.self-signed:443".into()],
        quota: Some(map(&[("requests.cpu", "4"), ("limits.memory", "16Gi")])),
        limit_range: Some(LimitRangeConfig {
            default_request: map(&[("cpu", "250m"), ("memory", "256Mi")]),
            default_limit: map(&[("memory", "1Gi")]),
            max: map(&[("memory", "16Gi")]),
        }),
        ..KanikoConfig::default()
    }
}

fn pod(job: &Job) -> &PodSpec {
    job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

fn kaniko(job: &Job) -> &Container {
    pod(job)
        .containers
        .iter()
        .find(|c| c.name == "kaniko")
        .unwrap()
}

fn args(job: &Job) -> Vec<String> {
    kaniko(job).args.clone().unwrap_or_default()
}

#[test]
fn namespace_is_named_labelled_and_baseline() {
    let config = full_config();
    let m = build_manifests(&spec(&Variant::ALL), &config, &task(), b"ctx", "abc").unwrap();
    let name = m.namespace.metadata.name.clone().unwrap();
    assert!(is_dns1123_label(&name) && name.len() <= 63, "{name}");
    let labels = m.namespace.metadata.labels.clone().unwrap();
    assert_eq!(
        labels["app.kubernetes.io/managed-by"], "hybrid-runner",
        "{labels:?}"
    );
    assert_eq!(labels["hybrid-runner/runner-id"], "runner-eu-1");
    assert_eq!(labels["hybrid-runner/task-id"], "task-4711");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    let annotations = m.namespace.metadata.annotations.clone().unwrap();
    // Started 2027-01-01T00:00:00Z, default expiry 6 hours.
    assert_eq!(
        annotations["hybrid-runner/expires-at"],
        "2027-01-01T06:00:00Z"
    );
    assert_eq!(annotations["hybrid-runner/job-id"], "build / image (linux)");
    // Every object lives in that namespace and is marked as the runner's.
    let secret = m.registry_secret.as_ref().unwrap();
    assert_eq!(secret.metadata.namespace.as_deref(), Some(name.as_str()));
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    assert!(
        secret
            .data
            .as_ref()
            .unwrap()
            .contains_key(".dockerconfigjson")
    );
    for (_, job) in &m.jobs {
        assert_eq!(job.metadata.namespace.as_deref(), Some(name.as_str()));
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
            "hybrid-runner"
        );
    }
    let quota = m.quota.as_ref().unwrap();
    assert_eq!(
        quota.spec.as_ref().unwrap().hard.as_ref().unwrap()["limits.memory"].0,
        "16Gi"
    );
    let lr = m.limit_range.as_ref().unwrap();
    assert_eq!(lr.spec.as_ref().unwrap().limits[0].type_, "Container");

    // Same ids, same name; another job, another name.
    let again = build_manifests(&spec(&Variant::ALL), &config, &task(), b"ctx", "abc").unwrap();
    assert_eq!(again.namespace.metadata.name, m.namespace.metadata.name);
    let other = TaskIds {
        job: "build / image (arm)".into(),
        ..task()
    };
    let other = build_manifests(&spec(&Variant::ALL), &config, &other, b"ctx", "abc").unwrap();
    assert_ne!(other.namespace.metadata.name, m.namespace.metadata.name);
}

#[test]
fn kaniko_jobs_carry_every_required_field() {
    let config = full_config();
    let m = build_manifests(&spec(&Variant::ALL), &config, &task(), b"ctx", "abc").unwrap();
    assert_eq!(
        m.jobs.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        Variant::ALL.to_vec()
    );
    for ((variant, job), variant_spec) in m.jobs.iter().zip(&spec(&Variant::ALL).variants) {
        let job_spec = job.spec.as_ref().unwrap();
        assert_eq!(job_spec.backoff_limit, Some(0));
        assert_eq!(job_spec.active_deadline_seconds, Some(1800));
        assert_eq!(job_spec.ttl_seconds_after_finished, Some(600));
        let pod = pod(job);
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let container = kaniko(job);
        assert_eq!(
            container.image.as_deref(),
            Some("ghcr.io/osscontainertools/kaniko:v1.28.3")
        );
        let args = args(job);
        let destinations: Vec<&str> = args
            .iter()
            .filter_map(|a| a.strip_prefix("--destination="))
            .collect();
        assert_eq!(destinations, variant_spec.tags, "{variant}");
        assert_eq!(
            destinations.len(),
            if *variant == Variant::Docker { 3 } else { 2 }
        );
        for expected in [
            "--context=tar:///context/context.tar.gz".to_string(),
            format!("--dockerfile={}", variant.default_dockerfile()),
            "--digest-file=/dev/termination-log".to_string(),
            "--build-arg=VERSION=1.2 beta".to_string(),
            "--target=release".to_string(),
            format!("--label=org.opencontainers.image.revision={SHA}"),
            "--cache=true".to_string(),
            "--cache-repo=registry.local:5000/app/cache".to_string(),
            "--insecure-registry=registry.local:5000".to_string(),
            "--skip-tls-verify-registry=registry.self-signed:443".to_string(),
        ] {
            assert!(args.contains(&expected), "{expected} missing from {args:?}");
        }
        // Plain HTTP only for the plain-HTTP registry.
        assert_eq!(
            args.iter()
                .filter(|a| a.starts_with("--insecure-registry="))
                .count(),
            1,
            "{args:?}"
        );
        // Kaniko's in-container check finds `container=kube` (no service-account token).
        let env = container.env.as_ref().unwrap();
        assert!(
            env.iter()
                .any(|e| e.name == "container" && e.value.as_deref() == Some("kube")),
            "{env:?}"
        );
        // Registry credentials at /kaniko/.docker/config.json.
        let mount = container
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.mount_path == "/kaniko/.docker")
            .unwrap();
        let volume = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == mount.name)
            .unwrap();
        let secret = volume.secret.as_ref().unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("registry-credentials"));
        let items = secret.items.as_ref().unwrap();
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            (".dockerconfigjson", "config.json")
        );
        let resources = container.resources.as_ref().unwrap();
        assert!(resources.limits.as_ref().unwrap().contains_key("memory"));
        assert!(
            resources
                .requests
                .as_ref()
                .unwrap()
                .contains_key("ephemeral-storage")
        );
    }

    // Without cache, secret or insecure registries none of their flags or mounts appear.
    let bare = build_manifests(
        &spec(&[Variant::Docker]),
        &KanikoConfig::default(),
        &task(),
        b"ctx",
        "abc",
    )
    .unwrap();
    assert_eq!(bare.jobs.len(), 1);
    let args = args(&bare.jobs[0].1);
    assert!(
        !args.iter().any(|a| a.starts_with("--cache")
            || a.starts_with("--insecure")
            || a.starts_with("--skip-tls")),
        "{args:?}"
    );
    assert!(bare.registry_secret.is_none());
    assert_eq!(pod(&bare.jobs[0].1).volumes.as_ref().unwrap().len(), 1);
}

#[test]
fn context_size_decides_the_mode() {
    let spec = spec(&Variant::ALL);
    let small = vec![7u8; 64 << 10];
    let m = build_manifests(&spec, &KanikoConfig::default(), &task(), &small, "abc").unwrap();
    let ContextObjects::ConfigMap(cm) = &m.context else {
        panic!("a 64 KiB context should go into a ConfigMap");
    };
    assert_eq!(
        cm.binary_data.as_ref().unwrap()["context.tar.gz"].0.len(),
        small.len()
    );
    assert_eq!(configmap_data_size(cm), small.len());

    // The API server counts a ConfigMap's data decoded, up to 1 MiB: 900 KiB fits (its
    // base64 in the JSON sent, 1.2 MiB, does not count), one byte past 1 MiB does not.
    let fits = vec![7u8; 900 << 10];
    let m = build_manifests(&spec, &KanikoConfig::default(), &task(), &fits, "abc").unwrap();
    assert!(
        matches!(m.context, ContextObjects::ConfigMap(_)),
        "900 KiB fits a ConfigMap"
    );
    let big = vec![7u8; (1 << 20) + 1];
    let only_configmap = KanikoConfig {
        context_mode: ContextMode::ConfigMap,
        ..KanikoConfig::default()
    };
    let err = build_manifests(&spec, &only_configmap, &task(), &big, "abc").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("1.0 MiB"), "{msg}");
    assert!(msg.contains(&CONFIGMAP_BUDGET_BYTES.to_string()), "{msg}");

    let m = build_manifests(&spec, &KanikoConfig::default(), &task(), &big, "abc").unwrap();
    let ContextObjects::Pvc { pvc, loader } = &m.context else {
        panic!("auto should pick the PVC past 1 MiB");
    };
    assert_eq!(
        pvc.spec.as_ref().unwrap().access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_string()][..])
    );
    // A loader left behind by a crash ends at the build's timeout.
    assert_eq!(
        loader.spec.as_ref().unwrap().active_deadline_seconds,
        Some(spec.timeout.as_secs() as i64)
    );
    let loader_container = &loader.spec.as_ref().unwrap().containers[0];
    assert_eq!(loader_container.stdin, Some(true));
    assert_eq!(loader_container.stdin_once, Some(true));
    for (_, job) in &m.jobs {
        let volumes = pod(job).volumes.as_ref().unwrap();
        assert!(volumes.iter().any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|p| p.claim_name == "build-context" && p.read_only == Some(true))
        }));
        assert!(
            pod(job).affinity.is_some(),
            "RWO keeps both builds on one node"
        );
    }

    let stdin = KanikoConfig {
        large_context: LargeContextMode::Stdin,
        ..KanikoConfig::default()
    };
    let m = build_manifests(&spec, &stdin, &task(), &big, "abc").unwrap();
    assert!(matches!(m.context, ContextObjects::Stdin));
    for (_, job) in &m.jobs {
        let c = kaniko(job);
        assert_eq!(
            (c.stdin, c.stdin_once, c.tty),
            (Some(true), Some(true), Some(false))
        );
        assert!(args(job).contains(&"--context=tar://stdin".to_string()));
        assert!(
            pod(job)
                .volumes
                .as_ref()
                .is_none_or(|v| v.iter().all(|v| v.name != "context"))
        );
    }

    // 2 MiB with only ConfigMap allowed: the message names the size and the limit.
    let huge = vec![7u8; 2 << 20];
    let msg = build_manifests(&spec, &only_configmap, &task(), &huge, "abc")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2.0 MiB"), "{msg}");
    assert!(msg.contains("limit of 1.0 MiB (1048576 bytes)"), "{msg}");
    assert!(msg.contains("/src/app"), "{msg}");

    // Too large for every configured mode.
    let tight = KanikoConfig {
        pvc: hr_image::kaniko::PvcConfig {
            size_bytes: 1 << 20,
            ..Default::default()
        },
        ..KanikoConfig::default()
    };
    let msg = build_manifests(&spec, &tight, &task(), &huge, "abc")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("PVC size") && msg.contains("1048576"), "{msg}");
}

#[test]
fn yaml_is_deterministic_and_reads_back_into_the_same_objects() {
    let m = build_manifests(&spec(&Variant::ALL), &full_config(), &task(), b"ctx", "abc").unwrap();
    let yaml = to_yaml_documents(&m).unwrap();
    assert_eq!(yaml, to_yaml_documents(&m).unwrap());
    let kinds: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "LimitRange",
            "ResourceQuota",
            "Secret",
            "ConfigMap",
            "Job",
            "Job"
        ]
    );
    let last = yaml.rsplit("---\n").next().unwrap();
    let job: Job = serde_saphyr::from_str(last).unwrap();
    assert_eq!(job, m.jobs[1].1);
}

/// Validates `file` strictly against 1.30 and the newest version the tool knows; returns
/// the number of documents that passed per version.
fn validate(tool: &str, file: &Path) -> Vec<(String, usize)> {
    let mut figures = Vec::new();
    for version in [Some("1.30.0"), None] {
        let mut cmd = Command::new(tool);
        if let Some(v) = version {
            cmd.args(["-k", v]);
        }
        let out = cmd.arg("--strict").arg(file).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stdout.contains("ERROR") && !stderr.contains("ERROR"),
            "kubernetes-validate {version:?} --strict {}:\n{stdout}\n{stderr}",
            file.display()
        );
        let passed = stdout.matches(" passed for resource ").count()
            + stderr.matches(" passed for resource ").count();
        let label = match version {
            Some(v) => v.to_string(),
            None => stdout
                .split(" against version ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map_or("newest".to_string(), |v| format!("newest ({v})")),
        };
        figures.push((label, passed));
    }
    figures
}

fn every_mode() -> Vec<(&'static str, BuildManifests)> {
    let spec = spec(&Variant::ALL);
    let big = vec![7u8; 900 << 10];
    let mut out = Vec::new();
    let modes: [(&str, ContextMode, &[u8]); 3] = [
        ("configmap", ContextMode::ConfigMap, b"ctx"),
        ("pvc", ContextMode::Pvc, &big),
        ("stdin", ContextMode::Stdin, &big),
    ];
    for (name, mode, bytes) in modes {
        let config = KanikoConfig {
            context_mode: mode,
            pvc: hr_image::kaniko::PvcConfig {
                storage_class: Some("standard".into()),
                ..Default::default()
            },
            ..full_config()
        };
        out.push((
            name,
            build_manifests(&spec, &config, &task(), bytes, "abc").unwrap(),
        ));
    }
    out
}

#[test]
fn every_rendered_document_passes_kubernetes_validate_strict() {
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, m) in every_mode() {
        let path = dir.path().join(format!("{name}.yaml"));
        let yaml = to_yaml_documents(&m).unwrap();
        let documents = yaml.matches("---\n").count();
        std::fs::write(&path, yaml).unwrap();
        let figures = validate(&tool, &path);
        for (version, passed) in &figures {
            assert_eq!(*passed, documents, "{name} against {version}");
        }
        println!("kubernetes-validate --strict {name}: {figures:?} of {documents} documents");
    }
}

fn render(dir: &Path, extra: &[&str]) -> std::process::Output {
    harness::cli::command()
        .arg("render")
        .arg(dir)
        .args(["--image", IMAGE, "--sha", SHA])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn render_refuses_the_image_names_build_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    for image in ["", "r.example/app;id", "r.example/a\nb", "r.example/App"] {
        let out = harness::cli::command()
            .arg("render")
            .arg(dir.path())
            .args(["--image", image, "--sha", SHA])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{image:?}: {stderr}");
        assert!(stderr.contains("--image"), "{stderr}");
        assert!(out.stdout.is_empty(), "{image:?} rendered");
    }
}

#[test]
fn render_command_prints_both_jobs_only_when_dockerfile_k8s_exists() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("fixture-dir");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("Dockerfile"), "FROM alpine\nRUN echo docker\n").unwrap();

    let out = render(&app, &[]);
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(yaml.matches("kind: Job").count(), 1, "{yaml}");
    assert!(yaml.contains("name: kaniko-docker"));
    assert!(!yaml.contains("kaniko-k8s"));
    assert!(yaml.contains(&format!("--destination={IMAGE}:docker-{SHA}")));
    assert!(yaml.contains("kind: ConfigMap"));

    std::fs::write(app.join("Dockerfile.k8s"), "FROM alpine\nRUN echo k8s\n").unwrap();
    let out = render(&app, &["--short-sha", "7", "--context-mode", "stdin"]);
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(yaml.matches("kind: Job").count(), 2, "{yaml}");
    assert!(yaml.contains("--dockerfile=Dockerfile.k8s"));
    assert!(yaml.contains(&format!("--destination={IMAGE}:k8s-0123456")));
    assert!(yaml.contains("--context=tar://stdin"));
    assert!(!yaml.contains("kind: ConfigMap"));
    if let Some(tool) = kubernetes_validate() {
        let path = dir.path().join("render.yaml");
        std::fs::write(&path, &yaml).unwrap();
        validate(&tool, &path);
    }

    // No Dockerfile: a usage error (exit 2) that says so.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = render(&empty, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Dockerfile"));
}

#[test]
fn ids_cannot_inject_yaml_and_custom_templates_are_checked() {
    let hostile = TaskIds {
        task: "t\"\n  evil: true".into(),
        job: "{{namespace}}: x".into(),
        ..task()
    };
    let m = build_manifests(
        &spec(&[Variant::Docker]),
        &full_config(),
        &hostile,
        b"ctx",
        "abc",
    )
    .unwrap();
    let annotations = m.namespace.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["hybrid-runner/task-id"], "t\"\n  evil: true");
    assert_eq!(annotations["hybrid-runner/job-id"], "{{namespace}}: x");
    assert!(!annotations.contains_key("evil"));
    let name = m.namespace.metadata.name.unwrap();
    assert!(is_dns1123_label(&name), "{name}");

    // A user's Job template without a `kaniko` container is refused by name.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kaniko-job.yaml"),
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{job_name}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: builder\n          image: {{executor_image}}\n",
    )
    .unwrap();
    // A user's namespace template that drops the labels still gets the required ones.
    std::fs::write(
        dir.path().join("namespace.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{namespace}}\n",
    )
    .unwrap();
    let config = KanikoConfig {
        template_dir: Some(dir.path().to_path_buf()),
        ..KanikoConfig::default()
    };
    let ns = build_manifests(&spec(&[Variant::Docker]), &config, &task(), b"c", "a");
    assert!(ns.is_err(), "the Job template of that folder is broken");
    std::fs::remove_file(dir.path().join("kaniko-job.yaml")).unwrap();
    let m = build_manifests(&spec(&[Variant::Docker]), &config, &task(), b"c", "a").unwrap();
    let labels = m.namespace.metadata.labels.unwrap();
    for key in [
        "app.kubernetes.io/managed-by",
        "hybrid-runner/runner-id",
        "hybrid-runner/task-id",
        "pod-security.kubernetes.io/enforce",
    ] {
        assert!(labels.contains_key(key), "{key} missing: {labels:?}");
    }
    assert!(
        m.namespace
            .metadata
            .annotations
            .unwrap()
            .contains_key("hybrid-runner/expires-at")
    );
    std::fs::write(
        dir.path().join("kaniko-job.yaml"),
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{job_name}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: builder\n          image: {{executor_image}}\n",
    )
    .unwrap();
    let msg = build_manifests(&spec(&[Variant::Docker]), &config, &task(), b"c", "a")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("kaniko-job.yaml") && msg.contains("kaniko"),
        "{msg}"
    );
}
